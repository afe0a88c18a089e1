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

    pub fn is_host(&self) -> bool {
        self.root == Path::new("/")
    }

    /// `rel` is an absolute or relative path inside the root.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        let rel = rel.as_ref();
        self.root.join(rel.strip_prefix("/").unwrap_or(rel))
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
    pub fn proc_pid(&self, pid: u32, rel: &str) -> PathBuf {
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
}
