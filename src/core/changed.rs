//! The set of files a package transaction changed.
//!
//! Paths are compared in their merged-/usr form: dpkg lists may say
//! `/lib/x86_64-linux-gnu/libc.so.6` while the kernel prints
//! `/usr/lib/x86_64-linux-gnu/libc.so.6` in maps.

use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

/// Top-level directories that merged-/usr turns into links into `/usr`.
const MERGED: &[&str] = &["/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/libx32/"];

/// `/lib/x` → `/usr/lib/x`; other paths unchanged.
pub fn normalize(path: &str) -> String {
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
