//! `--files FILE`: a plain list of changed paths, one absolute path a
//! line (or NUL-separated, as `find -print0` writes); `-` reads stdin.

use anyhow::{Context, Result};
use std::io::Read;
use std::path::Path;

/// The paths in `data`; entries that are not absolute paths are reported
/// in `warnings` (naming `source` and the line) and skipped.
pub fn parse(data: &[u8], source: &str, warnings: &mut Vec<String>) -> Vec<String> {
    let sep = if data.contains(&0) { b'\0' } else { b'\n' };
    let mut out = Vec::new();
    for (i, raw) in data.split(|&b| b == sep).enumerate() {
        let at = format!("{source}:{}", i + 1);
        let Ok(entry) = std::str::from_utf8(raw) else {
            warnings.push(format!("{at}: not valid UTF-8; skipped"));
            continue;
        };
        let entry = if sep == b'\n' {
            entry.trim_end_matches('\r')
        } else {
            entry
        };
        if entry.trim().is_empty() {
            continue;
        }
        if entry.starts_with('/') {
            out.push(entry.to_string());
        } else {
            warnings.push(format!("{at}: {entry:?} is not an absolute path; skipped"));
        }
    }
    out
}

/// Reads the list at `path` (outside the root: the admin names it), or
/// stdin for `-`.
pub fn load(path: &Path, warnings: &mut Vec<String>) -> Result<Vec<String>> {
    let mut data = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_end(&mut data)
            .context("failed to read the file list from stdin")?;
        return Ok(parse(&data, "stdin", warnings));
    }
    data = std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    Ok(parse(&data, &path.display().to_string(), warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_entries_are_reported_and_skipped() {
        let mut w = Vec::new();
        let got = parse(b"/usr/lib/a.so\n\nrelative\n\xff\xfe\n/usr/bin/b\r\n", "list", &mut w);
        assert_eq!(got, ["/usr/lib/a.so", "/usr/bin/b"]);
        assert_eq!(
            w,
            [
                "list:3: \"relative\" is not an absolute path; skipped",
                "list:4: not valid UTF-8; skipped"
            ]
        );
        let got = parse(b"/a\0/b c\0", "x", &mut w);
        assert_eq!(got, ["/a", "/b c"]);
    }
}
