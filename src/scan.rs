//! Scanning processes for stale executables and mappings.
//!
//! Each process (tgid) is read once: its `exe` link and one read of its
//! `maps` into a reused buffer. Verdicts are shared across processes
//! through [`Resolver`].

use crate::cgroup::{self, Layout, Member};
use crate::maps;
use crate::procmap;
use crate::staleness::{self, Resolver, Staleness, ViewKey};
use crate::sysroot::SysRoot;
use crate::unit_name::Owner;
use anyhow::Result;
use serde::Serialize;
use std::io::{ErrorKind, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

/// One stale file a process still runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct StaleFile {
    /// The path, without the kernel's ` (deleted)` marker.
    pub path: String,
    pub why: Staleness,
    /// True when this is the process's executable.
    pub exe: bool,
    #[serde(skip)]
    pub dev: u64,
    #[serde(skip)]
    pub ino: u64,
}

/// A process with at least one stale file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleProcess {
    pub pid: u32,
    pub comm: String,
    #[serde(skip)]
    pub owner: Owner,
    pub files: Vec<StaleFile>,
}

/// Which processes to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The system slice and PID 1: all a restart needs.
    SystemUnits,
    /// Every process, for the full report.
    Everything,
}

/// Everything a scan learned.
#[derive(Debug, Default)]
pub struct Scan {
    pub layout: Option<Layout>,
    /// Every system unit that has processes, stale or not.
    pub units: Vec<String>,
    pub stale: Vec<StaleProcess>,
    /// Non-fatal problems, such as permission errors, one line each.
    pub problems: Vec<String>,
    pub processes_scanned: usize,
}

/// Scans the processes in `scope` under `root` with default settings.
pub fn scan(root: &SysRoot, scope: Scope) -> Result<Scan> {
    scan_with(root, scope, Scanner::default())
}

/// Scans with a configured [`Scanner`] (method, data files).
pub fn scan_with(root: &SysRoot, scope: Scope, mut scanner: Scanner) -> Result<Scan> {
    let layout = cgroup::detect(root);
    let members = match (scope, layout) {
        (Scope::SystemUnits, Some(l)) => cgroup::system_members(root, l)?,
        (Scope::SystemUnits, None) => Vec::new(),
        (Scope::Everything, l) => members_from_proc(root, l)?,
    };
    let mut out = Scan {
        layout,
        ..Scan::default()
    };
    let mut units: Vec<String> = members
        .iter()
        .filter_map(|m| match &m.owner {
            Owner::Unit(u) => Some(u.clone()),
            _ => None,
        })
        .collect();
    units.sort();
    units.dedup();
    out.units = units;
    for m in members {
        match scanner.process(root, m.pid) {
            Ok(Some(files)) => {
                out.processes_scanned += 1;
                if !files.is_empty() {
                    let comm = read_comm(root, m.pid);
                    out.stale.push(StaleProcess {
                        pid: m.pid,
                        comm,
                        owner: m.owner,
                        files,
                    });
                }
            }
            Ok(None) => {}
            Err(e) => out.problems.push(format!("{e:#}")),
        }
    }
    Ok(out)
}

fn members_from_proc(root: &SysRoot, layout: Option<Layout>) -> Result<Vec<Member>> {
    let mut out = Vec::new();
    for pid in cgroup::all_pids(root)? {
        // A process that exits between listing and reading is simply gone.
        if let Ok(Some(owner)) = cgroup::owner_of_pid(root, layout, pid) {
            out.push(Member { pid, owner });
        }
    }
    Ok(out)
}

fn read_comm(root: &SysRoot, pid: u32) -> String {
    std::fs::read_to_string(root.proc_pid(pid, "comm"))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_default()
}

fn gone(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

/// How mappings are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    /// `PROCMAP_QUERY` where the kernel has it, text otherwise.
    #[default]
    Auto,
    /// Always parse the `/proc/PID/maps` text.
    Text,
}

/// Reusable state for scanning many processes.
#[derive(Default)]
pub struct Scanner {
    pub resolver: Resolver,
    pub method: Method,
    /// Also check non-executable file mappings (data files such as locale
    /// archives). Forces the text path: the fast query asks only for
    /// executable VMAs.
    pub data_files: bool,
    /// Whether the kernel answered `PROCMAP_QUERY`; learned on first use.
    pub kernel_query: Option<bool>,
    buf: Vec<u8>,
    name: Vec<u8>,
    seen: Vec<(u64, u64)>,
}

/// Per-process context for judging mappings.
struct Judge<'a> {
    resolver: &'a mut Resolver,
    seen: &'a mut Vec<(u64, u64)>,
    files: Vec<StaleFile>,
    view: ViewKey,
    root_dir: &'a std::path::Path,
    exe: &'a [u8],
    exe_mapped: bool,
}

impl Judge<'_> {
    fn consider(&mut self, m: maps::Mapping<'_>) {
        let is_exe = m.path == self.exe;
        self.exe_mapped |= is_exe;
        if self.seen.contains(&(m.dev, m.ino)) || staleness::ignored(m.path) {
            return;
        }
        self.seen.push((m.dev, m.ino));
        if let Some(why) = self.resolver.check(self.view, self.root_dir, m.path, m.dev, m.ino) {
            self.files
                .push(stale_file(m.stripped_path(), why, is_exe, m.dev, m.ino));
        }
    }
}

impl Scanner {
    /// The stale files of one process; `Ok(None)` when it has exited or is
    /// a kernel thread; `Err` for permission problems.
    pub fn process(&mut self, root: &SysRoot, pid: u32) -> Result<Option<Vec<StaleFile>>> {
        let exe_link = root.proc_pid(pid, "exe");
        let exe = match std::fs::read_link(&exe_link) {
            Ok(p) => p,
            Err(e) if gone(&e) => return Ok(None),
            Err(e) => return Err(anyhow::Error::new(e).context(format!("failed to read {}", exe_link.display()))),
        };
        let maps_path = root.proc_pid(pid, "maps");
        let fail = |e: std::io::Error| anyhow::Error::new(e).context(format!("failed to read {}", maps_path.display()));
        let mut file = match std::fs::File::open(&maps_path) {
            Ok(f) => f,
            Err(e) if gone(&e) => return Ok(None),
            Err(e) => return Err(fail(e)),
        };
        let root_dir = root.proc_pid(pid, "root");
        self.seen.clear();
        let mut judge = Judge {
            resolver: &mut self.resolver,
            seen: &mut self.seen,
            files: Vec::new(),
            view: view_key(root, pid),
            root_dir: &root_dir,
            exe: exe.as_os_str().as_bytes(),
            exe_mapped: false,
        };
        let try_query = self.method == Method::Auto && !self.data_files && self.kernel_query != Some(false);
        let mut queried = false;
        if try_query {
            match procmap::for_each_exec_vma(&file, &mut self.name, |m| judge.consider(m)) {
                Ok(procmap::Outcome::Done) => {
                    self.kernel_query = Some(true);
                    queried = true;
                }
                Ok(procmap::Outcome::Unsupported) => self.kernel_query = Some(false),
                Err(e) if gone(&e) => return Ok(None),
                Err(e) => return Err(fail(e)),
            }
        }
        if !queried {
            self.buf.clear();
            match file.read_to_end(&mut self.buf) {
                Ok(_) => {}
                Err(e) if gone(&e) => return Ok(None),
                Err(e) => return Err(fail(e)),
            }
            for m in maps::mappings(&self.buf).filter(|m| m.executable || self.data_files) {
                judge.consider(m);
            }
        }
        let exe = judge.exe;
        if !judge.exe_mapped && !staleness::ignored(exe) {
            // Not normally reached: the kernel maps the executable. Fall back
            // to the inode behind the magic link.
            if let Ok(md) = std::fs::metadata(&exe_link) {
                if let Some(why) = judge.resolver.check(judge.view, &root_dir, exe, md.dev(), md.ino()) {
                    judge
                        .files
                        .push(stale_file(maps::strip_marker(exe), why, true, md.dev(), md.ino()));
                }
            }
        }
        let mut files = judge.files;
        files.sort();
        Ok(Some(files))
    }
}

fn stale_file(path: &[u8], why: Staleness, exe: bool, dev: u64, ino: u64) -> StaleFile {
    StaleFile {
        path: String::from_utf8_lossy(path).into_owned(),
        why,
        exe,
        dev,
        ino,
    }
}

/// Root directory identity plus mount namespace: see [`ViewKey`].
fn view_key(root: &SysRoot, pid: u32) -> ViewKey {
    let rootdir = std::fs::metadata(root.proc_pid(pid, "root"))
        .map(|m| (m.dev(), m.ino()))
        .unwrap_or((0, 0));
    let mntns = std::fs::metadata(root.proc_pid(pid, "ns/mnt"))
        .map(|m| m.ino())
        .unwrap_or(0);
    (rootdir.0, rootdir.1, mntns)
}
