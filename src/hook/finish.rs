//! `dnf-hook finish` and `pacman-hook finish`: what
//! `restart-stale-dnf.service` and `restart-stale-pacman.service` run.
//!
//! Like apt's finish ([`crate::apt::finish`]): one at a time, take the
//! record by renaming it, act, and take what arrived meanwhile in a
//! further round. Before acting it waits until the package manager that
//! wrote the record has exited, so the restarts follow the transaction
//! rather than interleave with its last steps; a package manager that
//! keeps running (a daemon such as dnf5daemon) is waited for at most
//! [`MANAGER_WAIT`].

use super::process::{self, Process};
use super::record::{Direction, Record};
use super::Family;
use crate::app::{self, Mode, RunOptions};
use crate::apt::{dpkg_info, finish as apt_finish, host, lock, record as spool};
use crate::changed::ChangedSet;
use crate::cli::exit;
use crate::sysroot::SysRoot;
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Rounds of take-wait-act per run; each needs a new transaction to have
/// been recorded meanwhile, so this is only a backstop.
const MAX_ROUNDS: usize = 10;

/// The longest wait for the package manager to exit.
pub const MANAGER_WAIT: Duration = Duration::from_secs(60);

/// How many packages the summary line names before it abbreviates.
const SHOWN_PACKAGES: usize = 20;

pub fn run(root: &SysRoot, family: Family, verbose: u8) -> Result<i32> {
    let wait = lock::Wait {
        timeout: MANAGER_WAIT,
        poll: Duration::from_millis(100),
        settle: Duration::ZERO,
    };
    run_with(root, family, verbose, wait)
}

pub fn run_with(root: &SysRoot, family: Family, verbose: u8, wait: lock::Wait) -> Result<i32> {
    if let Some(why) = host::suspended() {
        log::info!("{why}: not restarting anything");
        return Ok(exit::OK);
    }
    let dir = root.path(family.dir());
    let Some(_lock) = apt_finish::try_lock(&dir)? else {
        log::info!("another {} finish is running; it takes the record", family.subcommand());
        return Ok(exit::OK);
    };
    let mut code = exit::OK;
    for round in 0..MAX_ROUNDS {
        if !spool::any_waiting(&dir)? {
            if round == 0 {
                log::info!("no recorded {} transaction: nothing to do", family.name());
            }
            break;
        }
        let files = spool::take(&dir)?;
        if files.is_empty() {
            break;
        }
        let c = act(root, &files, verbose, wait);
        if c != exit::OK {
            code = c;
        }
        apt_finish::remove(&files);
    }
    Ok(code)
}

/// Acts on the taken records; returns the exit status of the run.
fn act(root: &SysRoot, files: &[PathBuf], verbose: u8, wait: lock::Wait) -> i32 {
    let rec = match Record::read_all(files) {
        Ok(r) => r,
        Err(e) => {
            log::error!("{e:#}");
            return exit::ERROR;
        }
    };
    for p in &rec.problems {
        log::warn!("{p}");
    }
    for b in &rec.blocks {
        let source = b.source().map_or("package manager", |s| s.name());
        for e in b.errors() {
            log::warn!("from the {source} hook: {e}");
        }
    }
    let changed = changed_set(root, &rec);
    if changed.is_empty() {
        log::info!("the recorded transaction names no file: nothing to do");
        return exit::OK;
    }
    wait_for_managers(root, &rec, wait);
    log::info!("{}; {} changed files", summary(&rec), changed.len());
    let mode = if rec.blocks.iter().all(|b| b.auto_restart()) {
        Mode::Restart
    } else {
        log::info!("automatic restarts are off for this transaction: reporting only");
        Mode::DryRun
    };
    let opts = RunOptions {
        changed: Some(changed),
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

/// Every recorded file, directories left out: they are never mapped code.
pub fn changed_set(root: &SysRoot, rec: &Record) -> ChangedSet {
    let mut set = ChangedSet::default();
    for f in rec.blocks.iter().flat_map(|b| b.files()) {
        if !dpkg_info::is_dir(root, f) {
            set.insert(f);
        }
    }
    set
}

/// Waits until no package manager named in the record runs any more, at
/// most `wait.timeout`.
fn wait_for_managers(root: &SysRoot, rec: &Record, wait: lock::Wait) {
    let mut managers: Vec<Process> = Vec::new();
    for p in rec.blocks.iter().flat_map(|b| b.managers()) {
        if !managers.contains(&p) && process::alive(root, p) {
            managers.push(p);
        }
    }
    if managers.is_empty() {
        return;
    }
    let pids: Vec<String> = managers.iter().map(|p| p.pid.to_string()).collect();
    log::info!("waiting until the package manager (pid {}) has exited", pids.join(", "));
    let gone = lock::wait_until_free(|| Ok(managers.iter().any(|p| process::alive(root, *p))), wait);
    if !gone {
        log::info!(
            "the package manager still runs after {} s; acting now",
            wait.timeout.as_secs()
        );
    }
}

/// One log line: the sources, commands and `name.arch old → new` per
/// package, from the first version seen to the last.
pub fn summary(rec: &Record) -> String {
    let mut changes: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    for (dir, nevra) in rec.blocks.iter().flat_map(|b| b.packages()) {
        let (key, evr) = match crate::dnf::split_nevra(nevra) {
            Some((name, evr, arch)) => (format!("{name}.{arch}"), evr),
            None => (nevra.to_string(), String::new()),
        };
        let e = changes.entry(key).or_default();
        match dir {
            Direction::Out => {
                e.0.get_or_insert(evr);
            }
            Direction::In => e.1 = Some(evr),
        }
    }
    let mut sources: Vec<&str> = rec.blocks.iter().filter_map(|b| b.source()).map(|s| s.name()).collect();
    sources.dedup();
    let mut commands: Vec<&str> = rec.blocks.iter().filter_map(|b| b.command()).collect();
    commands.dedup();
    let what = if sources.is_empty() {
        "package".to_string()
    } else {
        sources.join("+")
    };
    let mut line = format!("{what} transaction");
    if !commands.is_empty() {
        line.push_str(&format!(" ({})", commands.join("; ")));
    }
    let shown: Vec<String> = changes
        .iter()
        .take(SHOWN_PACKAGES)
        .map(|(p, (old, new))| {
            let old = old.as_deref().unwrap_or("(none)");
            let new = new.as_deref().unwrap_or("(removed)");
            format!("{p} {old} → {new}")
        })
        .collect();
    if !shown.is_empty() {
        line.push_str(": ");
        line.push_str(&shown.join(", "));
    }
    let more = changes.len().saturating_sub(SHOWN_PACKAGES);
    if more > 0 {
        line.push_str(&format!(" and {more} more"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hook::record::{Block, Fact, Source};

    fn block(source: Source, facts: Vec<Fact>) -> Block {
        let mut all = vec![Fact::Source(source)];
        all.extend(facts);
        Block {
            time: 1,
            pid: 2,
            facts: all,
        }
    }

    #[test]
    fn summary_pairs_versions_by_name_and_arch() {
        let rec = Record {
            blocks: vec![block(
                Source::Dnf5,
                vec![
                    Fact::Command("dnf5 upgrade".into()),
                    Fact::Package(Direction::In, "libdemo-0:2.0-1.x86_64".into()),
                    Fact::Package(Direction::Out, "libdemo-0:1.0-1.x86_64".into()),
                    Fact::Package(Direction::In, "fresh-3-1.noarch".into()),
                    Fact::Package(Direction::Out, "gone-1:1-1.x86_64".into()),
                ],
            )],
            problems: vec![],
        };
        assert_eq!(
            summary(&rec),
            "dnf5 transaction (dnf5 upgrade): fresh.noarch (none) → 3-1, gone.x86_64 1:1-1 → (removed), \
libdemo.x86_64 1.0-1 → 2.0-1"
        );
        let pacman = Record {
            blocks: vec![block(Source::Pacman, vec![Fact::File("/usr/bin/x".into())])],
            problems: vec![],
        };
        assert_eq!(summary(&pacman), "pacman transaction");
    }

    #[test]
    fn the_changed_set_leaves_directories_out() {
        let tmp = tempfile::tempdir().unwrap();
        let root = SysRoot::new(tmp.path());
        std::fs::create_dir_all(root.path("/usr/lib64")).unwrap();
        let rec = Record {
            blocks: vec![block(
                Source::Dnf4,
                vec![
                    Fact::File("/usr/lib64".into()),
                    Fact::File("/usr/lib64/libdemo.so.1".into()),
                    Fact::File("/lib64/libgone.so.1".into()),
                ],
            )],
            problems: vec![],
        };
        let set = changed_set(&root, &rec);
        assert_eq!(set.len(), 2);
        assert!(set.contains("/usr/lib64/libgone.so.1"));
    }

    #[test]
    fn an_empty_record_directory_means_nothing_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        let root = SysRoot::new(tmp.path());
        assert_eq!(run(&root, Family::Dnf, 0).unwrap(), exit::OK);
    }
}
