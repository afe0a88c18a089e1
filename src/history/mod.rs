//! `restart-stale replay`: do now what the hook would have done for a
//! past transaction. One file per source of history turns it into a
//! changed file set; then the usual scan, plan and restart run with it.
//!
//! Replaying is safe to repeat: the plan only counts files a process
//! *still* maps in an old version, so a unit restarted since the
//! transaction is no longer affected by it.

pub mod apt_history;
pub mod dnf;
pub mod dpkg_log;
pub mod files;
pub mod logfiles;
pub mod package;
pub mod stamp;

use crate::core::changed::ChangedSet;
use crate::exit::Outcome;
use crate::pkgdb::dpkg;
use crate::pkgdb::rpm::{self, FileLister};
use crate::pkgdb::swupd;
use crate::run::{self, Mode, Options};
use crate::system::sysroot::SysRoot;
use anyhow::Result;
use package::PackageChange;
use stamp::Stamp;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Where the transaction is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The `nth` newest apt run (default: the last), among those since
    /// `since`; with `since` alone, all of them.
    AptHistory {
        nth: Option<usize>,
        since: Option<Stamp>,
    },
    /// Every dpkg install, upgrade and remove since the time.
    DpkgLog {
        since: Stamp,
    },
    Dnf(dnf::Selector),
    /// A swupd update from this version to the installed one.
    Swupd {
        from: u32,
    },
    /// A plain list of paths.
    Files(PathBuf),
}

/// A replayed transaction as a changed set, and how it came about.
#[derive(Debug, Default)]
pub struct Replay {
    pub set: ChangedSet,
    /// One line per transaction replayed.
    pub described: Vec<String>,
    /// Packages not installed now, whose files are therefore unknown.
    pub unknown: Vec<String>,
    /// Corrupt lines and unreadable files, skipped.
    pub warnings: Vec<String>,
    /// The packages with their old and new versions, for the fixes
    /// annotation; `None` where the source names no versions.
    pub upgrades: Option<crate::core::fixes::Upgrades>,
}

/// Reads `source` and derives the changed set; `lister` lists the files
/// of rpm packages.
pub fn changed_set(root: &SysRoot, source: &Source, lister: &dyn FileLister) -> Result<Replay> {
    let mut r = Replay::default();
    match source {
        // Package databases know today's file names only: a library whose
        // name carries its version is matched by its soname stem too.
        Source::AptHistory { nth, since } => {
            apt(root, *nth, *since, &mut r)?;
            r.set = std::mem::take(&mut r.set).with_soname_stems();
        }
        Source::DpkgLog { since } => {
            dpkg(root, *since, &mut r)?;
            r.set = std::mem::take(&mut r.set).with_soname_stems();
        }
        Source::Dnf(sel) => {
            dnf_rpm(root, *sel, lister, &mut r)?;
            r.set = std::mem::take(&mut r.set).with_soname_stems();
        }
        Source::Swupd { from } => {
            let u = swupd::derive(root, *from, &mut r.warnings)?;
            r.described.push(format!(
                "replaying the swupd update from {from} to {}: {} manifest(s)",
                u.current,
                u.manifests.len()
            ));
            u.paths.iter().for_each(|p| r.set.insert(p));
        }
        Source::Files(path) => {
            let paths = files::load(path, &mut r.warnings)?;
            r.described.push(format!(
                "replaying the file list {}: {} path(s)",
                path.display(),
                paths.len()
            ));
            paths.iter().for_each(|p| r.set.insert(p));
        }
    }
    Ok(r)
}

/// Reads the generations of `log` newest first, parsing each, until
/// `enough` (given everything so far, oldest first) says older ones cannot
/// matter; so old rotations, and their damage, are only read if needed.
fn read_back<T>(
    root: &SysRoot,
    log: &str,
    warnings: &mut Vec<String>,
    parse: impl Fn(&str, &str, &mut Vec<String>) -> Vec<T>,
    enough: impl Fn(&[T]) -> bool,
) -> Result<Vec<T>> {
    let mut items: Vec<T> = Vec::new();
    for name in logfiles::generations(root, log)? {
        let file = logfiles::read(root, &name, warnings);
        let mut older = parse(&file.text, &file.name, warnings);
        older.append(&mut items);
        items = older;
        if enough(&items) {
            break;
        }
    }
    Ok(items)
}

fn apt(root: &SysRoot, nth: Option<usize>, since: Option<Stamp>, r: &mut Replay) -> Result<()> {
    let all = read_back(
        root,
        apt_history::HISTORY_LOG,
        &mut r.warnings,
        apt_history::parse,
        |ts| match since {
            Some(since) => ts.iter().find_map(|t| t.start).is_some_and(|s| s < since),
            None => ts.len() >= nth.unwrap_or(1),
        },
    )?;
    let chosen = apt_history::select(&all, since, nth)?;
    if let (true, Some(since)) = (chosen.is_empty(), since) {
        r.described.push(format!("no apt transaction since {since}"));
    }
    for t in &chosen {
        let when = t.start.map_or_else(|| "an unknown time".to_string(), |s| s.to_string());
        let cmd = t.commandline.as_deref().unwrap_or("no command line");
        r.described.push(format!(
            "replaying the apt transaction of {when} ({cmd}) at {}: {} package(s)",
            t.origin,
            t.packages.len()
        ));
    }
    deb_files(root, chosen.iter().flat_map(|t| &t.packages), r);
    Ok(())
}

fn dpkg(root: &SysRoot, since: Stamp, r: &mut Replay) -> Result<()> {
    let all = read_back(root, dpkg_log::DPKG_LOG, &mut r.warnings, dpkg_log::parse, |es| {
        es.first().is_some_and(|e| e.at < since)
    })?;
    let chosen = dpkg_log::since(&all, since);
    r.described.push(match (chosen.first(), chosen.last()) {
        (Some(a), Some(b)) => format!(
            "replaying {} dpkg action(s) since {since}: from {} at {} to {} at {}",
            chosen.len(),
            a.at,
            a.origin,
            b.at,
            b.origin
        ),
        _ => format!("no dpkg action since {since}"),
    });
    deb_files(root, chosen.iter().map(|e| &e.package), r);
    Ok(())
}

/// The current files of the Debian packages in `changes`, each once.
fn deb_files<'a>(root: &SysRoot, changes: impl Iterator<Item = &'a PackageChange>, r: &mut Replay) {
    let changes: Vec<&PackageChange> = changes.collect();
    let mut ups = crate::core::fixes::Upgrades::default();
    for p in &changes {
        ups.add(&p.name, p.arch.as_deref(), p.old.as_deref(), p.new.as_deref());
    }
    r.upgrades = Some(ups);
    let packages: BTreeSet<(String, Vec<String>)> = changes
        .iter()
        .map(|p| (p.name.clone(), p.arch.iter().cloned().collect()))
        .collect();
    let packages: Vec<_> = packages.into_iter().collect();
    let d = dpkg::derive(root, &packages, &[]);
    r.set = d.set;
    // A package without an arch (pre-multiarch dpkg.log) is listed as `name:`.
    r.unknown
        .extend(d.without_list.iter().map(|p| p.trim_end_matches(':').to_string()));
    r.warnings.extend(d.problems);
}

fn dnf_rpm(root: &SysRoot, sel: dnf::Selector, lister: &dyn FileLister, r: &mut Replay) -> Result<()> {
    let (db, conn, schema) = dnf::pick(root)?;
    let t = dnf::load(&conn, schema, sel, db, &mut r.warnings)?;
    let when = Stamp::from_unix(t.begin).map_or_else(|| t.begin.to_string(), |s| s.to_string());
    let cmd = t.command.as_deref().unwrap_or("no command line");
    r.described.push(format!(
        "replaying dnf transaction {} of {when} ({cmd}) from {db}: {} package(s)",
        t.id,
        t.items.len()
    ));
    let inbound: Vec<&dnf::Item> = t.items.iter().filter(|i| i.direction == dnf::Direction::In).collect();
    // Packages that left and did not come back in another version.
    for out in t.items.iter().filter(|i| i.direction == dnf::Direction::Out) {
        if !inbound.iter().any(|i| i.name == out.name && i.arch == out.arch) {
            r.unknown
                .push(rpm::nevra(&out.name, &out.version, &out.release, &out.arch));
        }
    }
    let nevras: Vec<String> = inbound
        .iter()
        .map(|i| rpm::nevra(&i.name, &i.version, &i.release, &i.arch))
        .collect();
    if nevras.is_empty() {
        return Ok(());
    }
    let listing = lister.list(root, &nevras)?;
    listing
        .files
        .iter()
        .filter(|f| !dpkg::is_dir(root, f))
        .for_each(|f| r.set.insert(f));
    r.unknown.extend(listing.not_installed);
    r.warnings
        .extend(listing.unexpected.iter().map(|l| format!("rpm -ql: {l}")));
    Ok(())
}

/// At most `n` names, then how many more.
fn some_of(names: &[String], n: usize) -> String {
    let mut s = names.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > n {
        s.push_str(&format!(" and {} more", names.len() - n));
    }
    s
}

/// `restart-stale replay`: derive the set, then scan, plan and act as the
/// hook does; returns the exit code.
pub fn run(root: &SysRoot, source: &Source, mut opts: Options, mode: Mode, verbose: u8) -> Result<Outcome> {
    let r = changed_set(root, source, &rpm::RpmCommand::REPLAY)?;
    for w in &r.warnings {
        log::warn!("{w}");
    }
    for d in &r.described {
        log::info!("{d}");
    }
    if !r.unknown.is_empty() {
        log::info!(
            "{} package(s) not installed now, their files are unknown: {}",
            r.unknown.len(),
            some_of(&r.unknown, 10)
        );
    }
    log::info!("changed set: {} file(s)", r.set.len());
    opts.changed = Some(r.set);
    opts.upgrades = r.upgrades;
    run::execute(root, &opts, mode, verbose)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_shortened() {
        let names: Vec<String> = (1..=4).map(|i| format!("p{i}")).collect();
        assert_eq!(some_of(&names, 10), "p1, p2, p3, p4");
        assert_eq!(some_of(&names, 2), "p1, p2 and 2 more");
    }
}
