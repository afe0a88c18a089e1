//! The apt hooks as apt runs them: real protocol-3 stdin, a fake root,
//! exit status 0 whatever the input, and the record they leave behind.

use crate::util::bin;
use crate::util::fixture::{self, allow, FakeRoot};
use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const RECORD: &str = "run/restart-stale/apt";

/// What apt 2.6 writes for `apt-get -y -q upgrade` (configuration cut
/// down), upgrading a multi-arch library and removing a daemon.
const UPGRADE: &str = "VERSION 3
APT::Architecture=amd64
APT::Architectures::=amd64
APT::Architectures::=i386
APT::Get::Assume-Yes=1
DPkg::Pre-Install-Pkgs::=/usr/bin/restart-stale%20apt-hook%20pre-install-pkgs%20||%20true
DPkg::Tools::Options::/usr/bin/restart-stale::Version=3
CommandLine::AsString=apt-get%20-y%20-q%20upgrade
Dir::State::status=/var/lib/dpkg/status

libdemo1 1.0 amd64 same < 2.0 amd64 same /var/cache/apt/archives/libdemo1_2.0_amd64.deb
libdemo1 1.0 i386 same < 2.0 i386 same /var/cache/apt/archives/libdemo1_2.0_i386.deb
other 1.0 amd64 none > - - none **REMOVE**
libdemo1 1.0 amd64 same < 2.0 amd64 same **CONFIGURE**
libdemo1 1.0 i386 same < 2.0 i386 same **CONFIGURE**
";

/// A root where systemd runs (PID 1 shares our root) and dpkg knows the
/// demo packages.
fn systemd_root() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fs::create_dir_all(root.join("run/systemd/system")).unwrap();
    fs::create_dir_all(root.join("proc/1")).unwrap();
    symlink("../..", root.join("proc/1/root")).unwrap();
    write_dpkg_info(root);
    tmp
}

fn write_dpkg_info(root: &Path) {
    let info = root.join("var/lib/dpkg/info");
    fs::create_dir_all(&info).unwrap();
    fs::create_dir_all(root.join("usr/lib/x86_64-linux-gnu")).unwrap();
    fs::create_dir_all(root.join("usr/sbin")).unwrap();
    fs::write(
        info.join("libdemo1:amd64.list"),
        "/.\n/usr\n/usr/lib\n/usr/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu/libdemo.so.1\n",
    )
    .unwrap();
    fs::write(
        info.join("libdemo1:i386.list"),
        "/usr/lib/i386-linux-gnu/libdemo.so.1\n",
    )
    .unwrap();
    fs::write(info.join("other.list"), "/.\n/usr/sbin\n/sbin/other\n").unwrap();
}

fn pending(root: &Path) -> String {
    fs::read_to_string(root.join(RECORD).join("pending")).unwrap_or_default()
}

fn record_files(root: &Path) -> Vec<PathBuf> {
    fixture::record_files(&root.join(RECORD))
}

// What one hook run records from apt's protocol 3, good and bad, is
// golden: tests/hooks/apt (tests/golden.rs).

#[test]
fn a_second_dpkg_run_of_one_transaction_appends() {
    let tmp = systemd_root();
    let root = tmp.path();
    for _ in 0..2 {
        bin(root)
            .args(["apt-hook", "pre-install-pkgs"])
            .write_stdin(UPGRADE)
            .assert()
            .code(0);
    }
    let rec = pending(root);
    assert_eq!(rec.matches("begin ").count(), 2, "{rec}");
    assert_eq!(rec.matches("\nlist other:amd64 /sbin/other\n").count(), 2, "{rec}");
}

#[test]
fn no_systemd_or_chroot_or_suspended_records_and_starts_nothing() {
    let bare = tempfile::tempdir().unwrap();
    write_dpkg_info(bare.path());
    let chroot = systemd_root();
    fs::remove_file(chroot.path().join("proc/1/root")).unwrap();
    symlink("/", chroot.path().join("proc/1/root")).unwrap();
    let suspended = systemd_root();
    let cases = [
        (bare.path(), None, "no systemd running: not restarting anything"),
        (chroot.path(), None, "running in a chroot: not restarting anything"),
        (
            suspended.path(),
            Some("1"),
            "RESTART_STALE_SUSPEND=1 is set: not restarting anything",
        ),
    ];
    for (root, suspend, said) in cases {
        let mut pre = bin(root);
        pre.args(["apt-hook", "pre-install-pkgs"]).write_stdin(UPGRADE);
        let mut post = bin(root);
        post.args(["apt-hook", "post-invoke"]);
        if let Some(v) = suspend {
            pre.env("RESTART_STALE_SUSPEND", v);
            post.env("RESTART_STALE_SUSPEND", v);
        }
        pre.assert().code(0);
        assert_eq!(record_files(root), Vec::<PathBuf>::new(), "{said}");
        let out = post.output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(said), "{said}: {err}");
    }
}

#[test]
fn post_invoke_without_a_record_does_nothing() {
    let tmp = systemd_root();
    let out = bin(tmp.path()).args(["apt-hook", "post-invoke"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "{out:?}");
}

/// Golden case 05 (a.service maps the replaced libdemo, c.service runs a
/// replaced /sbin/other, b.service maps a stale file of no package) with
/// systemd and dpkg added, all three units allowed.
fn case_root() -> FakeRoot {
    let r = fixture::case_root("05-changed-merged-usr");
    write_dpkg_info(r.path());
    allow(r.path(), &["a.service", "b.service", "c.service"]);
    r
}

/// Holds the dpkg frontend lock the way apt does (a classic fcntl write
/// lock), from this process.
struct FrontendLock {
    _file: fs::File,
}

impl FrontendLock {
    fn take(root: &Path) -> Self {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join("var/lib/dpkg/lock-frontend"))
            .unwrap();
        // SAFETY: flock is plain data; fcntl gets a valid fd and pointer.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = libc::F_WRLCK as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        assert_eq!(unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl) }, 0);
        FrontendLock { _file: file }
    }
}

/// The upgrade's pre-install hook run, with `RestartStale::Auto-Restart`
/// off so that finish reports (exit 0) instead of failing to restart.
fn pre_install_with_restarts_off(root: &Path) {
    let stdin = UPGRADE.replace(
        "Dir::State::status=",
        "RestartStale::Auto-Restart=false\nDir::State::status=",
    );
    bin(root)
        .args(["apt-hook", "pre-install-pkgs"])
        .write_stdin(stdin)
        .assert()
        .code(0);
}

#[test]
fn finish_waits_for_apt_then_reports_once_when_auto_restart_is_off() {
    let tmp = case_root();
    let root = tmp.path();
    pre_install_with_restarts_off(root);
    assert!(
        root.join(RECORD).join("auto-restart-off").exists(),
        "no mark for the needrestart drop-in"
    );
    // dpkg ran: the removed package's list is gone.
    fs::remove_file(root.join("var/lib/dpkg/info/other.list")).unwrap();

    let lock = FrontendLock::take(root);
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        drop(lock);
    });
    let start = Instant::now();
    let out = bin(root).args(["apt-hook", "finish"]).output().unwrap();
    release.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "finish did not wait for the lock"
    );
    assert!(stderr.contains("waiting until the package manager is done"), "{stderr}");
    assert!(stderr.contains("libdemo1:amd64 1.0 → 2.0"), "{stderr}");
    assert!(stderr.contains("other:amd64 1.0 → (removed)"), "{stderr}");
    assert!(
        stderr.contains(
            "automatic restarts are off (RestartStale::Auto-Restart \"false\"): marking the units to restart later"
        ),
        "{stderr}"
    );
    fixture::assert_case05_acted_on(&stdout);
    assert_eq!(
        record_files(root),
        Vec::<PathBuf>::new(),
        "the record was taken and removed"
    );

    let again = bin(root).args(["apt-hook", "finish"]).output().unwrap();
    assert_eq!(again.status.code(), Some(0));
    assert!(again.stdout.is_empty());
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing to do"));
}

/// A finish that fails before deciding anything (here: the policy cannot
/// be read) keeps the record for the next run and says it failed; the
/// next run acts on it and removes it.
#[test]
fn finish_keeps_a_record_it_could_not_act_on() {
    let tmp = case_root();
    let root = tmp.path();
    bin(root)
        .args(["apt-hook", "pre-install-pkgs"])
        .write_stdin(UPGRADE)
        .assert()
        .code(0);
    let policy = root.join("etc/restart-stale");
    let saved = root.join("etc/restart-stale.saved");
    fs::rename(&policy, &saved).unwrap();
    fs::write(&policy, "not a directory").unwrap();

    let out = bin(root).args(["apt-hook", "finish"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("failed to list policy directory"), "{stderr}");
    assert!(stderr.contains("for a retry (attempt 1 failed)"), "{stderr}");
    // A test root never reaches the bus: the retry is only said.
    assert!(stderr.contains("no retry armed: the root is not /"), "{stderr}");
    let kept = record_files(root);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].to_string_lossy().ends_with(".failed-1"), "{kept:?}");

    fs::remove_file(&policy).unwrap();
    fs::rename(&saved, &policy).unwrap();
    let out = bin(root).args(["apt-hook", "finish"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Acted on: a test root can't restart, so the restarts stay pending (3).
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("libdemo1:amd64 1.0 → 2.0"), "{stderr}");
    assert_eq!(record_files(root), Vec::<PathBuf>::new());
}

/// A manual run holds the restart lock (here this process, by flock(2)
/// as the tool does) while the transaction's finish starts: the finish
/// waits for it, acting on nothing, and acts once the lock is free.
#[test]
fn finish_waits_for_a_busy_restart_lock_then_acts() {
    let tmp = case_root();
    let root = tmp.path();
    bin(root)
        .args(["apt-hook", "pre-install-pkgs"])
        .write_stdin(UPGRADE)
        .assert()
        .code(0);
    let lock_path = root.join("run/restart-stale/lock");
    fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap();
    // SAFETY: flock on a descriptor we own.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let exe = assert_cmd::cargo::cargo_bin("restart-stale");
    let finish = std::process::Command::new(exe)
        .args(["apt-hook", "finish", "--root"])
        .arg(root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Until the finish says it waits, then a while longer: the record is
    // taken but not acted on (not removed) while the lock is held.
    let taken = |r: &Path| record_files(r).iter().any(|f| f.to_string_lossy().contains("taken."));
    for _ in 0..600 {
        if taken(root) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(taken(root), "{:?}", record_files(root));
    drop(lock);
    let out = finish.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("waiting for another restart-stale"), "{stderr}");
    // Acted on: a test root can't restart, so the restarts stay pending (3).
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("libdemo1:amd64 1.0 → 2.0"), "{stderr}");
    assert_eq!(record_files(root), Vec::<PathBuf>::new());
}

/// The finish step runs in its own unit, so the unit apt runs in is not
/// among its ancestors: the hook records it (`protect`), and finish never
/// restarts it, even with an allow link.
#[test]
fn finish_never_restarts_the_unit_the_package_manager_runs_in() {
    let tmp = case_root();
    let root = tmp.path();
    pre_install_with_restarts_off(root);
    // As the hook writes it when apt runs in c.service (an update service
    // with an allow link).
    let pending = root.join(RECORD).join("pending");
    let mut text = fs::read_to_string(&pending).unwrap();
    text.push_str("begin 1 1\nsource apt\nprotect c.service\nend\n");
    fs::write(&pending, text).unwrap();

    let out = bin(root).args(["apt-hook", "finish", "-v"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(fixture::unit_line(&stdout, "a.service").contains("restart"), "{stdout}");
    let c = fixture::unit_line(&stdout, "c.service");
    assert!(
        c.contains("skip") && c.contains("runs this tool or the package manager"),
        "{stdout}"
    );
}

/// With its stderr a pipe nobody reads any more, the hook still records the
/// transaction and exits 0: logging must not panic on a write error.
#[test]
fn a_closed_stderr_does_not_stop_the_hook() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let tmp = systemd_root();
    let root = tmp.path();
    let bad = UPGRADE.replace(
        "other 1.0 amd64 none > - - none **REMOVE**",
        "other 1.0 amd64 none > - - none **REMOVE**\nshort 1 amd64",
    );
    let mut child = Command::new(crate::util::bin_path())
        .args(["apt-hook", "pre-install-pkgs"])
        .env("RESTART_STALE_ROOT", root)
        .env_remove("JOURNAL_STREAM")
        .env_remove("RESTART_STALE_SUSPEND")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close our end before the hook has read a byte, so its first log
    // line (the bad stdin line) meets a broken pipe.
    drop(child.stderr.take());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(bad.as_bytes()).unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let rec = pending(root);
    assert!(rec.contains("\nerror stdin:14: missing field"), "{rec}");
    assert_eq!(rec.matches("\naction ").count(), 5, "{rec}");
}
