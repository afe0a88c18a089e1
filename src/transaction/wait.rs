//! Waiting for a package manager to let go: of a lock file (apt's dpkg
//! frontend lock), tested with `F_OFD_GETLK` and never taken, so we can't
//! block the package manager; or of its process.

use anyhow::{Context, Result};
use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// True when some process holds a lock on `path`. A missing file is a
/// free lock.
pub fn held(path: &Path) -> Result<bool> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("failed to open {}", path.display())),
    };
    // An OFD query sees classic fcntl locks too, even our own process's,
    // and needs no write access (fcntl(2), "Open file description locks").
    let mut fl = write_lock_probe();
    // SAFETY: fcntl with a valid descriptor and a pointer to a live flock.
    let mut rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    if rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        fl = write_lock_probe(); // kernel before 3.15
                                 // SAFETY: as above.
        rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut fl) };
    }
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("failed to query {}", path.display()));
    }
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

fn write_lock_probe() -> libc::flock {
    // SAFETY: flock is plain old data; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl
}

/// How long to wait, how often to look, and how long the lock must stay
/// free before we believe the transaction is over.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    pub timeout: Duration,
    pub poll: Duration,
    pub settle: Duration,
}

impl Wait {
    /// The wait for a package manager's lock: ten minutes, looking five
    /// times a second.
    pub const LOCK: Wait = Wait {
        timeout: Duration::from_secs(600),
        poll: Duration::from_millis(200),
        // Frontends such as unattended-upgrades may drop and retake
        // the lock between dpkg runs; a short quiet period bridges that.
        settle: Duration::from_secs(2),
    };
}

impl Default for Wait {
    fn default() -> Self {
        Wait::LOCK
    }
}

/// Waits until `is_held` has said "free" continuously for `settle`.
/// Returns false on timeout. A probe error counts as free (logged): we
/// would rather act once too early than never.
pub(crate) fn wait_until_free(mut is_held: impl FnMut() -> Result<bool>, wait: Wait) -> bool {
    let start = Instant::now();
    let mut free_since: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let busy = is_held().unwrap_or_else(|e| {
            log::warn!("{e:#}; assuming no package manager is running");
            false
        });
        if busy {
            free_since = None;
        } else if now.duration_since(*free_since.get_or_insert(now)) >= wait.settle {
            return true;
        }
        if now.duration_since(start) >= wait.timeout {
            return false;
        }
        std::thread::sleep(wait.poll);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn take_lock(file: &File) {
        let fl = write_lock_probe();
        // SAFETY: fcntl with a valid descriptor and a live flock.
        assert_eq!(unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl) }, 0);
    }

    #[test]
    fn sees_a_classic_lock_and_a_missing_file_is_free() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("lock-frontend");
        assert!(!held(&path).unwrap());
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap();
        assert!(!held(&path).unwrap());
        take_lock(&file);
        assert!(held(&path).unwrap());
        drop(file);
        assert!(!held(&path).unwrap());
    }

    fn quick(timeout_ms: u64, settle_ms: u64) -> Wait {
        Wait {
            timeout: Duration::from_millis(timeout_ms),
            poll: Duration::from_millis(1),
            settle: Duration::from_millis(settle_ms),
        }
    }

    #[test]
    fn waits_for_a_quiet_period_and_times_out() {
        let mut answers = [true, true, false, true, false, false, false].into_iter();
        let mut asked = 0;
        let ok = wait_until_free(
            || {
                asked += 1;
                Ok(answers.next().unwrap_or(false))
            },
            quick(10_000, 0),
        );
        assert!(ok);
        assert_eq!(asked, 3, "settle 0: the first free answer is enough");
        assert!(!wait_until_free(|| Ok(true), quick(20, 0)));
        let start = Instant::now();
        assert!(wait_until_free(|| Ok(false), quick(10_000, 30)));
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(wait_until_free(|| anyhow::bail!("EACCES"), quick(10_000, 0)));
    }
}
