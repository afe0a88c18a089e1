//! What a `swupd update` changed, for the clr-service-restart personality
//! ([`crate::cli::clr`]).
//!
//! swupd runs `/usr/bin/clr-service-restart` with no arguments after an
//! update (swupd-client `scripts.c`, `update_triggers`) and tells it
//! nothing, not even the version it came from. So we keep the version we
//! last acted at in [`STATE_FILE`]. Going from that version A to the
//! installed version B (`VERSION_ID` in `/usr/lib/os-release`):
//!
//! - every entry of B's manifests with `last_change > A` changed (deleted
//!   files stay listed, flagged `d`); [`crate::managers::swupd::manifests::derive`];
//! - every path of A's manifests that B's no longer list at all was
//!   removed with its bundle.
//!
//! Without a record of A, with A not older than B (a `bundle-add`, a
//! `repair`, a downgrade), or without B's manifests, every stale mapping
//! counts, as in clr-service-restart.

pub mod manifests;

use crate::core::changed::ChangedSet;
use crate::exit::Outcome;
use crate::replay::Replay;
use crate::run::{self, Mode, Options};
use crate::system::safe_write;
use crate::system::sysroot::SysRoot;
use anyhow::{bail, Context, Result};
use manifests::Entry;
use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;

/// The OS version restart-stale last acted at.
pub const STATE_FILE: &str = "/var/lib/restart-stale/swupd-version";

/// What a run compares against.
#[derive(Debug, PartialEq, Eq)]
pub enum Basis {
    /// An update from `from` to `to`: only these files count.
    Update {
        from: u32,
        to: u32,
        set: ChangedSet,
        /// Manifests read (of version `to`).
        manifests: usize,
        /// Paths only version `from` listed.
        dropped: usize,
    },
    /// Every stale mapping counts, for this reason.
    Everything(String),
}

/// The basis for a run, and the installed version when known.
pub(crate) fn basis(root: &SysRoot, warnings: &mut Vec<String>) -> (Basis, Option<u32>) {
    let current = match manifests::current_version(root) {
        Ok(v) => v,
        Err(e) => return (Basis::Everything(format!("{e:#}")), None),
    };
    let from = match read_state(root) {
        Ok(Some(v)) => v,
        Ok(None) => {
            let why = format!("no record of the version before {current} ({STATE_FILE} is missing)");
            return (Basis::Everything(why), Some(current));
        }
        Err(e) => return (Basis::Everything(format!("{e:#}")), Some(current)),
    };
    if from >= current {
        let why = format!("the last run was at version {from}, the installed version is {current}");
        return (Basis::Everything(why), Some(current));
    }
    match update(root, from, current, warnings) {
        Ok(b) => (b, Some(current)),
        Err(e) => (Basis::Everything(format!("{e:#}")), Some(current)),
    }
}

fn update(root: &SysRoot, from: u32, to: u32, warnings: &mut Vec<String>) -> Result<Basis> {
    let up = manifests::derive(root, from, warnings)?;
    let mut set: ChangedSet = up.paths.iter().collect();
    let bundles = manifests::installed_bundles(root);
    // derive() has read these already and reported their problems.
    let new_paths: BTreeSet<String> = entries(root, to, bundles.as_ref(), &mut Vec::new())?
        .into_iter()
        .map(|e| e.path)
        .collect();
    let mut dropped = 0;
    // A's manifests may be gone from the cache; then B's deleted entries
    // are all there is.
    for e in entries(root, from, None, warnings).unwrap_or_default() {
        if !matches!(e.kind, b'D' | b'M') && !new_paths.contains(&e.path) {
            set.insert(&e.path);
            dropped += 1;
        }
    }
    Ok(Basis::Update {
        from,
        to,
        set,
        manifests: up.manifests.len(),
        dropped,
    })
}

/// Every entry of `version`'s manifests (of `bundles`, or all).
fn entries(
    root: &SysRoot,
    version: u32,
    bundles: Option<&BTreeSet<String>>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Entry>> {
    let dirs = manifests::manifest_dirs(root, version);
    if dirs.is_empty() {
        bail!("no manifests of version {version}");
    }
    let mut all = Vec::new();
    for dir in &dirs {
        for (shown, path) in manifests::manifest_files(root, dir, bundles)? {
            match std::fs::read(&path) {
                Ok(d) => {
                    all.extend(manifests::parse(&String::from_utf8_lossy(&d), &shown, warnings).unwrap_or_default())
                }
                Err(e) => warnings.push(format!("failed to read {shown}: {e}")),
            }
        }
    }
    Ok(all)
}

/// The version in [`STATE_FILE`]: one decimal number and a newline.
pub(crate) fn read_state(root: &SysRoot) -> Result<Option<u32>> {
    let path = root.path(STATE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("failed to read {STATE_FILE}")),
    };
    let line = text.strip_suffix('\n').unwrap_or(&text);
    match line.parse::<u32>() {
        Ok(v) if line.bytes().all(|c| c.is_ascii_digit()) => Ok(Some(v)),
        _ => bail!("{STATE_FILE}:1: {line:?} is not a version number"),
    }
}

/// Records `version` as the one we last acted at, replaced whole and
/// synced ([`safe_write`]): a crash leaves the old number or the new.
pub(crate) fn save_state(root: &SysRoot, version: u32) -> Result<()> {
    let path = root.path(STATE_FILE);
    let dir = path.parent().context("state file without a directory")?;
    // 0755 whatever the umask: safe_write refuses a directory others can write.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .with_context(|| format!("failed to create {}", dir.display()))?;
    safe_write::replace_file(&path, format!("{version}\n").as_bytes(), 0o644, true)
}

/// The scan-plan-restart run, limited to what the last swupd update
/// changed when that is known.
pub(crate) fn after_update(
    bus: &crate::systemd::Bus,
    root: &SysRoot,
    dry_run: bool,
    all: bool,
    verbose: u8,
) -> Result<Outcome> {
    let mut warnings = Vec::new();
    let (basis, current) = basis(root, &mut warnings);
    for w in &warnings {
        log::warn!("{w}");
    }
    let changed = match basis {
        Basis::Update {
            from,
            to,
            set,
            manifests,
            dropped,
        } => {
            log::info!(
                "swupd update {from} → {to}: {} changed files, from {manifests} manifest(s) of {to} \
                 and {dropped} path(s) only {from} listed",
                set.len()
            );
            Some(set)
        }
        Basis::Everything(why) => {
            log::info!("every stale file counts: {why}");
            None
        }
    };
    let opts = Options {
        all,
        changed,
        quiet: true,
        bus: bus.clone(),
        ..Options::default()
    };
    let mode = if dry_run { Mode::DryRun } else { Mode::Restart };
    let code = run::execute(root, &opts, mode, verbose)?;
    if !dry_run && code == Outcome::Done {
        if let Some(v) = current {
            save_state(root, v)?;
        }
    }
    // clr-service-restart -n exits 0 whatever it found.
    Ok(if dry_run && code == Outcome::Pending {
        Outcome::Done
    } else {
        code
    })
}

/// `replay --swupd-from`: the files of every manifest between `from` and
/// the installed version.
pub fn replay(root: &SysRoot, from: u32) -> Result<Replay> {
    let mut r = Replay::default();
    let u = manifests::derive(root, from, &mut r.warnings)?;
    r.described.push(format!(
        "replaying the swupd update from {from} to {}: {} manifest(s)",
        u.current,
        u.manifests.len()
    ));
    u.paths.iter().for_each(|p| r.set.insert(p));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_file_is_one_number() {
        let (_tmp, root) = SysRoot::scratch();
        assert_eq!(read_state(&root).unwrap(), None);
        save_state(&root, 43210).unwrap();
        assert_eq!(read_state(&root).unwrap(), Some(43210));
        assert_eq!(std::fs::read_to_string(root.path(STATE_FILE)).unwrap(), "43210\n");
        for bad in ["", "x\n", "-1\n", "1 2\n", "+5\n"] {
            std::fs::write(root.path(STATE_FILE), bad).unwrap();
            let err = read_state(&root).unwrap_err().to_string();
            assert!(err.contains("swupd-version:1:"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_link_at_the_old_temporary_name_is_never_written_through() {
        let (_tmp, root) = SysRoot::scratch();
        let victim = root.path("/etc/shadow");
        std::fs::create_dir_all(victim.parent().unwrap()).unwrap();
        std::fs::write(&victim, "root:secret\n").unwrap();
        let path = root.path(STATE_FILE);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let planted = path.with_extension(format!("tmp{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        save_state(&root, 7).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root:secret\n");
        assert_eq!(read_state(&root).unwrap(), Some(7));
    }

    #[test]
    fn without_a_version_everything_counts() {
        let (_tmp, root) = SysRoot::scratch();
        let mut w = Vec::new();
        let (b, v) = basis(&root, &mut w);
        assert!(matches!(b, Basis::Everything(why) if why.contains("os-release")));
        assert_eq!(v, None);
        std::fs::create_dir_all(root.path("/usr/lib")).unwrap();
        std::fs::write(root.path("/usr/lib/os-release"), "VERSION_ID=110\n").unwrap();
        let (b, v) = basis(&root, &mut w);
        assert!(matches!(b, Basis::Everything(why) if why.contains("is missing")));
        assert_eq!(v, Some(110));
        save_state(&root, 110).unwrap();
        let (b, _) = basis(&root, &mut w);
        assert!(matches!(b, Basis::Everything(why) if why.contains("last run was at version 110")));
        save_state(&root, 100).unwrap();
        let (b, _) = basis(&root, &mut w);
        assert!(
            matches!(b, Basis::Everything(ref why) if why.contains("no manifests of version 110")),
            "{b:?}"
        );
    }
}
