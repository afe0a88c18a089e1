//! dnf 4: the hand-over file the plugin writes, read by
//! `dnf-hook transaction FILE`; and the shipped plugin itself, run by
//! tests/dnf4/harness.py with stand-ins for the dnf and rpm modules, so
//! the two ends of the hand-over are checked against each other.

use crate::util::fixture::{case_root, manifest_dir, record_files};
use crate::util::{bin, bin_path};
use std::fs;
use std::path::Path;
use std::process::Command;

const DIR: &str = "run/restart-stale/dnf";

const HANDOVER: &str = "restart-stale-dnf-plugin 1
pid 4000
command dnf -y upgrade
auto-restart true
package in libdemo-0:2.0-1.x86_64
package out libdemo-0:1.0-1.x86_64
file /lib/x86_64-linux-gnu/libdemo.so.1
file /lib/x86_64-linux-gnu/libdemo.so.1.0
";

fn pending(root: &Path) -> String {
    fs::read_to_string(root.join(DIR).join("pending")).unwrap_or_default()
}

fn handover(root: &Path, text: &[u8]) -> std::process::Output {
    let file = root.join("handover.txt");
    fs::write(&file, text).unwrap();
    bin(root).args(["dnf-hook", "transaction"]).arg(&file).output().unwrap()
}

#[test]
fn the_hand_over_becomes_a_record_block() {
    let tmp = case_root("05-changed-merged-usr");
    let r = tmp.path();
    let out = handover(r, HANDOVER.as_bytes());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("restart-stale-dnf.service not started"), "{stderr}");
    let rec = pending(r);
    let lines: Vec<&str> = rec.lines().collect();
    // No /proc/4000 in this root: dnf has exited, nothing to wait for.
    assert_eq!(
        lines[1..],
        [
            "source dnf4",
            "command dnf -y upgrade",
            "auto-restart true",
            "package in libdemo-0:2.0-1.x86_64",
            "package out libdemo-0:1.0-1.x86_64",
            "file /lib/x86_64-linux-gnu/libdemo.so.1",
            "file /lib/x86_64-linux-gnu/libdemo.so.1.0",
            "end",
        ],
        "{rec}"
    );
}

#[test]
fn bad_lines_are_named_and_dnf_still_gets_0() {
    let tmp = case_root("05-changed-merged-usr");
    let r = tmp.path();
    let text = HANDOVER.replace("pid 4000\n", "pid 4000\nfile relative\nbegin 1 2\npackage in\n");
    let out = handover(r, text.as_bytes());
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = r.join("handover.txt").display().to_string();
    for n in [3, 4, 5] {
        assert!(stderr.contains(&format!("{file}:{n}: ")), "line {n}: {stderr}");
    }
    let rec = pending(r);
    assert_eq!(rec.matches("\nerror ").count(), 3, "{rec}");
    assert_eq!(rec.matches("\nfile /").count(), 2, "{rec}");

    // Not our format at all: refused as a whole, nothing recorded.
    fs::remove_dir_all(r.join(DIR)).unwrap();
    for junk in [&b"restart-stale-dnf-plugin 9\nfile /x\n"[..], b"", b"\xff\xfe"] {
        let out = handover(r, junk);
        assert_eq!(out.status.code(), Some(0));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("{file}:1: expected")), "{stderr}");
    }
    let out = bin(r)
        .args(["dnf-hook", "transaction", "/nonexistent/x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed to read /nonexistent/x"));
    assert!(record_files(&r.join(DIR)).is_empty());
}

/// The python that runs the plugin, or why there is none.
fn python() -> Result<&'static str, String> {
    let ok = Command::new("python3").arg("-c").arg("import configparser").output();
    match ok.is_ok_and(|o| o.status.success()) {
        true => Ok("python3"),
        false => Err("python3 (with configparser) not found: the dnf 4 plugin is not exercised".into()),
    }
}

fn run_plugin(python: &str, root: &Path, scenario: &str) -> std::process::Output {
    let here = manifest_dir();
    Command::new(python)
        .arg(here.join("tests/dnf4/harness.py"))
        .arg(here.join("hooks/dnf/usr/lib/python3/dist-packages/dnf-plugins/restart_stale.py"))
        .arg(bin_path())
        .arg(scenario)
        .env("RESTART_STALE_ROOT", root)
        .env("TMPDIR", root)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("RESTART_STALE_SUSPEND")
        .env_remove("JOURNAL_STREAM")
        .output()
        .unwrap()
}

#[test]
fn the_shipped_plugin_hands_over_what_the_binary_reads() {
    let python = or_skip!(python());
    let tmp = case_root("05-changed-merged-usr");
    let r = tmp.path();
    let out = run_plugin(python, r, "upgrade");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("WARNING"), "{stderr}");
    let rec = pending(r);
    let lines: Vec<&str> = rec.lines().collect();
    assert_eq!(lines[1], "source dnf4", "{rec}");
    assert!(
        lines[2].starts_with("command ") && lines[2].contains("harness.py"),
        "{rec}"
    );
    assert_eq!(
        lines[3..],
        [
            // restart-stale.conf says auto_restart=0 in the harness.
            "auto-restart false",
            "package in libdemo-0:2.0-1.x86_64",
            "package out libdemo-0:1.0-1.x86_64",
            "package out other-0:1-1.x86_64",
            "file /lib/x86_64-linux-gnu/libdemo.so.1",
            "file /usr/lib/x86_64-linux-gnu",
            "file /lib/x86_64-linux-gnu/libdemo.so.1",
            "file /lib/x86_64-linux-gnu/libdemo.so.1.0",
            "file /usr/sbin/other",
            "end",
        ],
        "{rec}"
    );
    let leftovers: Vec<_> = fs::read_dir(r)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("restart-stale-dnf."))
        .collect();
    assert!(leftovers.is_empty(), "the temporary file is removed");
}

#[test]
fn the_plugin_never_raises_into_dnf() {
    let python = or_skip!(python());
    for (scenario, said) in [
        (
            "missing-binary",
            "WARNING restart-stale: /nonexistent/restart-stale is missing",
        ),
        (
            "broken-rpmdb",
            "WARNING restart-stale: cannot read the outgoing packages: rpmdb open failed",
        ),
    ] {
        let tmp = case_root("05-changed-merged-usr");
        let out = run_plugin(python, tmp.path(), scenario);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{scenario}: {stderr}");
        assert!(stderr.contains(said), "{scenario}: {stderr}");
        assert!(pending(tmp.path()).is_empty(), "{scenario}");
    }
}
