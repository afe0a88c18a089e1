//! Golden cases, every corpus through one runner: a case is a folder
//! holding the command line (`args`, one argument a line, `@CASE@` for the
//! case folder) and what the run printed (`expected`). The case's fake
//! root, the name the binary is run under and the form of `expected`
//! differ by corpus. `GOLDEN_BLESS=1` rewrites the expectations, and
//! `GOLDEN_KEEP=1` keeps the fake root of a failing case.
//!
//! | corpus | fake root | `expected` |
//! | --- | --- | --- |
//! | tests/cases | the case's own `root/` | stdout, exit status |
//! | tests/replay/cases | tests/replay/root (below) | stdout, stderr, exit status |
//! | tests/cves | tests/replay/root (below), the case's `root/` laid over it: changelogs, another history | stdout, stderr, exit status |
//! | tests/swupd (run as `clr-service-restart`) | the tests/cases root named in `base`, the case's `root/` laid over it | stdout, exit status, stderr, the recorded swupd version |
//! | tests/hooks/MANAGER (`input` on stdin) | the case's own `root/` | `expected.record`: exit status, stdout, stderr, every record under /run/restart-stale |
//!
//! Device and inode numbers of fixture files are only known once the tree
//! is copied, so `maps.in` templates use `{dev:PATH}` and `{ino:PATH}`
//! (tests/util/fixture.rs).
//!
//! The replay system had five apt runs (history.log and its rotations
//! history.log.1.gz, .2.gz, the older one with corrupt lines), the same
//! in dpkg.log*, and swupd manifests of version 400. Its units:
//!
//! | unit | maps | since the last upgrade |
//! | --- | --- | --- |
//! | a (allowed) | libdemo.so.1, old copy | not restarted |
//! | b (allowed) | libdemo.so.1, current | restarted |
//! | c (allowed) | libold.so.3 current, libunrelated.so old | restarted after libold's upgrade |
//! | d (distribution) | i386 libfoo.so.2, old | not restarted |
//! | e (no policy) | libdemo.so.1, old | not restarted |
//! | s (allowed) | libssl.so.3, old (swupd) | not restarted |
//! | f (allowed) | /opt/thing/libthing.so, old | not restarted |

use crate::util::fixture::{case_root, manifest_dir, replay_system, FakeRoot};
use crate::util::{bin, bin_named, check_golden, readable_stdout};
use restart_stale::core::unit_name::Owner;
use restart_stale::system::cgroup;
use restart_stale::system::sysroot::SysRoot;
use std::fs;
use std::path::Path;
use std::process::Output;

/// One folder of golden cases and how its cases run.
struct Corpus {
    /// The folder, relative to the checkout.
    dir: &'static str,
    /// The fewest cases it holds, so that lost cases do not pass.
    at_least: usize,
    /// The name the binary is run under.
    argv0: &'static str,
    /// The fake root of a case (given the case folder).
    root: fn(&Path) -> FakeRoot,
    /// What of a run (in that root) `expected` holds.
    render: fn(&Output, &Path) -> String,
    /// The file of the case that holds the expectation.
    expected: &'static str,
}

#[test]
fn scan_cases() {
    run_corpus(&Corpus {
        dir: "tests/cases",
        at_least: 17,
        argv0: "restart-stale",
        root: scan_root,
        render: |out, _| format!("{}{}", readable_stdout(&out.stdout), exit(out)),
        expected: "expected",
    });
}

#[test]
fn replay_cases() {
    run_corpus(&Corpus {
        dir: "tests/replay/cases",
        at_least: 13,
        argv0: "restart-stale",
        root: |_| replay_system(),
        render: |out, _| {
            let stderr = String::from_utf8_lossy(&out.stderr);
            format!("{}--- stderr\n{stderr}{}", readable_stdout(&out.stdout), exit(out))
        },
        expected: "expected",
    });
}

/// The fixes annotation (docs/cves.md): the replay system with the
/// case's changelogs under `/usr/share/doc` (and at times another
/// `history.log`) laid over it.
#[test]
fn cves_cases() {
    run_corpus(&Corpus {
        dir: "tests/cves",
        at_least: 6,
        argv0: "restart-stale",
        root: |case| {
            let r = replay_system();
            r.lay_over(&case.join("root"));
            r
        },
        render: |out, _| {
            let stderr = String::from_utf8_lossy(&out.stderr);
            format!("{}--- stderr\n{stderr}{}", readable_stdout(&out.stdout), exit(out))
        },
        expected: "expected",
    });
}

/// restart-stale invoked as `clr-service-restart`, as swupd runs it after
/// an update: the case's `root/` brings os-release, swupd manifests, the
/// recorded version and `/etc/clr-service-restart` links.
#[test]
fn swupd_cases() {
    run_corpus(&Corpus {
        dir: "tests/swupd",
        at_least: 6,
        argv0: "clr-service-restart",
        root: |case| {
            let base = fs::read_to_string(case.join("base")).unwrap();
            let r = case_root(base.trim());
            r.lay_over(&case.join("root"));
            r
        },
        render: |out, root| {
            let stderr: String = String::from_utf8_lossy(&out.stderr)
                .lines()
                .map(|l| format!("stderr: {l}\n"))
                .collect();
            let state = fs::read_to_string(root.join("var/lib/restart-stale/swupd-version"));
            let state = state.unwrap_or("none\n".into());
            format!("{}{}{stderr}state: {state}", readable_stdout(&out.stdout), exit(out))
        },
        expected: "expected",
    });
}

/// Package-manager hooks fed what their manager writes on stdin (the
/// case's `input`): apt's protocol 3 to `apt-hook pre-install-pkgs`,
/// pacman's targets to `pacman-hook`. The hook must exit 0 whatever the
/// input, name each bad line, and keep what it can in its record.
#[test]
fn hook_cases() {
    for (dir, at_least) in [("tests/hooks/apt", 7), ("tests/hooks/pacman", 5)] {
        run_corpus(&Corpus {
            dir,
            at_least,
            argv0: "restart-stale",
            root: |case| FakeRoot::copy_of(&case.join("root")),
            render: |out, root| {
                let stderr = String::from_utf8_lossy(&out.stderr);
                format!(
                    "{}{}--- stderr\n{stderr}{}",
                    exit(out),
                    readable_stdout(&out.stdout),
                    records(root)
                )
            },
            expected: "expected.record",
        });
    }
}

/// Every record under /run/restart-stale, by path, with the time and
/// process of each `begin` line (which no two runs share) as `@TIME@
/// @PID@`.
fn records(root: &Path) -> String {
    let mut out = String::new();
    let top = root.join("run/restart-stale");
    let mut dirs = vec![top.clone()];
    let mut files = Vec::new();
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else {
                files.push(e.path());
            }
        }
    }
    files.sort();
    for f in files {
        let text = fs::read_to_string(&f).unwrap_or_else(|e| format!("unreadable: {e}\n"));
        let text: String = text
            .lines()
            .map(|l| match l.strip_prefix("begin ") {
                Some(_) => "begin @TIME@ @PID@\n".to_string(),
                None => format!("{l}\n"),
            })
            .collect();
        let name = f.strip_prefix(&top).unwrap().display().to_string();
        out += &format!("--- record {name}\n{text}");
    }
    out
}

fn exit(out: &Output) -> String {
    format!("exit: {}\n", out.status.code().unwrap_or(-1))
}

fn run_corpus(corpus: &Corpus) {
    let dir = manifest_dir().join(corpus.dir);
    let mut cases: Vec<_> = fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    cases.sort();
    assert!(cases.len() >= corpus.at_least, "cases missing from {}", dir.display());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| run_case(corpus, c).err().map(|e| format!("case {}:\n{e}", name(c))))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn run_case(corpus: &Corpus, case: &Path) -> Result<(), String> {
    let root = (corpus.root)(case);
    let (mut cmd, _link) = bin_named(corpus.argv0, root.path());
    cmd.args(case_args(case));
    if let Ok(input) = fs::read(case.join("input")) {
        cmd.write_stdin(input);
    }
    let out = cmd.output().unwrap();
    let actual = (corpus.render)(&out, root.path())
        .replace(&case.display().to_string(), "@CASE@")
        .replace(&root.path().display().to_string(), "@ROOT@");
    check_golden(&case.join(corpus.expected), &actual).map_err(|diff| {
        if std::env::var_os("GOLDEN_KEEP").is_some() {
            eprintln!("kept the fake root of {} in {}", name(case), root.keep().display());
        }
        format!("{diff}\n--- stderr\n{}", String::from_utf8_lossy(&out.stderr))
    })
}

/// A case folder by its corpus and name (`tests/cases/01-v2-policy`).
fn name(case: &Path) -> String {
    let rel = case.strip_prefix(manifest_dir()).unwrap_or(case);
    rel.display().to_string()
}

/// The case's `args`: one argument a line, `@CASE@` for its folder.
fn case_args(case: &Path) -> Vec<String> {
    fs::read_to_string(case.join("args"))
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|a| a.replace("@CASE@", &case.display().to_string()))
        .collect()
}

/// A scan case's root, whose two cgroup views must agree.
fn scan_root(case: &Path) -> FakeRoot {
    let r = FakeRoot::copy_of(&case.join("root"));
    assert_views_agree(&SysRoot::new(r.path()));
    r
}

/// The cgroup-tree walk and `/proc/PID/cgroup` must place every system
/// process in the same unit. Without a cgroup tree nothing is walked, so
/// `/proc` must place no process in a unit either.
fn assert_views_agree(root: &SysRoot) {
    let layout = cgroup::detect(root);
    let walked = match layout {
        Some(l) => cgroup::system_members(root, l).members,
        None => Vec::new(),
    };
    for m in &walked {
        let from_proc = cgroup::owner_of_pid(root, layout, m.pid).unwrap().unwrap();
        assert_eq!(from_proc, m.owner, "pid {} placed differently by the two views", m.pid);
    }
    for pid in cgroup::all_pids(root).unwrap() {
        let owner = cgroup::owner_of_pid(root, layout, pid).unwrap().unwrap();
        if matches!(owner, Owner::Unit(_) | Owner::Init) {
            assert!(
                walked.iter().any(|m| m.pid == pid),
                "pid {pid} missing from the cgroup walk"
            );
        }
    }
}

fn dry_run(root: &Path, args: &[&str]) -> String {
    let out = bin(root).args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Replaying an old transaction restarts a unit only while it still maps
/// an old version of a file that transaction changed: c.service, which
/// was restarted after libold3's upgrade, is left alone; the same unit
/// still running the old libold.so.3 would be restarted.
#[test]
fn a_unit_restarted_since_the_transaction_is_no_longer_affected() {
    let args = ["replay", "--apt-history", "3", "-n"];
    let system = replay_system();
    let root = system.path();
    assert!(
        !dry_run(root, &args).contains("c.service"),
        "restarted since: not affected"
    );

    let maps = root.join("proc/603/maps");
    let text = fs::read_to_string(&maps).unwrap();
    let stale: String = text
        .lines()
        .map(|l| match l.strip_suffix("/usr/lib/x86_64-linux-gnu/libold.so.3") {
            Some(head) => {
                let fields: Vec<&str> = head.split_whitespace().collect();
                format!(
                    "{} {} {} {} 4000000003 /usr/lib/x86_64-linux-gnu/libold.so.3 (deleted)\n",
                    fields[0], fields[1], fields[2], fields[3]
                )
            }
            None => format!("{l}\n"),
        })
        .collect();
    assert_ne!(text, stale);
    fs::write(&maps, stale).unwrap();
    let out = dry_run(root, &args);
    assert!(
        out.contains("c.service  restart  (allowed by admin: /etc/restart-stale/c.service)")
            && out.contains("/usr/lib/x86_64-linux-gnu/libold.so.3 [replaced]"),
        "{out}"
    );
}

/// An upgrade that renamed a versioned library (`libdemo.so.1.0` →
/// `libdemo.so.1.1`): the old name is in no file list now, only in the
/// maps, so replay counts the deleted old library for the new one of the
/// same directory and soname stem, and says so.
#[test]
fn replay_counts_a_renamed_library_by_its_soname_stem() {
    let args = ["replay", "--apt-history", "-n"];
    let system = replay_system();
    let root = system.path();
    let list = root.join("var/lib/dpkg/info/libdemo1:amd64.list");
    let text = fs::read_to_string(&list).unwrap();
    fs::write(&list, text.replace("libdemo.so.1\n", "libdemo.so.1.1\n")).unwrap();
    let maps = root.join("proc/601/maps");
    let text = fs::read_to_string(&maps).unwrap();
    assert!(text.contains("libdemo.so.1 (deleted)"), "{text}");
    fs::write(
        &maps,
        text.replace("libdemo.so.1 (deleted)", "libdemo.so.1.0 (deleted)"),
    )
    .unwrap();
    let out = dry_run(root, &args);
    assert!(
        out.contains("a.service  restart  (allowed by admin: /etc/restart-stale/a.service)"),
        "{out}"
    );
    assert!(
        out.contains(
            "/usr/lib/x86_64-linux-gnu/libdemo.so.1.0 deleted; the transaction changed \
             /usr/lib/x86_64-linux-gnu/libdemo.so.1.1, of the same directory and soname"
        ),
        "{out}"
    );
}

/// One cgroup that cannot be read (here a directory where `cgroup.procs`
/// should be; on a host EOPNOTSUPP, EACCES, ENODEV) skips that subtree
/// only: the rest is planned as before and the path is reported.
#[test]
fn an_unreadable_cgroup_is_reported_and_the_rest_planned() {
    let case = manifest_dir().join("tests/cases/01-v2-policy");
    let root = FakeRoot::copy_of(&case.join("root"));
    let before = bin(root.path()).args(["-n", "-v"]).output().unwrap();
    let sub = "sys/fs/cgroup/system.slice/plain.service/sub/cgroup.procs";
    fs::create_dir_all(root.path().join(sub)).unwrap();
    let out = bin(root.path()).args(["-n", "-v"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(readable_stdout(&out.stdout), readable_stdout(&before.stdout));
    assert!(stderr.contains(sub), "{stderr}");
}
