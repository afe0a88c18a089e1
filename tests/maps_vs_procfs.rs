//! Differential check: our zero-allocation maps parser against the procfs
//! crate's parser, on every process this user can read.

use crate::util::live::start_victim_anywhere;
use procfs::process::{MMapPath, Process};
use restart_stale::system::maps;
use std::os::unix::ffi::OsStrExt;

#[test]
fn parser_agrees_with_procfs_on_live_processes() {
    // Make sure at least one live mapping carries the deleted marker.
    let victim = start_victim_anywhere();
    std::fs::remove_file(&victim.lib).unwrap();
    let mut compared = 0;
    let mut saw_deleted = false;
    for proc in procfs::process::all_processes().unwrap().flatten() {
        let pid = proc.pid();
        let Ok(text) = std::fs::read(format!("/proc/{pid}/maps")) else {
            continue;
        };
        let Ok(theirs) = Process::new(pid).and_then(|p| p.maps()) else {
            continue;
        };
        // procfs reads the file again, so a process that changed its
        // mappings in between is not a disagreement.
        let Ok(again) = std::fs::read(format!("/proc/{pid}/maps")) else {
            continue;
        };
        if again != text {
            continue;
        }
        // procfs files SysV shared memory (`/SYSV… (deleted)`, afl-fuzz
        // has one) under its own kind, not as a path.
        let ours: Vec<(u64, u64, Vec<u8>)> = maps::mappings(&text, false)
            .filter(|m| !m.path.starts_with(b"/SYSV"))
            .map(|m| (m.dev, m.ino, m.path.to_vec()))
            .collect();
        let theirs: Vec<(u64, u64, Vec<u8>)> = theirs
            .into_iter()
            .filter_map(|m| match m.pathname {
                MMapPath::Path(p) if m.inode != 0 => {
                    let dev = maps::makedev(m.dev.0 as u64, m.dev.1 as u64);
                    Some((dev, m.inode, p.as_os_str().as_bytes().to_vec()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(ours, theirs, "pid {pid}");
        saw_deleted |= ours.iter().any(|(_, _, p)| p.ends_with(maps::DELETED_MARKER));
        compared += 1;
    }
    assert!(compared > 0, "no process could be compared");
    assert!(saw_deleted, "no deleted mapping was compared");
}
