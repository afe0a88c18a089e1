//! A manual restart run and the records that wait meanwhile: the run
//! holds the restart lock from its scan to its last restart, and a
//! package transaction that ended then has its finish wait for the lock,
//! or give up and wait for its retry timer. Before letting go, the run
//! starts the finish unit of every package manager whose spool holds a
//! record, so each acts as soon as the lock is free, not minutes later.

use crate::exit::Outcome;
use crate::managers;
use crate::restart::lock;
use crate::system::sysroot::SysRoot;
use crate::systemd::{Bus, ServiceManager};
use crate::transaction::spool;
use anyhow::Result;

/// Runs `run` holding the restart lock, then starts the finish units of
/// the records waiting, then lets go. Outside a host with systemd (a test
/// root, a chroot) only `run` runs: it takes the lock itself if it must.
pub(crate) fn holding_lock(
    bus: &Bus,
    root: &SysRoot,
    verbose: u8,
    run: impl FnOnce() -> Result<Outcome>,
) -> Result<Outcome> {
    if !root.is_host() || crate::systemd::running(root).is_err() {
        return run();
    }
    let held = lock::acquire(root, lock::WAIT)?;
    let outcome = run();
    if let Err(e) = bus.get().and_then(|bus| start_waiting(bus, root, verbose)) {
        log::warn!("{e:#}; a recorded transaction waits for its finish's retry");
    }
    drop(held);
    outcome
}

/// Whose spool holds a record: `apt`, `dnf`, `pacman`, `zypper`.
pub fn waiting(root: &SysRoot) -> Vec<&'static str> {
    let has = |dir: &str| spool::any_waiting(&root.path(dir)).unwrap_or(false);
    managers::RECORDING
        .into_iter()
        .filter(|m| has(&m.dir()))
        .map(|m| m.id())
        .collect()
}

/// Starts the finish unit of each package manager whose spool holds a
/// record; each waits for the lock we hold, then acts.
pub(crate) fn start_waiting(mgr: &dyn ServiceManager, root: &SysRoot, verbose: u8) -> Result<()> {
    for name in waiting(root) {
        log::info!("a recorded {name} transaction waits: starting its finish, which acts once this run is done");
        if let Some(m) = managers::by_name(name) {
            crate::transaction::launch::launch(mgr, root, m, verbose)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systemd::fake::Fake;

    #[test]
    fn the_finish_of_each_waiting_record_is_started() {
        let (_tmp, root) = SysRoot::scratch();
        let fake = Fake::default();
        start_waiting(&fake, &root, 0).unwrap();
        assert!(fake.transient_started().is_empty());
        spool::append(&root.path(crate::managers::apt::record::DIR), "begin 1 1\nend\n").unwrap();
        spool::append(&root.path("/run/restart-stale/pacman"), "begin 2 2\nend\n").unwrap();
        assert_eq!(waiting(&root), ["apt", "pacman"]);
        start_waiting(&fake, &root, 0).unwrap();
        let started: Vec<_> = fake.transient_started().into_iter().map(|(n, _)| n).collect();
        assert_eq!(started, ["restart-stale-apt.service", "restart-stale-pacman.service"]);
    }

    #[test]
    fn a_test_root_only_runs() {
        let (_tmp, root) = SysRoot::scratch();
        let mut ran = false;
        holding_lock(&Bus::default(), &root, 0, || {
            ran = true;
            Ok(Outcome::Done)
        })
        .unwrap();
        assert!(ran);
    }
}
