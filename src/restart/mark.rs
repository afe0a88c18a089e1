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

use super::{decide, lock, record_skip, refine::Decision, unreachable, Kind, Ran, Settings, Tally};
use crate::core::model::UnitResult;
use crate::core::plan::{Action, Plan};
use crate::exit::Outcome as Exit;
use crate::system::cgroup::Layout;
use crate::system::sysroot::SysRoot;
use crate::systemd::{dbus::Dbus, Marking, ServiceManager, UnitQuery, NEEDS_RESTART};
use anyhow::Result;
use std::time::Duration;

/// How long `status` waits for one D-Bus answer while reading marks: a
/// report must not hang on a stuck bus.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

fn change(sign: char) -> Vec<String> {
    vec![format!("{sign}{NEEDS_RESTART}")]
}

/// Connects for a run that changes marks; `None` (logged) when there is
/// no systemd to ask, as for a restart run.
fn connect(root: &SysRoot, what: &str) -> Result<Option<(lock::Lock, Dbus)>> {
    if let Some(why) = unreachable(root) {
        log::warn!("not {what} anything: {why}");
        return Ok(None);
    }
    // The lock keeps a window's `--marked` run from clearing marks while
    // a hook sets them, and the other way round.
    let lock = lock::acquire(root, lock::WAIT)?;
    Ok(Some((lock, Dbus::connect()?)))
}

/// Connects to systemd and runs [`defer`]. Without a reachable systemd
/// nothing is marked and the restarts stay pending.
pub fn run_deferred(root: &SysRoot, plan: &Plan) -> Result<Ran> {
    match connect(root, "marking")? {
        Some((_lock, bus)) => Ok(defer(&bus, root, plan)),
        None => Ok(Ran::exit_only(Exit::Pending)),
    }
}

/// Connects to systemd and runs [`restart_marked`].
pub fn run_marked(root: &SysRoot, plan: &Plan, layout: Option<Layout>, settings: &Settings) -> Result<Ran> {
    match connect(root, "restarting")? {
        Some((_lock, bus)) => restart_marked(&bus, root, plan, layout, settings),
        None => Ok(Ran::exit_only(Exit::Pending)),
    }
}

/// The deferred run: marks what a restart run would restart now, and
/// nothing else. Units the plan skips (denied, never-tier, cautious
/// without an admin link, not allowed) are not even looked at; units the
/// live refinement would skip are recorded as skipped, unmarked. Ends
/// [`Exit::Pending`] while anything stale is left, which it always is.
pub fn defer<M: ServiceManager + ?Sized>(mgr: &M, root: &SysRoot, plan: &Plan) -> Ran {
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
    for (u, d, _) in decide(mgr, root, plan) {
        if let Decision::Skip(s) = d {
            record_skip(&mut tally, &u.unit, &s);
            continue;
        }
        tally.left_stale += 1;
        let (result, detail) = if unsupported {
            (
                "deferred",
                "not restarting now (deferred); this systemd cannot mark it".to_string(),
            )
        } else {
            match mgr.set_markers(&u.unit, &change('+')) {
                Ok(Marking::Set) => {
                    marked += 1;
                    let detail = format!(
                        "not restarting now (deferred): marked {NEEDS_RESTART} for `restart-stale --marked` \
                         or `systemctl reload-or-restart --marked`"
                    );
                    ("marked", detail)
                }
                Ok(Marking::Unsupported(why)) => {
                    // Said once: every other unit would get the same answer.
                    log::warn!(
                        "systemd cannot mark units for a later restart (Markers= needs systemd 248 or \
                         newer: {why}); reporting only"
                    );
                    unsupported = true;
                    (
                        "deferred",
                        "not restarting now (deferred); this systemd cannot mark it".to_string(),
                    )
                }
                Err(e) => (
                    "mark-failed",
                    format!("not restarting now (deferred), and not marked: {e:#}"),
                ),
            }
        };
        let level = if result == "mark-failed" {
            log::Level::Warn
        } else {
            log::Level::Info
        };
        tally.record_logged(level, &u.unit, &u.unit, Kind::Skipped, result, detail);
    }
    log::info!(
        "summary: restarts deferred; {marked} unit(s) marked {NEEDS_RESTART}, {} left running stale code",
        tally.left_stale
    );
    tally.ran()
}

/// The units of `names` that carry the `needs-restart` mark now; a unit
/// whose state cannot be read counts as unmarked (logged).
pub fn marked_units<'a, Q: UnitQuery + ?Sized>(q: &Q, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
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
pub fn restart_marked<M: ServiceManager + ?Sized>(
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
        protected: plan.protected.clone(),
    };
    let mut ran = super::execute(mgr, root, &todo, layout, settings)?;
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
pub fn read_marks(root: &SysRoot, plan: &Plan) -> Option<Vec<String>> {
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
    match Dbus::connect_with_timeout(STATUS_TIMEOUT) {
        Ok(bus) => Some(marked_units(&bus, stale)),
        Err(e) => {
            log::debug!("markers not read: {e:#}");
            None
        }
    }
}
