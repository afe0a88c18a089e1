//! The last step of every dnf and pacman hook: append the transaction's
//! block to the record and start the family's transient unit, which
//! acts once the package manager is done ([`super::finish`]). Starting it
//! is a no-op while it is queued or running, as for apt's
//! `restart-stale-apt.service`.

use super::record::Block;
use super::Family;
use crate::apt::{host, post_invoke, record as spool};
use crate::sysroot::SysRoot;
use crate::systemd::ServiceManager;
use anyhow::Result;

/// Why hooks must leave this system alone, if they must: the admin
/// suspended them, no systemd runs here, or we are in a chroot (an image
/// build, an `--installroot`).
pub fn not_here(root: &SysRoot) -> Option<String> {
    if let Some(why) = host::suspended() {
        return Some(why);
    }
    host::systemd_running(root).err()
}

/// Records `block` and starts the finish unit.
pub fn commit(root: &SysRoot, family: Family, block: &Block, verbose: u8) -> Result<()> {
    let dir = root.path(family.dir());
    spool::append(&dir, &block.render())?;
    log::debug!(
        "recorded {} packages and {} files in {}",
        block.packages().count(),
        block.files().count(),
        dir.display()
    );
    if !root.is_host() {
        // As in restart::run: a test root never reaches the bus.
        log::info!("{} not started: the root is not / (a test root)", family.unit());
        return Ok(());
    }
    let mgr = crate::systemd::dbus::Dbus::connect()?;
    launch(&mgr, root, family, verbose)
}

/// Starts (or leaves running) `<family>-hook finish` as the family's unit.
pub fn launch(mgr: &dyn ServiceManager, root: &SysRoot, family: Family, verbose: u8) -> Result<()> {
    let argv = post_invoke::self_argv(root, verbose, &[family.subcommand(), "finish"])?;
    let description = format!("Restart services left stale by a {} transaction", family.name());
    let unit = family.unit();
    mgr.start_transient_service(unit, &argv, &description)?;
    log::info!("{unit} acts once {} is done (see journalctl -u {unit})", family.name());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systemd::fake::Fake;

    #[test]
    fn starts_the_family_unit_once_with_our_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = SysRoot::new(tmp.path());
        let fake = Fake::default();
        launch(&fake, &root, Family::Pacman, 0).unwrap();
        launch(&fake, &root, Family::Pacman, 0).unwrap();
        launch(&fake, &root, Family::Dnf, 2).unwrap();
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
        let tmp = tempfile::tempdir().unwrap();
        let root = SysRoot::new(tmp.path());
        assert_eq!(not_here(&root).as_deref(), Some("no systemd running"));
    }
}
