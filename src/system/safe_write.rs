//! Writing files as root into directories someone else may reach (the
//! Prometheus textfile, `/run/reboot-required`, the spool, swupd's state).
//!
//! A predictable temporary name is a gift to whoever can write the
//! directory: a symlink planted there turns our create-write-chmod into
//! theirs, on any file root can reach. So every write here goes through a
//! directory descriptor that was checked once (ours or root's, not
//! writable by group or others, opened without following a link), a new
//! file made with `O_CREAT | O_EXCL | O_NOFOLLOW` under a random name, its
//! mode set with `fchmod` on the descriptor, and `renameat` on the same
//! descriptor, so what was checked is where the file lands.

use anyhow::{bail, Context, Result};
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// How many random names to try before giving up: a clash of 64 random
/// bits is never chance, so a second one means someone is guessing.
const ATTEMPTS: usize = 8;

/// 16 hex digits from the kernel's random pool.
pub(crate) fn random_suffix() -> Result<String> {
    let mut buf = [0u8; 8];
    // SAFETY: getrandom writes at most buf.len() bytes into buf.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != buf.len() as isize {
        // Kernels before 3.17 have no getrandom(2).
        File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut buf))
            .context("failed to read random bytes from /dev/urandom")?;
    }
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// A temporary name next to `name`: hidden, random, and not ending in the
/// final name's suffix (node_exporter reads only `*.prom`).
pub(crate) fn temp_name(name: &OsStr) -> Result<String> {
    Ok(format!(".{}.{}.tmp", name.to_string_lossy(), random_suffix()?))
}

/// Why a directory owned by `uid` with `mode` is no place for root's
/// files, when it is not: only root or we (`euid`; tests run as an
/// ordinary user) may own it, and neither group nor others may write it.
pub(crate) fn untrusted(uid: u32, mode: u32, euid: u32) -> Option<String> {
    if uid != 0 && uid != euid {
        return Some(format!("owned by uid {uid}, neither root nor us"));
    }
    if mode & 0o022 != 0 {
        return Some(format!("writable by group or others (mode {:o})", mode & 0o7777));
    }
    None
}

/// A directory [`untrusted`] judged no place for root's files; a type of
/// its own so that a caller can tell it from a failure to write.
#[derive(Debug)]
pub struct Refused {
    pub dir: PathBuf,
    pub why: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refusing to write in {}: {}", self.dir.display(), self.why)
    }
}

impl std::error::Error for Refused {}

fn cstr(s: &OsStr) -> Result<CString> {
    CString::new(s.as_bytes()).with_context(|| format!("{} holds a NUL byte", s.to_string_lossy()))
}

fn check(rc: libc::c_int) -> std::io::Result<libc::c_int> {
    match rc {
        -1 => Err(std::io::Error::last_os_error()),
        n => Ok(n),
    }
}

/// A directory checked once and then used only through its descriptor.
pub struct TrustedDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl TrustedDir {
    /// Opens `path` (a link there is refused, not followed) and checks
    /// its owner and mode.
    pub fn open(path: &Path) -> Result<Self> {
        let c = cstr(path.as_os_str())?;
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: a valid C string; the descriptor is owned right away.
        let fd = check(unsafe { libc::open(c.as_ptr(), flags) })
            .with_context(|| format!("failed to open directory {}", path.display()))?;
        // SAFETY: open just returned this descriptor and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let md = fd
            .try_clone()
            .and_then(|d| File::from(d).metadata())
            .with_context(|| format!("failed to stat {}", path.display()))?;
        // SAFETY: geteuid cannot fail.
        let euid = unsafe { libc::geteuid() };
        if let Some(why) = untrusted(md.uid(), md.mode(), euid) {
            return Err(Refused {
                dir: path.to_path_buf(),
                why,
            }
            .into());
        }
        Ok(TrustedDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `name` with `flags` plus `O_NOFOLLOW | O_CLOEXEC`, relative
    /// to the checked directory.
    pub(crate) fn open_at(&self, name: &OsStr, flags: libc::c_int, mode: u32) -> std::io::Result<File> {
        let c = CString::new(name.as_bytes()).map_err(|_| ErrorKind::InvalidInput)?;
        let flags = flags | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: a valid directory descriptor and C string.
        let fd = check(unsafe { libc::openat(self.fd.as_raw_fd(), c.as_ptr(), flags, mode) })?;
        // SAFETY: openat just returned this descriptor.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// The contents of the regular file `name`, `None` when there is none;
    /// a link or a device there is an error, never read.
    pub fn read(&self, name: &OsStr) -> Result<Option<Vec<u8>>> {
        let shown = self.path.join(name);
        let mut f = match self.open_at(name, libc::O_RDONLY | libc::O_NONBLOCK, 0) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("failed to open {}", shown.display())),
        };
        let md = f
            .metadata()
            .with_context(|| format!("failed to stat {}", shown.display()))?;
        if !md.is_file() {
            bail!("{} is not a regular file", shown.display());
        }
        let mut data = Vec::new();
        f.read_to_end(&mut data)
            .with_context(|| format!("failed to read {}", shown.display()))?;
        Ok(Some(data))
    }

    /// Makes a new file under a random name, `O_EXCL` so that nothing
    /// already there (a planted link) is ever opened.
    fn create_temp(&self, name: &OsStr) -> Result<(CString, File)> {
        for _ in 0..ATTEMPTS {
            let tmp = temp_name(name)?;
            let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL;
            match self.open_at(OsStr::new(&tmp), flags, 0o600) {
                Ok(f) => return Ok((cstr(OsStr::new(&tmp))?, f)),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("failed to create {}", self.path.join(&tmp).display()))
                }
            }
        }
        bail!("{}: every random temporary name was taken", self.path.display())
    }

    fn rename(&self, from: &CStr, to: &CStr) -> std::io::Result<()> {
        let fd = self.fd.as_raw_fd();
        // SAFETY: a valid directory descriptor and C strings.
        check(unsafe { libc::renameat(fd, from.as_ptr(), fd, to.as_ptr()) }).map(drop)
    }

    fn unlink(&self, name: &CStr) {
        // SAFETY: a valid directory descriptor and C string.
        unsafe { libc::unlinkat(self.fd.as_raw_fd(), name.as_ptr(), 0) };
    }

    /// Replaces `name` with `data` at `mode`: a reader sees the old file
    /// or the new one, never a part.
    pub fn replace(&self, name: &OsStr, data: &[u8], mode: u32) -> Result<()> {
        let dest = cstr(name)?;
        let (tmp, mut f) = self.create_temp(name)?;
        let mut write = || -> std::io::Result<()> {
            f.write_all(data)?;
            f.sync_all()?;
            // SAFETY: fchmod on a descriptor we own; the umask does not apply.
            check(unsafe { libc::fchmod(f.as_raw_fd(), mode) })?;
            self.rename(&tmp, &dest)
        };
        write()
            .inspect_err(|_| self.unlink(&tmp))
            .with_context(|| format!("failed to write {}", self.path.join(name).display()))
    }

    /// Makes what was renamed or created here survive a crash.
    pub fn sync(&self) -> Result<()> {
        // SAFETY: fsync on a descriptor we own.
        check(unsafe { libc::fsync(self.fd.as_raw_fd()) })
            .map(drop)
            .with_context(|| format!("failed to sync {}", self.path.display()))
    }
}

/// Puts a symlink to `target` at `dir/name`, so a reader never sees the
/// name missing: `symlinkat` to a random name, then `renameat` over
/// `name`, both on one descriptor of `dir`. `symlinkat` never follows what
/// is there, so only the name needs to be unpredictable. The directory's
/// owner and mode are the caller's concern (the policy reader judges them).
pub(crate) fn replace_symlink(dir: &Path, name: &OsStr, target: &str) -> Result<()> {
    let c = cstr(dir.as_os_str())?;
    // SAFETY: a valid C string; the descriptor is owned right away.
    let fd = check(unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) })
        .with_context(|| format!("failed to open directory {}", dir.display()))?;
    // SAFETY: open just returned this descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    symlink_at(fd.as_raw_fd(), dir, name, target)
}

fn symlink_at(dirfd: libc::c_int, dir: &Path, name: &OsStr, target: &str) -> Result<()> {
    let target_c = cstr(OsStr::new(target))?;
    let dest = cstr(name)?;
    let shown = dir.join(name);
    for _ in 0..ATTEMPTS {
        let tmp = cstr(OsStr::new(&temp_name(name)?))?;
        // SAFETY: valid C strings and directory descriptor.
        match check(unsafe { libc::symlinkat(target_c.as_ptr(), dirfd, tmp.as_ptr()) }) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("failed to create {}", shown.display())),
        }
        // SAFETY: as above.
        let renamed = check(unsafe { libc::renameat(dirfd, tmp.as_ptr(), dirfd, dest.as_ptr()) });
        if renamed.is_err() {
            // SAFETY: as above.
            unsafe { libc::unlinkat(dirfd, tmp.as_ptr(), 0) };
        }
        return renamed
            .map(drop)
            .with_context(|| format!("failed to create {}", shown.display()));
    }
    bail!("{}: every random temporary name was taken", dir.display())
}

/// The directory of `path` and its file name (a bare name lies in `.`).
pub fn split(path: &Path) -> Result<(&Path, &OsStr)> {
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok((dir, name))
}

/// Replaces the file at `path` with `data` at `mode` (see
/// [`TrustedDir::replace`]); with `durable`, also syncs the directory.
pub(crate) fn replace_file(path: &Path, data: &[u8], mode: u32, durable: bool) -> Result<()> {
    let (dir, name) = split(path)?;
    let dir = TrustedDir::open(dir).with_context(|| format!("failed to write {}", path.display()))?;
    dir.replace(name, data, mode)?;
    if durable {
        dir.sync()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn dir_with_mode(mode: u32) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::set_permissions(d.path(), fs::Permissions::from_mode(mode)).unwrap();
        d
    }

    #[test]
    fn only_root_or_we_may_own_it_and_nobody_else_write_it() {
        assert_eq!(untrusted(0, 0o40755, 1000), None);
        assert_eq!(untrusted(1000, 0o40700, 1000), None);
        assert_eq!(untrusted(0, 0o40755, 0), None);
        let other = untrusted(1001, 0o40755, 1000).unwrap();
        assert!(other.contains("uid 1001"), "{other}");
        assert!(untrusted(65534, 0o40755, 0).is_some());
        for mode in [0o40775, 0o40757, 0o41777, 0o40777] {
            let why = untrusted(0, mode, 0).unwrap();
            assert!(why.contains("writable by group or others"), "{mode:o}: {why}");
        }
    }

    #[test]
    fn refuses_a_world_writable_directory_and_names_it() {
        let d = dir_with_mode(0o777);
        let p = d.path().join("x.prom");
        let e = format!("{:#}", replace_file(&p, b"x\n", 0o644, false).unwrap_err());
        assert!(
            e.contains(&d.path().display().to_string()) && e.contains("mode 777"),
            "{e}"
        );
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn refuses_a_directory_that_is_a_link() {
        let d = dir_with_mode(0o755);
        let real = d.path().join("real");
        fs::create_dir(&real).unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o755)).unwrap();
        symlink(&real, d.path().join("link")).unwrap();
        assert!(replace_file(&d.path().join("link/x"), b"x", 0o644, false).is_err());
        assert_eq!(fs::read_dir(&real).unwrap().count(), 0);
    }

    #[test]
    fn creates_with_the_mode_asked_whatever_the_umask() {
        let d = dir_with_mode(0o755);
        for mode in [0o644, 0o600, 0o664] {
            let p = d.path().join(format!("f{mode:o}"));
            replace_file(&p, b"data", mode, true).unwrap();
            assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, mode);
            assert_eq!(fs::read(&p).unwrap(), b"data");
        }
    }

    #[test]
    fn replaces_atomically_and_never_follows_what_is_planted() {
        let d = dir_with_mode(0o755);
        let victim = d.path().join("victim");
        fs::write(&victim, "secret\n").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
        // A link at the final name is replaced, not written through.
        let p = d.path().join("out");
        symlink(&victim, &p).unwrap();
        let old = fs::File::open(&p).unwrap();
        replace_file(&p, b"new\n", 0o644, false).unwrap();
        assert!(!fs::symlink_metadata(&p).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_to_string(&p).unwrap(), "new\n");
        // One rename: whoever had the old file open still reads it whole.
        assert_eq!(std::io::read_to_string(old).unwrap(), "secret\n");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "secret\n");
        assert_eq!(fs::metadata(&victim).unwrap().mode() & 0o777, 0o600);
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 2, "a temporary was left: {names:?}");
    }

    #[test]
    fn temporary_names_are_not_predictable() {
        let a = temp_name(OsStr::new("x.prom")).unwrap();
        let b = temp_name(OsStr::new("x.prom")).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(".x.prom.") && a.ends_with(".tmp"), "{a}");
        assert_eq!(a.len(), ".x.prom.".len() + 16 + ".tmp".len(), "{a}");
    }

    #[test]
    fn reads_only_regular_files_and_never_through_a_link() {
        let d = dir_with_mode(0o755);
        fs::write(d.path().join("f"), "text").unwrap();
        symlink(d.path().join("f"), d.path().join("l")).unwrap();
        let dir = TrustedDir::open(d.path()).unwrap();
        assert_eq!(dir.read(OsStr::new("f")).unwrap().unwrap(), b"text");
        assert_eq!(dir.read(OsStr::new("missing")).unwrap(), None);
        assert!(dir.read(OsStr::new("l")).is_err());
    }

    #[test]
    fn a_symlink_replaces_what_was_there() {
        let d = dir_with_mode(0o755);
        fs::write(d.path().join("a.service"), "").unwrap();
        replace_symlink(d.path(), OsStr::new("a.service"), "/dev/null").unwrap();
        assert_eq!(
            fs::read_link(d.path().join("a.service")).unwrap(),
            Path::new("/dev/null")
        );
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
