//! The alpm hook as pacman runs it (alpm-hooks(5), `NeedsTargets`): the
//! matched paths on stdin, one per line, relative to the root, sorted,
//! directories with a trailing `/`. Exit status 0 whatever the input, the
//! record left behind, and what the finish unit then does.

use crate::util::bin;
use crate::util::fixture::{self, allow, case_root, record_files};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

const DIR: &str = "run/restart-stale/pacman";

/// What pacman passes for `pacman -Syu` upgrading libdemo (whose old
/// version also had libdemo.so.1.0) and removing `other`, through the
/// shipped hook's `Target = usr/*`.
const TARGETS: &str = "usr/
usr/lib/
usr/lib/x86_64-linux-gnu/
usr/lib/x86_64-linux-gnu/libdemo.so.1
usr/lib/x86_64-linux-gnu/libdemo.so.1.0
usr/sbin/
usr/sbin/other
usr/share/doc/libdemo/changelog
";

fn pending(root: &Path) -> String {
    fs::read_to_string(root.join(DIR).join("pending")).unwrap_or_default()
}

#[test]
fn the_shipped_hook_is_what_this_test_feeds() {
    let hook = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/pacman/usr/share/libalpm/hooks/restart-stale.hook"),
    )
    .unwrap();
    for line in [
        "Type = Path",
        "Operation = Install",
        "Operation = Upgrade",
        "Operation = Remove",
        "Target = usr/*",
        "When = PostTransaction",
        "Exec = /usr/bin/restart-stale pacman-hook",
        "NeedsTargets",
    ] {
        assert!(hook.lines().any(|l| l == line), "missing {line:?} in the hook");
    }
}

// What one hook run records from pacman's targets, good and bad, is
// golden: tests/hooks/pacman (tests/golden.rs).

#[test]
fn no_systemd_chroot_or_suspended_records_nothing() {
    let bare = tempfile::tempdir().unwrap();
    let chroot = case_root("05-changed-merged-usr");
    fs::remove_file(chroot.path().join("proc/1/root")).unwrap();
    symlink("/", chroot.path().join("proc/1/root")).unwrap();
    let suspended = case_root("05-changed-merged-usr");
    for (root, suspend, said) in [
        (bare.path(), None, "no systemd running: not restarting anything"),
        (chroot.path(), None, "running in a chroot: not restarting anything"),
        (suspended.path(), Some("1"), "RESTART_STALE_SUSPEND=1 is set"),
    ] {
        let mut c = bin(root);
        c.arg("pacman-hook").write_stdin(TARGETS);
        if let Some(v) = suspend {
            c.env("RESTART_STALE_SUSPEND", v);
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&out.stderr).contains(said), "{said}: {out:?}");
        assert!(record_files(&root.join(DIR)).is_empty(), "{said}");
    }
}

#[test]
fn finish_acts_once_on_the_recorded_files() {
    let tmp = case_root("05-changed-merged-usr");
    let root = tmp.path();
    allow(root, &["a.service", "b.service", "c.service"]);
    bin(root).arg("pacman-hook").write_stdin(TARGETS).assert().code(0);
    let out = bin(root).args(["pacman-hook", "finish"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A test root never reaches the bus: the restarts stay pending.
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stderr.contains("pacman transaction; 4 changed files"), "{stderr}");
    fixture::assert_case05_acted_on(&stdout);
    assert!(record_files(&root.join(DIR)).is_empty(), "the record was taken");

    let again = bin(root).args(["pacman-hook", "finish"]).output().unwrap();
    assert_eq!(again.status.code(), Some(0));
    assert!(again.stdout.is_empty());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no recorded pacman transaction"));
}

/// `RESTART_STALE_DEFER=1 pacman -Syu`: pacman has no setting of its own
/// for deferring, so the hook records it from its environment, and the
/// finish marks instead of restarting (docs/deferred.md); a test root
/// never reaches the bus, so nothing is marked here and it still exits 0.
#[test]
fn defer_in_pacmans_environment_defers_the_restarts() {
    deferred_run(|_, cmd| {
        cmd.env("RESTART_STALE_DEFER", "1");
    });
}

/// The lasting form of the same: `auto-restart = false` in
/// /etc/restart-stale.conf, which every hook reads.
#[test]
fn defer_in_restart_stale_conf_defers_the_restarts() {
    deferred_run(|root, _| {
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(
            root.join("etc/restart-stale.conf"),
            "# nights only\nauto-restart = false\n",
        )
        .unwrap();
    });
}

fn deferred_run(set_up: impl FnOnce(&Path, &mut assert_cmd::Command)) {
    let tmp = case_root("05-changed-merged-usr");
    let root = tmp.path();
    allow(root, &["a.service", "b.service", "c.service"]);
    let mut cmd = bin(root);
    set_up(root, &mut cmd);
    let out = cmd.arg("pacman-hook").write_stdin(TARGETS).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        pending(root).lines().any(|l| l == "auto-restart false"),
        "{}",
        pending(root)
    );
    let out = bin(root).args(["pacman-hook", "finish"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("marking the units to restart later"), "{stderr}");
    assert!(stderr.contains("not marking anything: the root is not /"), "{stderr}");
    fixture::assert_case05_acted_on(&String::from_utf8_lossy(&out.stdout));
}
