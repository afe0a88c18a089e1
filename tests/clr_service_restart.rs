//! restart-stale invoked as `clr-service-restart`, as swupd runs it after
//! an update. Golden cases in `tests/swupd/NN-name/`: `base` names the
//! golden case whose fake root (processes, cgroups) is used, `root/` is
//! laid over it (os-release, swupd manifests, the recorded version,
//! `/etc/clr-service-restart` links), `args` are the arguments and
//! `expected` holds stdout, the exit status, stderr and the recorded
//! version afterwards. `GOLDEN_BLESS=1` rewrites the expectations.

mod common;

use common::{case_root, copy_tree};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A `clr-service-restart` symlink to the binary under test.
fn clr() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let link = dir.path().join("clr-service-restart");
    std::os::unix::fs::symlink(assert_cmd::cargo::cargo_bin("restart-stale"), &link).unwrap();
    (dir, link)
}

fn run(root: &Path, args: &[&str]) -> std::process::Output {
    let (_dir, link) = clr();
    Command::new(&link)
        .args(args)
        .env("RESTART_STALE_ROOT", root)
        .env_remove("JOURNAL_STREAM")
        .output()
        .unwrap()
}

fn run_case(case: &Path) -> Result<(), String> {
    let base = fs::read_to_string(case.join("base")).unwrap();
    let tmp = case_root(base.trim());
    let root = tmp.path();
    copy_tree(&case.join("root"), root);
    let args = fs::read_to_string(case.join("args")).unwrap();
    let args: Vec<&str> = args.split_whitespace().collect();
    let out = run(root, &args);
    let stderr: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| format!("stderr: {l}\n"))
        .collect();
    let state = fs::read_to_string(root.join("var/lib/restart-stale/swupd-version")).unwrap_or("none\n".into());
    let actual = format!(
        "{}exit: {}\n{stderr}state: {state}",
        String::from_utf8_lossy(&out.stdout),
        out.status.code().unwrap_or(-1)
    );
    let expected_path = case.join("expected");
    if std::env::var_os("GOLDEN_BLESS").is_some() {
        fs::write(&expected_path, &actual).unwrap();
    }
    let expected = fs::read_to_string(&expected_path).unwrap_or_default();
    if actual != expected {
        return Err(format!("--- expected\n{expected}--- actual\n{actual}"));
    }
    Ok(())
}

#[test]
fn swupd_golden_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/swupd");
    let mut cases: Vec<_> = fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    cases.sort();
    assert!(cases.len() >= 6, "swupd cases missing from {}", dir.display());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| run_case(c).err().map(|e| format!("case {}:\n{e}", c.display())))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
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
