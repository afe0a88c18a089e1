//! Golden cases: each `tests/cases/NN-name/` holds a fake root (`root/`),
//! the command line (`args`) and the expected output (`expected`).
//!
//! Device and inode numbers of fixture files are only known once the tree
//! is copied, so `maps.in` templates use `{dev:PATH}` and `{ino:PATH}`
//! (PATH relative to the fixture root) and are expanded into `maps`.

#[path = "common/fixture.rs"]
mod fixture;

use restart_stale::core::unit_name::Owner;
use restart_stale::system::cgroup;
use restart_stale::system::sysroot::SysRoot;
use std::path::{Path, PathBuf};

/// The cgroup-tree walk and `/proc/PID/cgroup` must place every system
/// process in the same unit.
fn assert_views_agree(root: &SysRoot) {
    let Some(layout) = cgroup::detect(root) else { return };
    let walked = cgroup::system_members(root, layout).unwrap();
    for m in &walked {
        let from_proc = cgroup::owner_of_pid(root, Some(layout), m.pid).unwrap().unwrap();
        assert_eq!(from_proc, m.owner, "pid {} placed differently by the two views", m.pid);
    }
    for pid in cgroup::all_pids(root).unwrap() {
        let owner = cgroup::owner_of_pid(root, Some(layout), pid).unwrap().unwrap();
        if matches!(owner, Owner::Unit(_) | Owner::Init) {
            assert!(
                walked.iter().any(|m| m.pid == pid),
                "pid {pid} missing from the cgroup walk"
            );
        }
    }
}

fn run_case(case: &Path) -> Result<(), String> {
    let (tmp, root) = fixture::concrete_copy(&case.join("root"));
    assert_views_agree(&SysRoot::new(&root));
    let args = std::fs::read_to_string(case.join("args")).unwrap();
    let args: Vec<String> = args
        .split_whitespace()
        .map(|a| a.replace("@CASE@", &case.display().to_string()))
        .collect();
    let out = assert_cmd::Command::cargo_bin("restart-stale")
        .unwrap()
        .args(&args)
        .env("RESTART_STALE_ROOT", &root)
        .env_remove("JOURNAL_STREAM")
        .output()
        .unwrap();
    let actual = format!(
        "{}exit: {}\n",
        fixture::readable_stdout(&out.stdout),
        out.status.code().unwrap_or(-1)
    );
    let expected_path = case.join("expected");
    if std::env::var_os("GOLDEN_BLESS").is_some() {
        std::fs::write(&expected_path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    if actual != expected {
        if std::env::var_os("GOLDEN_KEEP").is_some() {
            eprintln!("kept fixture root {}", tmp.keep().display());
        }
        return Err(format!(
            "--- expected\n{expected}--- actual\n{actual}--- stderr\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

#[test]
fn golden_cases() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut cases: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    cases.sort();
    assert!(cases.len() >= 6, "golden cases missing from {}", dir.display());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| run_case(c).err().map(|e| format!("case {}:\n{e}", c.display())))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
