//! The spool of transaction records under `/run/restart-stale/<manager>/`,
//! whatever their content.
//!
//! Each hook run appends one block to `pending`. `finish` takes the record
//! by renaming `pending` to `taken.<ns>.<pid>`, so lines written later go
//! to a new `pending` and are never lost or read twice. Writers and the
//! taker hold `flock(2)` on the file while they write or rename, and a
//! writer that finds `pending` renamed under it reopens it. A taken file
//! is removed only once acted on; one that is left behind is taken again
//! by the next run, oldest first.
//!
//! A hook that must write its record before the transaction is over (the
//! zypper plugin, killed with its commit) holds it in a file of its own
//! until it appends the final one ([`super::held`]); a held record whose
//! hook is gone is taken like a leftover.
//!
//! A hook whose record `/run` cannot take (mounted read-only, full) writes
//! it to the same name under [`FALLBACK`] on /var instead, and every look
//! at the spool (waiting, taking) covers both: the transaction is acted on
//! once the finish step can run. A record that waits there over a reboot
//! is harmless: the finish restarts only what still runs replaced files.

use crate::system::safe_write::TrustedDir;
use anyhow::{Context, Result};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

const PENDING: &str = "pending";
const TAKEN: &str = "taken.";
/// Suffix of a taken file whose run failed, with the number of failures.
const RETRY: &str = ".failed-";

fn ensure_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("failed to create {}", dir.display()))
}

/// How long a writer or the taker waits for the other; each holds the
/// lock only for one write or one rename, so this is never reached unless
/// something is badly wrong, and then apt must not hang on us.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

pub(super) fn lock(file: &File, path: &Path) -> Result<()> {
    let start = std::time::Instant::now();
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) || start.elapsed() > LOCK_WAIT {
            return Err(e).with_context(|| format!("failed to lock {}", path.display()));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// True when `path` still names the file open as `file` (it was not
/// renamed away between our open and our lock).
pub(super) fn still_named(file: &File, path: &Path) -> Result<bool> {
    let open = file.metadata()?;
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(m.dev() == open.dev() && m.ino() == open.ino()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("failed to stat {}", path.display())),
    }
}

/// Where a spool's records go when its directory under /run cannot take
/// them, relative to the same root.
pub const FALLBACK: &str = "var/lib/restart-stale/spool";

/// The fallback of the spool `dir`, which is `<root>/run/restart-stale/<name>`
/// for every package manager: `<root>/var/lib/restart-stale/spool/<name>`.
/// `None` for a directory of another shape (a test's bare temporary one).
pub fn fallback(dir: &Path) -> Option<PathBuf> {
    let name = dir.file_name()?;
    let ours = dir.parent()?;
    let run = ours.parent()?;
    if ours.file_name()? != "restart-stale" || run.file_name()? != "run" {
        return None;
    }
    Some(run.parent()?.join(FALLBACK).join(name))
}

/// The spool directory and its fallback, if it has one.
fn both(dir: &Path) -> Vec<PathBuf> {
    std::iter::once(dir.to_path_buf()).chain(fallback(dir)).collect()
}

/// Appends `text` to `dir/pending` in one write, under the lock; to the
/// fallback's `pending` when `dir` cannot take it (read-only, full).
pub fn append(dir: &Path, text: &str) -> Result<()> {
    let err = match append_in(dir, text, false) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let Some(alt) = fallback(dir) else {
        return Err(err);
    };
    // On /var the record must outlive a crash: that is why it went there.
    match append_in(&alt, text, true) {
        Ok(()) => {
            log::warn!("{err:#}; recorded in {} instead", alt.display());
            Ok(())
        }
        Err(e) => Err(err.context(format!("and in {} neither: {e:#}", alt.display()))),
    }
}

/// The spool directory, created if need be, checked as every directory
/// root writes in ([`TrustedDir`]): a link planted at `pending` must not
/// make a hook append its record to another file.
pub(super) fn open_dir(dir: &Path) -> Result<TrustedDir> {
    ensure_dir(dir)?;
    TrustedDir::open(dir)
}

fn append_in(dir: &Path, text: &str, durable: bool) -> Result<()> {
    let dir_h = open_dir(dir)?;
    let path = dir.join(PENDING);
    for _ in 0..100 {
        let mut file = dir_h
            .open_at(
                OsStr::new(PENDING),
                libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT,
                0o600,
            )
            .with_context(|| format!("failed to open {}", path.display()))?;
        lock(&file, &path)?;
        if still_named(&file, &path)? {
            let len = file.metadata()?.len();
            if let Err(e) = file.write_all(text.as_bytes()) {
                // All or nothing: a partial block (a full disk) would run
                // into the `begin` line of the next writer's block.
                let _ = file.set_len(len);
                return Err(e).with_context(|| format!("failed to write {}", path.display()));
            }
            if durable {
                file.sync_data()
                    .with_context(|| format!("failed to sync {}", path.display()))?;
                dir_h.sync()?;
            }
            return Ok(());
        }
        // finish renamed it while we waited for the lock: start a new one.
    }
    anyhow::bail!("{} keeps being renamed; giving up", path.display())
}

/// Takes every record that is waiting, in `dir` and its fallback:
/// leftovers from a `finish` that did not complete, then `pending`, renamed
/// so that new runs start afresh. Returns the taken files, oldest first;
/// the caller removes them once acted upon.
pub fn take(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut taken = Vec::new();
    // The fallback first: its records were written while /run failed,
    // before those that /run took again since.
    for d in both(dir).iter().rev() {
        taken.extend(take_in(d)?);
    }
    // Taken names start with the time they were taken.
    taken.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(taken)
}

fn take_in(dir: &Path) -> Result<Vec<PathBuf>> {
    // A record whose hook died holding it becomes a leftover like others.
    super::held::adopt(dir)?;
    let mut taken = leftovers(dir)?;
    let path = dir.join(PENDING);
    for _ in 0..100 {
        let file = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(taken),
            Err(e) => return Err(e).with_context(|| format!("failed to open {}", path.display())),
        };
        lock(&file, &path)?;
        if !still_named(&file, &path)? {
            continue;
        }
        let dest = dir.join(taken_name());
        fs::rename(&path, &dest)
            .with_context(|| format!("failed to rename {} to {}", path.display(), dest.display()))?;
        sync_fallback(&dest);
        taken.push(dest);
        return Ok(taken);
    }
    anyhow::bail!("{} keeps being renamed; giving up", path.display())
}

/// Is anything waiting to be taken, in `dir` or its fallback?
pub(crate) fn any_waiting(dir: &Path) -> Result<bool> {
    for d in both(dir) {
        if d.join(PENDING).exists() || !leftovers(&d)?.is_empty() || super::held::any_orphan(&d)? {
            return Ok(true);
        }
    }
    Ok(false)
}

pub(super) fn taken_name() -> String {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{TAKEN}{ns:020}.{}", std::process::id())
}

fn leftovers(dir: &Path) -> Result<Vec<PathBuf>> {
    named(dir, TAKEN)
}

/// The files of `dir` whose names start with `prefix`, sorted (their
/// names hold the time they were made, so oldest first); none when `dir`
/// does not exist.
pub(crate) fn named(dir: &Path, prefix: &str) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("failed to list {}", dir.display())),
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .collect();
    found.sort();
    Ok(found)
}

/// One `finish` at a time, even when someone runs it by hand.
pub(crate) fn try_lock(dir: &Path) -> Result<Option<File>> {
    ensure_dir(dir)?;
    let path = dir.join("finish.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .with_context(|| format!("failed to open {}", path.display()))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Ok(None);
        }
        return Err(e).with_context(|| format!("failed to lock {}", path.display()));
    }
    Ok(Some(file))
}

pub fn remove(files: &[PathBuf]) {
    for f in files {
        match fs::remove_file(f) {
            Ok(()) => sync_fallback(f),
            Err(e) => log::warn!("failed to remove {}: {e}", f.display()),
        }
    }
}

/// Is a record waiting that no finish has taken yet? (Leftovers of a
/// failed run wait for the next run, not for another round.)
pub(crate) fn any_fresh(dir: &Path) -> Result<bool> {
    Ok(both(dir).iter().any(|d| d.join(PENDING).exists()))
}

/// Keeps taken files whose run failed, so the next run (the retry, or the
/// next transaction's finish) tries again. A file that has failed
/// `max_attempts` times and was written over `min_age` ago is removed,
/// with an error naming it and `summary`, the transaction it held.
/// Returns the highest failure count among the files kept, `None` when
/// none was.
pub(crate) fn keep_for_retry(
    files: &[PathBuf],
    max_attempts: u32,
    min_age: std::time::Duration,
    summary: &str,
) -> Option<u32> {
    let mut kept = None;
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (base, failed) = match name.rsplit_once(RETRY) {
            Some((b, n)) => (b.to_string(), n.parse::<u32>().unwrap_or(0)),
            None => (name.clone(), 0),
        };
        let failed = failed + 1;
        if failed >= max_attempts && older_than(f, min_age) {
            log::error!(
                "giving up on {} after {failed} failed attempts over more than {} minutes; \
                 its transaction is not acted on: {summary}",
                f.display(),
                min_age.as_secs() / 60
            );
            remove(std::slice::from_ref(f));
            continue;
        }
        let dest = f.with_file_name(format!("{base}{RETRY}{failed}"));
        match fs::rename(f, &dest) {
            Ok(()) => {
                sync_fallback(&dest);
                kept = kept.max(Some(failed));
                log::warn!("kept {} for a retry (attempt {failed} failed)", dest.display());
            }
            Err(e) => log::error!("failed to keep {} for a retry: {e}", f.display()),
        }
    }
    kept
}

/// Whether `path` was last written over `age` ago; an unreadable time
/// counts as old, so such a file cannot be kept for ever.
fn older_than(path: &Path, age: std::time::Duration) -> bool {
    let written = fs::symlink_metadata(path).and_then(|m| m.modified());
    written.ok().and_then(|t| t.elapsed().ok()).is_none_or(|e| e >= age)
}

/// A rename or removal in a fallback spool must outlive a crash, as the
/// record written there does ([`append`]): syncs the directory holding
/// `path` when it is one (a warning if that fails).
fn sync_fallback(path: &Path) {
    let Some(dir) = path.parent() else { return };
    if !dir.parent().is_some_and(|p| p.ends_with(FALLBACK)) {
        return;
    }
    if let Err(e) = TrustedDir::open(dir).and_then(|d| d.sync()) {
        log::warn!("{e:#}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn take_renames_so_later_appends_start_a_new_record() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run/restart-stale/apt");
        assert!(take(&dir).unwrap().is_empty());
        assert!(!any_waiting(&dir).unwrap());
        append(&dir, "begin 1 1\n").unwrap();
        append(&dir, "begin 2 2\n").unwrap();
        assert!(any_waiting(&dir).unwrap());
        let first = take(&dir).unwrap();
        assert_eq!(first.len(), 1);
        append(&dir, "begin 3 3\n").unwrap();
        assert_eq!(fs::read_to_string(&first[0]).unwrap(), "begin 1 1\nbegin 2 2\n");
        // A finish that died left `first` behind: the next take gets both, oldest first.
        let second = take(&dir).unwrap();
        assert_eq!(second.len(), 2);
        assert_eq!(second[0], first[0]);
        let text: String = second.iter().map(|f| fs::read_to_string(f).unwrap()).collect();
        assert_eq!(text, "begin 1 1\nbegin 2 2\nbegin 3 3\n");
        for f in second {
            fs::remove_file(f).unwrap();
        }
        assert!(!any_waiting(&dir).unwrap());
    }

    /// A link at `pending` (or a spool directory others can write, where
    /// one could be planted) must not make root append to another file.
    #[test]
    fn a_planted_link_or_an_open_directory_takes_no_record() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        fs::write(&victim, "secret\n").unwrap();
        let dir = tmp.path().join("apt");
        ensure_dir(&dir).unwrap();
        std::os::unix::fs::symlink(&victim, dir.join(PENDING)).unwrap();
        let e = format!("{:#}", append(&dir, "begin 1 1\n").unwrap_err());
        assert!(e.contains("pending"), "{e}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "secret\n");
        fs::remove_file(dir.join(PENDING)).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let e = format!("{:#}", append(&dir, "begin 1 1\n").unwrap_err());
        assert!(
            e.contains(&dir.display().to_string()) && e.contains("writable by group or others"),
            "{e}"
        );
        assert!(!dir.join(PENDING).exists());
    }

    #[test]
    fn writer_holding_the_old_file_reopens_after_a_take() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        append(dir, "begin 1 1\n").unwrap();
        // A writer opened `pending` just before finish renamed it.
        let stale = File::open(dir.join(PENDING)).unwrap();
        let taken = take(dir).unwrap();
        assert!(!still_named(&stale, &dir.join(PENDING)).unwrap());
        append(dir, "begin 2 2\n").unwrap();
        assert_eq!(fs::read_to_string(&taken[0]).unwrap(), "begin 1 1\n");
        assert_eq!(fs::read_to_string(dir.join(PENDING)).unwrap(), "begin 2 2\n");
    }

    #[test]
    fn concurrent_appends_are_all_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let dir = dir.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        append(&dir, &format!("begin {i} {t}\nend\n")).unwrap();
                    }
                })
            })
            .collect();
        let mut files = BTreeSet::new();
        for _ in 0..5 {
            files.extend(take(&dir).unwrap());
        }
        for w in writers {
            w.join().unwrap();
        }
        files.extend(take(&dir).unwrap());
        let files: Vec<_> = files.into_iter().collect();
        let text: String = files.iter().map(|f| fs::read_to_string(f).unwrap()).collect();
        assert_eq!(text.lines().filter(|l| l.starts_with("begin ")).count(), 200);
        assert_eq!(text.lines().filter(|l| *l == "end").count(), 200);
    }

    #[test]
    fn a_second_finish_leaves_the_record_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("apt");
        let held = try_lock(&dir).unwrap();
        assert!(held.is_some());
        assert!(try_lock(&dir).unwrap().is_none());
        drop(held);
        assert!(try_lock(&dir).unwrap().is_some());
    }

    #[test]
    fn a_record_that_run_cannot_take_goes_to_the_fallback_and_is_taken_from_there() {
        let (_tmp, root) = crate::system::sysroot::SysRoot::scratch();
        let dir = root.path("/run/restart-stale/apt");
        let alt = root.path("/var/lib/restart-stale/spool/apt");
        assert_eq!(fallback(&dir), Some(alt.clone()));
        // /run cannot take it: here the spool's name is held by a file.
        fs::create_dir_all(dir.parent().unwrap()).unwrap();
        fs::write(&dir, "").unwrap();
        append(&dir, "begin 1 1\nend\n").unwrap();
        assert_eq!(fs::read_to_string(alt.join(PENDING)).unwrap(), "begin 1 1\nend\n");
        // /run is back: the next run sees the record, with the ones there.
        fs::remove_file(&dir).unwrap();
        append(&dir, "begin 2 2\nend\n").unwrap();
        assert!(any_waiting(&dir).unwrap() && any_fresh(&dir).unwrap());
        let files = take(&dir).unwrap();
        assert_eq!(files.len(), 2, "{files:?}");
        let text: String = files.iter().map(|f| fs::read_to_string(f).unwrap()).collect();
        assert_eq!(text, "begin 1 1\nend\nbegin 2 2\nend\n");
        // A failed run keeps a fallback file where it is, for the next run.
        keep_for_retry(&files, 3, std::time::Duration::ZERO, "t");
        assert!(any_waiting(&dir).unwrap() && !any_fresh(&dir).unwrap());
        let files = take(&dir).unwrap();
        assert_eq!(files.len(), 2, "{files:?}");
        remove(&files);
        assert!(!any_waiting(&dir).unwrap());
    }

    #[test]
    fn only_spools_under_run_restart_stale_have_a_fallback() {
        assert_eq!(fallback(Path::new("/tmp/x/apt")), None);
        assert_eq!(fallback(Path::new("apt")), None);
        assert_eq!(
            fallback(Path::new("/run/restart-stale/dnf")),
            Some(PathBuf::from("/var/lib/restart-stale/spool/dnf"))
        );
    }

    #[test]
    fn failed_files_are_kept_with_their_count_then_dropped_once_old() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let hour = std::time::Duration::from_secs(3600);
        append(dir, "begin 1 1\n").unwrap();
        let mut files = take(dir).unwrap();
        for attempt in 1..3 {
            assert_eq!(keep_for_retry(&files, 3, hour, "t"), Some(attempt));
            assert!(!any_fresh(dir).unwrap());
            files = take(dir).unwrap();
            assert_eq!(files.len(), 1);
            let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
            assert!(name.ends_with(&format!(".failed-{attempt}")), "{name}");
            assert_eq!(fs::read_to_string(&files[0]).unwrap(), "begin 1 1\n");
        }
        // Out of attempts, but written just now: kept all the same.
        assert_eq!(keep_for_retry(&files, 3, hour, "t"), Some(3));
        files = take(dir).unwrap();
        assert_eq!(files.len(), 1);
        // Written two hours ago: dropped.
        let then = std::time::SystemTime::now() - 2 * hour;
        File::options()
            .write(true)
            .open(&files[0])
            .unwrap()
            .set_modified(then)
            .unwrap();
        assert_eq!(keep_for_retry(&files, 3, hour, "t"), None);
        assert!(!any_waiting(dir).unwrap());
    }
}
