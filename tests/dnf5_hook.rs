//! dnf 5's actions plugin running the shipped actions file, as libdnf5
//! does it (libdnf5-plugins/actions, actions(8)): lines in file order,
//! `callback:package_filter:direction:reserved:command`, the command split
//! on spaces, `${…}` substituted per package, identical command lines run
//! once per callback, stdout read back as variable assignments. rpm is a
//! stand-in (`RESTART_STALE_RPM`, honoured in test roots only) that lists
//! `ROOT/rpmdb/<NEVRA>`.

use crate::util::bin;
use crate::util::fixture::{self, allow, case_root, record_files, FakeRoot};
use crate::util::rpm::{changelog, installed, rpm_stand_in};
use std::collections::{BTreeMap, BTreeSet};
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

/// libdnf5's substitution; `None` for a variable that is not set, where
/// libdnf5 logs "Unknown variable" and does not run the line.
fn substitute(arg: &str, pkg: Option<(&str, &str)>, tmp: &BTreeMap<String, String>) -> Option<String> {
    let mut s = arg.replace("${pid}", &DNF_PID.to_string());
    if let Some((action, nevra)) = pkg {
        s = s.replace("${pkg.action}", action).replace("${pkg.full_nevra}", nevra);
    }
    while let Some(start) = s.find("${tmp.") {
        let end = start + s[start..].find('}').expect("unterminated variable");
        let value = tmp.get(&s[start + 6..end])?;
        s.replace_range(start..=end, value);
    }
    assert!(!s.contains("${"), "variable this test does not know: {s}");
    Some(s)
}

/// How the simulated libdnf5 finds /usr/bin/restart-stale.
#[derive(Clone, Copy, PartialEq)]
enum Binary {
    Works,
    /// Missing, failing or hanging (then killed by the line's `timeout`):
    /// for the plugin, all the same: no output, an error logged.
    Broken,
}

/// The plugin's state across callbacks: its `tmp.` variables.
#[derive(Default)]
struct Plugin {
    tmp: BTreeMap<String, String>,
}

impl Plugin {
    /// The plugin reads a command's stdout as `tmp.`/`conf.`/`var.` lines;
    /// ours may only touch the gate.
    fn read_output(&mut self, argv: &[String], stdout: &str) {
        for line in stdout.lines() {
            let name = line
                .strip_prefix("tmp.")
                .unwrap_or_else(|| panic!("{argv:?} printed {line:?}"));
            match name.split_once('=') {
                Some((n, v)) => self.tmp.insert(n.to_string(), v.to_string()),
                None => self.tmp.remove(name),
            };
        }
    }

    /// Runs one callback's actions like libdnf5 and returns the commands
    /// run (restart-stale's without the `timeout` in front).
    fn callback(&mut self, bed: &Bed, name: &str, transaction: &[(&str, &str)], binary: Binary) -> Vec<Vec<String>> {
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
            // libdnf5 substitutes a line's packages before it runs them.
            let argvs: Option<Vec<Vec<String>>> = pkgs
                .iter()
                .map(|&p| a.args.iter().map(|x| substitute(x, p, &self.tmp)).collect())
                .collect();
            for argv in argvs.unwrap_or_default() {
                if !seen.insert(argv.clone()) {
                    continue;
                }
                if argv[0] == "/usr/bin/touch" {
                    // touch(1) in the test root: the file's path is absolute.
                    let path = bed.root.path().join(argv[1].trim_start_matches('/'));
                    if binary == Binary::Works {
                        fs::write(&path, "").unwrap_or_else(|e| panic!("touch {}: {e}", path.display()));
                    }
                    ran.push(argv);
                    continue;
                }
                if argv[0] == "/usr/bin/echo" {
                    self.read_output(&argv, &format!("{}\n", argv[1..].join(" ")));
                    ran.push(argv);
                    continue;
                }
                // The plugin waits for a command without a limit.
                assert_eq!(argv[..2], ["/usr/bin/timeout", "-k"], "{argv:?}");
                assert!(
                    argv[2].parse::<u32>().is_ok() && argv[3].parse::<u32>().is_ok(),
                    "{argv:?}"
                );
                let argv = argv[4..].to_vec();
                assert_eq!(argv[0], "/usr/bin/restart-stale");
                if binary == Binary::Works {
                    let out = bin(bed.root.path())
                        .env("RESTART_STALE_RPM", &bed.rpm)
                        .args(&argv[1..])
                        .output()
                        .unwrap();
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    assert_eq!(out.status.code(), Some(0), "{argv:?}: {stderr}");
                    let stdout = String::from_utf8_lossy(&out.stdout);
                    if argv[1..3] != ["dnf5-hook", "begin"] {
                        assert!(stdout.is_empty(), "{argv:?} wrote to stdout: {out:?}");
                    }
                    self.read_output(&argv, &stdout);
                }
                ran.push(argv);
            }
        }
        ran
    }
}

fn pending(root: &Path) -> String {
    fs::read_to_string(root.join(DIR).join("pending")).unwrap_or_default()
}

#[test]
fn a_transaction_is_recorded_with_both_sides_file_lists() {
    let bed = bed();
    let r = bed.root.path();
    let mut dnf5 = Plugin::default();
    let pre = dnf5.callback(&bed, "pre_transaction", TRANSACTION, Binary::Works);
    // The gate's reset and begin, one per package, pre-transaction.
    assert_eq!(pre.len(), TRANSACTION.len() + 3, "{pre:?}");
    assert_eq!(pending(r), "", "nothing is recorded before the transaction ran");
    run_rpm_transaction(r);
    let post = dnf5.callback(&bed, "post_transaction", TRANSACTION, Binary::Works);
    assert_eq!(post.len(), 1, "{post:?}");

    let calls = fs::read_to_string(r.join("rpm-calls")).unwrap();
    assert_eq!(
        calls, "libdemo-1.0-1.x86_64 other-1-1.x86_64\nfresh-3-1.noarch libdemo-2.0-1.x86_64\n",
        "one rpm call per side, by NEVRA, epochs left out"
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
    let mut dnf5 = Plugin::default();
    dnf5.callback(&bed, "pre_transaction", TRANSACTION, Binary::Works);
    run_rpm_transaction(&r);
    dnf5.callback(&bed, "post_transaction", TRANSACTION, Binary::Works);

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

/// The finish annotates from the rpmdb's changelogs (docs/cves.md): one
/// changelog query, and the entries after the EVR that ran up to the one
/// installed.
#[test]
fn finish_names_the_cves_of_the_rpm_changelog() {
    let bed = bed();
    let r = bed.root.path().to_path_buf();
    allow(&r, &["a.service", "b.service", "c.service"]);
    let mut dnf5 = Plugin::default();
    dnf5.callback(&bed, "pre_transaction", TRANSACTION, Binary::Works);
    run_rpm_transaction(&r);
    dnf5.callback(&bed, "post_transaction", TRANSACTION, Binary::Works);
    fs::remove_dir_all(r.join(format!("proc/{DNF_PID}"))).unwrap();
    changelog(
        &r,
        "libdemo.x86_64",
        &["/lib/x86_64-linux-gnu/libdemo.so.1"],
        "* Thu Nov 19 2026 Jane Roe <j@example.org> - 2.0-1\n\
         - Fix CVE-2026-41211 and CVE-2026-41210\n\n\
         * Mon Nov 02 2026 Jane Roe <j@example.org> - 1.0-1\n\
         - Fix CVE-2020-1111 (long fixed)\n\n",
    );
    let out = bin(&r)
        .env("RESTART_STALE_RPM", &bed.rpm)
        .args(["dnf-hook", "finish"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    let a = stdout.find("a.service").expect(&stdout);
    let fix = stdout
        .find("fixes still live: CVE-2026-41210, CVE-2026-41211 (libdemo 1.0-1 → 2.0-1)")
        .unwrap_or_else(|| panic!("{stdout}\n{stderr}"));
    assert!(a < fix && !stdout.contains("CVE-2020-1111"), "{stdout}");
    let calls = fs::read_to_string(r.join("rpm-calls")).unwrap();
    assert!(
        calls.ends_with("\nfresh.noarch libdemo.x86_64\n"),
        "one query, by name.arch: {calls}"
    );
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
    let mut dnf5 = Plugin::default();
    dnf5.callback(&bed, "pre_transaction", &only_fresh, Binary::Works);
    installed(r, "fresh-3-1.noarch", &["/usr/share/fresh/data"]);
    dnf5.callback(&bed, "post_transaction", &only_fresh, Binary::Works);
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
        (&["begin"], "expected 1 argument(s) (PID), got 0"),
        (&["begin", "${pid}"], "argument PID: \"${pid}\""),
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
    Plugin::default().callback(&bed, "pre_transaction", &staged, Binary::Works);
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

/// A binary that does not answer `begin` (missing, failing, or hanging and
/// killed by the line's timeout) leaves the gate unset: libdnf5 runs no
/// other line of ours, so dnf5 pays for one bounded call, not one per
/// package. A gate left from an earlier transaction of the same plugin
/// (dnf5daemon) is reset first; a working binary opens it again.
#[test]
fn a_broken_binary_costs_one_call_per_transaction() {
    let bed = bed();
    let r = bed.root.path();
    let begin = |ran: &[Vec<String>]| ran.iter().filter(|a| a.get(2).is_some_and(|s| s == "begin")).count();
    let mut dnf5 = Plugin::default();
    for round in 0..2 {
        let pre = dnf5.callback(&bed, "pre_transaction", TRANSACTION, Binary::Broken);
        let post = dnf5.callback(&bed, "post_transaction", TRANSACTION, Binary::Broken);
        assert_eq!(pre.len(), 2, "round {round}: the reset and begin only: {pre:?}");
        assert_eq!(begin(&pre), 1, "{pre:?}");
        assert!(post.is_empty(), "round {round}: {post:?}");
        assert_eq!(pending(r), "");
        // A working transaction in between sets the gate.
        let pre = dnf5.callback(&bed, "pre_transaction", &[("I", "fresh-0:3-1.noarch")], Binary::Works);
        assert_eq!(pre.len(), 4, "{pre:?}");
        installed(r, "fresh-3-1.noarch", &["/usr/share/fresh/data"]);
        let post = dnf5.callback(&bed, "post_transaction", &[("I", "fresh-0:3-1.noarch")], Binary::Works);
        assert_eq!(post.len(), 1, "{post:?}");
        assert!(pending(r).contains("package in fresh-0:3-1.noarch"), "{}", pending(r));
        fs::remove_file(r.join(DIR).join("pending")).unwrap();
    }
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

/// Whatever our binary does (hangs included), the actions file's
/// timeouts bound what it adds to a dnf5 transaction: nothing of ours runs
/// once per package, and the three calls' `timeout -k K T` add up to at
/// most 30 s; each step's own limits end it before its timeout does.
#[test]
fn the_actions_file_bounds_the_whole_transaction() {
    use restart_stale::managers::dnf::dnf5;
    let mut total = Duration::ZERO;
    let mut steps = BTreeMap::new();
    for a in actions_file() {
        match a.args[0].as_str() {
            "/usr/bin/echo" | "/usr/bin/touch" => {
                assert!(!a.args.iter().any(|x| x.contains("restart-stale dnf5")), "{:?}", a.args);
                continue;
            }
            "/usr/bin/timeout" => {}
            other => panic!("a line runs {other} without a timeout: {:?}", a.args),
        }
        assert!(a.filter.is_empty(), "one of our calls runs per package: {:?}", a.args);
        let secs = |i: usize| Duration::from_secs(a.args[i].parse().unwrap());
        assert_eq!(a.args[1], "-k", "{:?}", a.args);
        total += secs(2) + secs(3);
        steps.insert(a.args[6].clone(), secs(3));
    }
    assert!(total <= dnf5::TRANSACTION_BOUND, "{total:?}");
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert!(dnf5::BEGIN_LIMIT < steps["begin"], "{steps:?}");
    for step in ["pre-transaction", "post-transaction"] {
        assert!(dnf5::STEP_LIMIT < steps[step], "{steps:?}");
    }
    assert!(dnf5::RPM_LIMIT < dnf5::STEP_LIMIT);
}
