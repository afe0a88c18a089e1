//! Zero-allocation parser for `/proc/PID/maps` lines.
//!
//! The scan's hot path: one process maps hundreds of lines and a busy host
//! runs thousands of processes. procfs's `MemoryMaps` allocates a `String`
//! and a `PathBuf` per line; this parser borrows from the read buffer
//! instead (see `benches/maps_parse.rs` for the comparison, and
//! `tests/live_maps.rs` for the differential check against procfs).

/// Text the kernel appends to the path of an unlinked file (`d_path`).
pub const DELETED_MARKER: &[u8] = b" (deleted)";

/// One file-backed mapping, borrowing its path from the maps buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping<'a> {
    pub executable: bool,
    /// Encoded device number, comparable with `st_dev`.
    pub dev: u64,
    pub ino: u64,
    /// The path exactly as the kernel printed it, marker included.
    pub path: &'a [u8],
}

impl Mapping<'_> {
    /// Whether the kernel flagged the file as unlinked.
    pub fn marked_deleted(&self) -> bool {
        self.path.ends_with(DELETED_MARKER)
    }

    /// The path without one trailing ` (deleted)` marker.
    pub fn stripped_path(&self) -> &[u8] {
        strip_marker(self.path)
    }
}

pub(crate) fn strip_marker(path: &[u8]) -> &[u8] {
    path.strip_suffix(DELETED_MARKER).unwrap_or(path)
}

/// Encodes a major:minor pair the way glibc's `makedev` does.
pub fn makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xffff_f000) << 32) | ((major & 0x0000_0fff) << 8) | ((minor & 0xffff_ff00) << 12) | (minor & 0x0000_00ff)
}

fn hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &c| {
        let d = (c as char).to_digit(16)? as u64;
        Some(acc << 4 | d)
    })
}

fn dec(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &c| {
        if !c.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(c - b'0'))
    })
}

/// Splits off the next space-separated field, skipping leading spaces.
fn field(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let start = s.iter().position(|&c| c != b' ')?;
    let s = &s[start..];
    let end = s.iter().position(|&c| c == b' ').unwrap_or(s.len());
    Some((&s[..end], &s[end..]))
}

/// Parses one maps line (without its newline). Returns `None` for
/// anonymous mappings, pseudo paths like `[heap]`, and malformed lines:
/// a garbled line must never abort the scan of a whole process.
pub(crate) fn parse_line(line: &[u8]) -> Option<Mapping<'_>> {
    let (_range, rest) = field(line)?;
    let (perms, rest) = field(rest)?;
    let (_offset, rest) = field(rest)?;
    let (dev, rest) = field(rest)?;
    let (ino, rest) = field(rest)?;
    let start = rest.iter().position(|&c| c != b' ')?;
    let path = &rest[start..];
    if path.first() != Some(&b'/') {
        return None;
    }
    let colon = dev.iter().position(|&c| c == b':')?;
    let dev = makedev(hex(&dev[..colon])?, hex(&dev[colon + 1..])?);
    let ino = dec(ino)?;
    if ino == 0 {
        return None;
    }
    Some(Mapping {
        executable: perms.get(2) == Some(&b'x'),
        dev,
        ino,
        path,
    })
}

/// Iterates the file-backed mappings of a whole maps buffer; with
/// `executable_only`, only those with the `x` permission.
///
/// The executable-only walk looks at the permission field before parsing
/// anything else: four of five lines of a typical process are data,
/// read-only or anonymous mappings, and skipping them costs one `memchr`
/// for the line end.
pub fn mappings(buf: &[u8], executable_only: bool) -> impl Iterator<Item = Mapping<'_>> {
    Lines { rest: buf }
        .filter(move |l| !executable_only || perms_executable(l))
        .filter_map(parse_line)
}

/// Whether the permission field (`r-xp`) of a line has the `x`. Lines
/// always start `START-END PERMS`, with no leading spaces.
fn perms_executable(line: &[u8]) -> bool {
    match memchr::memchr(b' ', line) {
        Some(sp) => line.get(sp + 3) == Some(&b'x'),
        None => false,
    }
}

/// Splits at newlines with `memchr`, which is several times faster than a
/// byte-by-byte split on the ~100 bytes of a maps line.
struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let (line, rest) = match memchr::memchr(b'\n', self.rest) {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, &self.rest[self.rest.len()..]),
        };
        self.rest = rest;
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_backed_line() {
        let l = b"7f5c8a000000-7f5c8a022000 r-xp 00001000 fe:01 1234567                    /usr/lib/x86_64-linux-gnu/libc.so.6";
        let m = parse_line(l).unwrap();
        assert!(m.executable);
        assert_eq!(m.dev, makedev(0xfe, 1));
        assert_eq!(m.ino, 1234567);
        assert_eq!(m.path, b"/usr/lib/x86_64-linux-gnu/libc.so.6");
        assert!(!m.marked_deleted());
    }

    #[test]
    fn keeps_spaces_and_marker_in_path() {
        let l = b"1000-2000 r--p 00000000 08:11 42 /opt/my lib/x.so (deleted)";
        let m = parse_line(l).unwrap();
        assert!(!m.executable);
        assert_eq!(m.path, b"/opt/my lib/x.so (deleted)");
        assert!(m.marked_deleted());
        assert_eq!(m.stripped_path(), b"/opt/my lib/x.so");
    }

    #[test]
    fn skips_anonymous_pseudo_and_garbage() {
        for l in [
            &b"1000-2000 rw-p 00000000 00:00 0 "[..],
            b"1000-2000 rw-p 00000000 00:00 0                  [heap]",
            b"garbage",
            b"",
            b"1000-2000 r--p 0 zz:01 5 /x",
            b"1000-2000 r--p 0 08:01 notanumber /x",
            b"1000-2000 r--p 0 08:01 99999999999999999999999 /x",
        ] {
            assert_eq!(parse_line(l), None, "{}", String::from_utf8_lossy(l));
        }
    }

    #[test]
    fn makedev_matches_libc() {
        for (ma, mi) in [(8u32, 1u32), (259, 3), (0, 27), (4095, 1048575)] {
            assert_eq!(makedev(ma.into(), mi.into()), libc::makedev(ma, mi));
        }
    }

    #[test]
    fn iterates_buffer() {
        let buf = b"1-2 r-xp 0 08:01 7 /bin/a\n3-4 rw-p 0 00:00 0 \n5-6 r--p 0 08:01 8 /lib/b (deleted)\n";
        let v: Vec<_> = mappings(buf, false).map(|m| m.path).collect();
        assert_eq!(v, vec![&b"/bin/a"[..], b"/lib/b (deleted)"]);
        let x: Vec<_> = mappings(buf, true).map(|m| m.path).collect();
        assert_eq!(x, vec![&b"/bin/a"[..]]);
    }

    #[test]
    fn executable_filter_agrees_with_parser() {
        let buf: &[u8] = b"1-2 r-xp 0 08:01 7 /bin/a\n3-4 r--p 0 08:01 7 /bin/a\n5-6 --xp 0 08:01 9 /x\nno-spaces\n7-8 r-\n\n9-a rwxp 0 08:01 10 /jit";
        let all: Vec<_> = mappings(buf, false).filter(|m| m.executable).collect();
        let fast: Vec<_> = mappings(buf, true).collect();
        assert_eq!(fast, all);
        assert_eq!(fast.len(), 3);
    }
}
