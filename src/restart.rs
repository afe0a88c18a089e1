//! Executing the plan through systemd: take the lock under /run, re-exec
//! PID 1 if it is stale, refine the candidates with live unit state
//! ([`refine`]), restart the rest as parallel jobs ([`jobs`]) and verify
//! each ([`verify`]). One log line per decision and one per result.
//!
//! A dry run goes through [`preview`], which only gets a
//! [`UnitQuery`]: it cannot call anything that changes state.

pub mod jobs;
pub mod lock;
pub mod refine;
pub mod verify;

use crate::cgroup::Layout;
use crate::cli::exit;
use crate::plan::{Plan, UnitPlan};
use crate::scan::Scanner;
use crate::sysroot::SysRoot;
use crate::systemd::{self, dbus::Dbus, ServiceManager, UnitQuery};
use anyhow::Result;
use jobs::{JobResult, Outcome};
use refine::{Decision, Skip};
use std::time::{Duration, Instant};
use verify::Verified;

/// The default for `--timeout`: generous, since some services take long
/// to stop and start, and the run is usually unattended.
pub const DEFAULT_TIMEOUT_SECS: u64 = 300;

/// How a restart run behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How long all restart jobs together may take (also the bound for
    /// systemd to come back after a re-exec).
    pub timeout: Duration,
    /// Re-execute PID 1 when it runs stale code.
    pub reexec: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            reexec: true,
        }
    }
}

/// Connects to systemd and restarts (or, with `dry_run`, previews) the
/// plan; returns the exit code. Without a reachable systemd nothing is
/// done and the restarts stay pending.
pub fn run(root: &SysRoot, plan: &Plan, layout: Option<Layout>, settings: &Settings, dry_run: bool) -> Result<i32> {
    let why_not = if !root.is_host() {
        Some("the root is not / (a test root)")
    } else if !systemd::booted(root) {
        Some("systemd is not running here (no /run/systemd/system)")
    } else {
        None
    };
    if let Some(why) = why_not {
        if dry_run {
            log::debug!("live unit state not checked: {why}");
        } else {
            log::warn!("not restarting anything: {why}");
        }
        return Ok(exit::PENDING);
    }
    if dry_run {
        return match Dbus::connect() {
            Ok(bus) => Ok(preview(&bus, root, plan, settings)),
            Err(e) => {
                log::warn!("{e:#}; live unit state not checked");
                Ok(exit::PENDING)
            }
        };
    }
    let _lock = lock::acquire(root, lock::WAIT)?;
    let bus = Dbus::connect()?;
    execute(&bus, root, plan, layout, settings)
}

/// Reads live state for every candidate; a unit whose state cannot be
/// read is skipped with that error.
fn decide<'p, Q: UnitQuery + ?Sized>(q: &Q, root: &SysRoot, plan: &'p Plan) -> Vec<(&'p UnitPlan, Decision)> {
    plan.restarts()
        .map(|u| {
            let d = match refine::gather(q, root, u) {
                Ok(facts) => refine::refine(&u.unit, &facts),
                Err(e) => Decision::Skip(Skip::Unreadable(format!("{e:#}"))),
            };
            (u, d)
        })
        .collect()
}

fn log_skip(unit: &str, skip: &Skip, dry_run: bool) {
    let verb = if dry_run { "would not restart" } else { "not restarting" };
    match skip {
        Skip::Leftovers { .. } | Skip::Unreadable(_) => log::warn!("{unit}: {verb}: {skip}"),
        _ => log::info!("{unit}: {verb}: {skip}"),
    }
}

/// The dry run: logs what a real run would do, using read-only calls.
/// Returns [`exit::PENDING`] if anything would be restarted.
pub fn preview<Q: UnitQuery + ?Sized>(q: &Q, root: &SysRoot, plan: &Plan, settings: &Settings) -> i32 {
    let mut would = 0;
    if plan.init.is_some() {
        if settings.reexec {
            log::info!("PID 1: would re-execute systemd (it runs stale code)");
            would += 1;
        } else {
            log::info!("PID 1: runs stale code; would not re-execute it (re-exec is turned off)");
        }
    }
    for (u, d) in decide(q, root, plan) {
        match d {
            Decision::Restart => {
                log::info!("{}: would restart ({})", u.unit, u.reason);
                would += 1;
            }
            Decision::Skip(s) => log_skip(&u.unit, &s, true),
        }
    }
    if would > 0 {
        exit::PENDING
    } else {
        exit::OK
    }
}

/// Counts for the summary line and the exit code.
#[derive(Debug, Default)]
struct Tally {
    clean: usize,
    failed: usize,
    skipped: usize,
}

impl Tally {
    fn exit_code(&self) -> i32 {
        if self.failed > 0 {
            exit::RESTART_FAILED
        } else {
            exit::OK
        }
    }
}

/// The real run: re-exec, refine, restart, verify. Returns the exit code:
/// [`exit::RESTART_FAILED`] if any restart failed, timed out or left stale
/// code running, else [`exit::OK`].
pub fn execute<M: ServiceManager + ?Sized>(
    mgr: &M,
    root: &SysRoot,
    plan: &Plan,
    layout: Option<Layout>,
    settings: &Settings,
) -> Result<i32> {
    let mut tally = Tally::default();
    if plan.init.is_some() && !reexec_init(mgr, root, settings, &mut tally) {
        log::error!("not restarting any unit while systemd is not answering");
        return Ok(exit::RESTART_FAILED);
    }
    let mut units = Vec::new();
    for (u, d) in decide(mgr, root, plan) {
        match d {
            Decision::Restart => {
                log::info!("{}: restarting ({})", u.unit, u.reason);
                units.push(u.unit.clone());
            }
            Decision::Skip(s) => {
                log_skip(&u.unit, &s, false);
                if s.is_error() {
                    tally.failed += 1;
                } else {
                    tally.skipped += 1;
                }
            }
        }
    }
    let mut took = Duration::ZERO;
    if !units.is_empty() {
        let start = Instant::now();
        let outcomes = jobs::restart_all(mgr, &units, settings.timeout)?;
        took = start.elapsed();
        let mut scanner = Scanner::default();
        for (unit, outcome) in &outcomes {
            report(mgr, root, layout, unit, outcome, &mut scanner, &mut tally);
        }
    }
    log::info!(
        "summary: {} restarted and verified clean, {} failed or still stale, {} not restarted; restart jobs took {:.2}s",
        tally.clean,
        tally.failed,
        tally.skipped,
        took.as_secs_f64()
    );
    Ok(tally.exit_code())
}

/// Re-executes PID 1 and checks it; `false` if systemd did not come back.
fn reexec_init<M: ServiceManager + ?Sized>(mgr: &M, root: &SysRoot, settings: &Settings, tally: &mut Tally) -> bool {
    if !settings.reexec {
        log::info!("PID 1: runs stale code; not re-executing it (re-exec is turned off)");
        tally.skipped += 1;
        return true;
    }
    log::info!("PID 1: re-executing systemd (it runs stale code)");
    let start = Instant::now();
    if let Err(e) = mgr.reexecute(start + settings.timeout) {
        log::error!("PID 1: re-execution failed: {e:#}");
        tally.failed += 1;
        return false;
    }
    let secs = start.elapsed().as_secs_f64();
    match verify::init(root, &mut Scanner::default()) {
        Ok(stale) if stale.is_empty() => {
            log::info!("PID 1: re-executed in {secs:.2}s, verified clean");
            tally.clean += 1;
        }
        Ok(stale) => {
            log::error!(
                "PID 1: re-executed in {secs:.2}s, still stale: {}",
                describe_all(&stale)
            );
            tally.failed += 1;
        }
        Err(e) => {
            log::error!("PID 1: re-executed in {secs:.2}s, but could not verify: {e:#}");
            tally.failed += 1;
        }
    }
    true
}

fn describe_all(ps: &[crate::scan::StaleProcess]) -> String {
    ps.iter().map(verify::describe).collect::<Vec<_>>().join("; ")
}

/// Logs one unit's result (verifying it if the job is done) and counts it.
fn report<M: ServiceManager + ?Sized>(
    mgr: &M,
    root: &SysRoot,
    layout: Option<Layout>,
    unit: &str,
    outcome: &Outcome,
    scanner: &mut Scanner,
    tally: &mut Tally,
) {
    if let Outcome::Refused(why) = outcome {
        log::info!("{unit}: not restarted: systemd refused: {why}");
        tally.skipped += 1;
        return;
    }
    tally.failed += 1;
    match outcome {
        Outcome::Finished {
            result: JobResult::Done,
            elapsed,
        } => {
            let secs = elapsed.as_secs_f64();
            match verify::unit(mgr, root, layout, unit, scanner) {
                Verified::Clean => {
                    log::info!("{unit}: restarted in {secs:.2}s, verified clean");
                    tally.failed -= 1;
                    tally.clean += 1;
                }
                Verified::StillStale(ps) => {
                    log::error!("{unit}: restarted in {secs:.2}s, still stale: {}", describe_all(&ps))
                }
                Verified::NotRunning { active, sub } => {
                    log::error!("{unit}: restarted in {secs:.2}s, but it is not running now: {active} ({sub})")
                }
                Verified::Unknown(e) => log::error!("{unit}: restarted in {secs:.2}s, but could not verify: {e}"),
            }
        }
        Outcome::Finished { result, elapsed } => log::error!(
            "{unit}: restart failed after {:.2}s (job result: {result})",
            elapsed.as_secs_f64()
        ),
        Outcome::StillRunning { elapsed } => log::error!(
            "{unit}: restart not finished after {:.0}s; left to systemd",
            elapsed.as_secs_f64()
        ),
        Outcome::Lost { elapsed, error } => log::error!(
            "{unit}: restart result unknown after {:.2}s: {error}",
            elapsed.as_secs_f64()
        ),
        Outcome::NotQueued(e) => log::error!("{unit}: restart could not be queued: {e}"),
        Outcome::Refused(_) => unreachable!("handled above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, Reason};
    use crate::scan::StaleProcess;
    use crate::systemd::fake::{running_service, Call, Event, Fake};
    use crate::unit_name::Owner;

    fn candidate(unit: &str, pids: &[u32]) -> UnitPlan {
        UnitPlan {
            unit: unit.into(),
            action: Action::Restart,
            reason: Reason::AllUnits,
            processes: pids
                .iter()
                .map(|&pid| StaleProcess {
                    pid,
                    comm: "d".into(),
                    owner: Owner::Unit(unit.into()),
                    files: vec![],
                })
                .collect(),
        }
    }

    fn plan_of(units: Vec<UnitPlan>) -> Plan {
        Plan {
            units,
            ..Plan::default()
        }
    }

    /// a.service is healthy, r.service refuses manual stop, l.service
    /// has only a stale leftover child under KillMode=process.
    fn world() -> (tempfile::TempDir, SysRoot, Fake, Plan) {
        let (d, root) = verify::tests::fixture(&[20, 30, 40, 41], &[]);
        let mut a = running_service(20);
        a.control_group = "/system.slice/a.service".into();
        let mut r = running_service(30);
        r.refuse_manual_stop = true;
        let mut l = running_service(40);
        l.kill_mode = Some("process".into());
        let fake = Fake::with_units([("a.service", a), ("r.service", r), ("l.service", l)]);
        let plan = plan_of(vec![
            candidate("a.service", &[20]),
            candidate("l.service", &[41]),
            candidate("r.service", &[30]),
            candidate("gone.service", &[50]),
        ]);
        (d, root, fake, plan)
    }

    #[test]
    fn dry_run_makes_no_state_changing_call() {
        let (_d, root, fake, mut plan) = world();
        plan.init = Some(candidate("init.scope", &[1]).processes.remove(0));
        let code = preview(&fake, &root, &plan, &Settings::default());
        assert_eq!(code, exit::PENDING);
        let calls = fake.calls();
        assert!(!calls.is_empty());
        assert!(calls.iter().all(|c| !c.mutates()), "{calls:?}");
    }

    #[test]
    fn restarts_only_what_refinement_keeps_and_verifies_it() {
        let (_d, root, fake, plan) = world();
        fake.script([Event::removed("a.service", "done")]);
        let code = execute(&fake, &root, &plan, Some(Layout::Unified), &Settings::default()).unwrap();
        assert_eq!(fake.restarted(), vec!["a.service".to_string()]);
        assert!(!fake.calls().contains(&Call::Reexecute));
        assert_eq!(code, exit::OK);
    }

    #[test]
    fn still_stale_after_restart_fails_the_run() {
        let (_d, root) = verify::tests::fixture(&[20, 21], &[21]);
        let mut a = running_service(20);
        a.control_group = "/system.slice/a.service".into();
        let fake = Fake::with_units([("a.service", a)]);
        fake.script([Event::removed("a.service", "done")]);
        let plan = plan_of(vec![candidate("a.service", &[20])]);
        let code = execute(&fake, &root, &plan, Some(Layout::Unified), &Settings::default()).unwrap();
        assert_eq!(code, exit::RESTART_FAILED);
    }

    #[test]
    fn failed_job_fails_the_run() {
        let (_d, root, fake, plan) = world();
        fake.script([Event::removed("a.service", "failed")]);
        let code = execute(&fake, &root, &plan, Some(Layout::Unified), &Settings::default()).unwrap();
        assert_eq!(code, exit::RESTART_FAILED);
    }

    #[test]
    fn stale_pid1_is_reexecuted_first_unless_turned_off() {
        let (_d, root, fake, mut plan) = world();
        plan.init = Some(candidate("init.scope", &[1]).processes.remove(0));
        fake.script([Event::removed("a.service", "done")]);
        let code = execute(&fake, &root, &plan, Some(Layout::Unified), &Settings::default()).unwrap();
        assert_eq!(code, exit::OK);
        assert_eq!(fake.calls()[0], Call::Reexecute);

        let (_d, root, fake, mut plan) = world();
        plan.init = Some(candidate("init.scope", &[1]).processes.remove(0));
        fake.script([Event::removed("a.service", "done")]);
        let off = Settings {
            reexec: false,
            ..Settings::default()
        };
        execute(&fake, &root, &plan, Some(Layout::Unified), &off).unwrap();
        assert!(!fake.calls().contains(&Call::Reexecute));
    }

    #[test]
    fn failed_reexec_restarts_nothing() {
        let (_d, root, mut fake, mut plan) = world();
        fake.reexec_fails = true;
        plan.init = Some(candidate("init.scope", &[1]).processes.remove(0));
        let code = execute(&fake, &root, &plan, Some(Layout::Unified), &Settings::default()).unwrap();
        assert_eq!(code, exit::RESTART_FAILED);
        assert!(fake.restarted().is_empty());
    }
}
