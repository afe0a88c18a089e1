//! Scanning processes for stale executables and mappings.
//!
//! Each process (tgid) has its maps read once (`PROCMAP_QUERY` or the
//! text, into a reused buffer) and its mount namespace read to know where
//! its paths are looked up. Verdicts are shared across processes through
//! [`Resolver`].

use crate::core::model::Via;
pub use crate::core::model::{Scan, Scope, StaleFile, StaleProcess};
use crate::core::unit_name::Owner;
use crate::system::cgroup;
use crate::system::dedup::SeenSet;
use crate::system::interp;
use crate::system::maps;
use crate::system::procfs;
use crate::system::procmap;
use crate::system::staleness::{self, Resolver, ViewKey, WordHasher};
use crate::system::sysroot::SysRoot;
use crate::system::workers;
use anyhow::Result;
use std::hash::BuildHasherDefault;
use std::io::ErrorKind;

/// Scans the processes in `scope` under `root` with default settings.
pub fn scan(root: &SysRoot, scope: Scope) -> Result<Scan> {
    scan_with(root, scope, Scanner::default())
}

/// Scans with a configured [`Scanner`] (method, data files).
///
/// Only what every process needs is read for every process (its maps and
/// its mount namespace; its root too when that namespace is not ours).
/// Units come from one walk of the system slice; `comm`, `exe` and, outside
/// the system slice, the cgroup ([`cgroup::Owners`]) are read only for
/// processes found stale. The PIDs are split across threads
/// ([`workers`]; [`Scanner::threads`] or `RESTART_STALE_THREADS`), and the
/// result is the one a single thread gives.
pub(crate) fn scan_with(root: &SysRoot, scope: Scope, mut scanner: Scanner) -> Result<Scan> {
    let layout = cgroup::detect(root);
    let walked = match layout {
        Some(l) => cgroup::system_members(root, l),
        None => cgroup::Members::default(),
    };
    let members = walked.members;
    let mut units: Vec<String> = members
        .iter()
        .filter_map(|m| match &m.owner {
            Owner::Unit(u) => Some(u.clone()),
            _ => None,
        })
        .collect();
    units.sort();
    units.dedup();
    let pids = match scope {
        Scope::SystemUnits => {
            let mut p: Vec<u32> = members.iter().map(|m| m.pid).collect();
            p.sort_unstable();
            p.dedup();
            p
        }
        Scope::Everything => cgroup::all_pids(root)?,
    };
    // Open files are read for the processes a restart could act on.
    let in_units: std::collections::HashSet<u32> = match scope {
        Scope::SystemUnits => Default::default(),
        Scope::Everything => members.iter().map(|m| m.pid).collect(),
    };
    let mut owners = cgroup::Owners::new(root, layout, members.into_iter().map(|m| (m.pid, m.owner)).collect());
    let mut out = Scan {
        layout,
        units,
        // First, so the summary of many per-process problems shows them.
        problems: walked.problems,
        ..Scan::default()
    };
    let threads = scanner.threads.unwrap_or_else(workers::threads);
    log::trace!("scanning {} processes on up to {threads} threads", pids.len());
    let found = workers::map(&pids, threads, &mut scanner, Scanner::sibling, |s, pid| {
        let in_scope = scope == Scope::SystemUnits || pid == 1 || in_units.contains(&pid);
        match s.process_in(root, pid, in_scope) {
            Ok(Some(files)) if files.is_empty() => Found::Fresh,
            Ok(Some(files)) => Found::Stale(s.comm(root, pid), files),
            Ok(None) => Found::Gone,
            Err(e) => Found::Failed(format!("{e:#}")),
        }
    });
    // In PID order, as one thread would have gone: owners are looked up
    // here, where one stale process's cgroup places the others.
    for (pid, found) in pids.into_iter().zip(found) {
        let (comm, files) = match found {
            Found::Gone => continue,
            Found::Failed(e) => {
                out.problems.push(e);
                continue;
            }
            Found::Fresh => {
                out.processes_scanned += 1;
                continue;
            }
            Found::Stale(comm, files) => (comm, files),
        };
        out.processes_scanned += 1;
        let owner = match owners.get(pid) {
            Ok(Some(o)) => o,
            Ok(None) => continue, // exited meanwhile
            Err(e) => {
                out.problems.push(format!("{e:#}"));
                Owner::Outside(String::new())
            }
        };
        out.stale.push(StaleProcess {
            pid,
            comm,
            owner,
            files,
        });
    }
    Ok(out)
}

/// What the scan of one process came to.
enum Found {
    /// It exited before it was read.
    Gone,
    Failed(String),
    Fresh,
    /// Its name (`comm`) and stale files.
    Stale(String, Vec<StaleFile>),
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
    /// Threads [`scan_with`] uses; `None` for [`workers::threads`].
    pub threads: Option<usize>,
    buf: Vec<u8>,
    name: Vec<u8>,
    seen: SeenSet<(u64, u64), BuildHasherDefault<WordHasher>>,
    /// Our own mount namespace, once read.
    our_namespace: Option<Option<u64>>,
    /// Open files, scripts and modules (`interp`).
    pub interp: interp::Interp,
    /// Whether users control a stale file.
    pub ownership: crate::system::ownership::Ownership,
    /// Whether a path in another view is the host's file
    /// ([`staleness::same_as_host`]), per view and path.
    host_files: std::collections::HashMap<(ViewKey, std::sync::Arc<str>), bool>,
}

/// The view of every process in our own mount namespace.
const OUR_VIEW: ViewKey = (0, 0, 0);

/// Unsettled VMAs in a row after which [`query_vmas`] asks for each path
/// with the VMA itself.
const NAMED_AFTER: u32 = 8;
/// Unsettled VMAs in a row after which their verdicts are no longer kept
/// for later processes: more executable files than any program links
/// (a JVM maps a few hundred), so what follows is a process's own files.
const UNSHARED_AFTER: u32 = 1024;

/// Per-process context for judging mappings.
struct Judge<'a> {
    resolver: &'a mut Resolver,
    seen: &'a mut SeenSet<(u64, u64), BuildHasherDefault<WordHasher>>,
    files: Vec<StaleFile>,
    view: ViewKey,
    root_dir: &'a std::path::Path,
    /// Device and inode of the lowest executable mapping: the executable's
    /// text, which the kernel maps below the libraries.
    first_exec: Option<(u64, u64)>,
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
        self.seen.insert((dev, ino));
        if let Some((why, path)) = verdict {
            self.files.push(StaleFile::new(path, why, Via::Map));
        }
        true
    }

    fn consider(&mut self, m: maps::Mapping<'_>) {
        self.consider_as(m, true);
    }

    /// `shared`: worth remembering for later processes (see
    /// [`Resolver::check_unshared`] for when it is not).
    fn consider_as(&mut self, m: maps::Mapping<'_>, shared: bool) {
        if self.seen.contains(&(m.dev, m.ino)) {
            return;
        }
        if staleness::ignored(m.path) {
            self.resolver.remember_fresh(self.view, m.path, m.dev, m.ino);
            return;
        }
        self.seen.insert((m.dev, m.ino));
        let verdict = if shared {
            self.resolver.check(self.view, self.root_dir, m.path, m.dev, m.ino)
        } else {
            self.resolver
                .check_unshared(self.view, self.root_dir, m.path, m.dev, m.ino)
        };
        if let Some((why, path)) = verdict {
            self.files.push(StaleFile::new(path, why, Via::Map));
        }
    }
}

impl Scanner {
    /// A scanner with the same settings and none of the caches, for
    /// another thread.
    pub fn sibling(&self) -> Scanner {
        Scanner {
            method: self.method,
            data_files: self.data_files,
            kernel_query: self.kernel_query,
            threads: self.threads,
            ownership: self.ownership.sibling(),
            ..Scanner::default()
        }
    }

    /// The process's name as `ps` shows it; empty if it exited.
    pub fn comm(&mut self, root: &SysRoot, pid: u32) -> String {
        match procfs::read_small(&root.proc_pid(pid, "comm"), &mut self.name) {
            Ok(n) => String::from_utf8_lossy(&self.name[..n]).trim_end().to_string(),
            Err(_) => String::new(),
        }
    }

    /// Which view a process's mapped paths are printed in, and the
    /// directory to look them up under.
    ///
    /// The kernel prints a mapped path (maps, `PROCMAP_QUERY`, the `exe`
    /// link) relative to the *reader's* root when the reader can reach the
    /// file, and relative to the top of the file's mount tree when it
    /// can't. So a process in our mount namespace, chrooted or not
    /// (postfix's daemons, bind), names its files as we see them: a
    /// lookup under its `root` link would miss them. A process in another
    /// namespace (a container, a unit with private mounts) names them
    /// from its namespace's root, which its `root` link leads to unless
    /// it is chrooted in there too; the root's identity keys that view.
    fn view(&mut self, root: &SysRoot, pid: u32) -> (ViewKey, std::path::PathBuf) {
        let ours = *self
            .our_namespace
            .get_or_insert_with(|| procfs::mount_namespace(&root.path("proc/self/ns/mnt")));
        let theirs = procfs::mount_namespace(&root.proc_pid(pid, "ns/mnt"));
        if theirs == ours {
            return (OUR_VIEW, root.root().to_path_buf());
        }
        let root_dir = root.proc_pid(pid, "root");
        let (mount, inode) = procfs::root_identity(&root_dir);
        // Never OUR_VIEW: the namespace digest is odd.
        ((theirs.unwrap_or(0) | 1, mount, inode), root_dir)
    }

    /// Flags the files that the process's root holds a copy of its own at
    /// (a jail, a container): the host's transaction names the host's
    /// files, which are not these even where the paths are equal.
    fn mark_other_root(&mut self, root: &SysRoot, view: ViewKey, root_dir: &std::path::Path, files: &mut [StaleFile]) {
        let theirs = SysRoot::new(root_dir);
        for f in files.iter_mut() {
            let same = *self
                .host_files
                .entry((view, f.path.clone()))
                .or_insert_with(|| staleness::same_as_host(root, &theirs, &f.path));
            f.other_root = !same;
        }
    }

    /// The stale files of one process, every signal included; `Ok(None)`
    /// when it has exited; `Err` for permission problems. Kernel threads
    /// map nothing.
    pub fn process(&mut self, root: &SysRoot, pid: u32) -> Result<Option<Vec<StaleFile>>> {
        self.process_in(root, pid, true)
    }

    /// Like [`Scanner::process`]; `in_scope` adds the open files, whose
    /// directory read every process would pay for, so only processes a
    /// restart could act on do. Interpreter scripts and their modules are
    /// checked for every process; only interpreters pay more than a
    /// `readlink` of `exe` for them.
    pub(crate) fn process_in(&mut self, root: &SysRoot, pid: u32, in_scope: bool) -> Result<Option<Vec<StaleFile>>> {
        let maps_path = root.proc_pid(pid, "maps");
        let fail = |e: std::io::Error| anyhow::Error::new(e).context(format!("failed to read {}", maps_path.display()));
        let mut file = match std::fs::File::open(&maps_path) {
            Ok(f) => f,
            Err(e) if gone(&e) => return Ok(None),
            Err(e) => return Err(fail(e)),
        };
        let (view, root_dir) = self.view(root, pid);
        self.seen.clear();
        let mut judge = Judge {
            resolver: &mut self.resolver,
            seen: &mut self.seen,
            files: Vec::new(),
            view,
            root_dir: &root_dir,
            first_exec: None,
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
            let n = match procfs::read_all(&mut file, &mut self.buf) {
                Ok(n) => n,
                Err(e) if gone(&e) => return Ok(None),
                Err(e) => return Err(fail(e)),
            };
            for m in maps::mappings(&self.buf[..n], !self.data_files) {
                if m.executable && m.ino != 0 && judge.first_exec.is_none() {
                    judge.first_exec = Some((m.dev, m.ino));
                }
                judge.consider(m);
            }
        }
        let first_exec = judge.first_exec;
        let mut files = judge.files;
        let mut exe = interp::ExeLink::new(root, pid);
        if !files.is_empty() {
            mark_exe(&mut exe, &mut files);
        }
        let seen = interp::Seen {
            view,
            root_dir: &root_dir,
            in_scope,
            first_exec,
        };
        self.interp
            .add_findings(&mut self.resolver, root, pid, &seen, &mut exe, &mut files);
        for f in &mut files {
            // The scan found nothing at a deleted file's path: its
            // directories alone decide, with no look for the file itself.
            let gone = f.why == staleness::Staleness::Deleted;
            f.user = self.ownership.user_controlled(view, &root_dir, &f.path, gone);
        }
        if view != OUR_VIEW && !files.is_empty() {
            self.mark_other_root(root, view, &root_dir, &mut files);
        }
        files.sort();
        // Kept until the report is written: a vector grown by doubling
        // holds up to twice what it needs, for every stale process.
        files.shrink_to_fit();
        Ok(Some(files))
    }
}

/// The fast path: device and inode of each executable VMA, and the path
/// only for inodes no earlier process has settled.
///
/// A process whose mappings no earlier process settled (its own files:
/// a hostile one maps 60,000) would cost two ioctls a VMA, so after
/// [`NAMED_AFTER`] unsettled VMAs in a row the path comes with the query,
/// until a settled one shows the cheap query pays again.
fn query_vmas(file: &std::fs::File, name: &mut Vec<u8>, judge: &mut Judge) -> std::io::Result<()> {
    let mut q = procmap::VmaQuery::new(file);
    let mut unsettled = 0;
    loop {
        let (vma, named) = if unsettled >= NAMED_AFTER {
            match q.next_vma_named(name)? {
                Some((vma, path)) => (vma, Some(path.len())),
                None => break,
            }
        } else {
            match q.next_vma()? {
                Some(vma) => (vma, None),
                None => break,
            }
        };
        if vma.ino != 0 && judge.first_exec.is_none() {
            judge.first_exec = Some((vma.dev, vma.ino));
        }
        if vma.ino == 0 || judge.consider_known(vma.dev, vma.ino) {
            unsettled = 0;
            continue;
        }
        unsettled += 1;
        let path = match named {
            Some(len) => &name[..len],
            None => q.name(&vma, name)?,
        };
        if path.first() == Some(&b'/') {
            let mapping = maps::Mapping {
                executable: true,
                dev: vma.dev,
                ino: vma.ino,
                path,
            };
            judge.consider_as(mapping, unsettled <= UNSHARED_AFTER);
        }
    }
    Ok(())
}

/// Flags the process's executable among its stale files. Only stale
/// processes pay for the readlink; the kernel always maps the executable,
/// so it is among the mappings already judged.
fn mark_exe(exe: &mut interp::ExeLink, files: &mut [StaleFile]) {
    let Some(exe) = exe.get() else {
        return;
    };
    for f in files.iter_mut() {
        f.exe = f.via == Via::Map && f.path.as_bytes() == exe;
    }
}
