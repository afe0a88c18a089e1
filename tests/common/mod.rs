//! Shared helpers for tests on real processes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A library any Debian or Fedora machine has, harmless to preload.
pub fn system_library() -> PathBuf {
    [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib64/libm.so.6",
        "/lib/aarch64-linux-gnu/libm.so.6",
        "/usr/lib/libm.so.6",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("no libm.so.6 found to copy")
}

pub struct Victim {
    pub child: Child,
    pub lib: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `sleep` with a private copy of libm preloaded. The copy lives
/// under cargo's target tmpdir, not /tmp, because /tmp mappings are
/// deliberately ignored by the scan.
pub fn start_victim() -> Victim {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let lib = dir.path().join("libstale-probe.so.1");
    std::fs::copy(system_library(), &lib).unwrap();
    let child = Command::new("sleep").arg("60").env("LD_PRELOAD", &lib).spawn().unwrap();
    let maps = format!("/proc/{}/maps", child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    let needle = lib.to_str().unwrap().to_string();
    while !std::fs::read_to_string(&maps).unwrap_or_default().contains(&needle) {
        assert!(Instant::now() < deadline, "child never mapped {needle}");
        std::thread::sleep(Duration::from_millis(10));
    }
    Victim { child, lib, _dir: dir }
}

/// dpkg unpacks `path.dpkg-new`, then renames it over `path`.
pub fn replace_like_dpkg(path: &Path) {
    let new = path.with_extension("1.dpkg-new");
    std::fs::copy(system_library(), &new).unwrap();
    std::fs::rename(&new, path).unwrap();
}
