//! What a hostile local user can put in front of the scan, tried for
//! real (issue 22, docs/security.md): links from a module path to files
//! that must never be opened, a module swapped for such a link while the
//! walk runs, a script of thousands of `use lib` lines, and processes
//! that map 60,000 files or hold 18,000 open.
//!
//! Whether a file was opened is told by the kernel itself: an inotify
//! `IN_OPEN` watch on the FIFO or device a link leads to. A lookup
//! (`O_PATH`) does not count as an open; a read would.

use crate::util::live::{scratch_dir, start_ready as start, Running};
use restart_stale::system::interp::cmdline::Lang;
use restart_stale::system::interp::walk::{self, Entry, Walk, MAX_SEARCH};
use restart_stale::system::scan::Scanner;
use restart_stale::system::staleness::Staleness;
use restart_stale::system::sysroot::SysRoot;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn c(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Counts the opens of the files it watches.
struct OpenWatch(OwnedFd);

impl OpenWatch {
    fn new(paths: &[PathBuf]) -> OpenWatch {
        // SAFETY: plain flags.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(fd >= 0, "inotify_init1: {}", std::io::Error::last_os_error());
        // SAFETY: the kernel just gave us this descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        for p in paths {
            // SAFETY: valid descriptor and C string.
            let w = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c(p).as_ptr(), libc::IN_OPEN) };
            assert!(
                w >= 0,
                "inotify_add_watch {}: {}",
                p.display(),
                std::io::Error::last_os_error()
            );
        }
        OpenWatch(fd)
    }

    fn opens(&self) -> usize {
        let mut buf = [0u8; 4096];
        let mut n = 0;
        loop {
            // SAFETY: valid descriptor and buffer.
            let got = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if got <= 0 {
                return n;
            }
            let mut off = 0;
            while off < got as usize {
                // SAFETY: the kernel wrote whole events into buf.
                let ev: libc::inotify_event = unsafe { std::ptr::read_unaligned(buf[off..].as_ptr().cast()) };
                if ev.mask & libc::IN_OPEN != 0 {
                    n += 1;
                }
                off += std::mem::size_of::<libc::inotify_event>() + ev.len as usize;
            }
        }
    }
}

/// Things no module lookup may ever open: a FIFO (an open for reading
/// would block), and as root a device node like `/dev/null`'s (as
/// `/dev/watchdog` would reboot the host).
fn traps(dir: &Path) -> Vec<PathBuf> {
    let fifo = dir.join("trap.fifo");
    // SAFETY: valid C string.
    assert_eq!(unsafe { libc::mkfifo(c(&fifo).as_ptr(), 0o666) }, 0);
    let mut out = vec![fifo];
    if as_root() {
        let dev = dir.join("trap.dev");
        // SAFETY: valid C string; makedev(1, 3) is /dev/null's.
        let r = unsafe { libc::mknod(c(&dev).as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
        assert_eq!(r, 0, "mknod: {}", std::io::Error::last_os_error());
        out.push(dev);
    }
    out
}

fn scratch() -> Option<tempfile::TempDir> {
    match scratch_dir() {
        Ok(d) => Some(d),
        Err(why) => {
            crate::util::skipped(&why);
            None
        }
    }
}

/// A perl process whose `-I` module is then made a link to each trap, and
/// to a file only root may read: the scan of the real process opens none
/// of them. As root the link is a user's (`nobody`'s), which is never
/// followed; unprivileged, it is our own, followed to a file that is not
/// regular, which is never opened.
#[test]
fn a_module_linked_to_a_device_fifo_or_private_file_is_never_opened() {
    let Some(d) = scratch() else { return };
    let lib = d.path().join("lib");
    std::fs::create_dir(&lib).unwrap();
    std::fs::write(
        d.path().join("k.pl"),
        "use K;\n$| = 1;\nprint \"ready\\n\";\nsleep 60;\n",
    )
    .unwrap();
    let mut targets = traps(d.path());
    if as_root() {
        let private = d.path().join("private");
        std::fs::write(&private, "use Secret;\n").unwrap();
        targets.push(private);
    }
    for (i, target) in targets.iter().enumerate() {
        // The last case's link is still there; writing through it would
        // open its trap.
        let _ = std::fs::remove_file(lib.join("K.pm"));
        std::fs::write(lib.join("K.pm"), "1;\n").unwrap();
        let perl = start(Command::new("perl").arg("-I").arg(&lib).arg(d.path().join("k.pl")));
        std::fs::remove_file(lib.join("K.pm")).unwrap();
        symlink(target, lib.join("K.pm")).unwrap();
        if as_root() {
            // SAFETY: valid C string.
            assert_eq!(unsafe { libc::lchown(c(&lib.join("K.pm")).as_ptr(), 65534, 65534) }, 0);
        }
        let watch = OpenWatch::new(std::slice::from_ref(target));
        let files = Scanner::default()
            .process(&SysRoot::default(), perl.0.id())
            .unwrap()
            .expect("perl is alive");
        assert_eq!(watch.opens(), 0, "case {i}: {} was opened", target.display());
        let k = lib.join("K.pm");
        assert!(
            !files.iter().any(|f| *f.path == *k.to_str().unwrap()),
            "case {i}: the link was taken for the module: {files:?}"
        );
        drop(perl);
    }
}

/// 40 modules, each swapped back and forth with a link to a trap by
/// `renameat2(RENAME_EXCHANGE)` while walks run: a check of one name and
/// an open of another can never meet, so no trap is ever opened.
#[test]
fn modules_swapped_for_links_while_the_walk_runs_never_open_a_trap() {
    let Some(d) = scratch() else { return };
    let lib = d.path().join("lib");
    std::fs::create_dir(&lib).unwrap();
    let traps = traps(d.path());
    let n = 40;
    let mut script = String::new();
    for i in 0..n {
        script.push_str(&format!("use M{i};\n"));
        std::fs::write(lib.join(format!("M{i}.pm")), "1;\n").unwrap();
        symlink(&traps[i % traps.len()], lib.join(format!(".M{i}.alt"))).unwrap();
    }
    std::fs::write(d.path().join("k.pl"), &script).unwrap();
    let watch = OpenWatch::new(&traps);
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (lib, stop) = (lib.clone(), stop.clone());
        std::thread::spawn(move || {
            let names: Vec<_> = (0..n)
                .map(|i| (c(&lib.join(format!("M{i}.pm"))), c(&lib.join(format!(".M{i}.alt")))))
                .collect();
            let mut flips = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for (a, b) in &names {
                    // SAFETY: valid C strings.
                    let r = unsafe {
                        libc::renameat2(
                            libc::AT_FDCWD,
                            a.as_ptr(),
                            libc::AT_FDCWD,
                            b.as_ptr(),
                            libc::RENAME_EXCHANGE,
                        )
                    };
                    assert_eq!(r, 0, "renameat2: {}", std::io::Error::last_os_error());
                    flips += 1;
                }
            }
            flips
        })
    };
    let script = d.path().join("k.pl").to_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut walks = 0;
    while Instant::now() < deadline {
        let w = Walk {
            root: Path::new("/"),
            lang: Lang::Perl,
            search: vec![lib.to_str().unwrap().to_string()],
            cwd: "/".into(),
            preload: Vec::new(),
            core: Vec::new(),
        };
        let _ = walk::walk(w, &Entry::Script(script.clone()));
        walks += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let flips = flipper.join().unwrap();
    assert!(
        walks > 10 && flips > 1000,
        "the race did not run: {walks} walks, {flips} flips"
    );
    assert_eq!(
        watch.opens(),
        0,
        "a trap was opened during {walks} walks and {flips} swaps"
    );
}

/// 2,000 `use lib` lines and 2,000 `use` of missing modules: the walk
/// keeps at most [`MAX_SEARCH`] directories, says it stopped, and still
/// finds a module in one of the directories it kept.
#[test]
fn a_script_of_thousands_of_use_lib_lines_is_cut_short_and_says_so() {
    let d = tempfile::tempdir().unwrap();
    let mut script = String::from("use lib 'lib0';\nuse Found;\n");
    std::fs::create_dir(d.path().join("lib0")).unwrap();
    std::fs::write(d.path().join("lib0/Found.pm"), "1;\n").unwrap();
    for i in 1..2000 {
        std::fs::create_dir(d.path().join(format!("lib{i}"))).unwrap();
        script.push_str(&format!("use lib 'lib{i}';\nuse Missing{i};\n"));
    }
    std::fs::write(d.path().join("big.pl"), &script).unwrap();
    let root = d.path().to_str().unwrap();
    let w = Walk {
        root: Path::new("/"),
        lang: Lang::Perl,
        search: Vec::new(),
        cwd: root.to_string(),
        preload: Vec::new(),
        core: Vec::new(),
    };
    let out = walk::walk(w, &Entry::Script(format!("{root}/big.pl")));
    assert_eq!(out.cut.as_deref(), Some(format!("{MAX_SEARCH} search paths").as_str()));
    let found: Vec<&str> = out.loaded.iter().map(|l| &*l.module).collect();
    assert_eq!(found, ["", "Found"], "the script and the module found before the cut");
}

/// A python3 that maps each of `n` files of its own, then deletes them
/// (`what` = "map"), or holds each open, then deletes it ("open").
fn many_files(dir: &Path, what: &str, n: usize) -> Running {
    let prog = r#"
import ctypes, os, resource, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
d, what, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
keep = []
for i in range(n):
    p = os.path.join(d, "f%d" % i)
    with open(p, "wb") as f:
        f.write(b"x")
    f = open(p, "rb")
    if what == "map":
        # Python's own mmap keeps a descriptor per mapping; the C call does not.
        if libc.mmap(None, 1, 1 | 4, 2, f.fileno(), 0) in (None, ctypes.c_void_p(-1).value):
            sys.exit("mmap: errno %d" % ctypes.get_errno())
        f.close()
    else:
        keep.append(f)
    os.unlink(p)
print("ready", flush=True)
import time
time.sleep(120)
"#;
    start(
        Command::new("python3")
            .arg("-c")
            .arg(prog)
            .arg(dir)
            .arg(what)
            .arg(n.to_string()),
    )
}

fn deleted_under(files: &[restart_stale::system::scan::StaleFile], dir: &Path) -> usize {
    let dir = format!("{}/", dir.display());
    files
        .iter()
        .filter(|f| f.path.starts_with(&dir) && f.why == Staleness::Deleted)
        .count()
}

/// 60,000 distinct deleted files mapped executable by one process: every
/// one is found (the duplicate test is a set, not a list searched per
/// mapping; its cost is in docs/benchmarks.md).
#[test]
fn a_process_with_60000_deleted_mappings_has_each_found_once() {
    let Some(d) = scratch() else { return };
    let n = 60_000;
    let p = many_files(d.path(), "map", n);
    let files = Scanner::default()
        .process(&SysRoot::default(), p.0.id())
        .unwrap()
        .expect("alive");
    assert_eq!(deleted_under(&files, d.path()), n);
}

/// 18,000 deleted files held open: each is found once, unless the
/// scratch directory lies under /var, whose open files are data a
/// service rotates (interp::fds), which are not judged.
#[test]
fn a_process_with_18000_deleted_open_files_has_each_found_once() {
    let Some(d) = scratch() else { return };
    let n = 18_000;
    let p = many_files(d.path(), "open", n);
    let files = Scanner::default()
        .process(&SysRoot::default(), p.0.id())
        .unwrap()
        .expect("alive");
    let want = if d.path().starts_with("/var/") { 0 } else { n };
    assert_eq!(deleted_under(&files, d.path()), want);
}
