//! The `PROCMAP_QUERY` ioctl (Linux 6.11+): ask the kernel for just the
//! executable file-backed VMAs of a process, in binary form.
//!
//! Generating `/proc/PID/maps` text costs the kernel about 1.3 µs a line
//! whoever reads it; this ioctl skips the text and the VMAs we don't need.
//! Why only executable VMAs: a replaced library or binary always keeps an
//! executable mapping (its text segment), so checking those finds every
//! stale library and executable. Data-only files (locale archives, mapped
//! caches) are a separate class, checked only with `--data-files` via the
//! text path. The uapi is `struct procmap_query` in `linux/fs.h`.

use crate::system::maps::makedev;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

#[repr(C)]
#[derive(Default)]
struct ProcmapQuery {
    size: u64,
    query_flags: u64,
    query_addr: u64,
    vma_start: u64,
    vma_end: u64,
    vma_flags: u64,
    vma_page_size: u64,
    vma_offset: u64,
    inode: u64,
    dev_major: u32,
    dev_minor: u32,
    vma_name_size: u32,
    build_id_size: u32,
    vma_name_addr: u64,
    build_id_addr: u64,
}

const QUERY_VMA_EXECUTABLE: u64 = 0x04;
const QUERY_COVERING_OR_NEXT_VMA: u64 = 0x10;
const QUERY_FILE_BACKED_VMA: u64 = 0x20;

/// `_IOWR('f', 17, struct procmap_query)`.
const PROCMAP_QUERY: u64 = (3 << 30) | ((std::mem::size_of::<ProcmapQuery>() as u64) << 16) | ((b'f' as u64) << 8) | 17;

/// PATH_MAX plus room for the ` (deleted)` marker.
const NAME_CAP: usize = 4096 + 16;

/// One executable file-backed VMA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vma {
    pub start: u64,
    /// Encoded device number, comparable with `st_dev`.
    pub dev: u64,
    pub ino: u64,
}

/// Walks the executable file-backed VMAs of one open `/proc/PID/maps`.
///
/// Names are fetched separately ([`VmaQuery::name`]): building the path
/// (`d_path`) is a good part of the ioctl's cost, and a library seen in an
/// earlier process needs only its device and inode to be recognised.
pub struct VmaQuery<'a> {
    file: &'a File,
    next_addr: u64,
}

/// Whether an error from the first query means "no such ioctl here".
pub(crate) fn unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTTY) | Some(libc::EINVAL))
}

impl<'a> VmaQuery<'a> {
    pub fn new(file: &'a File) -> Self {
        Self { file, next_addr: 0 }
    }

    fn query(&self, addr: u64, name: Option<&mut Vec<u8>>) -> io::Result<Option<ProcmapQuery>> {
        let mut q = ProcmapQuery {
            size: std::mem::size_of::<ProcmapQuery>() as u64,
            query_flags: QUERY_COVERING_OR_NEXT_VMA | QUERY_FILE_BACKED_VMA | QUERY_VMA_EXECUTABLE,
            query_addr: addr,
            ..Default::default()
        };
        if let Some(buf) = name {
            buf.resize(NAME_CAP, 0);
            q.vma_name_size = NAME_CAP as u32;
            q.vma_name_addr = buf.as_mut_ptr() as u64;
        }
        // SAFETY: `q` is a properly sized, initialised procmap_query; when
        // `vma_name_addr` is set it points at NAME_CAP writable bytes that
        // outlive the call.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), PROCMAP_QUERY as _, &mut q as *mut ProcmapQuery) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            // ENOENT: no VMA at or after addr, the end of the walk.
            return if err.raw_os_error() == Some(libc::ENOENT) {
                Ok(None)
            } else {
                Err(err)
            };
        }
        Ok(Some(q))
    }

    /// The next executable file-backed VMA, or `None` at the end.
    pub(crate) fn next_vma(&mut self) -> io::Result<Option<Vma>> {
        Ok(self.next(None)?.map(|(vma, _)| vma))
    }

    /// Like [`VmaQuery::next_vma`], with the VMA's path (as
    /// [`VmaQuery::name`] gives it) in the same call: for a process whose
    /// mappings earlier processes did not settle, one ioctl a VMA instead
    /// of two.
    pub(crate) fn next_vma_named<'b>(&mut self, buf: &'b mut Vec<u8>) -> io::Result<Option<(Vma, &'b [u8])>> {
        Ok(match self.next(Some(&mut *buf))? {
            Some((vma, len)) => Some((vma, &buf[..len])),
            None => None,
        })
    }

    fn next(&mut self, name: Option<&mut Vec<u8>>) -> io::Result<Option<(Vma, usize)>> {
        let Some(q) = self.query(self.next_addr, name)? else {
            return Ok(None);
        };
        if q.vma_end <= self.next_addr {
            return Ok(None); // never loop on a kernel that misreports
        }
        self.next_addr = q.vma_end;
        let vma = Vma {
            start: q.vma_start,
            dev: makedev(q.dev_major.into(), q.dev_minor.into()),
            ino: q.inode,
        };
        Ok(Some((vma, name_len(&q))))
    }

    /// The path of `vma` as the kernel prints it in maps (` (deleted)`
    /// included), written into `buf`. Empty if the VMA went away.
    pub fn name<'b>(&self, vma: &Vma, buf: &'b mut Vec<u8>) -> io::Result<&'b [u8]> {
        let q = match self.query(vma.start, Some(&mut *buf))? {
            Some(q) if q.vma_start == vma.start => q,
            _ => return Ok(&[]),
        };
        Ok(&buf[..name_len(&q)])
    }
}

/// The length of the name a query wrote: `vma_name_size` counts the
/// terminating NUL, and 0 means no name (or none asked for).
fn name_len(q: &ProcmapQuery) -> usize {
    (q.vma_name_size as usize).saturating_sub(1).min(NAME_CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_matches_uapi_size() {
        assert_eq!(std::mem::size_of::<ProcmapQuery>(), 104);
        assert_eq!(PROCMAP_QUERY, 0xC068_6611);
    }

    #[test]
    fn a_named_walk_finds_the_same_vmas_and_paths() {
        let maps = File::open("/proc/self/maps").unwrap();
        let mut plain = Vec::new();
        let (mut q, mut buf) = (VmaQuery::new(&maps), Vec::new());
        loop {
            match q.next_vma() {
                Ok(Some(vma)) => plain.push((vma, q.name(&vma, &mut buf).unwrap().to_vec())),
                Ok(None) => break,
                // A kernel before 6.11: the text path is taken instead.
                Err(e) => return assert!(unsupported(&e), "{e}"),
            }
        }
        let mut named = Vec::new();
        let mut q = VmaQuery::new(&maps);
        while let Some((vma, path)) = q.next_vma_named(&mut buf).unwrap() {
            named.push((vma, path.to_vec()));
        }
        assert!(plain.iter().any(|(_, p)| p.starts_with(b"/")), "{plain:?}");
        assert_eq!(plain, named);
    }

    #[test]
    fn regular_file_is_unsupported() {
        let f = tempfile::tempfile().unwrap();
        let err = VmaQuery::new(&f).next_vma().unwrap_err();
        assert!(unsupported(&err), "{err}");
    }
}
