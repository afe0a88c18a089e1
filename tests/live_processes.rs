//! Tests against real processes and the real `/proc`: a child maps a copy
//! of a shared library, the copy is replaced the way dpkg replaces files,
//! and the scan must find exactly that child and that file.

use crate::util::live::{replace_like_dpkg, start_chrooted_victim, start_victim};
use restart_stale::system::scan::{Scanner, StaleFile};
use restart_stale::system::staleness::Staleness;
use restart_stale::system::sysroot::SysRoot;
use std::process::Command;

fn scan_pid(pid: u32) -> Vec<StaleFile> {
    Scanner::default()
        .process(&SysRoot::default(), pid)
        .unwrap()
        .expect("child is alive")
}

#[test]
fn fresh_child_is_not_stale() {
    let v = or_skip!(start_victim());
    let stale: Vec<_> = scan_pid(v.child.id())
        .into_iter()
        .filter(|f| f.path.contains("libstale-probe"))
        .collect();
    assert!(stale.is_empty(), "{stale:?}");
}

#[test]
fn replaced_library_is_found_in_exactly_that_child() {
    let v = or_skip!(start_victim());
    let bystander = or_skip!(start_victim());
    replace_like_dpkg(&v.lib);
    let files = scan_pid(v.child.id());
    let lib = v.lib.to_str().unwrap();
    assert_eq!(files.iter().filter(|f| *f.path == *lib).count(), 1, "{files:?}");
    let f = files.iter().find(|f| *f.path == *lib).unwrap();
    // The path was renamed over, so it holds a new inode on the same device.
    assert_eq!(f.why, Staleness::Replaced);
    assert!(!f.exe);
    assert!(!scan_pid(bystander.child.id())
        .iter()
        .any(|f| f.path.contains("libstale-probe")));
}

#[test]
fn unlinked_library_is_deleted() {
    let v = or_skip!(start_victim());
    std::fs::remove_file(&v.lib).unwrap();
    let files = scan_pid(v.child.id());
    let f = files
        .iter()
        .find(|f| *f.path == *v.lib.to_str().unwrap())
        .expect("stale lib found");
    assert_eq!(f.why, Staleness::Deleted);
}

/// The kernel prints a chrooted process's mapped paths relative to *our*
/// root, so they must be looked up there, not under its `root` link.
/// dpkg's backup hard link keeps the old inode named, so the kernel adds
/// no ` (deleted)` marker and only a lookup in the right view tells.
#[test]
fn chrooted_process_is_judged_in_our_view() {
    let v = or_skip!(start_chrooted_victim());
    std::fs::hard_link(&v.lib, v.lib.with_extension("1.dpkg-tmp")).unwrap();
    replace_like_dpkg(&v.lib);
    let files = scan_pid(v.child.id());
    let lib = v.lib.to_str().unwrap();
    let f = files
        .iter()
        .find(|f| *f.path == *lib)
        .unwrap_or_else(|| panic!("{lib} not found stale in {files:?}"));
    assert_eq!(f.why, Staleness::Replaced);
}

#[test]
fn vanished_process_is_skipped_silently() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    assert!(Scanner::default().process(&SysRoot::default(), pid).unwrap().is_none());
}

/// Runs the binary's full report and returns the outside-unit entries for `pid`.
fn report_for(pid: u32, changed: Option<&str>) -> Vec<serde_json::Value> {
    let mut cmd = assert_cmd::Command::cargo_bin("restart-stale").unwrap();
    cmd.args(["status", "--json"]).env_remove("RESTART_STALE_ROOT");
    if let Some(list) = changed {
        cmd.args(["--changed-files", "-"]).write_stdin(list.to_string());
    }
    let out = cmd.output().unwrap();
    assert!(out.status.code().is_some_and(|c| c == 0 || c == 3), "{out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["schema"], "restart-stale/1");
    let mut all: Vec<serde_json::Value> = doc["outside"].as_array().unwrap().clone();
    for u in doc["units"].as_array().unwrap() {
        all.extend(u["processes"].as_array().unwrap().iter().cloned());
    }
    all.into_iter().filter(|p| p["pid"] == pid).collect()
}

#[test]
fn transaction_list_decides_whether_child_is_affected() {
    let v = or_skip!(start_victim());
    replace_like_dpkg(&v.lib);
    let lib = v.lib.to_str().unwrap();
    let pid = v.child.id();

    let without = report_for(pid, None);
    assert_eq!(without.len(), 1, "{without:?}");
    assert!(without[0]["files"].as_array().unwrap().iter().any(|f| f["path"] == lib));

    let matching = report_for(pid, Some(&format!("/usr/share/doc/x\n{lib}\n")));
    assert_eq!(matching.len(), 1, "{matching:?}");
    let files = matching[0]["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "only the listed file counts: {files:?}");
    assert_eq!(files[0]["path"], lib);

    let unrelated = report_for(pid, Some("/usr/lib/x86_64-linux-gnu/libunrelated.so.9\n"));
    assert!(unrelated.is_empty(), "{unrelated:?}");
}
