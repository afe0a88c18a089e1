//! The one way to look at a path that an inspected process or a local
//! user controls: a script on a command line, a module on `-I`,
//! `PYTHONPATH` or `use lib`, a directory listed for interpreter versions.
//!
//! Such a path is resolved inside the process's root (`openat2` with
//! `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`), so an absolute link leads
//! where it led the process, never to our own `/`, and `/proc/self/…`
//! magic links lead nowhere. The final component is looked up as
//! `O_PATH | O_NOFOLLOW`: a symbolic link there is followed only when it
//! belongs to root (packages ship such links; a user's link to
//! `/proc/kmsg` or a device is not), or to us when we are not root. What the `O_PATH` descriptor names
//! is checked with `fstat` and `fstatfs` before any byte is read: only a
//! regular file on an ordinary filesystem is opened, through
//! `/proc/self/fd/N` (the inode already checked, so a rename in between
//! changes nothing), non-blocking, and its device and inode are compared
//! once more. So a FIFO, a device node, a file of procfs, sysfs, debugfs
//! or FUSE can neither be opened nor block the scan, and no race between
//! a check and an open exists. The kernels without `openat2` (before 5.6)
//! get the same confinement from a walk of `O_NOFOLLOW` lookups, one
//! component at a time.
//!
//! Nothing here follows a path through our own root: a reader that takes
//! a [`Jail`] cannot reach a file outside the process's tree.

use std::ffi::{CString, OsStr};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Symbolic links one lookup may follow, as the kernel's ELOOP limit.
const MAX_LINKS: usize = 40;
/// How many times a lookup asks `openat2` again after EAGAIN before it
/// takes the component walk instead.
const OPENAT2_TRIES: usize = 4;

/// Filesystems whose files are not files (procfs, sysfs and their kin)
/// or whose reads a user may stall at will (FUSE), by `statfs` magic.
const PSEUDO_FS: &[i64] = &[
    0x9fa0,      // proc
    0x6265_6572, // sysfs
    0x1cd1,      // devpts
    0x6462_6720, // debugfs
    0x7472_6163, // tracefs
    0x7363_6673, // securityfs
    0x0027_e0eb, // cgroup
    0x6367_7270, // cgroup2
    0xcafe_4a11, // bpf
    0x6265_6570, // configfs
    0x6165_676c, // pstore
    0xde5e_81e4, // efivarfs
    0x4249_4e4d, // binfmt_misc
    0xf97c_ff8c, // selinuxfs
    0x6573_5543, // fusectl
    0x6573_5546, // fuse
    0x1980_0202, // mqueue
    0x6e73_6673, // nsfs
    0x5346_414f, // afs (autofs-like triggers)
    0x0187,      // autofs
];

/// What a lookup found, from its `fstat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub uid: u32,
    pub mode: u32,
    /// Status change time, in nanoseconds since the epoch.
    pub ctime: i128,
}

impl Found {
    fn of(st: &libc::stat) -> Self {
        Found {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size.max(0) as u64,
            uid: st.st_uid,
            mode: st.st_mode,
            ctime: i128::from(st.st_ctime) * 1_000_000_000 + i128::from(st.st_ctime_nsec),
        }
    }

    fn kind(&self) -> u32 {
        self.mode & libc::S_IFMT
    }

    pub(crate) fn is_file(&self) -> bool {
        self.kind() == libc::S_IFREG
    }

    pub fn is_dir(&self) -> bool {
        self.kind() == libc::S_IFDIR
    }
}

/// A process's root, as a directory descriptor every lookup starts from.
pub struct Jail {
    dir: OwnedFd,
    /// `false` once the kernel said it has no `openat2`.
    openat2: std::cell::Cell<bool>,
}

impl Jail {
    /// Opens `root` (for a process, `/proc/PID/root`; in tests, a fixture
    /// tree). The path itself is ours, not the process's.
    pub fn open(root: &Path) -> io::Result<Jail> {
        let root = cstr(root.as_os_str())?;
        // Followed: `/proc/PID/root` is itself a magic link, to the root.
        // SAFETY: a valid C string and plain flags.
        let dir = check(unsafe { libc::open(root.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) })?;
        Ok(Jail {
            dir,
            openat2: std::cell::Cell::new(true),
        })
    }

    /// Forces the component walk, as on a kernel without `openat2`.
    pub fn without_openat2(self) -> Jail {
        self.openat2.set(false);
        self
    }

    /// Looks `path` (absolute, in the process's view) up without opening
    /// it: an `O_PATH` descriptor and what it names. A symbolic link at
    /// the end is followed only when root owns it.
    fn lookup(&self, path: &str) -> io::Result<(OwnedFd, Found)> {
        let mut path = std::borrow::Cow::Borrowed(path);
        for _ in 0..MAX_LINKS {
            let fd = self.resolve(&path)?;
            let found = fstat(&fd)?;
            if found.kind() != libc::S_IFLNK {
                return Ok((fd, found));
            }
            if !trusted_owner(found.uid) {
                return Err(refused("a link that neither root nor we own"));
            }
            let target = read_link_fd(&fd)?;
            let target = target.to_str().ok_or_else(|| refused("a link that is not UTF-8"))?;
            path = std::borrow::Cow::Owned(join_link(&path, target));
        }
        Err(io::Error::from_raw_os_error(libc::ELOOP))
    }

    fn resolve(&self, path: &str) -> io::Result<OwnedFd> {
        let rel = path.trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        if self.openat2.get() {
            // EAGAIN: a rename or mount anywhere on the host raced a `..`
            // of this lookup (the kernel cannot then prove it stayed in
            // the root). dpkg renames every file it installs, so during a
            // transaction this is common: try again, and past a few tries
            // take the component walk, which confines the same way.
            for _ in 0..OPENAT2_TRIES {
                match openat2_in_root(&self.dir, rel) {
                    Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => continue,
                    Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                        self.openat2.set(false);
                        break;
                    }
                    other => return other,
                }
            }
        }
        walk_in_root(&self.dir, rel)
    }

    /// What `path` is, if it is a regular file or a directory on an
    /// ordinary filesystem.
    pub fn stat(&self, path: &str) -> Option<Found> {
        let (fd, found) = self.lookup(path).ok()?;
        (found.is_file() || found.is_dir()).then_some(())?;
        ordinary_fs(&fd).then_some(found)
    }

    /// `path` if it is a regular file on an ordinary filesystem.
    pub fn file(&self, path: &str) -> Option<Found> {
        self.stat(path).filter(Found::is_file)
    }

    /// Whether `path` is a directory on an ordinary filesystem.
    pub fn is_dir(&self, path: &str) -> bool {
        self.stat(path).is_some_and(|f| f.is_dir())
    }

    /// The contents of the regular file at `path`, if it holds at most
    /// `max` bytes; `None` for anything else.
    pub fn read(&self, path: &str, max: u64) -> Option<Vec<u8>> {
        let (fd, found) = self.lookup(path).ok()?;
        if !found.is_file() || found.size > max || !ordinary_fs(&fd) {
            return None;
        }
        let file = reopen(&fd, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY).ok()?;
        let again = fstat(&file).ok()?;
        if (again.dev, again.ino) != (found.dev, found.ino) || !again.is_file() {
            return None;
        }
        let mut data = Vec::with_capacity(found.size as usize);
        std::fs::File::from(file).take(max).read_to_end(&mut data).ok()?;
        Some(data)
    }

    /// The names in the directory at `path`; empty for anything else.
    pub fn list(&self, path: &str) -> Vec<std::ffi::OsString> {
        let Ok((fd, found)) = self.lookup(path) else {
            return Vec::new();
        };
        if !found.is_dir() || !ordinary_fs(&fd) {
            return Vec::new();
        }
        let Ok(dir) = reopen(&fd, libc::O_RDONLY | libc::O_DIRECTORY) else {
            return Vec::new();
        };
        // Our own descriptor, so /proc/self/fd names exactly that directory.
        let Ok(entries) = std::fs::read_dir(fd_path(&dir)) else {
            return Vec::new();
        };
        entries.flatten().map(|e| e.file_name()).collect()
    }

    /// The text of the symbolic link at `path`, looked up inside the
    /// root; `None` when it is no link.
    pub fn read_link(&self, path: &str) -> Option<PathBuf> {
        let fd = self.resolve(path).ok()?;
        (fstat(&fd).ok()?.kind() == libc::S_IFLNK).then_some(())?;
        read_link_fd(&fd).ok()
    }
}

/// Root's links are the packages'; ours are a test's (when we run as
/// root, the two are one).
fn trusted_owner(uid: u32) -> bool {
    // SAFETY: geteuid has no preconditions.
    uid == 0 || uid == unsafe { libc::geteuid() }
}

fn refused(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, format!("refused: {what}"))
}

fn cstr(p: &OsStr) -> io::Result<CString> {
    CString::new(p.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(ret: libc::c_int) -> io::Result<OwnedFd> {
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this descriptor; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(ret) })
}

fn open_at(dir: libc::c_int, name: &OsStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    let name = cstr(name)?;
    // SAFETY: a valid C string and plain flags.
    check(unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOFOLLOW) })
}

fn openat2_in_root(dir: &OwnedFd, rel: &str) -> io::Result<OwnedFd> {
    let name = cstr(OsStr::new(rel))?;
    // SAFETY: open_how is plain data; zeroed is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: valid descriptor, C string and open_how of the size passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            name.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    check(ret as libc::c_int)
}

/// `openat2`'s confinement by hand: one `O_PATH | O_NOFOLLOW` lookup per
/// component, links read and resolved against the root, `..` never above
/// it. The last component's link is returned unfollowed, as `openat2`
/// with `O_NOFOLLOW` does.
fn walk_in_root(root: &OwnedFd, rel: &str) -> io::Result<OwnedFd> {
    let mut todo: Vec<String> = rel.split('/').rev().map(String::from).collect();
    // The directories entered below the root, innermost last.
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut links = 0;
    while let Some(part) = todo.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                stack.pop();
                continue;
            }
            _ => {}
        }
        let dir = stack.last().map_or(root.as_raw_fd(), |f| f.as_raw_fd());
        let fd = open_at(dir, OsStr::new(&part), libc::O_PATH)?;
        let found = fstat(&fd)?;
        // Only a name that ends the path is the last: `file/.` and
        // `file/` ask for a directory, as the kernel reads them.
        let last = todo.is_empty();
        if found.kind() == libc::S_IFLNK && !last {
            links += 1;
            if links > MAX_LINKS {
                return Err(io::Error::from_raw_os_error(libc::ELOOP));
            }
            let target = read_link_fd(&fd)?;
            let target = target.to_str().ok_or_else(|| refused("a link that is not UTF-8"))?;
            if target.starts_with('/') {
                stack.clear();
            }
            todo.extend(target.split('/').rev().map(String::from));
            continue;
        }
        if last {
            return Ok(fd);
        }
        if !found.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        stack.push(fd);
    }
    // The path ended in `.` or `..`: the directory reached.
    let dir = stack.last().map_or(root.as_raw_fd(), |f| f.as_raw_fd());
    open_at(dir, OsStr::new("."), libc::O_PATH)
}

fn fstat(fd: &OwnedFd) -> io::Result<Found> {
    // SAFETY: stat is plain data, filled by the kernel.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let empty = c"";
    // SAFETY: valid descriptor; AT_EMPTY_PATH stats the descriptor itself,
    // which for an O_PATH link is the link.
    let ret = unsafe {
        libc::fstatat(
            fd.as_raw_fd(),
            empty.as_ptr(),
            &mut st,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Found::of(&st))
}

fn ordinary_fs(fd: &OwnedFd) -> bool {
    // SAFETY: statfs is plain data, filled by the kernel.
    let mut sfs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor and buffer.
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &mut sfs) } < 0 {
        return false;
    }
    !PSEUDO_FS.contains(&(sfs.f_type as i64))
}

fn read_link_fd(fd: &OwnedFd) -> io::Result<PathBuf> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    let empty = c"";
    // SAFETY: valid descriptor and buffer of the length passed; an empty
    // path reads the link the O_PATH descriptor names (Linux ≥ 2.6.39).
    let n = unsafe { libc::readlinkat(fd.as_raw_fd(), empty.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(PathBuf::from(std::ffi::OsString::from_vec(buf)))
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Opens the inode an `O_PATH` descriptor names, for reading.
fn reopen(fd: &OwnedFd, flags: libc::c_int) -> io::Result<OwnedFd> {
    let path = cstr(fd_path(fd).as_os_str())?;
    // SAFETY: valid C string. The magic link is ours and names the inode
    // already checked; no O_NOFOLLOW, which would refuse the magic link.
    check(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) })
}

/// Where the link at `path` with text `target` leads, as a path in the
/// same view (the next lookup confines it to the root again).
fn join_link(path: &str, target: &str) -> String {
    if target.starts_with('/') {
        return target.to_string();
    }
    let dir = match path.rfind('/') {
        Some(i) => &path[..i],
        None => "",
    };
    format!("{dir}/{target}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("usr/lib/perl5")).unwrap();
        std::fs::write(t.path().join("usr/lib/perl5/A.pm"), "use B;\n").unwrap();
        t
    }

    fn both(root: &Path) -> [Jail; 2] {
        [Jail::open(root).unwrap(), Jail::open(root).unwrap().without_openat2()]
    }

    #[test]
    fn reads_a_regular_file_in_the_root() {
        let t = tree();
        for j in both(t.path()) {
            assert_eq!(j.read("/usr/lib/perl5/A.pm", 100).unwrap(), b"use B;\n");
            assert!(j.file("/usr/lib/perl5/A.pm").is_some());
            assert!(j.is_dir("/usr/lib"));
            assert!(j.read("/usr/lib/perl5/A.pm", 3).is_none(), "larger than the limit");
            assert!(j.read("/usr/lib/perl5/none.pm", 100).is_none());
        }
    }

    #[test]
    fn absolute_links_stay_inside_the_root() {
        let t = tree();
        // In the jail, /etc/x leads to its own /usr/lib/perl5/A.pm; from
        // our root it would lead to a file that does not exist.
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        symlink("/usr/lib/perl5", t.path().join("etc/lib")).unwrap();
        symlink("../../../../../../usr", t.path().join("etc/up")).unwrap();
        for j in both(t.path()) {
            assert_eq!(j.read("/etc/lib/A.pm", 100).unwrap(), b"use B;\n");
            assert_eq!(j.read("/etc/up/lib/perl5/A.pm", 100).unwrap(), b"use B;\n");
            assert_eq!(j.read("/../../usr/lib/perl5/A.pm", 100).unwrap(), b"use B;\n");
        }
    }

    #[test]
    fn pseudo_files_devices_and_fifos_are_never_opened() {
        let t = tree();
        let lib = t.path().join("usr/lib/perl5");
        let fifo = cstr(lib.join("F.pm").as_os_str()).unwrap();
        // SAFETY: valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        for j in both(t.path()) {
            // A FIFO would block a reading open forever.
            assert!(j.read("/usr/lib/perl5/F.pm", 100).is_none());
            assert!(j.file("/usr/lib/perl5/F.pm").is_none());
        }
        // The real procfs, reached by a path of our own.
        let j = Jail::open(Path::new("/")).unwrap();
        assert!(j.read("/proc/self/status", 1 << 20).is_none());
        assert!(j.file("/proc/version").is_none());
        assert!(j.read("/dev/null", 100).is_none());
        assert!(j.read("/sys/kernel/mm/transparent_hugepage/enabled", 100).is_none());
    }

    #[test]
    fn a_link_at_the_end_is_followed_only_when_root_owns_it() {
        let t = tree();
        let lib = t.path().join("usr/lib/perl5");
        symlink("A.pm", lib.join("L.pm")).unwrap();
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        for j in both(t.path()) {
            assert!(j.read("/usr/lib/perl5/L.pm", 100).is_some(), "our own link");
            assert!(j.read_link("/usr/lib/perl5/L.pm").is_some());
            assert!(j.read_link("/usr/lib/perl5/A.pm").is_none());
        }
        if root {
            let link = cstr(lib.join("L.pm").as_os_str()).unwrap();
            // SAFETY: valid C string.
            assert_eq!(unsafe { libc::lchown(link.as_ptr(), 65534, 65534) }, 0);
            for j in both(t.path()) {
                assert!(j.read("/usr/lib/perl5/L.pm", 100).is_none(), "a user's link");
            }
        }
    }

    #[test]
    fn magic_links_are_not_followed() {
        let t = tree();
        symlink("/proc/self/root/etc/hostname", t.path().join("h")).unwrap();
        let j = Jail::open(t.path()).unwrap();
        // In the jail, /proc does not exist; our /proc is never reached.
        assert!(j.read("/h", 1 << 20).is_none());
        let ours = Jail::open(Path::new("/")).unwrap();
        assert!(ours.read("/proc/self/root/etc/hostname", 1 << 20).is_none());
    }

    #[test]
    fn lists_directories_only() {
        let t = tree();
        for j in both(t.path()) {
            let names = j.list("/usr/lib");
            assert_eq!(names, vec![std::ffi::OsString::from("perl5")]);
            assert!(j.list("/usr/lib/perl5/A.pm").is_empty());
        }
    }

    #[test]
    fn a_trailing_dot_or_slash_asks_for_a_directory() {
        // Found by the safe_open_tree fuzz target: the walk took `b/.`
        // for the file `b`, where openat2 (and every kernel lookup) says
        // ENOTDIR.
        let t = tree();
        for j in both(t.path()) {
            assert!(j.read("/usr/lib/perl5/A.pm/.", 100).is_none());
            assert!(j.read("/usr/lib/perl5/A.pm/", 100).is_none());
            assert!(j.is_dir("/usr/lib/perl5/."));
            assert!(j.is_dir("/usr/lib/perl5/"));
        }
    }

    #[test]
    fn a_rename_anywhere_during_a_lookup_is_not_a_missing_file() {
        // openat2 with RESOLVE_IN_ROOT says EAGAIN when any rename or
        // mount on the host raced a `..` of the walk (dpkg renames every
        // file it installs); found by the fuzz smoke run beside the e2e
        // suite, where the two lookups then disagreed.
        let t = tree();
        let other = tempfile::tempdir().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let renamer = {
            let (stop, dir) = (stop.clone(), other.path().to_path_buf());
            std::fs::write(dir.join("x"), "").unwrap();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::fs::rename(dir.join("x"), dir.join("y")).unwrap();
                    std::fs::rename(dir.join("y"), dir.join("x")).unwrap();
                }
            })
        };
        let j = Jail::open(t.path()).unwrap();
        let path = "/usr/lib/../lib/perl5/../../lib/perl5/../perl5/A.pm";
        let missed = (0..20_000).filter(|_| j.read(path, 100).is_none()).count();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        renamer.join().unwrap();
        assert_eq!(missed, 0, "lookups that a rename elsewhere made fail");
    }

    #[test]
    fn link_loops_end() {
        let t = tree();
        symlink("b", t.path().join("a")).unwrap();
        symlink("a", t.path().join("b")).unwrap();
        for j in both(t.path()) {
            assert!(j.read("/a/x", 100).is_none());
            assert!(j.read("/a", 100).is_none());
        }
    }
}
