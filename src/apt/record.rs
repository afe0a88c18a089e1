//! The transaction record under `/run/restart-stale/apt/`.
//!
//! Each `Pre-Install-Pkgs` run appends one block to the spool
//! ([`crate::transaction::spool`]), which `finish` takes.
//!
//! Format, one line per fact (text, so an admin can read it):
//!
//! ```text
//! begin <unix-seconds> <pid>
//! command <apt's CommandLine::AsString, escaped>
//! auto-restart true|false
//! action <the protocol-3 action line, as apt wrote it>
//! list <pkg>:<arch> <path>      (file list of a package about to change)
//! error <a stdin line we could not parse, with its line number>
//! end
//! ```

use super::protocol::{self, Action};
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
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
    pub actions: Vec<Action>,
    /// `(pkg:arch, path)` from file lists copied before dpkg ran.
    pub lists: Vec<(String, String)>,
    pub errors: Vec<String>,
}

impl Block {
    pub fn new(time: u64, pid: u32) -> Self {
        Block {
            time,
            pid,
            command: None,
            auto_restart: true,
            actions: Vec::new(),
            lists: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// The block as record text, ending with `end`.
    pub fn render(&self) -> String {
        let mut out = format!("begin {} {}\n", self.time, self.pid);
        if let Some(c) = &self.command {
            let _ = writeln!(out, "command {}", one_line(c));
        }
        let _ = writeln!(out, "auto-restart {}", self.auto_restart);
        for a in &self.actions {
            let _ = writeln!(out, "action {a}");
        }
        for (pkg, path) in &self.lists {
            let _ = writeln!(out, "list {pkg} {path}");
        }
        for e in &self.errors {
            let _ = writeln!(out, "error {}", one_line(e));
        }
        out.push_str("end\n");
        out
    }
}

/// For log-only text: keeps a record line a single line.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// A parsed record: its blocks and the lines that made no sense.
#[derive(Debug, Default)]
pub struct Record {
    pub blocks: Vec<Block>,
    pub problems: Vec<String>,
}

impl Record {
    /// Parses record text; `source` names it in problems. Bad lines are
    /// reported and skipped; a block missing its `end` (a writer that
    /// died) still counts.
    pub fn parse(text: &str, source: &str) -> Record {
        let mut rec = Record::default();
        for (n, line) in text.lines().enumerate() {
            if let Err(e) = rec.line(line) {
                rec.problems.push(format!("{source}:{}: {e}: {line:?}", n + 1));
            }
        }
        rec
    }

    fn line(&mut self, line: &str) -> Result<(), String> {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        if word == "begin" {
            let (t, p) = rest.split_once(' ').ok_or("begin needs a time and a pid")?;
            let time = t.parse().map_err(|_| "bad time")?;
            let pid = p.parse().map_err(|_| "bad pid")?;
            self.blocks.push(Block::new(time, pid));
            return Ok(());
        }
        let block = self.blocks.last_mut().ok_or("line before any begin")?;
        match word {
            "command" => block.command = Some(rest.to_string()),
            "auto-restart" => block.auto_restart = protocol::parse_bool(rest).ok_or("not a boolean")?,
            "action" => block.actions.push(protocol::parse_action(rest)?),
            "list" => {
                let (pkg, path) = rest.split_once(' ').ok_or("list needs a package and a path")?;
                if !path.starts_with('/') {
                    return Err("list path is not absolute".into());
                }
                block.lists.push((pkg.to_string(), path.to_string()));
            }
            "error" => block.errors.push(rest.to_string()),
            "end" => {}
            _ => return Err("unknown line".into()),
        }
        Ok(())
    }

    /// Automatic restarts are on only if every run asked for them.
    pub fn auto_restart(&self) -> bool {
        self.blocks.iter().all(|b| b.auto_restart)
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
pub fn read_all(files: &[PathBuf]) -> Result<Record> {
    let mut all = Record::default();
    for f in files {
        let data = fs::read(f).with_context(|| format!("failed to read {}", f.display()))?;
        let rec = Record::parse(&String::from_utf8_lossy(&data), &f.display().to_string());
        all.blocks.extend(rec.blocks);
        all.problems.extend(rec.problems);
    }
    Ok(all)
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
        let rec = Record::parse(&text, "pending");
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
        let rec = Record::parse(&text, "taken.1");
        assert_eq!(rec.blocks.len(), 2);
        assert!(!rec.auto_restart());
        let lines: Vec<_> = rec.problems.iter().map(|p| p.split(':').nth(1).unwrap()).collect();
        assert_eq!(lines, ["1", "18", "19"], "{:?}", rec.problems);
    }
}
