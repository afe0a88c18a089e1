//! Deferred restarts on systemd's own unit markers (issue 15, part 1).
//!
//! A deferred run ([`defer`]) restarts nothing: it sets
//! `Markers=+needs-restart` on each unit a restart run would restart now,
//! the same live refinement deciding. Later, in the admin's maintenance
//! window, [`restart_marked`] (`restart-stale --marked`) restarts the
//! marked units that are still stale through the ordinary restart path
//! and clears the marks it dealt with; systemd's own `systemctl
//! reload-or-restart --marked` acts on the same marks.
//!
//! Markers exist since systemd 248. An older systemd refuses the property:
//! that is said once, and the run stays report-only.

use super::settle::{Clock, RealClock};
use super::{decide, lock, record_skip, refine::Decision, unreachable, Kind, Ran, Settings, Tally};
use crate::core::changed::ChangedSet;
use crate::core::model::UnitResult;
use crate::core::plan::{Action, Plan};
use crate::exit::Outcome as Exit;
use crate::system::cgroup::Layout;
use crate::system::sysroot::SysRoot;
use crate::systemd::{dbus::Dbus, Bus, Marking, ServiceManager, UnitQuery, NEEDS_RESTART};
use anyhow::Result;
use std::time::Duration;

/// How long `status` waits for one D-Bus answer while reading marks: a
/// report must not hang on a stuck bus (its [`Bus`]'s timeout).
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

fn change(sign: char) -> Vec<String> {
    vec![format!("{sign}{NEEDS_RESTART}")]
}

/// Connects for a run that changes marks; `None` (logged) when there is
/// no systemd to ask, as for a restart run.
fn connect<'b>(bus: &'b Bus, root: &SysRoot, what: &str) -> Result<Option<(lock::Lock, &'b Dbus)>> {
    if let Some(why) = unreachable(root) {
        log::warn!("not {what} anything: {why}");
        return Ok(None);
    }
    // The lock keeps a window's `--marked` run from clearing marks while
    // a hook sets them, and the other way round.
    let lock = lock::acquire(root, lock::WAIT)?;
    Ok(Some((lock, bus.get()?)))
}

/// Connects to systemd and runs [`defer`]. Without a reachable systemd
/// nothing is marked and the restarts stay pending.
pub(crate) fn run_deferred(bus: &Bus, root: &SysRoot, plan: &Plan) -> Result<Ran> {
    match connect(bus, root, "marking")? {
        Some((_lock, bus)) => Ok(defer(bus, root, plan)),
        None => Ok(Ran::exit_only(Exit::Pending)),
    }
}

/// Connects to systemd and runs [`canary_then_mark`] (`--canary N
/// --defer`).
pub(crate) fn run_canary(
    bus: &Bus,
    root: &SysRoot,
    plan: &Plan,
    changed: Option<&ChangedSet>,
    layout: Option<Layout>,
    settings: &Settings,
) -> Result<Ran> {
    match connect(bus, root, "restarting")? {
        Some((_lock, bus)) => canary_then_mark(bus, root, plan, changed, layout, settings, &RealClock::default()),
        None => Ok(Ran::exit_only(Exit::Pending)),
    }
}

/// How loud a mark's result is: a failed mark is a warning.
fn mark_level(result: &str) -> log::Level {
    if result == "mark-failed" {
        log::Level::Warn
    } else {
        log::Level::Info
    }
}

/// `--canary N --defer`: restarts the canary's jobs behind the health
/// gate, then marks each unit the canary held for the maintenance
/// window, so the rest of the rollout is one `--marked` run away. A held
/// unit keeps one result: held by the canary, its detail saying whether
/// it was marked. A failed canary marks nothing: the rollout stops there.
pub(crate) fn canary_then_mark<M: ServiceManager + ?Sized>(
    mgr: &M,
    root: &SysRoot,
    plan: &Plan,
    changed: Option<&ChangedSet>,
    layout: Option<Layout>,
    settings: &Settings,
    clock: &dyn Clock,
) -> Result<Ran> {
    let mut ran = super::execute_with(mgr, root, plan, changed, layout, settings, clock)?;
    if ran.results.iter().any(|r| r.outcome == "failed") {
        log::warn!("the canary failed: not marking the units it held");
        return Ok(ran);
    }
    let mut unsupported = false;
    for r in ran.results.iter_mut().filter(|r| r.result == "canary") {
        let (result, detail) = mark_one(mgr, &r.unit, &mut unsupported);
        let level = mark_level(result);
        log::log!(level, "{}: {detail}", r.unit);
        r.detail = format!("{}; {detail}", r.detail);
    }
    Ok(ran)
}

/// Connects to systemd and runs [`restart_marked`].
pub(crate) fn run_marked(
    bus: &Bus,
    root: &SysRoot,
    plan: &Plan,
    layout: Option<Layout>,
    settings: &Settings,
) -> Result<Ran> {
    match connect(bus, root, "restarting")? {
        Some((_lock, bus)) => restart_marked(bus, root, plan, layout, settings),
        None => Ok(Ran::exit_only(Exit::Pending)),
    }
}

/// The deferred run: marks what a restart run would restart now, and
/// nothing else. Units the plan skips (denied, never-tier, cautious
/// without an admin link, not allowed) are not even looked at; units the
/// live refinement would skip are recorded as skipped, unmarked. Ends
/// [`Exit::Pending`] while anything stale is left, which it always is.
pub(crate) fn defer<M: ServiceManager + ?Sized>(mgr: &M, root: &SysRoot, plan: &Plan) -> Ran {
    let mut tally = Tally::default();
    if plan.init.is_some() {
        // PID 1 cannot be marked: systemctl --marked never re-executes it.
        let detail = "runs stale code; not re-executing it now (restarts are deferred)".to_string();
        tally.record_logged(
            log::Level::Info,
            "PID 1",
            "init.scope",
            Kind::Skipped,
            "deferred",
            detail,
        );
        tally.left_stale += 1;
    }
    let mut unsupported = false;
    let mut marked = 0;
    for super::Decided { u, d, .. } in decide(mgr, root, plan, None) {
        if let Decision::Skip(s) = d {
            record_skip(&mut tally, &u.unit, &s);
            continue;
        }
        tally.left_stale += 1;
        let (result, detail) = mark_one(mgr, &u.unit, &mut unsupported);
        if result == "marked" {
            marked += 1;
        }
        let level = mark_level(result);
        tally.record_logged(level, &u.unit, &u.unit, Kind::Skipped, result, detail);
    }
    log::info!(
        "summary: restarts deferred; {marked} unit(s) marked {NEEDS_RESTART}, {} left running stale code",
        tally.left_stale
    );
    tally.ran()
}

/// Marks one unit; once systemd has refused the property, no unit is
/// asked again. The result code and the detail for the unit's result.
fn mark_one<M: ServiceManager + ?Sized>(mgr: &M, unit: &str, unsupported: &mut bool) -> (&'static str, String) {
    let unmarked = || "not restarting now (deferred); this systemd cannot mark it".to_string();
    if *unsupported {
        return ("deferred", unmarked());
    }
    match mgr.set_markers(unit, &change('+')) {
        Ok(Marking::Set) => (
            "marked",
            format!(
                "not restarting now (deferred): marked {NEEDS_RESTART} for `restart-stale --marked` \
                 or `systemctl reload-or-restart --marked`"
            ),
        ),
        Ok(Marking::Unsupported(why)) => {
            // Said once: every other unit would get the same answer.
            log::warn!(
                "systemd cannot mark units for a later restart (Markers= needs systemd 248 or newer: \
                 {why}); reporting only"
            );
            *unsupported = true;
            ("deferred", unmarked())
        }
        Err(e) => (
            "mark-failed",
            format!("not restarting now (deferred), and not marked: {e:#}"),
        ),
    }
}

/// The units of `names` that carry the `needs-restart` mark now; a unit
/// whose state cannot be read counts as unmarked (logged).
pub(crate) fn marked_units<'a, Q: UnitQuery + ?Sized>(q: &Q, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    names
        .into_iter()
        .filter(|name| match q.unit(name) {
            Ok(info) => info.is_some_and(|i| i.marked()),
            Err(e) => {
                log::debug!("{name}: cannot read its markers: {e:#}");
                false
            }
        })
        .map(str::to_string)
        .collect()
}

/// The maintenance window's run: restarts the marked units the plan still
/// restarts, through [`super::execute`] (refinement, KillMode checks,
/// verification, results), then clears the mark of every marked unit it
/// dealt with. A unit whose restart failed keeps its mark, so the next
/// window tries again; a marked unit the plan now skips (no longer stale,
/// or denied since) loses it, so `systemctl --marked` will not restart it
/// behind the policy's back. PID 1 is never part of it.
pub(crate) fn restart_marked<M: ServiceManager + ?Sized>(
    mgr: &M,
    root: &SysRoot,
    plan: &Plan,
    layout: Option<Layout>,
    settings: &Settings,
) -> Result<Ran> {
    let marked = marked_units(mgr, plan.units.iter().map(|u| u.unit.as_str()));
    if marked.is_empty() {
        log::info!("no unit is marked {NEEDS_RESTART}: nothing to do");
        return Ok(Ran::exit_only(Exit::Done));
    }
    for u in plan.units.iter().filter(|u| marked.contains(&u.unit)) {
        if u.action == Action::Skip {
            log::info!("{}: marked, but not restarting it ({})", u.unit, u.reason);
        }
    }
    let todo = Plan {
        units: plan
            .units
            .iter()
            .filter(|u| marked.contains(&u.unit))
            .cloned()
            .collect(),
        init: None,
        outside: Vec::new(),
        gate: plan.gate.clone(),
    };
    let mut ran = super::execute(mgr, root, &todo, None, layout, settings)?;
    let failed = |unit: &str| ran.results.iter().any(|r| r.unit == unit && r.outcome == "failed");
    let (keep, clear): (Vec<String>, Vec<String>) = marked.into_iter().partition(|u| failed(u));
    for unit in &keep {
        log::warn!("{unit}: keeps its {NEEDS_RESTART} mark; the next window tries again");
    }
    let cleared: Vec<String> = clear.into_iter().filter(|u| clear_mark(mgr, u)).collect();
    if !cleared.is_empty() {
        let which = cleared.join(", ");
        log::info!("markers: cleared {NEEDS_RESTART} on {which}");
        ran.results.push(UnitResult {
            detail: format!("cleared {NEEDS_RESTART} on {which}"),
            outcome: "note",
            result: "marks-cleared",
            unit: "markers".into(),
            ..UnitResult::default()
        });
    }
    Ok(ran)
}

/// Removes the mark; a failure is a warning: the unit was dealt with, and
/// at worst `systemctl --marked` restarts it once more.
fn clear_mark<M: ServiceManager + ?Sized>(mgr: &M, unit: &str) -> bool {
    match mgr.set_markers(unit, &change('-')) {
        Ok(Marking::Set) => true,
        Ok(Marking::Unsupported(why)) => {
            log::warn!("{unit}: cannot clear its {NEEDS_RESTART} mark: {why}");
            false
        }
        Err(e) => {
            log::warn!("{unit}: {e:#}");
            false
        }
    }
}

/// For `status`: the stale units that carry the mark, read over D-Bus
/// (read-only). `None`, quietly, where there is no systemd to ask.
pub(crate) fn read_marks(bus: &Bus, root: &SysRoot, plan: &Plan) -> Option<Vec<String>> {
    if let Some(why) = unreachable(root) {
        log::debug!("markers not read: {why}");
        return None;
    }
    let stale: Vec<&str> = plan
        .units
        .iter()
        .filter(|u| !u.processes.is_empty())
        .map(|u| u.unit.as_str())
        .collect();
    if stale.is_empty() {
        return Some(Vec::new());
    }
    match bus.get() {
        Ok(bus) => Some(marked_units(bus, stale)),
        Err(e) => {
            log::debug!("markers not read: {e:#}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::plan::{Reason, UnitPlan};
    use crate::core::report;
    use crate::core::unit_name::Owner;
    use crate::restart::verify;
    use crate::system::scan::StaleProcess;
    use crate::systemd::fake::{running_service, Call, Event, Fake};
    use crate::systemd::UnitInfo;

    fn unit(name: &str, action: Action, reason: Reason, pids: &[u32]) -> UnitPlan {
        let processes = pids
            .iter()
            .map(|&pid| StaleProcess {
                pid,
                comm: "d".into(),
                owner: Owner::Unit(name.into()),
                files: vec![],
            })
            .collect();
        UnitPlan {
            unit: name.into(),
            action,
            reason,
            processes,
        }
    }

    fn restart(name: &str, pids: &[u32]) -> UnitPlan {
        unit(
            name,
            Action::Restart,
            Reason::AllowedByAdmin("/etc/restart-stale/x".into()),
            pids,
        )
    }

    fn skip(name: &str, reason: Reason, pids: &[u32]) -> UnitPlan {
        unit(name, Action::Skip, reason, pids)
    }

    fn results(ran: &Ran) -> Vec<(&str, &str, &str)> {
        let mut r: Vec<_> = ran
            .results
            .iter()
            .map(|r| (r.unit.as_str(), r.outcome, r.result))
            .collect();
        r.sort();
        r
    }

    fn marked(info: UnitInfo) -> UnitInfo {
        UnitInfo {
            markers: vec![NEEDS_RESTART.into()],
            ..info
        }
    }

    /// Every unit the plan skips is loaded, running and stale too, so
    /// only the plan's decision keeps it unmarked.
    fn deferral_world() -> (tempfile::TempDir, SysRoot, Fake, Plan) {
        let (d, root) = verify::tests::fixture(&[20, 30, 40, 41], &[]);
        let mut leftovers = running_service(40);
        leftovers.kill_mode = Some("process".into());
        let mut refuses = running_service(30);
        refuses.refuse_manual_stop = true;
        let fake = Fake::with_units([
            ("a.service", running_service(20)),
            ("denied.service", running_service(20)),
            ("never.service", running_service(20)),
            ("cautious.service", running_service(20)),
            ("not-allowed.service", running_service(20)),
            ("leftovers.service", leftovers),
            ("refuses.service", refuses),
        ]);
        let plan = Plan {
            units: vec![
                restart("a.service", &[20]),
                skip(
                    "denied.service",
                    Reason::DeniedByAdmin("/etc/restart-stale/denied.service".into()),
                    &[20],
                ),
                skip("never.service", Reason::NeverTier("dbus"), &[20]),
                skip("cautious.service", Reason::CautiousTier("networking"), &[20]),
                skip("not-allowed.service", Reason::NotAllowed, &[20]),
                restart("leftovers.service", &[41]),
                restart("refuses.service", &[30]),
                restart("gone.service", &[77]),
            ],
            ..Plan::default()
        };
        (d, root, fake, plan)
    }

    #[test]
    fn defer_marks_only_what_a_restart_run_would_restart_now() {
        let (_d, root, fake, mut plan) = deferral_world();
        plan.init = Some(restart("init.scope", &[1]).processes.remove(0));
        let ran = defer(&fake, &root, &plan);
        let plus = vec![format!("+{NEEDS_RESTART}")];
        assert_eq!(fake.marker_calls(), vec![("a.service".to_string(), plus)]);
        assert_eq!(fake.markers_of("a.service"), vec![NEEDS_RESTART.to_string()]);
        // Nothing restarted, re-executed, reloaded, or even subscribed to.
        let calls = fake.calls();
        let mutating: Vec<_> = calls.iter().filter(|c| c.mutates()).collect();
        assert!(
            mutating.iter().all(|c| matches!(c, Call::SetMarkers { .. })),
            "{calls:?}"
        );
        // The plan's skips are never even looked up.
        for never in [
            "denied.service",
            "never.service",
            "cautious.service",
            "not-allowed.service",
        ] {
            assert!(!calls.contains(&Call::Unit(never.into())), "{never}: {calls:?}");
            assert!(fake.markers_of(never).is_empty(), "{never}");
        }
        assert_eq!(
            results(&ran),
            vec![
                ("a.service", "skipped", "marked"),
                ("gone.service", "skipped", "not-loaded"),
                ("init.scope", "skipped", "deferred"),
                ("leftovers.service", "skipped", "leftover-processes"),
                ("refuses.service", "skipped", "refuses-manual-stop"),
            ]
        );
        assert_eq!(ran.exit, Exit::Pending);
    }

    #[test]
    fn canary_with_defer_restarts_n_and_marks_what_it_held() {
        let (_d, root) = verify::tests::fixture(&[10, 20, 30], &[]);
        let clock = crate::restart::settle::tests::StepClock::default();
        let fake = Fake::with_units([
            ("a.service", running_service(10)),
            ("b.service", running_service(20)),
            ("c.service", running_service(30)),
        ]);
        fake.set_clock(clock.0.clone());
        fake.script([Event::removed("a.service", "done")]);
        let plan = Plan {
            units: vec![
                restart("a.service", &[10]),
                restart("b.service", &[20]),
                restart("c.service", &[30]),
            ],
            ..Plan::default()
        };
        let one = Settings {
            canary: Some(1),
            ..Settings::default()
        };
        let ran = canary_then_mark(&fake, &root, &plan, None, None, &one, &clock).unwrap();
        assert_eq!(fake.restarted(), vec!["a.service".to_string()]);
        let plus = vec![format!("+{NEEDS_RESTART}")];
        assert_eq!(
            fake.marker_calls(),
            vec![("b.service".to_string(), plus.clone()), ("c.service".to_string(), plus)]
        );
        assert!(fake.markers_of("a.service").is_empty());
        assert_eq!(
            results(&ran),
            vec![
                ("a.service", "restarted", "verified-clean"),
                ("b.service", "held", "canary"),
                ("c.service", "held", "canary"),
            ]
        );
        let b = ran.results.iter().find(|r| r.unit == "b.service").unwrap();
        assert!(b.detail.contains("marked"), "{b:?}");
        assert_eq!(ran.exit, Exit::Pending);

        // A canary that fails marks nothing.
        let fake = Fake::with_units([("a.service", running_service(10)), ("b.service", running_service(20))]);
        fake.set_clock(clock.0.clone());
        fake.script([Event::removed("a.service", "failed")]);
        let two = Plan {
            units: plan.units[..2].to_vec(),
            ..Plan::default()
        };
        let ran = canary_then_mark(&fake, &root, &two, None, None, &one, &clock).unwrap();
        assert!(fake.marker_calls().is_empty(), "{:?}", fake.calls());
        assert!(ran.results.iter().any(|r| r.outcome == "failed"), "{ran:?}");
    }

    #[test]
    fn without_markers_it_says_so_once_and_only_reports() {
        let (_d, root) = verify::tests::fixture(&[20, 30], &[]);
        let mut fake = Fake::with_units([("a.service", running_service(20)), ("b.service", running_service(30))]);
        fake.no_markers = true;
        let plan = Plan {
            units: vec![restart("a.service", &[20]), restart("b.service", &[30])],
            ..Plan::default()
        };
        let ran = defer(&fake, &root, &plan);
        // One refusal is enough to know: the second unit is not asked for.
        assert_eq!(fake.marker_calls().len(), 1, "{:?}", fake.calls());
        assert_eq!(
            results(&ran),
            vec![
                ("a.service", "skipped", "deferred"),
                ("b.service", "skipped", "deferred")
            ]
        );
        assert!(fake.restarted().is_empty());
        assert_eq!(ran.exit, Exit::Pending);
    }

    #[test]
    fn marked_restarts_the_marked_stale_units_and_clears_their_marks() {
        let (_d, root) = verify::tests::fixture(&[20, 30], &[]);
        let mut a = marked(running_service(20));
        a.control_group = "/system.slice/a.service".into();
        let fake = Fake::with_units([
            ("a.service", a),
            // Stale and allowed, but not marked: left for the next hook.
            ("b.service", running_service(30)),
            // Marked, then restarted by someone else: nothing stale.
            ("c.service", marked(running_service(20))),
            // Marked, then denied by the admin.
            ("d.service", marked(running_service(20))),
        ]);
        fake.script([Event::removed("a.service", "done")]);
        let plan = Plan {
            units: vec![
                restart("a.service", &[20]),
                restart("b.service", &[30]),
                skip("c.service", Reason::NotStale, &[]),
                skip(
                    "d.service",
                    Reason::DeniedByAdmin("/etc/restart-stale/d.service".into()),
                    &[20],
                ),
            ],
            init: Some(restart("init.scope", &[1]).processes.remove(0)),
            ..Plan::default()
        };
        let ran = restart_marked(&fake, &root, &plan, Some(Layout::Unified), &Settings::default()).unwrap();
        assert_eq!(fake.restarted(), vec!["a.service".to_string()]);
        assert!(!fake.calls().contains(&Call::Reexecute));
        assert_eq!(
            results(&ran),
            vec![
                ("a.service", "restarted", "verified-clean"),
                ("markers", "note", "marks-cleared")
            ]
        );
        for u in ["a.service", "c.service", "d.service"] {
            assert!(fake.markers_of(u).is_empty(), "{u}");
        }
        let touched: Vec<String> = fake.marker_calls().into_iter().map(|(u, _)| u).collect();
        assert!(!touched.contains(&"b.service".to_string()), "{touched:?}");
        assert!(fake
            .marker_calls()
            .iter()
            .all(|(_, c)| *c == vec![format!("-{NEEDS_RESTART}")]));
        assert_eq!(ran.exit, Exit::Done);
    }

    #[test]
    fn a_failed_restart_keeps_its_mark_for_the_next_window() {
        let (_d, root) = verify::tests::fixture(&[20], &[]);
        let fake = Fake::with_units([("a.service", marked(running_service(20)))]);
        fake.script([Event::removed("a.service", "failed")]);
        let plan = Plan {
            units: vec![restart("a.service", &[20])],
            ..Plan::default()
        };
        let ran = restart_marked(&fake, &root, &plan, Some(Layout::Unified), &Settings::default()).unwrap();
        assert_eq!(results(&ran), vec![("a.service", "failed", "job-failed")]);
        assert_eq!(fake.markers_of("a.service"), vec![NEEDS_RESTART.to_string()]);
        assert_eq!(ran.exit, Exit::RestartFailed);
    }

    #[test]
    fn nothing_marked_restarts_nothing() {
        let (_d, root) = verify::tests::fixture(&[20], &[]);
        let fake = Fake::with_units([("a.service", running_service(20))]);
        let plan = Plan {
            units: vec![restart("a.service", &[20])],
            ..Plan::default()
        };
        let ran = restart_marked(&fake, &root, &plan, None, &Settings::default()).unwrap();
        assert_eq!(ran, Ran::exit_only(Exit::Done));
        assert!(fake.calls().iter().all(|c| !c.mutates()), "{:?}", fake.calls());
    }

    #[test]
    fn status_shows_the_marks() {
        let fake = Fake::with_units([
            ("a.service", marked(running_service(20))),
            ("b.service", running_service(30)),
        ]);
        let names = ["a.service", "b.service", "gone.service"];
        let marks = marked_units(&fake, names);
        assert_eq!(marks, vec!["a.service".to_string()]);
        assert!(fake.calls().iter().all(|c| !c.mutates()));
        let plan = Plan {
            units: vec![restart("a.service", &[20]), restart("b.service", &[30])],
            ..Plan::default()
        };
        let ctx = report::Context {
            mode: "status",
            layout: None,
            changed_files: None,
            processes_scanned: 2,
            problems: &[],
            warnings: &[],
            restarts: None,
            daemon_reload: None,
            reboot: None,
            marked: Some(&marks),
            sessions: None,
            fixes: None,
            security_only: false,
        };
        let text = report::text(&plan, &ctx, false);
        let a = text.find("a.service").unwrap();
        let b = text.find("b.service").unwrap();
        let note = text.find("marked for restart").expect(&text);
        assert!(a < note && note < b, "{text}");
        assert_eq!(text.matches("marked for restart").count(), 1, "{text}");
        let mut json = Vec::new();
        report::write_json(&mut json, &plan, &ctx).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(doc["marked"], serde_json::json!(["a.service"]));
    }
}
