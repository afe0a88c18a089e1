//! dpkg's per-package file lists, `/var/lib/dpkg/info/<pkg>[:<arch>].list`,
//! and the changed file set derived from them.
//!
//! dpkg names the list `<pkg>:<arch>.list` for `Multi-Arch: same`
//! packages and `<pkg>.list` otherwise (dpkg's `pkg_infodb_get_file`), so
//! we look for the qualified name first.

use crate::core::changed::ChangedSet;
use crate::replay::package::PackageChange;
use crate::replay::Replay;
use crate::system::sysroot::SysRoot;
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::path::PathBuf;

pub const INFO_DIR: &str = "/var/lib/dpkg/info";

/// The list file of `package` for the first of `archs` that has one,
/// else the unqualified one; `None` when there is none (not installed,
/// or already removed).
pub(crate) fn find_list(root: &SysRoot, package: &str, archs: &[&str]) -> Option<PathBuf> {
    let info = root.path(INFO_DIR);
    archs
        .iter()
        .map(|arch| info.join(format!("{package}:{arch}.list")))
        .chain([info.join(format!("{package}.list"))])
        .find(|p| p.is_file())
}

/// Reads a list file: one absolute path per line; dpkg's `/.` entry and
/// blank lines are dropped.
pub(crate) fn read_list(path: &std::path::Path) -> Result<Vec<String>> {
    let data = std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    Ok(parse_list(&String::from_utf8_lossy(&data)))
}

pub(crate) fn parse_list(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with('/') && *l != "/.")
        .map(str::to_string)
        .collect()
}

/// True when `path` (inside the root) is a directory now. Directories
/// are never mapped code; they would only bloat the set.
pub fn is_dir(root: &SysRoot, path: &str) -> bool {
    // A path that is gone (removed by dpkg) or unreadable counts as a file.
    std::fs::metadata(root.path(path)).is_ok_and(|m| m.is_dir())
}

/// The files of the package list, directories left out.
pub(crate) fn package_files(root: &SysRoot, package: &str, archs: &[&str]) -> Result<Option<Vec<String>>> {
    let Some(list) = find_list(root, package, archs) else {
        return Ok(None);
    };
    let files = read_list(&list)?;
    Ok(Some(files.into_iter().filter(|f| !is_dir(root, f)).collect()))
}

/// How a changed set came about, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Derived {
    pub set: ChangedSet,
    /// Packages whose current list was read.
    pub lists_read: usize,
    /// `pkg:arch` with no list now (removed, or never installed).
    pub without_list: Vec<String>,
    /// Paths that came from lists copied before dpkg ran.
    pub captured: usize,
    pub problems: Vec<String>,
}

/// The changed set: the current lists of every recorded package plus the
/// lists copied before dpkg ran (removed packages, files an upgrade
/// dropped). `packages` holds `(name, archs)`.
pub fn derive(root: &SysRoot, packages: &[(String, Vec<String>)], captured: &[(String, String)]) -> Derived {
    let mut d = Derived::default();
    for (name, archs) in packages {
        let archs: Vec<&str> = archs.iter().map(String::as_str).collect();
        match package_files(root, name, &archs) {
            Ok(Some(files)) => {
                d.lists_read += 1;
                files.iter().for_each(|f| d.set.insert(f));
            }
            Ok(None) => d.without_list.push(format!("{name}:{}", archs.join(","))),
            Err(e) => d.problems.push(format!("{e:#}")),
        }
    }
    for (_, path) in captured {
        if !is_dir(root, path) {
            d.set.insert(path);
            d.captured += 1;
        }
    }
    d
}

/// The installed packages whose lists name any of `paths` (compared in
/// merged-/usr form), without their `:arch`; one pass over every list.
/// For `/run/reboot-required.pkgs`, so best effort: an unreadable info
/// directory or list is skipped, and a path no list names (a library
/// dropped by its upgrade) names no package.
pub(crate) fn owners(root: &SysRoot, paths: &[String]) -> std::collections::BTreeSet<String> {
    let wanted: std::collections::HashSet<String> = paths.iter().map(|p| crate::core::changed::normalize(p)).collect();
    let mut found = std::collections::BTreeSet::new();
    let Ok(dir) = std::fs::read_dir(root.path(INFO_DIR)) else {
        return found;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pkg) = name.strip_suffix(".list") else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        if text
            .lines()
            .any(|l| wanted.contains(&crate::core::changed::normalize(l)))
        {
            found.insert(pkg.split(':').next().unwrap_or(pkg).to_string());
        }
    }
    found
}

/// The current files of the Debian packages in `changes`, each once.
pub(crate) fn replay_files<'a>(root: &SysRoot, changes: impl Iterator<Item = &'a PackageChange>, r: &mut Replay) {
    let changes: Vec<&PackageChange> = changes.collect();
    let mut ups = crate::core::fixes::Upgrades::default();
    for p in &changes {
        ups.add(&p.name, p.arch.as_deref(), p.old.as_deref(), p.new.as_deref());
    }
    r.upgrades = Some(ups);
    let packages: BTreeSet<(String, Vec<String>)> = changes
        .iter()
        .map(|p| (p.name.clone(), p.arch.iter().cloned().collect()))
        .collect();
    let packages: Vec<_> = packages.into_iter().collect();
    let d = derive(root, &packages, &[]);
    r.set = d.set;
    // A package without an arch (pre-multiarch dpkg.log) is listed as `name:`.
    r.unknown
        .extend(d.without_list.iter().map(|p| p.trim_end_matches(':').to_string()));
    r.warnings.extend(d.problems);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn fake_root() -> (tempfile::TempDir, SysRoot) {
        let (tmp, root) = SysRoot::scratch();
        let info = root.path(INFO_DIR);
        fs::create_dir_all(&info).unwrap();
        fs::create_dir_all(root.path("/usr/lib/x86_64-linux-gnu")).unwrap();
        fs::write(root.path("/usr/lib/x86_64-linux-gnu/libdemo.so.1"), "").unwrap();
        let lib = "/.\n/usr\n/usr/lib\n/usr/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu/libdemo.so.1\n";
        fs::write(info.join("libdemo1:amd64.list"), lib).unwrap();
        fs::write(
            info.join("libdemo1:i386.list"),
            "/usr/lib/i386-linux-gnu/libdemo.so.1\n",
        )
        .unwrap();
        fs::write(info.join("demo-tool.list"), "/.\n/usr/bin/demo-tool\n\n").unwrap();
        (tmp, root)
    }

    #[test]
    fn multi_arch_same_lists_are_qualified_others_are_not() {
        let (_tmp, root) = fake_root();
        let amd = find_list(&root, "libdemo1", &["amd64"]).unwrap();
        assert!(amd.ends_with("libdemo1:amd64.list"));
        assert!(find_list(&root, "libdemo1", &["i386"])
            .unwrap()
            .ends_with("libdemo1:i386.list"));
        assert!(find_list(&root, "demo-tool", &["amd64"])
            .unwrap()
            .ends_with("demo-tool.list"));
        assert_eq!(find_list(&root, "absent", &["amd64"]), None);
    }

    #[test]
    fn derives_files_without_directories_plus_captured_lists() {
        let (_tmp, root) = fake_root();
        let packages = vec![
            ("libdemo1".to_string(), vec!["amd64".to_string()]),
            ("demo-tool".to_string(), vec!["amd64".to_string()]),
            ("demod".to_string(), vec!["amd64".to_string()]),
        ];
        let captured = vec![
            ("demod:amd64".to_string(), "/usr/sbin/demod".to_string()),
            ("demod:amd64".to_string(), "/usr/lib".to_string()),
        ];
        let d = derive(&root, &packages, &captured);
        let mut expected: ChangedSet = ["/usr/lib/x86_64-linux-gnu/libdemo.so.1", "/usr/bin/demo-tool"]
            .into_iter()
            .collect();
        expected.insert("/usr/sbin/demod");
        assert_eq!(d.set, expected);
        assert_eq!((d.lists_read, d.captured), (2, 1));
        assert_eq!(d.without_list, ["demod:amd64"]);
        assert!(d.set.contains("/lib/x86_64-linux-gnu/libdemo.so.1"));
        assert!(!d.set.contains("/usr/lib/i386-linux-gnu/libdemo.so.1"));
    }

    #[test]
    fn list_parsing_drops_root_and_blanks() {
        assert_eq!(parse_list("/.\n/etc\n\n/etc/x y\n"), ["/etc", "/etc/x y"]);
    }
}
