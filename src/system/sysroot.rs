//! The injectable filesystem root every OS read goes through.
//!
//! Production uses `/`; tests point it at a fixture tree holding fake
//! `proc/`, `sys/fs/cgroup/`, `etc/` and `usr/share/` directories.

use std::path::{Path, PathBuf};

/// Environment variable that overrides the root, like `--root`.
pub const ROOT_ENV: &str = "RESTART_STALE_ROOT";

/// A filesystem root under which `/proc`, `/sys`, `/etc` and `/usr` are read.
#[derive(Debug, Clone)]
pub struct SysRoot {
    root: PathBuf,
}

impl Default for SysRoot {
    fn default() -> Self {
        Self::new("/")
    }
}

impl SysRoot {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn is_host(&self) -> bool {
        self.root == Path::new("/")
    }

    /// `rel` is an absolute or relative path inside the root.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        let rel = rel.as_ref();
        self.root.join(rel.strip_prefix("/").unwrap_or(rel))
    }

    /// `path` (absolute, inside the root) with every symlink on the way
    /// followed inside the root: an absolute target starts again at the
    /// root, a relative one at the link's directory, and `..` stops at the
    /// root, as the kernel resolves a path for a process chrooted there.
    /// Components that do not exist are kept as written. `None` after 40
    /// links (ELOOP's limit) or for a link that cannot be read.
    /// True when `path` (inside the root) is a directory now; a path that
    /// is gone or unreadable counts as a file. Directories are never
    /// mapped code, so changed sets leave them out.
    pub fn is_dir(&self, path: impl AsRef<Path>) -> bool {
        std::fs::metadata(self.path(path)).is_ok_and(|m| m.is_dir())
    }

    pub fn resolve(&self, path: &Path) -> Option<PathBuf> {
        use std::path::Component;
        let mut done = PathBuf::from("/");
        let mut todo: Vec<std::ffi::OsString> = Vec::new();
        let push_all = |todo: &mut Vec<std::ffi::OsString>, p: &Path| {
            // Reversed, so that pop() yields them in order.
            for c in p.components().rev() {
                match c {
                    Component::Normal(n) => todo.push(n.to_os_string()),
                    Component::ParentDir => todo.push("..".into()),
                    Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
                }
            }
        };
        push_all(&mut todo, path);
        let mut links = 0;
        while let Some(c) = todo.pop() {
            if c == ".." {
                done.pop();
                continue;
            }
            let next = done.join(&c);
            match std::fs::symlink_metadata(self.path(&next)) {
                Ok(m) if m.file_type().is_symlink() => {
                    links += 1;
                    if links > 40 {
                        return None;
                    }
                    let target = std::fs::read_link(self.path(&next)).ok()?;
                    if target.is_absolute() {
                        done = PathBuf::from("/");
                    }
                    push_all(&mut todo, &target);
                }
                _ => done = next,
            }
        }
        Some(done)
    }

    /// An empty root in a new temporary directory, for unit tests; the
    /// directory lives as long as the returned guard.
    #[cfg(test)]
    pub fn scratch() -> (tempfile::TempDir, SysRoot) {
        let tmp = tempfile::tempdir().expect("a temporary directory for a test root");
        let root = SysRoot::new(tmp.path());
        (tmp, root)
    }

    /// `/proc/PID/<rel>` inside the root.
    pub(crate) fn proc_pid(&self, pid: u32, rel: &str) -> PathBuf {
        let mut p = self.root.join("proc");
        p.push(pid.to_string());
        if !rel.is_empty() {
            p.push(rel);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_absolute_paths_under_root() {
        let r = SysRoot::new("/tmp/fx");
        assert_eq!(r.path("/etc/restart-stale"), Path::new("/tmp/fx/etc/restart-stale"));
        assert_eq!(r.proc_pid(42, "maps"), Path::new("/tmp/fx/proc/42/maps"));
        assert_eq!(SysRoot::default().path("/proc"), Path::new("/proc"));
    }

    #[test]
    fn resolves_links_inside_the_root() {
        use std::os::unix::fs::symlink;
        let (_d, r) = SysRoot::scratch();
        std::fs::create_dir_all(r.path("usr/bin")).unwrap();
        std::fs::create_dir_all(r.path("opt/real")).unwrap();
        symlink("bin", r.path("usr/sbin")).unwrap();
        // Absolute, and climbing above the root: both stay inside it.
        symlink("/opt/real", r.path("usr/abs")).unwrap();
        symlink("../../../../opt/real", r.path("usr/climb")).unwrap();
        symlink("loop", r.path("loop")).unwrap();
        let res = |p: &str| r.resolve(Path::new(p)).map(|p| p.display().to_string());
        assert_eq!(res("/usr/sbin").as_deref(), Some("/usr/bin"));
        assert_eq!(res("/usr/sbin/gone/x").as_deref(), Some("/usr/bin/gone/x"));
        assert_eq!(res("/usr/abs").as_deref(), Some("/opt/real"));
        assert_eq!(res("/usr/climb").as_deref(), Some("/opt/real"));
        assert_eq!(res("/etc/../usr/./bin").as_deref(), Some("/usr/bin"));
        assert_eq!(res("/").as_deref(), Some("/"));
        assert_eq!(res("/loop"), None);
    }
}
