//! The installed changelogs of upgraded packages, read through the root,
//! and the fixes of each stale unit derived from them (docs/cves.md).
//!
//! Debian ships `/usr/share/doc/PKG/changelog.Debian.gz` and, for a
//! binNMU, `changelog.Debian.<arch>.gz` beside it; both are read, each
//! decompressed up to [`MAX_TEXT`]. A container built with
//! `path-exclude=/usr/share/doc/*` has neither: its fixes are unknown,
//! never guessed.

use super::dpkg;
use crate::core::changed::normalize;
use crate::core::changelog::{self, deb_cmp, Parsed};
use crate::core::fixes::{self, ByUnit, Fix, Upgrade, Upgrades};
use crate::core::plan::Plan;
use crate::system::sysroot::SysRoot;
use anyhow::{bail, Context, Result};
use flate2::read::MultiGzDecoder;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// The most bytes of decompressed changelog read: glibc's, the longest
/// of a Debian system, is about 1 MiB; past this a file is cut off and
/// its fixes marked incomplete when the range reaches that far.
pub const MAX_TEXT: u64 = 8 << 20;

/// The most bytes of a compressed changelog file; a bomb stops at
/// [`MAX_TEXT`] anyway, this only refuses absurd files at once.
const MAX_FILE: u64 = 4 << 20;

/// Reads one changelog: gzip'd when the name ends in `.gz`. `Ok(None)`
/// when the file is not there; the text is cut to [`MAX_TEXT`] bytes,
/// and the flag says it was.
pub(crate) fn read_text(root: &SysRoot, path: &str) -> Result<Option<(String, bool)>> {
    let Some(real) = root.resolve(Path::new(path)) else {
        bail!("{path}: too many symbolic links");
    };
    let full = root.path(&real);
    let file = match std::fs::File::open(&full) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("failed to open {path}")),
    };
    let meta = file.metadata().with_context(|| format!("failed to stat {path}"))?;
    if !meta.is_file() {
        bail!("{path} is not a regular file");
    }
    if meta.len() > MAX_FILE {
        bail!("{path} is larger than {MAX_FILE} bytes");
    }
    let mut data = Vec::new();
    let reader: Box<dyn Read> = if path.ends_with(".gz") {
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    reader
        .take(MAX_TEXT + 1)
        .read_to_end(&mut data)
        .with_context(|| format!("failed to read {path}"))?;
    let cut = data.len() as u64 > MAX_TEXT;
    data.truncate(MAX_TEXT as usize);
    Ok(Some((String::from_utf8_lossy(&data).into_owned(), cut)))
}

/// The Debian changelog(s) of a package, the binNMU one first; `None`
/// when none is installed.
pub fn debian(root: &SysRoot, up: &Upgrade) -> Result<Option<Parsed>> {
    let dir = format!("/usr/share/doc/{}", up.name);
    let mut names = Vec::new();
    if let Some(arch) = &up.arch {
        names.push(format!("{dir}/changelog.Debian.{arch}.gz"));
    }
    names.push(format!("{dir}/changelog.Debian.gz"));
    let mut all: Option<Parsed> = None;
    for name in names {
        let Some((text, cut)) = read_text(root, &name)? else {
            continue;
        };
        let mut p = changelog::parse_debian(&text);
        if cut && p.stopped.is_none() {
            p.stopped = Some(format!("{name} is longer than {MAX_TEXT} bytes"));
        }
        let merged = all.get_or_insert_with(Parsed::default);
        merged.entries.append(&mut p.entries);
        merged.stopped = merged.stopped.take().or(p.stopped);
    }
    Ok(all)
}

/// The fix of one Debian package's upgrade.
pub(crate) fn debian_fix(root: &SysRoot, up: &Upgrade) -> Fix {
    match debian(root, up) {
        Ok(Some(p)) => fixes::summarize(up, &p, deb_cmp),
        Ok(None) => Fix::unknown(up, "no changelog installed"),
        Err(e) => Fix::unknown(up, format!("{e:#}")),
    }
}

/// The fixes of every unit that runs old files of `ups`' packages: each
/// stale file (or the library it was counted for) is looked up in the
/// packages' current dpkg lists, and each package's changelog is read
/// once. Removed packages fixed nothing and are left out.
pub(crate) fn annotate(root: &SysRoot, plan: &Plan, ups: &Upgrades) -> ByUnit {
    if fixes::stale_units(plan).next().is_none() || ups.packages.is_empty() {
        return ByUnit::new();
    }
    let owner = deb_owners(root, &ups.packages);
    let mut cache: HashMap<usize, Fix> = HashMap::new();
    fixes::by_unit(plan, &owner, |i| {
        cache
            .entry(i)
            .or_insert_with(|| debian_fix(root, &ups.packages[i]))
            .clone()
    })
}

/// Normalised path → index of the upgraded (not removed) package whose
/// current dpkg list names it.
fn deb_owners(root: &SysRoot, packages: &[Upgrade]) -> HashMap<String, usize> {
    let mut owner = HashMap::new();
    for (i, up) in packages.iter().enumerate().filter(|(_, u)| u.to.is_some()) {
        let archs: Vec<&str> = up.arch.as_deref().into_iter().collect();
        match dpkg::package_files(root, &up.name, &archs) {
            Ok(Some(files)) => files.iter().for_each(|f| {
                owner.entry(normalize(f)).or_insert(i);
            }),
            Ok(None) => {}
            Err(e) => log::debug!("{e:#}"),
        }
    }
    owner
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Write;

    fn gz(text: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text).unwrap();
        e.finish().unwrap()
    }

    fn up(name: &str, from: &str, to: &str) -> Upgrade {
        Upgrade {
            name: name.into(),
            arch: Some("amd64".into()),
            from: Some(from.into()),
            to: Some(to.into()),
        }
    }

    #[test]
    fn a_missing_changelog_is_unknown() {
        let (_t, root) = SysRoot::scratch();
        let f = debian_fix(&root, &up("libx1", "1", "2"));
        assert_eq!(f.unknown.as_deref(), Some("no changelog installed"));
    }

    #[test]
    fn a_binnmu_changelog_is_read_with_the_source_one() {
        let (_t, root) = SysRoot::scratch();
        let dir = root.path("/usr/share/doc/libx1");
        fs::create_dir_all(&dir).unwrap();
        let main = "x (2-1) bookworm-security; urgency=high\n\n  * CVE-2025-0002\n\n -- A <a@b>  Mon, 01 Jan 2025 00:00:00 +0000\n";
        let bin = "x (2-1+b1) bookworm; urgency=low, binary-only=yes\n\n  * Rebuild.\n\n -- B <b@b>  Mon, 01 Jan 2025 00:00:00 +0000\n";
        fs::write(dir.join("changelog.Debian.gz"), gz(main.as_bytes())).unwrap();
        fs::write(dir.join("changelog.Debian.amd64.gz"), gz(bin.as_bytes())).unwrap();
        let f = debian_fix(&root, &up("libx1", "1-1", "2-1+b1"));
        assert_eq!(f.cves, ["CVE-2025-0002"]);
        assert!(f.security);
        assert_eq!(f.urgency.as_deref(), Some("high"));
    }

    #[test]
    fn a_decompression_bomb_is_cut_at_the_cap() {
        let (_t, root) = SysRoot::scratch();
        let dir = root.path("/usr/share/doc/libx1");
        fs::create_dir_all(&dir).unwrap();
        let mut text = b"x (2) sid; urgency=low\n".to_vec();
        text.resize(MAX_TEXT as usize + 4096, b' ');
        fs::write(dir.join("changelog.Debian.gz"), gz(&text)).unwrap();
        let (t, cut) = read_text(&root, "/usr/share/doc/libx1/changelog.Debian.gz")
            .unwrap()
            .unwrap();
        assert!(cut);
        assert_eq!(t.len() as u64, MAX_TEXT);
    }

    #[test]
    fn a_corrupt_gzip_is_an_unknown_naming_the_file() {
        let (_t, root) = SysRoot::scratch();
        let dir = root.path("/usr/share/doc/libx1");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("changelog.Debian.gz"), b"\x1f\x8bnot really").unwrap();
        let f = debian_fix(&root, &up("libx1", "1", "2"));
        assert!(f.unknown.unwrap().contains("changelog.Debian.gz"));
    }
}
