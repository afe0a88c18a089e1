//! One restarting instance at a time: an flock(2) on a file under /run.
//!
//! The lock goes with the process (the kernel drops it when the file is
//! closed, even on a crash), so a stale lock file never blocks anybody.
//! The file holds the owner's pid, only to name it in the message.

use crate::system::sysroot::SysRoot;
use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::io::AsRawFd;
use std::time::{Duration, Instant};

/// Where the lock lives, inside the root.
pub const LOCK_PATH: &str = "/run/restart-stale/lock";

/// How long to wait for another instance before giving up. Short on
/// purpose: the other instance is restarting the same units already.
pub const WAIT: Duration = Duration::from_secs(10);

/// Held while it lives.
#[derive(Debug)]
pub struct Lock {
    _file: File,
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

/// Takes the lock, waiting at most `wait` for another holder to finish.
pub fn acquire(root: &SysRoot, wait: Duration) -> Result<Lock> {
    let path = root.path(LOCK_PATH);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("failed to open {}", path.display()))?;
    let deadline = Instant::now() + wait;
    let mut told = false;
    while !try_flock(&file).with_context(|| format!("failed to lock {}", path.display()))? {
        if !told {
            log::info!("waiting for another restart-stale ({}) to finish", holder(&mut file));
            told = true;
        }
        if Instant::now() >= deadline {
            bail!(
                "another restart-stale ({}) holds {LOCK_PATH}; gave up after {}s, nothing was restarted",
                holder(&mut file),
                wait.as_secs()
            );
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
    Ok(Lock { _file: file })
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

    #[test]
    fn second_holder_gives_up_with_a_clear_message() {
        let d = tempfile::tempdir().unwrap();
        let root = SysRoot::new(d.path());
        let first = acquire(&root, Duration::ZERO).unwrap();
        let err = acquire(&root, Duration::from_millis(150)).unwrap_err().to_string();
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        assert!(
            err.contains(LOCK_PATH) && err.contains("nothing was restarted"),
            "{err}"
        );
        drop(first);
        acquire(&root, Duration::ZERO).unwrap();
    }

    /// A full /run (here /dev/full, which takes the flock but no byte)
    /// still gives the lock: the pid is only for messages.
    #[test]
    fn a_lock_file_that_takes_no_pid_still_locks() {
        let d = tempfile::tempdir().unwrap();
        let root = SysRoot::new(d.path());
        let path = root.path(LOCK_PATH);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("/dev/full", &path).unwrap();
        let _held = acquire(&root, Duration::ZERO).unwrap();
    }
}
