//! The settle wait between waves: watch each restarted unit for the
//! settle time and apply the pure rule ([`settle_check`]) to every look.
//! Time comes from a [`Clock`], so tests step it instead of waiting.

use crate::core::waves::{settle_check, Health, Settle};
use crate::systemd::{UnitInfo, UnitQuery};
use std::time::{Duration, Instant};

/// How often a settling unit is looked at.
pub const POLL: Duration = Duration::from_millis(200);

/// Elapsed time and sleeping, injectable.
pub trait Clock {
    /// Time since some fixed start.
    fn elapsed(&self) -> Duration;
    fn sleep(&self, d: Duration);
}

/// The real clock.
pub struct RealClock(Instant);

impl Default for RealClock {
    fn default() -> Self {
        Self(Instant::now())
    }
}

impl Clock for RealClock {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// How one unit came through the settle time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub unit: String,
    /// Why it did not settle; `None` when it did.
    pub failed: Option<String>,
    /// Its `InvocationID` at the last look, for `journalctl
    /// _SYSTEMD_INVOCATION_ID=`; empty when unknown.
    pub invocation_id: String,
}

fn health(i: &UnitInfo) -> Health {
    Health {
        active_state: i.active_state.clone(),
        sub_state: i.sub_state.clone(),
        n_restarts: i.n_restarts,
    }
}

/// One look at `unit`: its verdict and invocation ID.
fn look<Q: UnitQuery + ?Sized>(q: &Q, unit: &str, baseline: u32, at_end: bool) -> (Settle, String) {
    match q.unit(unit) {
        Ok(Some(i)) => (settle_check(baseline, &health(&i), at_end), i.invocation_id),
        Ok(None) => (
            Settle::Failed("was unloaded within the settle time".into()),
            String::new(),
        ),
        Err(e) => (
            Settle::Failed(format!("its state could not be read: {e:#}")),
            String::new(),
        ),
    }
}

/// Watches `units` for `time`, from right after their restart jobs
/// ended; one result per unit, in the order given. A unit is settled
/// only once the whole time passed; a failure is final at once.
pub(crate) fn settle<Q: UnitQuery + ?Sized>(
    q: &Q,
    units: &[String],
    time: Duration,
    clock: &dyn Clock,
) -> Vec<Settled> {
    let start = clock.elapsed();
    let baselines: Vec<u32> = units
        .iter()
        .map(|u| q.unit(u).ok().flatten().map_or(0, |i| i.n_restarts))
        .collect();
    let mut out: Vec<Option<Settled>> = vec![None; units.len()];
    loop {
        let spent = clock.elapsed().saturating_sub(start);
        let at_end = spent >= time;
        for (i, unit) in units.iter().enumerate() {
            if out[i].is_some() {
                continue;
            }
            let (verdict, invocation_id) = look(q, unit, baselines[i], at_end);
            let failed = match verdict {
                Settle::Waiting => continue,
                Settle::Settled => None,
                Settle::Failed(why) => Some(why),
            };
            out[i] = Some(Settled {
                unit: unit.clone(),
                failed,
                invocation_id,
            });
        }
        if at_end || out.iter().all(Option::is_some) {
            break;
        }
        clock.sleep(POLL.min(time - spent));
    }
    out.into_iter()
        .map(|s| s.expect("every unit has a verdict at the end"))
        .collect()
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::systemd::fake::{running_service, Fake};
    use std::cell::Cell;
    use std::rc::Rc;

    /// A clock that only moves when slept on, shared with the fake.
    #[derive(Clone, Default)]
    pub struct StepClock(pub Rc<Cell<Duration>>);

    impl Clock for StepClock {
        fn elapsed(&self) -> Duration {
            self.0.get()
        }
        fn sleep(&self, d: Duration) {
            self.0.set(self.0.get() + d);
        }
    }

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|u| u.to_string()).collect()
    }

    #[test]
    fn a_unit_that_fails_after_two_seconds_is_caught() {
        let clock = StepClock::default();
        let fake = Fake::with_units([
            ("ok.service", running_service(10)),
            ("crash.service", running_service(20)),
        ]);
        fake.set_clock(clock.0.clone());
        let mut failed = running_service(0);
        failed.active_state = "failed".into();
        failed.sub_state = "failed".into();
        failed.invocation_id = "0123456789abcdef0123456789abcdef".into();
        fake.later(s(2.0), "crash.service", failed);
        let got = settle(&fake, &names(&["ok.service", "crash.service"]), s(5.0), &clock);
        assert_eq!(got[0].failed, None, "{got:?}");
        let why = got[1].failed.as_deref().expect("caught");
        assert!(why.contains("ended failed (failed)"), "{why}");
        assert_eq!(got[1].invocation_id, "0123456789abcdef0123456789abcdef");
        // The healthy one was watched for the whole settle time.
        assert!(clock.elapsed() >= s(5.0));
    }

    #[test]
    fn a_unit_that_restarts_itself_is_caught() {
        let clock = StepClock::default();
        let fake = Fake::with_units([("loop.service", running_service(10))]);
        fake.set_clock(clock.0.clone());
        let mut again = running_service(11);
        again.n_restarts = 1;
        fake.later(s(1.0), "loop.service", again);
        let got = settle(&fake, &names(&["loop.service"]), s(5.0), &clock);
        let why = got[0].failed.as_deref().expect("caught");
        assert!(why.contains("restarted itself once"), "{why}");
        // A failure ends the wait at once.
        assert!(clock.elapsed() < s(2.0), "{:?}", clock.elapsed());
    }

    #[test]
    fn a_unit_still_activating_at_the_end_did_not_settle() {
        let clock = StepClock::default();
        let mut starting = running_service(10);
        starting.service_type = Some("notify".into());
        starting.active_state = "activating".into();
        starting.sub_state = "start".into();
        let fake = Fake::with_units([("n.service", starting)]);
        fake.set_clock(clock.0.clone());
        let got = settle(&fake, &names(&["n.service"]), s(3.0), &clock);
        assert!(got[0].failed.as_deref().unwrap().contains("did not settle"), "{got:?}");
        // Ready (active) in time: settled.
        let mut ready = running_service(10);
        ready.service_type = Some("notify".into());
        fake.later(s(1.0), "n.service", ready);
        clock.0.set(Duration::ZERO);
        let got = settle(&fake, &names(&["n.service"]), s(3.0), &clock);
        assert_eq!(got[0].failed, None, "{got:?}");
    }
}
