//! A log and its logrotate generations: `NAME`, `NAME.1`, `NAME.2.gz`, …
//! (apt's history.log is compressed from `.1` on; dpkg.log uses
//! `delaycompress`, so its `.1` is plain text).

use crate::system::sysroot::SysRoot;
use anyhow::{bail, Context, Result};
use flate2::read::MultiGzDecoder;
use std::io::Read;
use std::path::Path;

/// One generation of a log, read into memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    /// The path as seen inside the root, for messages (`/var/log/dpkg.log.2.gz`).
    pub name: String,
    pub text: String,
}

/// The rotation number of `file` as a generation of `base`: 0 for the
/// live log, N for `base.N` and `base.N.gz`; `None` for other files.
fn generation(base: &str, file: &str) -> Option<u32> {
    let rest = file.strip_prefix(base)?;
    if rest.is_empty() {
        return Some(0);
    }
    let n = rest.strip_prefix('.')?;
    let n = n.strip_suffix(".gz").unwrap_or(n);
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok().filter(|&n| n > 0)
}

/// The generations of the log `path` (absolute, inside the root), newest
/// first, as paths inside the root; finding none is an error.
pub(crate) fn generations(root: &SysRoot, path: &str) -> Result<Vec<String>> {
    let (dir, base) = path.rsplit_once('/').context("log path has no directory")?;
    let dir_shown = if dir.is_empty() { "/" } else { dir };
    let entries =
        std::fs::read_dir(root.path(dir_shown)).with_context(|| format!("failed to read directory {dir_shown}"))?;
    let mut found: Vec<(u32, String)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            generation(base, &name).map(|g| (g, name))
        })
        .collect();
    if found.is_empty() {
        bail!("no {path} (nor rotated {path}.N[.gz]) to read");
    }
    // `.N.gz` before `.N` if both exist (rotation caught half-way).
    found.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    Ok(found.into_iter().map(|(_, name)| format!("{dir}/{name}")).collect())
}

/// Reads one generation (`shown` inside the root). A file that cannot be
/// read or decompressed is a warning, with whatever was decoded before
/// the damage kept.
pub fn read(root: &SysRoot, shown: &str, warnings: &mut Vec<String>) -> LogFile {
    let text = match read_one(&root.path(shown), shown) {
        Ok(text) => text,
        Err((partial, e)) => {
            warnings.push(format!("{e:#}"));
            partial
        }
    };
    LogFile {
        name: shown.to_string(),
        text,
    }
}

/// Reads a plain or gzip'd file as text (invalid UTF-8 replaced, so the
/// parser reports such lines). On error, returns what was decoded so far.
fn read_one(path: &Path, shown: &str) -> Result<String, (String, anyhow::Error)> {
    let mut data = Vec::new();
    let result = std::fs::File::open(path).and_then(|mut f| {
        if shown.ends_with(".gz") {
            MultiGzDecoder::new(f).read_to_end(&mut data)
        } else {
            f.read_to_end(&mut data)
        }
    });
    let text = String::from_utf8_lossy(&data).into_owned();
    match result {
        Ok(_) => Ok(text),
        Err(e) => Err((text, anyhow::Error::new(e).context(format!("failed to read {shown}")))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gz(text: &str) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn generations_are_recognised() {
        assert_eq!(generation("dpkg.log", "dpkg.log"), Some(0));
        assert_eq!(generation("dpkg.log", "dpkg.log.1"), Some(1));
        assert_eq!(generation("dpkg.log", "dpkg.log.12.gz"), Some(12));
        for other in [
            "dpkg.log.0",
            "dpkg.log.gz",
            "dpkg.log.1.xz",
            "dpkg.logx",
            "dpkg.log.",
            "dpkg.log.-1",
        ] {
            assert_eq!(generation("dpkg.log", other), None, "{other}");
        }
    }

    #[test]
    fn lists_newest_first_and_keeps_what_a_damaged_gz_held() {
        let (_tmp, root) = SysRoot::scratch();
        let dir = root.path("/var/log");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("dpkg.log"), "new\n").unwrap();
        std::fs::write(dir.join("dpkg.log.1"), "one\n").unwrap();
        std::fs::write(dir.join("dpkg.log.2.gz"), gz("two\n")).unwrap();
        let mut broken = gz("three\nthree again\n");
        broken.truncate(broken.len() - 6);
        std::fs::write(dir.join("dpkg.log.10.gz"), broken).unwrap();
        std::fs::write(dir.join("dpkg.log.3.gz"), b"not gzip").unwrap();
        std::fs::write(dir.join("alternatives.log"), "x").unwrap();
        let names = generations(&root, "/var/log/dpkg.log").unwrap();
        assert_eq!(
            names,
            [
                "/var/log/dpkg.log",
                "/var/log/dpkg.log.1",
                "/var/log/dpkg.log.2.gz",
                "/var/log/dpkg.log.3.gz",
                "/var/log/dpkg.log.10.gz"
            ]
        );
        let mut warnings = Vec::new();
        let logs: Vec<LogFile> = names.iter().map(|n| read(&root, n, &mut warnings)).collect();
        assert_eq!(logs[2].text, "two\n");
        assert_eq!(logs[3].text, "");
        assert!(logs[4].text.starts_with("three\n"), "{:?}", logs[4].text);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings.iter().any(|w| w.contains("/var/log/dpkg.log.3.gz")));
        assert!(warnings.iter().any(|w| w.contains("/var/log/dpkg.log.10.gz")));
    }

    #[test]
    fn no_log_at_all_is_an_error_naming_it() {
        let (_tmp, root) = SysRoot::scratch();
        std::fs::create_dir_all(root.path("/var/log/apt")).unwrap();
        let err = generations(&root, "/var/log/apt/history.log").unwrap_err();
        assert!(err.to_string().contains("/var/log/apt/history.log"), "{err}");
        let err = generations(&root, "/nonexistent/x.log").unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent"), "{err:#}");
    }
}
