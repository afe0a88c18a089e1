//! The scan split across threads reports exactly what one thread does:
//! real processes on the real `/proc`, seen through a root that holds
//! only them, so that nothing else on the machine changes between runs.

use crate::util::bin;
use crate::util::live::{replace_like_dpkg, scratch_dir, system_library, Running};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Enough processes that every thread takes several blocks of them.
const PROCESSES: usize = 150;

/// A root whose `/proc` has only `pids` (links to the real entries) and
/// whose copy of `dir` is the real one, so the mapped libraries resolve.
fn root_of(pids: &[u32], dir: &Path) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let proc = root.path().join("proc");
    std::fs::create_dir(&proc).unwrap();
    symlink("/proc/self", proc.join("self")).unwrap();
    for pid in pids {
        symlink(format!("/proc/{pid}"), proc.join(pid.to_string())).unwrap();
    }
    let inside = root.path().join(dir.strip_prefix("/").unwrap());
    std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
    symlink(dir, &inside).unwrap();
    root
}

fn status(root: &Path, threads: &str, json: bool) -> (Vec<u8>, String) {
    let mut cmd = bin(root);
    cmd.env("RESTART_STALE_THREADS", threads).args(["-vv", "status"]);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(matches!(out.status.code(), Some(0 | 3)), "{stderr}");
    (out.stdout, stderr)
}

#[test]
fn parallel_scan_reports_byte_for_byte_what_one_thread_does() {
    let dir = or_skip!(scratch_dir());
    let real = dir.path().canonicalize().unwrap();
    // Three libraries: one replaced the way dpkg does, one removed, one
    // left alone; every third process maps each.
    let libs: Vec<_> = ["libreplaced.so.1", "libremoved.so.1", "libkept.so.1"]
        .iter()
        .map(|name| real.join(name))
        .collect();
    for lib in &libs {
        std::fs::copy(system_library(), lib).unwrap();
    }
    let children: Vec<Running> = (0..PROCESSES)
        .map(|i| {
            Running(
                Command::new("sleep")
                    .arg("60")
                    .env("LD_PRELOAD", &libs[i % 3])
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    let pids: Vec<u32> = children.iter().map(|c| c.0.id()).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    for (i, pid) in pids.iter().enumerate() {
        let needle = libs[i % 3].to_str().unwrap();
        while !std::fs::read_to_string(format!("/proc/{pid}/maps"))
            .unwrap_or_default()
            .contains(needle)
        {
            assert!(Instant::now() < deadline, "pid {pid} never mapped {needle}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    replace_like_dpkg(&libs[0]);
    std::fs::remove_file(&libs[1]).unwrap();
    let root = root_of(&pids, &real);

    for json in [false, true] {
        let (one, _) = status(root.path(), "1", json);
        let (four, log) = status(root.path(), "4", json);
        assert!(
            log.contains(&format!("scanning {PROCESSES} processes on up to 4 threads")),
            "{log}"
        );
        let text = String::from_utf8_lossy(&one);
        // Not two empty reports: every replaced or removed library's
        // processes are in it, each named once.
        let stale = pids
            .iter()
            .enumerate()
            .filter(|(i, pid)| {
                let named = if json {
                    format!("\"pid\":{pid}}}")
                } else {
                    format!("pid {pid} ")
                };
                let found = text.matches(&named).count();
                assert_eq!(found, usize::from(i % 3 != 2), "pid {pid} (json: {json}) in:\n{text}");
                found == 1
            })
            .count();
        assert_eq!(stale, PROCESSES / 3 * 2);
        assert!(
            one == four,
            "one thread:\n{text}\nfour threads:\n{}",
            String::from_utf8_lossy(&four)
        );
    }
}
