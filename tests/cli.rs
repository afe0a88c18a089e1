//! The command line as a user meets it: exit codes, policy commands,
//! error messages that name the input, generated man page and completions.

use crate::util::bin;

#[test]
fn bad_usage_exits_2() {
    let d = tempfile::tempdir().unwrap();
    bin(d.path()).arg("--bogus").assert().code(2);
    bin(d.path()).args(["-n", "allow", "x.service"]).assert().code(2);
    bin(d.path()).arg("allow").assert().code(2);
}

#[test]
fn policy_commands_maintain_etc_links() {
    let d = tempfile::tempdir().unwrap();
    let link = d.path().join("etc/restart-stale/cron.service");
    bin(d.path()).args(["allow", "cron.service"]).assert().success();
    assert_ne!(std::fs::read_link(&link).unwrap(), std::path::Path::new("/dev/null"));
    bin(d.path()).args(["disallow", "cron.service"]).assert().success();
    assert_eq!(std::fs::read_link(&link).unwrap(), std::path::Path::new("/dev/null"));
    bin(d.path()).args(["default", "cron.service"]).assert().success();
    assert!(std::fs::symlink_metadata(&link).is_err());
}

#[test]
fn bad_unit_name_is_an_error_naming_it() {
    let d = tempfile::tempdir().unwrap();
    for bad in ["../x", "a/b.service", "x.notatype", ""] {
        let out = bin(d.path()).args(["allow", "ok.service", bad]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("{bad:?}")), "{bad:?}: {err}");
    }
    assert!(
        !d.path().join("etc/restart-stale/ok.service").exists(),
        "nothing changes on a bad name"
    );
}

#[test]
fn unreadable_changed_list_is_an_error_naming_it() {
    let d = tempfile::tempdir().unwrap();
    let out = bin(d.path())
        .args(["-n", "--changed-files", "/nonexistent/list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/list"));
    let out = bin(d.path())
        .args(["-n", "--changed-files", "-"])
        .write_stdin("relative/path\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stdin"));
}

#[test]
fn generates_man_page_and_completions() {
    let d = tempfile::tempdir().unwrap();
    bin(d.path())
        .args(["generate-assets"])
        .arg(d.path().join("out"))
        .assert()
        .success();
    let man = std::fs::read_to_string(d.path().join("out/restart-stale.1")).unwrap();
    assert!(
        man.contains(".SH \"EXIT STATUS\"") && man.contains("dry\\-run"),
        "{man}"
    );
    for f in ["restart-stale.bash", "_restart-stale", "restart-stale.fish"] {
        let text = std::fs::read_to_string(d.path().join("out").join(f)).unwrap();
        assert!(text.contains("changed-files"), "{f}");
    }
}
