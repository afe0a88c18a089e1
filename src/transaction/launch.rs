//! The last step of every hook: append the transaction's block to the
//! manager's spool and start its transient unit, which acts once the
//! package manager is done ([`super::finish`]). Starting it is a no-op
//! while it is queued or running.

use super::manager::Manager;
use super::record::Block;
use super::{host, spool};
use crate::system::sysroot::SysRoot;
use crate::systemd::{Bus, ServiceManager};
use anyhow::Context;
use anyhow::Result;

/// Why hooks must leave this system alone, if they must: the admin
/// suspended them, no systemd runs here, or we are in a chroot (an image
/// build, an `--installroot`).
pub(crate) fn not_here(root: &SysRoot) -> Option<String> {
    if let Some(why) = host::suspended() {
        return Some(why);
    }
    host::systemd_running(root).err()
}

/// How long one D-Bus call of a hook may take. The hook makes a handful
/// (GetUnit, a few property reads, StartTransientUnit); on a healthy host
/// each answers in milliseconds, and a PID 1 that takes longer is wedged,
/// so waiting longer only holds the package manager up. The record is
/// written by then, and the next transaction's hook starts the unit.
pub const HOOK_DBUS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The units our process and its ancestors run in, read while the hook
/// runs: the package manager that called us is among them. The finish
/// step runs in its own unit, where this chain ends at PID 1, so the hook
/// records them ([`super::record::Fact::Protect`]).
pub(crate) fn caller_units(root: &SysRoot) -> Vec<String> {
    crate::system::cgroup::ancestor_units(root, std::process::id())
}

/// Records `block`, with the units of the package manager that called us,
/// and starts the finish unit.
pub fn commit(bus: &Bus, root: &SysRoot, manager: &dyn Manager, block: &Block, verbose: u8) -> Result<()> {
    record(root, manager, block)?;
    start_finish(bus, root, manager, verbose)
}

/// The first half of [`commit`]: `block` into the manager's spool, with
/// the units of the package manager that called us. For a hook that has
/// its own clean-up to do once the record is safe, whether or not the
/// finish unit can be started then.
pub fn record(root: &SysRoot, manager: &dyn Manager, block: &Block) -> Result<()> {
    let dir = root.path(manager.dir());
    let block = with_caller(root, block);
    spool::append(&dir, &block.render())?;
    log::debug!(
        "recorded {} packages and {} files in {}",
        block.packages().count(),
        block.files().count(),
        dir.display()
    );
    Ok(())
}

/// Like [`record`], but held by this process until it records the final
/// block and releases it ([`super::held`]): if we die first, the next
/// finish takes this one.
pub fn hold(root: &SysRoot, manager: &dyn Manager, block: &Block) -> Result<super::held::Held> {
    let dir = root.path(manager.dir());
    let held = super::held::hold(&dir, &with_caller(root, block).render())?;
    log::debug!("holding {} files in {}", block.files().count(), held.path().display());
    Ok(held)
}

/// `block` with what only the package manager's environment tells: the
/// units it runs in, and whether restarts are deferred. The finish step
/// runs in a unit of its own and never sees them.
fn with_caller(root: &SysRoot, block: &Block) -> Block {
    let mut block = block.clone();
    block
        .facts
        .extend(caller_units(root).into_iter().map(super::record::Fact::Protect));
    if let Some(why) = host::deferred(root) {
        log::info!("{why}: the restarts are deferred");
        block.facts.push(super::record::Fact::AutoRestart(false));
    }
    block
}

/// The second half of [`commit`]: starts the manager's finish unit over
/// `bus` (a hook's has [`HOOK_DBUS_TIMEOUT`]), except in a test root.
pub(crate) fn start_finish(bus: &Bus, root: &SysRoot, manager: &dyn Manager, verbose: u8) -> Result<()> {
    if !root.is_host() {
        // As in restart::run: a test root never reaches the bus.
        log::info!("{} not started: the root is not / (a test root)", manager.unit());
        return Ok(());
    }
    launch(bus.get()?, root, manager, verbose)
}

/// Starts (or leaves running) `<id>-hook finish` as the manager's unit.
pub(crate) fn launch(mgr: &dyn ServiceManager, root: &SysRoot, manager: &dyn Manager, verbose: u8) -> Result<()> {
    let argv = self_argv(root, verbose, &[&manager.subcommand(), "finish"])?;
    let description = format!("Restart services left stale by {}", manager.a_transaction());
    let unit = manager.unit();
    start(mgr, &root.path(manager.dir()), &unit, &argv, &description)?;
    log::info!("{unit} acts once {} is done (see journalctl -u {unit})", manager.id());
    Ok(())
}

/// How long a hook waits for a finish that is shutting down (it has taken
/// its last look at the spool) to be gone, so it can start a new one.
const CLOSING_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Starts the finish unit `unit` for the spool `dir`, a no-op while it is
/// queued or running, except when that finish has already taken its last
/// look at the spool ([`super::finish::closing`]): then the record just
/// written would wait for the next transaction, so the hook waits for the
/// unit to be gone and starts it anew.
pub fn start(
    mgr: &dyn ServiceManager,
    dir: &std::path::Path,
    unit: &str,
    argv: &[String],
    description: &str,
) -> Result<()> {
    let deadline = std::time::Instant::now() + CLOSING_WAIT;
    while super::finish::closing(dir).exists() && unit_busy(mgr, unit)? {
        if std::time::Instant::now() >= deadline {
            log::warn!(
                "{unit} is still shutting down after {} s; starting it anyway",
                CLOSING_WAIT.as_secs()
            );
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    mgr.start_transient_service(unit, argv, description)
}

fn unit_busy(mgr: &dyn ServiceManager, unit: &str) -> Result<bool> {
    Ok(mgr.unit(unit)?.is_some_and(|i| {
        matches!(
            i.active_state.as_str(),
            "active" | "activating" | "deactivating" | "reloading"
        )
    }))
}

/// `<this binary> ARGS…`, with our root and verbosity: the command of a
/// transient unit that finishes what a hook started (apt, dnf, pacman).
pub(crate) fn self_argv(root: &SysRoot, verbose: u8, args: &[&str]) -> Result<Vec<String>> {
    let exe = std::env::current_exe().context("failed to find our own executable")?;
    let mut exe = exe.to_string_lossy().into_owned();
    // The transaction may have just upgraded restart-stale itself: the
    // kernel then names our image "/usr/bin/restart-stale (deleted)", and
    // the new binary is at the old path.
    if let Some(path) = exe.strip_suffix(" (deleted)") {
        exe = path.to_string();
    }
    let mut argv = vec![exe];
    argv.extend(args.iter().map(|a| a.to_string()));
    argv.extend((0..verbose.min(2)).map(|_| "-v".to_string()));
    if !root.is_host() {
        argv.push("--root".into());
        argv.push(root.root().to_string_lossy().into_owned());
    }
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systemd::fake::Fake;
    use crate::transaction::manager::Named;

    #[test]
    fn starts_the_managers_unit_once_with_our_root() {
        let (tmp, root) = SysRoot::scratch();
        let fake = Fake::default();
        launch(&fake, &root, &Named("pacman"), 0).unwrap();
        launch(&fake, &root, &Named("pacman"), 0).unwrap();
        launch(&fake, &root, &Named("dnf"), 2).unwrap();
        let started = fake.transient_started();
        assert_eq!(started.len(), 2, "{started:?}");
        assert_eq!(started[0].0, "restart-stale-pacman.service");
        assert_eq!(
            started[0].1[1..],
            ["pacman-hook", "finish", "--root", &tmp.path().to_string_lossy()]
        );
        assert_eq!(started[1].0, "restart-stale-dnf.service");
        assert_eq!(started[1].1[1..5], ["dnf-hook", "finish", "-v", "-v"]);
    }

    #[test]
    fn leaves_systems_without_systemd_alone() {
        let (_tmp, root) = SysRoot::scratch();
        assert_eq!(not_here(&root).as_deref(), Some("no systemd running"));
    }

    #[test]
    fn a_closing_finish_is_waited_for_before_starting_anew() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let busy = crate::systemd::fake::running_service(7);
        let fake = Fake::with_units([("restart-stale-dnf.service", busy)]);
        let argv = vec!["x".to_string()];
        // No closing marker: the running finish sees the record itself.
        let start_at = std::time::Instant::now();
        start(&fake, dir, "restart-stale-dnf.service", &argv, "d").unwrap();
        assert!(start_at.elapsed() < std::time::Duration::from_secs(1));
        // Closing and still active: waited for (bounded), then started.
        std::fs::write(super::super::finish::closing(dir), b"").unwrap();
        let start_at = std::time::Instant::now();
        start(&fake, dir, "restart-stale-dnf.service", &argv, "d").unwrap();
        assert!(start_at.elapsed() >= CLOSING_WAIT);
    }
}
