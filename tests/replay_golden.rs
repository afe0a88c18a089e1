//! Golden cases for `restart-stale replay`: every `tests/replay/cases/NN-name/`
//! holds a command line (`args`, one argument a line, `@CASE@` for the
//! case directory) and the expected stdout, stderr and exit code
//! (`expected`), run against the fake system of `tests/replay/root/`.
//!
//! That system had five apt runs (history.log and its rotations
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
//!
//! Set `GOLDEN_BLESS=1` to rewrite the expectations.

#[path = "common/fixture.rs"]
mod fixture;

use std::path::{Path, PathBuf};

fn run_case(case: &Path) -> Result<(), String> {
    let (tmp, root) = fixture::fake_system();
    let args: Vec<String> = std::fs::read_to_string(case.join("args"))
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|a| a.replace("@CASE@", &case.display().to_string()))
        .collect();
    let out = assert_cmd::Command::cargo_bin("restart-stale")
        .unwrap()
        .args(&args)
        .env("RESTART_STALE_ROOT", &root)
        .env("TZ", "UTC")
        .env_remove("JOURNAL_STREAM")
        .output()
        .unwrap();
    let actual = format!(
        "{}--- stderr\n{}exit: {}\n",
        fixture::readable_stdout(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        out.status.code().unwrap_or(-1)
    )
    .replace(&case.display().to_string(), "@CASE@")
    .replace(&root.display().to_string(), "@ROOT@");
    let expected_path = case.join("expected");
    if std::env::var_os("GOLDEN_BLESS").is_some() {
        std::fs::write(&expected_path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    drop(tmp);
    if actual != expected {
        return Err(format!("--- expected\n{expected}--- actual\n{actual}"));
    }
    Ok(())
}

#[test]
fn replay_golden_cases() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/replay/cases");
    let mut cases: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    cases.sort();
    assert!(cases.len() >= 8, "replay cases missing from {}", dir.display());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| run_case(c).err().map(|e| format!("case {}:\n{e}", c.display())))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn dry_run(root: &Path, args: &[&str]) -> String {
    let out = assert_cmd::Command::cargo_bin("restart-stale")
        .unwrap()
        .args(args)
        .env("RESTART_STALE_ROOT", root)
        .env_remove("JOURNAL_STREAM")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Replaying an old transaction restarts a unit only while it still maps
/// an old version of a file that transaction changed: c.service, which
/// was restarted after libold3's upgrade, is left alone; the same unit
/// still running the old libold.so.3 would be restarted.
#[test]
fn a_unit_restarted_since_the_transaction_is_no_longer_affected() {
    let args = ["replay", "--apt-history", "3", "-n"];
    let (_tmp, root) = fixture::fake_system();
    assert!(
        !dry_run(&root, &args).contains("c.service"),
        "restarted since: not affected"
    );

    let maps = root.join("proc/603/maps");
    let text = std::fs::read_to_string(&maps).unwrap();
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
    std::fs::write(&maps, stale).unwrap();
    let out = dry_run(&root, &args);
    assert!(
        out.contains("c.service  restart  (allowed by admin: /etc/restart-stale/c.service)")
            && out.contains("/usr/lib/x86_64-linux-gnu/libold.so.3 [replaced]"),
        "{out}"
    );
}
