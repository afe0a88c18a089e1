//! `apt-hook finish`: what `restart-stale-apt.service` runs.
//!
//! It waits until no package manager holds the dpkg frontend lock, takes
//! the record by renaming it, derives the changed files from the recorded
//! packages' lists, and runs the ordinary scan-plan-restart with them
//! (report only when the admin turned automatic restarts off). Records
//! that arrive while it works are taken in a further round, so a second
//! transaction right behind the first is not left waiting.

use super::lock::{self, Wait, FRONTEND_LOCK};
use super::record::{self, Record};
use super::{dpkg_info, host, AUTO_RESTART_KEY};
use crate::app::{self, Mode, RunOptions};
use crate::cli::exit;
use crate::sysroot::SysRoot;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Rounds of wait-take-act per run; each one needs a new transaction to
/// have ended meanwhile, so this is only a backstop.
const MAX_ROUNDS: usize = 10;

/// How many packages the summary line names before it abbreviates.
const SHOWN_PACKAGES: usize = 20;

pub fn run(root: &SysRoot, verbose: u8) -> Result<i32> {
    run_with(root, verbose, Wait::default())
}

pub fn run_with(root: &SysRoot, verbose: u8, wait: Wait) -> Result<i32> {
    if let Some(why) = host::suspended() {
        log::info!("{why}: not restarting anything");
        return Ok(exit::OK);
    }
    let dir = root.path(record::DIR);
    let Some(_lock) = try_lock(&dir)? else {
        log::info!("another apt-hook finish is running; it takes the record");
        return Ok(exit::OK);
    };
    let lock_path = root.path(FRONTEND_LOCK);
    let mut code = exit::OK;
    for round in 0..MAX_ROUNDS {
        if !record::any_waiting(&dir)? {
            if round == 0 {
                log::info!("no recorded apt transaction: nothing to do");
            }
            break;
        }
        if lock::held(&lock_path).unwrap_or(false) {
            log::info!("waiting until the package manager is done ({FRONTEND_LOCK} is locked)");
        }
        if !lock::wait_until_free(|| lock::held(&lock_path), wait) {
            log::warn!(
                "{FRONTEND_LOCK} is still locked after {} s; leaving the record for the next run",
                wait.timeout.as_secs()
            );
            break;
        }
        let files = record::take(&dir)?;
        if files.is_empty() {
            break;
        }
        let c = act(root, &files, verbose);
        if c != exit::OK {
            code = c;
        }
        remove(&files);
    }
    Ok(code)
}

/// One `finish` at a time, even when someone runs it by hand.
pub fn try_lock(dir: &Path) -> Result<Option<File>> {
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let path = dir.join("finish.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("failed to open {}", path.display()))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Ok(None);
        }
        return Err(e).with_context(|| format!("failed to lock {}", path.display()));
    }
    Ok(Some(file))
}

pub fn remove(files: &[PathBuf]) {
    for f in files {
        if let Err(e) = std::fs::remove_file(f) {
            log::warn!("failed to remove {}: {e}", f.display());
        }
    }
}

/// Acts on the taken records; returns the exit status of the run.
fn act(root: &SysRoot, files: &[PathBuf], verbose: u8) -> i32 {
    let rec = match record::read_all(files) {
        Ok(r) => r,
        Err(e) => {
            log::error!("{e:#}");
            return exit::ERROR;
        }
    };
    for p in &rec.problems {
        log::warn!("{p}");
    }
    for e in rec.blocks.iter().flat_map(|b| &b.errors) {
        log::warn!("from the apt hook: {e}");
    }
    let packages = packages(&rec);
    if packages.is_empty() {
        log::info!("the recorded transaction names no package: nothing to do");
        return exit::OK;
    }
    log::info!("{}", summary(&rec));
    let captured: Vec<_> = rec.blocks.iter().flat_map(|b| b.lists.iter().cloned()).collect();
    let d = dpkg_info::derive(root, &packages, &captured);
    for p in &d.problems {
        log::warn!("{p}");
    }
    log::info!(
        "{} changed files: {} current package lists, {} paths copied before dpkg ran",
        d.set.len(),
        d.lists_read,
        d.captured
    );
    if !d.without_list.is_empty() {
        log::debug!("no file list now (removed): {}", d.without_list.join(" "));
    }
    let mode = if rec.auto_restart() {
        Mode::Restart
    } else {
        log::info!("automatic restarts are off ({AUTO_RESTART_KEY} \"false\"): reporting only");
        Mode::DryRun
    };
    let opts = RunOptions {
        changed: Some(d.set),
        ..RunOptions::default()
    };
    match app::execute(root, &opts, mode, verbose) {
        // In report mode, pending restarts are the expected outcome.
        Ok(exit::PENDING) if mode == Mode::DryRun => exit::OK,
        Ok(code) => code,
        Err(e) => {
            log::error!("{e:#}");
            exit::ERROR
        }
    }
}

/// `(name, archs)` of every recorded package, once each.
pub fn packages(rec: &Record) -> Vec<(String, Vec<String>)> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in rec.blocks.iter().flat_map(|b| &b.actions) {
        let archs = map.entry(a.package.clone()).or_default();
        for arch in a.archs() {
            if !archs.iter().any(|x| x == arch) {
                archs.push(arch.to_string());
            }
        }
    }
    map.into_iter().collect()
}

/// One log line: the commands and `pkg:arch old → new` per package, from
/// the first version seen to the last.
pub fn summary(rec: &Record) -> String {
    let mut changes: BTreeMap<String, (String, String)> = BTreeMap::new();
    for a in rec.blocks.iter().flat_map(|b| &b.actions) {
        let arch = a.current.as_ref().or(a.new.as_ref()).map_or("", |v| v.arch.as_str());
        let old = a.current.as_ref().map_or("(none)", |v| v.version.as_str());
        let new = a.new.as_ref().map_or("(removed)", |v| v.version.as_str());
        let e = changes
            .entry(format!("{}:{arch}", a.package))
            .or_insert_with(|| (old.to_string(), String::new()));
        e.1 = new.to_string();
    }
    let mut commands: Vec<&str> = rec.blocks.iter().filter_map(|b| b.command.as_deref()).collect();
    commands.dedup();
    let shown: Vec<String> = changes
        .iter()
        .take(SHOWN_PACKAGES)
        .map(|(p, (o, n))| format!("{p} {o} → {n}"))
        .collect();
    let more = changes.len().saturating_sub(SHOWN_PACKAGES);
    let mut line = format!(
        "apt transaction ({} hook runs{}{}): {}",
        rec.blocks.len(),
        if commands.is_empty() { "" } else { ", " },
        commands.join("; "),
        shown.join(", ")
    );
    if more > 0 {
        line.push_str(&format!(" and {more} more"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apt::protocol::parse_action;
    use crate::apt::record::Block;

    fn rec() -> Record {
        let mut a = Block::new(1, 10);
        a.command = Some("apt-get upgrade".into());
        for l in [
            "libdemo1 1.0 amd64 same < 2.0 amd64 same /r/a.deb",
            "libdemo1 1.0 i386 same < 2.0 i386 same /r/b.deb",
            "demod 2.0 amd64 none > - - none **REMOVE**",
        ] {
            a.actions.push(parse_action(l).unwrap());
        }
        let mut b = Block::new(2, 10);
        b.command = Some("apt-get upgrade".into());
        b.actions
            .push(parse_action("libdemo1 1.0 amd64 same < 2.0 amd64 same **CONFIGURE**").unwrap());
        b.actions
            .push(parse_action("fresh - - none < 3 all none /r/f.deb").unwrap());
        Record {
            blocks: vec![a, b],
            problems: vec![],
        }
    }

    #[test]
    fn packages_merge_archs_across_runs() {
        let p = packages(&rec());
        let shown: Vec<_> = p.iter().map(|(n, a)| format!("{n}:{}", a.join(","))).collect();
        assert_eq!(shown, ["demod:amd64", "fresh:all", "libdemo1:amd64,i386"]);
    }

    #[test]
    fn summary_names_commands_and_versions() {
        let s = summary(&rec());
        assert_eq!(
            s,
            "apt transaction (2 hook runs, apt-get upgrade): demod:amd64 2.0 → (removed), \
fresh:all (none) → 3, libdemo1:amd64 1.0 → 2.0, libdemo1:i386 1.0 → 2.0"
        );
    }

    #[test]
    fn a_second_finish_leaves_the_record_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("apt");
        let held = try_lock(&dir).unwrap();
        assert!(held.is_some());
        assert!(try_lock(&dir).unwrap().is_none());
        drop(held);
        assert!(try_lock(&dir).unwrap().is_some());
    }
}
