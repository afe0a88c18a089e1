//! The zypper commit plugin as libzypp runs it: one process for the whole
//! commit, a frame at a time on stdin, each answered on stdout before the
//! next is sent (libzypp's PluginExecutor), rpm changing the rpmdb between
//! COMMITBEGIN and COMMITEND. rpm is the stand-in of tests/util/rpm.rs.

use crate::util::bin_path;
use crate::util::fixture::{self, allow, case_root, record_files};
use crate::util::rpm::{installed, installed_as, rpm_stand_in};
use restart_stale::managers::zypper::frame;
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

/// Golden case 05 with the rpmdb before the commit: libdemo 1.0 and
/// `other` installed. Returns the root and the rpm stand-in.
fn bed() -> (fixture::FakeRoot, tempfile::TempDir, std::path::PathBuf) {
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
    let (rpm_dir, rpm) = rpm_stand_in();
    (root, rpm_dir, rpm)
}

/// The plugin as libzypp starts it, in `r`.
fn spawn_plugin(r: &Path, rpm: &Path) -> std::process::Child {
    Command::new(bin_path())
        .arg("zypper-hook")
        .env("RESTART_STALE_ROOT", r)
        .env("RESTART_STALE_RPM", rpm)
        .env_remove("JOURNAL_STREAM")
        .env_remove("RESTART_STALE_SUSPEND")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// What rpm does between COMMITBEGIN and COMMITEND: the old lists are
/// gone, the new package is in.
fn run_rpm(r: &Path) {
    fs::remove_file(r.join("rpmdb/libdemo.x86_64")).unwrap();
    fs::remove_file(r.join("rpmdb/other-1-1.x86_64")).unwrap();
    installed(r, "libdemo-2.0-1.x86_64", &["/lib/x86_64-linux-gnu/libdemo.so.1"]);
}

/// A whole conversation, with `rpm_phase` between COMMITBEGIN and
/// COMMITEND; returns the plugin's stderr once it has exited 0.
fn converse(r: &Path, rpm: &Path, rpm_phase: std::time::Duration) -> String {
    let mut plugin = spawn_plugin(r, rpm);
    let mut stdin = plugin.stdin.take().unwrap();
    let mut stdout = BufReader::new(plugin.stdout.take().unwrap());
    let mut answers = vec![exchange(&mut stdin, &mut stdout, "PLUGINBEGIN", "")];
    answers.push(exchange(&mut stdin, &mut stdout, "COMMITBEGIN", &steps("")));
    std::thread::sleep(rpm_phase);
    run_rpm(r);
    answers.push(exchange(
        &mut stdin,
        &mut stdout,
        "COMMITEND",
        &steps(r#""stage":"ok","#),
    ));
    answers.push(exchange(&mut stdin, &mut stdout, "PLUGINEND", ""));
    answers.push(exchange(&mut stdin, &mut stdout, "_DISCONNECT", ""));
    drop(stdin);
    let out = plugin.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(answers, ["ACK"; 5], "{stderr}");
    stderr
}

/// The lines every record of this commit holds, from COMMITBEGIN's lists.
const BEGIN_LINES: &[&str] = &[
    "source zypper",
    "package out libdemo-0:1.0-1.x86_64",
    "package out other-1-1.x86_64",
    "file /lib/x86_64-linux-gnu/libdemo.so.1.0",
    "file /usr/sbin/other",
];

fn assert_lines(rec: &str, lines: &[&str]) {
    for line in lines {
        assert!(rec.lines().any(|l| l == *line), "{line:?} missing from\n{rec}");
    }
}

/// `zypper-hook finish` in `r`: the record is acted on (a test root
/// never restarts, hence status 3) and then gone.
fn finish_acts(r: &Path, summary: &str) {
    let out = crate::util::bin(r).args(["zypper-hook", "finish"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a test root never restarts: {stdout}\n{stderr}"
    );
    assert!(stderr.contains(summary), "{stderr}");
    fixture::assert_case05_acted_on(&stdout);
    assert!(record_files(&r.join(DIR)).is_empty());
}

#[test]
fn a_commit_is_recorded_and_acted_on_after_zypper_exits() {
    let (root, _rpm_dir, rpm) = bed();
    let r = root.path();
    converse(r, &rpm, std::time::Duration::ZERO);
    // One record: the block held since COMMITBEGIN was replaced by it.
    assert_eq!(record_files(&r.join(DIR)), [r.join(DIR).join("pending")]);
    let rec = fs::read_to_string(r.join(DIR).join("pending")).unwrap();
    assert_lines(&rec, BEGIN_LINES);
    assert_lines(&rec, &["package in libdemo-2.0-1.x86_64"]);
    assert_eq!(rec.matches("begin ").count(), 1, "{rec}");
    finish_acts(
        r,
        "zypper transaction: libdemo.x86_64 1.0-1 → 2.0-1, other.x86_64 1-1 → (removed)",
    );
}

/// libzypp keeps the plugin through the whole rpm phase: a commit whose
/// rpm phase outlasts the hooks' 25 s limit is still answered and
/// recorded, since the limit times our work on each frame only. (This
/// test takes the 30 s of its rpm phase.)
#[test]
fn a_commit_longer_than_the_hook_limit_is_recorded() {
    let (root, _rpm_dir, rpm) = bed();
    let r = root.path();
    let stderr = converse(r, &rpm, std::time::Duration::from_secs(30));
    assert!(!stderr.contains("gave up"), "{stderr}");
    assert_eq!(record_files(&r.join(DIR)), [r.join(DIR).join("pending")]);
    let rec = fs::read_to_string(r.join(DIR).join("pending")).unwrap();
    assert_lines(&rec, BEGIN_LINES);
    assert_lines(&rec, &["package in libdemo-2.0-1.x86_64"]);
}

/// A plugin killed during the rpm phase (libzypp's own end, an OOM kill,
/// zypper interrupted) leaves what COMMITBEGIN listed, and the next
/// finish acts on it.
#[test]
fn a_plugin_killed_after_commitbegin_leaves_a_record() {
    let (root, _rpm_dir, rpm) = bed();
    let r = root.path();
    let mut plugin = spawn_plugin(r, &rpm);
    let mut stdin = plugin.stdin.take().unwrap();
    let mut stdout = BufReader::new(plugin.stdout.take().unwrap());
    assert_eq!(exchange(&mut stdin, &mut stdout, "PLUGINBEGIN", ""), "ACK");
    assert_eq!(exchange(&mut stdin, &mut stdout, "COMMITBEGIN", &steps("")), "ACK");
    plugin.kill().unwrap(); // SIGKILL
    plugin.wait().unwrap();
    run_rpm(r);
    let files = record_files(&r.join(DIR));
    assert_eq!(files.len(), 1, "{files:?}");
    let rec = fs::read_to_string(&files[0]).unwrap();
    assert_lines(&rec, BEGIN_LINES);
    finish_acts(
        r,
        "zypper transaction: libdemo.x86_64 1.0-1 → 2.0-1, other.x86_64 1-1 → (removed)",
    );
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
