//! `pacman-hook`: the alpm hook
//! (`/usr/share/libalpm/hooks/restart-stale.hook`, alpm-hooks(5)).
//!
//! The hook has `Type = Path`, `Target = usr/*`, the three operations and
//! `NeedsTargets`, so after the transaction (`When = PostTransaction`)
//! pacman runs us once with every matched path on stdin: one per line,
//! relative to the root (no leading `/`), directories with a trailing
//! `/`. Install covers new files, Upgrade files in both versions, Remove
//! files of removed packages and files an upgrade dropped. We record
//! them and start `restart-stale-pacman.service`; `pacman-hook finish` is
//! that unit's command.

use crate::exit::Outcome;
use crate::system::sysroot::SysRoot;
use crate::systemd::Bus;
use crate::transaction::record::{Block, Fact, Source};
use crate::transaction::{self, launch, process};
use anyhow::Result;

/// Far more than the paths of any real transaction.
const STDIN_LIMIT: u64 = 256 << 20;

/// The targets pacman passed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Targets {
    /// Absolute paths of the non-directory targets.
    pub files: Vec<String>,
    pub directories: usize,
    /// `SOURCE:LINE: what: line` for lines that are not targets.
    pub errors: Vec<String>,
}

/// Parses pacman's target list; `source` names it in errors.
pub fn parse(data: &[u8], source: &str) -> Targets {
    let mut t = Targets::default();
    let data = data.strip_suffix(b"\n").unwrap_or(data);
    if data.is_empty() {
        return t;
    }
    for (n, raw) in data.split(|&b| b == b'\n').enumerate() {
        match target(raw) {
            Ok(Some(path)) => t.files.push(path),
            Ok(None) => t.directories += 1,
            Err(why) => {
                let shown = String::from_utf8_lossy(raw);
                t.errors.push(format!("{source}:{}: {why}: {shown:?}", n + 1));
            }
        }
    }
    t
}

/// One line: `Some(absolute path)`, or `None` for a directory.
fn target(raw: &[u8]) -> Result<Option<String>, &'static str> {
    let text = std::str::from_utf8(raw).map_err(|_| "not valid UTF-8")?;
    if text.is_empty() {
        return Err("empty line");
    }
    if text.starts_with('/') {
        return Err("starts with '/'; pacman passes paths relative to the root");
    }
    if text.chars().any(char::is_control) {
        return Err("control character in the path");
    }
    if text.split('/').any(|c| c == "." || c == "..") {
        return Err("'.' or '..' in the path");
    }
    if text.ends_with('/') {
        return Ok(None);
    }
    Ok(Some(format!("/{text}")))
}

/// `pacman-hook`, with pacman's targets on stdin; always [`Outcome::Done`].
pub(crate) fn record_targets(bus: &Bus, root: &SysRoot, verbose: u8) -> Outcome {
    transaction::guard("pacman-hook", || record(bus, root, verbose))
}

/// `pacman-hook finish`, the command of `restart-stale-pacman.service`.
pub fn finish(bus: &Bus, root: &SysRoot, verbose: u8) -> Outcome {
    transaction::finish::unit_step("pacman-hook finish", || {
        transaction::finish::run(root, &Pacman, bus, verbose)
    })
}

/// The block for a parsed target list; `manager` is pacman.
pub fn block(t: Targets, manager: Option<process::Process>) -> Block {
    let mut facts = vec![Fact::Source(Source::of("pacman"))];
    facts.extend(manager.map(Fact::Manager));
    facts.extend(t.files.into_iter().map(Fact::File));
    facts.extend(t.errors.into_iter().map(Fact::Error));
    Block::new(facts)
}

fn record(bus: &Bus, root: &SysRoot, verbose: u8) -> Result<()> {
    let data = crate::transaction::read_stdin(STDIN_LIMIT)?;
    if let Some(why) = launch::not_here(root) {
        log::info!("{why}: not restarting anything");
        return Ok(());
    }
    let t = parse(&data, "stdin");
    for e in &t.errors {
        log::error!("{e}");
    }
    log::debug!("{} paths and {} directories from pacman", t.files.len(), t.directories);
    // pacman runs hooks as its children (alpm's _alpm_run_chroot).
    let manager = process::parent(root)
        .map_err(|e| log::debug!("not waiting for pacman: {e:#}"))
        .ok();
    launch::commit(bus, root, &Pacman, &block(t, manager), verbose)
}

/// pacman's side of the transaction layer: its id names the spool, unit
/// and subcommand; the record's facts are the changed set.
pub struct Pacman;

impl crate::transaction::Manager for Pacman {
    fn id(&self) -> &'static str {
        "pacman"
    }

    fn packages(&self) -> Option<&'static dyn crate::run::Packages> {
        None
    }

    /// pacman's packages carry no changelog we read: each stale unit's
    /// fixes are unknown, and said so.
    fn upgrades(&self, _rec: &crate::transaction::record::Record) -> Option<crate::core::fixes::Upgrades> {
        Some(crate::core::fixes::Upgrades {
            family: crate::core::fixes::Family::Unsupported("pacman packages carry no changelog"),
            packages: vec![crate::core::fixes::Upgrade::default()],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_become_absolute_and_directories_are_counted() {
        let t = parse(b"usr/\nusr/lib/\nusr/lib/libdemo.so.1\nusr/bin/demo d\n", "stdin");
        assert_eq!(t.files, ["/usr/lib/libdemo.so.1", "/usr/bin/demo d"]);
        assert_eq!(t.directories, 2);
        assert!(t.errors.is_empty());
        assert_eq!(parse(b"", "stdin"), Targets::default());
        assert_eq!(parse(b"usr/bin/x", "stdin").files, ["/usr/bin/x"]);
    }

    #[test]
    fn bad_lines_are_named() {
        let t = parse(
            b"usr/bin/a\n/usr/bin/b\n\nusr/../etc/x\nusr/\x01x\nusr/\xff\nusr/bin/c\n",
            "stdin",
        );
        assert_eq!(t.files, ["/usr/bin/a", "/usr/bin/c"]);
        let lines: Vec<&str> = t.errors.iter().map(|e| e.split(':').nth(1).unwrap()).collect();
        assert_eq!(lines, ["2", "3", "4", "5", "6"], "{:?}", t.errors);
        assert!(t.errors[0].contains("relative to the root"), "{:?}", t.errors);
    }
}
