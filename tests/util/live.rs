//! Live processes for tests on the real `/proc`: a child that maps a
//! private copy of a system library, which the test then replaces or
//! deletes the way a package manager does.
//!
//! The copy must lie where the scan looks. It never considers files under
//! /tmp, /var/tmp or /run (`staleness::ignored`), and cargo's target
//! directory is there when the checkout is (a first clone often lands in
//! /tmp), so the directory is picked at run time: the first of
//! `RESTART_STALE_TEST_SCRATCH`, cargo's target tmpdir and `$HOME` that
//! is writable and outside those paths. Where none of them serves, the
//! tests that need a victim say "skipped". ci/test runs the tests as
//! nobody (no home) with a scratch directory of its own, and fails on
//! any skip.

use restart_stale::system::staleness;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Names a directory for the scratch libraries, ahead of the defaults.
pub const SCRATCH_ENV: &str = "RESTART_STALE_TEST_SCRATCH";

/// The name of the private library copy each victim maps.
pub const PROBE: &str = "libstale-probe.so.1";

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

/// A private directory the scan considers, or why there is none.
pub fn scratch_dir() -> Result<tempfile::TempDir, String> {
    let candidates = [
        std::env::var_os(SCRATCH_ENV).map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR"))),
        std::env::var_os("HOME").map(PathBuf::from),
    ];
    let mut tried = Vec::new();
    for dir in candidates.into_iter().flatten() {
        let made = considered(&dir).and_then(|real| {
            let mut scratch = tempfile::Builder::new();
            scratch.prefix(".restart-stale-test.");
            scratch.tempdir_in(real).map_err(|e| e.to_string())
        });
        match made {
            Ok(tmp) => return Ok(tmp),
            Err(why) => tried.push(format!("{}: {why}", dir.display())),
        }
    }
    Err(format!(
        "no writable directory for a scratch library that the scan considers ({}); \
set {SCRATCH_ENV} to one",
        tried.join("; ")
    ))
}

/// `dir` as the kernel names it in maps (symlinks resolved), if the scan
/// looks at files there.
fn considered(dir: &Path) -> Result<PathBuf, String> {
    let real = dir.canonicalize().map_err(|e| e.to_string())?;
    match staleness::ignored(real.join(PROBE).as_os_str().as_bytes()) {
        true => Err(format!("{} is a path the scan ignores", real.display())),
        false => Ok(real),
    }
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

/// Starts `sleep` with a private copy of libm preloaded, where the scan
/// looks.
pub fn start_victim() -> Result<Victim, String> {
    Ok(start_victim_as(scratch_dir()?, sleep))
}

/// Like [`start_victim`], for tests that only read maps: the library may
/// lie where the scan does not look (in the temporary directory), so this
/// victim can always be started.
pub fn start_victim_anywhere() -> Victim {
    start_victim_as(tempfile::tempdir().unwrap(), sleep)
}

fn sleep(_: &Path) -> Command {
    let mut c = Command::new("sleep");
    c.arg("60");
    c
}

/// Like [`start_victim`], but the child chroots itself into an empty
/// directory once the library is mapped. `unshare --map-root-user` grants
/// the chroot capability in a user namespace of its own, so this works
/// without root; the mount namespace stays ours. perl is Essential on
/// Debian and present on Fedora.
pub fn start_chrooted_victim() -> Result<Victim, String> {
    let v = start_victim_as(scratch_dir()?, |dir| {
        let jail = dir.join("jail");
        std::fs::create_dir(&jail).unwrap();
        let mut c = Command::new("unshare");
        c.args(["--user", "--map-root-user", "perl", "-e"])
            .arg(r#"chroot($ARGV[0]) && chdir("/") or die "chroot: $!"; sleep 60"#)
            .arg(&jail);
        c
    });
    let root = format!("/proc/{}/root", v.child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_link(&root).map(|r| r == Path::new("/")).unwrap_or(true) {
        assert!(Instant::now() < deadline, "child never chrooted");
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(v)
}

/// Starts the command `make` builds (given the victim's private directory
/// `dir`) with a private copy of libm preloaded, and waits until it is
/// mapped.
fn start_victim_as(dir: tempfile::TempDir, make: impl FnOnce(&Path) -> Command) -> Victim {
    let lib = dir.path().join(PROBE);
    std::fs::copy(system_library(), &lib).unwrap();
    let child = make(dir.path()).env("LD_PRELOAD", &lib).spawn().unwrap();
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

/// A child that is killed and reaped when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd`, waits for it to print `ready` (it is set up), then past
/// the margin a change time is judged at: boot time is known to the
/// second (interp::clock), so a change counts only when clearly after.
pub fn start_ready(cmd: &mut Command) -> Running {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "child did not start");
    std::thread::sleep(Duration::from_millis(1300));
    Running(child)
}
