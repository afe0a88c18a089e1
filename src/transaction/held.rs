//! A record that a hook holds while its transaction runs, for a hook that
//! lives as long as the transaction and may be killed with it: the zypper
//! plugin stays from `COMMITBEGIN` to `COMMITEND` across the whole rpm
//! phase, and what it learned before rpm ran must outlive it.
//!
//! The hook writes the record to `held.<ns>.<pid>` in the spool directory
//! and keeps `flock(2)` on it while it lives; the kernel drops the lock
//! when the process ends, however it ends (`SIGKILL` included). Once the
//! hook has appended its final record to `pending` it removes the held one
//! ([`Held::release`]), so a transaction is recorded once. A finish takes a
//! held record only when its lock is free ([`adopt`]): its hook is gone,
//! and the record is the only one of that transaction.

use super::spool;
use anyhow::{Context, Result};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

const HELD: &str = "held.";
/// A held record being written, not yet under its name: never taken.
const HOLDING: &str = "holding.";

/// A record held by this process; the lock lasts as long as the value.
#[derive(Debug)]
pub struct Held {
    _file: File,
    path: PathBuf,
}

impl Held {
    /// Where the record is held.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Drops the held record once the final one is in the spool. Removed
    /// while still locked, so no finish can take it in between.
    pub fn release(self) -> Result<()> {
        fs::remove_file(&self.path).with_context(|| format!("failed to remove {}", self.path.display()))
    }
}

/// Holds `text` in `dir`, or in its fallback when `dir` cannot take it
/// (as [`spool::append`] does).
pub fn hold(dir: &Path, text: &str) -> Result<Held> {
    let err = match hold_in(dir, text, false) {
        Ok(h) => return Ok(h),
        Err(e) => e,
    };
    let Some(alt) = spool::fallback(dir) else {
        return Err(err);
    };
    match hold_in(&alt, text, true) {
        Ok(h) => {
            log::warn!("{err:#}; held in {} instead", alt.display());
            Ok(h)
        }
        Err(e) => Err(err.context(format!("and in {} neither: {e:#}", alt.display()))),
    }
}

fn hold_in(dir: &Path, text: &str, durable: bool) -> Result<Held> {
    let dir_h = spool::open_dir(dir)?;
    // `taken.<ns>.<pid>` names a moment and a process, and so does ours.
    let stem = spool::taken_name();
    let stem = stem.trim_start_matches("taken.");
    let temp = dir.join(format!("{HOLDING}{stem}"));
    let path = dir.join(format!("{HELD}{stem}"));
    let mut file = dir_h
        .open_at(
            OsStr::new(&format!("{HOLDING}{stem}")),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
            0o600,
        )
        .with_context(|| format!("failed to create {}", temp.display()))?;
    // Locked before it has the name a finish looks for, so no finish
    // ever takes it from a live hook.
    spool::lock(&file, &temp)?;
    let written = file
        .write_all(text.as_bytes())
        .with_context(|| format!("failed to write {}", temp.display()))
        .and_then(|()| {
            if durable {
                file.sync_data()
                    .with_context(|| format!("failed to sync {}", temp.display()))?;
            }
            fs::rename(&temp, &path)
                .with_context(|| format!("failed to rename {} to {}", temp.display(), path.display()))
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    if durable {
        dir_h.sync()?;
    }
    Ok(Held { _file: file, path })
}

/// Held records in `dir`, oldest first.
fn held(dir: &Path) -> Result<Vec<PathBuf>> {
    spool::named(dir, HELD)
}

/// The held record at `path`, locked by us, if its hook is gone and the
/// name is still its own; `None` while a live hook holds it.
fn orphan(path: &Path) -> Result<Option<File>> {
    let file = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path) {
        Ok(f) => f,
        // Released between the listing and now.
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("failed to open {}", path.display())),
    };
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Ok(None);
        }
        return Err(e).with_context(|| format!("failed to lock {}", path.display()));
    }
    // The hook released it after our open: the file we hold is unlinked.
    if !spool::still_named(&file, path)? {
        return Ok(None);
    }
    Ok(Some(file))
}

/// Is a held record in `dir` left by a hook that is gone?
pub(crate) fn any_orphan(dir: &Path) -> Result<bool> {
    for p in held(dir)? {
        if orphan(&p)?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Renames every held record of `dir` whose hook is gone to a taken name,
/// where the spool's next take finds it as a leftover. Returns the new
/// names.
pub(crate) fn adopt(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut adopted = Vec::new();
    for p in held(dir)? {
        // The lock is kept over the rename: the file changes hands whole.
        let Some(_lock) = orphan(&p)? else {
            continue;
        };
        let dest = dir.join(spool::taken_name());
        fs::rename(&p, &dest).with_context(|| format!("failed to rename {} to {}", p.display(), dest.display()))?;
        log::warn!(
            "{}: its hook ended before the transaction did; taking what it recorded",
            p.display()
        );
        adopted.push(dest);
    }
    Ok(adopted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_record_is_taken_only_once_its_hook_is_gone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run/restart-stale/zypper");
        let h = hold(&dir, "begin 1 1\nend\n").unwrap();
        assert!(h.path().file_name().unwrap().to_string_lossy().starts_with(HELD));
        // Our own open file holds the lock: as if the hook still ran.
        assert!(!spool::any_waiting(&dir).unwrap());
        assert!(spool::take(&dir).unwrap().is_empty());
        assert!(h.path().exists());
        // The hook ends (here: drops the file, as the kernel does at exit).
        drop(h);
        assert!(spool::any_waiting(&dir).unwrap());
        let taken = spool::take(&dir).unwrap();
        assert_eq!(taken.len(), 1, "{taken:?}");
        assert_eq!(fs::read_to_string(&taken[0]).unwrap(), "begin 1 1\nend\n");
        spool::remove(&taken);
        assert!(!spool::any_waiting(&dir).unwrap());
    }

    #[test]
    fn a_released_record_is_never_taken() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("zypper");
        let h = hold(&dir, "begin 1 1\nend\n").unwrap();
        spool::append(&dir, "begin 1 1\nfinal\nend\n").unwrap();
        h.release().unwrap();
        let taken = spool::take(&dir).unwrap();
        let text: String = taken.iter().map(|f| fs::read_to_string(f).unwrap()).collect();
        assert_eq!(text, "begin 1 1\nfinal\nend\n");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "only the taken file");
    }
}
