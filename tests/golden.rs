//! Golden cases: each `tests/cases/NN-name/` holds a fake root (`root/`),
//! the command line (`args`) and the expected output (`expected`).
//!
//! Device and inode numbers of fixture files are only known once the tree
//! is copied, so `maps.in` templates use `{dev:PATH}` and `{ino:PATH}`
//! (PATH relative to the fixture root) and are expanded into `maps`.

use restart_stale::cgroup;
use restart_stale::sysroot::SysRoot;
use restart_stale::unit_name::Owner;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
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

fn expand(template: &str, root: &Path) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = start + rest[start..].find('}').expect("unclosed {");
        let (kind, path) = rest[start + 1..end].split_once(':').expect("token is {kind:path}");
        let md = std::fs::metadata(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        match kind {
            "dev" => out.push_str(&format!("{:02x}:{:02x}", libc::major(md.dev()), libc::minor(md.dev()))),
            "ino" => out.push_str(&md.ino().to_string()),
            _ => panic!("unknown token kind {kind}"),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn expand_maps(dir: &Path, root: &Path) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if entry.file_type().unwrap().is_dir() {
            expand_maps(&p, root);
        } else if p.file_name().unwrap() == "maps.in" {
            let text = std::fs::read_to_string(&p).unwrap();
            std::fs::write(p.with_file_name("maps"), expand(&text, root)).unwrap();
        }
    }
}

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
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    copy_tree(&case.join("root"), &root);
    expand_maps(&root.join("proc"), &root);
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
        String::from_utf8_lossy(&out.stdout),
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
