//! Restarting the refined plan behind the health gate: hold what the
//! start limit or a recent restart forbids, split the rest into waves
//! ([`waves::plan`]), restart each wave's jobs in parallel ([`jobs`]),
//! and between waves watch the restarted units settle ([`settle`]). The
//! first failure holds every later wave. docs/restarts.md says it for
//! admins.

use super::settle::{self, Clock};
use super::{describe_all, jobs, recent, verify, Kind, Tally};
use crate::core::waves::{self, Job, Member, StartLimit};
use crate::system::cgroup::Layout;
use crate::system::scan::Scanner;
use crate::system::sysroot::SysRoot;
use crate::systemd::{ServiceManager, UnitInfo};
use anyhow::Result;
use jobs::{JobResult, Outcome};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use verify::Verified;

/// A unit refinement decided to restart, with what the gate needs.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub unit: String,
    pub info: UnitInfo,
    /// Running units its restart carries over to (`Requires=`, `BindsTo=`,
    /// `PartOf=` on their side), nearest first.
    pub reach: Vec<String>,
}

/// Why `c` is held before anything is sent, with its result code.
pub(crate) fn hold_reason(
    c: &Candidate,
    record: &BTreeMap<String, u64>,
    now_ms: u64,
    settle: Duration,
) -> Option<(&'static str, String)> {
    if let Some(why) = waves::restarted_lately(recent::ago(record, &c.unit, now_ms), settle) {
        return Some(("restarted-lately", why));
    }
    let started_ms = c.info.exec_main_start_usec / 1000;
    let limit = StartLimit {
        burst: c.info.start_limit_burst,
        interval: Duration::from_micros(c.info.start_limit_interval_usec),
        n_restarts: c.info.n_restarts,
        last_start_ago: (started_ms > 0).then(|| Duration::from_millis(now_ms.saturating_sub(started_ms))),
    };
    waves::start_limit(&limit).map(|why| ("start-limit", why))
}

/// How a run through the waves behaves.
pub struct Run<'a> {
    pub root: &'a SysRoot,
    pub layout: Option<Layout>,
    pub timeout: Duration,
    pub settle: Duration,
    pub canary: Option<usize>,
    pub clock: &'a dyn Clock,
}

/// One unit's result before it is recorded: settling may still fail it.
struct Pending {
    unit: String,
    kind: Kind,
    result: &'static str,
    detail: String,
    settle: Option<&'static str>,
    invocation_id: Option<String>,
}

/// Restarts `cands` wave by wave and records every result in `tally`;
/// returns how long the restart jobs took in all.
pub(super) fn run<M: ServiceManager + ?Sized>(
    mgr: &M,
    run: &Run,
    cands: &[Candidate],
    tally: &mut Tally,
) -> Result<Duration> {
    let members: Vec<Member> = cands
        .iter()
        .map(|c| Member {
            unit: c.unit.clone(),
            after: c.info.after.clone(),
            dependants: c.reach.clone(),
        })
        .collect();
    let mut plan = waves::plan(&members);
    // --settle 0 turns the gate off: every job at once, as one wave.
    if run.settle.is_zero() && plan.len() > 1 {
        plan = vec![plan.concat()];
    }
    let mut left = run.canary.map(|_| waves::canary(&plan, run.canary));
    let mut failed: Option<String> = None;
    let mut record = recent::load(run.root);
    let mut took = Duration::ZERO;
    let mut scanner = Scanner::default();
    for (n, wave) in plan.iter().enumerate() {
        let mut now: Vec<&Job> = Vec::new();
        for job in wave {
            match waves::go(failed.as_deref(), left) {
                Ok(()) => {
                    left = left.map(|l| l - 1);
                    now.push(job);
                }
                Err(why) => hold_job(tally, job, n + 1, &why, failed.is_some()),
            }
        }
        if now.is_empty() {
            continue;
        }
        let names: Vec<String> = now.iter().flat_map(|j| j.units()).map(String::from).collect();
        log::info!("wave {}: restarting {}", n + 1, names.join(", "));
        let start = Instant::now();
        let outcomes = jobs::restart_all(mgr, &names, run.timeout)?;
        took += start.elapsed();
        recent::save(run.root, &mut record, &names, recent::now_ms(), run.settle);
        let mut results: Vec<Pending> = outcomes
            .iter()
            .map(|(u, o)| verdict(mgr, run, u, o, &mut scanner))
            .collect();
        let more = plan[n + 1..].iter().any(|w| !w.is_empty()) || run.canary.is_some();
        if failed.is_none() && more && !run.settle.is_zero() {
            watch(mgr, run, &now, cands, &mut results);
        }
        for p in results {
            if p.kind == Kind::Failed && failed.is_none() {
                failed = Some(p.unit.clone());
            }
            tally.record(&p.unit, p.kind, p.result, p.detail);
            let r = tally.results.last_mut().expect("just recorded");
            r.wave = Some(n + 1);
            r.settle = p.settle;
            r.invocation_id = p.invocation_id;
        }
    }
    Ok(took)
}

/// Records each unit of a job the gate holds; `halted`: held because an
/// earlier wave failed, which the exit code says.
fn hold_job(tally: &mut Tally, job: &Job, wave: usize, why: &str, halted: bool) {
    let code = if halted { "earlier-failure" } else { "canary" };
    for u in job.units() {
        tally.record_held(u, Some(wave), code, why.to_string());
    }
    tally.halted |= halted;
}

/// Watches the units of this wave's jobs that restarted clean, and the
/// running units systemd restarted with them, for the settle time. A
/// rider's failure fails the job's unit, which reports it.
fn watch<M: ServiceManager + ?Sized>(mgr: &M, run: &Run, now: &[&Job], cands: &[Candidate], results: &mut [Pending]) {
    let clean = |u: &str| results.iter().any(|p| p.unit == u && p.kind == Kind::Clean);
    let mut watched: Vec<(String, String)> = Vec::new();
    for job in now {
        for u in job.units().filter(|u| clean(u)) {
            let riders = cands.iter().filter(|c| c.unit == u).flat_map(|c| c.reach.iter());
            for w in std::iter::once(&u.to_string()).chain(riders) {
                if !watched.iter().any(|(x, _)| x == w) {
                    watched.push((w.clone(), u.to_string()));
                }
            }
        }
    }
    let units: Vec<String> = watched.iter().map(|(w, _)| w.clone()).collect();
    log::info!(
        "watching {} for {}s before the next wave",
        units.join(", "),
        run.settle.as_secs()
    );
    for s in settle::settle(mgr, &units, run.settle, run.clock) {
        let owner = &watched.iter().find(|(w, _)| *w == s.unit).expect("watched").1;
        let Some(p) = results.iter_mut().find(|p| p.unit == *owner) else {
            continue;
        };
        let Some(why) = s.failed else {
            p.settle = p.settle.or(Some("settled"));
            continue;
        };
        let who = if s.unit == *owner {
            String::new()
        } else {
            format!("{} (restarted with it) ", s.unit)
        };
        let journal = if s.invocation_id.is_empty() {
            String::new()
        } else {
            format!(" (journalctl _SYSTEMD_INVOCATION_ID={})", s.invocation_id)
        };
        p.kind = Kind::Failed;
        p.result = "did-not-settle";
        p.detail = format!("{}; but {who}{why}{journal}", p.detail);
        p.settle = Some("failed");
        p.invocation_id = (!s.invocation_id.is_empty()).then_some(s.invocation_id);
    }
}

/// One unit's result, verifying it if the job is done.
fn verdict<M: ServiceManager + ?Sized>(
    mgr: &M,
    run: &Run,
    unit: &str,
    outcome: &Outcome,
    scanner: &mut Scanner,
) -> Pending {
    let secs = |d: &Duration| d.as_secs_f64();
    let (kind, result, detail) = match outcome {
        Outcome::Refused(why) => (
            Kind::Skipped,
            "refused",
            format!("not restarted: systemd refused: {why}"),
        ),
        Outcome::Finished {
            result: JobResult::Done,
            elapsed,
        } => {
            let t = secs(elapsed);
            match verify::unit(mgr, run.root, run.layout, unit, scanner) {
                Verified::Clean => (
                    Kind::Clean,
                    "verified-clean",
                    format!("restarted in {t:.2}s, verified clean"),
                ),
                Verified::StillStale(ps) => (
                    Kind::Failed,
                    "still-stale",
                    format!("restarted in {t:.2}s, still stale: {}", describe_all(&ps)),
                ),
                Verified::NotRunning { active, sub } => (
                    Kind::Failed,
                    "stopped-after-restart",
                    format!("restarted in {t:.2}s, but it is not running now: {active} ({sub})"),
                ),
                Verified::Unknown(e) => (
                    Kind::Failed,
                    "unverified",
                    format!("restarted in {t:.2}s, but could not verify: {e}"),
                ),
            }
        }
        Outcome::Finished { result, elapsed } => (
            Kind::Failed,
            "job-failed",
            format!("restart failed after {:.2}s (job result: {result})", secs(elapsed)),
        ),
        Outcome::StillRunning { elapsed } => (
            Kind::Failed,
            "timed-out",
            format!("restart not finished after {:.0}s; left to systemd", secs(elapsed)),
        ),
        Outcome::Lost { elapsed, error } => (
            Kind::Failed,
            "lost",
            format!("restart result unknown after {:.2}s: {error}", secs(elapsed)),
        ),
        Outcome::NotQueued(e) => (Kind::Failed, "not-queued", format!("restart could not be queued: {e}")),
    };
    // A failed start's journal: the invocation that failed is still the
    // unit's InvocationID.
    let invocation_id = (kind == Kind::Failed)
        .then(|| mgr.unit(unit).ok().flatten().map(|i| i.invocation_id))
        .flatten()
        .filter(|id| !id.is_empty());
    Pending {
        unit: unit.to_string(),
        kind,
        result,
        detail,
        settle: None,
        invocation_id,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{execute_with, verify, Ran, Settings};
    use crate::core::plan::{Action, Plan, Reason, UnitPlan};
    use crate::core::unit_name::Owner;
    use crate::exit::Outcome as Exit;
    use crate::restart::settle::tests::StepClock;
    use crate::system::scan::StaleProcess;
    use crate::systemd::fake::{running_service, Event, Fake};
    use crate::systemd::{Dependant, Tie, UnitInfo};
    use std::time::Duration;

    fn plan_of(units: &[(&str, u32)]) -> Plan {
        let units = units
            .iter()
            .map(|&(unit, pid)| UnitPlan {
                unit: unit.into(),
                action: Action::Restart,
                reason: Reason::AllUnits,
                processes: vec![StaleProcess {
                    pid,
                    comm: "d".into(),
                    owner: Owner::Unit(unit.into()),
                    files: vec![],
                }],
            })
            .collect();
        let mut plan = Plan {
            units,
            ..Plan::default()
        };
        plan.gate.all = true;
        plan
    }

    fn after(pid: u32, units: &[&str]) -> UnitInfo {
        let mut i = running_service(pid);
        i.after = units.iter().map(|u| u.to_string()).collect();
        i
    }

    /// (unit, outcome, result, wave, held reason)
    type Row<'a> = (String, &'a str, &'a str, Option<usize>, Option<String>);

    fn rows(ran: &Ran) -> Vec<Row<'_>> {
        let mut v: Vec<_> = ran
            .results
            .iter()
            .map(|r| (r.unit.clone(), r.outcome, r.result, r.wave, r.held.clone()))
            .collect();
        v.sort();
        v
    }

    /// crash.service dies 2 s after its restart; web.service is ordered
    /// after it, so it is held; db.service shares the first wave and
    /// carries app.service (Requires=) with it.
    #[test]
    fn a_unit_that_fails_within_the_settle_time_holds_the_later_waves() {
        let (_d, root) = verify::tests::fixture(&[10, 20, 30, 40, 50], &[]);
        let clock = StepClock::default();
        let mut db = running_service(30);
        db.dependants = vec![Dependant {
            unit: "app.service".into(),
            tie: Tie::Requires,
        }];
        let fake = Fake::with_units([
            ("crash.service", running_service(10)),
            ("web.service", after(20, &["crash.service"])),
            ("db.service", db),
            ("app.service", after(40, &["db.service"])),
            ("other.service", running_service(50)),
        ]);
        fake.set_clock(clock.0.clone());
        let mut dead = running_service(0);
        dead.active_state = "failed".into();
        dead.sub_state = "failed".into();
        dead.invocation_id = "feedc0de".repeat(4);
        fake.later(Duration::from_secs(2), "crash.service", dead);
        fake.script(["crash.service", "db.service", "app.service", "other.service"].map(|u| Event::removed(u, "done")));
        let plan = plan_of(&[
            ("crash.service", 10),
            ("web.service", 20),
            ("db.service", 30),
            ("app.service", 40),
            ("other.service", 50),
        ]);
        let ran = execute_with(&fake, &root, &plan, None, None, &Settings::default(), &clock).unwrap();
        let held = Some("earlier restart of crash.service failed".to_string());
        assert_eq!(
            rows(&ran),
            vec![
                ("app.service".into(), "restarted", "verified-clean", Some(1), None),
                ("crash.service".into(), "failed", "did-not-settle", Some(1), None),
                ("db.service".into(), "restarted", "verified-clean", Some(1), None),
                ("other.service".into(), "restarted", "verified-clean", Some(1), None),
                ("web.service".into(), "held", "earlier-failure", Some(2), held),
            ]
        );
        assert!(!fake.restarted().contains(&"web.service".to_string()));
        assert_eq!(ran.exit, Exit::Held);
        let crash = ran.results.iter().find(|r| r.unit == "crash.service").unwrap();
        assert_eq!(crash.settle, Some("failed"));
        assert_eq!(crash.invocation_id.as_deref(), Some("feedc0defeedc0defeedc0defeedc0de"));
        assert!(
            crash.detail.contains("journalctl _SYSTEMD_INVOCATION_ID=feedc0de"),
            "{}",
            crash.detail
        );
        let json = serde_json::to_value(&ran.results).unwrap();
        assert!(
            json.to_string()
                .contains(r#""held":"earlier restart of crash.service failed""#),
            "{json}"
        );
    }

    #[test]
    fn healthy_waves_go_one_after_the_other_and_one_wave_waits_for_nothing() {
        let (_d, root) = verify::tests::fixture(&[10, 20], &[]);
        let clock = StepClock::default();
        let fake = Fake::with_units([
            ("a.service", running_service(10)),
            ("b.service", after(20, &["a.service"])),
        ]);
        fake.set_clock(clock.0.clone());
        fake.script([Event::removed("a.service", "done"), Event::removed("b.service", "done")]);
        let plan = plan_of(&[("b.service", 20), ("a.service", 10)]);
        let ran = execute_with(&fake, &root, &plan, None, None, &Settings::default(), &clock).unwrap();
        assert_eq!(fake.restarted(), vec!["a.service".to_string(), "b.service".to_string()]);
        assert_eq!(ran.exit, Exit::Done);
        assert!(clock.0.get() >= Duration::from_secs(5), "a waited to settle before b");
        let a = ran.results.iter().find(|r| r.unit == "a.service").unwrap();
        assert_eq!((a.wave, a.settle), (Some(1), Some("settled")));
        // No ordering between them: one wave, no settle wait at all.
        let (_d, root) = verify::tests::fixture(&[10, 20], &[]);
        let clock = StepClock::default();
        let fake = Fake::with_units([("a.service", running_service(10)), ("b.service", running_service(20))]);
        fake.script([Event::removed("a.service", "done"), Event::removed("b.service", "done")]);
        execute_with(&fake, &root, &plan, None, None, &Settings::default(), &clock).unwrap();
        assert_eq!(clock.0.get(), Duration::ZERO);
    }

    #[test]
    fn settle_zero_turns_the_wait_off() {
        let (_d, root) = verify::tests::fixture(&[10, 20], &[]);
        let clock = StepClock::default();
        let fake = Fake::with_units([
            ("a.service", running_service(10)),
            ("b.service", after(20, &["a.service"])),
        ]);
        fake.set_clock(clock.0.clone());
        fake.script([
            Event::removed("a.service", "failed"),
            Event::removed("b.service", "done"),
        ]);
        let plan = plan_of(&[("a.service", 10), ("b.service", 20)]);
        let off = Settings {
            settle: Duration::ZERO,
            ..Settings::default()
        };
        let ran = execute_with(&fake, &root, &plan, None, None, &off, &clock).unwrap();
        assert_eq!(clock.0.get(), Duration::ZERO);
        // One wave: b.service was restarted with a.service, not held.
        assert_eq!(fake.restarted().len(), 2);
        assert!(ran.results.iter().all(|r| r.wave == Some(1)), "{ran:?}");
        assert_eq!(ran.exit, Exit::RestartFailed);
    }

    #[test]
    fn a_unit_at_its_start_limit_is_held_not_restarted() {
        let (_d, root) = verify::tests::fixture(&[10, 20], &[]);
        let mut tired = running_service(10);
        tired.start_limit_burst = 3;
        tired.start_limit_interval_usec = 600_000_000;
        tired.n_restarts = 2;
        tired.exec_main_start_usec = (super::recent::now_ms() - 30_000) * 1000;
        let fake = Fake::with_units([("tired.service", tired), ("ok.service", running_service(20))]);
        fake.script([Event::removed("ok.service", "done")]);
        let plan = plan_of(&[("tired.service", 10), ("ok.service", 20)]);
        let clock = StepClock::default();
        let ran = execute_with(&fake, &root, &plan, None, None, &Settings::default(), &clock).unwrap();
        assert_eq!(fake.restarted(), vec!["ok.service".to_string()]);
        let t = ran.results.iter().find(|r| r.unit == "tired.service").unwrap();
        assert_eq!((t.outcome, t.result), ("held", "start-limit"));
        assert!(t.held.as_deref().unwrap().contains("StartLimitBurst=3"), "{t:?}");
        assert_eq!(ran.exit, Exit::Pending);
    }

    #[test]
    fn back_to_back_runs_restart_a_unit_once_per_settle_time() {
        let (_d, root) = verify::tests::fixture(&[10], &[]);
        let plan = plan_of(&[("a.service", 10)]);
        let clock = StepClock::default();
        let fake = Fake::with_units([("a.service", running_service(10))]);
        fake.script([Event::removed("a.service", "done")]);
        let hook = Settings {
            hook: true,
            ..Settings::default()
        };
        let first = execute_with(&fake, &root, &plan, None, None, &hook, &clock).unwrap();
        assert_eq!(first.exit, Exit::Done);
        let fake = Fake::with_units([("a.service", running_service(10))]);
        fake.script([Event::removed("a.service", "done")]);
        // The next transaction's run waits out the settle time, then
        // restarts: once per settle time, and nothing lost.
        let before = clock.0.get();
        let second = execute_with(&fake, &root, &plan, None, None, &hook, &clock).unwrap();
        assert_eq!(fake.restarted(), vec!["a.service".to_string()]);
        assert_eq!(second.exit, Exit::Done);
        let waited = clock.0.get() - before;
        assert!(
            waited > Duration::from_secs(4) && waited <= Duration::from_secs(5),
            "{waited:?}"
        );
        // A settle time longer than the run may wait holds the unit.
        let long = Settings {
            settle: Duration::from_secs(600),
            ..hook
        };
        let fake = Fake::with_units([("a.service", running_service(10))]);
        fake.script([Event::removed("a.service", "done")]);
        let before = clock.0.get();
        let third = execute_with(&fake, &root, &plan, None, None, &long, &clock).unwrap();
        assert!(fake.restarted().is_empty());
        assert_eq!(clock.0.get(), before, "a held unit is not waited for");
        assert_eq!(third.results[0].result, "restarted-lately");
        // With the gate off, the record does not hold it.
        let off = Settings {
            settle: Duration::ZERO,
            ..hook
        };
        let fake = Fake::with_units([("a.service", running_service(10))]);
        fake.script([Event::removed("a.service", "done")]);
        execute_with(&fake, &root, &plan, None, None, &off, &clock).unwrap();
        assert_eq!(fake.restarted(), vec!["a.service".to_string()]);
        // An admin's own run asks for the restart: not held either.
        let fake = Fake::with_units([("a.service", running_service(10))]);
        fake.script([Event::removed("a.service", "done")]);
        execute_with(&fake, &root, &plan, None, None, &Settings::default(), &clock).unwrap();
        assert_eq!(fake.restarted(), vec!["a.service".to_string()]);
    }

    #[test]
    fn canary_restarts_n_jobs_checks_them_and_holds_the_rest() {
        let (_d, root) = verify::tests::fixture(&[10, 20, 30], &[]);
        let clock = StepClock::default();
        let fake = Fake::with_units([
            ("a.service", running_service(10)),
            ("b.service", running_service(20)),
            ("c.service", running_service(30)),
        ]);
        fake.set_clock(clock.0.clone());
        fake.script([Event::removed("a.service", "done")]);
        let plan = plan_of(&[("a.service", 10), ("b.service", 20), ("c.service", 30)]);
        let one = Settings {
            canary: Some(1),
            ..Settings::default()
        };
        let ran = execute_with(&fake, &root, &plan, None, None, &one, &clock).unwrap();
        assert_eq!(fake.restarted(), vec!["a.service".to_string()]);
        let held: Vec<_> = ran
            .results
            .iter()
            .filter(|r| r.outcome == "held")
            .map(|r| r.result)
            .collect();
        assert_eq!(held, vec!["canary", "canary"]);
        assert!(clock.0.get() >= Duration::from_secs(5), "the canary was watched");
        assert_eq!(ran.exit, Exit::Pending);
    }
}
