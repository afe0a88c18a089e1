//! The set of files a package transaction changed.
//!
//! Paths are compared in their merged-/usr form: dpkg lists may say
//! `/lib/x86_64-linux-gnu/libc.so.6` while the kernel prints
//! `/usr/lib/x86_64-linux-gnu/libc.so.6` in maps. Other symlinked
//! directories (Fedora's `/usr/sbin → bin`) are only known by looking at
//! the filesystem, which the caller does: [`ChangedSet::with_real_dirs`]
//! takes its answers and adds each path under its real directory.

use anyhow::{bail, Context, Result};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

/// Top-level directories that merged-/usr turns into links into `/usr`.
const MERGED: &[&str] = &["/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/"];

/// `/lib/x` → `/usr/lib/x`; other paths unchanged.
pub(crate) fn normalize(path: &str) -> String {
    let path = path.strip_suffix(" (deleted)").unwrap_or(path);
    match MERGED.iter().find(|m| path.starts_with(*m)) {
        Some(_) => format!("/usr{path}"),
        None => path.to_string(),
    }
}

/// Normalised changed paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangedSet {
    paths: HashSet<String>,
    /// `(directory, soname stem)` → a versioned library of the set, when
    /// the set may lack the old versions' names ([`Self::with_soname_stems`]).
    stems: Option<HashMap<(String, String), String>>,
}

/// `(directory, stem)` of a library whose name carries its version after
/// `.so` (`/usr/lib/libfoo.so.1.2.13` → `("/usr/lib", "libfoo.so")`).
fn soname_stem(path: &str) -> Option<(&str, &str)> {
    let (dir, name) = path.rsplit_once('/')?;
    let at = name.find(".so.")?;
    let version = &name[at + 4..];
    if at == 0 || version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    Some((dir, &name[..at + 3]))
}

impl ChangedSet {
    pub fn contains(&self, path: &str) -> bool {
        self.paths.contains(&normalize(path))
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    pub fn insert(&mut self, path: &str) {
        self.paths.insert(normalize(path));
    }

    /// The set, also matching a deleted library by a changed library of the
    /// same directory and soname stem. For a set read back from history,
    /// which knows the packages' files now but not the old versions' file
    /// names: an upgrade from `libfoo.so.1.2.13` to `libfoo.so.1.3` leaves
    /// the old name only in the processes' maps.
    pub(crate) fn with_soname_stems(mut self) -> ChangedSet {
        let mut stems = HashMap::new();
        for p in &self.paths {
            if let Some((dir, stem)) = soname_stem(p) {
                stems
                    .entry((dir.to_string(), stem.to_string()))
                    .or_insert_with(|| p.clone());
            }
        }
        self.stems = Some(stems);
        self
    }

    /// The changed library that `path`, a deleted library not in the set,
    /// was counted for; `None` without [`Self::with_soname_stems`].
    pub(crate) fn soname_sibling(&self, path: &str) -> Option<&str> {
        let stems = self.stems.as_ref()?;
        let path = normalize(path);
        let (dir, stem) = soname_stem(&path)?;
        stems.get(&(dir.to_string(), stem.to_string())).map(String::as_str)
    }

    /// The set plus, for each path whose directory `real_dir` resolves to
    /// another (a symlinked directory on the way), the same file name under
    /// that real directory: the kernel names a mapped file by its real
    /// path, while a package lists it as packaged (`/usr/sbin/sshd`, which
    /// Fedora's `/usr/sbin → bin` makes `/usr/bin/sshd` in maps). Each
    /// directory is asked about once.
    pub fn with_real_dirs(&self, mut real_dir: impl FnMut(&str) -> Option<String>) -> ChangedSet {
        let mut known: HashMap<&str, Option<String>> = HashMap::new();
        let mut out = self.clone();
        for path in &self.paths {
            let Some((dir, name)) = path.rsplit_once('/') else {
                continue;
            };
            let dir = if dir.is_empty() { "/" } else { dir };
            let real = known.entry(dir).or_insert_with(|| real_dir(dir));
            if let Some(real) = real.as_deref().filter(|r| *r != dir) {
                out.insert(&format!("{}/{name}", real.trim_end_matches('/')));
            }
        }
        out
    }

    /// Parses a newline- or NUL-separated list of absolute paths. `source`
    /// names the input in errors.
    pub fn parse(data: &[u8], source: &str) -> Result<Self> {
        let text = std::str::from_utf8(data).with_context(|| format!("{source}: not valid UTF-8"))?;
        let sep = if text.contains('\0') { '\0' } else { '\n' };
        let mut set = ChangedSet::default();
        for (n, entry) in text.split(sep).enumerate() {
            let entry = if sep == '\n' {
                entry.trim_end_matches('\r')
            } else {
                entry
            };
            if entry.trim().is_empty() {
                continue;
            }
            if !entry.starts_with('/') {
                bail!("{source}: entry {}: {entry:?} is not an absolute path", n + 1);
            }
            set.insert(entry);
        }
        Ok(set)
    }

    /// Reads a list from `path`, or from stdin when `path` is `-`.
    pub fn load(path: &Path) -> Result<Self> {
        let mut data = Vec::new();
        if path == Path::new("-") {
            std::io::stdin()
                .read_to_end(&mut data)
                .context("failed to read the changed-file list from stdin")?;
            return Self::parse(&data, "stdin");
        }
        data = std::fs::read(path).with_context(|| format!("failed to read changed-file list {}", path.display()))?;
        Self::parse(&data, &path.display().to_string())
    }
}

impl<S: AsRef<str>> FromIterator<S> for ChangedSet {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut set = ChangedSet::default();
        for p in iter {
            set.insert(p.as_ref());
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_library_counts_for_its_new_version_only_when_asked() {
        let mut set = ChangedSet::default();
        set.insert("/lib/x86_64-linux-gnu/libdemo.so.1.1");
        set.insert("/usr/share/doc/libdemo/copyright");
        let old = "/usr/lib/x86_64-linux-gnu/libdemo.so.1.0";
        assert_eq!(set.soname_sibling(old), None, "only for sets read back from history");
        let set = set.with_soname_stems();
        assert_eq!(
            set.soname_sibling(old),
            Some("/usr/lib/x86_64-linux-gnu/libdemo.so.1.1")
        );
        for other in [
            "/usr/lib/x86_64-linux-gnu/libother.so.1.0",
            "/usr/lib/libdemo.so.1.0",
            "/usr/lib/x86_64-linux-gnu/libdemo.so",
            "/usr/lib/x86_64-linux-gnu/libdemo.so.1.0~old",
        ] {
            assert_eq!(set.soname_sibling(other), None, "{other}");
        }
    }

    #[test]
    fn merged_usr_aliases_match() {
        let set: ChangedSet = ["/lib/x86_64-linux-gnu/libc.so.6", "/usr/sbin/sshd"]
            .into_iter()
            .collect();
        assert!(set.contains("/usr/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(set.contains("/sbin/sshd"));
        assert!(set.contains("/usr/lib/x86_64-linux-gnu/libc.so.6 (deleted)"));
        assert!(!set.contains("/usr/libexec/x"));
        assert_eq!(normalize("/library/x"), "/library/x");
    }

    #[test]
    fn paths_are_added_under_their_real_directory() {
        let set: ChangedSet = ["/usr/sbin/sshd", "/usr/sbin/other", "/usr/lib/libx.so", "/top"]
            .into_iter()
            .collect();
        let mut asked = Vec::new();
        let real = set.with_real_dirs(|dir| {
            asked.push(dir.to_string());
            match dir {
                "/usr/sbin" => Some("/usr/bin".into()),
                "/usr/lib" => Some("/usr/lib".into()),
                _ => None,
            }
        });
        asked.sort();
        assert_eq!(asked, ["/", "/usr/lib", "/usr/sbin"], "each directory once");
        assert!(real.contains("/usr/bin/sshd") && real.contains("/usr/bin/other"));
        assert!(real.contains("/usr/sbin/sshd"), "the packaged path still counts");
        assert!(real.contains("/usr/lib/libx.so") && real.contains("/top"));
        assert_eq!(real.len(), 6);
        assert!(!set.contains("/usr/bin/sshd"), "only the caller's answers add paths");
    }

    #[test]
    fn parses_newline_and_nul_lists() {
        let a = ChangedSet::parse(b"/usr/bin/a\n\n/lib/b\r\n", "t").unwrap();
        let b = ChangedSet::parse(b"/usr/bin/a\0/lib/b\0", "t").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn relative_entry_names_input_and_line() {
        let err = ChangedSet::parse(b"/usr/bin/a\nusr/bin/b\n", "list.txt")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("list.txt") && err.contains("entry 2") && err.contains("usr/bin/b"),
            "{err}"
        );
        let err = ChangedSet::parse(&[0xff, b'\n'], "stdin").unwrap_err().to_string();
        assert!(err.contains("stdin"), "{err}");
    }
}
