//! dnf 5's actions plugin running the shipped actions file, as libdnf5
//! does it (libdnf5-plugins/actions, actions(8)): lines in file order,
//! `callback:package_filter:direction:reserved:command`, the command split
//! on spaces, `${…}` substituted per package, identical command lines run
//! once per callback, stdout read back as variable assignments. rpm is a
//! stand-in (`RESTART_STALE_RPM`, honoured in test roots only) that lists
//! `ROOT/rpmdb/<NEVRA>`.

use crate::util::bin;
use crate::util::fixture::{self, allow, case_root, record_files, FakeRoot};
use crate::util::rpm::{installed, rpm_stand_in};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const DIR: &str = "run/restart-stale/dnf";
const DNF_PID: u32 = 4000;

/// `(action letter, full NEVRA)` of `dnf5 upgrade` here: libdemo 1.0 → 2.0,
/// `fresh` pulled in, `other` removed (obsoleted by nothing), a reason change.
const TRANSACTION: &[(&str, &str)] = &[
    ("U", "libdemo-0:2.0-1.x86_64"),
    ("O", "libdemo-0:1.0-1.x86_64"),
    ("I", "fresh-0:3-1.noarch"),
    ("E", "other-0:1-1.x86_64"),
    ("?", "bash-0:5.2-1.x86_64"),
];

struct Bed {
    root: FakeRoot,
    _rpm_dir: tempfile::TempDir,
    rpm: PathBuf,
}

/// Golden case 05 (a.service maps the replaced libdemo, c.service runs
/// the replaced /usr/sbin/other, b.service maps a stale file of no
/// package), dnf running as DNF_PID, the rpmdb before the transaction.
fn bed() -> Bed {
    let root = case_root("05-changed-merged-usr");
    let r = root.path();
    fs::create_dir_all(r.join(format!("proc/{DNF_PID}"))).unwrap();
    fs::write(
        r.join(format!("proc/{DNF_PID}/stat")),
        format!("{DNF_PID} (dnf5) S 1 {DNF_PID} 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0\n"),
    )
    .unwrap();
    installed(
        r,
        "libdemo-1.0-1.x86_64",
        &[
            "/usr/lib/x86_64-linux-gnu",
            "/lib/x86_64-linux-gnu/libdemo.so.1",
            "/lib/x86_64-linux-gnu/libdemo.so.1.0",
        ],
    );
    installed(r, "other-1-1.x86_64", &["/usr/sbin/other"]);
    installed(r, "bash-5.2-1.x86_64", &["/usr/bin/bash"]);
    let (rpm_dir, rpm) = rpm_stand_in();
    Bed {
        root,
        _rpm_dir: rpm_dir,
        rpm,
    }
}

/// What rpm does between the two callbacks.
fn run_rpm_transaction(root: &Path) {
    fs::remove_file(root.join("rpmdb/libdemo-1.0-1.x86_64")).unwrap();
    fs::remove_file(root.join("rpmdb/other-1-1.x86_64")).unwrap();
    installed(root, "libdemo-2.0-1.x86_64", &["/lib/x86_64-linux-gnu/libdemo.so.1"]);
    installed(root, "fresh-3-1.noarch", &["/usr/share/fresh/data"]);
}

struct Action {
    callback: String,
    filter: String,
    direction: String,
    args: Vec<String>,
}

fn actions_file() -> Vec<Action> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/dnf/etc/dnf/libdnf5-plugins/actions.d/restart-stale.actions");
    let text = fs::read_to_string(path).unwrap();
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.splitn(5, ':').collect();
            assert_eq!(f.len(), 5, "{l}");
            assert!(f[3].is_empty(), "reserved field must stay empty: {l}");
            Action {
                callback: f[0].into(),
                filter: f[1].into(),
                direction: f[2].into(),
                args: f[4].split(' ').filter(|a| !a.is_empty()).map(String::from).collect(),
            }
        })
        .collect()
}

fn inbound(letter: &str) -> bool {
    matches!(letter, "I" | "U" | "D" | "R")
}

fn outbound(letter: &str) -> bool {
    matches!(letter, "E" | "O")
}

fn substitute(arg: &str, pkg: Option<(&str, &str)>) -> String {
    let mut s = arg.replace("${pid}", &DNF_PID.to_string());
    if let Some((action, nevra)) = pkg {
        s = s.replace("${pkg.action}", action).replace("${pkg.full_nevra}", nevra);
    }
    assert!(!s.contains("${"), "variable this test does not know: {s}");
    s
}

/// Runs one callback's actions like libdnf5 and returns the commands run.
fn callback(bed: &Bed, name: &str, transaction: &[(&str, &str)]) -> Vec<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut ran = Vec::new();
    for a in actions_file().iter().filter(|a| a.callback == name) {
        let pkgs: Vec<Option<(&str, &str)>> = if a.filter.is_empty() {
            vec![None]
        } else {
            assert_eq!(a.filter, "*");
            transaction
                .iter()
                .filter(|(l, _)| match a.direction.as_str() {
                    "in" => inbound(l),
                    "out" => outbound(l),
                    _ => true,
                })
                .map(|&(l, n)| Some((l, n)))
                .collect()
        };
        for p in pkgs {
            let argv: Vec<String> = a.args.iter().map(|x| substitute(x, p)).collect();
            if !seen.insert(argv.clone()) {
                continue;
            }
            assert_eq!(argv[0], "/usr/bin/restart-stale");
            let out = bin(bed.root.path())
                .env("RESTART_STALE_RPM", &bed.rpm)
                .args(&argv[1..])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{argv:?}: {stderr}");
            // The plugin parses our stdout as tmp./conf./var. assignments.
            assert!(out.stdout.is_empty(), "{argv:?} wrote to stdout: {out:?}");
            ran.push(argv);
        }
    }
    ran
}

fn pending(root: &Path) -> String {
    fs::read_to_string(root.join(DIR).join("pending")).unwrap_or_default()
}

#[test]
fn a_transaction_is_recorded_with_both_sides_file_lists() {
    let bed = bed();
    let r = bed.root.path();
    let pre = callback(&bed, "pre_transaction", TRANSACTION);
    assert_eq!(pre.len(), TRANSACTION.len() + 1, "{pre:?}");
    assert_eq!(pending(r), "", "nothing is recorded before the transaction ran");
    run_rpm_transaction(r);
    let post = callback(&bed, "post_transaction", TRANSACTION);
    assert_eq!(post.len(), 1, "{post:?}");

    let calls = fs::read_to_string(r.join("rpm-calls")).unwrap();
    assert_eq!(
        calls, "libdemo-1.0-1.x86_64 other-1-1.x86_64\nlibdemo-2.0-1.x86_64 fresh-3-1.noarch\n",
        "one rpm call per side, epochs left out"
    );
    let rec = pending(r);
    let lines: Vec<&str> = rec.lines().collect();
    assert!(lines[0].starts_with("begin "), "{rec}");
    assert_eq!(lines[1..3], ["source dnf5", "manager 4000 98765"], "{rec}");
    let facts: BTreeSet<&str> = lines[3..].iter().copied().collect();
    let expected: BTreeSet<&str> = [
        "package in libdemo-0:2.0-1.x86_64",
        "package out libdemo-0:1.0-1.x86_64",
        "package in fresh-0:3-1.noarch",
        "package out other-0:1-1.x86_64",
        "file /usr/lib/x86_64-linux-gnu",
        "file /lib/x86_64-linux-gnu/libdemo.so.1",
        "file /lib/x86_64-linux-gnu/libdemo.so.1.0",
        "file /usr/sbin/other",
        "file /usr/share/fresh/data",
        "end",
    ]
    .into();
    assert_eq!(facts, expected, "{rec}");
    let staging: Vec<PathBuf> = record_files(&r.join(DIR))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".staging"))
        .collect();
    assert!(staging.is_empty(), "staging removed: {staging:?}");
}

#[test]
fn finish_waits_for_dnf_then_acts_on_the_lists() {
    let bed = bed();
    let r = bed.root.path().to_path_buf();
    allow(&r, &["a.service", "b.service", "c.service"]);
    callback(&bed, "pre_transaction", TRANSACTION);
    run_rpm_transaction(&r);
    callback(&bed, "post_transaction", TRANSACTION);

    // dnf is still printing its summary; it exits a moment later.
    let stat = r.join(format!("proc/{DNF_PID}"));
    let exits = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(800));
        fs::remove_dir_all(stat).unwrap();
    });
    let start = Instant::now();
    let out = bin(&r).args(["dnf-hook", "finish"]).output().unwrap();
    exits.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a test root never restarts: {stdout}\n{stderr}"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(800),
        "finish did not wait for dnf"
    );
    assert!(
        stderr.contains("waiting until the package manager (pid 4000) has exited"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "dnf5 transaction: fresh.noarch (none) → 3-1, libdemo.x86_64 1.0-1 → 2.0-1, \
other.x86_64 1-1 → (removed); 4 changed files"
        ),
        "{stderr}"
    );
    fixture::assert_case05_acted_on(&stdout);
    assert!(record_files(&r.join(DIR)).is_empty());
}

#[test]
fn a_failed_transaction_is_recorded_by_the_next_one() {
    let bed = bed();
    let r = bed.root.path();
    // dnf pid 3999 staged a package and died before post_transaction.
    fs::create_dir_all(r.join(DIR)).unwrap();
    fs::write(
        r.join(DIR).join("dnf5.3999.staging"),
        "package out other-0:1-1.x86_64\nfile /usr/sbin/other\n",
    )
    .unwrap();
    let only_fresh = [("I", "fresh-0:3-1.noarch")];
    callback(&bed, "pre_transaction", &only_fresh);
    installed(r, "fresh-3-1.noarch", &["/usr/share/fresh/data"]);
    callback(&bed, "post_transaction", &only_fresh);
    let rec = pending(r);
    assert_eq!(rec.matches("begin ").count(), 2, "{rec}");
    let first = rec.split("end\n").next().unwrap();
    assert!(first.contains("source dnf5\n") && !first.contains("manager "), "{rec}");
    assert!(first.contains("file /usr/sbin/other\n"), "{rec}");
    assert!(rec.contains("manager 4000 98765\n"), "{rec}");
    assert!(!r.join(DIR).join("dnf5.3999.staging").exists());
}

#[test]
fn bad_arguments_are_named_and_dnf_still_gets_0() {
    let bed = bed();
    let r = bed.root.path();
    for (args, said) in [
        (
            &["package", "4000", "X", "foo-0:1-1.x86_64"][..],
            "argument ACTION: unknown package action \"X\"",
        ),
        (&["package", "4000", "U", "--eval=%{lua:x}"], "argument NEVRA"),
        (&["package", "4000", "U", ""], "argument NEVRA"),
        (
            &["package", "4000", "U"],
            "expected 3 argument(s) (PID ACTION NEVRA), got 2",
        ),
        (&["package", "0", "U", "foo-0:1-1.x86_64"], "argument PID: \"0\""),
        (&["post-transaction", "-1"], "argument PID: \"-1\""),
        (&["pre-transaction"], "expected 1 argument(s) (PID), got 0"),
    ] {
        let out = bin(r).arg("dnf5-hook").args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(said), "{args:?}: {stderr}");
    }
    assert!(record_files(&r.join(DIR)).is_empty());
    // An unreadable rpmdb is reported and the transaction still recorded.
    let staged = [("U", "libdemo-0:2.0-1.x86_64")];
    callback(&bed, "pre_transaction", &staged);
    let out = bin(r)
        .env("RESTART_STALE_RPM", "/nonexistent/rpm")
        .args(["dnf5-hook", "post-transaction", "4000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("failed to run /nonexistent/rpm"), "{stderr}");
    assert!(
        pending(r).contains("\nerror failed to run /nonexistent/rpm"),
        "{}",
        pending(r)
    );
}

/// An rpm that never answers (a locked or damaged rpmdb) is killed once
/// the hook's rpm time limit passes (shortened here through
/// `RESTART_STALE_RPM_LIMIT_MS`, honoured in test roots only): dnf gets 0
/// at once, and the transaction is still recorded, with the error.
#[test]
fn a_hanging_rpm_is_killed_and_dnf_gets_0_in_time() {
    let bed = bed();
    let r = bed.root.path();
    let stuck = bed.rpm.with_file_name("stuck-rpm");
    // `sleep` in the background keeps stdout open after the shell is
    // killed, as a helper rpm started would.
    fs::write(
        &stuck,
        "#!/bin/sh\necho \"$*\" >>\"$3/stuck-calls\"\nsleep 60 & sleep 60\n",
    )
    .unwrap();
    fs::set_permissions(&stuck, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let staged = [("U", "libdemo-0:2.0-1.x86_64"), ("O", "libdemo-0:1.0-1.x86_64")];
    for (action, nevra) in staged {
        let out = bin(r)
            .args(["dnf5-hook", "package", "4000", action, nevra])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
    }
    for step in ["pre-transaction", "post-transaction"] {
        let start = Instant::now();
        let out = bin(r)
            .env("RESTART_STALE_RPM", &stuck)
            .env("RESTART_STALE_RPM_LIMIT_MS", "500")
            .args(["dnf5-hook", step, "4000"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{step}: {stderr}");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{step}: {:?}",
            start.elapsed()
        );
    }
    assert_eq!(fs::read_to_string(r.join("stuck-calls")).unwrap().lines().count(), 2);
    // Both sides' failures, the outgoing one kept in the staging file
    // until the incoming one records the transaction.
    let rec = pending(r);
    assert!(rec.contains("package in libdemo-0:2.0-1.x86_64"), "{rec}");
    assert_eq!(rec.matches("did not finish in time; killed it").count(), 2, "{rec}");
}
