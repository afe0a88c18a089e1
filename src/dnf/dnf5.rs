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
//! 1. `pre_transaction:*:::… package ${pid} ${pkg.action} ${pkg.full_nevra}`
//!    runs once per package, before rpm changes anything; each call
//!    appends one `package` line to a staging file for that dnf process,
//!    `/run/restart-stale/dnf/dnf5.<pid>.staging`.
//! 2. `pre_transaction::::… pre-transaction ${pid}` runs once after them:
//!    one `rpm -ql` for all outgoing packages, whose lists are gone once
//!    rpm has run.
//! 3. `post_transaction::::… post-transaction ${pid}` runs once after the
//!    transaction: one `rpm -ql` for the incoming packages; the staging
//!    file becomes a record block and `restart-stale-dnf.service` starts.
//!
//! The plugin reads our standard output as `tmp.`/`conf.`/`var.`
//! assignments, so nothing here prints to it (only `begin` does). A staging file whose dnf
//! died before `post-transaction` (a failed transaction) is recorded by
//! the next one, since rpm may have changed files before it failed.

use super::query_form;
use crate::pkgdb::rpm::FileLister;
use crate::system::sysroot::SysRoot;
use crate::transaction::family::Family;
use crate::transaction::launch;
use crate::transaction::process::{self, Process};
use crate::transaction::record::{parse_fact, valid_package, Block, Direction, Fact, Source};
use anyhow::{bail, Context, Result};
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const STAGING_PREFIX: &str = "dnf5.";
const STAGING_SUFFIX: &str = ".staging";

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
    root.path(Family::Dnf.dir())
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
    let mut all = vec![Fact::Source(Source::Dnf5)];
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
pub fn post_transaction(root: &SysRoot, pid: u32, lister: &dyn FileLister, verbose: u8) -> Result<()> {
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
            crate::transaction::spool::append(&root.path(Family::Dnf.dir()), &block.render())?;
        } else {
            launch::record(root, Family::Dnf, &block)?;
        }
        fs::remove_file(&path).with_context(|| format!("failed to remove {}", path.display()))?;
    }
    // Only now: if the unit cannot be started (D-Bus down), the records
    // wait for the next transaction, and the staging files must be gone,
    // or that transaction would record them a second time as orphans.
    launch::start_finish(root, Family::Dnf, verbose)
}

/// Staging files of other dnf processes that no longer run.
fn orphans(root: &SysRoot, ours: u32) -> Result<Vec<(u32, PathBuf)>> {
    let dir = root.path(Family::Dnf.dir());
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
            .and_then(|r| r.strip_suffix(STAGING_SUFFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != ours && !root.proc_pid(pid, "").exists() {
            found.push((pid, e.path()));
        }
    }
    found.sort();
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
