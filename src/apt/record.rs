//! The transaction record under `/run/restart-stale/apt/`.
//!
//! Each `Pre-Install-Pkgs` run appends one block to `pending`. `finish`
//! takes the record by renaming `pending` to `taken.<ns>.<pid>`, so lines
//! written later go to a new `pending` and are never lost or read twice.
//! Writers and the taker hold `flock(2)` on the file while they write or
//! rename, and a writer that finds `pending` renamed under it reopens it.
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
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Where records live, inside the root.
pub const DIR: &str = "/run/restart-stale/apt";
const PENDING: &str = "pending";
const TAKEN: &str = "taken.";

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

fn ensure_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("failed to create {}", dir.display()))
}

/// How long a writer or the taker waits for the other; each holds the
/// lock only for one write or one rename, so this is never reached unless
/// something is badly wrong, and then apt must not hang on us.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn lock(file: &File, path: &Path) -> Result<()> {
    let start = std::time::Instant::now();
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) || start.elapsed() > LOCK_WAIT {
            return Err(e).with_context(|| format!("failed to lock {}", path.display()));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// True when `path` still names the file open as `file` (it was not
/// renamed away between our open and our lock).
fn still_named(file: &File, path: &Path) -> Result<bool> {
    let open = file.metadata()?;
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(m.dev() == open.dev() && m.ino() == open.ino()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("failed to stat {}", path.display())),
    }
}

/// Appends `text` to `dir/pending` in one write, under the lock.
pub fn append(dir: &Path, text: &str) -> Result<()> {
    ensure_dir(dir)?;
    let path = dir.join(PENDING);
    for _ in 0..100 {
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("failed to open {}", path.display()))?;
        lock(&file, &path)?;
        if still_named(&file, &path)? {
            file.write_all(text.as_bytes())
                .with_context(|| format!("failed to write {}", path.display()))?;
            return Ok(());
        }
        // finish renamed it while we waited for the lock: start a new one.
    }
    anyhow::bail!("{} keeps being renamed; giving up", path.display())
}

/// Takes every record that is waiting: leftovers from a `finish` that did
/// not complete, then `pending`, renamed so that new runs start afresh.
/// Returns the taken files, oldest first; the caller removes them once
/// acted upon.
pub fn take(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut taken = leftovers(dir)?;
    let path = dir.join(PENDING);
    for _ in 0..100 {
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(taken),
            Err(e) => return Err(e).with_context(|| format!("failed to open {}", path.display())),
        };
        lock(&file, &path)?;
        if !still_named(&file, &path)? {
            continue;
        }
        let dest = dir.join(taken_name());
        fs::rename(&path, &dest)
            .with_context(|| format!("failed to rename {} to {}", path.display(), dest.display()))?;
        taken.push(dest);
        return Ok(taken);
    }
    anyhow::bail!("{} keeps being renamed; giving up", path.display())
}

/// Is anything waiting to be taken?
pub fn any_waiting(dir: &Path) -> Result<bool> {
    Ok(dir.join(PENDING).exists() || !leftovers(dir)?.is_empty())
}

fn taken_name() -> String {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{TAKEN}{ns:020}.{}", std::process::id())
}

fn leftovers(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("failed to list {}", dir.display())),
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(TAKEN))
        .map(|e| e.path())
        .collect();
    found.sort();
    Ok(found)
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

    #[test]
    fn take_renames_so_later_appends_start_a_new_record() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run/restart-stale/apt");
        assert!(take(&dir).unwrap().is_empty());
        assert!(!any_waiting(&dir).unwrap());
        append(&dir, "begin 1 1\n").unwrap();
        append(&dir, "begin 2 2\n").unwrap();
        assert!(any_waiting(&dir).unwrap());
        let first = take(&dir).unwrap();
        assert_eq!(first.len(), 1);
        append(&dir, "begin 3 3\n").unwrap();
        assert_eq!(fs::read_to_string(&first[0]).unwrap(), "begin 1 1\nbegin 2 2\n");
        // A finish that died left `first` behind: the next take gets both, oldest first.
        let second = take(&dir).unwrap();
        assert_eq!(second.len(), 2);
        assert_eq!(second[0], first[0]);
        let rec = read_all(&second).unwrap();
        let pids: Vec<_> = rec.blocks.iter().map(|b| b.pid).collect();
        assert_eq!(pids, [1, 2, 3]);
        for f in second {
            fs::remove_file(f).unwrap();
        }
        assert!(!any_waiting(&dir).unwrap());
    }

    #[test]
    fn writer_holding_the_old_file_reopens_after_a_take() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        append(dir, "begin 1 1\n").unwrap();
        // A writer opened `pending` just before finish renamed it.
        let stale = File::open(dir.join(PENDING)).unwrap();
        let taken = take(dir).unwrap();
        assert!(!still_named(&stale, &dir.join(PENDING)).unwrap());
        append(dir, "begin 2 2\n").unwrap();
        assert_eq!(fs::read_to_string(&taken[0]).unwrap(), "begin 1 1\n");
        assert_eq!(fs::read_to_string(dir.join(PENDING)).unwrap(), "begin 2 2\n");
    }

    #[test]
    fn concurrent_appends_are_all_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let dir = dir.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        append(&dir, &format!("begin {i} {t}\nend\n")).unwrap();
                    }
                })
            })
            .collect();
        let mut files = BTreeSet::new();
        for _ in 0..5 {
            files.extend(take(&dir).unwrap());
        }
        for w in writers {
            w.join().unwrap();
        }
        files.extend(take(&dir).unwrap());
        let files: Vec<_> = files.into_iter().collect();
        let rec = read_all(&files).unwrap();
        assert_eq!(rec.blocks.len(), 200);
        assert!(rec.problems.is_empty());
    }
}
