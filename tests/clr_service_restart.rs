//! restart-stale invoked as `clr-service-restart`, as swupd runs it after
//! an update: its policy commands and its usage. Its golden cases, in
//! `tests/swupd/`, run in tests/golden.rs.

use crate::util::bin_named;
use std::fs;
use std::path::Path;

fn run(root: &Path, args: &[&str]) -> std::process::Output {
    let (mut cmd, _link) = bin_named("clr-service-restart", root);
    cmd.args(args).output().unwrap()
}

#[test]
fn policy_commands_keep_clr_service_restart_links() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let dir = root.join("etc/clr-service-restart");
    let out = run(root, &["allow", "tallow", "rngd.service"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        fs::read_link(dir.join("tallow.service")).unwrap(),
        Path::new("/usr/lib/systemd/system/tallow.service")
    );
    assert!(dir.join("rngd.service").symlink_metadata().is_ok());
    let out = run(root, &["disallow", "rngd"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(fs::read_link(dir.join("rngd.service")).unwrap(), Path::new("/dev/null"));
    let out = run(root, &["default", "rngd", "tallow"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    assert!(
        !root.join("etc/restart-stale").exists(),
        "restart-stale's own links are untouched"
    );
}

#[test]
fn usage_is_clr_service_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        &["-n", "allow", "x"][..],
        &["-x"],
        &["allow"],
        &["status"],
        &["--changed-files", "-"],
    ] {
        let out = run(tmp.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
    let out = run(tmp.path(), &["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("clr-service-restart") && help.contains("-n") && help.contains("-a"),
        "{help}"
    );
    let out = run(tmp.path(), &["allow", "bad/name"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad/name"));
}
