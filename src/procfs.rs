//! Cheap reads of procfs files and links.
//!
//! At thousands of processes every system call shows. `fs::read` and
//! `read_to_string` add a `statx` and an `lseek` per file to size their
//! buffer, though procfs files report size 0 anyway; these helpers make
//! only the calls the data needs.

use crate::maps::makedev;
use crate::staleness::ViewKey;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, ErrorKind, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Room a read gets at least. A maps file hands out about a page per
/// read(2) whatever the buffer size, so more would only cost zeroing.
const MIN_SPARE: usize = 16 * 1024;

/// Reads `file` to its end into `buf`, returning how many bytes it holds.
///
/// `buf` is scratch that keeps its size between calls (it is zeroed only
/// when it grows), so scanning thousands of processes allocates nothing.
/// The data is `&buf[..n]`.
pub fn read_all(file: &mut File, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut filled = 0;
    loop {
        if buf.len() - filled < MIN_SPARE {
            let grown = (buf.len() * 2).max(4 * MIN_SPARE);
            buf.resize(grown, 0);
        }
        match file.read(&mut buf[filled..]) {
            Ok(0) => return Ok(filled),
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads a small procfs file that the kernel generates in one piece
/// (`comm`, `cgroup`): one read(2) when it fits, since such a file hands
/// out all it has on the first read and a short read is its end.
pub fn read_small(path: &Path, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut file = File::open(path)?;
    let mut filled = 0;
    loop {
        if buf.len() == filled {
            let grown = (buf.len() * 2).max(4096);
            buf.resize(grown, 0);
        }
        match file.read(&mut buf[filled..]) {
            Ok(0) => return Ok(filled),
            Ok(n) => {
                filled += n;
                if filled < buf.len() {
                    return Ok(filled);
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// `STATX_MNT_ID_UNIQUE` (Linux 6.8): a mount id never reused while the
/// system runs. Older kernels ignore the bit and return `STATX_MNT_ID`.
const STATX_MNT_ID_UNIQUE: u32 = 0x4000;

/// Identifies the filesystem view of a process from its `root` link (a
/// `/proc/PID/root`): the mount and the directory that link leads to.
///
/// Path lookups start at a process's root directory and cross only the
/// mounts below that root's mount, so two processes whose roots are the
/// same directory on the same mount resolve every path alike, whatever
/// their namespace is called. One `statx` replaces reading both
/// `ns/mnt` and `root`. `(0, 0, 0)` when the link can't be followed (the
/// process exited, or a test fixture has no such link).
pub fn view_key(root_link: &Path) -> ViewKey {
    let Ok(path) = CString::new(root_link.as_os_str().as_bytes()) else {
        return (0, 0, 0);
    };
    // SAFETY: an all-zero `statx` is a valid value of this plain C struct.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let mask = libc::STATX_INO | libc::STATX_MNT_ID | STATX_MNT_ID_UNIQUE;
    // SAFETY: `path` is a NUL-terminated string and `stx` a writable
    // statx buffer, both alive for the call.
    let rc = unsafe { libc::statx(libc::AT_FDCWD, path.as_ptr(), 0, mask, &mut stx) };
    if rc != 0 {
        return (0, 0, 0);
    }
    let mnt = if stx.stx_mask & (libc::STATX_MNT_ID | STATX_MNT_ID_UNIQUE) != 0 {
        stx.stx_mnt_id
    } else {
        0
    };
    (
        mnt,
        makedev(stx.stx_dev_major.into(), stx.stx_dev_minor.into()),
        stx.stx_ino,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn read_all_reads_past_the_first_chunk() {
        let mut f = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::io::Write::write_all(&mut f, &data).unwrap();
        std::io::Seek::rewind(&mut f).unwrap();
        let mut buf = Vec::new();
        let n = read_all(&mut f, &mut buf).unwrap();
        assert_eq!(&buf[..n], &data[..]);
    }

    #[test]
    fn read_small_reads_real_proc_files() {
        let mut buf = Vec::new();
        let n = read_small(Path::new("/proc/self/comm"), &mut buf).unwrap();
        let want = std::fs::read("/proc/self/comm").unwrap();
        assert_eq!(&buf[..n], &want[..]);
        // A file larger than the first buffer still comes whole.
        let n = read_small(Path::new("/proc/self/status"), &mut vec![0; 7]).unwrap();
        assert!(n > 7);
    }

    #[test]
    fn view_key_is_the_root_directory() {
        let ours = view_key(Path::new("/proc/self/root"));
        let meta = std::fs::metadata("/").unwrap();
        assert_eq!((ours.1, ours.2), (meta.dev(), meta.ino()));
        assert_ne!(ours.0, 0, "statx reports a mount id");
        // Another directory of the same filesystem is another view.
        let dir = tempfile::tempdir().unwrap();
        assert_ne!(view_key(dir.path()), ours);
        assert_eq!(view_key(Path::new("/nonexistent/restart-stale")), (0, 0, 0));
    }
}
