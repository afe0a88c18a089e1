//! The one record format of every hook (apt, dnf 4 and 5, pacman), one
//! line per fact, so an admin can read `/run/restart-stale/<manager>/pending`:
//!
//! ```text
//! begin <unix-seconds> <pid of the hook>
//! source apt|dnf4|dnf5|pacman|zypper
//! manager <pid> <start ticks>    the package manager process to wait for
//! command <its command line>
//! auto-restart true|false
//! reexec false                   apt: RestartStale::Reexec off (no PID 1 re-exec)
//! package in|out <nevra>         in: installed now; out: removed or replaced
//! file <absolute path>           changed by the transaction
//! action <protocol-3 line>       apt: one action, as apt wrote it
//! list <pkg>:<arch> <path>       apt: a file list copied before dpkg ran
//! protect <unit>                 a unit the package manager runs in
//! error <an input line we could not parse, with its line number>
//! end
//! ```
//!
//! The file is appended and taken through [`super::spool`], which does not
//! care about the format. Each package manager reads the facts it wrote
//! (apt parses its `action` lines itself).
//! [`parse_fact`] is shared with the hooks' input parsers, so the dnf4
//! plugin's hand-over file speaks the same words.

use super::process::Process;
use anyhow::{Context, Result};
use std::fmt::{self, Write as _};
use std::path::PathBuf;

/// Which hook wrote a block: its name, as the managers call their hooks
/// (`apt`, `dnf4`, `dnf5`, …). This layer knows no list of them: a name
/// is one lowercase word of at most [`MAX_SOURCE`] letters and digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source(String);

/// The longest source name a record may carry.
pub const MAX_SOURCE: usize = 16;

impl Source {
    /// The source a hook names itself by.
    pub fn of(name: &'static str) -> Source {
        Source(name.to_string())
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    fn parse(s: &str) -> Option<Self> {
        let word = !s.is_empty()
            && s.len() <= MAX_SOURCE
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && s.as_bytes()[0].is_ascii_lowercase();
        word.then(|| Source(s.to_string()))
    }
}

/// Whether a package is on the system after the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn word(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// One record line, `begin` and `end` aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    Source(Source),
    Manager(Process),
    Command(String),
    AutoRestart(bool),
    /// Whether PID 1 may be re-executed when it runs stale code; apt
    /// writes it only when the admin turned it off.
    Reexec(bool),
    Package(Direction, String),
    File(String),
    /// An apt protocol-3 action line, kept as apt wrote it.
    Action(String),
    /// `(pkg:arch, path)`: a line of a file list copied before dpkg ran.
    List(String, String),
    /// A unit the package manager runs in (apt-daily-upgrade.service,
    /// packagekit.service, dnf5daemon-server.service…): never restarted
    /// under it, even with an allow link.
    Protect(String),
    Error(String),
}

impl fmt::Display for Fact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fact::Source(s) => write!(f, "source {}", s.name()),
            Fact::Manager(p) => write!(f, "manager {p}"),
            Fact::Command(c) => write!(f, "command {}", one_line(c)),
            Fact::AutoRestart(b) => write!(f, "auto-restart {b}"),
            Fact::Reexec(b) => write!(f, "reexec {b}"),
            Fact::Package(d, n) => write!(f, "package {} {n}", d.word()),
            Fact::File(p) => write!(f, "file {p}"),
            Fact::Action(a) => write!(f, "action {}", one_line(a)),
            Fact::List(pkg, p) => write!(f, "list {pkg} {p}"),
            Fact::Protect(u) => write!(f, "protect {u}"),
            Fact::Error(e) => write!(f, "error {}", one_line(e)),
        }
    }
}

/// For free text: keeps a record line a single line.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// apt's boolean spellings (`StringToBool`), which the record and the
/// hooks' settings take too; `None` when unrecognised.
pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "with" | "on" | "enable" => Some(true),
        "0" | "no" | "false" | "without" | "off" | "disable" => Some(false),
        _ => None,
    }
}

/// A package name as the package manager wrote it: one word, printable,
/// not option-like.
pub(crate) fn valid_package(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('-') && s.bytes().all(|c| c.is_ascii_graphic())
}

/// Parses one fact line. The error says what is wrong, not where: the
/// caller adds the input name and line number.
pub(crate) fn parse_fact(line: &str) -> Result<Fact, String> {
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    match word {
        "source" => Source::parse(rest)
            .map(Fact::Source)
            .ok_or_else(|| "a source is one lowercase word".into()),
        "manager" => {
            let (pid, start) = rest.split_once(' ').ok_or("manager needs a pid and a start time")?;
            let pid = pid.parse().map_err(|_| "bad pid")?;
            let start = start.parse().map_err(|_| "bad start time")?;
            Ok(Fact::Manager(Process { pid, start }))
        }
        "command" => Ok(Fact::Command(rest.to_string())),
        "auto-restart" => parse_bool(rest)
            .map(Fact::AutoRestart)
            .ok_or_else(|| "not a boolean".into()),
        "reexec" => parse_bool(rest).map(Fact::Reexec).ok_or_else(|| "not a boolean".into()),
        "package" => {
            let (dir, name) = rest.split_once(' ').ok_or("package needs in|out and a name")?;
            let dir = match dir {
                "in" => Direction::In,
                "out" => Direction::Out,
                _ => return Err(format!("direction {dir:?} is neither in nor out")),
            };
            if !valid_package(name) {
                return Err(format!("{name:?} is not a package name"));
            }
            Ok(Fact::Package(dir, name.to_string()))
        }
        "file" => {
            if !rest.starts_with('/') {
                return Err(format!("{rest:?} is not an absolute path"));
            }
            Ok(Fact::File(rest.to_string()))
        }
        "action" if !rest.is_empty() => Ok(Fact::Action(rest.to_string())),
        "list" => {
            let (pkg, path) = rest.split_once(' ').ok_or("list needs a package and a path")?;
            if !path.starts_with('/') {
                return Err(format!("{path:?} is not an absolute path"));
            }
            Ok(Fact::List(pkg.to_string(), path.to_string()))
        }
        "protect" => match crate::core::unit_name::validate(rest) {
            Ok(()) => Ok(Fact::Protect(rest.to_string())),
            Err(e) => Err(format!("{e:#}")),
        },
        "error" => Ok(Fact::Error(rest.to_string())),
        _ => Err(format!("unknown line {word:?}")),
    }
}

/// One transaction, as one hook run recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub time: u64,
    pub pid: u32,
    pub facts: Vec<Fact>,
}

impl Block {
    pub fn new(facts: Vec<Fact>) -> Self {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Block {
            time,
            pid: std::process::id(),
            facts,
        }
    }

    pub fn render(&self) -> String {
        let mut out = format!("begin {} {}\n", self.time, self.pid);
        for f in &self.facts {
            let _ = writeln!(out, "{f}");
        }
        out.push_str("end\n");
        out
    }

    pub fn source(&self) -> Option<&str> {
        self.facts.iter().find_map(|f| match f {
            Fact::Source(s) => Some(s.name()),
            _ => None,
        })
    }

    pub fn command(&self) -> Option<&str> {
        self.facts.iter().find_map(|f| match f {
            Fact::Command(c) => Some(c.as_str()),
            _ => None,
        })
    }

    /// Off if any `auto-restart false` line says so.
    pub fn auto_restart(&self) -> bool {
        !self.facts.contains(&Fact::AutoRestart(false))
    }

    /// Off if any `reexec false` line says so.
    pub fn reexec(&self) -> bool {
        !self.facts.contains(&Fact::Reexec(false))
    }

    pub fn managers(&self) -> impl Iterator<Item = Process> + '_ {
        self.facts.iter().filter_map(|f| match f {
            Fact::Manager(p) => Some(*p),
            _ => None,
        })
    }

    pub fn packages(&self) -> impl Iterator<Item = (Direction, &str)> {
        self.facts.iter().filter_map(|f| match f {
            Fact::Package(d, n) => Some((*d, n.as_str())),
            _ => None,
        })
    }

    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.facts.iter().filter_map(|f| match f {
            Fact::File(p) => Some(p.as_str()),
            _ => None,
        })
    }

    pub(crate) fn protected(&self) -> impl Iterator<Item = &str> {
        self.facts.iter().filter_map(|f| match f {
            Fact::Protect(u) => Some(u.as_str()),
            _ => None,
        })
    }

    pub fn errors(&self) -> impl Iterator<Item = &str> {
        self.facts.iter().filter_map(|f| match f {
            Fact::Error(e) => Some(e.as_str()),
            _ => None,
        })
    }
}

/// Taken records: their blocks and the lines that made no sense. A
/// package manager may read the blocks into its own view (`B`), as apt
/// does with its actions.
#[derive(Debug)]
pub struct Record<B = Block> {
    pub blocks: Vec<B>,
    pub problems: Vec<String>,
}

impl<B> Default for Record<B> {
    fn default() -> Self {
        Record {
            blocks: Vec::new(),
            problems: Vec::new(),
        }
    }
}

impl Record {
    /// Parses record text; `source` names it in problems. Bad lines are
    /// reported and skipped; a block without its `end` (a hook that died)
    /// still counts.
    pub fn parse(text: &str, source: &str) -> Record {
        let mut rec = Record::default();
        // Only `\n` ends a line: `render` writes nothing else, and a path
        // may end in `\r` (`lines()` would drop it from all lines but the
        // last, so the same fact would read back two ways; found by the
        // `record` fuzz target).
        for (n, line) in text.split_terminator('\n').enumerate() {
            if let Err(e) = rec.line(line) {
                rec.problems.push(format!("{source}:{}: {e}: {line:?}", n + 1));
            }
        }
        rec
    }

    fn line(&mut self, line: &str) -> Result<(), String> {
        if let Some(rest) = line.strip_prefix("begin ") {
            let (t, p) = rest.split_once(' ').ok_or("begin needs a time and a pid")?;
            self.blocks.push(Block {
                time: t.parse().map_err(|_| "bad time")?,
                pid: p.parse().map_err(|_| "bad pid")?,
                facts: Vec::new(),
            });
            return Ok(());
        }
        let block = self.blocks.last_mut().ok_or("line before any begin")?;
        if line != "end" {
            block.facts.push(parse_fact(line)?);
        }
        Ok(())
    }

    /// Reads and parses taken files into one record.
    pub(crate) fn read_all(files: &[PathBuf]) -> Result<Record> {
        let mut all = Record::default();
        for f in files {
            let data = std::fs::read(f).with_context(|| format!("failed to read {}", f.display()))?;
            let rec = Record::parse(&String::from_utf8_lossy(&data), &f.display().to_string());
            all.blocks.extend(rec.blocks);
            all.problems.extend(rec.problems);
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> Block {
        Block {
            time: 1_763_776_212,
            pid: 4242,
            facts: vec![
                Fact::Source(Source::of("dnf5")),
                Fact::Manager(Process {
                    pid: 4000,
                    start: 12345,
                }),
                Fact::Command("dnf5 upgrade\n-y".into()),
                Fact::AutoRestart(true),
                Fact::Package(Direction::In, "libdemo-0:2.0-1.x86_64".into()),
                Fact::Package(Direction::Out, "libdemo-0:1.0-1.x86_64".into()),
                Fact::File("/usr/lib64/libdemo.so.1".into()),
                Fact::File("/usr/share/doc/demo/a b".into()),
                Fact::Error("stdin:3: bad".into()),
            ],
        }
    }

    #[test]
    fn blocks_round_trip() {
        let text = block().render();
        assert!(text.contains("\ncommand dnf5 upgrade?-y\n"), "{text}");
        let rec = Record::parse(&text, "pending");
        assert!(rec.problems.is_empty(), "{:?}", rec.problems);
        let mut expected = block();
        expected.facts[2] = Fact::Command("dnf5 upgrade?-y".into());
        assert_eq!(rec.blocks, vec![expected]);
        let b = &rec.blocks[0];
        assert_eq!(b.source(), Some("dnf5"));
        assert_eq!(
            b.managers().collect::<Vec<_>>(),
            [Process {
                pid: 4000,
                start: 12345
            }]
        );
        assert_eq!(b.files().count(), 2);
        assert!(b.auto_restart());
    }

    #[test]
    fn a_path_ending_in_a_carriage_return_reads_back_the_same() {
        // The fuzz crash: the last line kept its `\r`, every other lost it.
        let text = "begin 1 2\nfile /hv\r";
        let first = Record::parse(text, "pending");
        assert_eq!(first.blocks[0].facts, [Fact::File("/hv\r".into())]);
        let again = Record::parse(&first.blocks[0].render(), "rendered");
        assert!(again.problems.is_empty(), "{:?}", again.problems);
        assert_eq!(again.blocks, first.blocks);
    }

    #[test]
    fn bad_lines_are_named_and_skipped() {
        let text = "file /x\nbegin 1 2\nfile relative\npackage sideways x\npackage in -rf\n\
                    source Yum-4\nauto-restart maybe\nmanager 1\nfrobnicate\nauto-restart off\nend\n";
        let rec = Record::parse(text, "taken.1");
        assert_eq!(rec.blocks.len(), 1);
        assert!(!rec.blocks[0].auto_restart());
        let lines: Vec<&str> = rec.problems.iter().map(|p| p.split(':').nth(1).unwrap()).collect();
        assert_eq!(lines, ["1", "3", "4", "5", "6", "7", "8", "9"], "{:?}", rec.problems);
        assert!(rec.problems[1].contains("\"relative\" is not an absolute path"));
    }
}
