//! The finish step every package manager shares: what the transient unit
//! (`restart-stale-apt.service`, `-dnf`, `-pacman`) runs once a
//! transaction is recorded.
//!
//! One finish at a time takes the spool's records, lets the package
//! [`Manager`] turn them into a changed-file set, and runs the
//! ordinary scan-plan-restart with it. Records that arrive meanwhile are
//! taken in a further round, so a second transaction right behind the
//! first is not left waiting.
//!
//! Nothing recorded is lost:
//! - the finish takes the restart lock before it acts, waiting for a
//!   manual run that holds it up to [`retry::LOCK_WAIT`]; while it waits
//!   a retry timer stays armed a little ahead, so a finish killed while
//!   it waits is run again;
//! - a record whose run failed (the bus down, the lock still held,
//!   unreadable policy) is kept, and a retry timer runs the finish again
//!   within minutes, with a back-off; it is dropped only after
//!   [`retry::MAX_ATTEMPTS`] failed runs spread over at least
//!   [`retry::GIVE_UP_AGE`], logged as an error with its transaction;
//! - a record left behind by the round limit or by a package manager that
//!   still holds its lock is logged and taken by the next run;
//! - a transaction recorded while a finish is shutting down is not
//!   missed: see [`closing`].

use super::host;
use super::manager::Manager;
use super::retry::{self, Retry};
use super::spool;
use crate::exit::Outcome;
use crate::restart::lock;
use crate::run::{self, Marks, Mode, Options};
use crate::system::sysroot::SysRoot;
use crate::systemd::Bus;
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Rounds of wait-take-act per run; each needs a new transaction to have
/// been recorded meanwhile, so this is only a backstop.
pub const MAX_ROUNDS: usize = 10;

/// What a finish run waits for and how it arms its retry.
pub struct Env<'a> {
    /// How long to wait for the restart lock.
    pub lock_wait: Duration,
    pub retry: &'a dyn Retry,
    /// The run's connection to systemd, for its restarts.
    pub bus: &'a Bus,
}

/// Runs the finish loop for `manager`, on `bus`.
pub fn run(root: &SysRoot, manager: &dyn Manager, bus: &Bus, verbose: u8) -> Result<Outcome> {
    let env = Env {
        lock_wait: retry::LOCK_WAIT,
        retry: &retry::OnBus(bus),
        bus,
    };
    run_in(root, manager, verbose, &env)
}

/// [`run`] with the lock wait and the retry of `env`.
pub(crate) fn run_in(root: &SysRoot, manager: &dyn Manager, verbose: u8, env: &Env) -> Result<Outcome> {
    if let Some(why) = host::suspended() {
        log::info!("{why}: not restarting anything");
        return Ok(Outcome::Done);
    }
    let dir = root.path(manager.dir());
    let mut outcome = Outcome::Done;
    // A record appended after our last look, while we shut down, is taken
    // by going round again (see `closing`).
    loop {
        // We are about to look: a hook need not wait for us to go.
        let _ = std::fs::remove_file(closing(&dir));
        let Some(lock) = spool::try_lock(&dir)? else {
            log::info!("another {} finish is running; it takes the record", manager.id());
            return Ok(outcome);
        };
        outcome = outcome.worst(rounds(root, manager, &dir, verbose, env)?);
        // From here on a hook that finds our unit still active cannot
        // count on us: it waits for the unit to go and starts it anew.
        mark_closing(&dir);
        drop(lock);
        if !spool::any_fresh(&dir)? {
            return Ok(outcome);
        }
        log::info!(
            "a {} transaction was recorded while finishing: taking it now",
            manager.id()
        );
    }
}

/// Runs the finish step of a transient unit: an error or a panic is
/// logged with `what` and becomes [`Outcome::Error`], the unit's failure.
pub(crate) fn unit_step(what: &str, step: impl FnOnce() -> Result<Outcome>) -> Outcome {
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

fn rounds(root: &SysRoot, manager: &dyn Manager, dir: &Path, verbose: u8, env: &Env) -> Result<Outcome> {
    let mut outcome = Outcome::Done;
    let mut armed = false;
    for round in 0..MAX_ROUNDS {
        if !spool::any_waiting(dir)? {
            if round == 0 {
                log::info!("no recorded {} transaction: nothing to do", manager.id());
            }
            return Ok(outcome);
        }
        if !manager.ready(root) {
            log::warn!(
                "leaving the {} record in {} for the next run",
                manager.id(),
                dir.display()
            );
            return Ok(outcome);
        }
        let files = spool::take(dir)?;
        if files.is_empty() {
            return Ok(outcome);
        }
        let o = match restart_lock(root, manager, verbose, env, &mut armed) {
            // Held until the records are removed: a manual run that takes
            // it next finds them gone, not half-done.
            Some(_held) => {
                let o = act(root, manager, &files, verbose, env);
                if o != Outcome::Error {
                    spool::remove(&files);
                }
                o
            }
            None => Outcome::Error,
        };
        outcome = outcome.worst(o);
        if o == Outcome::Error {
            // Acting failed before anything was decided: keep the record
            // and run again soon instead of losing the transaction.
            let summary = manager.summary(&files);
            let kept = spool::keep_for_retry(&files, retry::MAX_ATTEMPTS, retry::GIVE_UP_AGE, &summary);
            if let (Some(failed), false) = (kept, armed) {
                arm(root, manager, verbose, env, retry::delay_after(failed));
            }
            return Ok(outcome);
        }
    }
    if spool::any_waiting(dir)? {
        log::warn!(
            "{MAX_ROUNDS} rounds done and another {} transaction is recorded; the next run takes it",
            manager.id()
        );
    }
    Ok(outcome)
}

/// Takes the restart lock, waiting up to `env.lock_wait` for a manual run
/// that holds it. While it waits it keeps a retry armed a little ahead
/// ([`retry::WAIT_STEP`], [`retry::WAITING_DELAY`]), so a finish killed
/// meanwhile (its unit stopped, its time limit) is run again within
/// minutes; while we live, such a retry finds the spool locked and ends.
/// `armed` says a retry is on its way, and a later failure of this run
/// arms no other.
fn restart_lock(root: &SysRoot, manager: &dyn Manager, verbose: u8, env: &Env, armed: &mut bool) -> Option<lock::Lock> {
    let deadline = Instant::now() + env.lock_wait;
    let mut wait = Duration::ZERO;
    loop {
        match lock::acquire(root, wait) {
            Ok(l) => return Some(l),
            Err(e) if e.downcast_ref::<lock::Busy>().is_none() || Instant::now() >= deadline => {
                // Unopenable (a read-only /run) or still held: this run
                // is over; the caller keeps the record for a retry.
                match e.downcast_ref::<lock::Busy>() {
                    Some(_) => log::error!("{e:#} (waited {} s in all)", env.lock_wait.as_secs()),
                    None => log::error!("{e:#}"),
                }
                return None;
            }
            Err(_) => {}
        }
        arm(root, manager, verbose, env, retry::WAITING_DELAY);
        *armed = true;
        wait = deadline.saturating_duration_since(Instant::now()).min(retry::WAIT_STEP);
    }
}

fn arm(root: &SysRoot, manager: &dyn Manager, verbose: u8, env: &Env, delay: Duration) {
    if let Err(e) = env.retry.arm(root, manager, delay, verbose) {
        log::error!(
            "failed to arm a retry: {e:#}; the kept {} record waits for the next transaction",
            manager.id()
        );
    }
}

/// Acts on one batch of taken records.
fn act(root: &SysRoot, manager: &dyn Manager, files: &[PathBuf], verbose: u8, env: &Env) -> Outcome {
    let prepared = match manager.prepare(root, files) {
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
            manager.restarts_off()
        );
    }
    let opts = Options {
        changed: Some(prepared.changed),
        protect: prepared.protect,
        // The textfile, and /run/reboot-required when a reboot is needed.
        hook: true,
        marks: if deferred { Marks::Set } else { Marks::Ignore },
        upgrades: prepared.upgrades,
        packages: manager.packages(),
        bus: env.bus.clone(),
        security_only: host::security_only(root),
        restart: crate::restart::Settings {
            reexec: prepared.reexec,
            settle: super::host::conf_settle(root).unwrap_or(crate::restart::Settings::default().settle),
            hook: true,
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
    use crate::transaction::Prepared;
    use std::cell::{Cell, RefCell};

    /// Counts its calls and fails or succeeds as told.
    struct Probe {
        dir: &'static str,
        fail: Cell<bool>,
        prepared: Cell<usize>,
    }

    impl Manager for Probe {
        fn id(&self) -> &'static str {
            "probe"
        }
        fn dir(&self) -> String {
            self.dir.to_string()
        }
        fn packages(&self) -> Option<&'static dyn crate::run::Packages> {
            None
        }
        fn prepare(&self, _root: &SysRoot, _files: &[PathBuf]) -> Result<Option<Prepared>> {
            self.prepared.set(self.prepared.get() + 1);
            if self.fail.get() {
                anyhow::bail!("the policy could not be read");
            }
            Ok(None)
        }
    }

    fn probe(fail: bool) -> Probe {
        Probe {
            dir: "/run/restart-stale/probe",
            fail: Cell::new(fail),
            prepared: Cell::new(0),
        }
    }

    /// Records the retries armed, through the fake service manager.
    #[derive(Default)]
    struct Armed(crate::systemd::fake::Fake, RefCell<Vec<Duration>>);

    impl Retry for Armed {
        fn arm(&self, root: &SysRoot, manager: &dyn Manager, delay: Duration, verbose: u8) -> Result<()> {
            self.1.borrow_mut().push(delay);
            retry::arm(&self.0, root, manager, delay, verbose)
        }
    }

    /// A test root never opens it.
    static BUS: std::sync::LazyLock<Bus> = std::sync::LazyLock::new(Bus::default);

    fn env(armed: &Armed, lock_wait: Duration) -> Env<'_> {
        Env {
            lock_wait,
            retry: armed,
            bus: &BUS,
        }
    }

    /// Holds the restart lock from another thread for `hold`, as a manual
    /// run restarting a slow unit does; returns once it is held.
    fn manual_run(root: &SysRoot, hold: Duration) -> std::thread::JoinHandle<()> {
        let (tx, rx) = std::sync::mpsc::channel();
        let root = root.clone();
        let t = std::thread::spawn(move || {
            let _lock = lock::acquire(&root, Duration::ZERO).unwrap();
            tx.send(()).unwrap();
            std::thread::sleep(hold);
        });
        rx.recv().unwrap();
        t
    }

    #[test]
    fn an_empty_spool_means_nothing_to_do() {
        let (_tmp, root) = SysRoot::scratch();
        let p = probe(false);
        assert_eq!(run(&root, &p, &Bus::default(), 0).unwrap(), Outcome::Done);
        assert_eq!(p.prepared.get(), 0);
    }

    #[test]
    fn a_record_acted_on_is_removed() {
        let (_tmp, root) = SysRoot::scratch();
        let p = probe(false);
        let dir = root.path(p.dir);
        spool::append(&dir, "begin 1 1\nend\n").unwrap();
        assert_eq!(run(&root, &p, &Bus::default(), 0).unwrap(), Outcome::Done);
        assert_eq!(p.prepared.get(), 1);
        assert!(!spool::any_waiting(&dir).unwrap());
    }

    /// A manual run holds the restart lock a while: the finish waits for
    /// it and then acts, and the retry it armed before waiting is there
    /// in case it had been killed meanwhile.
    #[test]
    fn a_busy_restart_lock_is_waited_for() {
        let (_tmp, root) = SysRoot::scratch();
        let p = probe(false);
        let dir = root.path(p.dir);
        spool::append(&dir, "begin 1 1\nend\n").unwrap();
        let manual = manual_run(&root, Duration::from_millis(300));
        let armed = Armed::default();
        let wait = Duration::from_secs(60);
        assert_eq!(run_in(&root, &p, 0, &env(&armed, wait)).unwrap(), Outcome::Done);
        manual.join().unwrap();
        assert_eq!(p.prepared.get(), 1);
        assert!(!spool::any_waiting(&dir).unwrap());
        assert_eq!(*armed.1.borrow(), [retry::WAITING_DELAY]);
    }

    /// The lock stays busy past the wait: the record is kept, and the
    /// retry timer runs this finish again; that run, with no new
    /// transaction recorded, acts on the kept record.
    #[test]
    fn a_record_kept_after_a_busy_lock_is_acted_on_by_the_retry() {
        let (_tmp, root) = SysRoot::scratch();
        let p = probe(false);
        let dir = root.path(p.dir);
        spool::append(&dir, "begin 1 1\nend\n").unwrap();
        let manual = manual_run(&root, Duration::from_millis(800));
        let armed = Armed::default();
        let e = env(&armed, Duration::from_millis(100));
        assert_eq!(run_in(&root, &p, 0, &e).unwrap(), Outcome::Error);
        assert_eq!(p.prepared.get(), 0, "nothing acted on without the lock");
        assert!(spool::any_waiting(&dir).unwrap() && !spool::any_fresh(&dir).unwrap());
        let timers = armed.0.timers();
        assert_eq!(timers.len(), 1, "{timers:?}");
        let (timer, delay, argv) = &timers[0];
        assert!(
            timer.starts_with("restart-stale-probe-retry-") && timer.ends_with(".timer"),
            "{timer}"
        );
        assert!(*delay <= Duration::from_secs(5 * 60), "{delay:?}");
        assert_eq!(argv[1..3], ["probe-hook", "finish"]);
        manual.join().unwrap();
        // The timer's service: the same finish, nothing new recorded.
        assert_eq!(run_in(&root, &p, 0, &e).unwrap(), Outcome::Done);
        assert_eq!(p.prepared.get(), 1);
        assert!(!spool::any_waiting(&dir).unwrap());
    }

    /// A lock that cannot be opened (here a link at its name; a read-only
    /// /run in life) is no busy lock: no waiting, one retry after the
    /// first back-off step.
    #[test]
    fn an_unopenable_restart_lock_is_not_waited_for() {
        let (_tmp, root) = SysRoot::scratch();
        let p = probe(false);
        let dir = root.path(p.dir);
        spool::append(&dir, "begin 1 1\nend\n").unwrap();
        let lock_path = root.path(lock::LOCK_PATH);
        std::os::unix::fs::symlink("/nonexistent", &lock_path).unwrap();
        let armed = Armed::default();
        let e = env(&armed, Duration::from_secs(600));
        assert_eq!(run_in(&root, &p, 0, &e).unwrap(), Outcome::Error);
        assert_eq!(*armed.1.borrow(), [retry::delay_after(1)]);
        assert!(spool::any_waiting(&dir).unwrap());
    }

    #[test]
    fn a_failed_record_is_retried_with_a_back_off_and_dropped_only_once_old() {
        let (_tmp, root) = SysRoot::scratch();
        let p = probe(true);
        let dir = root.path(p.dir);
        spool::append(&dir, "begin 1 1\nend\n").unwrap();
        let armed = Armed::default();
        let e = env(&armed, Duration::ZERO);
        for attempt in 1..=retry::MAX_ATTEMPTS + 1 {
            assert_eq!(run_in(&root, &p, 0, &e).unwrap(), Outcome::Error);
            assert_eq!(p.prepared.get(), attempt as usize, "one attempt per run");
            assert!(
                spool::any_waiting(&dir).unwrap(),
                "kept after attempt {attempt}: it is young"
            );
        }
        let delays = armed.1.borrow().clone();
        let expected: Vec<_> = (1..=retry::MAX_ATTEMPTS + 1).map(retry::delay_after).collect();
        assert_eq!(delays, expected);
        // Written over an hour ago and out of attempts: dropped, no retry.
        for f in spool::take(&dir).unwrap() {
            let then = std::time::SystemTime::now() - 2 * retry::GIVE_UP_AGE;
            std::fs::File::options()
                .write(true)
                .open(&f)
                .unwrap()
                .set_modified(then)
                .unwrap();
        }
        assert_eq!(run_in(&root, &p, 0, &e).unwrap(), Outcome::Error);
        assert!(!spool::any_waiting(&dir).unwrap());
        assert_eq!(armed.1.borrow().len(), delays.len());
        // A record that succeeds needs no retry.
        p.fail.set(false);
        spool::append(&dir, "begin 2 2\nend\n").unwrap();
        assert_eq!(run_in(&root, &p, 0, &e).unwrap(), Outcome::Done);
        assert_eq!(armed.1.borrow().len(), delays.len());
    }

    #[test]
    fn a_record_that_arrives_while_closing_is_taken() {
        let (_tmp, root) = SysRoot::scratch();
        let dir = root.path("/run/restart-stale/probe");
        // The manager appends a second record as its first batch is
        // prepared: the loop must come round for it.
        struct Late(Cell<usize>, PathBuf);
        impl Manager for Late {
            fn id(&self) -> &'static str {
                "late"
            }
            fn dir(&self) -> String {
                "/run/restart-stale/probe".to_string()
            }
            fn packages(&self) -> Option<&'static dyn crate::run::Packages> {
                None
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
        assert_eq!(run(&root, &late, &Bus::default(), 0).unwrap(), Outcome::Done);
        assert_eq!(late.0.get(), 2);
        assert!(!spool::any_waiting(&dir).unwrap());
        assert!(closing(&dir).exists());
    }
}
