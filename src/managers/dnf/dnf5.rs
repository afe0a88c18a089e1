//! `dnf5-hook …`: what dnf 5's actions plugin runs for us
//! (`/etc/dnf/libdnf5-plugins/actions.d/restart-stale.actions`).
//!
//! The actions plugin (libdnf5-plugins/actions, actions(8)) gives no file
//! lists and no list of packages in one call: a command that names a
//! package variable runs once per package, and identical command lines
//! run once per transaction. Lines run in file order, each for all its
//! packages before the next line. So the actions file has, after the gate
//! (`begin`, [`super::dnf5_begin`]), three lines; each passes the gate's
//! `${tmp.restart_stale_pid}`, shown here as `${pid}`:
//!
//! 1. `pre_transaction:*:::/usr/bin/touch …/dnf5.${pid}.d/${pkg.action}.${pkg.full_nevra}`
//!    runs once per package, before rpm changes anything: not us but
//!    touch(1), so that a binary of ours that hangs costs nothing per
//!    package. Each call leaves an empty file named after the package in
//!    the directory `begin` made, `/run/restart-stale/dnf/dnf5.<pid>.d/`,
//!    and the next step of ours turns those names into `package` lines of
//!    the staging file `/run/restart-stale/dnf/dnf5.<pid>.staging`.
//! 2. `pre_transaction::::… pre-transaction ${pid}` runs once after them:
//!    one `rpm -ql` for all outgoing packages, whose lists are gone once
//!    rpm has run.
//! 3. `post_transaction::::… post-transaction ${pid}` runs once after the
//!    transaction: one `rpm -ql` for the incoming packages; the staging
//!    file becomes a record block and `restart-stale-dnf.service` starts.
//!
//! So dnf5 runs our binary three times per transaction, each under the
//! actions file's timeout(1), and those bounds add up to at most
//! [`TRANSACTION_BOUND`] whatever the binary does; inside them our own
//! limits ([`BEGIN_LIMIT`], [`STEP_LIMIT`], [`RPM_LIMIT`]) end a step
//! cleanly first.
//!
//! The plugin reads our standard output as `tmp.`/`conf.`/`var.`
//! assignments, so nothing here prints to it (only `begin` does). A staging file whose dnf
//! died before `post-transaction` (a failed transaction) is recorded by
//! the next one, since rpm may have changed files before it failed.

use super::query_form;
use crate::managers::rpm::FileLister;
use crate::system::sysroot::SysRoot;
use crate::systemd::Bus;
use crate::transaction::launch;
use crate::transaction::process::{self, Process};
use crate::transaction::record::{parse_fact, valid_package, Block, Direction, Fact, Source};
use crate::transaction::Manager;
use anyhow::{bail, Context, Result};
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

const STAGING_PREFIX: &str = "dnf5.";
const STAGING_SUFFIX: &str = ".staging";
/// The directory the per-package line touches its files in.
const PACKAGES_SUFFIX: &str = ".d";

/// The most the actions file's timeouts let our calls add to one dnf5
/// transaction, `-k` included (checked against the shipped file in
/// tests/dnf5_hook.rs).
pub const TRANSACTION_BOUND: Duration = Duration::from_secs(30);
/// `begin`'s own limit, under its line's timeout.
pub const BEGIN_LIMIT: Duration = Duration::from_secs(2);
/// `pre-transaction`'s and `post-transaction`'s own limit, under their
/// lines' timeouts.
pub const STEP_LIMIT: Duration = Duration::from_secs(9);
/// One `rpm -ql` in those steps: what leaves a step time to record.
pub const RPM_LIMIT: Duration = Duration::from_secs(6);

/// The system's rpm with [`RPM_LIMIT`].
pub(crate) fn lister(root: &SysRoot) -> Box<dyn FileLister> {
    crate::managers::rpm::lister_within(root, None, RPM_LIMIT)
}

fn packages_dir(root: &SysRoot, pid: u32) -> PathBuf {
    root.path(super::DNF.dir())
        .join(format!("{STAGING_PREFIX}{pid}{PACKAGES_SUFFIX}"))
}

/// `begin PID`: the directory of the per-package line, empty.
pub fn begin(root: &SysRoot, pid: u32) -> Result<()> {
    if let Some(why) = launch::not_here(root) {
        log::debug!("{why}: the later steps record nothing");
        return Ok(());
    }
    let dir = packages_dir(root, pid);
    // Left by an earlier dnf of the same pid: its names are absorbed by
    // the next post-transaction as an orphan's, or here as ours.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("failed to create {}", dir.display()))
}

/// Turns the files the per-package line left in `dnf5.<pid>.d/` into
/// `package` lines of the staging file, and removes them.
fn absorb(root: &SysRoot, pid: u32) -> Result<()> {
    let dir = packages_dir(root, pid);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("failed to list {}", dir.display())),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    // Directory order means nothing: by NEVRA, then action.
    names.sort_by(|a, b| {
        a.split_once('.')
            .map(|(x, n)| (n, x))
            .cmp(&b.split_once('.').map(|(x, n)| (n, x)))
    });
    let text: String = names
        .iter()
        .filter_map(|n| staged_fact(n))
        .map(|f| format!("{f}\n"))
        .collect();
    if !text.is_empty() {
        append(&staging(root, pid), &text)?;
    }
    fs::remove_dir_all(&dir).with_context(|| format!("failed to remove {}", dir.display()))
}

/// The fact a touched name `ACTION.NEVRA` stands for; `None` for a reason
/// change.
fn staged_fact(name: &str) -> Option<Fact> {
    let checked = name
        .split_once('.')
        .ok_or_else(|| anyhow::anyhow!("no ACTION.NEVRA"))
        .and_then(|(action, nevra)| {
            let d = direction(action)?;
            if !valid_package(nevra) {
                bail!("{nevra:?} is not a package");
            }
            Ok(d.map(|d| Fact::Package(d, nevra.into())))
        });
    checked.unwrap_or_else(|e| Some(Fact::Error(format!("staged package {name:?}: {e:#}"))))
}

/// The direction of a `${pkg.action}` letter (libdnf5
/// `transaction_item_action_to_letter`): `I`nstall, `U`pgrade,
/// `D`owngrade and `R`einstall come in; `E` (removed) and `O` (replaced,
/// the old side of an upgrade) go out. `None` for `?` (reason change),
/// which changes no file.
pub fn direction(action: &str) -> Result<Option<Direction>> {
    Ok(match action {
        "I" | "U" | "D" | "R" => Some(Direction::In),
        "E" | "O" => Some(Direction::Out),
        "?" => None,
        _ => bail!("unknown package action {action:?} (expected one of I U D R E O ?)"),
    })
}

fn staging(root: &SysRoot, pid: u32) -> PathBuf {
    root.path(super::DNF.dir())
        .join(format!("{STAGING_PREFIX}{pid}{STAGING_SUFFIX}"))
}

fn append(path: &Path, text: &str) -> Result<()> {
    let dir = path.parent().context("staging file without a directory")?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("failed to create {}", dir.display()))?;
    // Never through a link: the file is root's, whatever is planted there.
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("failed to open {}", path.display()))?;
    // One write per call: appends of a few lines do not interleave.
    f.write_all(text.as_bytes())
        .with_context(|| format!("failed to write {}", path.display()))
}

/// `package PID ACTION NEVRA`: stage one package.
pub fn package(root: &SysRoot, pid: u32, action: &str, nevra: &str) -> Result<()> {
    if let Some(why) = launch::not_here(root) {
        log::debug!("{why}: not recording {nevra}");
        return Ok(());
    }
    let Some(dir) = direction(action).context("argument ACTION")? else {
        return Ok(());
    };
    if !valid_package(nevra) {
        bail!("argument NEVRA: {nevra:?} is not a package");
    }
    append(&staging(root, pid), &format!("{}\n", Fact::Package(dir, nevra.into())))
}

/// The staged facts of one dnf process; unreadable lines become errors
/// naming the staging file and line.
fn read_staging(path: &Path) -> Result<Option<Vec<Fact>>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", path.display())),
    };
    let facts = text
        .lines()
        .enumerate()
        .map(|(n, l)| {
            parse_fact(l).unwrap_or_else(|why| Fact::Error(format!("{}:{}: {why}: {l:?}", path.display(), n + 1)))
        })
        .collect();
    Ok(Some(facts))
}

/// `file` lines for the packages of one direction, from one rpm call;
/// problems become `error` lines.
fn list(root: &SysRoot, facts: &[Fact], want: Direction, lister: &dyn FileLister) -> Vec<Fact> {
    let nevras: Vec<String> = facts
        .iter()
        .filter_map(|f| match f {
            Fact::Package(d, n) if *d == want => Some(query_form(n)),
            _ => None,
        })
        .collect();
    if nevras.is_empty() {
        return Vec::new();
    }
    let listing = match lister.list(root, &nevras) {
        Ok(l) => l,
        Err(e) => return vec![Fact::Error(format!("{e:#}"))],
    };
    let mut out: Vec<Fact> = listing.files.into_iter().map(Fact::File).collect();
    for p in listing.not_installed {
        out.push(Fact::Error(format!("rpm -ql: package {p} is not installed")));
    }
    out.extend(
        listing
            .unexpected
            .into_iter()
            .map(|l| Fact::Error(format!("rpm -ql: {l}"))),
    );
    out
}

/// `pre-transaction PID`: copy the outgoing packages' file lists.
pub fn pre_transaction(root: &SysRoot, pid: u32, lister: &dyn FileLister) -> Result<()> {
    if launch::not_here(root).is_some() {
        return Ok(());
    }
    absorb(root, pid)?;
    let path = staging(root, pid);
    let Some(facts) = read_staging(&path)? else {
        return Ok(()); // nothing but reason changes
    };
    let lists = list(root, &facts, Direction::Out, lister);
    if !lists.is_empty() {
        let text: String = lists.iter().map(|f| format!("{f}\n")).collect();
        append(&path, &text)?;
    }
    Ok(())
}

/// The block for one staging file: staged facts, then the incoming
/// packages' lists.
fn close(root: &SysRoot, path: &Path, manager: Option<Process>, lister: &dyn FileLister) -> Result<Option<Block>> {
    let Some(facts) = read_staging(path)? else {
        return Ok(None);
    };
    let mut all = vec![Fact::Source(Source::of("dnf5"))];
    all.extend(manager.map(Fact::Manager));
    all.extend(list(root, &facts, Direction::In, lister));
    all.extend(facts);
    for e in all.iter().filter_map(|f| match f {
        Fact::Error(e) => Some(e),
        _ => None,
    }) {
        log::warn!("{e}");
    }
    Ok(Some(Block::new(all)))
}

/// `post-transaction PID`: record the transaction, and any left behind by
/// a dnf that died, then start the unit.
pub fn post_transaction(bus: &Bus, root: &SysRoot, pid: u32, lister: &dyn FileLister, verbose: u8) -> Result<()> {
    if let Some(why) = launch::not_here(root) {
        log::info!("{why}: not restarting anything");
        return Ok(());
    }
    let manager = match process::identify(root, pid) {
        Ok(p) => Some(p),
        Err(e) => {
            log::debug!("not waiting for dnf: {e:#}");
            None
        }
    };
    // A pre-transaction that did not run (killed) left the names.
    absorb(root, pid)?;
    let mut blocks = Vec::new();
    for (other, path) in orphans(root, pid)? {
        log::info!("recording the staged packages of dnf pid {other}, which ended without finishing");
        blocks.extend(close(root, &path, None, lister)?.map(|b| (b, path)));
    }
    let ours = staging(root, pid);
    blocks.extend(close(root, &ours, manager, lister)?.map(|b| (b, ours)));
    if blocks.is_empty() {
        log::debug!("dnf pid {pid} staged no package: nothing to do");
        return Ok(());
    }
    let n = blocks.len();
    for (i, (block, path)) in blocks.into_iter().enumerate() {
        if i + 1 < n {
            crate::transaction::spool::append(&root.path(super::DNF.dir()), &block.render())?;
        } else {
            launch::record(root, &super::DNF, &block)?;
        }
        fs::remove_file(&path).with_context(|| format!("failed to remove {}", path.display()))?;
    }
    // Only now: if the unit cannot be started (D-Bus down), the records
    // wait for the next transaction, and the staging files must be gone,
    // or that transaction would record them a second time as orphans.
    launch::start_finish(bus, root, &super::DNF, verbose)
}

/// Staging files of other dnf processes that no longer run.
fn orphans(root: &SysRoot, ours: u32) -> Result<Vec<(u32, PathBuf)>> {
    let dir = root.path(super::DNF.dir());
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("failed to list {}", dir.display())),
    };
    let mut found = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(STAGING_PREFIX)
            .and_then(|r| {
                r.strip_suffix(STAGING_SUFFIX)
                    .or_else(|| r.strip_suffix(PACKAGES_SUFFIX))
            })
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != ours && !root.proc_pid(pid, "").exists() && !found.iter().any(|(p, _)| *p == pid) {
            found.push((pid, staging(root, pid)));
        }
    }
    found.sort();
    for (pid, _) in &found {
        absorb(root, *pid)?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_letters_have_directions() {
        for a in ["I", "U", "D", "R"] {
            assert_eq!(direction(a).unwrap(), Some(Direction::In));
        }
        for a in ["E", "O"] {
            assert_eq!(direction(a).unwrap(), Some(Direction::Out));
        }
        assert_eq!(direction("?").unwrap(), None);
        assert!(direction("X").unwrap_err().to_string().contains("\"X\""));
        assert!(direction("").is_err());
    }
}
