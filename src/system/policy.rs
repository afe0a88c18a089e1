//! The clr-service-restart symlink policy.
//!
//! A symlink named after a unit opts it in. An admin link (`/etc/...`) to
//! `/dev/null` (absolute, or relative as `ln -sr` makes it) denies the
//! unit; a distribution link to `/dev/null` is invalid and ignored with a
//! warning, as in clr-service-restart.
//!
//! Links decide what gets restarted as root, so they count only where an
//! unprivileged user cannot have put them: a policy directory must be
//! owned by the trusted owner and not writable by group or others, and
//! each link owned by that owner. The trusted owner is root on `/`; under
//! a test or image root (`--root`) it is whoever owns that root directory,
//! so that tests run as an ordinary user (or `nobody`) build trusted
//! fixtures, and an image owned by root is judged as on its host.
//! Anything else is ignored with a warning that names the path and why.

use crate::core::policy::Level;
use crate::core::unit_name;
use crate::system::sysroot::SysRoot;
use anyhow::{bail, Context, Result};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;

pub const ADMIN_DIR: &str = "/etc/restart-stale";
pub const DIST_DIR: &str = "/usr/share/restart-stale";
/// clr-service-restart's own directories, honoured for compatibility.
pub const CLR_ADMIN_DIR: &str = "/etc/clr-service-restart";
pub const CLR_DIST_DIR: &str = "/usr/share/clr-service-restart";

/// The directories in the order they decide: admin before distribution,
/// and at each, restart-stale's own before clr-service-restart's.
/// `(directory, admin)`.
pub const ORDER: [(&str, bool); 4] = [
    (ADMIN_DIR, true),
    (CLR_ADMIN_DIR, true),
    (DIST_DIR, false),
    (CLR_DIST_DIR, false),
];

const DEV_NULL: &str = "/dev/null";

pub use crate::core::policy::{Entry, Policy, Verdict};

/// The uid that policy directories and links must belong to (see the
/// module documentation).
pub(crate) fn trusted_owner(root: &SysRoot) -> Result<u32> {
    if root.is_host() {
        return Ok(0);
    }
    let md = std::fs::metadata(root.root()).with_context(|| format!("failed to read {}", root.root().display()))?;
    Ok(md.uid())
}

/// Why the directory `md` describes is not to be trusted, if it is not.
fn untrusted_dir(md: &std::fs::Metadata, owner: u32) -> Option<String> {
    if md.uid() != owner {
        return Some(format!("owned by uid {}, not {owner}", md.uid()));
    }
    if md.mode() & 0o022 != 0 {
        return Some(format!("writable by group or others (mode {:o})", md.mode() & 0o7777));
    }
    None
}

impl Policy {
    /// Loads the directories in [`ORDER`], so that where several name a
    /// unit the earlier one decides.
    pub fn load(root: &SysRoot) -> Result<Self> {
        Self::load_trusting(root, trusted_owner(root)?)
    }

    /// [`Policy::load`] with `owner` as the trusted owner.
    fn load_trusting(root: &SysRoot, owner: u32) -> Result<Self> {
        let mut p = Policy::default();
        for (dir, admin) in ORDER {
            let level = p.load_dir(root, dir, admin, owner)?;
            p.levels.push(level);
        }
        Ok(p)
    }

    fn load_dir(&mut self, root: &SysRoot, dir: &str, admin: bool, owner: u32) -> Result<Level> {
        let mut level = Level {
            admin,
            ..Level::default()
        };
        let path = root.path(dir);
        // Following a symlinked directory: what matters is who can write
        // where the links are.
        match std::fs::metadata(&path) {
            Ok(md) => {
                if let Some(why) = untrusted_dir(&md, owner) {
                    self.warnings.push(format!("ignoring policy directory {dir}: {why}"));
                    return Ok(level);
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(level),
            Err(e) => return Err(e).with_context(|| format!("failed to read policy directory {}", path.display())),
        }
        let entries = match std::fs::read_dir(&path) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(level),
            Err(e) => return Err(e).with_context(|| format!("failed to list policy directory {}", path.display())),
        };
        let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
        names.sort();
        for name in names {
            let shown = Path::new(dir).join(&name);
            match classify(root, &path.join(&name), &shown, admin, owner) {
                Ok(Some((unit, entry))) => {
                    level.entries.entry(unit).or_insert(entry);
                }
                Ok(None) => {}
                Err(e) => self.warnings.push(format!("{e:#}")),
            }
        }
        Ok(level)
    }
}

/// The unit a directory entry names and what its link says; `Err` (a
/// warning) for an entry that is no valid, trusted link.
fn classify(root: &SysRoot, path: &Path, shown: &Path, admin: bool, owner: u32) -> Result<Option<(String, Entry)>> {
    let name = shown.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.starts_with('.') {
        return Ok(None); // editor and install temporaries
    }
    let target = std::fs::read_link(path)
        .with_context(|| format!("ignoring policy entry {}: not a symlink", shown.display()))?;
    unit_name::validate(name).with_context(|| format!("ignoring policy link {}", shown.display()))?;
    let md = std::fs::symlink_metadata(path).with_context(|| format!("failed to read {}", shown.display()))?;
    if md.uid() != owner {
        bail!(
            "ignoring policy link {}: owned by uid {}, not {owner}",
            shown.display(),
            md.uid()
        );
    }
    let deny = links_to_dev_null(root, shown, &target);
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

/// Whether the link `shown` (its path inside the root), whose target is
/// `target`, names `/dev/null`: a relative target (`ln -sr` writes
/// `../../dev/null`) counts from the link's directory, and directory links
/// on the way are followed, all inside the root. The last component is
/// not followed: a link to a masked unit file is still an allow link, as
/// in clr-service-restart, which compares the target with `/dev/null`.
fn links_to_dev_null(root: &SysRoot, shown: &Path, target: &Path) -> bool {
    if target == Path::new(DEV_NULL) {
        return true;
    }
    let full = shown.parent().unwrap_or(Path::new("/")).join(target);
    let (Some(dir), Some(name)) = (full.parent(), full.file_name()) else {
        return false;
    };
    // `..` as the last component has no file name: never /dev/null.
    root.resolve(dir).is_some_and(|d| d.join(name) == Path::new(DEV_NULL))
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
pub(crate) fn apply(root: &SysRoot, admin_dir: &str, cmd: Command, units: &[String]) -> Result<Vec<String>> {
    for u in units {
        unit_name::validate(u)?;
    }
    let dir = root.path(admin_dir);
    let mut done = Vec::new();
    for unit in units {
        let link = dir.join(unit);
        match cmd {
            Command::Default => {
                let shown = Path::new(admin_dir).join(unit);
                let removed = match std::fs::remove_file(&link) {
                    Ok(()) => true,
                    Err(e) if e.kind() == ErrorKind::NotFound => false,
                    Err(e) => return Err(e).with_context(|| format!("failed to remove {}", link.display())),
                };
                let line = match (removed, what_decides(root, unit)) {
                    (true, decides) => format!(
                        "{unit}: removed {}; now {}",
                        shown.display(),
                        decides.as_deref().unwrap_or("not allowed: no policy link")
                    ),
                    (false, None) => format!("{unit}: already at the default (not allowed: no policy link)"),
                    (false, Some(decides)) => {
                        format!("{unit}: no link {} to remove; still {decides}", shown.display())
                    }
                };
                done.push(line);
            }
            Command::Allow | Command::Disallow => {
                let target = if cmd == Command::Allow {
                    format!("/usr/lib/systemd/system/{unit}")
                } else {
                    DEV_NULL.to_string()
                };
                // 0755 whatever the umask says: a group-writable directory
                // would be ignored as untrusted.
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(&dir)
                    .with_context(|| format!("failed to create {}", dir.display()))?;
                replace_symlink(&dir, unit, &target)?;
                let word = if cmd == Command::Allow { "allowed" } else { "disallowed" };
                let ours = Path::new(admin_dir).join(unit);
                match overruled(root, unit, &ours) {
                    None => done.push(format!("{unit}: {word}")),
                    Some(decides) => done.push(format!(
                        "{unit}: {word} by {}, but that link does not decide: {decides}",
                        ours.display()
                    )),
                }
            }
        }
    }
    Ok(done)
}

/// What decides for `unit` when it is not the link `ours` just written:
/// a link in a directory that comes first (our own, for the
/// clr-service-restart commands), or nothing because `ours` is not
/// trusted, with the warnings that say why.
fn overruled(root: &SysRoot, unit: &str, ours: &Path) -> Option<String> {
    let p = match Policy::load(root) {
        Ok(p) => p,
        Err(e) => return Some(format!("undetermined: the policy could not be read: {e:#}")),
    };
    let verdict = p.verdict(unit);
    let decides = match &verdict {
        Verdict::AllowedByAdmin(l) | Verdict::AllowedByDistribution(l) | Verdict::DeniedByAdmin(l) => Some(l),
        Verdict::Unset => None,
    };
    if decides.is_some_and(|l| l == ours) {
        return None;
    }
    let dir = ours.parent().unwrap_or(Path::new("/")).to_string_lossy().into_owned();
    let why: Vec<&str> = p
        .warnings
        .iter()
        .filter(|w| w.contains(&format!("{dir}:")) || w.contains(&format!("{}:", ours.display())))
        .map(String::as_str)
        .collect();
    Some(match why.is_empty() {
        true => verdict.describe(),
        false => format!("{} ({})", verdict.describe(), why.join("; ")),
    })
}

/// What decides for `unit` once our link is gone: another directory's
/// link (a clr-service-restart admin link, our own template link, a
/// distribution link) may still allow or deny it, and "at the default"
/// alone would hide that.
/// `None` when no link decides.
fn what_decides(root: &SysRoot, unit: &str) -> Option<String> {
    match Policy::load(root) {
        Ok(p) => match p.verdict(unit) {
            Verdict::Unset => None,
            v => Some(v.describe()),
        },
        Err(e) => Some(format!("undetermined: the policy could not be read: {e:#}")),
    }
}

/// Creates the link under a random temporary name and renames it into
/// place, so a reader never sees the unit without a link, and nobody can
/// have guessed the name beforehand.
fn replace_symlink(dir: &Path, unit: &str, target: &str) -> Result<()> {
    crate::system::safe_write::replace_symlink(dir, std::ffi::OsStr::new(unit), target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn fixture() -> (tempfile::TempDir, SysRoot) {
        let d = tempfile::tempdir().unwrap();
        let r = SysRoot::new(d.path());
        for dir in [ADMIN_DIR, DIST_DIR] {
            mkdir(&r, dir);
        }
        (d, r)
    }

    /// A policy directory that is trusted whatever the umask.
    fn mkdir(r: &SysRoot, dir: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(r.path(dir)).unwrap();
        std::fs::set_permissions(r.path(dir), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// The temporary name was once `.UNIT.tmpPID`: whoever could guess it
    /// could hold it (here with a directory, which no unlink removes) and
    /// make every `allow` fail.
    #[test]
    fn a_name_held_at_the_old_temporary_name_does_not_stop_a_link() {
        let (_d, r) = fixture();
        let held = r.path(ADMIN_DIR).join(format!(".x.service.tmp{}", std::process::id()));
        std::fs::create_dir(&held).unwrap();
        let x = vec!["x.service".to_string()];
        assert_eq!(
            apply(&r, ADMIN_DIR, Command::Allow, &x).unwrap(),
            ["x.service: allowed"]
        );
        let link = std::fs::read_link(r.path(ADMIN_DIR).join("x.service")).unwrap();
        assert_eq!(link, Path::new("/usr/lib/systemd/system/x.service"));
        assert!(held.is_dir());
    }

    #[test]
    fn our_deny_on_a_template_beats_clr_instance_links() {
        let (_d, r) = fixture();
        for dir in [CLR_ADMIN_DIR, CLR_DIST_DIR] {
            mkdir(&r, dir);
            symlink(
                "/usr/lib/systemd/system/foo@.service",
                r.path(dir).join("foo@bar.service"),
            )
            .unwrap();
        }
        symlink("/dev/null", r.path(ADMIN_DIR).join("foo@.service")).unwrap();
        // Below ours, clr's admin links still beat every distribution link.
        symlink("/dev/null", r.path(CLR_ADMIN_DIR).join("d@.service")).unwrap();
        symlink(
            "/usr/lib/systemd/system/d@.service",
            r.path(DIST_DIR).join("d@x.service"),
        )
        .unwrap();
        let p = Policy::load(&r).unwrap();
        assert_eq!(
            p.verdict("foo@bar.service"),
            Verdict::DeniedByAdmin("/etc/restart-stale/foo@.service".into())
        );
        assert_eq!(
            p.verdict("d@x.service"),
            Verdict::DeniedByAdmin("/etc/clr-service-restart/d@.service".into())
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn a_relative_link_to_dev_null_denies() {
        let (_d, r) = fixture();
        mkdir(&r, CLR_ADMIN_DIR);
        // What `ln -sr /dev/null /etc/restart-stale/a.service` writes.
        symlink("../../dev/null", r.path(ADMIN_DIR).join("a.service")).unwrap();
        symlink("./../../../../dev/./null", r.path(CLR_ADMIN_DIR).join("b.service")).unwrap();
        symlink("../../../dev/null", r.path(DIST_DIR).join("c.service")).unwrap();
        // Only the resolved target counts: this is no /dev/null.
        symlink("../dev/null", r.path(ADMIN_DIR).join("e.service")).unwrap();
        // Nor is a link to a masked unit file: it names the unit file.
        std::fs::create_dir_all(r.path("etc/systemd/system")).unwrap();
        symlink("/dev/null", r.path("etc/systemd/system/m.service")).unwrap();
        symlink("../systemd/system/m.service", r.path(ADMIN_DIR).join("m.service")).unwrap();
        let p = Policy::load(&r).unwrap();
        assert!(matches!(p.verdict("a.service"), Verdict::DeniedByAdmin(_)));
        assert!(matches!(p.verdict("b.service"), Verdict::DeniedByAdmin(_)));
        assert_eq!(p.verdict("c.service"), Verdict::Unset, "invalid in /usr/share");
        assert!(p.warnings.iter().any(|w| w.contains("c.service")), "{:?}", p.warnings);
        assert!(matches!(p.verdict("e.service"), Verdict::AllowedByAdmin(_)));
        assert!(matches!(p.verdict("m.service"), Verdict::AllowedByAdmin(_)));
    }

    #[test]
    fn untrusted_directories_and_links_are_ignored_with_a_warning() {
        use std::os::unix::fs::PermissionsExt;
        let (_d, r) = fixture();
        symlink("/dev/null", r.path(ADMIN_DIR).join("a.service")).unwrap();
        symlink("x", r.path(DIST_DIR).join("b.service")).unwrap();
        std::fs::set_permissions(r.path(DIST_DIR), std::fs::Permissions::from_mode(0o775)).unwrap();
        let p = Policy::load(&r).unwrap();
        assert!(matches!(p.verdict("a.service"), Verdict::DeniedByAdmin(_)));
        assert_eq!(p.verdict("b.service"), Verdict::Unset);
        assert_eq!(
            p.warnings,
            ["ignoring policy directory /usr/share/restart-stale: writable by group or others (mode 775)"]
        );
        // Owned by someone else than the trusted owner (here: the test
        // pretends another uid is trusted, as a test cannot chown).
        let me = trusted_owner(&r).unwrap();
        let other = me.wrapping_add(1);
        let p = Policy::load_trusting(&r, other).unwrap();
        assert_eq!(p.verdict("a.service"), Verdict::Unset);
        assert!(
            p.warnings.contains(&format!(
                "ignoring policy directory /etc/restart-stale: owned by uid {me}, not {other}"
            )),
            "{:?}",
            p.warnings
        );
        // The root directory's owner is trusted in a test root, root on /.
        assert_eq!(trusted_owner(&SysRoot::default()).unwrap(), 0);
        assert_eq!(me, std::fs::metadata(r.root()).unwrap().uid());
    }

    #[test]
    fn an_untrusted_link_in_a_trusted_directory_is_ignored() {
        let (_d, r) = fixture();
        symlink("/dev/null", r.path(ADMIN_DIR).join("a.service")).unwrap();
        let me = trusted_owner(&r).unwrap();
        let md = std::fs::symlink_metadata(r.path(ADMIN_DIR).join("a.service")).unwrap();
        let dir = r.path(ADMIN_DIR);
        let shown = Path::new(ADMIN_DIR).join("a.service");
        let err = classify(&r, &dir.join("a.service"), &shown, true, md.uid() + 1).unwrap_err();
        assert!(
            err.to_string().contains(&format!(
                "ignoring policy link /etc/restart-stale/a.service: owned by uid {me}"
            )),
            "{err}"
        );
    }

    #[test]
    fn allow_says_when_its_link_does_not_decide() {
        use std::os::unix::fs::PermissionsExt;
        let (_d, r) = fixture();
        let x = vec!["x.service".to_string()];
        apply(&r, ADMIN_DIR, Command::Disallow, &x).unwrap();
        // clr-service-restart's allow, below our own deny.
        assert_eq!(
            apply(&r, CLR_ADMIN_DIR, Command::Allow, &x).unwrap(),
            [
                "x.service: allowed by /etc/clr-service-restart/x.service, but that link does not decide: \
              denied by admin: /etc/restart-stale/x.service"
            ]
        );
        assert_eq!(
            apply(&r, ADMIN_DIR, Command::Allow, &x).unwrap(),
            ["x.service: allowed"]
        );
        // A directory others can write to decides nothing.
        std::fs::set_permissions(r.path(ADMIN_DIR), std::fs::Permissions::from_mode(0o777)).unwrap();
        let y = vec!["y.service".to_string()];
        assert_eq!(
            apply(&r, ADMIN_DIR, Command::Disallow, &y).unwrap(),
            [
                "y.service: disallowed by /etc/restart-stale/y.service, but that link does not decide: \
              not allowed: no policy link (ignoring policy directory /etc/restart-stale: \
              writable by group or others (mode 777))"
            ]
        );
    }

    #[test]
    fn default_says_what_still_decides() {
        let (_d, r) = fixture();
        mkdir(&r, CLR_ADMIN_DIR);
        symlink("/dev/null", r.path(CLR_ADMIN_DIR).join("x.service")).unwrap();
        let units = vec!["x.service".to_string(), "y.service".to_string()];
        assert_eq!(
            apply(&r, ADMIN_DIR, Command::Default, &units).unwrap(),
            [
                "x.service: no link /etc/restart-stale/x.service to remove; \
                 still denied by admin: /etc/clr-service-restart/x.service",
                "y.service: already at the default (not allowed: no policy link)",
            ]
        );
        apply(&r, ADMIN_DIR, Command::Allow, &units).unwrap();
        assert_eq!(
            apply(&r, ADMIN_DIR, Command::Default, &units).unwrap(),
            [
                "x.service: removed /etc/restart-stale/x.service; \
                 now denied by admin: /etc/clr-service-restart/x.service",
                "y.service: removed /etc/restart-stale/y.service; now not allowed: no policy link",
            ]
        );
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
        mkdir(&r, CLR_ADMIN_DIR);
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
