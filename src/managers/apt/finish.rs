//! `apt-hook finish`: what `restart-stale-apt.service` runs.
//!
//! It waits until no package manager holds the dpkg frontend lock, takes
//! the record by renaming it, derives the changed files from the recorded
//! packages' lists, and runs the ordinary scan-plan-restart with them
//! (report only when the admin turned automatic restarts off). Records
//! that arrive while it works are taken in a further round, so a second
//! transaction right behind the first is not left waiting.

use super::dpkg;
use super::record::{self, Record};
use super::{Dpkg, AUTO_RESTART_KEY, FINISH_UNIT, FRONTEND_LOCK};
use crate::exit::Outcome;
use crate::run::Packages;
use crate::system::sysroot::SysRoot;
use crate::systemd::Bus;
use crate::transaction::finish;
use crate::transaction::wait::{self, Wait};
use crate::transaction::{Manager, Prepared};
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How many packages the summary line names before it abbreviates.
const SHOWN_PACKAGES: usize = 20;

pub fn run(bus: &Bus, root: &SysRoot, verbose: u8) -> Result<Outcome> {
    run_with(bus, root, verbose, Wait::default())
}

pub(crate) fn run_with(bus: &Bus, root: &SysRoot, verbose: u8, wait: Wait) -> Result<Outcome> {
    finish::run(root, &Apt { wait }, bus, verbose)
}

/// apt's side of the finish loop: wait for the dpkg frontend lock to be
/// free, then derive the changed files from the recorded packages.
pub struct Apt {
    pub wait: Wait,
}

/// apt as the hooks and the manual run start its finish.
pub static APT: Apt = Apt { wait: Wait::LOCK };

impl Manager for Apt {
    fn id(&self) -> &'static str {
        "apt"
    }

    fn a_transaction(&self) -> String {
        "an apt transaction".to_string()
    }

    fn packages(&self) -> Option<&'static dyn Packages> {
        Some(&Dpkg)
    }

    fn summary(&self, files: &[PathBuf]) -> String {
        match record::read_all(files) {
            Ok(rec) => summary(&rec),
            Err(e) => format!("an apt transaction whose record cannot be read ({e:#})"),
        }
    }

    fn restarts_off(&self) -> String {
        // The words docs/apt.md and the admin's journal searches know.
        format!("({AUTO_RESTART_KEY} \"false\")")
    }

    fn ready(&self, root: &SysRoot) -> bool {
        let lock_path = root.path(FRONTEND_LOCK);
        if wait::held(&lock_path).unwrap_or(false) {
            log::info!("waiting until the package manager is done ({FRONTEND_LOCK} is locked)");
        }
        let free = wait::wait_until_free(|| wait::held(&lock_path), self.wait);
        if !free {
            log::warn!(
                "{FRONTEND_LOCK} is still locked after {} s; {FINISH_UNIT} acts at the next apt run",
                self.wait.timeout.as_secs()
            );
        }
        free
    }

    fn prepare(&self, root: &SysRoot, files: &[PathBuf]) -> Result<Option<Prepared>> {
        let rec = record::read_all(files)?;
        for p in &rec.problems {
            log::warn!("{p}");
        }
        for e in rec.blocks.iter().flat_map(|b| &b.errors) {
            log::warn!("from the apt hook: {e}");
        }
        let packages = packages(&rec);
        if packages.is_empty() {
            log::info!("the recorded transaction names no package: nothing to do");
            return Ok(None);
        }
        log::info!("{}", summary(&rec));
        let captured: Vec<_> = rec.blocks.iter().flat_map(|b| b.lists.iter().cloned()).collect();
        let d = dpkg::derive(root, &packages, &captured);
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
        Ok(Some(Prepared {
            changed: d.set,
            auto_restart: rec.auto_restart(),
            reexec: rec.reexec(),
            protect: rec.blocks.iter().flat_map(|b| b.protect.iter().cloned()).collect(),
            upgrades: Some(upgrades(&rec)),
        }))
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

/// Every recorded package with the version it had before the first
/// action and after the last (apt's protocol 3 names both).
pub(crate) fn upgrades(rec: &Record) -> crate::core::fixes::Upgrades {
    let mut ups = crate::core::fixes::Upgrades::default();
    for a in rec.blocks.iter().flat_map(|b| &b.actions) {
        let arch = a.current.as_ref().or(a.new.as_ref()).map(|v| v.arch.as_str());
        let from = a.current.as_ref().map(|v| v.version.as_str());
        let to = a.new.as_ref().map(|v| v.version.as_str());
        ups.add(&a.package, arch, from, to);
    }
    ups
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
    use crate::managers::apt::protocol::parse_action;
    use crate::managers::apt::record::Block;

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
}
