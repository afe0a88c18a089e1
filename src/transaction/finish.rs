//! The finish step every package manager shares: what the transient unit
//! (`restart-stale-apt.service`, `-dnf`, `-pacman`) runs once a
//! transaction is recorded.
//!
//! One finish at a time takes the spool's records, lets the package
//! manager's [`Adapter`] turn them into a changed-file set, and runs the
//! ordinary scan-plan-restart with it. Records that arrive meanwhile are
//! taken in a further round, so a second transaction right behind the
//! first is not left waiting.
//!
//! Nothing recorded is lost:
//! - a record whose run failed (the bus down, the restart lock held by a
//!   manual run, unreadable policy) is kept and retried by the next run, at
//!   most [`MAX_ATTEMPTS`] times, each attempt logged;
//! - a record left behind by the round limit or by a package manager that
//!   still holds its lock is logged and taken by the next run;
//! - a transaction recorded while a finish is shutting down is not
//!   missed: see [`closing`].

use super::host;
use super::spool;
use crate::core::changed::ChangedSet;
use crate::exit::Outcome;
use crate::run::{self, Marks, Mode, Options};
use crate::system::sysroot::SysRoot;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Rounds of wait-take-act per run; each needs a new transaction to have
/// been recorded meanwhile, so this is only a backstop.
pub const MAX_ROUNDS: usize = 10;

/// How often one record is acted on before it is given up (logged).
pub const MAX_ATTEMPTS: u32 = 3;

/// What a package manager's integration tells the finish loop.
pub trait Adapter {
    /// How the package manager is called in messages.
    fn name(&self) -> &'static str;
    /// The spool directory inside the root.
    fn dir(&self) -> &'static str;
    /// Waits until the package manager lets go before records are taken;
    /// false leaves them for the next run (the reason logged).
    fn ready(&self, _root: &SysRoot) -> bool {
        true
    }
    /// How the log names the switch that turned automatic restarts off.
    fn restarts_off(&self) -> String {
        "for this transaction".to_string()
    }
    /// Reads the taken records and derives what changed; `None` when the
    /// transaction changed nothing that could matter.
    fn prepare(&self, root: &SysRoot, files: &[PathBuf]) -> Result<Option<Prepared>>;
}

/// What one taken batch of records asks for.
#[derive(Debug, Default)]
pub struct Prepared {
    pub changed: ChangedSet,
    /// False when any hook run of the batch had automatic restarts off:
    /// then nothing is restarted, the report is logged, and each unit a
    /// restart run would restart is marked `needs-restart` for a later
    /// window (docs/deferred.md).
    pub auto_restart: bool,
    /// Units the package manager runs in: skipped as running this tool.
    pub protect: Vec<String>,
    /// False when a hook run turned the PID 1 re-exec off (apt's
    /// `RestartStale::Reexec`).
    pub reexec: bool,
    /// The packages with their old and new versions, when the record
    /// names them: the stale units are annotated with their fixes.
    pub upgrades: Option<crate::core::fixes::Upgrades>,
}

/// Runs the finish loop for `adapter`.
pub fn run(root: &SysRoot, adapter: &dyn Adapter, verbose: u8) -> Result<Outcome> {
    if let Some(why) = host::suspended() {
        log::info!("{why}: not restarting anything");
        return Ok(Outcome::Done);
    }
    let dir = root.path(adapter.dir());
    let mut outcome = Outcome::Done;
    // A record appended after our last look, while we shut down, is taken
    // by going round again (see `closing`).
    loop {
        // We are about to look: a hook need not wait for us to go.
        let _ = std::fs::remove_file(closing(&dir));
        let Some(lock) = spool::try_lock(&dir)? else {
            log::info!("another {} finish is running; it takes the record", adapter.name());
            return Ok(outcome);
        };
        outcome = outcome.worst(rounds(root, adapter, &dir, verbose)?);
        // From here on a hook that finds our unit still active cannot
        // count on us: it waits for the unit to go and starts it anew.
        mark_closing(&dir);
        drop(lock);
        if !spool::any_fresh(&dir)? {
            return Ok(outcome);
        }
        log::info!(
            "a {} transaction was recorded while finishing: taking it now",
            adapter.name()
        );
    }
}

/// Runs the finish step of a transient unit: an error or a panic is
/// logged with `what` and becomes [`Outcome::Error`], the unit's failure.
pub fn unit_step(what: &str, step: impl FnOnce() -> Result<Outcome>) -> Outcome {
    // Nothing the step touched is used after a panic: we only exit.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)) {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => {
            log::error!("{what}: {e:#}");
            Outcome::Error
        }
        Err(_) => {
            log::error!("{what}: internal error (panic)");
            Outcome::Error
        }
    }
}

fn rounds(root: &SysRoot, adapter: &dyn Adapter, dir: &Path, verbose: u8) -> Result<Outcome> {
    let mut outcome = Outcome::Done;
    for round in 0..MAX_ROUNDS {
        if !spool::any_waiting(dir)? {
            if round == 0 {
                log::info!("no recorded {} transaction: nothing to do", adapter.name());
            }
            return Ok(outcome);
        }
        if !adapter.ready(root) {
            log::warn!(
                "leaving the {} record in {} for the next run",
                adapter.name(),
                dir.display()
            );
            return Ok(outcome);
        }
        let files = spool::take(dir)?;
        if files.is_empty() {
            return Ok(outcome);
        }
        let o = act(root, adapter, &files, verbose);
        outcome = outcome.worst(o);
        if o == Outcome::Error {
            // Acting failed before anything was decided: keep the record
            // for the next run instead of losing the transaction.
            spool::keep_for_retry(&files, MAX_ATTEMPTS);
            return Ok(outcome);
        }
        spool::remove(&files);
    }
    if spool::any_waiting(dir)? {
        log::warn!(
            "{MAX_ROUNDS} rounds done and another {} transaction is recorded; the next run takes it",
            adapter.name()
        );
    }
    Ok(outcome)
}

/// Acts on one batch of taken records.
fn act(root: &SysRoot, adapter: &dyn Adapter, files: &[PathBuf], verbose: u8) -> Outcome {
    let prepared = match adapter.prepare(root, files) {
        Ok(Some(p)) => p,
        Ok(None) => return Outcome::Done,
        Err(e) => {
            log::error!("{e:#}");
            return Outcome::Error;
        }
    };
    let deferred = !prepared.auto_restart;
    if deferred {
        log::info!(
            "automatic restarts are off {}: marking the units to restart later",
            adapter.restarts_off()
        );
    }
    let opts = Options {
        changed: Some(prepared.changed),
        protect: prepared.protect,
        // The textfile, and /run/reboot-required when a reboot is needed.
        hook: true,
        marks: if deferred { Marks::Set } else { Marks::Ignore },
        upgrades: prepared.upgrades,
        security_only: host::security_only(root),
        restart: crate::restart::Settings {
            reexec: prepared.reexec,
            ..crate::restart::Settings::default()
        },
        ..Options::default()
    };
    match run::execute(root, &opts, Mode::Restart, verbose) {
        // Deferred, pending restarts are the expected outcome.
        Ok(Outcome::Pending) if deferred => Outcome::Done,
        Ok(o) => o,
        Err(e) => {
            log::error!("{e:#}");
            Outcome::Error
        }
    }
}

/// `closing` in a spool directory: present from a finish's last look at
/// the spool until its unit is gone. A hook that appended a record and
/// finds the unit still active starts it anew only when this is there;
/// otherwise the running finish is bound to see the record.
pub fn closing(dir: &Path) -> PathBuf {
    dir.join("closing")
}

fn mark_closing(dir: &Path) {
    if let Err(e) = crate::system::safe_write::replace_file(&closing(dir), b"", 0o644, false) {
        log::warn!("{e:#}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// Counts its calls and fails or succeeds as told.
    struct Probe {
        dir: &'static str,
        fail: bool,
        prepared: Cell<usize>,
    }

    impl Adapter for Probe {
        fn name(&self) -> &'static str {
            "probe"
        }
        fn dir(&self) -> &'static str {
            self.dir
        }
        fn prepare(&self, _root: &SysRoot, _files: &[PathBuf]) -> Result<Option<Prepared>> {
            self.prepared.set(self.prepared.get() + 1);
            if self.fail {
                anyhow::bail!("the policy could not be read");
            }
            Ok(None)
        }
    }

    fn probe(fail: bool) -> Probe {
        Probe {
            dir: "/run/restart-stale/probe",
            fail,
            prepared: Cell::new(0),
        }
    }

    #[test]
    fn an_empty_spool_means_nothing_to_do() {
        let (_tmp, root) = SysRoot::scratch();
        let p = probe(false);
        assert_eq!(run(&root, &p, 0).unwrap(), Outcome::Done);
        assert_eq!(p.prepared.get(), 0);
    }

    #[test]
    fn a_record_acted_on_is_removed() {
        let (_tmp, root) = SysRoot::scratch();
        let p = probe(false);
        let dir = root.path(p.dir);
        spool::append(&dir, "begin 1 1\nend\n").unwrap();
        assert_eq!(run(&root, &p, 0).unwrap(), Outcome::Done);
        assert_eq!(p.prepared.get(), 1);
        assert!(!spool::any_waiting(&dir).unwrap());
    }

    #[test]
    fn a_failed_record_is_kept_then_given_up_after_its_attempts() {
        let (_tmp, root) = SysRoot::scratch();
        let p = probe(true);
        let dir = root.path(p.dir);
        spool::append(&dir, "begin 1 1\nend\n").unwrap();
        for attempt in 1..=MAX_ATTEMPTS {
            assert_eq!(run(&root, &p, 0).unwrap(), Outcome::Error);
            assert_eq!(p.prepared.get(), attempt as usize, "one attempt per run");
            let left = spool::any_waiting(&dir).unwrap();
            assert_eq!(left, attempt < MAX_ATTEMPTS, "after attempt {attempt}");
        }
    }

    #[test]
    fn a_record_that_arrives_while_closing_is_taken() {
        let (_tmp, root) = SysRoot::scratch();
        let dir = root.path("/run/restart-stale/probe");
        // The adapter appends a second record as its first batch is
        // prepared: the loop must come round for it.
        struct Late(Cell<usize>, PathBuf);
        impl Adapter for Late {
            fn name(&self) -> &'static str {
                "late"
            }
            fn dir(&self) -> &'static str {
                "/run/restart-stale/probe"
            }
            fn prepare(&self, _root: &SysRoot, _files: &[PathBuf]) -> Result<Option<Prepared>> {
                self.0.set(self.0.get() + 1);
                if self.0.get() == 1 {
                    spool::append(&self.1, "begin 2 2\nend\n")?;
                }
                Ok(None)
            }
        }
        spool::append(&dir, "begin 1 1\nend\n").unwrap();
        let late = Late(Cell::new(0), dir.clone());
        assert_eq!(run(&root, &late, 0).unwrap(), Outcome::Done);
        assert_eq!(late.0.get(), 2);
        assert!(!spool::any_waiting(&dir).unwrap());
        assert!(closing(&dir).exists());
    }
}
