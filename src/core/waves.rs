//! The health gate's pure rules: which order planned restarts go in
//! ([`plan`]), whether a restarted unit settled ([`settle_check`]), and
//! which restarts are held before they are sent ([`start_limit`],
//! [`restarted_lately`], [`canary`]). The restart step reads systemd and
//! hands plain values in; nothing here reads the system.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// The default settle time (`--settle`, `settle =` in
/// /etc/restart-stale.conf).
pub const DEFAULT_SETTLE_SECS: u64 = 5;

/// One planned unit, as the wave planner sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Member {
    pub unit: String,
    /// Its `After=`: the units it starts after.
    pub after: Vec<String>,
    /// Units systemd restarts together with it (`Requires=`, `BindsTo=`,
    /// `PartOf=` on their side).
    pub dependants: Vec<String>,
}

/// One restart job: a planned unit and the planned units systemd
/// restarts with it, which the gate checks and reports with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub unit: String,
    /// Planned units that ride along, sorted.
    pub with: Vec<String>,
}

impl Job {
    /// The unit and its riders.
    pub fn units(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.unit.as_str()).chain(self.with.iter().map(String::as_str))
    }
}

/// Splits the planned units into ordered waves. Units that systemd
/// restarts together form one job; a job with a unit ordered `After=` a
/// unit of another job goes in a later wave than that job. Jobs caught in
/// an ordering cycle (which systemd itself breaks at random) share one
/// wave after the rest. Within a wave jobs keep the input order.
pub fn plan(members: &[Member]) -> Vec<Vec<Job>> {
    let index: HashMap<&str, usize> = members.iter().enumerate().map(|(i, m)| (m.unit.as_str(), i)).collect();
    let group = groups(members, &index);
    // Each group's members, in input order; the key is the group's first.
    let mut order: Vec<usize> = Vec::new();
    let mut of: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, &g) in group.iter().enumerate() {
        if !of.contains_key(&g) {
            order.push(g);
        }
        of.entry(g).or_default().push(i);
    }
    let mut before: HashMap<usize, BTreeSet<usize>> = HashMap::new();
    for (i, m) in members.iter().enumerate() {
        for a in &m.after {
            if let Some(&j) = index.get(a.as_str()) {
                if group[j] != group[i] {
                    before.entry(group[i]).or_default().insert(group[j]);
                }
            }
        }
    }
    let mut wave: HashMap<usize, usize> = HashMap::new();
    let mut waves: Vec<Vec<Job>> = Vec::new();
    while wave.len() < order.len() {
        let ready: Vec<usize> = order
            .iter()
            .copied()
            .filter(|g| !wave.contains_key(g))
            .filter(|g| before.get(g).is_none_or(|b| b.iter().all(|h| wave.contains_key(h))))
            .collect();
        // Nothing ready: the rest wait on each other in a cycle.
        let cycle = ready.is_empty();
        let now: Vec<usize> = if cycle {
            order.iter().copied().filter(|g| !wave.contains_key(g)).collect()
        } else {
            ready
        };
        for &g in &now {
            wave.insert(g, waves.len());
        }
        waves.push(now.iter().map(|g| job(members, &of[g])).collect());
    }
    waves
}

/// Union of planned units tied by a dependant relation; each unit's
/// group is the index of its group's first unit.
fn groups(members: &[Member], index: &HashMap<&str, usize>) -> Vec<usize> {
    let mut parent: Vec<usize> = (0..members.len()).collect();
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    for (i, m) in members.iter().enumerate() {
        for d in &m.dependants {
            if let Some(&j) = index.get(d.as_str()) {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    (0..members.len()).map(|i| find(&mut parent, i)).collect()
}

/// The job of a group: its unit is the first member no other member
/// carries along (the dependency), the rest ride with it.
fn job(members: &[Member], group: &[usize]) -> Job {
    let carried = |i: usize| {
        group
            .iter()
            .any(|&j| j != i && members[j].dependants.contains(&members[i].unit))
    };
    let lead = group.iter().copied().find(|&i| !carried(i)).unwrap_or(group[0]);
    let mut with: Vec<String> = group
        .iter()
        .filter(|&&i| i != lead)
        .map(|&i| members[i].unit.clone())
        .collect();
    with.sort();
    Job {
        unit: members[lead].unit.clone(),
        with,
    }
}

/// The state of a restarted unit that the settle rule looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    pub active_state: String,
    pub sub_state: String,
    /// `NRestarts`: automatic restarts since the last manual start.
    pub n_restarts: u32,
}

/// What one look at a restarted unit says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    /// Still within the settle time and healthy so far.
    Waiting,
    /// Healthy for the whole settle time.
    Settled,
    /// Unhealthy; why, in words.
    Failed(String),
}

/// The settle rule: between waves a restarted unit must stay `active`
/// (a `Type=notify` unit stays `activating` until it reports ready, so
/// `active` means ready) without its `NRestarts` growing past `baseline`,
/// the count right after its restart. `at_end`: the settle time is over.
pub(crate) fn settle_check(baseline: u32, now: &Health, at_end: bool) -> Settle {
    let state = format!("{} ({})", now.active_state, now.sub_state);
    if now.n_restarts > baseline {
        let n = now.n_restarts - baseline;
        let times = if n == 1 { "once" } else { "more than once" };
        return Settle::Failed(format!(
            "restarted itself {times} within the settle time (NRestarts {baseline} -> {}), now {state}",
            now.n_restarts
        ));
    }
    match now.active_state.as_str() {
        "failed" | "inactive" => return Settle::Failed(format!("ended {state} within the settle time")),
        // systemd waits out RestartSec= in activating (auto-restart).
        "activating" if now.sub_state == "auto-restart" => {
            return Settle::Failed(format!("crashed within the settle time, now {state}"))
        }
        _ => {}
    }
    match (at_end, now.active_state == "active") {
        (false, _) => Settle::Waiting,
        (true, true) => Settle::Settled,
        (true, false) => Settle::Failed(format!("did not settle: {state} at the end of the settle time")),
    }
}

/// A unit's start-limit settings and its recent starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StartLimit {
    /// `StartLimitBurst`; 0 turns the limit off.
    pub burst: u32,
    /// `StartLimitIntervalUSec`; 0 turns the limit off.
    pub interval: Duration,
    /// `NRestarts`.
    pub n_restarts: u32,
    /// How long ago its main process last started
    /// (`ExecMainStartTimestamp`); `None` when unknown.
    pub last_start_ago: Option<Duration>,
}

/// Why restarting the unit now would trip its start limit, if it would.
/// systemd does not expose its start counter, so this counts the manual
/// start and each automatic restart (`NRestarts`) as inside the interval
/// when the last start is: an overestimate that holds a unit rather than
/// leave it stopped with `start-limit-hit`.
pub(crate) fn start_limit(l: &StartLimit) -> Option<String> {
    if l.burst == 0 || l.interval.is_zero() {
        return None;
    }
    let recent = match l.last_start_ago {
        Some(ago) if ago < l.interval => l.n_restarts.saturating_add(1),
        _ => 0,
    };
    (recent.saturating_add(1) > l.burst).then(|| {
        format!(
            "a restart now would trip its start limit: {recent} start(s) within the last {}s \
             (NRestarts={}), StartLimitBurst={}",
            l.interval.as_secs(),
            l.n_restarts,
            l.burst
        )
    })
}

/// Why the unit is held because this tool restarted it `ago` (from the
/// state file), within one settle time of now, if it is: back-to-back
/// transactions must not restart it twice before it could settle.
pub(crate) fn restarted_lately(ago: Option<Duration>, settle: Duration) -> Option<String> {
    let ago = ago?;
    (ago < settle).then(|| {
        format!(
            "restarted by restart-stale {:.1}s ago, within the settle time ({}s)",
            ago.as_secs_f64(),
            settle.as_secs()
        )
    })
}

/// The longest a hook's run waits for a unit restarted lately to finish
/// settling before it restarts it again; a settle time past this holds
/// the unit instead (`restarted-lately`).
pub const MAX_SETTLE_WAIT: Duration = Duration::from_secs(60);

/// How long a hook's run waits before restarting, given how long ago
/// this tool restarted each planned unit: until the most recent one has
/// had a whole settle time. A unit with more than `cap` of it left is
/// not waited for ([`restarted_lately`] holds it). Back-to-back
/// transactions then restart a unit at most once per settle time and
/// lose no restart.
pub(crate) fn settle_wait(
    agos: impl IntoIterator<Item = Option<Duration>>,
    settle: Duration,
    cap: Duration,
) -> Duration {
    agos.into_iter()
        .flatten()
        .filter(|ago| *ago < settle)
        .map(|ago| settle - ago)
        .filter(|left| *left <= cap)
        .max()
        .unwrap_or(Duration::ZERO)
}

/// With `--canary N`: how many of the waves' jobs go ahead, counting
/// jobs in wave order; the rest stay planned. `None`: all of them.
pub(crate) fn canary(waves: &[Vec<Job>], n: Option<usize>) -> usize {
    let total = waves.iter().map(Vec::len).sum();
    n.map_or(total, |n| n.min(total))
}

/// The reason every job after a failed one is held with.
pub(crate) fn held_after(failed: &str) -> String {
    format!("earlier restart of {failed} failed")
}

/// Whether the next job goes ahead: `Err` with the reason it is held.
/// `failed`: the first unit of an earlier wave that failed or did not
/// settle; `canary_left`: jobs `--canary` still lets through.
pub fn go(failed: Option<&str>, canary_left: Option<usize>) -> Result<(), String> {
    if let Some(f) = failed {
        return Err(held_after(f));
    }
    match canary_left {
        Some(0) => Err("not restarted: past the --canary count; still planned".to_string()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(unit: &str, after: &[&str], dependants: &[&str]) -> Member {
        Member {
            unit: unit.into(),
            after: after.iter().map(|s| s.to_string()).collect(),
            dependants: dependants.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Each wave as `unit+rider` strings.
    fn shape(waves: &[Vec<Job>]) -> Vec<Vec<String>> {
        waves
            .iter()
            .map(|w| w.iter().map(|j| j.units().collect::<Vec<_>>().join("+")).collect())
            .collect()
    }

    #[test]
    fn waves_follow_after_and_keep_dependants_with_their_dependency() {
        type Case = (&'static str, Vec<Member>, Vec<Vec<&'static str>>);
        let cases: Vec<Case> = vec![
            ("nothing planned", vec![], vec![]),
            (
                "no order: one wave",
                vec![m("a", &[], &[]), m("b", &[], &[]), m("c", &[], &[])],
                vec![vec!["a", "b", "c"]],
            ),
            (
                "after= a planned unit: a later wave",
                vec![m("web", &["db", "network.target"], &[]), m("db", &[], &[])],
                vec![vec!["db"], vec!["web"]],
            ),
            (
                "a chain: one wave each",
                vec![m("c", &["b"], &[]), m("b", &["a"], &[]), m("a", &[], &[])],
                vec![vec!["a"], vec!["b"], vec!["c"]],
            ),
            (
                "requires= (with after=) rides with its dependency",
                vec![m("b", &[], &["c"]), m("c", &["b"], &[]), m("x", &[], &[])],
                vec![vec!["b+c", "x"]],
            ),
            (
                "a rider's after= moves its whole job",
                vec![m("b", &[], &["c"]), m("c", &["b", "d"], &[]), m("d", &[], &[])],
                vec![vec!["d"], vec!["b+c"]],
            ),
            (
                "the job is named by its dependency, whatever the input order",
                vec![m("c", &["b"], &[]), m("b", &[], &["c"])],
                vec![vec!["b+c"]],
            ),
            (
                "an ordering cycle shares a wave after the rest",
                vec![
                    m("p", &["q"], &[]),
                    m("q", &["p"], &[]),
                    m("r", &[], &[]),
                    m("s", &["r"], &[]),
                ],
                vec![vec!["r"], vec!["s"], vec!["p", "q"]],
            ),
        ];
        for (name, members, want) in cases {
            let got = shape(&plan(&members));
            let want: Vec<Vec<String>> = want
                .into_iter()
                .map(|w| w.into_iter().map(String::from).collect())
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }

    fn h(active: &str, sub: &str, n: u32) -> Health {
        Health {
            active_state: active.into(),
            sub_state: sub.into(),
            n_restarts: n,
        }
    }

    #[test]
    fn settle_rule() {
        let cases = [
            (0, h("active", "running", 0), false, "waiting"),
            (0, h("active", "running", 0), true, "settled"),
            (2, h("active", "running", 2), true, "settled"),
            (0, h("active", "running", 1), false, "restarted itself once"),
            (1, h("active", "running", 4), false, "restarted itself more than once"),
            (0, h("failed", "failed", 0), false, "ended failed (failed)"),
            (0, h("inactive", "dead", 0), false, "ended inactive (dead)"),
            (0, h("activating", "auto-restart", 0), false, "crashed"),
            (0, h("activating", "start", 0), false, "waiting"),
            (
                0,
                h("activating", "start", 0),
                true,
                "did not settle: activating (start)",
            ),
            (0, h("deactivating", "stop-sigterm", 0), true, "did not settle"),
        ];
        for (baseline, now, at_end, want) in cases {
            let got = match settle_check(baseline, &now, at_end) {
                Settle::Waiting => "waiting".to_string(),
                Settle::Settled => "settled".to_string(),
                Settle::Failed(why) => why,
            };
            assert!(got.contains(want), "{now:?} at_end={at_end}: {got}");
        }
    }

    #[test]
    fn start_limit_arithmetic() {
        let s = Duration::from_secs;
        let l = |burst, interval, n_restarts, ago: Option<u64>| StartLimit {
            burst,
            interval: s(interval),
            n_restarts,
            last_start_ago: ago.map(s),
        };
        let cases = [
            // systemd's default: 5 starts in 10 s.
            (l(5, 10, 0, Some(1)), false),
            (l(5, 10, 3, Some(1)), false),
            (l(5, 10, 4, Some(1)), true),
            // The last start is outside the interval: nothing counts.
            (l(5, 10, 40, Some(11)), false),
            (l(3, 600, 2, Some(30)), true),
            (l(3, 600, 1, Some(30)), false),
            // Burst 1: even one recent start is the limit.
            (l(1, 10, 0, Some(2)), true),
            (l(1, 10, 0, None), false),
            // Either setting 0 turns the limit off.
            (l(0, 10, 99, Some(1)), false),
            (l(5, 0, 99, Some(1)), false),
        ];
        for (limit, trips) in cases {
            let got = start_limit(&limit);
            assert_eq!(got.is_some(), trips, "{limit:?}: {got:?}");
        }
        let why = start_limit(&l(3, 600, 2, Some(30))).unwrap();
        assert!(why.contains("3 start(s) within the last 600s"), "{why}");
        assert!(why.contains("StartLimitBurst=3"), "{why}");
    }

    #[test]
    fn a_unit_restarted_within_the_settle_time_is_held() {
        let s = Duration::from_secs;
        assert!(restarted_lately(Some(s(2)), s(5)).unwrap().contains("2.0s ago"));
        assert_eq!(restarted_lately(Some(s(5)), s(5)), None);
        assert_eq!(restarted_lately(None, s(5)), None);
        // The wait is what is left of the newest restart's settle time.
        let agos = [Some(s(4)), None, Some(Duration::from_millis(800)), Some(s(9))];
        assert_eq!(settle_wait(agos, s(5), s(60)), Duration::from_millis(4200));
        assert_eq!(settle_wait([Some(s(1))], s(600), s(60)), Duration::ZERO);
        assert_eq!(settle_wait([None, Some(s(6))], s(5), s(60)), Duration::ZERO);
        // --settle 0: the gate is off.
        assert_eq!(restarted_lately(Some(Duration::ZERO), Duration::ZERO), None);
    }

    #[test]
    fn a_failure_in_an_earlier_wave_holds_the_rest() {
        let cases = [
            (None, None, Ok(())),
            (None, Some(2), Ok(())),
            (None, Some(0), Err("past the --canary count")),
            (Some("x.service"), None, Err("earlier restart of x.service failed")),
            (Some("x.service"), Some(0), Err("earlier restart of x.service failed")),
        ];
        for (failed, left, want) in cases {
            let got = go(failed, left);
            match (&got, want) {
                (Ok(()), Ok(())) => {}
                (Err(why), Err(w)) => assert!(why.contains(w), "{why}"),
                _ => panic!("{failed:?} {left:?}: {got:?}"),
            }
        }
    }

    #[test]
    fn canary_counts_jobs_in_wave_order() {
        let waves = plan(&[
            m("a", &[], &["b"]),
            m("b", &[], &[]),
            m("c", &["a"], &[]),
            m("d", &[], &[]),
        ]);
        assert_eq!(shape(&waves), vec![vec!["a+b", "d"], vec!["c"]]);
        assert_eq!(canary(&waves, None), 3);
        assert_eq!(canary(&waves, Some(1)), 1);
        assert_eq!(canary(&waves, Some(10)), 3);
        assert_eq!(canary(&waves, Some(0)), 0);
    }
}
