//! How a finish that could not act tries again without waiting for the
//! next package transaction: a transient timer started over D-Bus
//! (`<finish unit>-retry-<time>.timer`, `OnActiveSec=` with a back-off)
//! runs the same finish in a transient service of the same name, which
//! takes the kept record first ([`super::spool`]).
//!
//! The bounds: a finish waits [`LOCK_WAIT`] for the restart lock (a
//! manual run restarting a slow unit holds it), well inside its unit's
//! time limit; a record is dropped only after [`MAX_ATTEMPTS`] failed
//! runs and once [`GIVE_UP_AGE`] has passed since it was written, so the
//! retries spread over at least an hour ([`BACKOFF`]).

use super::manager::Manager;
use crate::system::sysroot::SysRoot;
use crate::systemd::{Bus, ServiceManager};
use anyhow::Result;
use std::time::Duration;

/// How long a finish waits for the restart lock. It runs in its own unit
/// and holds no package manager up, so it can wait for a manual run
/// restarting slow units; below the unit's own limit
/// ([`crate::systemd::dbus::FINISH_TIME_LIMIT`]), which leaves the
/// restarts themselves time.
pub const LOCK_WAIT: Duration = Duration::from_secs(10 * 60);

/// While a finish waits for the restart lock it arms a retry this far
/// ahead once every [`WAIT_STEP`]: should it be killed, the retry runs
/// it again within this delay.
pub const WAITING_DELAY: Duration = Duration::from_secs(2 * 60);

/// How long a waiting finish waits before it arms the next retry.
pub const WAIT_STEP: Duration = Duration::from_secs(60);

/// The delay before the retry after the n-th failed run (the last one
/// for every later failure): 68 minutes from the first failure to the
/// sixth retry.
pub const BACKOFF: [Duration; 6] = [
    Duration::from_secs(60),
    Duration::from_secs(2 * 60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(20 * 60),
    Duration::from_secs(30 * 60),
];

/// Failed runs after which a record may be dropped: the first and one per
/// back-off step.
pub const MAX_ATTEMPTS: u32 = BACKOFF.len() as u32 + 1;

/// A record younger than this is kept whatever its count: failures in
/// quick succession (transactions one behind the other while the bus is
/// down) must not use its retries up in minutes.
pub const GIVE_UP_AGE: Duration = Duration::from_secs(60 * 60);

/// The delay before the retry after `failed` failed runs (1 or more).
pub(crate) fn delay_after(failed: u32) -> Duration {
    let i = (failed.max(1) - 1) as usize;
    BACKOFF[i.min(BACKOFF.len() - 1)]
}

/// Arms a finish's retry; a trait so that tests see what was armed.
pub trait Retry {
    fn arm(&self, root: &SysRoot, manager: &dyn Manager, delay: Duration, verbose: u8) -> Result<()>;
}

/// The retry on the run's bus; a test root never reaches it.
pub struct OnBus<'a>(pub &'a Bus);

impl Retry for OnBus<'_> {
    fn arm(&self, root: &SysRoot, manager: &dyn Manager, delay: Duration, verbose: u8) -> Result<()> {
        if !root.is_host() {
            log::info!("no retry armed: the root is not / (a test root)");
            return Ok(());
        }
        arm(self.0.get()?, root, manager, delay, verbose)
    }
}

/// Starts `<finish unit>-retry-<seconds since the epoch>.timer`, which
/// runs the manager's finish once, `delay` from now. Named by the time so
/// that a timer of an earlier failure that systemd still has loaded never
/// takes the name.
pub(crate) fn arm(
    mgr: &dyn ServiceManager,
    root: &SysRoot,
    manager: &dyn Manager,
    delay: Duration,
    verbose: u8,
) -> Result<()> {
    let argv = super::launch::self_argv(root, verbose, &[&manager.subcommand(), "finish"])?;
    let unit = manager.unit();
    let stem = unit.strip_suffix(".service").unwrap_or(&unit);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let timer = format!("{stem}-retry-{now}.timer");
    let description = format!("Retry restarting services left stale by {}", manager.a_transaction());
    mgr.start_transient_timer(&timer, delay, &argv, &description)?;
    log::warn!(
        "{timer} retries in {} s (see journalctl -u {stem}-retry-{now}.service)",
        delay.as_secs()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retries_back_off_over_more_than_the_hour_before_a_drop() {
        assert_eq!(delay_after(1), Duration::from_secs(60));
        assert_eq!(delay_after(2), Duration::from_secs(120));
        assert_eq!(delay_after(0), delay_after(1));
        assert_eq!(delay_after(50), *BACKOFF.last().unwrap());
        let spread: Duration = (1..MAX_ATTEMPTS).map(delay_after).sum();
        assert!(spread >= GIVE_UP_AGE, "{spread:?}");
        assert!(BACKOFF.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_finish_waits_for_the_lock_well_inside_its_units_limit() {
        use crate::systemd::dbus::FINISH_TIME_LIMIT;
        assert!(LOCK_WAIT >= Duration::from_secs(10 * 60));
        assert!(LOCK_WAIT * 2 <= FINISH_TIME_LIMIT);
        // A retry armed while waiting is still ahead when the next is.
        assert!(WAIT_STEP < WAITING_DELAY);
    }
}
