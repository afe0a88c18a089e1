//! One restarting instance at a time: an flock(2) on a file under /run.
//!
//! The lock goes with the process (the kernel drops it when the file is
//! closed, even on a crash), so a stale lock file never blocks anybody.
//! The file holds the owner's pid, only to name it in the message.
//!
//! A finish step takes the lock before it acts and keeps it while the
//! restart run inside it asks again: on the thread that holds it, a
//! second [`acquire`] is granted at once ([`Lock`] counts the nesting),
//! since an flock on a new descriptor would wait for ourselves.

use crate::system::safe_write::TrustedDir;
use crate::system::sysroot::SysRoot;
use anyhow::{Context, Result};
use std::cell::RefCell;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where the lock lives, inside the root.
pub const LOCK_PATH: &str = "/run/restart-stale/lock";

/// How long to wait for another instance before giving up. Short on
/// purpose: the other instance is restarting the same units already.
pub const WAIT: Duration = Duration::from_secs(10);

/// Held while it lives.
#[derive(Debug)]
pub struct Lock {
    /// `None` for a nested hold on the thread that has the file locked.
    _file: Option<File>,
    path: PathBuf,
}

thread_local! {
    /// The lock files this thread holds, with how often each is held.
    static HELD: RefCell<Vec<(PathBuf, usize)>> = const { RefCell::new(Vec::new()) };
}

/// Counts one more hold of `path` on this thread if it holds it already.
fn nest(path: &std::path::Path) -> bool {
    HELD.with(|h| match h.borrow_mut().iter_mut().find(|(p, _)| p == path) {
        Some((_, n)) => {
            *n += 1;
            true
        }
        None => false,
    })
}

impl Drop for Lock {
    fn drop(&mut self) {
        HELD.with(|h| {
            let mut h = h.borrow_mut();
            if let Some(i) = h.iter().position(|(p, _)| *p == self.path) {
                h[i].1 -= 1;
                if h[i].1 == 0 {
                    h.remove(i);
                }
            }
        });
    }
}

fn try_flock(f: &File) -> std::io::Result<bool> {
    // SAFETY: flock on a valid, open descriptor has no memory effects.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) | Some(libc::EINTR) => Ok(false),
        _ => Err(e),
    }
}

/// The lock stayed held by another instance for the whole wait; a type of
/// its own so that a caller can tell it from a lock file that cannot be
/// opened at all (a read-only /run), which no waiting mends.
#[derive(Debug)]
pub struct Busy {
    holder: String,
    waited: Duration,
}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "another restart-stale ({}) holds {LOCK_PATH}; gave up after {}s, nothing was restarted",
            self.holder,
            self.waited.as_secs()
        )
    }
}

impl std::error::Error for Busy {}

/// Takes the lock, waiting at most `wait` for another holder to finish;
/// [`Busy`] when it is still held then.
pub(crate) fn acquire(root: &SysRoot, wait: Duration) -> Result<Lock> {
    let path = root.path(LOCK_PATH);
    if nest(&path) {
        return Ok(Lock { _file: None, path });
    }
    let mut file = open(&path)?;
    let deadline = Instant::now() + wait;
    let mut told = false;
    while !try_flock(&file).with_context(|| format!("failed to lock {}", path.display()))? {
        if !told {
            log::info!("waiting for another restart-stale ({}) to finish", holder(&mut file));
            told = true;
        }
        if Instant::now() >= deadline {
            return Err(Busy {
                holder: holder(&mut file),
                waited: wait,
            }
            .into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The pid only names the holder in another instance's message: a full
    // or read-only /run must not stop the restarts the flock now guards.
    let named = file
        .set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| writeln!(file, "{}", std::process::id()));
    if let Err(e) = named {
        log::warn!("cannot write our pid into {}: {e}; going on without it", path.display());
    }
    HELD.with(|h| h.borrow_mut().push((path.clone(), 1)));
    Ok(Lock {
        _file: Some(file),
        path,
    })
}

/// Opens the lock file in its directory, which only root (or, in tests,
/// we) may write: a link planted at the name is refused, never followed,
/// so root never truncates another file to write its pid.
fn open(path: &std::path::Path) -> Result<File> {
    let (dir, name) = crate::system::safe_write::split(path)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .with_context(|| format!("failed to create {}", dir.display()))?;
    let dir = TrustedDir::open(dir)?;
    dir.open_at(OsStr::new(name), libc::O_RDWR | libc::O_CREAT, 0o644)
        .with_context(|| format!("failed to open {}", path.display()))
}

fn holder(file: &mut File) -> String {
    let mut s = String::new();
    let _ = file.rewind().and_then(|_| file.read_to_string(&mut s));
    match s.trim() {
        "" => "pid unknown".into(),
        pid => format!("pid {pid}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Holds the lock from another thread until told to let go.
    fn held_elsewhere(root: &SysRoot) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let root = root.clone();
        let t = std::thread::spawn(move || {
            let _lock = acquire(&root, Duration::ZERO).unwrap();
            held_tx.send(()).unwrap();
            let _ = go_rx.recv();
        });
        held_rx.recv().unwrap();
        (go_tx, t)
    }

    #[test]
    fn second_holder_gives_up_with_a_clear_message() {
        let d = tempfile::tempdir().unwrap();
        let root = SysRoot::new(d.path());
        let (go, t) = held_elsewhere(&root);
        let err = acquire(&root, Duration::from_millis(150)).unwrap_err();
        assert!(err.downcast_ref::<Busy>().is_some(), "{err:#}");
        let err = err.to_string();
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        assert!(
            err.contains(LOCK_PATH) && err.contains("nothing was restarted"),
            "{err}"
        );
        drop(go);
        t.join().unwrap();
        acquire(&root, Duration::ZERO).unwrap();
    }

    #[test]
    fn a_holder_that_lets_go_within_the_wait_hands_the_lock_over() {
        let d = tempfile::tempdir().unwrap();
        let root = SysRoot::new(d.path());
        let (go, t) = held_elsewhere(&root);
        let letting_go = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(go);
        });
        acquire(&root, Duration::from_secs(30)).unwrap();
        letting_go.join().unwrap();
        t.join().unwrap();
    }

    /// The finish holds the lock while the restart run inside it asks.
    #[test]
    fn the_holding_thread_may_ask_again_and_others_still_wait() {
        let d = tempfile::tempdir().unwrap();
        let root = SysRoot::new(d.path());
        let outer = acquire(&root, Duration::ZERO).unwrap();
        let inner = acquire(&root, Duration::ZERO).unwrap();
        drop(inner);
        let r = root.clone();
        let other = std::thread::spawn(move || acquire(&r, Duration::ZERO).is_err());
        assert!(other.join().unwrap(), "the outer hold still locks others out");
        drop(outer);
        let r = root.clone();
        assert!(std::thread::spawn(move || acquire(&r, Duration::ZERO).is_ok())
            .join()
            .unwrap());
    }

    /// A link planted at the lock's name (here to a file root would
    /// truncate to write its pid) is refused, never followed.
    #[test]
    fn a_link_at_the_lock_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let root = SysRoot::new(d.path());
        let victim = d.path().join("victim");
        std::fs::write(&victim, "keep\n").unwrap();
        let path = root.path(LOCK_PATH);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let e = acquire(&root, Duration::ZERO).unwrap_err();
        assert!(e.downcast_ref::<Busy>().is_none(), "not busy: {e:#}");
        let e = format!("{e:#}");
        assert!(e.contains("failed to open"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep\n");
    }
}
