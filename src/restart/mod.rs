//! Executing the plan through systemd: take the lock under /run, re-exec
//! PID 1 if it is stale, refine the candidates with live unit state
//! ([`refine`]), restart the rest as parallel jobs ([`jobs`]) and verify
//! each ([`verify`]). One log line per decision and one per result.
//!
//! A dry run goes through [`preview`], which only gets a
//! [`UnitQuery`]: it cannot call anything that changes state.

pub mod gate;
pub mod holds;
pub mod jobs;
pub mod lock;
pub mod mark;
pub mod reach;
pub mod recent;
pub mod refine;
pub mod settle;
mod tally;
pub mod verify;

use crate::core::changed::{normalize, ChangedSet};
use crate::core::plan::{Plan, UnitPlan};
use crate::core::waves;
use crate::exit::Outcome as Exit;
use crate::system::cgroup::Layout;
use crate::system::scan::Scanner;
use crate::system::sysroot::SysRoot;
use crate::systemd::{self, Bus, ServiceManager, UnitInfo, UnitQuery};
use anyhow::Result;
use refine::{Decision, Skip};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

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
    /// How long restarted units must stay healthy before the next wave;
    /// zero turns the health gate off (docs/restarts.md).
    pub settle: Duration,
    /// `--canary N`: restart at most this many jobs, check them, stop.
    pub canary: Option<usize>,
    /// A package manager's hook started this run: it first waits until a
    /// unit this tool restarted less than one settle time ago has settled
    /// (back-to-back transactions, the restart storm of needrestart#340),
    /// and holds it only past [`waves::MAX_SETTLE_WAIT`]. An admin's own
    /// run asks for its restarts and does not wait.
    pub hook: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            reexec: true,
            settle: Duration::from_secs(waves::DEFAULT_SETTLE_SECS),
            canary: None,
            hook: false,
        }
    }
}

use tally::{record_skip, skip_level, Kind, Tally};
pub use tally::{DaemonReload, Ran, UnitResult};

/// Connects to systemd and restarts (or, with `dry_run`, previews) the
/// plan. Without a reachable systemd nothing is done and the restarts stay
/// pending.
/// `changed` is the transaction's changed-file set, when there is one: a
/// unit file among it makes systemd reload before the restarts.
pub fn run(
    bus: &Bus,
    root: &SysRoot,
    plan: &Plan,
    changed: Option<&ChangedSet>,
    layout: Option<Layout>,
    settings: &Settings,
    dry_run: bool,
) -> Result<Ran> {
    if let Some(why) = unreachable(root) {
        if dry_run {
            log::debug!("live unit state not checked: {why}");
        } else {
            log::warn!("not restarting anything: {why}");
        }
        return Ok(Ran::exit_only(Exit::Pending));
    }
    if dry_run {
        return match bus.get() {
            Ok(bus) => Ok(Ran::exit_only(preview(bus, root, plan, settings))),
            Err(e) => {
                log::warn!("{e:#}; live unit state not checked");
                Ok(Ran::exit_only(Exit::Pending))
            }
        };
    }
    let _lock = lock::acquire(root, lock::WAIT)?;
    execute(bus.get()?, root, plan, changed, layout, settings)
}

/// Why systemd must not be asked about this root, if it must not: a test
/// root, no systemd, or a chroot.
fn unreachable(root: &SysRoot) -> Option<String> {
    if !root.is_host() {
        Some("the root is not / (a test root)".to_string())
    } else {
        systemd::running(root).err()
    }
}

/// One candidate's live-state decision.
struct Decided<'p> {
    u: &'p UnitPlan,
    d: Decision,
    /// Why systemd must reload its unit files first ([`reload_cause`]).
    reload: Option<String>,
    /// What the health gate needs, for a unit to restart.
    gate: Option<gate::Candidate>,
}

/// Reads live state for every candidate; a unit whose state cannot be
/// read is skipped with that error. Also says why systemd must reload
/// its unit files before the unit restarts, if it must ([`reload_cause`]).
fn decide<'p, Q: UnitQuery + ?Sized>(
    q: &Q,
    root: &SysRoot,
    plan: &'p Plan,
    changed: Option<&ChangedSet>,
) -> Vec<Decided<'p>> {
    plan.restarts()
        .map(|u| match refine::gather(q, root, u) {
            Ok(facts) => {
                let reload = facts.info.as_ref().and_then(|i| reload_cause(&u.unit, i, changed));
                let reach = facts
                    .reach
                    .units
                    .iter()
                    .filter(|r| r.info.as_ref().is_some_and(|i| !i.stopped()) && reach::verb(&r.path) == "restart")
                    .map(|r| r.unit().to_string())
                    .collect();
                let gate = facts.info.clone().map(|info| gate::Candidate {
                    unit: u.unit.clone(),
                    info,
                    reach,
                });
                let d = refine::refine(&u.unit, &facts, &plan.gate);
                Decided { u, d, reload, gate }
            }
            Err(e) => Decided {
                u,
                d: Decision::Skip(Skip::Unreadable(format!("{e:#}"))),
                reload: None,
                gate: None,
            },
        })
        .collect()
}

/// Why systemd must reload its unit files before `unit` restarts, if it
/// must. systemd's own `NeedDaemonReload` compares only mtimes, and dpkg
/// installs the whole-second mtimes a .deb carries: two builds of a unit
/// file in the same second look unchanged to systemd. The transaction's
/// changed files say it for sure, so a unit file or drop-in among them
/// (compared in merged-/usr form: `/lib/systemd/system/x` is
/// `/usr/lib/systemd/system/x`) asks for a reload whatever systemd says.
pub(crate) fn reload_cause(unit: &str, info: &UnitInfo, changed: Option<&ChangedSet>) -> Option<String> {
    let files = std::iter::once(&info.fragment_path).chain(&info.drop_in_paths);
    let in_transaction = changed.and_then(|c| files.filter(|p| !p.is_empty()).find(|p| c.contains(p)));
    if let Some(path) = in_transaction {
        return Some(format!("unit file changed in this transaction: {}", normalize(path)));
    }
    info.need_daemon_reload
        .then(|| format!("{unit} has NeedDaemonReload=yes: its unit file changed on disk since systemd loaded it"))
}

/// The dry run: logs what a real run would do, using read-only calls.
/// Returns [`Exit::Pending`] if anything would be restarted, or would be
/// left running stale code ([`Skip::leaves_stale_code`]).
pub(crate) fn preview<Q: UnitQuery + ?Sized>(q: &Q, root: &SysRoot, plan: &Plan, settings: &Settings) -> Exit {
    let mut would = 0;
    if plan.init.is_some() {
        if settings.reexec {
            log::info!("PID 1: would re-execute systemd (it runs stale code)");
            would += 1;
        } else {
            log::info!("PID 1: runs stale code; would not re-execute it (re-exec is turned off)");
        }
    }
    for Decided { u, d, .. } in decide(q, root, plan, None) {
        match d {
            Decision::Restart => {
                log::info!("{}: would restart ({})", u.unit, u.reason);
                would += 1;
            }
            Decision::Skip(s) => {
                log::log!(skip_level(&s), "{}: would not restart: {s}", u.unit);
                if s.leaves_stale_code() {
                    would += 1;
                }
            }
        }
    }
    if would > 0 {
        Exit::Pending
    } else {
        Exit::Done
    }
}

/// The real run: re-exec, refine, restart, verify. The exit code is
/// [`Exit::RestartFailed`] if any restart failed, timed out or left stale
/// code running; else [`Exit::Pending`] if an allowed unit was not
/// restarted after all and still runs stale code (leftover processes,
/// `RefuseManualStop=`, `CanStop=no`, a per-connection instance): no
/// restart was attempted, so none failed, but one is still needed;
/// else [`Exit::Done`]. A failure that held later waves makes it
/// [`Exit::Held`]; units held by the start limit or `--canary` leave it
/// [`Exit::Pending`] (docs/restarts.md).
pub fn execute<M: ServiceManager + ?Sized>(
    mgr: &M,
    root: &SysRoot,
    plan: &Plan,
    changed: Option<&ChangedSet>,
    layout: Option<Layout>,
    settings: &Settings,
) -> Result<Ran> {
    execute_with(
        mgr,
        root,
        plan,
        changed,
        layout,
        settings,
        &settle::RealClock::default(),
    )
}

/// Waits until every planned unit this tool restarted lately has had one
/// settle time, at most [`waves::MAX_SETTLE_WAIT`]: the state read after
/// the wait is the settled one, and the restart is not lost. Returns the
/// time holds are judged at: now, and no earlier than the wait's end.
fn settle_recent(plan: &Plan, record: &BTreeMap<String, u64>, settle: Duration, clock: &dyn settle::Clock) -> u64 {
    let now_ms = recent::now_ms();
    let agos = plan.units.iter().map(|u| recent::ago(record, &u.unit, now_ms));
    let wait = waves::settle_wait(agos, settle, waves::MAX_SETTLE_WAIT);
    if !wait.is_zero() {
        log::info!(
            "waiting {:.1}s: a planned unit was restarted by restart-stale within the settle time ({}s)",
            wait.as_secs_f64(),
            settle.as_secs()
        );
        clock.sleep(wait);
    }
    recent::now_ms().max(now_ms + wait.as_millis() as u64)
}

/// [`execute`] with the clock the settle wait runs on.
pub(crate) fn execute_with<M: ServiceManager + ?Sized>(
    mgr: &M,
    root: &SysRoot,
    plan: &Plan,
    changed: Option<&ChangedSet>,
    layout: Option<Layout>,
    settings: &Settings,
    clock: &dyn settle::Clock,
) -> Result<Ran> {
    let mut tally = Tally::default();
    if plan.init.is_some() && !reexec_init(mgr, root, settings, &mut tally) {
        log::error!("not restarting any unit while systemd is not answering");
        return Ok(tally.ran());
    }
    let mut cands = Vec::new();
    let mut reload = Vec::new();
    // Every run records its restarts (gate.rs); only a hook's run waits
    // for them to settle, and is held by them past MAX_SETTLE_WAIT.
    let record = if settings.hook {
        recent::load(root)
    } else {
        Default::default()
    };
    let now_ms = settle_recent(plan, &record, settings.settle, clock);
    for Decided {
        u,
        d,
        reload: cause,
        gate,
    } in decide(mgr, root, plan, changed)
    {
        match (d, gate) {
            (Decision::Restart, Some(c)) => {
                if let Some((code, why)) = gate::hold_reason(&c, &record, now_ms, settings.settle) {
                    tally.record_held(&u.unit, None, code, why);
                    continue;
                }
                log::info!("{}: restarting ({})", u.unit, u.reason);
                cands.push(c);
                reload.extend(cause.map(|c| (u.unit.clone(), c)));
            }
            // Refinement restarts only a loaded unit.
            (Decision::Restart, None) => record_skip(&mut tally, &u.unit, &Skip::NotLoaded),
            (Decision::Skip(s), _) => record_skip(&mut tally, &u.unit, &s),
        }
    }
    if !reload.is_empty() {
        reload_first(mgr, &reload, &mut tally);
    }
    let run = gate::Run {
        root,
        layout,
        timeout: settings.timeout,
        settle: settings.settle,
        canary: settings.canary,
        clock,
    };
    let took = gate::run(mgr, &run, &cands, &mut tally)?;
    let planned: Vec<&str> = plan.units.iter().map(|u| u.unit.as_str()).collect();
    holds::save(root, &planned, &tally.results, recent::now_ms());
    tally.summarize(took);
    Ok(tally.ran())
}

/// The upgrade rewrote these units' files, or systemd says they changed
/// on disk, and nothing ran daemon-reload (packages built without
/// debhelper, hand-made ones, or a rebuild whose files kept their
/// mtime): restarted now, they would run their old definition. So
/// systemd reloads once, before any restart; recorded as `daemon-reload`
/// in the results and as `daemon_reload` in the JSON report.
fn reload_first<M: ServiceManager + ?Sized>(mgr: &M, causes: &[(String, String)], tally: &mut Tally) {
    let which = causes.iter().map(|(u, _)| u.as_str()).collect::<Vec<_>>().join(", ");
    let reason = causes[0].1.clone();
    let more = match causes.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    log::info!("daemon-reload: {reason}{more}; reloading systemd's unit files before restarting {which}");
    let reloaded = match mgr.reload() {
        Ok(()) => {
            let detail = format!("reloaded systemd's unit files before restarting {which}: {reason}{more}");
            tally.record_note("daemon-reload", "reloaded", detail);
            true
        }
        Err(e) => {
            let detail = format!("{e:#}; {which} restart on the definition systemd has loaded");
            log::warn!("daemon-reload: {detail}");
            tally.record_note("daemon-reload", "reload-failed", detail);
            false
        }
    };
    tally.daemon_reload = Some(DaemonReload { reason, reloaded });
}

/// Re-executes PID 1 and checks it; `false` if systemd did not come back.
fn reexec_init<M: ServiceManager + ?Sized>(mgr: &M, root: &SysRoot, settings: &Settings, tally: &mut Tally) -> bool {
    // Recorded as init.scope, the unit PID 1 lives in and the name policy
    // uses to turn the re-exec off; logged as "PID 1".
    let mut record = |kind: Kind, result: &'static str, detail: String| {
        let level = if kind == Kind::Failed {
            log::Level::Error
        } else {
            log::Level::Info
        };
        tally.record_logged(level, "PID 1", "init.scope", kind, result, detail);
    };
    if !settings.reexec {
        let detail = "runs stale code; not re-executing it (re-exec is turned off)".to_string();
        record(Kind::Skipped, "reexec-turned-off", detail);
        return true;
    }
    log::info!("PID 1: re-executing systemd (it runs stale code)");
    let start = Instant::now();
    if let Err(e) = mgr.reexecute(start + settings.timeout) {
        record(Kind::Failed, "reexec-failed", format!("re-execution failed: {e:#}"));
        return false;
    }
    let secs = start.elapsed().as_secs_f64();
    match verify::init(root, &mut Scanner::default()) {
        Ok(stale) if stale.is_empty() => {
            record(
                Kind::Clean,
                "verified-clean",
                format!("re-executed in {secs:.2}s, verified clean"),
            );
        }
        Ok(stale) => {
            let detail = format!("re-executed in {secs:.2}s, still stale: {}", describe_all(&stale));
            record(Kind::Failed, "still-stale", detail);
        }
        Err(e) => {
            let detail = format!("re-executed in {secs:.2}s, but could not verify: {e:#}");
            record(Kind::Failed, "unverified", detail);
        }
    }
    true
}

fn describe_all(ps: &[crate::system::scan::StaleProcess]) -> String {
    ps.iter().map(verify::describe).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::plan::{Action, Reason};
    use crate::core::unit_name::Owner;
    use crate::system::scan::StaleProcess;
    use crate::systemd::fake::{running_service, Call, Event, Fake};

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
    fn unit_files_changed_on_disk_are_reloaded_once_before_the_restarts() {
        let (_d, root) = verify::tests::fixture(&[20, 30], &[]);
        let mut a = running_service(20);
        a.need_daemon_reload = true;
        let b = running_service(30);
        let fake = Fake::with_units([("a.service", a), ("b.service", b)]);
        fake.script([Event::removed("a.service", "done"), Event::removed("b.service", "done")]);
        let plan = plan_of(vec![candidate("a.service", &[20]), candidate("b.service", &[30])]);
        let ran = execute(&fake, &root, &plan, None, None, &Settings::default()).unwrap();
        let calls = fake.calls();
        let reload = calls.iter().position(|c| *c == Call::Reload).expect("reloaded");
        assert_eq!(calls.iter().filter(|c| **c == Call::Reload).count(), 1, "{calls:?}");
        let first_restart = calls
            .iter()
            .position(|c| matches!(c, Call::EnqueueRestart(_)))
            .expect("restarted");
        assert!(reload < first_restart, "{calls:?}");
        let note = ran
            .results
            .iter()
            .find(|r| r.unit == "daemon-reload")
            .expect("in the results");
        assert_eq!((note.outcome, note.result), ("note", "reloaded"));
    }

    /// dpkg gave the new unit file the old one's mtime: systemd says
    /// NeedDaemonReload=no, but the transaction changed the file.
    #[test]
    fn a_unit_file_in_the_transaction_asks_for_a_reload_whatever_systemd_says() {
        let mut x = running_service(20);
        x.fragment_path = "/lib/systemd/system/x.service".into();
        x.drop_in_paths = vec!["/etc/systemd/system/x.service.d/local.conf".into()];
        let changed: ChangedSet = ["/usr/lib/systemd/system/x.service"].into_iter().collect();
        assert_eq!(
            reload_cause("x.service", &x, Some(&changed)).as_deref(),
            Some("unit file changed in this transaction: /usr/lib/systemd/system/x.service")
        );
        let drop_in: ChangedSet = ["/etc/systemd/system/x.service.d/local.conf"].into_iter().collect();
        assert!(reload_cause("x.service", &x, Some(&drop_in))
            .unwrap()
            .ends_with("x.service.d/local.conf"));
        // Neither changed, nor any set at all: only systemd's word counts.
        let other: ChangedSet = ["/usr/sbin/xd", ""].into_iter().collect();
        assert_eq!(reload_cause("x.service", &x, Some(&other)), None);
        assert_eq!(reload_cause("x.service", &x, None), None);
        x.need_daemon_reload = true;
        assert!(reload_cause("x.service", &x, None)
            .unwrap()
            .contains("NeedDaemonReload=yes"));
        // A transient unit has no file: an empty path never matches.
        let mut t = running_service(21);
        t.need_daemon_reload = false;
        assert_eq!(reload_cause("t.service", &t, Some(&other)), None);
    }

    #[test]
    fn a_changed_unit_file_is_reloaded_before_the_restart_and_reported() {
        let (_d, root) = verify::tests::fixture(&[20], &[]);
        let mut x = running_service(20);
        x.fragment_path = "/usr/lib/systemd/system/x.service".into();
        let fake = Fake::with_units([("x.service", x)]);
        fake.script([Event::removed("x.service", "done")]);
        let plan = plan_of(vec![candidate("x.service", &[20])]);
        let changed: ChangedSet = ["/lib/systemd/system/x.service"].into_iter().collect();
        let ran = execute(&fake, &root, &plan, Some(&changed), None, &Settings::default()).unwrap();
        let calls = fake.calls();
        let reload = calls.iter().position(|c| *c == Call::Reload).expect("reloaded");
        let restart = calls.iter().position(|c| matches!(c, Call::EnqueueRestart(_))).unwrap();
        assert!(reload < restart, "{calls:?}");
        let why = ran.daemon_reload.expect("the reason is kept for the report");
        assert_eq!(
            why.reason,
            "unit file changed in this transaction: /usr/lib/systemd/system/x.service"
        );
        assert!(why.reloaded);
        // Without the transaction's list, nothing says the file changed
        // (a fresh root: the first run's restart would hold this one).
        let (_d, root) = verify::tests::fixture(&[20], &[]);
        let fake = Fake::with_units([("x.service", running_service(20))]);
        let ran = execute(&fake, &root, &plan, None, None, &Settings::default()).unwrap();
        assert!(!fake.calls().contains(&Call::Reload));
        assert_eq!(fake.restarted(), vec!["x.service".to_string()]);
        assert_eq!(ran.daemon_reload, None);
    }

    #[test]
    fn dry_run_makes_no_state_changing_call() {
        let (_d, root, fake, mut plan) = world();
        plan.init = Some(candidate("init.scope", &[1]).processes.remove(0));
        let code = preview(&fake, &root, &plan, &Settings::default());
        assert_eq!(code, Exit::Pending);
        let calls = fake.calls();
        assert!(!calls.is_empty());
        assert!(calls.iter().all(|c| !c.mutates()), "{calls:?}");
    }

    #[test]
    fn restarts_only_what_refinement_keeps_and_verifies_it() {
        let (_d, root, fake, plan) = world();
        fake.script([Event::removed("a.service", "done")]);
        let code = execute(&fake, &root, &plan, None, Some(Layout::Unified), &Settings::default())
            .unwrap()
            .exit;
        assert_eq!(fake.restarted(), vec!["a.service".to_string()]);
        assert!(!fake.calls().contains(&Call::Reexecute));
        // l.service and r.service still run stale code: not done.
        assert_eq!(code, Exit::Pending);
    }

    /// Each skip that leaves an allowed unit running stale code ends the
    /// run with 3 (restarts needed but not done), in a real run and in a
    /// dry run; a unit whose stale processes exited meanwhile does not.
    #[test]
    fn a_unit_left_running_stale_code_is_not_done() {
        let (_d, root) = verify::tests::fixture(&[20, 30, 40, 41], &[]);
        let mut refuses = running_service(20);
        refuses.refuse_manual_stop = true;
        let mut cannot_stop = running_service(20);
        cannot_stop.can_stop = false;
        let mut leftovers = running_service(40);
        leftovers.kill_mode = Some("process".into());
        let mut per_connection = running_service(20);
        per_connection.triggered_by = vec!["x.socket".into()];
        let cases = [
            ("refuses-manual-stop", refuses, 20),
            ("cannot-stop", cannot_stop, 20),
            ("leftover-processes", leftovers, 41),
            ("per-connection-instance", per_connection, 20),
        ];
        for (code, info, pid) in cases {
            let mut fake = Fake::with_units([("x@1.service", info)]);
            if code == "per-connection-instance" {
                fake.accepting_sockets = vec!["x.socket".into()];
            }
            let plan = plan_of(vec![candidate("x@1.service", &[pid])]);
            let ran = execute(&fake, &root, &plan, None, Some(Layout::Unified), &Settings::default()).unwrap();
            assert_eq!(triples(&ran), vec![("x@1.service", "skipped", code)]);
            assert_eq!(ran.exit, Exit::Pending, "{code}");
            assert_eq!(
                preview(&fake, &root, &plan, &Settings::default()),
                Exit::Pending,
                "{code}"
            );
            assert!(fake.restarted().is_empty());
        }
        // Its stale process exited since the scan: nothing left to do.
        let fake = Fake::with_units([("x.service", running_service(20))]);
        let plan = plan_of(vec![candidate("x.service", &[77])]);
        let ran = execute(&fake, &root, &plan, None, Some(Layout::Unified), &Settings::default()).unwrap();
        assert_eq!(triples(&ran), vec![("x.service", "skipped", "no-longer-stale")]);
        assert_eq!(ran.exit, Exit::Done);
        assert_eq!(preview(&fake, &root, &plan, &Settings::default()), Exit::Done);
    }

    /// With `-a`, a stale nfs-mountd.service would restart the
    /// nfs-server.service that `Requires=` it, which the admin denied.
    #[test]
    fn a_restart_carried_over_to_a_denied_unit_is_not_done() {
        use crate::core::plan::Gate;
        use crate::core::policy::{Entry, Level, Policy};
        use crate::systemd::{Dependant, Tie};
        let (_d, root) = verify::tests::fixture(&[20, 30], &[]);
        let mut mountd = running_service(20);
        mountd.dependants = vec![Dependant {
            unit: "nfs-server.service".into(),
            tie: Tie::Requires,
        }];
        let fake = Fake::with_units([
            ("nfs-mountd.service", mountd),
            ("nfs-server.service", running_service(30)),
        ]);
        let deny = Entry {
            deny: true,
            link: "/etc/restart-stale/nfs-server.service".into(),
        };
        let mut plan = plan_of(vec![candidate("nfs-mountd.service", &[20])]);
        plan.gate = Gate {
            policy: Policy {
                levels: vec![Level {
                    admin: true,
                    entries: [("nfs-server.service".to_string(), deny)].into(),
                }],
                warnings: vec![],
            },
            all: true,
            self_units: vec![],
        };
        let ran = execute(&fake, &root, &plan, None, Some(Layout::Unified), &Settings::default()).unwrap();
        assert_eq!(
            triples(&ran),
            vec![("nfs-mountd.service", "skipped", "would-restart-denied")]
        );
        assert!(
            ran.results[0].detail.contains("nfs-server.service (Requires=)"),
            "{:?}",
            ran.results
        );
        assert_eq!(ran.exit, Exit::Pending);
        assert_eq!(preview(&fake, &root, &plan, &Settings::default()), Exit::Pending);
        assert!(fake.restarted().is_empty());
    }

    fn triples(ran: &Ran) -> Vec<(&str, &str, &str)> {
        ran.results
            .iter()
            .map(|r| (r.unit.as_str(), r.outcome, r.result))
            .collect()
    }

    #[test]
    fn every_candidate_gets_one_result() {
        let (_d, root, fake, mut plan) = world();
        plan.init = Some(candidate("init.scope", &[1]).processes.remove(0));
        fake.script([Event::removed("a.service", "done")]);
        let ran = execute(&fake, &root, &plan, None, Some(Layout::Unified), &Settings::default()).unwrap();
        let mut got = triples(&ran);
        got.sort();
        assert_eq!(
            got,
            vec![
                ("a.service", "restarted", "verified-clean"),
                ("gone.service", "skipped", "not-loaded"),
                ("init.scope", "restarted", "verified-clean"),
                ("l.service", "skipped", "leftover-processes"),
                ("r.service", "skipped", "refuses-manual-stop"),
            ]
        );
        let a = ran.results.iter().find(|r| r.unit == "a.service").unwrap();
        assert!(a.detail.ends_with("verified clean"), "{}", a.detail);
    }

    #[test]
    fn failures_are_results_too() {
        let (_d, root, fake, plan) = world();
        fake.script([Event::removed("a.service", "failed")]);
        let ran = execute(&fake, &root, &plan, None, Some(Layout::Unified), &Settings::default()).unwrap();
        assert!(
            triples(&ran).contains(&("a.service", "failed", "job-failed")),
            "{ran:?}"
        );

        let (_d, root, mut fake, mut plan) = world();
        fake.reexec_fails = true;
        plan.init = Some(candidate("init.scope", &[1]).processes.remove(0));
        let ran = execute(&fake, &root, &plan, None, Some(Layout::Unified), &Settings::default()).unwrap();
        assert_eq!(triples(&ran), vec![("init.scope", "failed", "reexec-failed")]);
        assert_eq!(ran.exit, Exit::RestartFailed);
    }

    #[test]
    fn still_stale_after_restart_fails_the_run() {
        let (_d, root) = verify::tests::fixture(&[20, 21], &[21]);
        let mut a = running_service(20);
        a.control_group = "/system.slice/a.service".into();
        let fake = Fake::with_units([("a.service", a)]);
        fake.script([Event::removed("a.service", "done")]);
        let plan = plan_of(vec![candidate("a.service", &[20])]);
        let code = execute(&fake, &root, &plan, None, Some(Layout::Unified), &Settings::default())
            .unwrap()
            .exit;
        assert_eq!(code, Exit::RestartFailed);
    }

    #[test]
    fn failed_job_fails_the_run() {
        let (_d, root, fake, plan) = world();
        fake.script([Event::removed("a.service", "failed")]);
        let code = execute(&fake, &root, &plan, None, Some(Layout::Unified), &Settings::default())
            .unwrap()
            .exit;
        assert_eq!(code, Exit::RestartFailed);
    }

    #[test]
    fn stale_pid1_is_reexecuted_first_unless_turned_off() {
        let (_d, root, fake, mut plan) = world();
        plan.init = Some(candidate("init.scope", &[1]).processes.remove(0));
        fake.script([Event::removed("a.service", "done")]);
        let code = execute(&fake, &root, &plan, None, Some(Layout::Unified), &Settings::default())
            .unwrap()
            .exit;
        assert_eq!(code, Exit::Pending, "l.service and r.service still run stale code");
        assert_eq!(fake.calls()[0], Call::Reexecute);

        let (_d, root, fake, mut plan) = world();
        plan.init = Some(candidate("init.scope", &[1]).processes.remove(0));
        fake.script([Event::removed("a.service", "done")]);
        let off = Settings {
            reexec: false,
            ..Settings::default()
        };
        execute(&fake, &root, &plan, None, Some(Layout::Unified), &off).unwrap();
        assert!(!fake.calls().contains(&Call::Reexecute));
    }

    #[test]
    fn a_test_root_never_reaches_the_bus() {
        let (_d, root, _fake, plan) = world();
        std::fs::create_dir_all(root.path("/run/systemd/system")).unwrap();
        for dry_run in [true, false] {
            let ran = run(
                &Bus::default(),
                &root,
                &plan,
                None,
                Some(Layout::Unified),
                &Settings::default(),
                dry_run,
            )
            .unwrap();
            assert_eq!(ran, Ran::exit_only(Exit::Pending));
        }
        assert!(!root.path(lock::LOCK_PATH).exists());
    }

    #[test]
    fn failed_reexec_restarts_nothing() {
        let (_d, root, mut fake, mut plan) = world();
        fake.reexec_fails = true;
        plan.init = Some(candidate("init.scope", &[1]).processes.remove(0));
        let code = execute(&fake, &root, &plan, None, Some(Layout::Unified), &Settings::default())
            .unwrap()
            .exit;
        assert_eq!(code, Exit::RestartFailed);
        assert!(fake.restarted().is_empty());
    }
}
