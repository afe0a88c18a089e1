//! The finish adapter of the package managers that record facts (dnf 4,
//! dnf 5, pacman; [`super::record`]): the changed set is the recorded
//! files, and before acting it waits until the package manager that wrote
//! the record has exited, so the restarts follow the transaction rather
//! than interleave with its last steps. A package manager that keeps
//! running (a daemon such as dnf5daemon) is waited for at most
//! [`MANAGER_WAIT`].

use super::finish::{Adapter, Prepared};
use super::process::{self, Process};
use super::record::{Direction, Record, Source};
use super::wait::{self, Wait};
use crate::core::changed::ChangedSet;
use crate::pkgdb::dpkg;
use crate::system::sysroot::SysRoot;
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The longest wait for the package manager to exit.
pub const MANAGER_WAIT: Duration = Duration::from_secs(60);

/// How many packages the summary line names before it abbreviates.
const SHOWN_PACKAGES: usize = 20;

/// The package managers whose hooks record here; one record directory and
/// one transient unit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// dnf 4 (the Python plugin) and dnf 5 (the actions plugin).
    Dnf,
    Pacman,
    /// zypper (libzypp's commit plugin).
    Zypper,
}

impl Family {
    /// The record directory inside the root.
    pub fn dir(self) -> &'static str {
        match self {
            Family::Dnf => "/run/restart-stale/dnf",
            Family::Pacman => "/run/restart-stale/pacman",
            Family::Zypper => "/run/restart-stale/zypper",
        }
    }

    /// The transient unit that runs `finish`.
    pub fn unit(self) -> &'static str {
        match self {
            Family::Dnf => "restart-stale-dnf.service",
            Family::Pacman => "restart-stale-pacman.service",
            Family::Zypper => "restart-stale-zypper.service",
        }
    }

    /// Our subcommand for this family; `<it> finish` is the unit's command.
    pub fn subcommand(self) -> &'static str {
        match self {
            Family::Dnf => "dnf-hook",
            Family::Pacman => "pacman-hook",
            Family::Zypper => "zypper-hook",
        }
    }

    /// How the package manager is called in messages.
    pub fn name(self) -> &'static str {
        match self {
            Family::Dnf => "dnf",
            Family::Pacman => "pacman",
            Family::Zypper => "zypper",
        }
    }
}

impl Adapter for Family {
    fn name(&self) -> &'static str {
        Family::name(*self)
    }

    fn dir(&self) -> &'static str {
        Family::dir(*self)
    }

    fn unit(&self) -> &'static str {
        Family::unit(*self)
    }

    fn subcommand(&self) -> &'static str {
        Family::subcommand(*self)
    }

    fn summary(&self, files: &[PathBuf]) -> String {
        match Record::read_all(files) {
            Ok(rec) => summary(&rec),
            Err(e) => format!("a {} transaction whose record cannot be read ({e:#})", self.name()),
        }
    }

    fn prepare(&self, root: &SysRoot, files: &[PathBuf]) -> Result<Option<Prepared>> {
        let rec = Record::read_all(files)?;
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
        log::info!("{}; {} changed files", summary(&rec), changed.len());
        Ok(Some(Prepared {
            changed,
            auto_restart: rec.blocks.iter().all(|b| b.auto_restart()),
            reexec: rec.blocks.iter().all(|b| b.reexec()),
            protect,
            upgrades: upgrades(&rec),
        }))
    }
}

/// The packages of the transaction for the fixes annotation
/// (docs/cves.md): dnf's, with the old and new EVR of each `name.arch`,
/// read from the rpmdb's changelogs; pacman's packages carry no
/// changelog we read, so their units' fixes are unknown, and said so.
/// zypper's (its own rpmdb path) are not annotated.
fn upgrades(rec: &Record) -> Option<crate::core::fixes::Upgrades> {
    use crate::core::fixes::{Family as Db, Upgrade, Upgrades};
    let pacman = rec.blocks.iter().any(|b| b.source() == Some(Source::Pacman));
    if pacman {
        return Some(Upgrades {
            family: Db::Unsupported("pacman packages carry no changelog"),
            packages: vec![Upgrade::default()],
        });
    }
    let dnf = |b: &&super::record::Block| matches!(b.source(), Some(Source::Dnf4 | Source::Dnf5));
    let mut changes: BTreeMap<(String, String), (Option<String>, Option<String>)> = BTreeMap::new();
    for (dir, nevra) in rec.blocks.iter().filter(dnf).flat_map(|b| b.packages()) {
        let Some((name, evr, arch)) = crate::pkgdb::rpm::split_nevra(nevra) else {
            continue;
        };
        let e = changes.entry((name.to_string(), arch.to_string())).or_default();
        match dir {
            Direction::Out => {
                e.0.get_or_insert(evr);
            }
            Direction::In => e.1 = Some(evr),
        }
    }
    if changes.is_empty() {
        return None;
    }
    let mut ups = Upgrades {
        family: Db::Rpm,
        packages: Vec::new(),
    };
    for ((name, arch), (from, to)) in &changes {
        ups.add(name, Some(arch), from.as_deref(), to.as_deref());
    }
    Some(ups)
}

/// Every recorded file, directories left out: they are never mapped code.
pub fn changed_set(root: &SysRoot, rec: &Record) -> ChangedSet {
    let mut set = ChangedSet::default();
    for f in rec.blocks.iter().flat_map(|b| b.files()) {
        if !dpkg::is_dir(root, f) {
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
pub fn summary(rec: &Record) -> String {
    let mut changes: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    for (dir, nevra) in rec.blocks.iter().flat_map(|b| b.packages()) {
        let (key, evr) = match crate::pkgdb::rpm::split_nevra(nevra) {
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
        let (_tmp, root) = SysRoot::scratch();
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
        let (_tmp, root) = SysRoot::scratch();
        assert_eq!(
            super::super::finish::run(&root, &Family::Dnf, 0).unwrap(),
            crate::exit::Outcome::Done
        );
    }

    #[test]
    fn families_have_their_own_dir_and_unit() {
        assert_ne!(Family::Dnf.dir(), Family::Pacman.dir());
        assert!(Family::Dnf.unit().ends_with(".service"));
        assert_eq!(Family::Pacman.subcommand(), "pacman-hook");
    }
}
