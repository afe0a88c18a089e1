//! A user's file never makes a unit restart (issue 22, finding 5), with
//! real processes: one in a user namespace of its own that mounts a tmpfs
//! over a directory and maps a file there, and one that maps a file from
//! a directory anyone may write, outside the places the prefix list names.

use crate::util::bin;
use crate::util::live::{scratch_dir, system_library, PROBE};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_mapped(pid: u32, lib: &Path) {
    let maps = format!("/proc/{pid}/maps");
    let needle = lib.to_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&maps).unwrap_or_default().contains(needle) {
        assert!(Instant::now() < deadline, "pid {pid} never mapped {needle}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether this host lets us make a user and mount namespace (Debian's
/// `kernel.unprivileged_userns_clone=0`, AppArmor's restriction, a
/// container's seccomp profile all refuse it).
fn user_namespaces() -> Result<(), String> {
    let out = Command::new("unshare")
        .args(["-Urm", "true"])
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!(
            "no unprivileged user namespaces here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// A fake root that shows the real `pid` (and ourselves) through links
/// to the real `/proc`, and places `pid` in `victim.service`: the real
/// victim, as a unit the plan decides on.
fn root_placing(pid: u32, host_dir: &Path) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("proc")).unwrap();
    std::os::unix::fs::symlink("/proc/self", r.join("proc/self")).unwrap();
    std::os::unix::fs::symlink(format!("/proc/{pid}"), r.join(format!("proc/{pid}"))).unwrap();
    let unit = r.join("sys/fs/cgroup/system.slice/victim.service");
    std::fs::create_dir_all(&unit).unwrap();
    std::fs::write(r.join("sys/fs/cgroup/cgroup.procs"), "").unwrap();
    std::fs::write(unit.join("cgroup.procs"), format!("{pid}\n")).unwrap();
    // The host has the directory the victim mounted over, without the file.
    let rel = host_dir.strip_prefix("/").unwrap();
    std::fs::create_dir_all(r.join(rel)).unwrap();
    root
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.code().is_some_and(|c| c == 0 || c == 3), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

/// `unshare -Urm` as the user, then a tmpfs over a directory, a library
/// there, mapped and deleted: the kernel prints the host's path, the
/// host has no such file, and with `-a` and no transaction the unit must
/// still not be planned for restart.
#[test]
fn a_tmpfs_in_a_user_namespace_never_makes_a_restart() {
    or_skip!(user_namespaces());
    let dir = or_skip!(scratch_dir());
    let over = dir.path().join("over");
    std::fs::create_dir(&over).unwrap();
    let lib = over.join(PROBE);
    let script = r#"mount -t tmpfs tmpfs "$1" && cp "$2" "$3" && LD_PRELOAD="$3" exec sleep 60"#;
    let child = Command::new("unshare")
        .args(["-Urm", "sh", "-c", script, "sh"])
        .arg(&over)
        .arg(system_library())
        .arg(&lib)
        .spawn()
        .unwrap();
    let victim = Reaped(child);
    let pid = victim.0.id();
    wait_mapped(pid, &lib);
    // Deleted in the victim's own tmpfs, through its root.
    let theirs = PathBuf::from(format!("/proc/{pid}/root")).join(lib.strip_prefix("/").unwrap());
    std::fs::remove_file(&theirs).unwrap();
    assert!(!lib.exists(), "the tmpfs is the victim's alone");

    let root = root_placing(pid, &over);
    let doc = json_of(&bin(root.path()).args(["-n", "-a", "--json"]).output().unwrap());
    let units = doc["units"].as_array().unwrap();
    let unit = units
        .iter()
        .find(|u| u["unit"] == "victim.service")
        .expect("victim.service planned");
    let files: Vec<_> = unit["processes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["files"].as_array().unwrap().clone())
        .collect();
    let f = files
        .iter()
        .find(|f| f["path"] == lib.to_str().unwrap())
        .unwrap_or_else(|| panic!("{} not reported: {unit}", lib.display()));
    assert_eq!(f["other_root"], true, "{f}");
    assert_eq!(unit["action"], "skip", "{unit}");
    assert_eq!(unit["reason"], "other-root-only", "{unit}");
}

/// A library in a directory anyone may write (or, as root, one that
/// nobody owns), outside `/home`, `/srv` and the other listed places:
/// reported, flagged report-only, never a reason to restart.
#[test]
fn a_library_in_a_directory_users_control_is_report_only() {
    let dir = or_skip!(scratch_dir());
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(&open, Some(65534), Some(65534)).unwrap();
    } else {
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let lib = open.join(PROBE);
    std::fs::copy(system_library(), &lib).unwrap();
    let child = Command::new("sleep").arg("60").env("LD_PRELOAD", &lib).spawn().unwrap();
    let victim = Reaped(child);
    let pid = victim.0.id();
    wait_mapped(pid, &lib);
    std::fs::remove_file(&lib).unwrap();

    let mut cmd = assert_cmd::Command::cargo_bin("restart-stale").unwrap();
    let out = cmd
        .args(["status", "--json"])
        .env_remove("RESTART_STALE_ROOT")
        .output()
        .unwrap();
    let doc = json_of(&out);
    let mut procs: Vec<serde_json::Value> = doc["outside"].as_array().unwrap().clone();
    for u in doc["units"].as_array().unwrap() {
        procs.extend(u["processes"].as_array().unwrap().iter().cloned());
    }
    let ours: Vec<_> = procs.iter().filter(|p| p["pid"] == pid).collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    let files = ours[0]["files"].as_array().unwrap();
    let f = files
        .iter()
        .find(|f| f["path"] == lib.to_str().unwrap())
        .unwrap_or_else(|| panic!("{} not reported: {files:?}", lib.display()));
    assert_eq!(f["report_only"], true, "{f}");
}
