//! What the integration tests share: the binary under test, fake roots
//! (`fixture`), live processes that map a library (`live`), an rpm
//! stand-in (`rpm`), golden
//! comparison with its one bless switch, and the `or_skip!` macro.

pub mod fixture;
pub mod live;
pub mod rng;
pub mod rpm;

use std::path::{Path, PathBuf};

/// Set to rewrite every golden expectation from the actual output.
pub const BLESS: &str = "GOLDEN_BLESS";

/// Unwraps a `Result<T, String>` or ends the test with [`skipped`]: a
/// test that cannot run here must say so, not pass in silence.
macro_rules! or_skip {
    ($what:expr) => {
        match $what {
            Ok(v) => v,
            Err(why) => {
                $crate::util::skipped(&why);
                return;
            }
        }
    };
}

/// Says `skipped: <why>` on stderr. Written to the file itself, not through
/// `eprintln!`, which the test harness captures and shows only on failure.
pub fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

/// The restart-stale binary cargo built for these tests.
pub fn bin_path() -> PathBuf {
    assert_cmd::cargo::cargo_bin("restart-stale")
}

/// The binary with test root `root` and an environment of our own: no
/// journal, no suspension, no rpm stand-in, times in UTC.
pub fn bin(root: &Path) -> assert_cmd::Command {
    command(assert_cmd::Command::new(bin_path()), root)
}

/// The binary under another name, as the packages install it (the
/// `clr-service-restart` personality): a symlink in a directory that
/// must live as long as the command.
pub fn bin_named(argv0: &str, root: &Path) -> (assert_cmd::Command, tempfile::TempDir) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let link = dir.path().join(argv0);
    std::os::unix::fs::symlink(bin_path(), &link).unwrap();
    (command(assert_cmd::Command::new(link), root), dir)
}

fn command(mut c: assert_cmd::Command, root: &Path) -> assert_cmd::Command {
    c.env("RESTART_STALE_ROOT", root)
        .env("TZ", "UTC")
        .env_remove("JOURNAL_STREAM")
        .env_remove("RESTART_STALE_SUSPEND")
        .env_remove("RESTART_STALE_RPM");
    c
}

/// A command's stdout as golden files hold it: a JSON document (printed on
/// one line) is pretty-printed so that expectations stay reviewable.
pub fn readable_stdout(stdout: &[u8]) -> String {
    let text = String::from_utf8_lossy(stdout);
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(doc) if text.starts_with('{') => serde_json::to_string_pretty(&doc).unwrap() + "\n",
        _ => text.into_owned(),
    }
}

/// Compares `actual` with the golden file `expected`; with `GOLDEN_BLESS`
/// set, first writes `actual` there.
pub fn check_golden(expected: &Path, actual: &str) -> Result<(), String> {
    if std::env::var_os(BLESS).is_some() {
        std::fs::write(expected, actual).unwrap();
    }
    let want = std::fs::read_to_string(expected).unwrap_or_default();
    if want == actual {
        return Ok(());
    }
    Err(format!(
        "--- expected ({})\n{want}--- actual\n{actual}(set {BLESS}=1 to accept)",
        expected.display()
    ))
}
