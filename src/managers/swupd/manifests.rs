//! swupd (Clear Linux) manifests: what an update from one OS version to
//! the installed one changed.
//!
//! A manifest (swupd-client `manifest_parser.c`) is a header
//! (`MANIFEST\t<format>`, then `key:\tvalue` lines up to a blank line)
//! and one line per file: `flags\thash\tlast_change\tpath`. The first
//! flag is the type (`F` file, `D` directory, `L` link, `M` manifest),
//! the second `d`/`g` for deleted/ghosted. Updating from version A
//! changed every entry whose `last_change` is greater than A.
//!
//! Manifests are kept under `/var/lib/swupd/cache/<content url with ':'
//! and '/' as '_'>/manifest/<version>/Manifest.<bundle>` (older clients:
//! `/var/lib/swupd/<version>/`); the installed bundles are the files of
//! `/usr/share/clear/bundles/`.

use crate::system::sysroot::SysRoot;
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::path::PathBuf;

pub const STATE_DIR: &str = "/var/lib/swupd";
pub const BUNDLES_DIR: &str = "/usr/share/clear/bundles";
pub const OS_RELEASE: &str = "/usr/lib/os-release";

/// One file line of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: u8,
    pub deleted: bool,
    pub last_change: u32,
    pub path: String,
}

/// Parses a manifest; `None` if `text` is not one (a `.tar` or signature
/// kept next to it). Corrupt file lines are reported in `warnings` and
/// skipped.
pub fn parse(text: &str, file: &str, warnings: &mut Vec<String>) -> Option<Vec<Entry>> {
    let mut lines = text.lines().enumerate();
    let (_, first) = lines.next()?;
    let format = first.strip_prefix("MANIFEST\t")?;
    if !format.bytes().all(|c| c.is_ascii_digit()) || format.is_empty() {
        warnings.push(format!(
            "{file}:1: manifest format {format:?} is not a number; file skipped"
        ));
        return None;
    }
    // The header ends at the first blank line.
    for (_, line) in lines.by_ref() {
        if line.is_empty() {
            break;
        }
    }
    let mut out = Vec::new();
    for (i, line) in lines {
        match entry(line) {
            Ok(e) => out.push(e),
            Err(why) => warnings.push(format!("{file}:{}: {why}; skipped", i + 1)),
        }
    }
    Some(out)
}

fn entry(line: &str) -> Result<Entry, String> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [flags, hash, version, path] = fields[..] else {
        return Err(format!("expected 4 tab-separated fields, found {}", fields.len()));
    };
    let f = flags.as_bytes();
    if f.len() != 4 || !b"FDLM.".contains(&f[0]) {
        return Err(format!("{flags:?} are not manifest flags"));
    }
    if hash.len() != 64 || !hash.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("{hash:?} is not a hash"));
    }
    let last_change = version
        .parse::<u32>()
        .ok()
        .filter(|&v| v > 0 && version.bytes().all(|c| c.is_ascii_digit()))
        .ok_or_else(|| format!("{version:?} is not a version"))?;
    if !path.starts_with('/') {
        return Err(format!("{path:?} is not an absolute path"));
    }
    Ok(Entry {
        kind: f[0],
        deleted: matches!(f[1], b'd' | b'g'),
        last_change,
        path: path.to_string(),
    })
}

/// The paths an update from `from` changed: files and links (deleted ones
/// too: a process may still map them), not directories or manifests.
pub fn changed(entries: &[Entry], from: u32) -> impl Iterator<Item = &str> {
    entries
        .iter()
        .filter(move |e| e.last_change > from && !matches!(e.kind, b'D' | b'M'))
        .map(|e| e.path.as_str())
}

/// `VERSION_ID` from os-release(5) text.
pub fn version_id(os_release: &str) -> Option<u32> {
    os_release.lines().find_map(|l| {
        let v = l.trim().strip_prefix("VERSION_ID=")?;
        let v = v.trim_matches(|c| c == '"' || c == '\'');
        v.parse().ok()
    })
}

/// The installed OS version.
pub(crate) fn current_version(root: &SysRoot) -> Result<u32> {
    let text =
        std::fs::read_to_string(root.path(OS_RELEASE)).with_context(|| format!("failed to read {OS_RELEASE}"))?;
    version_id(&text).with_context(|| format!("{OS_RELEASE} has no numeric VERSION_ID"))
}

/// The installed bundles, or `None` when the tracking directory is absent.
pub(crate) fn installed_bundles(root: &SysRoot) -> Option<BTreeSet<String>> {
    let dir = std::fs::read_dir(root.path(BUNDLES_DIR)).ok()?;
    Some(dir.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
}

/// The directories holding the manifests of `version`, as paths inside
/// the root: one per content URL, plus the old flat layout.
pub(crate) fn manifest_dirs(root: &SysRoot, version: u32) -> Vec<String> {
    let mut dirs = Vec::new();
    let cache = format!("{STATE_DIR}/cache");
    if let Ok(urls) = std::fs::read_dir(root.path(&cache)) {
        let mut urls: Vec<String> = urls
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        urls.sort();
        dirs.extend(urls.iter().map(|u| format!("{cache}/{u}/manifest/{version}")));
    }
    dirs.push(format!("{STATE_DIR}/{version}"));
    dirs.retain(|d| root.path(d).is_dir());
    dirs
}

/// The manifest files to read in `dir`: `Manifest.<bundle>` of installed
/// bundles, or every `Manifest.*` when bundles are unknown.
pub(crate) fn manifest_files(
    root: &SysRoot,
    dir: &str,
    bundles: Option<&BTreeSet<String>>,
) -> Result<Vec<(String, PathBuf)>> {
    let entries = std::fs::read_dir(root.path(dir)).with_context(|| format!("failed to read directory {dir}"))?;
    let mut files: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let bundle = name.strip_prefix("Manifest.")?;
            let wanted = bundles.map_or(bundle != "MoM", |b| b.contains(bundle));
            wanted.then(|| (format!("{dir}/{name}"), e.path()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// An update from some version to the installed one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Update {
    pub current: u32,
    pub paths: BTreeSet<String>,
    /// The manifests read, as paths inside the root.
    pub manifests: Vec<String>,
}

/// The files an update from `from` to the installed version changed;
/// `warnings` gets corrupt lines and unreadable manifests.
pub fn derive(root: &SysRoot, from: u32, warnings: &mut Vec<String>) -> Result<Update> {
    let current = current_version(root)?;
    if from >= current {
        bail!("--swupd-from {from} is not older than the installed version {current}");
    }
    let dirs = manifest_dirs(root, current);
    if dirs.is_empty() {
        bail!("no manifests of version {current} under {STATE_DIR}/cache/*/manifest/ or {STATE_DIR}/{current}/");
    }
    let bundles = installed_bundles(root);
    let (mut paths, mut read) = (BTreeSet::new(), Vec::new());
    for dir in &dirs {
        for (shown, path) in manifest_files(root, dir, bundles.as_ref())? {
            let data = match std::fs::read(&path) {
                Ok(d) => d,
                Err(e) => {
                    warnings.push(format!("failed to read {shown}: {e}"));
                    continue;
                }
            };
            if let Some(entries) = parse(&String::from_utf8_lossy(&data), &shown, warnings) {
                paths.extend(changed(&entries, from).map(str::to_string));
                read.push(shown);
            }
        }
    }
    if read.is_empty() {
        bail!("no manifest of an installed bundle in {}", dirs.join(", "));
    }
    Ok(Update {
        current,
        paths,
        manifests: read,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn manifest(lines: &[&str]) -> String {
        let mut s = "MANIFEST\t30\nversion:\t400\nprevious:\t390\nfilecount:\t5\n\n".to_string();
        for l in lines {
            s.push_str(&l.replace("H", H));
            s.push('\n');
        }
        s
    }

    #[test]
    fn changed_entries_are_those_newer_than_the_old_version() {
        let text = manifest(&[
            "F...\tH\t400\t/usr/lib64/libssl.so.3",
            "F...\tH\t380\t/usr/bin/old",
            "D...\tH\t400\t/usr/lib64",
            ".d..\tH\t395\t/usr/lib64/libgone.so.1",
            "L...\tH\t400\t/usr/lib64/libssl.so",
            "M...\tH\t400\t/os-core",
        ]);
        let mut w = Vec::new();
        let e = parse(&text, "Manifest.os-core", &mut w).unwrap();
        assert!(w.is_empty(), "{w:?}");
        let c: Vec<&str> = changed(&e, 390).collect();
        assert_eq!(
            c,
            [
                "/usr/lib64/libssl.so.3",
                "/usr/lib64/libgone.so.1",
                "/usr/lib64/libssl.so"
            ]
        );
        assert_eq!(changed(&e, 399).count(), 2);
    }

    #[test]
    fn corrupt_lines_are_reported_and_skipped() {
        let text = manifest(&[
            "F...\tH\t400\t/ok",
            "F...\tH\t400",
            "X...\tH\t400\t/x",
            "F...\tabc\t400\t/x",
            "F...\tH\t0\t/x",
            "F...\tH\t-4\t/x",
            "F...\tH\t400\trelative",
            "",
        ]);
        let mut w = Vec::new();
        let e = parse(&text, "/var/lib/swupd/400/Manifest.os-core", &mut w).unwrap();
        assert_eq!(e.len(), 1);
        let joined = w.join("\n");
        for needle in [
            "Manifest.os-core:7: expected 4 tab-separated fields, found 3",
            "Manifest.os-core:8: \"X...\" are not manifest flags",
            "Manifest.os-core:9: \"abc\" is not a hash",
            "Manifest.os-core:10: \"0\" is not a version",
            "Manifest.os-core:11: \"-4\" is not a version",
            "Manifest.os-core:12: \"relative\" is not an absolute path",
            "Manifest.os-core:13: expected 4",
        ] {
            assert!(joined.contains(needle), "missing {needle:?} in\n{joined}");
        }
    }

    #[test]
    fn other_files_are_not_manifests() {
        let mut w = Vec::new();
        assert_eq!(parse("Manifest.os-core\0\0ustar", "x.tar", &mut w), None);
        assert_eq!(parse("", "x", &mut w), None);
        assert!(w.is_empty());
        assert_eq!(parse("MANIFEST\tx\n", "m", &mut w), None);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn reads_version_id() {
        assert_eq!(version_id("NAME=\"Clear Linux OS\"\nVERSION_ID=43210\n"), Some(43210));
        assert_eq!(version_id("VERSION_ID=\"43210\"\n"), Some(43210));
        assert_eq!(version_id("VERSION_ID=12.5\n"), None);
        assert_eq!(version_id("ID=clear-linux-os\n"), None);
    }
}
