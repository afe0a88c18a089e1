//! Scanning processes for stale executables and mappings.
//!
//! Each process (tgid) is read once: its `exe` link and one read of its
//! `maps` into a reused buffer. Verdicts are shared across processes
//! through [`Resolver`].

use crate::cgroup::{self, Layout};
use crate::maps;
use crate::procmap;
use crate::staleness::{self, Resolver, Staleness, ViewKey};
use crate::sysroot::SysRoot;
use crate::unit_name::Owner;
use anyhow::Result;
use serde::Serialize;
use std::collections::HashMap;
use std::io::{ErrorKind, Read};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

/// One stale file a process still runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct StaleFile {
    /// The path, without the kernel's ` (deleted)` marker. Shared: a
    /// library mapped by a thousand processes is one allocation.
    pub path: Arc<str>,
    pub why: Staleness,
    /// True when this is the process's executable.
    pub exe: bool,
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
///
/// Only what every process needs is read for every process (its maps, and
/// its root and mount namespace to key verdicts). Its unit comes from one
/// walk of the cgroup tree; `/proc/PID/cgroup`, `comm` and `exe` are read
/// only for the few processes found stale.
pub fn scan_with(root: &SysRoot, scope: Scope, mut scanner: Scanner) -> Result<Scan> {
    let layout = cgroup::detect(root);
    let members = match layout {
        Some(l) => cgroup::system_members(root, l)?,
        None => Vec::new(),
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
    let owners: HashMap<u32, Owner> = members.into_iter().map(|m| (m.pid, m.owner)).collect();
    let pids = match scope {
        Scope::SystemUnits => {
            let mut p: Vec<u32> = owners.keys().copied().collect();
            p.sort_unstable();
            p
        }
        Scope::Everything => cgroup::all_pids(root)?,
    };
    let mut out = Scan {
        layout,
        units,
        ..Scan::default()
    };
    for pid in pids {
        let files = match scanner.process(root, pid) {
            Ok(Some(files)) => files,
            Ok(None) => continue,
            Err(e) => {
                out.problems.push(format!("{e:#}"));
                continue;
            }
        };
        out.processes_scanned += 1;
        if files.is_empty() {
            continue;
        }
        let owner = match owners.get(&pid) {
            Some(o) => o.clone(),
            // Outside the system slice (or started after the walk).
            None => match cgroup::owner_of_pid(root, layout, pid) {
                Ok(Some(o)) => o,
                Ok(None) => continue, // exited meanwhile
                Err(e) => {
                    out.problems.push(format!("{e:#}"));
                    Owner::Outside(String::new())
                }
            },
        };
        let comm = read_small(&root.proc_pid(pid, "comm"))
            .map(|s| s.trim_end().to_string())
            .unwrap_or_default();
        out.stale.push(StaleProcess {
            pid,
            comm,
            owner,
            files,
        });
    }
    Ok(out)
}

/// Reads a small /proc file with one read(2): `fs::read_to_string` also
/// calls statx and lseek, which matters at thousands of processes.
fn read_small(path: &std::path::Path) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut buf = [0u8; 512];
    let n = f.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
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
}

impl Judge<'_> {
    /// Judges a mapping known by device and inode only, if an earlier
    /// process settled it; `false` means the path is needed.
    fn consider_known(&mut self, dev: u64, ino: u64) -> bool {
        if self.seen.contains(&(dev, ino)) {
            return true;
        }
        let Some(verdict) = self.resolver.known(self.view, dev, ino) else {
            return false;
        };
        self.seen.push((dev, ino));
        if let Some((why, path)) = verdict {
            self.files.push(StaleFile { path, why, exe: false });
        }
        true
    }

    fn consider(&mut self, m: maps::Mapping<'_>) {
        if self.seen.contains(&(m.dev, m.ino)) {
            return;
        }
        if staleness::ignored(m.path) {
            self.resolver.remember_fresh(self.view, m.path, m.dev, m.ino);
            return;
        }
        self.seen.push((m.dev, m.ino));
        if let Some((why, path)) = self.resolver.check(self.view, self.root_dir, m.path, m.dev, m.ino) {
            self.files.push(StaleFile { path, why, exe: false });
        }
    }
}

impl Scanner {
    /// The stale files of one process; `Ok(None)` when it has exited;
    /// `Err` for permission problems. Kernel threads map nothing.
    pub fn process(&mut self, root: &SysRoot, pid: u32) -> Result<Option<Vec<StaleFile>>> {
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
        };
        let try_query = self.method == Method::Auto && !self.data_files && self.kernel_query != Some(false);
        let mut queried = false;
        if try_query {
            match query_vmas(&file, &mut self.name, &mut judge) {
                Ok(()) => {
                    self.kernel_query = Some(true);
                    queried = true;
                }
                Err(e) if self.kernel_query.is_none() && procmap::unsupported(&e) => self.kernel_query = Some(false),
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
        let mut files = judge.files;
        if !files.is_empty() {
            mark_exe(root, pid, &mut files);
        }
        files.sort();
        Ok(Some(files))
    }
}

/// The fast path: device and inode of each executable VMA, and the path
/// only for inodes no earlier process has settled.
fn query_vmas(file: &std::fs::File, name: &mut Vec<u8>, judge: &mut Judge) -> std::io::Result<()> {
    let mut q = procmap::VmaQuery::new(file);
    while let Some(vma) = q.next_vma()? {
        if vma.ino == 0 || judge.consider_known(vma.dev, vma.ino) {
            continue;
        }
        let path = q.name(&vma, name)?;
        if path.first() == Some(&b'/') {
            judge.consider(maps::Mapping {
                executable: true,
                dev: vma.dev,
                ino: vma.ino,
                path,
            });
        }
    }
    Ok(())
}

/// Flags the process's executable among its stale files. Only stale
/// processes pay for the readlink; the kernel always maps the executable,
/// so it is among the mappings already judged.
fn mark_exe(root: &SysRoot, pid: u32, files: &mut [StaleFile]) {
    let Ok(exe) = std::fs::read_link(root.proc_pid(pid, "exe")) else {
        return;
    };
    let exe = maps::strip_marker(exe.as_os_str().as_bytes());
    for f in files.iter_mut() {
        f.exe = f.path.as_bytes() == exe;
    }
}

/// Root directory identity plus mount namespace: see [`ViewKey`].
fn view_key(root: &SysRoot, pid: u32) -> ViewKey {
    // readlink is far cheaper than stat on these magic links: it formats a
    // name instead of walking into nsfs or the process's root.
    let link = |rel: &str| std::fs::read_link(root.proc_pid(pid, rel)).map(|p| fnv1a(p.as_os_str().as_bytes()));
    (link("ns/mnt").unwrap_or(0), link("root").unwrap_or(0))
}

/// FNV-1a: a stable 64-bit digest of a short byte string.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
