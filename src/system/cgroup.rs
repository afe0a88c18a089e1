//! Which processes belong to which system unit, from the cgroup tree.
//!
//! Two views exist and the tests hold them equal: walking
//! `system.slice/**/cgroup.procs` (cheap when only system units matter)
//! and reading each `/proc/PID/cgroup` (needed for the full report, and
//! batched per cgroup by [`Owners`]).

use crate::core::unit_name::{owner_of_cgroup, Owner};
use crate::system::procfs;
use crate::system::sysroot::SysRoot;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

pub use crate::core::model::Layout;

impl Layout {
    /// Where this layout keeps systemd's tree, relative to the root.
    pub(crate) fn base(self) -> &'static str {
        match self {
            Layout::Unified => "sys/fs/cgroup",
            Layout::Legacy => "sys/fs/cgroup/systemd",
            Layout::Hybrid => "sys/fs/cgroup/unified",
        }
    }
}

/// Finds the layout whose tree holds a `system.slice`, which is what tells
/// us systemd manages it. `None` when no systemd runs here.
pub fn detect(root: &SysRoot) -> Option<Layout> {
    [Layout::Unified, Layout::Hybrid, Layout::Legacy]
        .into_iter()
        .find(|l| root.path(l.base()).join("system.slice").is_dir())
}

/// A process found in the system slice, with the cgroup it sits in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    pub pid: u32,
    pub owner: Owner,
}

/// What the walk of the system slice found.
#[derive(Debug, Default)]
pub struct Members {
    pub members: Vec<Member>,
    /// Cgroups that could not be read, one message each naming the path.
    /// Their subtrees are skipped, not fatal: a delegated subtree
    /// (`Delegate=yes`, a container's own cgroupfs) is writable by its
    /// owner, who must not be able to switch the scan off for the host.
    pub problems: Vec<String>,
}

/// Reads the pids (tgids, not threads) of every cgroup under `system.slice`,
/// plus PID 1 from `init.scope`. A cgroup that cannot be read is skipped
/// with its subtree and named in [`Members::problems`].
pub fn system_members(root: &SysRoot, layout: Layout) -> Members {
    let base = root.path(layout.base());
    let mut found = Members::default();
    walk(&base, &base.join("system.slice"), &mut found);
    match read_procs(&base.join("init.scope").join("cgroup.procs")) {
        Ok(pids) => found.members.extend(pids.into_iter().map(|pid| Member {
            pid,
            owner: Owner::Init,
        })),
        Err(e) => found.problems.push(format!("{e:#}")),
    }
    found.members.sort();
    found.members.dedup();
    found
}

/// Collects the members of `dir` and every cgroup below it. An unreadable
/// cgroup ends the walk of its own subtree only, as a problem: EACCES,
/// ENAMETOOLONG, a `cgroup.procs` that is not a file. A threaded cgroup
/// (EOPNOTSUPP) ends it quietly ([`threaded`]), and so does one that was
/// removed while we read it ([`vanished`]).
fn walk(base: &Path, dir: &Path, found: &mut Members) {
    let rel = format!("/{}", dir.strip_prefix(base).unwrap_or(dir).display());
    let owner = owner_of_cgroup(&rel);
    match read_procs(&dir.join("cgroup.procs")) {
        Ok(pids) => found.members.extend(pids.into_iter().map(|pid| Member {
            pid,
            owner: owner.clone(),
        })),
        Err(e) if threaded(&e) => {
            log::debug!("{rel} is a threaded cgroup: its processes are listed by its thread root");
            return;
        }
        Err(e) => {
            found
                .problems
                .push(format!("{e:#}; skipping the cgroup {rel} and those below it"));
            return;
        }
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        // A unit stopped while we walked: its cgroup is gone, nothing to see.
        Err(e) if e.kind() == ErrorKind::NotFound => return,
        Err(e) => {
            let e = anyhow::Error::new(e).context(format!("failed to list {}", dir.display()));
            found.problems.push(format!("{e:#}; skipping the cgroups below {rel}"));
            return;
        }
    };
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            walk(base, &entry.path(), found);
        }
    }
}

/// Whether reading `cgroup.procs` failed because the cgroup is threaded
/// (cgroup v2): then it is no loss, since the nearest domain above it
/// (its thread root, already read, in the same unit) lists every process
/// of the threaded subtree (Documentation/admin-guide/cgroup-v2.rst,
/// "Threads").
fn threaded(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::raw_os_error)
        == Some(libc::EOPNOTSUPP)
}

fn read_procs(path: &PathBuf) -> Result<Vec<u32>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s.lines().filter_map(|l| l.trim().parse().ok()).collect()),
        Err(e) if vanished(&e, path) => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("failed to read {}", path.display())),
    }
}

/// Whether reading the cgroup file `path` failed because its cgroup is
/// gone (a unit stopped while we walked): nothing to see, no problem.
/// Besides ENOENT, kernfs answers ENODEV for a file whose cgroup was
/// removed after we opened it (`kernfs_get_active` failing in
/// fs/kernfs/file.c); seen on v1 when a transient unit ends mid-scan.
/// ENODEV counts only once the cgroup's directory is gone too.
fn vanished(e: &std::io::Error, path: &Path) -> bool {
    if e.kind() == ErrorKind::NotFound {
        return true;
    }
    e.raw_os_error() == Some(libc::ENODEV) && path.parent().is_some_and(|dir| !dir.exists())
}

/// The pids (tgids) in the cgroup `path` (as systemd's `ControlGroup`
/// property names it, e.g. `/system.slice/a.service`) and every cgroup
/// below it. A cgroup that vanished meanwhile simply has no pids; one
/// that cannot be read is an error.
pub(crate) fn pids_under(root: &SysRoot, layout: Layout, path: &str) -> Result<Vec<u32>> {
    let base = root.path(layout.base());
    let dir = base.join(path.trim_start_matches('/'));
    let mut found = Members::default();
    walk(&base, &dir, &mut found);
    // Verification must not call a unit clean while part of it went
    // unread, so here a problem is an error.
    if let Some(p) = found.problems.first() {
        anyhow::bail!("{p}");
    }
    let mut pids: Vec<u32> = found.members.into_iter().map(|m| m.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

/// Which cgroup hierarchy a `/proc/PID/cgroup` line describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Hierarchy {
    /// v1's `name=systemd`.
    Named,
    /// The v2 (`0::`) tree.
    Unified,
}

/// Picks systemd's cgroup path out of a `/proc/PID/cgroup` text. Which
/// line counts depends on the layout: on legacy hosts the `0::` line is
/// just `/`, and in a v2 container on a hybrid host the `name=systemd`
/// line is just `/`. Without a known layout, the line that says more wins.
pub fn systemd_path_of(text: &str, layout: Option<Layout>) -> Option<&str> {
    systemd_line(text, layout).map(|(_, path)| path)
}

fn systemd_line(text: &str, layout: Option<Layout>) -> Option<(Hierarchy, &str)> {
    let (mut named, mut unified) = (None, None);
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(id), Some(ctl), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if ctl == "name=systemd" {
            named = Some((Hierarchy::Named, path));
        } else if id == "0" && ctl.is_empty() {
            unified = Some((Hierarchy::Unified, path));
        }
    }
    match layout {
        Some(Layout::Unified) => unified.or(named),
        Some(Layout::Legacy) => named.or(unified),
        Some(Layout::Hybrid) | None => match (named, unified) {
            (Some((_, "/")), Some(u)) => Some(u),
            (Some(n), _) => Some(n),
            (None, u) => u,
        },
    }
}

/// The owner of one process, from `/proc/PID/cgroup`. `Ok(None)` if the
/// process is gone.
pub fn owner_of_pid(root: &SysRoot, layout: Option<Layout>, pid: u32) -> Result<Option<Owner>> {
    Owners::new(root, layout, HashMap::new()).get(pid)
}

/// Finds the owners of processes, reading as little as it can.
///
/// Processes of the system slice are known from its walk. Any other
/// process costs a read of its `/proc/PID/cgroup` (the kernel formats a
/// line per hierarchy, ~9 µs on a hybrid host), unless several of the
/// processes asked about share a cgroup, as a forking server's workers
/// in a session or a container do: the second one found in a cgroup has
/// that cgroup's `cgroup.procs` read, which settles all its other
/// processes at once. A process that left the cgroup since is simply
/// placed where it was a moment ago, as a per-process read a moment
/// earlier would have placed it.
pub struct Owners<'a> {
    root: &'a SysRoot,
    layout: Option<Layout>,
    known: HashMap<u32, Owner>,
    /// How many per-process reads named each cgroup.
    hits: HashMap<(Hierarchy, String), u32>,
    buf: Vec<u8>,
}

impl<'a> Owners<'a> {
    /// `known`: owners already learned, normally from [`system_members`].
    pub fn new(root: &'a SysRoot, layout: Option<Layout>, known: HashMap<u32, Owner>) -> Self {
        Self {
            root,
            layout,
            known,
            hits: HashMap::new(),
            buf: Vec::new(),
        }
    }

    /// The owner of `pid`; `Ok(None)` if the process is gone.
    pub fn get(&mut self, pid: u32) -> Result<Option<Owner>> {
        if let Some(o) = self.known.get(&pid) {
            return Ok(Some(o.clone()));
        }
        let path = self.root.proc_pid(pid, "cgroup");
        let n = match procfs::read_small(&path, &mut self.buf) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("failed to read {}", path.display())),
        };
        let text = String::from_utf8_lossy(&self.buf[..n]);
        let Some((hierarchy, cgroup)) = systemd_line(&text, self.layout) else {
            return Ok(Some(Owner::Outside(String::new())));
        };
        let owner = owner_of_cgroup(cgroup);
        let cgroup = cgroup.to_string();
        let hits = self.hits.entry((hierarchy, cgroup.clone())).or_default();
        *hits += 1;
        if *hits == 2 {
            self.learn_cgroup(hierarchy, &cgroup, &owner);
        }
        Ok(Some(owner))
    }

    /// Records every process of one cgroup. Failure only means falling
    /// back to per-process reads, so errors are dropped: the cgroup may
    /// have gone, or be a threaded v2 cgroup without `cgroup.procs`.
    fn learn_cgroup(&mut self, hierarchy: Hierarchy, cgroup: &str, owner: &Owner) {
        let base = match (hierarchy, self.layout) {
            (Hierarchy::Named, _) => Layout::Legacy.base(),
            (Hierarchy::Unified, Some(Layout::Unified)) => Layout::Unified.base(),
            (Hierarchy::Unified, Some(_)) => Layout::Hybrid.base(),
            // No systemd: v2 sits at the top when it is the only tree.
            (Hierarchy::Unified, None) if self.root.path("sys/fs/cgroup/cgroup.controllers").exists() => {
                Layout::Unified.base()
            }
            (Hierarchy::Unified, None) => Layout::Hybrid.base(),
        };
        let procs = self
            .root
            .path(base)
            .join(cgroup.trim_start_matches('/'))
            .join("cgroup.procs");
        let Ok(pids) = read_procs(&procs) else {
            return;
        };
        for pid in pids {
            self.known.entry(pid).or_insert_with(|| owner.clone());
        }
    }
}

/// Every process id under `/proc`.
pub fn all_pids(root: &SysRoot) -> Result<Vec<u32>> {
    let dir = root.path("proc");
    let mut pids: Vec<u32> = std::fs::read_dir(&dir)
        .with_context(|| format!("failed to list {}", dir.display()))?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// The parent pid from `/proc/PID/stat`. The comm field may contain
/// spaces and parentheses, so parse after the last `)`.
pub(crate) fn parent_of(root: &SysRoot, pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(root.proc_pid(pid, "stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Units holding this process or any ancestor: restarting one of them would
/// kill the package manager that called us, or ourselves.
pub(crate) fn ancestor_units(root: &SysRoot, start: u32) -> Vec<String> {
    let mut units = Vec::new();
    let mut pid = start;
    for _ in 0..256 {
        if let Ok(Some(Owner::Unit(u))) = owner_of_pid(root, detect(root), pid) {
            if !units.contains(&u) {
                units.push(u);
            }
        }
        match parent_of(root, pid) {
            Some(p) if p > 1 && p != pid => pid = p,
            _ => break,
        }
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_line_of_the_layout() {
        let legacy = "12:pids:/system.slice/a.service\n1:name=systemd:/system.slice/a.service\n0::/\n";
        // A v2 container on a hybrid host, as seen inside the container.
        let v2_on_hybrid = "9:name=systemd:/\n8:pids:/\n0::/system.slice/b.service\n";
        for layout in [Some(Layout::Legacy), Some(Layout::Hybrid), None] {
            assert_eq!(systemd_path_of(legacy, layout), Some("/system.slice/a.service"));
        }
        for layout in [Some(Layout::Unified), Some(Layout::Hybrid), None] {
            assert_eq!(systemd_path_of(v2_on_hybrid, layout), Some("/system.slice/b.service"));
        }
        assert_eq!(
            systemd_path_of("0::/system.slice/b.service\n", None),
            Some("/system.slice/b.service")
        );
        assert_eq!(systemd_path_of("garbage\n", None), None);
    }

    #[test]
    fn pids_under_reads_nested_cgroups() {
        let d = tempfile::tempdir().unwrap();
        let r = SysRoot::new(d.path());
        let unit = r.path("sys/fs/cgroup/system.slice/a.service");
        std::fs::create_dir_all(unit.join("payload")).unwrap();
        std::fs::write(unit.join("cgroup.procs"), "12\n10\n").unwrap();
        std::fs::write(unit.join("payload/cgroup.procs"), "11\n10\n").unwrap();
        let pids = pids_under(&r, Layout::Unified, "/system.slice/a.service").unwrap();
        assert_eq!(pids, vec![10, 11, 12]);
        assert!(pids_under(&r, Layout::Unified, "/system.slice/gone.service")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn only_eopnotsupp_means_threaded() {
        let err = |code| anyhow::Error::new(std::io::Error::from_raw_os_error(code)).context("failed to read x");
        assert!(threaded(&err(libc::EOPNOTSUPP)));
        for other in [libc::EACCES, libc::ENODEV, libc::ENAMETOOLONG, libc::EISDIR] {
            assert!(!threaded(&err(other)), "{other}");
        }
    }

    #[test]
    fn enodev_of_a_removed_cgroup_means_vanished_not_a_problem() {
        let (_d, r) = SysRoot::scratch();
        let here = r.path("sys/fs/cgroup/system.slice/here.service");
        std::fs::create_dir_all(&here).unwrap();
        let gone = r.path("sys/fs/cgroup/system.slice/gone.service");
        let enodev = std::io::Error::from_raw_os_error(libc::ENODEV);
        assert!(vanished(&enodev, &gone.join("cgroup.procs")));
        // The cgroup still exists: ENODEV is then a real problem.
        assert!(!vanished(&enodev, &here.join("cgroup.procs")));
        let enoent = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert!(vanished(&enoent, &here.join("cgroup.procs")));
        let eacces = std::io::Error::from_raw_os_error(libc::EACCES);
        assert!(!vanished(&eacces, &gone.join("cgroup.procs")));
    }

    #[test]
    fn an_unreadable_cgroup_skips_its_subtree_only() {
        let (_d, r) = SysRoot::scratch();
        let slice = r.path("sys/fs/cgroup/system.slice");
        let x = slice.join("x.service");
        // A directory where the kernel file should be: reading it fails
        // with EISDIR, as a threaded cgroup fails with EOPNOTSUPP.
        std::fs::create_dir_all(x.join("sub/cgroup.procs")).unwrap();
        std::fs::create_dir_all(x.join("sub/deeper")).unwrap();
        std::fs::write(x.join("sub/deeper/cgroup.procs"), "99\n").unwrap();
        std::fs::write(x.join("cgroup.procs"), "10\n").unwrap();
        std::fs::create_dir_all(slice.join("y.service")).unwrap();
        std::fs::write(slice.join("y.service/cgroup.procs"), "20\n").unwrap();
        let found = system_members(&r, Layout::Unified);
        let pids: Vec<u32> = found.members.iter().map(|m| m.pid).collect();
        assert_eq!(pids, vec![10, 20]);
        assert_eq!(found.problems.len(), 1, "{:?}", found.problems);
        assert!(
            found.problems[0].contains("system.slice/x.service/sub/cgroup.procs"),
            "{:?}",
            found.problems
        );
        // Verification reads the same tree, and must not call it clean.
        assert!(pids_under(&r, Layout::Unified, "/system.slice/x.service").is_err());
        assert_eq!(
            pids_under(&r, Layout::Unified, "/system.slice/y.service").unwrap(),
            vec![20]
        );
    }

    /// A fake root where pids 20, 21 and 22 share a user-session cgroup
    /// (under `layout_dir`, where the layout keeps that tree) but only 20
    /// and 21 have
    /// a `/proc/PID/cgroup` file.
    fn session_root(layout_dir: &str, cgroup_line: &str) -> (tempfile::TempDir, SysRoot) {
        let d = tempfile::tempdir().unwrap();
        let r = SysRoot::new(d.path());
        let cg = "user.slice/user-1000.slice/session-1.scope";
        for pid in [20, 21] {
            std::fs::create_dir_all(r.proc_pid(pid, "")).unwrap();
            std::fs::write(r.proc_pid(pid, "cgroup"), format!("{cgroup_line}/{cg}\n")).unwrap();
        }
        let dir = r.path(layout_dir).join(cg);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cgroup.procs"), "20\n21\n22\n").unwrap();
        (d, r)
    }

    #[test]
    fn second_process_of_a_cgroup_settles_the_rest() {
        let want = Owner::Outside("/user.slice/user-1000.slice/session-1.scope".into());
        for (layout, dir, line) in [
            (Some(Layout::Unified), "sys/fs/cgroup", "0::"),
            (Some(Layout::Hybrid), "sys/fs/cgroup/unified", "0::"),
            (Some(Layout::Legacy), "sys/fs/cgroup/systemd", "1:name=systemd:"),
            (None, "sys/fs/cgroup/unified", "0::"),
        ] {
            let (_d, r) = session_root(dir, line);
            let mut owners = Owners::new(&r, layout, HashMap::new());
            assert_eq!(owners.get(20).unwrap(), Some(want.clone()), "{layout:?}");
            // One process alone is not worth reading the cgroup for.
            assert_eq!(owners.get(22).unwrap(), None, "{layout:?}");
            assert_eq!(owners.get(21).unwrap(), Some(want.clone()), "{layout:?}");
            // 22 has no /proc file: only cgroup.procs can have placed it.
            assert_eq!(owners.get(22).unwrap(), Some(want.clone()), "{layout:?}");
            assert_eq!(owners.get(23).unwrap(), None, "{layout:?}");
        }
    }

    #[test]
    fn unreadable_cgroup_falls_back_to_per_process_reads() {
        let (_d, r) = session_root("sys/fs/cgroup/elsewhere", "0::");
        let mut owners = Owners::new(&r, Some(Layout::Unified), HashMap::new());
        assert!(owners.get(20).unwrap().is_some());
        assert!(owners.get(21).unwrap().is_some());
        assert_eq!(owners.get(22).unwrap(), None);
    }

    #[test]
    fn known_owners_come_first() {
        let (_d, r) = session_root("sys/fs/cgroup", "0::");
        let known = HashMap::from([(20, Owner::Unit("a.service".into()))]);
        let mut owners = Owners::new(&r, Some(Layout::Unified), known);
        assert_eq!(owners.get(20).unwrap(), Some(Owner::Unit("a.service".into())));
    }

    #[test]
    fn owners_agree_with_proc_for_live_processes() {
        // Real processes of this test run: the batch path and the
        // per-process read place each one in the same cgroup.
        let root = SysRoot::default();
        let layout = detect(&root);
        let mut kids: Vec<_> = (0..3)
            .map(|_| std::process::Command::new("sleep").arg("30").spawn().unwrap())
            .collect();
        let mut owners = Owners::new(&root, layout, HashMap::new());
        for k in &kids {
            let batch = owners.get(k.id()).unwrap();
            let single = owner_of_pid(&root, layout, k.id()).unwrap();
            assert_eq!(batch, single);
            assert!(batch.is_some());
        }
        for k in &mut kids {
            k.kill().unwrap();
            k.wait().unwrap();
        }
    }

    #[test]
    fn parent_of_real_process() {
        let me = std::process::id();
        let parent = parent_of(&SysRoot::default(), me).unwrap();
        assert_eq!(parent, std::os::unix::process::parent_id());
    }
}
