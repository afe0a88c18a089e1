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
    start_victim_as(|_| {
        let mut c = Command::new("sleep");
        c.arg("60");
        c
    })
}

/// Like [`start_victim`], but the child chroots itself into an empty
/// directory once the library is mapped. `unshare --map-root-user` grants
/// the chroot capability in a user namespace of its own, so this works
/// without root; the mount namespace stays ours. perl is Essential on
/// Debian and present on Fedora.
pub fn start_chrooted_victim() -> Victim {
    let v = start_victim_as(|dir| {
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
    v
}

/// Starts the command `make` builds (given the victim's private directory)
/// with a private copy of libm preloaded, and waits until it is mapped.
fn start_victim_as(make: impl FnOnce(&Path) -> Command) -> Victim {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let lib = dir.path().join("libstale-probe.so.1");
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

/// Copies a fixture tree, symlinks as symlinks.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(entry.file_name());
        let ty = entry.file_type().unwrap();
        if ty.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &dest).unwrap();
        } else if ty.is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// Expands the `{dev:PATH}` and `{ino:PATH}` tokens of every
/// `proc/PID/maps.in` under `root` into `maps`, as tests/golden.rs does.
pub fn expand_maps(root: &Path) {
    use std::os::unix::fs::MetadataExt;
    for pid in std::fs::read_dir(root.join("proc")).unwrap().flatten() {
        let Ok(template) = std::fs::read_to_string(pid.path().join("maps.in")) else {
            continue;
        };
        let mut maps = String::new();
        let mut rest = template.as_str();
        while let Some(start) = rest.find('{') {
            maps.push_str(&rest[..start]);
            let end = start + rest[start..].find('}').unwrap();
            let (kind, path) = rest[start + 1..end].split_once(':').unwrap();
            let md = std::fs::metadata(root.join(path)).unwrap();
            match kind {
                "dev" => maps.push_str(&format!("{:02x}:{:02x}", libc::major(md.dev()), libc::minor(md.dev()))),
                _ => maps.push_str(&md.ino().to_string()),
            }
            rest = &rest[end + 1..];
        }
        maps.push_str(rest);
        std::fs::write(pid.path().join("maps"), maps).unwrap();
    }
}

/// Golden case `name` (tests/cases/NAME/root) in a temporary root, maps
/// expanded, with systemd running there (`/run/systemd/system`; the case's
/// `proc/1/root` already points at the root, so it is no chroot).
pub fn case_root(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let case = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cases")
        .join(name)
        .join("root");
    copy_tree(&case, tmp.path());
    expand_maps(tmp.path());
    std::fs::create_dir_all(tmp.path().join("run/systemd/system")).unwrap();
    tmp
}

/// Allows `units` with links in `/etc/restart-stale` under `root`.
pub fn allow(root: &Path, units: &[&str]) {
    let dir = root.join("etc/restart-stale");
    std::fs::create_dir_all(&dir).unwrap();
    for u in units {
        std::os::unix::fs::symlink(format!("/usr/lib/systemd/system/{u}"), dir.join(u)).unwrap();
    }
}

/// The restart-stale binary with a test root and a clean environment.
pub fn bin(root: &Path) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("restart-stale").unwrap();
    c.env("RESTART_STALE_ROOT", root)
        .env_remove("JOURNAL_STREAM")
        .env_remove("RESTART_STALE_SUSPEND")
        .env_remove("RESTART_STALE_RPM");
    c
}

/// The files of a record directory, `finish.lock` left out.
pub fn record_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| !p.ends_with("finish.lock") && !p.ends_with("closing"));
    v.sort();
    v
}
