//! `dnf-hook transaction FILE`: the dnf 4 plugin's hand-over.
//!
//! The plugin (`restart_stale.py`) runs inside dnf's `transaction()` hook,
//! after the rpm transaction. It writes FILE and runs us with it. FILE is
//! text, one fact per line, in the record's words ([`parse_fact`]):
//!
//! ```text
//! restart-stale-dnf-plugin 1           format and version, always first
//! pid 4000                             dnf's own pid
//! command dnf -y upgrade               optional
//! auto-restart false                   optional; the plugin's config says so
//! package in libdemo-0:2.0-1.x86_64    installed by the transaction
//! package out libdemo-0:1.0-1.x86_64   removed, upgraded away, obsoleted
//! file /usr/lib64/libdemo.so.1         from the rpmdb, for both directions
//! ```
//!
//! The outgoing packages' lists were read in `pre_transaction()`, while
//! the rpmdb still had them. Lines that make no sense are logged as
//! `FILE:LINE: …` and kept in the record as `error` lines; the rest is
//! used. A file in another format or version is refused as a whole.

use crate::system::sysroot::SysRoot;
use crate::systemd::Bus;
use crate::transaction::launch;
use crate::transaction::process;
use crate::transaction::record::{parse_fact, Block, Fact, Source};
use anyhow::{bail, Context, Result};
use std::path::Path;

/// The first line of a hand-over file this binary understands.
pub const HEADER: &str = "restart-stale-dnf-plugin 1";

/// A parsed hand-over file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Handover {
    pub pid: Option<u32>,
    pub facts: Vec<Fact>,
    /// `SOURCE:LINE: what: line` for each line that was not used.
    pub errors: Vec<String>,
}

/// Parses a hand-over file; `source` names it in errors. Fails only when
/// the header says it is not ours.
pub fn parse(data: &[u8], source: &str) -> Result<Handover> {
    let mut lines = data.split(|&b| b == b'\n').enumerate();
    let first = lines.next().map(|(_, l)| l).unwrap_or_default();
    if first != HEADER.as_bytes() {
        bail!(
            "{source}:1: expected {HEADER:?}, found {:?} (a plugin from another version?)",
            String::from_utf8_lossy(first)
        );
    }
    let mut h = Handover::default();
    for (n, raw) in lines {
        if raw.is_empty() {
            continue; // the final newline
        }
        if let Err(why) = line(&mut h, raw) {
            let shown = String::from_utf8_lossy(raw);
            h.errors.push(format!("{source}:{}: {why}: {shown:?}", n + 1));
        }
    }
    Ok(h)
}

fn line(h: &mut Handover, raw: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(raw).map_err(|_| "not valid UTF-8".to_string())?;
    if let Some(pid) = text.strip_prefix("pid ") {
        if h.pid.is_some() {
            return Err("a second pid line".into());
        }
        h.pid = Some(pid.parse().map_err(|_| "bad pid")?);
        return Ok(());
    }
    let fact = parse_fact(text)?;
    match fact {
        Fact::Command(_) | Fact::AutoRestart(_) | Fact::Package(..) | Fact::File(_) => {
            h.facts.push(fact);
            Ok(())
        }
        _ => Err("not a line the plugin writes".into()),
    }
}

/// The record block for a hand-over.
pub fn block(root: &SysRoot, h: Handover) -> Block {
    let mut facts = vec![Fact::Source(Source::of("dnf4"))];
    match h.pid.map(|pid| process::identify(root, pid)) {
        Some(Ok(p)) => facts.push(Fact::Manager(p)),
        Some(Err(e)) => log::debug!("not waiting for dnf: {e:#}"),
        None => log::warn!("the dnf plugin gave no pid; not waiting for dnf to exit"),
    }
    facts.extend(h.facts);
    facts.extend(h.errors.into_iter().map(Fact::Error));
    Block::new(facts)
}

pub fn run(bus: &Bus, root: &SysRoot, file: &Path, verbose: u8) -> Result<()> {
    if let Some(why) = launch::not_here(root) {
        log::info!("{why}: not restarting anything");
        return Ok(());
    }
    let data = std::fs::read(file).with_context(|| format!("failed to read {}", file.display()))?;
    let h = parse(&data, &file.display().to_string())?;
    for e in &h.errors {
        log::error!("{e}");
    }
    let b = block(root, h);
    launch::commit(bus, root, &super::DNF, &b, verbose)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::record::Direction;

    #[test]
    fn reads_what_the_plugin_writes() {
        let text = format!(
            "{HEADER}\npid 4000\ncommand dnf -y upgrade\nauto-restart false\n\
             package in libdemo-0:2.0-1.x86_64\npackage out libdemo-0:1.0-1.x86_64\n\
             file /usr/lib64/libdemo.so.1\nfile /usr/share/doc/a b\n"
        );
        let h = parse(text.as_bytes(), "/tmp/x").unwrap();
        assert!(h.errors.is_empty(), "{:?}", h.errors);
        assert_eq!(h.pid, Some(4000));
        assert_eq!(
            h.facts,
            [
                Fact::Command("dnf -y upgrade".into()),
                Fact::AutoRestart(false),
                Fact::Package(Direction::In, "libdemo-0:2.0-1.x86_64".into()),
                Fact::Package(Direction::Out, "libdemo-0:1.0-1.x86_64".into()),
                Fact::File("/usr/lib64/libdemo.so.1".into()),
                Fact::File("/usr/share/doc/a b".into()),
            ]
        );
    }

    #[test]
    fn bad_lines_are_named_and_skipped() {
        let mut data = format!(
            "{HEADER}\npid x\nfile usr/lib\nsource dnf4\nmanager 1 2\nbegin 1 2\n\
             package up foo-1-1.x86_64\npid 4\npid 5\nfile /ok\n"
        )
        .into_bytes();
        data.extend_from_slice(b"file /bad\xff\n");
        let h = parse(&data, "hand-over").unwrap();
        let lines: Vec<&str> = h.errors.iter().map(|e| e.split(':').nth(1).unwrap()).collect();
        assert_eq!(lines, ["2", "3", "4", "5", "6", "7", "9", "11"], "{:?}", h.errors);
        assert!(
            h.errors[1].contains("\"usr/lib\" is not an absolute path"),
            "{:?}",
            h.errors
        );
        assert!(h.errors[7].contains("not valid UTF-8"), "{:?}", h.errors);
        assert_eq!(h.pid, Some(4));
        assert_eq!(h.facts, [Fact::File("/ok".into())]);
    }

    #[test]
    fn another_format_is_refused() {
        for data in [&b""[..], b"restart-stale-dnf-plugin 2\n", b"pid 1\n"] {
            let err = parse(data, "f").unwrap_err().to_string();
            assert!(err.starts_with("f:1: expected"), "{err}");
        }
    }
}
