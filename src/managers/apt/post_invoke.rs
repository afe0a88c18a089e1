//! `apt-hook post-invoke`: apt's `DPkg::Post-Invoke` hook, run after
//! every dpkg run.
//!
//! One apt command can run dpkg several times, and unattended-upgrades
//! runs it once per package group, so this hook must not act by itself.
//! It only starts the transient unit [`super::FINISH_UNIT`]; systemd makes that a
//! no-op while the unit is queued or running, and the unit waits until
//! the package manager is done. Many dpkg runs, one restart.

use super::finish::APT;
use super::record;
use crate::system::sysroot::SysRoot;
use crate::systemd::Bus;
use crate::systemd::ServiceManager;
use crate::transaction::{host, spool};
use anyhow::Result;

/// What the hook should do, decided from the environment and the record.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Do nothing, and say why at this level.
    Skip(log::Level, String),
    /// Start the finish unit.
    Launch,
}

pub(crate) fn decide(root: &SysRoot) -> Result<Decision> {
    if let Some(why) = host::suspended() {
        return Ok(Decision::Skip(
            log::Level::Info,
            format!("{why}: not restarting anything"),
        ));
    }
    if let Err(why) = host::systemd_running(root) {
        return Ok(Decision::Skip(
            log::Level::Info,
            format!("{why}: not restarting anything"),
        ));
    }
    if !spool::any_waiting(&root.path(record::DIR))? {
        let why = "no recorded apt transaction: nothing to do".to_string();
        return Ok(Decision::Skip(log::Level::Debug, why));
    }
    Ok(Decision::Launch)
}

pub fn run(bus: &Bus, root: &SysRoot, verbose: u8) -> Result<()> {
    match decide(root)? {
        Decision::Skip(level, why) => log::log!(level, "{why}"),
        // `bus` has the hooks' bound on each call: the record is on disk,
        // and the next transaction starts the unit if PID 1 is wedged now.
        Decision::Launch => launch(bus.get()?, root, verbose)?,
    }
    Ok(())
}

/// Starts (or leaves running) the finish unit, as every manager's hook
/// does ([`crate::transaction::launch::launch`]).
pub(crate) fn launch(mgr: &dyn ServiceManager, root: &SysRoot, verbose: u8) -> Result<()> {
    crate::transaction::launch::launch(mgr, root, &APT, verbose)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::managers::apt::FINISH_UNIT;
    use crate::systemd::fake::Fake;

    fn systemd_root() -> (tempfile::TempDir, SysRoot) {
        let (tmp, root) = SysRoot::scratch();
        std::fs::create_dir_all(root.path("/run/systemd/system")).unwrap();
        std::fs::create_dir_all(root.path("/proc/1")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), root.path("/proc/1/root")).unwrap();
        (tmp, root)
    }

    #[test]
    fn launches_only_with_systemd_and_a_record() {
        let tmp = tempfile::tempdir().unwrap();
        let bare = SysRoot::new(tmp.path());
        let no_systemd = Decision::Skip(log::Level::Info, "no systemd running: not restarting anything".into());
        assert_eq!(decide(&bare).unwrap(), no_systemd);
        let (_tmp, root) = systemd_root();
        assert!(matches!(decide(&root).unwrap(), Decision::Skip(log::Level::Debug, _)));
        spool::append(&root.path(record::DIR), "begin 1 1\n").unwrap();
        assert_eq!(decide(&root).unwrap(), Decision::Launch);
    }

    #[test]
    fn starts_the_finish_unit_with_our_root() {
        let (tmp, root) = systemd_root();
        let fake = Fake::default();
        launch(&fake, &root, 1).unwrap();
        launch(&fake, &root, 1).unwrap();
        let started = fake.transient_started();
        assert_eq!(started.len(), 1, "the second start is a no-op: {started:?}");
        let (name, argv) = &started[0];
        assert_eq!(name, FINISH_UNIT);
        assert_eq!(argv[1..5], ["apt-hook", "finish", "-v", "--root"]);
        assert_eq!(argv[5], tmp.path().to_string_lossy());
    }
}
