//! Deciding whether one mapped file is stale, and caching that decision.
//!
//! The kernel's ` (deleted)` marker alone is not enough: a file can really
//! be called `x (deleted)`, and a hard link (dpkg's `.dpkg-tmp`) keeps an
//! old inode reachable so the marker never appears. So the marker is
//! confirmed against what the process's own root shows at that path.

pub use crate::core::model::Staleness;
use crate::system::maps::{strip_marker, DELETED_MARKER};
use crate::system::sysroot::SysRoot;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

/// What `stat` says is at a path now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDisk {
    Missing,
    Present { dev: u64, ino: u64 },
}

/// The pure rule. `at_literal` is what lives at the path as printed,
/// marker included (only looked up when the marker is present);
/// `at_stripped` is what lives at the path without the marker.
pub(crate) fn judge(marked: bool, dev: u64, ino: u64, at_literal: OnDisk, at_stripped: OnDisk) -> Option<Staleness> {
    if marked && at_literal == (OnDisk::Present { dev, ino }) {
        return None; // a file genuinely named "… (deleted)"
    }
    match at_stripped {
        OnDisk::Present { dev: d, ino: i } if d == dev => (i != ino).then_some(Staleness::Replaced),
        // Another device: overlayfs and bind mounts report the backing
        // inode in maps, so only the kernel's marker is trustworthy.
        OnDisk::Present { .. } | OnDisk::Missing => marked.then_some(Staleness::Deleted),
    }
}

/// Paths no package owns, so they never make a service stale. Documented
/// in README.md ("What is never considered stale").
const IGNORED_PREFIXES: &[&[u8]] = &[
    b"/dev/",
    b"/memfd:",
    b"/SYSV",
    b"/tmp/",
    b"/var/tmp/",
    b"/run/",
    b"/proc/",
    b"/sys/",
    b"/drm",
    b"/dmabuf",
    b"/i915",
    b"/anon_hugepage",
    b"/[",
    b"/aio",
];

pub fn ignored(path: &[u8]) -> bool {
    IGNORED_PREFIXES.iter().any(|p| path.starts_with(p))
}

fn on_disk(path: &Path) -> OnDisk {
    match std::fs::metadata(path) {
        Ok(m) => OnDisk::Present {
            dev: m.dev(),
            ino: m.ino(),
        },
        Err(_) => OnDisk::Missing,
    }
}

/// Whether `path` names the same file in the root `theirs` (a process's
/// `/proc/PID/root`, in another mount namespace) as in the host's root
/// `host`: a transaction changed the host's files, and a jail or a
/// container may hold its own copy under the same name. The same file is
/// the same device and inode at the path now, or, for a file the
/// transaction removed, the same directory holding the name (a unit with
/// `ProtectSystem=` or `PrivateTmp=` sees the host's /usr through a bind
/// mount, which keeps device and inode). Each root's links are followed
/// inside it, so an absolute link in a jail does not lead to the host.
pub(crate) fn same_as_host(host: &SysRoot, theirs: &SysRoot, path: &str) -> bool {
    let at = |r: &SysRoot, p: &Path| r.resolve(p).map(|p| on_disk(&r.path(p)));
    let same = |p: &Path| match (at(host, p), at(theirs, p)) {
        (Some(a @ OnDisk::Present { .. }), Some(b)) => a == b,
        _ => false,
    };
    let path = Path::new(path);
    same(path) || path.parent().is_some_and(same)
}

/// Identifies a filesystem view: processes that print and resolve paths
/// alike share verdicts. See `Scanner::view` in scan.rs for how a
/// process's view is found.
pub type ViewKey = (u64, u64, u64);

/// Memoises verdicts per (view, dev, inode, path) across all processes,
/// so a library mapped by a thousand processes is stat'ed once.
/// A stale verdict with the display path (marker stripped) to report.
pub type Stale = (Staleness, Arc<str>);

/// Verdicts for one (view, dev, inode), by the path they were printed under.
/// Nearly always one, held without a vector: for a process of 60,000
/// files of its own, making and freeing the vectors was a tenth of a scan.
#[derive(Default)]
struct PathVerdicts {
    first: Option<(Box<[u8]>, Option<Stale>)>,
    more: Vec<(Box<[u8]>, Option<Stale>)>,
}

impl PathVerdicts {
    fn iter(&self) -> impl Iterator<Item = &(Box<[u8]>, Option<Stale>)> {
        self.first.iter().chain(&self.more)
    }

    fn push(&mut self, entry: (Box<[u8]>, Option<Stale>)) {
        match self.first {
            None => self.first = Some(entry),
            Some(_) => self.more.push(entry),
        }
    }
}

#[derive(Default)]
pub struct Resolver {
    cache: HashMap<(ViewKey, u64, u64), PathVerdicts, BuildHasherDefault<WordHasher>>,
    listings: Listings,
    pub lookups: u64,
    /// Paths looked up on disk (a `stat` each), for the tests and benches.
    pub stats: u64,
}

/// How many lookups one directory (in one view) gets one by one before
/// its names are read at once. A process can map or hold tens of
/// thousands of deleted files of one directory (issue 22: 60,000 cost
/// 120,000 path walks through `/proc/PID/root`); past this, a name the
/// directory does not hold costs a hash lookup instead of a walk.
const LIST_AFTER: u32 = 32;
/// The most names one listing keeps; a larger directory is looked up
/// name by name, as before.
const LIST_MAX: usize = 1 << 17;

/// What is known of one directory's names.
enum Names {
    /// Looked up this many times, one name at a time.
    Counting(u32),
    /// Every name it held when it was read, sorted (read once per scan: a
    /// name created later is as unseen as it would be to a lookup made
    /// then). Sorted, not hashed: a user chooses these names, and a
    /// binary search has no worst case to aim at.
    Listed(Vec<Box<[u8]>>),
    /// Unreadable or too large: always looked up name by name.
    Unlisted,
}

/// The directories looked up, by view and path, and the last one asked
/// for: a process's files come in runs of one directory, and the run then
/// costs a comparison, not a hash of the directory's path.
#[derive(Default)]
struct Listings {
    index: HashMap<ViewKey, HashMap<Box<[u8]>, usize>>,
    names: Vec<Names>,
    last: Option<(ViewKey, Box<[u8]>, usize)>,
}

/// `path` split into its directory and last name (`/` for a top name).
fn split(path: &[u8]) -> Option<(&[u8], &[u8])> {
    let slash = path.iter().rposition(|&b| b == b'/')?;
    Some((&path[..slash.max(1)], &path[slash + 1..]))
}

impl Listings {
    /// The names of `path`'s directory, if it has been looked up often
    /// enough to be listed (this lookup counted).
    fn of(&mut self, view: ViewKey, root_dir: &Path, path: &[u8]) -> Option<&[Box<[u8]>]> {
        let (dir, _) = split(path)?;
        let at = match &self.last {
            Some((v, d, at)) if *v == view && **d == *dir => *at,
            _ => {
                let dirs = self.index.entry(view).or_default();
                let at = match dirs.get(dir) {
                    Some(at) => *at,
                    None => {
                        self.names.push(Names::Counting(0));
                        dirs.insert(dir.into(), self.names.len() - 1);
                        self.names.len() - 1
                    }
                };
                self.last = Some((view, dir.into(), at));
                at
            }
        };
        let names = &mut self.names[at];
        if let Names::Counting(n) = names {
            *n += 1;
            if *n > LIST_AFTER {
                *names = list(&inside(root_dir, dir));
            }
        }
        match names {
            Names::Listed(v) => Some(v),
            _ => None,
        }
    }
}

fn list(dir: &Path) -> Names {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Names::Unlisted;
    };
    let mut names = Vec::new();
    for e in entries {
        let Ok(e) = e else {
            return Names::Unlisted;
        };
        if names.len() == LIST_MAX {
            return Names::Unlisted;
        }
        names.push(e.file_name().as_bytes().into());
    }
    names.sort_unstable();
    Names::Listed(names)
}

/// `path` (absolute, as the view prints it) under the view's root.
fn inside(root_dir: &Path, path: &[u8]) -> std::path::PathBuf {
    root_dir.join(
        Path::new(OsStr::from_bytes(path))
            .strip_prefix("/")
            .unwrap_or(Path::new("")),
    )
}

impl Resolver {
    /// A verdict already reached for this inode in this view, whatever
    /// path it was printed under, so the caller can skip fetching the path.
    /// (A hard-linked inode mapped under two paths is judged once.)
    pub fn known(&self, view: ViewKey, dev: u64, ino: u64) -> Option<Option<Stale>> {
        self.cache.get(&(view, dev, ino))?.iter().next().map(|(_, v)| v.clone())
    }

    /// Records that a mapping is never stale (an ignored path), so later
    /// processes mapping the same inode need not fetch its path again.
    pub(crate) fn remember_fresh(&mut self, view: ViewKey, path: &[u8], dev: u64, ino: u64) {
        let slot = self.cache.entry((view, dev, ino)).or_default();
        if !slot.iter().any(|(p, _)| **p == *path) {
            slot.push((path.into(), None));
        }
    }

    /// Judges `path` (as printed in maps) inside the view rooted at `root_dir`
    /// (normally `/proc/PID/root`).
    pub fn check(&mut self, view: ViewKey, root_dir: &Path, path: &[u8], dev: u64, ino: u64) -> Option<Stale> {
        if let Some(slot) = self.cache.get(&(view, dev, ino)) {
            if let Some((_, v)) = slot.iter().find(|(p, _)| **p == *path) {
                return v.clone();
            }
        }
        let verdict = self.judge_path(view, root_dir, path, dev, ino);
        self.cache
            .entry((view, dev, ino))
            .or_default()
            .push((path.into(), verdict.clone()));
        verdict
    }

    /// Like [`Resolver::check`] for a mapping that is one of a long run
    /// no earlier process settled (a process's own files; a hostile one
    /// maps 60,000): judged, not remembered. Remembering cost a fifth of
    /// such a scan (the entries made, the table grown, all of it freed)
    /// for verdicts no other process would ask for, and one that does
    /// (a fork) pays the same again, no more.
    pub(crate) fn check_unshared(
        &mut self,
        view: ViewKey,
        root_dir: &Path,
        path: &[u8],
        dev: u64,
        ino: u64,
    ) -> Option<Stale> {
        self.judge_path(view, root_dir, path, dev, ino)
    }

    fn judge_path(&mut self, view: ViewKey, root_dir: &Path, path: &[u8], dev: u64, ino: u64) -> Option<Stale> {
        self.lookups += 1;
        // The marker is in the last name, so both paths share a directory.
        let listed = self.listings.of(view, root_dir, path);
        let stats = &mut self.stats;
        let mut at = |p: &[u8]| {
            let name = split(p).map_or(p, |(_, n)| n);
            let unlisted = |names: &[Box<[u8]>]| names.binary_search_by(|n| (**n).cmp(name)).is_err();
            if !name.is_empty() && listed.is_some_and(unlisted) {
                return OnDisk::Missing;
            }
            *stats += 1;
            on_disk(&inside(root_dir, p))
        };
        let marked = path.ends_with(DELETED_MARKER);
        let literal = if marked { at(path) } else { OnDisk::Missing };
        judge(marked, dev, ino, literal, at(strip_marker(path)))
            .map(|why| (why, Arc::from(String::from_utf8_lossy(strip_marker(path)))))
    }
}

/// A multiply-rotate hash for keys made of a few integers. The cache is
/// asked once per executable mapping of every process; SipHash, built to
/// resist chosen keys, cost more than the lookup itself, and these keys
/// (device and inode numbers) are not chosen by an attacker in any useful
/// way: the worst they can do is slow the scan of their own processes.
#[derive(Default)]
pub struct WordHasher(u64);

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, word: u64) {
        // An odd constant with well-mixed bits (2^64 / golden ratio).
        self.0 = (self.0.rotate_left(26) ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OnDisk::*;

    const P: OnDisk = Present { dev: 1, ino: 10 };

    #[test]
    fn same_inode_is_fresh() {
        assert_eq!(judge(false, 1, 10, Missing, P), None);
    }

    #[test]
    fn literal_deleted_name_is_fresh() {
        assert_eq!(judge(true, 1, 10, P, Missing), None);
    }

    #[test]
    fn replaced_inode_is_stale_with_or_without_marker() {
        let newer = Present { dev: 1, ino: 11 };
        assert_eq!(judge(false, 1, 10, Missing, newer), Some(Staleness::Replaced));
        assert_eq!(judge(true, 1, 10, Missing, newer), Some(Staleness::Replaced));
    }

    #[test]
    fn other_device_trusts_marker_only() {
        let overlay = Present { dev: 99, ino: 5 };
        assert_eq!(judge(false, 1, 10, Missing, overlay), None);
        assert_eq!(judge(true, 1, 10, Missing, overlay), Some(Staleness::Deleted));
    }

    #[test]
    fn missing_file_needs_marker() {
        assert_eq!(judge(true, 1, 10, Missing, Missing), Some(Staleness::Deleted));
        assert_eq!(judge(false, 1, 10, Missing, Missing), None);
    }

    #[test]
    fn ignores_unowned_paths() {
        for p in [
            "/memfd:x (deleted)",
            "/dev/shm/a",
            "/SYSV00000000 (deleted)",
            "/tmp/x.so",
            "/run/a",
            "/drm mm object (deleted)",
        ] {
            assert!(ignored(p.as_bytes()), "{p}");
        }
        assert!(!ignored(b"/usr/lib/libc.so.6"));
    }

    #[test]
    fn a_jail_copy_is_not_the_hosts_file() {
        use std::os::unix::fs::symlink;
        let (_h, host) = SysRoot::scratch();
        let lib = "/usr/lib/x86_64-linux-gnu/libdemo.so.1";
        std::fs::create_dir_all(host.path("usr/lib/x86_64-linux-gnu")).unwrap();
        std::fs::write(host.path(lib), b"host").unwrap();
        // A bind mount of the host's /usr keeps device and inode: the
        // same tree seen through another path.
        assert!(same_as_host(&host, &host, lib));
        // A jail with its own copy, also reached through an absolute link
        // (followed inside the jail).
        let jail = SysRoot::new(host.path("srv/jail"));
        std::fs::create_dir_all(jail.path("usr/lib/x86_64-linux-gnu")).unwrap();
        std::fs::write(jail.path(lib), b"jail").unwrap();
        assert!(!same_as_host(&host, &jail, lib));
        symlink("/usr/lib/x86_64-linux-gnu", jail.path("lib64")).unwrap();
        assert!(!same_as_host(&host, &jail, "/lib64/libdemo.so.1"));
        // Removed by the transaction: the same directory decides.
        std::fs::remove_file(host.path(lib)).unwrap();
        assert!(same_as_host(&host, &host, lib));
        std::fs::remove_file(jail.path(lib)).unwrap();
        assert!(!same_as_host(&host, &jail, lib));
        // Nothing there in either root is no evidence of sameness.
        assert!(!same_as_host(&host, &jail, "/opt/none/x.so"));
    }

    #[test]
    fn word_hasher_tells_neighbouring_keys_apart() {
        use std::hash::BuildHasher;
        let hash = |k: &(ViewKey, u64, u64)| BuildHasherDefault::<WordHasher>::default().hash_one(k);
        let mut seen = std::collections::HashSet::new();
        for ino in 0..1000u64 {
            for dev in [0x801u64, 0x802] {
                assert!(seen.insert(hash(&((0, 0, 0), dev, ino))), "collision at {dev}:{ino}");
            }
        }
        assert_ne!(hash(&((1, 0, 0), 5, 6)), hash(&((0, 1, 0), 5, 6)));
    }

    #[test]
    fn a_directory_of_many_deleted_files_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("lib");
        std::fs::create_dir(&lib).unwrap();
        for i in 0..20 {
            std::fs::write(lib.join(format!("here{i}")), b"x").unwrap();
            std::fs::write(lib.join(format!("lit{i} (deleted)")), b"x").unwrap();
        }
        let ids = |name: &str| {
            let m = std::fs::metadata(lib.join(name)).unwrap();
            (m.dev(), m.ino())
        };
        let (dev, _) = ids("here0");
        let mut r = Resolver::default();
        let mut asked = 0;
        for i in 0..2000u64 {
            // Gone: only the marker is left to tell.
            let gone = format!("/lib/gone{i} (deleted)");
            assert_eq!(
                r.check((0, 0, 0), dir.path(), gone.as_bytes(), dev, 1_000_000 + i),
                Some((Staleness::Deleted, Arc::from(format!("/lib/gone{i}").as_str()))),
                "{gone}"
            );
            asked += 2;
            if i % 100 == 0 {
                // Among them, names the listing holds: still looked up.
                let n = i / 100;
                let (d, ino) = ids(&format!("here{n}"));
                let here = format!("/lib/here{n}");
                assert_eq!(r.check((0, 0, 0), dir.path(), here.as_bytes(), d, ino), None);
                assert_eq!(
                    r.check((0, 0, 0), dir.path(), here.as_bytes(), d, ino + 1),
                    Some((Staleness::Replaced, Arc::from(here.as_str())))
                );
                let lit = format!("lit{n} (deleted)");
                let (d, ino) = ids(&lit);
                assert_eq!(
                    r.check((0, 0, 0), dir.path(), format!("/lib/{lit}").as_bytes(), d, ino),
                    None
                );
                asked += 4;
            }
        }
        assert!(r.stats < 200, "{} lookups on disk for {asked} questions", r.stats);
    }

    #[test]
    fn resolver_caches_per_view() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lib.so"), b"x").unwrap();
        let m = std::fs::metadata(dir.path().join("lib.so")).unwrap();
        let mut r = Resolver::default();
        for _ in 0..3 {
            assert_eq!(r.check((0, 0, 0), dir.path(), b"/lib.so", m.dev(), m.ino()), None);
            assert_eq!(
                r.check((0, 0, 0), dir.path(), b"/lib.so", m.dev(), m.ino() + 1),
                Some((Staleness::Replaced, Arc::from("/lib.so")))
            );
        }
        assert_eq!(r.lookups, 2);
    }
}
