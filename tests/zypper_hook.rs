//! The zypper commit plugin as libzypp runs it: one process for the whole
//! commit, a frame at a time on stdin, each answered on stdout before the
//! next is sent (libzypp's PluginExecutor), rpm changing the rpmdb between
//! COMMITBEGIN and COMMITEND. rpm is the stand-in of tests/util/rpm.rs.

use crate::util::bin_path;
use crate::util::fixture::{self, allow, case_root, record_files};
use crate::util::rpm::{installed, installed_as, rpm_stand_in};
use restart_stale::zypper::frame;
use std::fs;
use std::io::{BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

const DIR: &str = "run/restart-stale/zypper";

/// A commit that updates libdemo 1.0 → 2.0 and removes `other`, in the
/// JSON libzypp sends (zypp/target/TargetImpl.cc); `stage` is what
/// COMMITEND adds.
fn steps(stage: &str) -> String {
    format!(
        r#"{{"TransactionStepList":[{{"type":"+",{stage}"solvable":{{"a":"x86_64","n":"libdemo","r":"1","v":"2.0"}}}},{{"type":"-",{stage}"solvable":{{"a":"x86_64","n":"other","r":"1","v":"1"}}}}]}}"#
    )
}

/// Sends one frame and reads libzypp's answer to it.
fn exchange(stdin: &mut impl Write, stdout: &mut BufReader<impl std::io::Read>, command: &str, body: &str) -> String {
    write!(stdin, "{command}\ncontent-length:{}\n\n{body}\0", body.len()).unwrap();
    stdin.flush().unwrap();
    frame::read(stdout).unwrap().expect("an answer").command
}

#[test]
fn a_commit_is_recorded_and_acted_on_after_zypper_exits() {
    let root = case_root("05-changed-merged-usr");
    let r = root.path();
    allow(r, &["a.service", "b.service", "c.service"]);
    // Before the commit: the installed versions, queried by name.arch.
    installed(
        r,
        "libdemo.x86_64",
        &[
            "/lib/x86_64-linux-gnu/libdemo.so.1",
            "/lib/x86_64-linux-gnu/libdemo.so.1.0",
        ],
    );
    installed(r, "other-1-1.x86_64", &["/usr/sbin/other"]);
    // ... and the version the update replaces.
    installed_as(r, "libdemo.x86_64", &["libdemo-0:1.0-1.x86_64"]);
    let (_rpm_dir, rpm) = rpm_stand_in();

    let mut plugin = Command::new(bin_path())
        .arg("zypper-hook")
        .env("RESTART_STALE_ROOT", r)
        .env("RESTART_STALE_RPM", &rpm)
        .env_remove("JOURNAL_STREAM")
        .env_remove("RESTART_STALE_SUSPEND")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = plugin.stdin.take().unwrap();
    let mut stdout = BufReader::new(plugin.stdout.take().unwrap());
    assert_eq!(exchange(&mut stdin, &mut stdout, "PLUGINBEGIN", ""), "ACK");
    assert_eq!(exchange(&mut stdin, &mut stdout, "COMMITBEGIN", &steps("")), "ACK");
    // rpm runs: the old lists are gone, the new package is in.
    fs::remove_file(r.join("rpmdb/libdemo.x86_64")).unwrap();
    fs::remove_file(r.join("rpmdb/other-1-1.x86_64")).unwrap();
    installed(r, "libdemo-2.0-1.x86_64", &["/lib/x86_64-linux-gnu/libdemo.so.1"]);
    assert_eq!(
        exchange(&mut stdin, &mut stdout, "COMMITEND", &steps(r#""stage":"ok","#)),
        "ACK"
    );
    assert_eq!(exchange(&mut stdin, &mut stdout, "PLUGINEND", ""), "ACK");
    assert_eq!(exchange(&mut stdin, &mut stdout, "_DISCONNECT", ""), "ACK");
    drop(stdin);
    let out = plugin.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    let rec = fs::read_to_string(r.join(DIR).join("pending")).unwrap();
    for line in [
        "source zypper",
        "package out libdemo-0:1.0-1.x86_64",
        "package in libdemo-2.0-1.x86_64",
        "package out other-1-1.x86_64",
        "file /lib/x86_64-linux-gnu/libdemo.so.1.0",
        "file /usr/sbin/other",
    ] {
        assert!(rec.lines().any(|l| l == line), "{line:?} missing from\n{rec}");
    }

    let out = crate::util::bin(r).args(["zypper-hook", "finish"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a test root never restarts: {stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("zypper transaction: libdemo.x86_64 1.0-1 → 2.0-1, other.x86_64 1-1 → (removed)"),
        "{stderr}"
    );
    fixture::assert_case05_acted_on(&stdout);
    assert!(record_files(&r.join(DIR)).is_empty());
}

/// The plugin libzypp runs is the wrapper the packages install.
#[test]
fn the_shipped_plugin_runs_the_hook() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/zypper/usr/lib/zypp/plugins/commit/restart-stale");
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("#!/bin/sh\n"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.trim() == "exec /usr/bin/restart-stale zypper-hook"),
        "{text}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_ne!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o111,
        0,
        "not executable"
    );
}
