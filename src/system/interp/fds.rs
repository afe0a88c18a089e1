//! Files a process holds open: `/proc/PID/fd`.
//!
//! bash keeps its script open, the JVM its jars, many daemons their data
//! files. An open regular file is stale by the same device-and-inode rule
//! as a mapping, judged in the same view, through the same verdict cache.
//! Each descriptor costs a `readlink` (the path as the kernel prints it,
//! ` (deleted)` included) and, for paths worth judging, a `stat` of the
//! `/proc/PID/fd/N` link, which the kernel follows to the open file itself.
//! The file is never opened.

use crate::system::dedup::SeenSet;
use crate::system::staleness::{self, Resolver, Stale, ViewKey};
use crate::system::sysroot::SysRoot;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Open files under these are data a service writes and rotates itself
/// (logs renamed and deleted by logrotate, caches, databases): a deleted
/// log still open is not code left running.
const DATA_PREFIXES: &[&[u8]] = &[b"/var/"];

fn worth_judging(link: &[u8]) -> bool {
    // Sockets, pipes and anon inodes print as `socket:[…]` and the like.
    link.first() == Some(&b'/') && !staleness::ignored(link) && !DATA_PREFIXES.iter().any(|p| link.starts_with(p))
}

/// The stale files among `pid`'s open descriptors, in the view `view`
/// (paths looked up under `root_dir`). A process that exited or whose
/// descriptors we may not read has none.
pub(crate) fn stale_open_files(
    resolver: &mut Resolver,
    root: &SysRoot,
    pid: u32,
    view: ViewKey,
    root_dir: &Path,
) -> Vec<Stale> {
    let dir = root.proc_pid(pid, "fd");
    let (Ok(entries), Ok(dir_fd)) = (std::fs::read_dir(&dir), std::fs::File::open(&dir)) else {
        return Vec::new();
    };
    let mut out: Vec<Stale> = Vec::new();
    let mut seen: SeenSet<Stale> = SeenSet::default();
    let mut link = Vec::new();
    for e in entries.flatten() {
        // Relative to the open directory: one name to look up, where a
        // whole `/proc/PID/fd/N` path walk per descriptor made a process
        // holding 18,000 files cost a scan 100 ms (issue 22).
        let Ok(name) = std::ffi::CString::new(e.file_name().as_bytes()) else {
            continue;
        };
        if read_link_at(&dir_fd, &name, &mut link).is_none() || !worth_judging(&link) {
            continue;
        }
        // stat, not lstat: follows the magic link to the open file.
        let Some((dev, ino)) = regular_file_at(&dir_fd, &name) else {
            continue;
        };
        if let Some(v) = resolver.check(view, root_dir, &link, dev, ino) {
            if seen.insert(v.clone()) {
                out.push(v);
            }
        }
    }
    out
}

/// The text of the link `name` in `dir`, into `buf`.
fn read_link_at(dir: &std::fs::File, name: &std::ffi::CStr, buf: &mut Vec<u8>) -> Option<()> {
    buf.resize(4096 + 16, 0);
    // SAFETY: valid descriptor and C string; `buf` holds the length passed.
    let n = unsafe { libc::readlinkat(dir.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    // A result that fills the buffer may be cut short: no path is that long.
    let n = usize::try_from(n).ok().filter(|n| *n < buf.len())?;
    buf.truncate(n);
    Some(())
}

/// Device and inode of the open file `name` in `dir` leads to, if it is a
/// regular file.
fn regular_file_at(dir: &std::fs::File, name: &std::ffi::CStr) -> Option<(u64, u64)> {
    // SAFETY: stat is plain data, filled by the kernel.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor, C string and stat buffer.
    let rc = unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), &mut st, 0) };
    (rc == 0 && st.st_mode & libc::S_IFMT == libc::S_IFREG).then_some((st.st_dev, st.st_ino))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_paths_outside_data_and_ignored_places() {
        assert!(worth_judging(b"/usr/share/java/foo.jar (deleted)"));
        assert!(!worth_judging(b"socket:[1234]"));
        assert!(!worth_judging(b"anon_inode:[eventfd]"));
        assert!(!worth_judging(b"/dev/null"));
        assert!(!worth_judging(b"/proc/1/stat"));
        assert!(!worth_judging(b"/var/log/syslog.1 (deleted)"));
        assert!(!worth_judging(b"/memfd:x (deleted)"));
    }
}
