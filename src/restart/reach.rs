//! What systemd restarts or stops along with a planned unit: the units
//! tied to it, and the units tied to those, for as long as the restart
//! spreads. [`walk`] reads them through [`UnitQuery`]; [`judge`] decides,
//! purely, whether each one may be restarted by the plan's own rule
//! ([`Gate`]), so a restart cannot carry over to a unit that policy or a
//! tier keeps from being restarted.

use super::refine::Skip;
use crate::core::plan::{Action, Gate, Reason};
use crate::systemd::{Dependant, Tie, UnitInfo, UnitQuery};
use anyhow::Result;
use std::collections::{HashSet, VecDeque};

/// How many units one restart may reach before the walk stops. A real
/// restart reaches a handful; a graph this large is a misconfiguration
/// or an attempt to make the run slow, and its end is not checked.
pub const LIMIT: usize = 256;

/// One unit a restart reaches, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached {
    /// The ties from the planned unit to this one, nearest first; never
    /// empty.
    pub path: Vec<Dependant>,
    /// `None` when systemd has no such unit loaded.
    pub info: Option<UnitInfo>,
}

impl Reached {
    pub fn unit(&self) -> &str {
        self.path.last().map_or("", |d| d.unit.as_str())
    }
}

/// Every unit a restart reaches, nearest first (breadth first, each once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    pub units: Vec<Reached>,
    /// The walk stopped at [`LIMIT`] units with more to read.
    pub cut_short: bool,
}

/// Whether systemd would act on `info` and spread further from it: it
/// carries nothing over to a unit that is not loaded, inactive or failed
/// (a try-restart of one is a no-op, and no job means no further jobs).
fn carries_over(info: Option<&UnitInfo>) -> bool {
    info.is_some_and(|i| !i.stopped())
}

/// Reads the units a restart of `unit` (whose properties are `info`)
/// reaches; read-only calls only, one per unit, at most [`LIMIT`].
pub fn walk<Q: UnitQuery + ?Sized>(q: &Q, unit: &str, info: &UnitInfo) -> Result<Reach> {
    let mut seen: HashSet<String> = HashSet::from([unit.to_string()]);
    let mut queue: VecDeque<Vec<Dependant>> = VecDeque::new();
    queue_new(&mut seen, &mut queue, &[], info);
    let mut out = Reach::default();
    while let Some(path) = queue.pop_front() {
        if out.units.len() == LIMIT {
            out.cut_short = true;
            break;
        }
        let info = q.unit(&path[path.len() - 1].unit)?;
        if let Some(i) = info.as_ref().filter(|i| carries_over(Some(i))) {
            queue_new(&mut seen, &mut queue, &path, i);
        }
        out.units.push(Reached { path, info });
    }
    Ok(out)
}

/// Queues the dependants of `from` (reached through `path`) not seen yet;
/// the seen set is what ends a cycle.
fn queue_new(seen: &mut HashSet<String>, queue: &mut VecDeque<Vec<Dependant>>, path: &[Dependant], from: &UnitInfo) {
    for d in &from.dependants {
        if seen.insert(d.unit.clone()) {
            let mut next = path.to_vec();
            next.push(d.clone());
            queue.push_back(next);
        }
    }
}

/// The pure rule: a restart of `unit` is allowed only if every unit it
/// reaches that systemd would act on may be restarted by the plan's own
/// rule. A reached unit that is itself planned passes that rule, so it
/// never blocks. A walk cut short is not known to be safe.
pub(crate) fn judge(unit: &str, reach: &Reach, gate: &Gate) -> Option<Skip> {
    let blocked = reach
        .units
        .iter()
        .filter(|r| carries_over(r.info.as_ref()))
        .find_map(|r| match gate.decide(r.unit()) {
            (Action::Restart, _) => None,
            // A target runs no process of its own: a restart carried to
            // it stops and starts nothing but what the walk reaches
            // through it, which is judged in turn. Only an admin's deny
            // link holds it; without one, every linked service that some
            // target `Requires=` would never be restarted.
            (Action::Skip, Reason::NotAllowed) if r.unit().ends_with(".target") => None,
            (Action::Skip, reason) => Some(Skip::Propagates {
                from: unit.to_string(),
                path: r.path.clone(),
                reason,
            }),
        });
    blocked.or_else(|| reach.cut_short.then_some(Skip::TooManyDependants { limit: LIMIT }))
}

/// Whether a restart that reaches a unit the plan skips for `reason`
/// would touch a protected unit (never tier, or this tool's own), rather
/// than one that policy or a tier merely does not allow.
pub(crate) fn reaches_protected(reason: &Reason) -> bool {
    matches!(reason, Reason::NeverTier(_) | Reason::RunsThisTool)
}

/// `restart`, or `stop` when a stop propagation lies on the way: a
/// stopped unit's dependants are stopped too, not restarted.
pub(crate) fn verb(path: &[Dependant]) -> &'static str {
    if path.iter().any(|d| d.tie == Tie::PropagatesStopTo) {
        "stop"
    } else {
        "restart"
    }
}

/// How the restart gets there: the setting alone for a direct dependant
/// (`Requires=`), each link for a longer way, farthest first
/// (`c.service BindsTo= b.service, b.service PartOf= a.service`).
pub fn way(from: &str, path: &[Dependant]) -> String {
    if let [only] = path {
        return only.tie.setting().to_string();
    }
    let links: Vec<String> = path
        .iter()
        .enumerate()
        .rev()
        .map(|(i, d)| {
            let parent = if i == 0 { from } else { path[i - 1].unit.as_str() };
            match d.tie {
                Tie::PropagatesStopTo => format!("{parent} PropagatesStopTo= {}", d.unit),
                t => format!("{} {} {parent}", d.unit, t.setting()),
            }
        })
        .collect();
    links.join(", ")
}

/// Why the reached unit must not be restarted, after "which".
pub fn why(reason: &Reason) -> String {
    match reason {
        Reason::NeverTier(w) => format!("is never restarted automatically ({w})"),
        Reason::RunsThisTool => "runs this tool or the package manager that called it".to_string(),
        Reason::DeniedByAdmin(l) => format!("policy denies ({l} -> /dev/null)"),
        Reason::CautiousTier(w) => format!("is cautious ({w}) and has no admin allow link"),
        Reason::NotAllowed => "has no policy link allowing it (and -a was not given)".to_string(),
        other => format!("is not restarted ({other})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::policy::{Entry, Level, Policy};
    use crate::systemd::fake::{running_service, Call, Fake};

    fn tie(unit: &str, tie: Tie) -> Dependant {
        Dependant { unit: unit.into(), tie }
    }

    fn with(deps: &[Dependant]) -> UnitInfo {
        let mut i = running_service(10);
        i.dependants = deps.to_vec();
        i
    }

    /// `-a` with these admin deny links.
    fn gate(denied: &[&str]) -> Gate {
        let entries = denied
            .iter()
            .map(|u| {
                let link = format!("/etc/restart-stale/{u}").into();
                (u.to_string(), Entry { deny: true, link })
            })
            .collect();
        Gate {
            policy: Policy {
                levels: vec![Level { admin: true, entries }],
                warnings: vec![],
            },
            all: true,
            self_units: vec![],
        }
    }

    /// Walks from `unit` in `fake` and judges.
    fn verdict(fake: &Fake, unit: &str, gate: &Gate) -> Option<Skip> {
        let info = fake.units[unit].clone();
        judge(unit, &walk(fake, unit, &info).unwrap(), gate)
    }

    #[test]
    fn a_unit_requiring_the_planned_one_must_be_allowed_too() {
        let fake = Fake::with_units([
            ("nfs-mountd.service", with(&[tie("nfs-server.service", Tie::Requires)])),
            ("nfs-server.service", with(&[])),
        ]);
        let s = verdict(&fake, "nfs-mountd.service", &gate(&["nfs-server.service"])).expect("not skipped");
        assert_eq!(s.code(), "would-restart-denied");
        assert!(s.leaves_stale_code());
        assert_eq!(
            s.to_string(),
            "a restart would also restart nfs-server.service (Requires=), which policy denies \
             (/etc/restart-stale/nfs-server.service -> /dev/null)"
        );
        assert_eq!(
            verdict(&fake, "nfs-mountd.service", &gate(&[])),
            None,
            "allowed under -a"
        );
    }

    #[test]
    fn a_target_needs_no_allow_link_but_what_lies_beyond_it_is_judged() {
        let fake = Fake::with_units([
            ("a.service", with(&[tie("app.target", Tie::Requires)])),
            ("app.target", with(&[tie("b.service", Tie::PartOf)])),
            ("b.service", with(&[])),
        ]);
        let mut g = gate(&[]);
        g.all = false;
        let allow = |u: &str| {
            let link = format!("/etc/restart-stale/{u}").into();
            (u.to_string(), Entry { deny: false, link })
        };
        g.policy.levels[0].entries = [allow("a.service")].into_iter().collect();
        let s = verdict(&fake, "a.service", &g).expect("b.service has no allow link");
        assert!(s.to_string().contains("restart b.service"), "{s}");
        g.policy.levels[0].entries = [allow("a.service"), allow("b.service")].into_iter().collect();
        assert_eq!(verdict(&fake, "a.service", &g), None, "the target itself needs no link");
        let denied = gate(&["app.target"]);
        assert!(
            verdict(&fake, "a.service", &denied).is_some(),
            "an admin's deny holds a target"
        );
    }

    #[test]
    fn the_walk_follows_ties_beyond_the_first() {
        // b is PartOf= a, docker BindsTo= b: restarting a restarts docker.
        let fake = Fake::with_units([
            ("a.service", with(&[tie("b.service", Tie::PartOf)])),
            ("b.service", with(&[tie("docker.service", Tie::BindsTo)])),
            ("docker.service", with(&[])),
        ]);
        let s = verdict(&fake, "a.service", &gate(&[])).expect("not skipped");
        assert_eq!(s.code(), "would-restart-denied");
        let text = s.to_string();
        assert!(
            text.contains("restart docker.service (docker.service BindsTo= b.service, b.service PartOf= a.service)"),
            "{text}"
        );
        assert!(text.contains("is cautious (containers)"), "{text}");
    }

    #[test]
    fn a_stop_propagated_from_the_planned_unit_counts() {
        // systemd lists b in a's PropagatesStopTo whether a says
        // PropagatesStopTo=b or b says StopPropagatedFrom=a.
        let fake = Fake::with_units([
            ("a.service", with(&[tie("b.service", Tie::PropagatesStopTo)])),
            ("b.service", with(&[])),
        ]);
        let s = verdict(&fake, "a.service", &gate(&["b.service"])).expect("not skipped");
        assert!(s.to_string().contains("also stop b.service (PropagatesStopTo=)"), "{s}");
    }

    #[test]
    fn allowed_dependants_pass_and_protected_ones_keep_their_code() {
        let fake = Fake::with_units([
            ("a.service", with(&[tie("worker.service", Tie::PartOf)])),
            ("worker.service", with(&[tie("web.target", Tie::Requires)])),
            (
                "web.target",
                UnitInfo {
                    active_state: "active".into(),
                    ..UnitInfo::default()
                },
            ),
        ]);
        assert_eq!(verdict(&fake, "a.service", &gate(&[])), None);
        // Without -a an unlinked dependant is not allowed either ...
        let mut g = gate(&[]);
        g.all = false;
        let s = verdict(&fake, "a.service", &g).expect("not skipped");
        assert!(s.to_string().contains("worker.service (PartOf=)"), "{s}");
        assert!(s.to_string().contains("no policy link"), "{s}");
        // ... and an admin allow link lets each one through.
        for u in ["worker.service", "web.target"] {
            let link = format!("/etc/restart-stale/{u}").into();
            g.policy.levels[0].entries.insert(u.into(), Entry { deny: false, link });
        }
        assert_eq!(verdict(&fake, "a.service", &g), None);
        // The units holding this tool and the never tier are protected.
        g.self_units = vec!["web.target".into()];
        let s = verdict(&fake, "a.service", &g).expect("not skipped");
        assert_eq!(s.code(), "would-restart-protected");
        assert!(s.to_string().contains("runs this tool"), "{s}");
    }

    #[test]
    fn units_systemd_would_not_act_on_are_neither_judged_nor_followed() {
        let mut inactive = with(&[tie("c.service", Tie::Requires)]);
        inactive.active_state = "inactive".into();
        let fake = Fake::with_units([
            (
                "a.service",
                with(&[tie("b.service", Tie::Requires), tie("gone.service", Tie::PartOf)]),
            ),
            ("b.service", inactive),
            ("c.service", with(&[])),
        ]);
        let g = gate(&["b.service", "c.service", "gone.service"]);
        assert_eq!(verdict(&fake, "a.service", &g), None);
        assert!(!fake.calls().contains(&Call::Unit("c.service".into())));
        let mut failed = fake.units["b.service"].clone();
        failed.active_state = "failed".into();
        let mut fake = fake;
        fake.units.insert("b.service".into(), failed);
        assert_eq!(verdict(&fake, "a.service", &g), None);
    }

    #[test]
    fn a_cycle_ends_and_each_unit_is_read_once() {
        let fake = Fake::with_units([
            ("a.service", with(&[tie("b.service", Tie::Requires)])),
            (
                "b.service",
                with(&[tie("a.service", Tie::PartOf), tie("c.service", Tie::BindsTo)]),
            ),
            (
                "c.service",
                with(&[tie("b.service", Tie::Requires), tie("a.service", Tie::Requires)]),
            ),
        ]);
        assert_eq!(verdict(&fake, "a.service", &gate(&[])), None);
        let reads = fake.calls().len();
        assert_eq!(reads, 2, "{:?}", fake.calls());
        let s = verdict(&fake, "a.service", &gate(&["c.service"])).expect("not skipped");
        assert!(s.to_string().contains("c.service BindsTo= b.service"), "{s}");
    }

    #[test]
    fn a_walk_past_the_limit_stops_and_is_not_trusted() {
        let name = |i: usize| format!("u{i}.service");
        let chain: Vec<(String, UnitInfo)> = (0..LIMIT + 10)
            .map(|i| (name(i), with(&[tie(&name(i + 1), Tie::Requires)])))
            .collect();
        let fake = Fake::with_units(chain.iter().map(|(n, i)| (n.as_str(), i.clone())));
        let s = verdict(&fake, "u0.service", &gate(&[])).expect("not skipped");
        assert_eq!(s.code(), "too-many-dependants");
        assert!(s.leaves_stale_code());
        assert!(fake.calls().len() <= LIMIT, "{}", fake.calls().len());
        // A denied unit within the limit is named rather than the limit.
        let s = verdict(&fake, "u0.service", &gate(&["u5.service"])).expect("not skipped");
        assert_eq!(s.code(), "would-restart-denied");
    }

    #[test]
    fn missing_ties_and_unloaded_dependants_are_empty() {
        // An older systemd has no PropagatesStopTo: nothing is listed.
        let fake = Fake::with_units([("a.service", with(&[tie("ghost.service", Tie::Requires)]))]);
        assert_eq!(verdict(&fake, "a.service", &gate(&["ghost.service"])), None);
        let bare = UnitInfo::default();
        assert_eq!(walk(&fake, "x.service", &bare).unwrap(), Reach::default());
    }
}
