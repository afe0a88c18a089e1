//! Refining the plan with live unit state: a candidate the planner chose
//! is restarted only if systemd's view of it says a restart is safe and
//! would help. The rule itself ([`refine`]) is pure; [`gather`] reads.

use super::reach::{self, Reach};
use crate::core::plan::{Gate, Reason, UnitPlan};
use crate::system::sysroot::SysRoot;
use crate::systemd::{Dependant, UnitInfo, UnitQuery};
use anyhow::Result;
use std::fmt;

/// What systemd and /proc say about one candidate right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// `None` when systemd has no such unit loaded.
    pub info: Option<UnitInfo>,
    /// A socket in `TriggeredBy` with `Accept=yes`.
    pub accept_socket: Option<String>,
    /// The planned stale pids that still exist.
    pub alive_stale: Vec<u32>,
    /// The units a restart would carry over to; read only for a running
    /// unit, the only kind restarted.
    pub reach: Reach,
}

/// Why a candidate is not restarted after all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    NotLoaded,
    NotAService,
    OneshotExited,
    NotRunning {
        active: String,
        sub: String,
    },
    NoLongerStale,
    RefusesManualStop,
    CannotStart,
    CannotStop,
    PerConnection {
        socket: String,
    },
    Leftovers {
        kill_mode: String,
        pids: Vec<u32>,
    },
    /// Restarting `from` would restart or stop the last unit of `path`
    /// too, which the plan's rule skips for `reason`.
    Propagates {
        from: String,
        path: Vec<Dependant>,
        reason: Reason,
    },
    /// A restart would reach more than `limit` units; the rest are not
    /// known to be allowed.
    TooManyDependants {
        limit: usize,
    },
    Unreadable(String),
}

impl Skip {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Skip::NotLoaded => "not-loaded",
            Skip::NotAService => "not-a-service",
            Skip::OneshotExited => "oneshot-exited",
            Skip::NotRunning { .. } => "not-running",
            Skip::NoLongerStale => "no-longer-stale",
            Skip::RefusesManualStop => "refuses-manual-stop",
            Skip::CannotStart => "cannot-start",
            Skip::CannotStop => "cannot-stop",
            Skip::PerConnection { .. } => "per-connection-instance",
            Skip::Leftovers { .. } => "leftover-processes",
            Skip::Propagates { reason, .. } if reach::reaches_protected(reason) => "would-restart-protected",
            Skip::Propagates { .. } => "would-restart-denied",
            Skip::TooManyDependants { .. } => "too-many-dependants",
            Skip::Unreadable(_) => "unreadable",
        }
    }

    /// Whether the skip means something went wrong, not a decision.
    pub(crate) fn is_error(&self) -> bool {
        matches!(self, Skip::Unreadable(_))
    }

    /// Whether the unit goes on running the stale code it was chosen for:
    /// the restart was needed and allowed, but live state made it unsafe
    /// or useless. Such a run ends with "restarts needed but not done" (3),
    /// not 0, so an admin or a monitoring check learns that the upgrade's
    /// fix is not in effect. The other skips mean nothing stale runs any
    /// more (or nothing a restart could replace).
    pub(crate) fn leaves_stale_code(&self) -> bool {
        matches!(
            self,
            Skip::RefusesManualStop
                | Skip::CannotStart
                | Skip::CannotStop
                | Skip::PerConnection { .. }
                | Skip::Leftovers { .. }
                | Skip::Propagates { .. }
                | Skip::TooManyDependants { .. }
        )
    }
}

/// `1, 2, 3`.
pub(crate) fn pid_list(pids: &[u32]) -> String {
    pids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::NotLoaded => write!(f, "not loaded in systemd"),
            Skip::NotAService => write!(f, "not a service; only services are restarted"),
            Skip::OneshotExited => write!(
                f,
                "oneshot unit in active (exited): nothing runs that a restart would replace"
            ),
            Skip::NotRunning { active, sub } => write!(f, "not running: {active} ({sub})"),
            Skip::NoLongerStale => write!(f, "no longer stale: its stale processes exited since the scan"),
            Skip::RefusesManualStop => write!(f, "refuses manual stop (RefuseManualStop=yes)"),
            Skip::CannotStart => write!(f, "systemd cannot start it (CanStart=no)"),
            Skip::CannotStop => write!(f, "systemd cannot stop it (CanStop=no)"),
            Skip::PerConnection { socket } => write!(
                f,
                "per-connection instance of {socket} (Accept=yes): a restart would cut a live connection, \
                 and new connections already get the new code"
            ),
            Skip::Leftovers { kill_mode, pids } => write!(
                f,
                "leftover processes need attention: pid {} would survive a restart (KillMode={kill_mode})",
                pid_list(pids)
            ),
            Skip::Propagates { from, path, reason } => write!(
                f,
                "a restart would also {} {} ({}), which {}",
                reach::verb(path),
                path.last().map_or("", |d| d.unit.as_str()),
                reach::way(from, path),
                reach::why(reason)
            ),
            Skip::TooManyDependants { limit } => write!(
                f,
                "a restart would spread to more than {limit} units (PartOf=, BindsTo=, Requires=, \
                 PropagatesStopTo=); not checked further"
            ),
            Skip::Unreadable(e) => write!(f, "could not read its state: {e}"),
        }
    }
}

/// The decision for one candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Restart,
    Skip(Skip),
}

/// The pure rule: restart only a loaded, running service that systemd
/// will stop and start, whose restart would actually replace its stale
/// processes and would carry over to no unit that `gate` (the plan's own
/// rule) keeps from being restarted.
pub(crate) fn refine(unit: &str, facts: &Facts, gate: &Gate) -> Decision {
    match skip_reason(unit, facts, gate) {
        Some(s) => Decision::Skip(s),
        None => Decision::Restart,
    }
}

fn skip_reason(unit: &str, facts: &Facts, gate: &Gate) -> Option<Skip> {
    let Some(info) = &facts.info else {
        return Some(Skip::NotLoaded);
    };
    if !unit.ends_with(".service") {
        return Some(Skip::NotAService);
    }
    let oneshot = info.service_type.as_deref() == Some("oneshot");
    if oneshot && info.active_state == "active" && info.sub_state == "exited" {
        return Some(Skip::OneshotExited);
    }
    if !info.running() {
        return Some(Skip::NotRunning {
            active: info.active_state.clone(),
            sub: info.sub_state.clone(),
        });
    }
    if facts.alive_stale.is_empty() {
        return Some(Skip::NoLongerStale);
    }
    if info.refuse_manual_stop {
        return Some(Skip::RefusesManualStop);
    }
    if !info.can_start {
        return Some(Skip::CannotStart);
    }
    if !info.can_stop {
        return Some(Skip::CannotStop);
    }
    if let Some(socket) = &facts.accept_socket {
        return Some(Skip::PerConnection { socket: socket.clone() });
    }
    if let Some(s) = reach::judge(unit, &facts.reach, gate) {
        return Some(s);
    }
    leftovers(info, &facts.alive_stale)
}

/// With `KillMode=process` systemd kills only the main process on stop,
/// and with `none` nothing; if only other processes are stale, a restart
/// leaves them running and the next run would restart again, forever
/// (needrestart issue #340).
fn leftovers(info: &UnitInfo, stale: &[u32]) -> Option<Skip> {
    let kill_mode = info.kill_mode.as_deref()?;
    if !matches!(kill_mode, "process" | "none") {
        return None;
    }
    if info.main_pid != 0 && stale.contains(&info.main_pid) {
        return None;
    }
    Some(Skip::Leftovers {
        kill_mode: kill_mode.to_string(),
        pids: stale.to_vec(),
    })
}

/// The sockets that may have spawned `unit`: its `TriggeredBy` sockets,
/// and for an instance `foo@….service` also `foo.socket`, the only socket
/// that can spawn per-connection instances of `foo@.service`
/// (systemd.socket(5), Accept=). The name rule matters because a
/// per-connection instance can lose its `TriggeredBy` link to the socket
/// when systemd re-executes (seen with systemd 252).
fn sockets_of(unit: &str, info: &UnitInfo) -> Vec<String> {
    let mut out: Vec<String> = info
        .triggered_by
        .iter()
        .filter(|s| s.ends_with(".socket"))
        .cloned()
        .collect();
    if let Some(template) = crate::core::unit_name::template_of(unit) {
        let socket = template.replace("@.service", ".socket");
        if template.ends_with("@.service") && !out.contains(&socket) {
            out.push(socket);
        }
    }
    out
}

/// Reads the facts for one candidate: read-only calls only.
pub(crate) fn gather<Q: UnitQuery + ?Sized>(q: &Q, root: &SysRoot, u: &UnitPlan) -> Result<Facts> {
    let info = q.unit(&u.unit)?;
    let reach = match &info {
        Some(i) if i.running() => reach::walk(q, &u.unit, i)?,
        _ => Reach::default(),
    };
    let mut accept_socket = None;
    if let Some(info) = &info {
        for s in sockets_of(&u.unit, info) {
            if q.socket_accepts(&s)? {
                accept_socket = Some(s);
                break;
            }
        }
    }
    let mut alive_stale: Vec<u32> = u
        .processes
        .iter()
        .map(|p| p.pid)
        .filter(|&pid| root.proc_pid(pid, "").exists())
        .collect();
    alive_stale.sort_unstable();
    alive_stale.dedup();
    Ok(Facts {
        info,
        accept_socket,
        alive_stale,
        reach,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systemd::fake::running_service;

    fn facts(info: UnitInfo, stale: &[u32]) -> Facts {
        Facts {
            info: Some(info),
            accept_socket: None,
            alive_stale: stale.to_vec(),
            reach: Reach::default(),
        }
    }

    /// `-a` with the default policy.
    fn all() -> Gate {
        Gate {
            all: true,
            ..Gate::default()
        }
    }

    fn code(unit: &str, f: &Facts) -> &'static str {
        match refine(unit, f, &all()) {
            Decision::Restart => "restart",
            Decision::Skip(s) => s.code(),
        }
    }

    #[test]
    fn a_restart_that_would_reach_a_protected_unit_is_skipped() {
        use crate::systemd::Tie;
        let reached = |unit: &str| crate::restart::reach::Reached {
            path: vec![Dependant {
                unit: unit.into(),
                tie: Tie::Requires,
            }],
            info: Some(running_service(20)),
        };
        let mut f = facts(running_service(10), &[10]);
        f.reach.units = vec![reached("web.target"), reached("dbus.service")];
        assert_eq!(code("x.service", &f), "would-restart-protected");
        let Decision::Skip(s) = refine("x.service", &f, &all()) else {
            panic!("restarted")
        };
        assert!(s.to_string().contains("dbus.service (Requires=)"), "{s}");
        assert!(s.leaves_stale_code());

        f.reach.units = vec![reached("apt-daily-upgrade.service")];
        let mut gate = all();
        assert_eq!(code("x.service", &f), "would-restart-denied", "cautious");
        gate.self_units = vec!["apt-daily-upgrade.service".into()];
        let Decision::Skip(s) = refine("x.service", &f, &gate) else {
            panic!("restarted")
        };
        assert_eq!(s.code(), "would-restart-protected", "{s}");

        f.reach.units = vec![reached("web.target"), reached("worker.service")];
        assert_eq!(code("x.service", &f), "restart");
    }

    #[test]
    fn each_rule_has_its_own_reason() {
        let ok = running_service(10);
        let with = |edit: fn(&mut UnitInfo)| {
            let mut i = ok.clone();
            edit(&mut i);
            facts(i, &[10])
        };
        let mut accept = facts(ok.clone(), &[10]);
        accept.accept_socket = Some("sshd.socket".into());
        let table: Vec<(&str, Facts, &str)> = vec![
            ("a.service", facts(ok.clone(), &[10]), "restart"),
            ("a.service", Facts::default(), "not-loaded"),
            ("a.mount", facts(ok.clone(), &[10]), "not-a-service"),
            (
                "a.service",
                with(|i| {
                    i.service_type = Some("oneshot".into());
                    i.sub_state = "exited".into();
                }),
                "oneshot-exited",
            ),
            ("a.service", with(|i| i.sub_state = "exited".into()), "not-running"),
            (
                "a.service",
                with(|i| {
                    i.active_state = "failed".into();
                    i.sub_state = "failed".into();
                }),
                "not-running",
            ),
            ("a.service", with(|i| i.sub_state = "reload".into()), "not-running"),
            ("a.service", facts(ok.clone(), &[]), "no-longer-stale"),
            (
                "a.service",
                with(|i| i.refuse_manual_stop = true),
                "refuses-manual-stop",
            ),
            ("a.service", with(|i| i.can_start = false), "cannot-start"),
            ("a.service", with(|i| i.can_stop = false), "cannot-stop"),
            (
                "sshd@3-10.0.0.1:22-10.0.0.2:5555.service",
                accept,
                "per-connection-instance",
            ),
        ];
        for (unit, f, want) in &table {
            assert_eq!(code(unit, f), *want, "{unit} {f:?}");
        }
    }

    #[test]
    fn kill_mode_process_only_leftovers_are_reported() {
        let mut i = running_service(10);
        i.kill_mode = Some("process".into());
        // The main process is stale: a restart replaces it.
        assert_eq!(
            refine("a.service", &facts(i.clone(), &[10, 11]), &all()),
            Decision::Restart
        );
        // Only a child is stale: a restart would not touch it.
        let d = refine("a.service", &facts(i.clone(), &[11, 12]), &all());
        let Decision::Skip(s) = d else { panic!("{d:?}") };
        assert_eq!(s.code(), "leftover-processes");
        assert!(s.to_string().contains("pid 11, 12"), "{s}");
        assert!(s.to_string().contains("KillMode=process"), "{s}");
        i.kill_mode = Some("none".into());
        i.main_pid = 0;
        assert_eq!(code("a.service", &facts(i.clone(), &[10])), "leftover-processes");
        i.kill_mode = Some("mixed".into());
        assert_eq!(code("a.service", &facts(i, &[11])), "restart");
    }

    #[test]
    fn gather_asks_sockets_and_checks_pids() {
        use crate::systemd::fake::{Call, Fake};
        let mut info = running_service(10);
        info.triggered_by = vec!["x.target".into(), "plain.socket".into(), "acc.socket".into()];
        let mut fake = Fake::with_units([("x@1.service", info)]);
        fake.accepting_sockets = vec!["acc.socket".into()];
        let d = tempfile::tempdir().unwrap();
        let root = SysRoot::new(d.path());
        std::fs::create_dir_all(root.proc_pid(10, "")).unwrap();
        let p = |pid| crate::system::scan::StaleProcess {
            pid,
            comm: "x".into(),
            owner: crate::core::unit_name::Owner::Unit("x@1.service".into()),
            files: vec![],
        };
        let u = UnitPlan {
            unit: "x@1.service".into(),
            action: crate::core::plan::Action::Restart,
            reason: crate::core::plan::Reason::AllUnits,
            processes: vec![p(10), p(11)],
        };
        let f = gather(&fake, &root, &u).unwrap();
        assert_eq!(f.accept_socket.as_deref(), Some("acc.socket"));
        assert_eq!(f.alive_stale, vec![10]);
        assert!(!fake.calls().contains(&Call::SocketAccepts("x.target".into())));
        // An instance that lost its TriggeredBy link is still found by name.
        let mut info = running_service(10);
        info.triggered_by.clear();
        let mut fake = Fake::with_units([("x@1.service", info)]);
        fake.accepting_sockets = vec!["x.socket".into()];
        let f = gather(&fake, &root, &u).unwrap();
        assert_eq!(f.accept_socket.as_deref(), Some("x.socket"));
        assert!(fake.calls().iter().all(|c| !c.mutates()));
    }
}
