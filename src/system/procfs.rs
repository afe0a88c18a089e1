//! Cheap reads of procfs files and links.
//!
//! At thousands of processes every system call shows. `fs::read` and
//! `read_to_string` add a `statx` and an `lseek` per file to size their
//! buffer, though procfs files report size 0 anyway; these helpers make
//! only the calls the data needs.

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
pub(crate) fn read_all(file: &mut File, buf: &mut Vec<u8>) -> io::Result<usize> {
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

/// Reads a whole procfs file into a new buffer: `fs::read` without its
/// `statx`, whose size is 0 for these files anyway.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let n = read_all(&mut File::open(path)?, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// Reads a small procfs file that the kernel generates in one piece
/// (`comm`, `cgroup`): one read(2) when it fits, since such a file hands
/// out all it has on the first read and a short read is its end.
pub(crate) fn read_small(path: &Path, buf: &mut Vec<u8>) -> io::Result<usize> {
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

/// Identifies the directory a `/proc/PID/root` link leads to: the id of
/// its mount and its inode. Two processes whose roots are the same
/// directory on the same mount resolve every path alike. `(0, 0)` when
/// the link can't be followed (the process exited).
pub(crate) fn root_identity(root_link: &Path) -> (u64, u64) {
    let Ok(path) = CString::new(root_link.as_os_str().as_bytes()) else {
        return (0, 0);
    };
    // SAFETY: an all-zero `statx` is a valid value of this plain C struct.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let mask = libc::STATX_INO | libc::STATX_MNT_ID | STATX_MNT_ID_UNIQUE;
    // SAFETY: `path` is a NUL-terminated string and `stx` a writable
    // statx buffer, both alive for the call.
    let rc = unsafe { libc::statx(libc::AT_FDCWD, path.as_ptr(), 0, mask, &mut stx) };
    if rc != 0 {
        return (0, 0);
    }
    let mnt = if stx.stx_mask & (libc::STATX_MNT_ID | STATX_MNT_ID_UNIQUE) != 0 {
        stx.stx_mnt_id
    } else {
        0
    };
    (mnt, stx.stx_ino)
}

/// A digest of where a `ns/mnt` link points (`mnt:[4026531841]`), or
/// `None` when it can't be read: kernels without namespaces, fake roots.
pub(crate) fn mount_namespace(link: &Path) -> Option<u64> {
    let target = std::fs::read_link(link).ok()?;
    Some(fnv1a(target.as_os_str().as_bytes()))
}

/// FNV-1a: a stable 64-bit digest of a short byte string.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
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
    fn read_gives_exactly_the_file() {
        let want = std::fs::read("/proc/self/cmdline").unwrap();
        assert_eq!(read(Path::new("/proc/self/cmdline")).unwrap(), want);
        assert!(read(Path::new("/nonexistent/restart-stale")).is_err());
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
    fn root_identity_is_the_root_directory() {
        let ours = root_identity(Path::new("/proc/self/root"));
        assert_eq!(ours.1, std::fs::metadata("/").unwrap().ino());
        assert_ne!(ours.0, 0, "statx reports a mount id");
        // Another directory of the same filesystem is another root.
        let dir = tempfile::tempdir().unwrap();
        assert_ne!(root_identity(dir.path()), ours);
        assert_eq!(root_identity(Path::new("/nonexistent/restart-stale")), (0, 0));
    }

    #[test]
    fn mount_namespace_of_self_and_child_agree() {
        let me = mount_namespace(Path::new("/proc/self/ns/mnt"));
        assert!(me.is_some());
        let mut child = std::process::Command::new("sleep").arg("10").spawn().unwrap();
        let theirs = mount_namespace(Path::new(&format!("/proc/{}/ns/mnt", child.id())));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(theirs, me);
        assert_eq!(mount_namespace(Path::new("/nonexistent/ns/mnt")), None);
    }
}
