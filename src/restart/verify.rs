//! Verifying a restart: read the unit's processes again (`MainPID` and
//! every pid in its `ControlGroup`) and scan them for stale files.

use crate::core::unit_name::Owner;
use crate::system::cgroup::{self, Layout};
use crate::system::scan::{Scanner, StaleFile, StaleProcess};
use crate::system::sysroot::SysRoot;
use crate::system::workers;
use crate::systemd::UnitQuery;
use anyhow::Result;

/// What a finished restart left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// Running, and no process of the unit maps a stale file.
    Clean,
    /// Running, but these processes still map stale files.
    StillStale(Vec<StaleProcess>),
    /// The job ended but the unit is not running now (it crashed or was
    /// stopped right after starting).
    NotRunning { active: String, sub: String },
    /// Its processes could not be read.
    Unknown(String),
}

/// Verifies one unit after its restart job ended with `done`.
pub fn unit<Q: UnitQuery + ?Sized>(
    q: &Q,
    root: &SysRoot,
    layout: Option<Layout>,
    name: &str,
    scanner: &mut Scanner,
) -> Verified {
    match try_unit(q, root, layout, name, scanner) {
        Ok(v) => v,
        Err(e) => Verified::Unknown(format!("{e:#}")),
    }
}

fn try_unit<Q: UnitQuery + ?Sized>(
    q: &Q,
    root: &SysRoot,
    layout: Option<Layout>,
    name: &str,
    scanner: &mut Scanner,
) -> Result<Verified> {
    let Some(info) = q.unit(name)? else {
        return Ok(Verified::NotRunning {
            active: "inactive".into(),
            sub: "not loaded".into(),
        });
    };
    if !matches!(info.active_state.as_str(), "active" | "reloading") {
        return Ok(Verified::NotRunning {
            active: info.active_state,
            sub: info.sub_state,
        });
    }
    let mut pids = match (layout, info.control_group.is_empty()) {
        (Some(l), false) => cgroup::pids_under(root, l, &info.control_group)?,
        _ => Vec::new(),
    };
    if info.main_pid != 0 {
        pids.push(info.main_pid);
    }
    pids.sort_unstable();
    pids.dedup();
    let stale = stale_among(root, &pids, &Owner::Unit(name.to_string()), scanner)?;
    Ok(if stale.is_empty() {
        Verified::Clean
    } else {
        Verified::StillStale(stale)
    })
}

/// The stale processes among `pids`; ones that exited meanwhile are skipped.
/// A unit with many processes has them scanned on several threads
/// ([`workers`]), the first of them on `scanner`.
pub(crate) fn stale_among(
    root: &SysRoot,
    pids: &[u32],
    owner: &Owner,
    scanner: &mut Scanner,
) -> Result<Vec<StaleProcess>> {
    let threads = scanner.threads.unwrap_or_else(workers::threads);
    let found = workers::map(
        pids,
        threads,
        scanner,
        Scanner::sibling,
        |s, pid| -> Result<Option<(String, Vec<StaleFile>)>> {
            let Some(mut files) = s.process(root, pid)? else {
                return Ok(None);
            };
            // Files users control, and another root's own copies, never made
            // the restart; they cannot fail it.
            files.retain(|f| !f.user && !f.other_root);
            if files.is_empty() {
                return Ok(None);
            }
            Ok(Some((s.comm(root, pid), files)))
        },
    );
    let mut out = Vec::new();
    for (&pid, found) in pids.iter().zip(found) {
        let Some((comm, files)) = found? else {
            continue;
        };
        out.push(StaleProcess {
            pid,
            comm,
            owner: owner.clone(),
            files,
        });
    }
    Ok(out)
}

/// PID 1's stale files after a re-exec; empty when clean.
pub fn init(root: &SysRoot, scanner: &mut Scanner) -> Result<Vec<StaleProcess>> {
    stale_among(root, &[1], &Owner::Init, scanner)
}

/// `pid 4242 (demod): /usr/lib/libdemo.so.1, /usr/sbin/demod`.
pub(crate) fn describe(p: &StaleProcess) -> String {
    let files: Vec<&str> = p.files.iter().map(|f| &*f.path).collect();
    format!("pid {} ({}): {}", p.pid, p.comm, files.join(", "))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::systemd::fake::{running_service, Fake};
    use std::os::unix::fs::{symlink, MetadataExt};
    use std::path::Path;

    /// A fixture root with one unified-cgroup unit `a.service` holding
    /// `pids`; each process maps `/usr/sbin/d` (fresh) and, if listed in
    /// `stale`, a deleted `/usr/lib/libold.so`.
    pub(crate) fn fixture(pids: &[u32], stale: &[u32]) -> (tempfile::TempDir, SysRoot) {
        let d = tempfile::tempdir().unwrap();
        let root = SysRoot::new(d.path());
        std::fs::create_dir_all(root.path("usr/sbin")).unwrap();
        std::fs::create_dir_all(root.path("usr/lib")).unwrap();
        std::fs::write(root.path("usr/sbin/d"), b"bin").unwrap();
        let md = std::fs::metadata(root.path("usr/sbin/d")).unwrap();
        let dev = format!("{:02x}:{:02x}", libc::major(md.dev()), libc::minor(md.dev()));
        let cg = root.path("sys/fs/cgroup/system.slice/a.service");
        std::fs::create_dir_all(&cg).unwrap();
        let procs: Vec<String> = pids.iter().map(u32::to_string).collect();
        std::fs::write(cg.join("cgroup.procs"), procs.join("\n")).unwrap();
        for &pid in pids.iter().chain([1].iter()) {
            let dir = root.proc_pid(pid, "");
            std::fs::create_dir_all(&dir).unwrap();
            symlink("/usr/sbin/d", dir.join("exe")).unwrap();
            symlink("../..", dir.join("root")).unwrap();
            std::fs::write(dir.join("comm"), "d\n").unwrap();
            let mut maps = format!("1000-2000 r-xp 00000000 {dev} {} /usr/sbin/d\n", md.ino());
            if stale.contains(&pid) {
                maps.push_str(&format!(
                    "3000-4000 r-xp 00000000 {dev} 999999999 /usr/lib/libold.so (deleted)\n"
                ));
            }
            std::fs::write(dir.join("maps"), maps).unwrap();
        }
        (d, root)
    }

    fn svc(main: u32) -> crate::systemd::UnitInfo {
        let mut i = running_service(main);
        i.control_group = "/system.slice/a.service".into();
        i
    }

    #[test]
    fn clean_unit_verifies_clean() {
        let (_d, root) = fixture(&[20, 21], &[]);
        let fake = Fake::with_units([("a.service", svc(20))]);
        let v = unit(
            &fake,
            &root,
            Some(Layout::Unified),
            "a.service",
            &mut Scanner::default(),
        );
        assert_eq!(v, Verified::Clean);
    }

    #[test]
    fn stale_child_in_cgroup_is_found() {
        let (_d, root) = fixture(&[20, 21], &[21]);
        let fake = Fake::with_units([("a.service", svc(20))]);
        let v = unit(
            &fake,
            &root,
            Some(Layout::Unified),
            "a.service",
            &mut Scanner::default(),
        );
        let Verified::StillStale(procs) = v else {
            panic!("{v:?}")
        };
        assert_eq!(procs.len(), 1);
        assert_eq!(describe(&procs[0]), "pid 21 (d): /usr/lib/libold.so");
    }

    #[test]
    fn crashed_after_restart_is_not_running() {
        let (_d, root) = fixture(&[], &[]);
        let mut info = svc(0);
        info.active_state = "failed".into();
        info.sub_state = "failed".into();
        let fake = Fake::with_units([("a.service", info)]);
        let v = unit(
            &fake,
            &root,
            Some(Layout::Unified),
            "a.service",
            &mut Scanner::default(),
        );
        assert!(
            matches!(v, Verified::NotRunning { ref active, .. } if active == "failed"),
            "{v:?}"
        );
        assert!(Path::new(&root.path("proc/1/maps")).exists());
        assert!(init(&root, &mut Scanner::default()).unwrap().is_empty());
    }
}
