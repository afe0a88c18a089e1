//! The clr-service-restart symlink policy.
//!
//! A symlink named after a unit opts it in. Admin links (`/etc/...`) win
//! over distribution links (`/usr/share/...`). An admin link to
//! `/dev/null` denies the unit; a distribution link to `/dev/null` is
//! invalid and ignored with a warning, as in clr-service-restart.

use crate::core::unit_name;
use crate::system::sysroot::SysRoot;
use anyhow::{bail, Context, Result};
use std::io::ErrorKind;
use std::path::Path;

pub const ADMIN_DIR: &str = "/etc/restart-stale";
pub const DIST_DIR: &str = "/usr/share/restart-stale";
/// clr-service-restart's own directories, honoured for compatibility.
pub const CLR_ADMIN_DIR: &str = "/etc/clr-service-restart";
pub const CLR_DIST_DIR: &str = "/usr/share/clr-service-restart";

const DEV_NULL: &str = "/dev/null";

pub use crate::core::policy::{Entry, Policy, Verdict};

impl Policy {
    /// Loads the restart-stale directories, then clr-service-restart's, so
    /// that our own links win where both name a unit.
    pub fn load(root: &SysRoot) -> Result<Self> {
        let mut p = Policy::default();
        for dir in [ADMIN_DIR, CLR_ADMIN_DIR] {
            p.load_dir(root, dir, true)?;
        }
        for dir in [DIST_DIR, CLR_DIST_DIR] {
            p.load_dir(root, dir, false)?;
        }
        Ok(p)
    }

    fn load_dir(&mut self, root: &SysRoot, dir: &str, admin: bool) -> Result<()> {
        let path = root.path(dir);
        let entries = match std::fs::read_dir(&path) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("failed to list policy directory {}", path.display())),
        };
        let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
        names.sort();
        for name in names {
            let shown = Path::new(dir).join(&name);
            match self.classify(&path.join(&name), &shown, admin) {
                Ok(Some((unit, entry))) => {
                    let map = if admin { &mut self.admin } else { &mut self.dist };
                    map.entry(unit).or_insert(entry);
                }
                Ok(None) => {}
                Err(e) => self.warnings.push(format!("{e:#}")),
            }
        }
        Ok(())
    }

    fn classify(&self, path: &Path, shown: &Path, admin: bool) -> Result<Option<(String, Entry)>> {
        let name = shown.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            return Ok(None); // editor and install temporaries
        }
        let target = std::fs::read_link(path)
            .with_context(|| format!("ignoring policy entry {}: not a symlink", shown.display()))?;
        unit_name::validate(name).with_context(|| format!("ignoring policy link {}", shown.display()))?;
        let deny = target == Path::new(DEV_NULL);
        if deny && !admin {
            bail!(
                "ignoring policy link {}: links to /dev/null are only valid in /etc",
                shown.display()
            );
        }
        Ok(Some((
            name.to_string(),
            Entry {
                deny,
                link: shown.to_path_buf(),
            },
        )))
    }
}

/// The `allow`/`disallow`/`default` commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Allow,
    Disallow,
    Default,
}

/// Applies `cmd` to each unit's link in `admin_dir`. All names are checked
/// before anything is changed, so a typo leaves the directory untouched.
pub fn apply(root: &SysRoot, admin_dir: &str, cmd: Command, units: &[String]) -> Result<Vec<String>> {
    for u in units {
        unit_name::validate(u)?;
    }
    let dir = root.path(admin_dir);
    let mut done = Vec::new();
    for unit in units {
        let link = dir.join(unit);
        match cmd {
            Command::Default => match std::fs::remove_file(&link) {
                Ok(()) => done.push(format!("{unit}: removed {}", Path::new(admin_dir).join(unit).display())),
                Err(e) if e.kind() == ErrorKind::NotFound => done.push(format!("{unit}: already at the default")),
                Err(e) => return Err(e).with_context(|| format!("failed to remove {}", link.display())),
            },
            Command::Allow | Command::Disallow => {
                let target = if cmd == Command::Allow {
                    format!("/usr/lib/systemd/system/{unit}")
                } else {
                    DEV_NULL.to_string()
                };
                std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
                replace_symlink(&dir, unit, &target)?;
                let word = if cmd == Command::Allow { "allowed" } else { "disallowed" };
                done.push(format!("{unit}: {word}"));
            }
        }
    }
    Ok(done)
}

/// Creates the link under a temporary name and renames it into place, so
/// a reader never sees the unit without a link.
fn replace_symlink(dir: &Path, unit: &str, target: &str) -> Result<()> {
    let tmp = dir.join(format!(".{unit}.tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).with_context(|| format!("failed to create {}", tmp.display()))?;
    let dest = dir.join(unit);
    std::fs::rename(&tmp, &dest).with_context(|| format!("failed to create {}", dest.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn fixture() -> (tempfile::TempDir, SysRoot) {
        let d = tempfile::tempdir().unwrap();
        let r = SysRoot::new(d.path());
        for dir in [ADMIN_DIR, DIST_DIR] {
            std::fs::create_dir_all(r.path(dir)).unwrap();
        }
        (d, r)
    }

    #[test]
    fn admin_wins_and_dev_null_rules() {
        let (_d, r) = fixture();
        symlink("/lib/systemd/system/a.service", r.path(DIST_DIR).join("a.service")).unwrap();
        symlink("/dev/null", r.path(ADMIN_DIR).join("a.service")).unwrap();
        symlink("/lib/systemd/system/b.service", r.path(DIST_DIR).join("b.service")).unwrap();
        symlink("/dev/null", r.path(DIST_DIR).join("c.service")).unwrap();
        symlink("x", r.path(ADMIN_DIR).join("getty@.service")).unwrap();
        symlink("x", r.path(ADMIN_DIR).join("bad name")).unwrap();
        std::fs::write(r.path(ADMIN_DIR).join("plain.service"), "").unwrap();
        let p = Policy::load(&r).unwrap();
        assert!(matches!(p.verdict("a.service"), Verdict::DeniedByAdmin(_)));
        assert!(matches!(p.verdict("b.service"), Verdict::AllowedByDistribution(_)));
        assert_eq!(p.verdict("c.service"), Verdict::Unset);
        assert!(matches!(p.verdict("getty@tty1.service"), Verdict::AllowedByAdmin(_)));
        assert_eq!(p.warnings.len(), 3, "{:?}", p.warnings);
        assert!(p
            .warnings
            .iter()
            .any(|w| w.contains("c.service") && w.contains("/dev/null")));
        assert!(p.warnings.iter().any(|w| w.contains("bad name")));
        assert!(p
            .warnings
            .iter()
            .any(|w| w.contains("plain.service") && w.contains("not a symlink")));
    }

    #[test]
    fn clr_links_count_but_ours_win() {
        let (_d, r) = fixture();
        std::fs::create_dir_all(r.path(CLR_ADMIN_DIR)).unwrap();
        symlink("/dev/null", r.path(CLR_ADMIN_DIR).join("a.service")).unwrap();
        symlink("/dev/null", r.path(CLR_ADMIN_DIR).join("b.service")).unwrap();
        symlink("x", r.path(ADMIN_DIR).join("a.service")).unwrap();
        let p = Policy::load(&r).unwrap();
        assert!(matches!(p.verdict("a.service"), Verdict::AllowedByAdmin(_)));
        assert!(matches!(p.verdict("b.service"), Verdict::DeniedByAdmin(_)));
    }

    #[test]
    fn commands_maintain_links() {
        let (_d, r) = fixture();
        let units = vec!["x.service".to_string()];
        apply(&r, ADMIN_DIR, Command::Allow, &units).unwrap();
        assert!(matches!(
            Policy::load(&r).unwrap().verdict("x.service"),
            Verdict::AllowedByAdmin(_)
        ));
        apply(&r, ADMIN_DIR, Command::Disallow, &units).unwrap();
        assert!(matches!(
            Policy::load(&r).unwrap().verdict("x.service"),
            Verdict::DeniedByAdmin(_)
        ));
        apply(&r, ADMIN_DIR, Command::Default, &units).unwrap();
        assert_eq!(Policy::load(&r).unwrap().verdict("x.service"), Verdict::Unset);
        apply(&r, ADMIN_DIR, Command::Default, &units).unwrap();
    }

    #[test]
    fn bad_names_change_nothing() {
        let (_d, r) = fixture();
        for bad in ["../x", "", "a/b.service", "x.bogus"] {
            let units = vec!["ok.service".to_string(), bad.to_string()];
            let err = apply(&r, ADMIN_DIR, Command::Allow, &units).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
        assert_eq!(std::fs::read_dir(r.path(ADMIN_DIR)).unwrap().count(), 0);
    }
}
