//! What every package manager's integration shares, from the hook's
//! record to the restart:
//!
//! - [`spool`]: records appended by hook runs and taken by one finish;
//!   [`held`], a record a hook keeps while its transaction runs;
//! - [`manager`]: the [`Manager`] trait each package manager implements
//!   (in `crate::managers`); its id names its spool, unit and subcommand;
//! - [`record`]: the fact-per-line record format every hook writes, and
//!   [`recorded`], the finish of its facts that all but apt use as is;
//! - [`finish`]: the finish loop;
//! - [`launch`]: starting the transient unit that runs finish;
//! - [`retry`]: the timer that runs a failed finish again, and its bounds;
//! - [`host`], [`process`], [`wait`]: suspension and systemd checks, the
//!   package manager's process, waiting for a lock or a process to go.
//!
//! Hooks that a package manager runs always exit 0 ([`guard`]); only the
//! `finish` step, which runs in its own unit, reports failure.

pub mod finish;
pub mod held;
pub mod host;
pub mod launch;
pub mod manager;
pub mod process;
pub mod record;
pub mod recorded;
pub mod retry;
pub mod spool;
pub mod wait;

pub use manager::{Manager, Prepared};

use crate::exit::Outcome;
use std::sync::mpsc;
use std::time::Duration;

/// How long a hook step may take before it gives up and exits 0. The
/// package manager waits for us: a wedged PID 1 (D-Bus calls) or a slow
/// rpmdb must not hold a dnf or pacman transaction for minutes. Below the
/// 30 s that apt's wrapper grants (`timeout -k 5 30`), so every hook ends
/// within 30 s; each blocking call on the way has a shorter bound of its
/// own (rpm's in `crate::managers::rpm`, [`launch::HOOK_DBUS_TIMEOUT`]),
/// so this is only the last resort.
pub const HOOK_LIMIT: Duration = Duration::from_secs(25);

/// Runs a hook step that a package manager called: errors and panics are
/// logged with `what` and the exit status is 0, so the package manager is
/// never stopped by us. A step still running after [`HOOK_LIMIT`] ends
/// the process with status 0 ([`Watchdog::hook`]).
pub fn guard(what: &str, step: impl FnOnce() -> anyhow::Result<()>) -> Outcome {
    guard_within(what, HOOK_LIMIT, step)
}

/// [`guard`] with a shorter limit than [`HOOK_LIMIT`], for a hook whose
/// package manager grants less (dnf5's steps share 30 s in all).
pub(crate) fn guard_within(what: &str, limit: Duration, step: impl FnOnce() -> anyhow::Result<()>) -> Outcome {
    let _watchdog = Watchdog::hook_within(what, limit);
    contain(what, step)
}

/// [`guard`] without its watchdog, for a hook that times its own work
/// (the zypper plugin, which lives as long as the commit, arms a
/// [`Watchdog::hook`] per frame instead).
pub(crate) fn contain(what: &str, step: impl FnOnce() -> anyhow::Result<()>) -> Outcome {
    // Nothing the step touched is used after a panic: we only exit.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => log::error!("{what}: {e:#}"),
        Err(_) => log::error!("{what}: internal error (panic); the package manager continues"),
    }
    Outcome::Done
}

/// Calls `on_expiry` from its own thread if it is still alive after
/// `limit`; dropping it first (the step ended) calls nothing.
pub struct Watchdog {
    // Dropping the sender wakes the thread, which then returns.
    _done: mpsc::Sender<()>,
}

impl Watchdog {
    /// The hooks' last resort: ends the process with status 0 once
    /// [`HOOK_LIMIT`] has passed, logging `what` gave up.
    pub fn hook(what: &str) -> Self {
        Self::hook_within(what, HOOK_LIMIT)
    }

    /// [`Watchdog::hook`] after `limit` instead.
    pub(crate) fn hook_within(what: &str, limit: Duration) -> Self {
        let label = what.to_string();
        Self::start(limit, move || {
            log::error!(
                "{label}: gave up after {} s (systemd or the package database is not answering); \
                 the package manager continues",
                limit.as_secs()
            );
            // The step's thread may be blocked in a call that never
            // returns; only ending the process frees the package manager.
            std::process::exit(0);
        })
    }

    pub fn start(limit: Duration, on_expiry: impl FnOnce() + Send + 'static) -> Self {
        let (done, wait) = mpsc::channel::<()>();
        let spawned = std::thread::Builder::new().name("watchdog".into()).spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(limit) {
                on_expiry();
            }
        });
        if let Err(e) = spawned {
            // Without a thread the step still runs, only unbounded.
            log::warn!("failed to start the hook's watchdog thread: {e}");
        }
        Self { _done: done }
    }
}

/// Reads a hook's stdin, at most `limit` bytes, then drains the rest, so
/// the package manager's writes never fail even when we stop reading.
pub(crate) fn read_stdin(limit: u64) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    use std::io::Read;
    let mut data = Vec::new();
    let mut stdin = std::io::stdin().lock();
    (&mut stdin)
        .take(limit)
        .read_to_end(&mut data)
        .context("failed to read stdin")?;
    let rest = std::io::copy(&mut stdin, &mut std::io::sink()).unwrap_or(0);
    if rest > 0 {
        log::error!("stdin: {rest} bytes past the first {limit} were ignored");
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_swallows_errors_and_panics() {
        assert_eq!(guard("t", || anyhow::bail!("boom")), Outcome::Done);
        assert_eq!(guard("t", || panic!("boom")), Outcome::Done);
        assert_eq!(guard("t", || Ok(())), Outcome::Done);
    }

    #[test]
    fn the_watchdog_fires_only_for_a_step_that_outlives_its_limit() {
        let (tx, rx) = mpsc::channel();
        let fired = tx.clone();
        let dog = Watchdog::start(Duration::from_millis(50), move || fired.send("late").unwrap());
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok("late"));
        drop(dog);
        let dog = Watchdog::start(Duration::from_millis(200), move || tx.send("early").unwrap());
        drop(dog);
        assert!(rx.recv_timeout(Duration::from_millis(400)).is_err());
    }
}
