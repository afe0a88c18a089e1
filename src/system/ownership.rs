//! Whether users control a stale file, read from the filesystem: the
//! owners and modes of its resolved path, as the process sees it.
//!
//! The rule is `core::places::opens_to_users`; this walks the path. Only
//! stale files are asked about, and their directories are shared, so each
//! directory is resolved and judged once per view, its verdict covering
//! all its ancestors.

use crate::core::places::{self, Entry, Trusted};
use crate::system::staleness::ViewKey;
use crate::system::sysroot::SysRoot;
use std::collections::HashMap;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What a directory, as printed, came to: where it resolves to, and
/// whether users control it or one of its ancestors.
#[derive(Clone)]
struct Dir {
    resolved: Option<PathBuf>,
    users: bool,
}

/// Verdicts per directory, for one run.
pub struct Ownership {
    trusted: Trusted,
    /// By view and directory as printed.
    printed: HashMap<(ViewKey, PathBuf), Dir>,
    /// By view and resolved directory.
    resolved: HashMap<(ViewKey, PathBuf), bool>,
    /// By view and file as printed: a stale library is mapped by many
    /// processes.
    files: HashMap<ViewKey, HashMap<Box<str>, bool>>,
}

impl Default for Ownership {
    fn default() -> Self {
        // SAFETY: geteuid and getegid cannot fail and touch no memory.
        let trusted = unsafe {
            Trusted {
                uid: libc::geteuid(),
                gid: libc::getegid(),
            }
        };
        Self::trusting(trusted)
    }
}

/// How `lstat` found an entry.
enum Found {
    Entry(Entry),
    Missing,
    /// Unreadable (a user's FUSE mount denies even root): whatever is
    /// there, no package put it.
    Unknown,
}

fn lstat(path: &Path) -> Found {
    match std::fs::symlink_metadata(path) {
        Ok(m) => Found::Entry(Entry {
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode(),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => Found::Missing,
        Err(_) => Found::Unknown,
    }
}

impl Ownership {
    /// Trusting root and `trusted` (the ids running the tool by default).
    pub(crate) fn trusting(trusted: Trusted) -> Self {
        Self {
            trusted,
            printed: HashMap::new(),
            resolved: HashMap::new(),
            files: HashMap::new(),
        }
    }

    /// The same trust, with no verdicts yet: for a scan on another thread.
    pub fn sibling(&self) -> Self {
        Self::trusting(self.trusted)
    }

    /// Whether users control `path` as printed for a process whose files
    /// are looked up under `root_dir` (`view` keys that lookup). A path
    /// under a known place settles it without a look at the disk.
    /// `gone`: the caller knows nothing is at the path (a deleted
    /// mapping): only its directories are judged, and nothing is cached
    /// per file (60,000 deleted files would each fill the cache once).
    pub(crate) fn user_controlled(&mut self, view: ViewKey, root_dir: &Path, path: &str, gone: bool) -> bool {
        if places::user_controlled(path) {
            return true;
        }
        if gone {
            return self.directories_open(view, root_dir, path);
        }
        if let Some(&v) = self.files.get(&view).and_then(|f| f.get(path)) {
            return v;
        }
        let v = self.judge(view, root_dir, path);
        self.files.entry(view).or_default().insert(path.into(), v);
        v
    }

    fn directories_open(&mut self, view: ViewKey, root_dir: &Path, path: &str) -> bool {
        let root = SysRoot::new(root_dir);
        let Some(parent) = Path::new(path).parent() else {
            return false;
        };
        let dir = self.dir(view, &root, parent);
        // A loop of links: no package installs that.
        dir.resolved.is_none() || dir.users
    }

    fn judge(&mut self, view: ViewKey, root_dir: &Path, path: &str) -> bool {
        let root = SysRoot::new(root_dir);
        let path = Path::new(path);
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return false;
        };
        let dir = self.dir(view, &root, parent);
        let Some(resolved) = dir.resolved else {
            // A loop of links: no package installs that.
            return true;
        };
        if dir.users {
            return true;
        }
        let file = resolved.join(name);
        match lstat(&root.path(&file)) {
            Found::Entry(e) if e.mode & libc::S_IFMT == libc::S_IFLNK => self.through_link(view, &root, &file),
            Found::Entry(e) => places::opens_to_users(e, self.trusted),
            Found::Missing => false,
            Found::Unknown => true,
        }
    }

    /// A file that is itself a link: judged where it leads.
    fn through_link(&mut self, view: ViewKey, root: &SysRoot, file: &Path) -> bool {
        let Some(target) = root.resolve(file) else {
            return true;
        };
        let dir_users = target.parent().is_some_and(|d| self.resolved_dir(view, root, d));
        dir_users
            || match lstat(&root.path(&target)) {
                Found::Entry(e) => places::opens_to_users(e, self.trusted),
                Found::Missing => false,
                Found::Unknown => true,
            }
    }

    /// The directory `printed` resolved and judged, once per view.
    fn dir(&mut self, view: ViewKey, root: &SysRoot, printed: &Path) -> Dir {
        let key = (view, printed.to_path_buf());
        if let Some(d) = self.printed.get(&key) {
            return d.clone();
        }
        let resolved = root.resolve(printed);
        let users = resolved.as_deref().is_some_and(|r| self.resolved_dir(view, root, r));
        let d = Dir { resolved, users };
        self.printed.insert(key, d.clone());
        d
    }

    /// Whether users control the resolved directory `dir` or one of its
    /// ancestors. Iterative: a path may have thousands of components.
    fn resolved_dir(&mut self, view: ViewKey, root: &SysRoot, dir: &Path) -> bool {
        let mut todo = Vec::new();
        let mut known = false;
        for d in dir.ancestors() {
            if let Some(&v) = self.resolved.get(&(view, d.to_path_buf())) {
                known = v;
                break;
            }
            todo.push(d);
        }
        // From the top down: each verdict includes its ancestors'.
        for d in todo.into_iter().rev() {
            known = known
                || match lstat(&root.path(d)) {
                    Found::Entry(e) => places::opens_to_users(e, self.trusted),
                    Found::Missing => false,
                    Found::Unknown => true,
                };
            self.resolved.insert((view, d.to_path_buf()), known);
        }
        known
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};

    /// Judged as root judges: only root is trusted.
    fn as_root() -> Ownership {
        Ownership::trusting(Trusted { uid: 0, gid: 0 })
    }

    /// Makes `path` a user's, whoever runs the test: root gives it to
    /// nobody, anyone else owns it already.
    fn a_users(path: &Path) {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::lchown(path, Some(65534), Some(65534)).unwrap();
        }
    }

    fn as_owner() -> Ownership {
        Ownership::default()
    }

    #[test]
    fn a_home_through_a_link_is_a_users() {
        let (_d, r) = SysRoot::scratch();
        fs::create_dir_all(r.path("var/home/alice")).unwrap();
        fs::write(r.path("var/home/alice/libx.so"), "x").unwrap();
        a_users(&r.path("var/home/alice"));
        a_users(&r.path("var/home/alice/libx.so"));
        symlink("var/home", r.path("home2")).unwrap();
        let mut o = as_root();
        assert!(o.user_controlled((0, 0, 0), r.root(), "/var/home/alice/libx.so", false));
        assert!(o.user_controlled((0, 0, 0), r.root(), "/home2/alice/libx.so", false));
        assert!(o.user_controlled((0, 0, 0), r.root(), "/var/home/alice/deleted.so", false));
        assert!(o.user_controlled((0, 0, 0), r.root(), "/var/home/alice/deleted.so", true));
        // The prefix list still settles its places without the disk.
        assert!(o.user_controlled((0, 0, 0), r.root(), "/home/bob/nowhere.so", false));
    }

    #[test]
    fn the_runners_own_tree_is_the_systems() {
        let (_d, r) = SysRoot::scratch();
        fs::create_dir_all(r.path("usr/lib")).unwrap();
        fs::set_permissions(r.path("usr/lib"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(r.path("usr/lib/libdemo.so.1"), "x").unwrap();
        fs::set_permissions(r.path("usr/lib/libdemo.so.1"), fs::Permissions::from_mode(0o644)).unwrap();
        symlink("/usr/lib/libdemo.so.1", r.path("usr/lib/libdemo.so")).unwrap();
        let mut o = as_owner();
        assert!(!o.user_controlled((0, 0, 0), r.root(), "/usr/lib/libdemo.so.1", false));
        assert!(!o.user_controlled((0, 0, 0), r.root(), "/usr/lib/libdemo.so", false));
        assert!(!o.user_controlled((0, 0, 0), r.root(), "/usr/lib/gone.so", false));
        assert!(!o.user_controlled((0, 0, 0), r.root(), "/usr/gone/gone.so", false));
        // A deleted mapping's path, judged by its directories alone.
        assert!(!o.user_controlled((0, 0, 0), r.root(), "/usr/lib/gone.so", true));
        // Writable by everyone: anyone may have replaced it.
        fs::set_permissions(r.path("usr/lib/libdemo.so.1"), fs::Permissions::from_mode(0o666)).unwrap();
        let mut o = as_owner();
        assert!(o.user_controlled((0, 0, 0), r.root(), "/usr/lib/libdemo.so.1", false));
        assert!(
            o.user_controlled((0, 0, 0), r.root(), "/usr/lib/libdemo.so", false),
            "judged where it leads"
        );
    }

    #[test]
    fn a_directory_open_to_all_is_cached_for_its_files() {
        let (_d, r) = SysRoot::scratch();
        fs::create_dir_all(r.path("var/crash")).unwrap();
        fs::set_permissions(r.path("var/crash"), fs::Permissions::from_mode(0o777)).unwrap();
        let mut o = as_owner();
        assert!(o.user_controlled((0, 0, 0), r.root(), "/var/crash/a.so", false));
        // The verdict stays with the directory, also for other files.
        fs::set_permissions(r.path("var/crash"), fs::Permissions::from_mode(0o755)).unwrap();
        assert!(o.user_controlled((0, 0, 0), r.root(), "/var/crash/b.so", false));
        assert!(o.user_controlled((0, 0, 0), r.root(), "/var/crash/a.so", false));
        assert!(!as_owner().user_controlled((0, 0, 0), r.root(), "/var/crash/b.so", false));
        // Another view is judged on its own.
        assert!(!o.user_controlled((1, 0, 0), r.root(), "/var/crash/b.so", false));
    }

    #[test]
    fn a_loop_of_links_is_no_packages() {
        let (_d, r) = SysRoot::scratch();
        symlink("loop", r.path("loop")).unwrap();
        assert!(as_owner().user_controlled((0, 0, 0), r.root(), "/loop/x.so", false));
        assert!(!as_owner().user_controlled((0, 0, 0), r.root(), "/", false));
    }
}
