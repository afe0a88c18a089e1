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
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
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
pub fn stale_open_files(
    resolver: &mut Resolver,
    root: &SysRoot,
    pid: u32,
    view: ViewKey,
    root_dir: &Path,
) -> Vec<Stale> {
    let dir = root.proc_pid(pid, "fd");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<Stale> = Vec::new();
    let mut seen: SeenSet<Stale> = SeenSet::default();
    for e in entries.flatten() {
        let fd = e.path();
        let Ok(link) = std::fs::read_link(&fd) else { continue };
        let link = link.as_os_str().as_bytes();
        if !worth_judging(link) {
            continue;
        }
        // stat, not lstat: follows the magic link to the open file.
        let Ok(m) = std::fs::metadata(&fd) else { continue };
        if !m.is_file() {
            continue;
        }
        if let Some(v) = resolver.check(view, root_dir, link, m.dev(), m.ino()) {
            if seen.insert(v.clone()) {
                out.push(v);
            }
        }
    }
    out
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
