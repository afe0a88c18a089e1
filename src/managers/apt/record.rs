//! apt's view of a transaction record under `/run/restart-stale/apt/`.
//!
//! Each `Pre-Install-Pkgs` run appends one block to the spool
//! ([`crate::transaction::spool`]), which `finish` takes. On disk it is
//! the one record format every hook writes ([`crate::transaction::record`]):
//! `source apt`, `command`, `auto-restart`, one `action` line per
//! protocol-3 action, `list` lines for file lists copied before dpkg ran,
//! and `error` lines for input we could not parse. This module turns
//! those facts into typed actions and back.

use super::protocol::{self, Action};
use crate::transaction::record::{self as facts, Fact, Source};
use anyhow::Result;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Where records live, inside the root.
pub const DIR: &str = "/run/restart-stale/apt";

/// What one `Pre-Install-Pkgs` run recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub time: u64,
    pub pid: u32,
    pub command: Option<String>,
    pub auto_restart: bool,
    /// `RestartStale::Reexec`: PID 1 may be re-executed.
    pub reexec: bool,
    pub actions: Vec<Action>,
    /// `(pkg:arch, path)` from file lists copied before dpkg ran.
    pub lists: Vec<(String, String)>,
    pub errors: Vec<String>,
    /// Units apt runs in, never restarted under it.
    pub protect: Vec<String>,
}

impl Block {
    pub fn new(time: u64, pid: u32) -> Self {
        Block {
            time,
            pid,
            command: None,
            auto_restart: true,
            reexec: true,
            actions: Vec::new(),
            lists: Vec::new(),
            errors: Vec::new(),
            protect: Vec::new(),
        }
    }

    /// The block in the record format.
    pub(crate) fn to_facts(&self) -> facts::Block {
        let mut f = vec![Fact::Source(Source::of("apt"))];
        f.extend(self.command.clone().map(Fact::Command));
        f.push(Fact::AutoRestart(self.auto_restart));
        // Only when off: records of the default stay as they were.
        if !self.reexec {
            f.push(Fact::Reexec(false));
        }
        f.extend(self.actions.iter().map(|a| Fact::Action(a.to_string())));
        f.extend(self.lists.iter().map(|(p, l)| Fact::List(p.clone(), l.clone())));
        f.extend(self.errors.iter().cloned().map(Fact::Error));
        f.extend(self.protect.iter().cloned().map(Fact::Protect));
        facts::Block {
            time: self.time,
            pid: self.pid,
            facts: f,
        }
    }

    /// The block as record text, ending with `end`.
    pub fn render(&self) -> String {
        self.to_facts().render()
    }

    /// apt's view of a recorded block; an action line that does not parse
    /// is a problem naming the block, and is skipped.
    pub(crate) fn from_facts(b: &facts::Block, problems: &mut Vec<String>) -> Block {
        let mut out = Block::new(b.time, b.pid);
        for f in &b.facts {
            match f {
                Fact::Command(c) => out.command = Some(c.clone()),
                Fact::AutoRestart(on) => out.auto_restart &= on,
                Fact::Reexec(on) => out.reexec &= on,
                Fact::Action(line) => match protocol::parse_action(line) {
                    Ok(a) => out.actions.push(a),
                    Err(e) => problems.push(format!(
                        "the record of apt run {} (pid {}): {e}: {line:?}",
                        b.time, b.pid
                    )),
                },
                Fact::List(pkg, path) => out.lists.push((pkg.clone(), path.clone())),
                Fact::Error(e) => out.errors.push(e.clone()),
                Fact::Protect(u) => out.protect.push(u.clone()),
                Fact::Source(s) if s.name() == "apt" => {}
                other => problems.push(format!(
                    "the record of apt run {} (pid {}): not an apt fact: {other}",
                    b.time, b.pid
                )),
            }
        }
        out
    }
}

/// The taken records, in apt's view.
pub type Record = facts::Record<Block>;

/// Parses record text as [`facts::Record::parse`] does, then reads apt's
/// facts.
pub fn parse(text: &str, source: &str) -> Record {
    from_facts(facts::Record::parse(text, source))
}

fn from_facts(rec: facts::Record) -> Record {
    let mut problems = rec.problems;
    let blocks = rec.blocks.iter().map(|b| Block::from_facts(b, &mut problems)).collect();
    Record { blocks, problems }
}

impl Record {
    /// Automatic restarts are on only if every run asked for them.
    pub fn auto_restart(&self) -> bool {
        self.blocks.iter().all(|b| b.auto_restart)
    }

    /// PID 1 may be re-executed only if no run turned it off.
    pub fn reexec(&self) -> bool {
        self.blocks.iter().all(|b| b.reexec)
    }

    /// `pkg:arch` of every recorded package, sorted, once each.
    pub fn packages(&self) -> BTreeSet<String> {
        let mut set = BTreeSet::new();
        for a in self.blocks.iter().flat_map(|b| &b.actions) {
            for arch in a.archs() {
                set.insert(format!("{}:{arch}", a.package));
            }
        }
        set
    }
}

/// Reads and parses taken files into one record.
pub(crate) fn read_all(files: &[PathBuf]) -> Result<Record> {
    Ok(from_facts(facts::Record::read_all(files)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> Block {
        let mut b = Block::new(1_763_776_212, 4242);
        b.command = Some("apt-get -y upgrade".into());
        b.actions
            .push(protocol::parse_action("libdemo1 1.0 amd64 same < 2.0 amd64 same /r/libdemo1.deb").unwrap());
        b.actions
            .push(protocol::parse_action("demod 2.0 amd64 none > - - none **REMOVE**").unwrap());
        b.lists.push(("demod:amd64".into(), "/usr/sbin/demo d".into()));
        b.errors.push("stdin:9: bad\nline".into());
        b
    }

    #[test]
    fn blocks_round_trip() {
        let b = block();
        let text = b.render();
        assert!(text.contains("error stdin:9: bad?line\n"), "{text}");
        let rec = parse(&text, "pending");
        assert_eq!(rec.problems, Vec::<String>::new());
        let mut expected = b.clone();
        expected.errors = vec!["stdin:9: bad?line".into()];
        assert_eq!(rec.blocks, vec![expected]);
        assert_eq!(
            rec.packages().into_iter().collect::<Vec<_>>(),
            ["demod:amd64", "libdemo1:amd64"]
        );
    }

    #[test]
    fn auto_restart_off_wins_and_bad_lines_are_reported() {
        let mut off = block();
        off.auto_restart = false;
        let text = format!("stray\n{}{}begin x 1\nfrobnicate\n", block().render(), off.render());
        let rec = parse(&text, "taken.1");
        assert_eq!(rec.blocks.len(), 2);
        assert!(!rec.auto_restart());
        let lines: Vec<_> = rec.problems.iter().map(|p| p.split(':').nth(1).unwrap()).collect();
        // Each block is 9 lines: begin, source, command, auto-restart, two
        // actions, a list, an error, end.
        assert_eq!(lines, ["1", "20", "21"], "{:?}", rec.problems);
    }
}
