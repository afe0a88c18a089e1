//! `restart-stale replay`: do now what the hook would have done for a
//! past transaction. Each package manager's history reader (in its own
//! folder under `crate::managers`) turns a past transaction into a
//! [`Replay`], with what is shared here: the rotated log files, the
//! package and time formats, the plain file list; then the usual scan,
//! plan and restart run with it.
//!
//! Replaying is safe to repeat: the plan only counts files a process
//! *still* maps in an old version, so a unit restarted since the
//! transaction is no longer affected by it.

pub mod files;
pub mod logfiles;
pub mod package;
pub mod stamp;

use crate::core::changed::ChangedSet;
use crate::exit::Outcome;
use crate::run::{self, Mode, Options};
use crate::system::sysroot::SysRoot;
use anyhow::Result;
use std::path::Path;

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

/// Reads the generations of `log` newest first, parsing each, until
/// `enough` (given everything so far, oldest first) says older ones cannot
/// matter; so old rotations, and their damage, are only read if needed.
pub(crate) fn read_back<T>(
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

impl Replay {
    /// Package databases know today's file names only: a library whose
    /// name carries its version is matched by its soname stem too.
    pub fn with_soname_stems(mut self) -> Replay {
        self.set = std::mem::take(&mut self.set).with_soname_stems();
        self
    }
}

/// A plain list of paths, one per line ([`files::load`]).
pub(crate) fn file_list(path: &Path) -> Result<Replay> {
    let mut r = Replay::default();
    let paths = files::load(path, &mut r.warnings)?;
    r.described.push(format!(
        "replaying the file list {}: {} path(s)",
        path.display(),
        paths.len()
    ));
    paths.iter().for_each(|p| r.set.insert(p));
    Ok(r)
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
pub fn run(root: &SysRoot, r: Replay, mut opts: Options, mode: Mode, verbose: u8) -> Result<Outcome> {
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
