//! `apt-hook pre-install-pkgs`: apt's `DPkg::Pre-Install-Pkgs` hook.
//!
//! Runs before every dpkg run with protocol 3 on stdin. It records the
//! actions, and copies the file list of each installed package that dpkg
//! is about to unpack over or remove: after dpkg ran, the list of a
//! removed package is gone, and an upgrade's list no longer names the
//! files the new version dropped.

use super::protocol::{self, HookInput, Step};
use super::record::{self, Block};
use super::{AUTO_RESTART_KEY, REEXEC_KEY};
use crate::managers::apt::dpkg;
use crate::system::sysroot::SysRoot;
use crate::transaction::{host, spool};
use anyhow::{Context, Result};
use std::collections::BTreeSet;

/// apt's whole configuration is a few hundred kB; anything near this is
/// not apt talking to us.
const STDIN_LIMIT: u64 = 64 << 20;

pub fn run(root: &SysRoot) -> Result<()> {
    // Always drain stdin, so apt's writes never fail, even when we skip.
    let data = crate::transaction::read_stdin(STDIN_LIMIT)?;
    if let Some(why) = host::suspended() {
        log::info!("{why}: not recording this transaction");
        return Ok(());
    }
    if let Err(why) = host::systemd_running(root) {
        log::debug!("{why}: not recording this transaction");
        return Ok(());
    }
    let input = protocol::parse(&data, "stdin");
    for e in &input.errors {
        log::error!("{e}");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut block = build_block(root, &input, now, std::process::id());
    block.protect = crate::transaction::launch::caller_units(root);
    let dir = root.path(record::DIR);
    spool::append(&dir, &block.render())?;
    if let Err(e) = note_auto_restart(root, block.auto_restart) {
        log::warn!("{e:#}");
    }
    log::debug!(
        "recorded {} actions and {} list entries in {}",
        block.actions.len(),
        block.lists.len(),
        dir.display()
    );
    Ok(())
}

/// Exists while apt's last transaction had automatic restarts off. The
/// needrestart drop-in that the .deb ships (docs/needrestart.md) keeps
/// needrestart to listing unless this file exists: needrestart's apt hook
/// runs after ours in the same dpkg run, and can only learn apt's setting,
/// `-o` included, from us without running anything.
pub const AUTO_RESTART_OFF: &str = "/run/restart-stale/apt/auto-restart-off";

/// Creates or removes [`AUTO_RESTART_OFF`] for this dpkg run.
fn note_auto_restart(root: &SysRoot, on: bool) -> Result<()> {
    let path = root.path(AUTO_RESTART_OFF);
    if on {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("failed to remove {}", path.display()))
            }
            _ => Ok(()),
        };
    }
    let why = "automatic restarts are off for this apt transaction; needrestart acts as configured\n";
    crate::system::safe_write::replace_file(&path, why.as_bytes(), 0o644, false)
}

/// The record block for one hook run: the parsed input plus the file
/// lists copied now.
pub(crate) fn build_block(root: &SysRoot, input: &HookInput, time: u64, pid: u32) -> Block {
    let mut block = Block::new(time, pid);
    block.command = input.config_value("CommandLine::AsString").map(str::to_string);
    // RESTART_STALE_DEFER=1 apt-get upgrade, or hooks.conf: deferred,
    // whatever apt.conf says.
    let deferred = host::deferred(root);
    if let Some(why) = &deferred {
        log::info!("{why}: the restarts are deferred");
    }
    block.auto_restart = auto_restart(input) && deferred.is_none();
    block.reexec = reexec(input);
    block.actions = input.actions.clone();
    block.errors = input.errors.iter().map(ToString::to_string).collect();
    let (lists, problems) = capture_lists(root, input);
    block.lists = lists;
    for p in problems {
        log::warn!("{p}");
        block.errors.push(p);
    }
    block
}

/// The admin's `RestartStale::Auto-Restart`; on unless it says off. A
/// value we can't read turns restarts off: the admin meant something.
fn auto_restart(input: &HookInput) -> bool {
    let Some(value) = input.config_value(AUTO_RESTART_KEY) else {
        return true;
    };
    protocol::parse_bool(value).unwrap_or_else(|| {
        log::warn!("{AUTO_RESTART_KEY} {value:?} is not a boolean; automatic restarts are off");
        false
    })
}

/// The admin's `RestartStale::Reexec`; on unless it says off. A value we
/// can't read turns it off, as for Auto-Restart: re-executing PID 1 is
/// the one step an admin may want to schedule.
fn reexec(input: &HookInput) -> bool {
    let Some(value) = input.config_value(REEXEC_KEY) else {
        return true;
    };
    protocol::parse_bool(value).unwrap_or_else(|| {
        log::warn!("{REEXEC_KEY} {value:?} is not a boolean; PID 1 is not re-executed");
        false
    })
}

/// `(pkg:arch, path)` for the current files of each installed package
/// being unpacked over or removed, once per package and arch.
fn capture_lists(root: &SysRoot, input: &HookInput) -> (Vec<(String, String)>, Vec<String>) {
    let mut seen = BTreeSet::new();
    let mut lists = Vec::new();
    let mut problems = Vec::new();
    for a in &input.actions {
        let Some(cur) = &a.current else { continue };
        if !matches!(a.step, Step::Unpack(_) | Step::Remove) {
            continue;
        }
        let key = format!("{}:{}", a.package, cur.arch);
        if !seen.insert(key.clone()) {
            continue;
        }
        match dpkg::package_files(root, &a.package, &[&cur.arch]) {
            Ok(Some(files)) => lists.extend(files.into_iter().map(|f| (key.clone(), f))),
            Ok(None) => log::debug!("{key}: no file list in {}", dpkg::INFO_DIR),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    (lists, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn block_copies_lists_of_changed_installed_packages_only() {
        let (_tmp, root) = SysRoot::scratch();
        let info = root.path(dpkg::INFO_DIR);
        fs::create_dir_all(&info).unwrap();
        fs::write(info.join("libdemo1:amd64.list"), "/.\n/usr/lib/libdemo.so.1\n").unwrap();
        fs::write(info.join("demod.list"), "/usr/sbin/demod\n").unwrap();
        fs::write(info.join("configured.list"), "/usr/bin/configured\n").unwrap();
        let stdin = "VERSION 3\n\
CommandLine::AsString=apt-get%20upgrade\n\
RestartStale::Auto-Restart=off\n\
\n\
libdemo1 1.0 amd64 same < 2.0 amd64 same /r/libdemo1.deb\n\
libdemo1 1.0 amd64 same < 2.0 amd64 same **CONFIGURE**\n\
demod 2.0 amd64 none > - - none **REMOVE**\n\
configured 1 amd64 none < 2 amd64 none **CONFIGURE**\n\
fresh - - none < 1 all none /r/fresh.deb\n\
garbage\n";
        let input = protocol::parse(stdin.as_bytes(), "stdin");
        let b = build_block(&root, &input, 7, 8);
        assert_eq!(b.command.as_deref(), Some("apt-get upgrade"));
        assert!(!b.auto_restart);
        assert_eq!(b.actions.len(), 5);
        let lists: Vec<_> = b.lists.iter().map(|(k, p)| format!("{k} {p}")).collect();
        assert_eq!(
            lists,
            ["libdemo1:amd64 /usr/lib/libdemo.so.1", "demod:amd64 /usr/sbin/demod"]
        );
        assert_eq!(b.errors.len(), 1);
        assert!(b.errors[0].starts_with("stdin:10: "), "{:?}", b.errors);
    }

    #[test]
    fn auto_restart_defaults_on_and_unreadable_means_off() {
        let parse = |s: &str| protocol::parse(s.as_bytes(), "stdin");
        assert!(auto_restart(&parse("VERSION 3\n\n")));
        assert!(auto_restart(&parse("VERSION 3\nrestartstale::auto-restart=true\n\n")));
        assert!(!auto_restart(&parse("VERSION 3\nRestartStale::Auto-Restart=maybe\n\n")));
    }

    #[test]
    fn the_needrestart_mark_follows_auto_restart() {
        let (_tmp, root) = SysRoot::scratch();
        let mark = root.path(AUTO_RESTART_OFF);
        fs::create_dir_all(mark.parent().unwrap()).unwrap();
        note_auto_restart(&root, true).unwrap();
        assert!(!mark.exists());
        note_auto_restart(&root, false).unwrap();
        assert!(mark.exists());
        note_auto_restart(&root, false).unwrap();
        assert!(mark.exists());
        note_auto_restart(&root, true).unwrap();
        assert!(!mark.exists());
    }

    #[test]
    fn reexec_defaults_on_and_is_recorded_only_when_off() {
        let parse = |s: &str| protocol::parse(s.as_bytes(), "stdin");
        assert!(reexec(&parse("VERSION 3\n\n")));
        assert!(!reexec(&parse("VERSION 3\nRestartStale::Reexec=false\n\n")));
        assert!(!reexec(&parse("VERSION 3\nRestartStale::Reexec=sometimes\n\n")));
        let (_tmp, root) = SysRoot::scratch();
        let on = build_block(&root, &parse("VERSION 3\n\n"), 1, 2);
        assert!(!on.render().contains("reexec"), "{}", on.render());
        let off = build_block(&root, &parse("VERSION 3\nRestartStale::Reexec=no\n\n"), 1, 2);
        let rec = record::parse(&off.render(), "test");
        assert!(rec.problems.is_empty(), "{:?}", rec.problems);
        assert!(!rec.reexec() && rec.auto_restart());
    }
}
