//! File lists of installed rpm packages, from the rpmdb through the
//! system's own `rpm -ql` (the rpmdb format is rpm's business).
//!
//! Only `/usr/bin/rpm` is ever run, with package names taken from the
//! package manager's history database, each checked to be a plain NEVRA
//! (no option-like or blank names), and without a shell.

use crate::system::sysroot::SysRoot;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::{Command, Stdio};

/// The rpm binary of the running system, never one under the root.
pub const RPM: &str = "/usr/bin/rpm";

/// How many packages one `rpm -ql` call gets.
const BATCH: usize = 200;

/// What the rpmdb said about a batch of packages.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Listing {
    pub files: Vec<String>,
    /// Packages rpm reports as not installed (removed since).
    pub not_installed: Vec<String>,
    /// Output lines that were neither.
    pub unexpected: Vec<String>,
}

/// The boundary to the rpmdb; tests use a fake.
pub trait FileLister {
    /// The files of the installed packages `nevras` under `root`.
    fn list(&self, root: &SysRoot, nevras: &[String]) -> Result<Listing>;
}

/// `rpm -ql --root ROOT NEVRA...`.
pub struct RpmCommand;

impl FileLister for RpmCommand {
    fn list(&self, root: &SysRoot, nevras: &[String]) -> Result<Listing> {
        list_with(Path::new(RPM), root, nevras)
    }
}

/// `PROGRAM -ql --root ROOT NEVRA...` in batches: [`RpmCommand`] with
/// another program, for tests that stand in for rpm.
pub fn list_with(program: &Path, root: &SysRoot, nevras: &[String]) -> Result<Listing> {
    let mut all = Listing::default();
    for batch in nevras.chunks(BATCH) {
        let l = run_rpm(program, root, batch)?;
        all.files.extend(l.files);
        all.not_installed.extend(l.not_installed);
        all.unexpected.extend(l.unexpected);
    }
    Ok(all)
}

fn run_rpm(program: &Path, root: &SysRoot, nevras: &[String]) -> Result<Listing> {
    if let Some(bad) = nevras.iter().find(|n| !safe_argument(n)) {
        bail!("refusing to pass {bad:?} to rpm: not a package name");
    }
    let out = Command::new(program)
        .arg("-ql")
        .arg("--root")
        .arg(root.root())
        .args(nevras)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("failed to run {} to list package files", program.display()))?;
    let listing = parse_ql(&String::from_utf8_lossy(&out.stdout));
    // rpm's exit status counts the packages not found; anything else
    // without any output is a failure (no rpmdb, unreadable rpmdb).
    if !out.status.success() && listing.files.is_empty() && listing.not_installed.is_empty() {
        bail!(
            "{} -ql failed ({}): {}",
            program.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(listing)
}

/// A NEVRA we are willing to put on rpm's command line.
pub fn safe_argument(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && s.bytes()
            .all(|c| c.is_ascii_graphic() && !b"'\"\\`$%;|&<>*?[]{}()".contains(&c))
}

/// `rpm -ql` output: absolute paths, `(contains no files)`, and
/// `package X is not installed` (with `LC_ALL=C`).
pub fn parse_ql(stdout: &str) -> Listing {
    let mut l = Listing::default();
    for line in stdout.lines() {
        if line.starts_with('/') {
            l.files.push(line.to_string());
        } else if let Some(p) = line
            .strip_prefix("package ")
            .and_then(|r| r.strip_suffix(" is not installed"))
        {
            l.not_installed.push(p.to_string());
        } else if line != "(contains no files)" && !line.trim().is_empty() {
            l.unexpected.push(line.to_string());
        }
    }
    l
}

/// `name-version-release.arch`: rpm's query form. The epoch is left out;
/// two installed packages never differ in the epoch alone.
pub fn nevra(name: &str, version: &str, release: &str, arch: &str) -> String {
    format!("{name}-{version}-{release}.{arch}")
}

/// `name-[epoch:]version-release.arch` → `(name, evr, arch)`, with a zero
/// epoch left out of `evr`.
pub fn split_nevra(s: &str) -> Option<(&str, String, &str)> {
    let (nevr, arch) = s.rsplit_once('.')?;
    let (nev, release) = nevr.rsplit_once('-')?;
    let (name, ev) = nev.rsplit_once('-')?;
    if [name, ev, release, arch].iter().any(|p| p.is_empty()) {
        return None;
    }
    let ev = ev.strip_prefix("0:").unwrap_or(ev);
    Some((name, format!("{ev}-{release}"), arch))
}

/// Names a stand-in for rpm in tests. Honoured only with a root other
/// than `/`: on a real system we run the system's `/usr/bin/rpm`, never
/// a program an environment variable names.
pub const RPM_ENV: &str = "RESTART_STALE_RPM";

/// The system's rpm, or in a test root the stand-in.
pub fn lister(root: &SysRoot) -> Box<dyn FileLister> {
    match std::env::var_os(RPM_ENV) {
        Some(p) if !root.is_host() => Box::new(StandIn(std::path::PathBuf::from(p))),
        _ => Box::new(RpmCommand),
    }
}

struct StandIn(std::path::PathBuf);

impl FileLister for StandIn {
    fn list(&self, root: &SysRoot, nevras: &[String]) -> Result<Listing> {
        list_with(&self.0, root, nevras)
    }
}

/// The form rpm's queries take: the NEVRA without its epoch. Two
/// installed packages never differ in the epoch alone.
pub fn query_form(nevra: &str) -> String {
    let Some((nevr, arch)) = nevra.rsplit_once('.') else {
        return nevra.to_string();
    };
    let Some((nev, release)) = nevr.rsplit_once('-') else {
        return nevra.to_string();
    };
    let Some((name, ev)) = nev.rsplit_once('-') else {
        return nevra.to_string();
    };
    let v = match ev.split_once(':') {
        Some((e, v)) if !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit()) => v,
        _ => ev,
    };
    format!("{name}-{v}-{release}.{arch}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rpm_ql_output() {
        let out = "/usr/lib64/libfoo.so.1\n/usr/share/doc/foo\n(contains no files)\n\
                   package bar-1.0-1.x86_64 is not installed\nerror: odd\n";
        let l = parse_ql(out);
        assert_eq!(l.files, ["/usr/lib64/libfoo.so.1", "/usr/share/doc/foo"]);
        assert_eq!(l.not_installed, ["bar-1.0-1.x86_64"]);
        assert_eq!(l.unexpected, ["error: odd"]);
    }

    #[test]
    fn only_plain_names_reach_rpm() {
        assert!(safe_argument("glibc-2.40-3.fc41.x86_64"));
        assert!(safe_argument("libstdc++-14.2.1-3.fc41.x86_64"));
        assert!(safe_argument("vim-enhanced-9.1.825-1.fc41.x86_64"));
        for bad in [
            "",
            "-e",
            "--eval=%{lua:x}",
            "a b",
            "a\nb",
            "$(x)",
            "a;b",
            "*",
            "%{lua:x}",
        ] {
            assert!(!safe_argument(bad), "{bad:?}");
        }
        assert_eq!(nevra("bash", "5.2.26", "3.fc41", "x86_64"), "bash-5.2.26-3.fc41.x86_64");
    }

    #[test]
    fn refuses_unsafe_names_before_running_anything() {
        let err = RpmCommand
            .list(&SysRoot::default(), &["ok-1-1.x86_64".into(), "--eval=x".into()])
            .unwrap_err();
        assert!(err.to_string().contains("--eval=x"), "{err}");
    }
}
