//! The finish of a record of facts ([`super::record`]), which every
//! manager but apt leaves to [`Manager::prepare`]'s default: the changed
//! set is the recorded files, and before acting it waits until the
//! package manager that wrote the record has exited, so the restarts
//! follow the transaction rather than interleave with its last steps. A
//! package manager that keeps running (a daemon such as dnf5daemon) is
//! waited for at most [`MANAGER_WAIT`].

use super::manager::{Manager, Prepared};
use super::process::{self, Process};
use super::record::{Direction, Record};
use super::wait::{self, Wait};
use crate::core::changed::ChangedSet;
use crate::system::sysroot::SysRoot;
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The longest wait for the package manager to exit.
pub const MANAGER_WAIT: Duration = Duration::from_secs(60);

/// How many packages the summary line names before it abbreviates.
const SHOWN_PACKAGES: usize = 20;

/// The default [`Manager::prepare`]: the changed set is the recorded
/// files; the protected units and the managers still running are taken
/// from the record, and the manager that wrote it is waited for.
pub(crate) fn prepare<M: Manager + ?Sized>(m: &M, root: &SysRoot, files: &[PathBuf]) -> Result<Option<Prepared>> {
    let rec = Record::read_all(files)?;
    for p in &rec.problems {
        log::warn!("{p}");
    }
    for b in &rec.blocks {
        let source = b.source().unwrap_or("package manager");
        for e in b.errors() {
            log::warn!("from the {source} hook: {e}");
        }
    }
    let changed = changed_set(root, &rec);
    if changed.is_empty() {
        log::info!("the recorded transaction names no file: nothing to do");
        return Ok(None);
    }
    let wait = Wait {
        timeout: MANAGER_WAIT,
        poll: Duration::from_millis(100),
        settle: Duration::ZERO,
    };
    let mut protect: Vec<String> = rec
        .blocks
        .iter()
        .flat_map(|b| b.protected())
        .map(String::from)
        .collect();
    // A manager still running may sit in a unit its hook did not see
    // (dnf5daemon started by D-Bus activation): ask before it goes.
    for p in rec.blocks.iter().flat_map(|b| b.managers()) {
        if process::alive(root, p) {
            protect.extend(crate::system::cgroup::ancestor_units(root, p.pid));
        }
    }
    wait_for_managers(root, &rec, wait);
    log::info!("{}; {} changed files", summary(m, &rec), changed.len());
    Ok(Some(Prepared {
        changed,
        auto_restart: rec.blocks.iter().all(|b| b.auto_restart()),
        reexec: rec.blocks.iter().all(|b| b.reexec()),
        protect,
        upgrades: m.upgrades(&rec),
    }))
}

/// Every recorded file, directories left out: they are never mapped code.
pub(crate) fn changed_set(root: &SysRoot, rec: &Record) -> ChangedSet {
    let mut set = ChangedSet::default();
    for f in rec.blocks.iter().flat_map(|b| b.files()) {
        if !root.is_dir(f) {
            set.insert(f);
        }
    }
    set
}

/// Waits until no package manager named in the record runs any more, at
/// most `wait.timeout`.
fn wait_for_managers(root: &SysRoot, rec: &Record, wait: Wait) {
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
    let gone = wait::wait_until_free(|| Ok(managers.iter().any(|p| process::alive(root, *p))), wait);
    if !gone {
        log::info!(
            "the package manager still runs after {} s; acting now",
            wait.timeout.as_secs()
        );
    }
}

/// One log line: the sources, commands and `name.arch old → new` per
/// package, from the first version seen to the last.
pub fn summary<M: Manager + ?Sized>(m: &M, rec: &Record) -> String {
    let mut changes: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    for (dir, nevra) in rec.blocks.iter().flat_map(|b| b.packages()) {
        let (key, evr) = m
            .split_package(nevra)
            .unwrap_or_else(|| (nevra.to_string(), String::new()));
        let e = changes.entry(key).or_default();
        match dir {
            Direction::Out => {
                e.0.get_or_insert(evr);
            }
            Direction::In => e.1 = Some(evr),
        }
    }
    let mut sources: Vec<&str> = rec.blocks.iter().filter_map(|b| b.source()).collect();
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
    use crate::transaction::manager::Named;
    use crate::transaction::record::{Block, Fact, Source};

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
                Source::of("dnf5"),
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
        /// dnf's package names, split as rpm does.
        struct Rpm;
        impl Manager for Rpm {
            fn id(&self) -> &'static str {
                "dnf"
            }
            fn packages(&self) -> Option<&'static dyn crate::run::Packages> {
                None
            }
            fn split_package(&self, p: &str) -> Option<(String, String)> {
                let (n, rest) = p.split_once('-')?;
                let (evr, arch) = rest.rsplit_once('.')?;
                let evr = evr.strip_prefix("0:").unwrap_or(evr);
                Some((format!("{n}.{arch}"), evr.to_string()))
            }
        }
        assert_eq!(
            summary(&Rpm, &rec),
            "dnf5 transaction (dnf5 upgrade): fresh.noarch (none) → 3-1, gone.x86_64 1:1-1 → (removed), \
libdemo.x86_64 1.0-1 → 2.0-1"
        );
        let pacman = Record {
            blocks: vec![block(Source::of("pacman"), vec![Fact::File("/usr/bin/x".into())])],
            problems: vec![],
        };
        assert_eq!(summary(&Named("pacman"), &pacman), "pacman transaction");
    }

    #[test]
    fn the_changed_set_leaves_directories_out() {
        let (_tmp, root) = SysRoot::scratch();
        std::fs::create_dir_all(root.path("/usr/lib64")).unwrap();
        let rec = Record {
            blocks: vec![block(
                Source::of("dnf4"),
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
        let (_tmp, root) = SysRoot::scratch();
        assert_eq!(
            super::super::finish::run(&root, &Named("dnf"), &crate::systemd::Bus::default(), 0).unwrap(),
            crate::exit::Outcome::Done
        );
    }
}
