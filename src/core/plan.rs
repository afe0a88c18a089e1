//! The pure decision core: scan data + policy + changed set → plan.
//!
//! Nothing here touches /proc, D-Bus or the disk, so every rule is tested
//! with plain tables.

use crate::core::changed::ChangedSet;
use crate::core::model::{Scan, StaleFile, StaleProcess, Staleness, Via};
use crate::core::policy::{Policy, Verdict};
use crate::core::tiers::{tier_of, Tier};
use crate::core::unit_name::Owner;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// What to do with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Restart,
    Skip,
}

/// The one reason behind an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    NotStale,
    NotAffected,
    /// Stale files at paths the transaction changed, but the process's
    /// root holds other files there (a jail's or a container's own copy);
    /// names the first such path.
    OtherRoot(String),
    NeverTier(&'static str),
    RunsThisTool,
    DeniedByAdmin(String),
    CautiousTier(&'static str),
    NotAllowed,
    AllowedByAdmin(String),
    AllowedByDistribution(String),
    AllUnits,
    /// Only files in places users control are stale (`interp::places`).
    UserFilesOnly,
    /// Without a transaction: every stale file that is not a user's lies
    /// in another mount namespace whose root holds its own copy; names
    /// the first such path.
    OtherRootOnly(String),
}

impl Reason {
    /// A stable machine-readable code, part of the JSON schema.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::NotStale => "not-stale",
            Reason::NotAffected => "not-affected",
            Reason::OtherRoot(_) => "other-root",
            Reason::NeverTier(_) => "never-tier",
            Reason::RunsThisTool => "runs-this-tool",
            Reason::DeniedByAdmin(_) => "denied-by-admin",
            Reason::CautiousTier(_) => "cautious-tier",
            Reason::NotAllowed => "not-allowed",
            Reason::AllowedByAdmin(_) => "allowed-by-admin",
            Reason::AllowedByDistribution(_) => "allowed-by-distribution",
            Reason::AllUnits => "all-units",
            Reason::UserFilesOnly => "user-files-only",
            Reason::OtherRootOnly(_) => "other-root-only",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NotStale => write!(f, "nothing stale"),
            Reason::NotAffected => write!(f, "stale files are not part of the transaction"),
            Reason::OtherRoot(p) => write!(f, "not affected: {p}: path differs from the host's in its root"),
            Reason::NeverTier(why) => write!(f, "never restarted automatically: {why}"),
            Reason::RunsThisTool => {
                write!(f, "runs this tool or the package manager that called it")
            }
            Reason::DeniedByAdmin(l) => write!(f, "denied by admin: {l}"),
            Reason::CautiousTier(why) => write!(f, "cautious ({why}): needs an admin allow link"),
            Reason::NotAllowed => write!(f, "not allowed: no policy link"),
            Reason::AllowedByAdmin(l) => write!(f, "allowed by admin: {l}"),
            Reason::AllowedByDistribution(l) => write!(f, "allowed by distribution: {l}"),
            Reason::AllUnits => write!(f, "-a: all units considered"),
            Reason::UserFilesOnly => write!(
                f,
                "stale files lie only where users control files: reported, never restarted"
            ),
            Reason::OtherRootOnly(p) => write!(
                f,
                "only its root's own copies are stale ({p}): reported, never restarted"
            ),
        }
    }
}

/// The decision for one unit, with the processes and files behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitPlan {
    pub unit: String,
    pub action: Action,
    pub reason: Reason,
    pub processes: Vec<StaleProcess>,
}

/// A stale process outside any system unit, with its cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutsideProcess {
    pub cgroup: String,
    pub process: StaleProcess,
}

/// The whole plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub units: Vec<UnitPlan>,
    /// PID 1, when it runs stale code (needs a re-exec, not a restart).
    pub init: Option<StaleProcess>,
    pub outside: Vec<OutsideProcess>,
    /// The rule every unit was judged by, kept for the units a restart
    /// would carry over to, which only live state names.
    pub gate: Gate,
}

/// The rule that says whether a unit may be restarted at all, apart from
/// whether it is stale: tiers, policy links, `-a`, and the units holding
/// this tool. A plan keeps it because systemd restarts more than the
/// planned units: a restart spreads to the units `PartOf=`, `BindsTo=` or
/// `Requires=` it, and each of those must pass the same rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gate {
    pub policy: Policy,
    /// `-a`: units without a policy link may be restarted too.
    pub all: bool,
    /// Units holding this tool or the package manager that called it:
    /// never restarted, not even as a side effect of another restart.
    pub self_units: Vec<String>,
}

impl Gate {
    /// Whether `unit` may be restarted, and why: the decision [`plan`]
    /// makes for a stale unit.
    pub(crate) fn decide(&self, unit: &str) -> (Action, Reason) {
        decide(unit, &self.policy, self.all, &self.self_units)
    }
}

impl Plan {
    pub fn restarts(&self) -> impl Iterator<Item = &UnitPlan> {
        self.units.iter().filter(|u| u.action == Action::Restart)
    }
}

/// Inputs besides the scan.
pub struct Options<'a> {
    pub policy: &'a Policy,
    pub changed: Option<&'a ChangedSet>,
    /// `-a`: consider every system unit.
    pub all: bool,
    /// Units holding this tool or its ancestors.
    pub self_units: &'a [String],
}

/// Keeps only the files in the transaction; `None` if none are. Takes
/// the process: a full report on a busy host holds tens of thousands of
/// stale files, and copying them doubled the peak memory.
fn affected(mut p: StaleProcess, changed: Option<&ChangedSet>) -> Option<StaleProcess> {
    if let Some(set) = changed {
        p.files.retain_mut(|f| {
            // The transaction changed the host's files, not a jail's copy.
            if f.other_root {
                return false;
            }
            if set.contains(&f.path) {
                return true;
            }
            // A versioned library the upgrade renamed: its old name is in
            // no list, only in the maps (replay; see ChangedSet).
            let sibling = (f.why == Staleness::Deleted && f.via == Via::Map)
                .then(|| set.soname_sibling(&f.path))
                .flatten();
            f.sibling = sibling.map(Arc::from);
            f.sibling.is_some()
        });
    }
    (!p.files.is_empty()).then_some(p)
}

/// The first path of the transaction that a process holds only as its
/// root's own copy, to say why its unit was left alone.
fn in_other_root(procs: &[StaleProcess], changed: Option<&ChangedSet>) -> Option<String> {
    let set = changed?;
    procs
        .iter()
        .flat_map(|p| &p.files)
        .find(|f| f.other_root && set.contains(&f.path))
        .map(|f| f.path.to_string())
}

/// Whether a file can be a reason to restart: a user's file never is
/// (whoever can put it there could restart the unit at will), nor is a
/// copy in another root: a user with an unprivileged user namespace can
/// mount over any path in a process of a unit's cgroup and replace files
/// there.
fn counts(f: &StaleFile) -> bool {
    !f.user && !f.other_root
}

/// Why a unit whose stale files are all report-only is skipped; `None`
/// when one of them counts.
fn report_only(procs: &[StaleProcess]) -> Option<Reason> {
    let mut files = procs.iter().flat_map(|p| &p.files);
    if files.clone().any(counts) {
        return None;
    }
    Some(match files.find(|f| f.other_root && !f.user) {
        Some(f) => Reason::OtherRootOnly(f.path.to_string()),
        None => Reason::UserFilesOnly,
    })
}

fn decide(unit: &str, policy: &Policy, all: bool, self_units: &[String]) -> (Action, Reason) {
    use Action::*;
    let tier = tier_of(unit);
    if let Some(Tier::Never(why)) = tier {
        return (Skip, Reason::NeverTier(why));
    }
    if self_units.iter().any(|u| u == unit) {
        return (Skip, Reason::RunsThisTool);
    }
    let verdict = policy.verdict(unit);
    let shown = |p: &std::path::Path| p.display().to_string();
    match (verdict, tier) {
        (Verdict::DeniedByAdmin(l), _) => (Skip, Reason::DeniedByAdmin(shown(&l))),
        (Verdict::AllowedByAdmin(l), _) => (Restart, Reason::AllowedByAdmin(shown(&l))),
        (_, Some(Tier::Cautious(why))) => (Skip, Reason::CautiousTier(why)),
        (Verdict::AllowedByDistribution(l), _) => (Restart, Reason::AllowedByDistribution(shown(&l))),
        (Verdict::Unset, _) if all => (Restart, Reason::AllUnits),
        _ => (Skip, Reason::NotAllowed),
    }
}

/// Builds the plan from a scan, taking its stale processes. Units are
/// sorted by name; every unit of the scan gets exactly one entry.
pub fn plan(scan: &mut Scan, opts: &Options) -> Plan {
    let mut by_unit: BTreeMap<String, Vec<StaleProcess>> = scan.units.iter().map(|u| (u.clone(), Vec::new())).collect();
    let mut out = Plan {
        gate: Gate {
            policy: opts.policy.clone(),
            all: opts.all,
            self_units: opts.self_units.to_vec(),
        },
        ..Plan::default()
    };
    for p in std::mem::take(&mut scan.stale) {
        match &p.owner {
            Owner::Unit(u) => by_unit.entry(u.clone()).or_default().push(p),
            // A re-exec of PID 1 follows package files only.
            Owner::Init => out.init = affected(p, opts.changed).filter(|p| p.files.iter().any(counts)),
            Owner::Outside(cg) => {
                let cgroup = cg.clone();
                if let Some(process) = affected(p, opts.changed) {
                    out.outside.push(OutsideProcess { cgroup, process });
                }
            }
        }
    }
    for (unit, procs) in by_unit {
        let stale = !procs.is_empty();
        let jailed = in_other_root(&procs, opts.changed);
        let processes: Vec<_> = procs.into_iter().filter_map(|p| affected(p, opts.changed)).collect();
        let (action, reason) = if processes.is_empty() {
            let r = match jailed {
                Some(path) => Reason::OtherRoot(path),
                None if stale => Reason::NotAffected,
                None => Reason::NotStale,
            };
            (Action::Skip, r)
        } else if let Some(r) = report_only(&processes) {
            (Action::Skip, r)
        } else {
            decide(&unit, opts.policy, opts.all, opts.self_units)
        };
        out.units.push(UnitPlan {
            unit,
            action,
            reason,
            processes,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{StaleFile, Staleness, Via};

    fn proc_in(owner: Owner, pid: u32, files: &[&str]) -> StaleProcess {
        let files = files
            .iter()
            .map(|p| {
                let mut f = StaleFile::new((*p).into(), Staleness::Deleted, Via::Map);
                f.user = crate::core::places::user_controlled(p);
                f
            })
            .collect();
        StaleProcess {
            pid,
            comm: "x".into(),
            owner,
            files,
        }
    }

    fn scan_of(units: &[&str]) -> Scan {
        let stale = units
            .iter()
            .enumerate()
            .map(|(i, u)| proc_in(Owner::Unit(u.to_string()), 100 + i as u32, &["/usr/lib/libdemo.so.1"]))
            .collect();
        Scan {
            units: units.iter().map(|s| s.to_string()).collect(),
            stale,
            ..Scan::default()
        }
    }

    fn decide_all(units: &[&str], all: bool, self_units: &[String]) -> Vec<(String, Action, &'static str)> {
        let policy = Policy::default();
        let opts = Options {
            policy: &policy,
            changed: None,
            all,
            self_units,
        };
        plan(&mut scan_of(units), &opts)
            .units
            .into_iter()
            .map(|u| (u.unit, u.action, u.reason.code()))
            .collect()
    }

    #[test]
    fn default_policy_restarts_nothing() {
        let v = decide_all(&["a.service", "dbus.service"], false, &[]);
        assert_eq!(v[0], ("a.service".into(), Action::Skip, "not-allowed"));
        assert_eq!(v[1], ("dbus.service".into(), Action::Skip, "never-tier"));
    }

    #[test]
    fn all_flag_respects_tiers_and_self() {
        let me = vec!["apt-get-run.service".to_string()];
        let v = decide_all(
            &["a.service", "dbus.service", "docker.service", "apt-get-run.service"],
            true,
            &me,
        );
        let codes: Vec<_> = v.iter().map(|(_, a, c)| (*a, *c)).collect();
        assert_eq!(
            codes,
            vec![
                (Action::Restart, "all-units"),
                (Action::Skip, "runs-this-tool"),
                (Action::Skip, "never-tier"),
                (Action::Skip, "cautious-tier"),
            ]
        );
    }

    #[test]
    fn the_plan_keeps_the_rule_it_judged_by() {
        let me = vec!["apt-get-run.service".to_string()];
        for all in [false, true] {
            let policy = Policy::default();
            let units = ["a.service", "dbus.service", "docker.service", "apt-get-run.service"];
            let opts = Options {
                policy: &policy,
                changed: None,
                all,
                self_units: &me,
            };
            let p = plan(&mut scan_of(&units), &opts);
            for u in &p.units {
                assert_eq!(p.gate.decide(&u.unit), (u.action, u.reason.clone()), "{}", u.unit);
            }
            // Units the scan never saw are judged alike.
            let want = if all { Action::Restart } else { Action::Skip };
            assert_eq!(p.gate.decide("unseen.service").0, want);
        }
    }

    #[test]
    fn changed_set_filters_files_and_processes() {
        let mut scan = scan_of(&["a.service"]);
        scan.stale
            .push(proc_in(Owner::Outside("/user.slice".into()), 7, &["/usr/lib/other.so"]));
        scan.stale.push(proc_in(Owner::Init, 1, &["/lib/libdemo.so.1"]));
        let policy = Policy::default();
        let set: ChangedSet = ["/usr/lib/other.so"].into_iter().collect();
        let p = plan(
            &mut scan,
            &Options {
                policy: &policy,
                changed: Some(&set),
                all: true,
                self_units: &[],
            },
        );
        assert_eq!(p.units[0].reason, Reason::NotAffected);
        assert!(p.units[0].processes.is_empty());
        assert_eq!(p.outside.len(), 1);
        assert!(p.init.is_none());
    }

    #[test]
    fn a_copy_in_another_root_is_reported_never_restarted() {
        let lib = "/usr/lib/libdemo.so.1";
        let scan_with_jail = || {
            let mut scan = scan_of(&["host.service", "jail.service"]);
            let mut jailed = proc_in(Owner::Unit("jail.service".into()), 9, &[lib]);
            jailed.files[0].other_root = true;
            scan.stale.retain(|p| p.owner != Owner::Unit("jail.service".into()));
            scan.stale.push(jailed);
            scan
        };
        let policy = Policy::default();
        let set: ChangedSet = [lib].into_iter().collect();
        let plan_of = |changed| {
            let opts = Options {
                policy: &policy,
                changed,
                all: true,
                self_units: &[],
            };
            plan(&mut scan_with_jail(), &opts)
        };
        let p = plan_of(Some(&set));
        assert_eq!(p.units[0].action, Action::Restart, "the host's process counts");
        assert_eq!(p.units[1].action, Action::Skip);
        assert_eq!(p.units[1].reason, Reason::OtherRoot(lib.into()));
        assert_eq!(p.units[1].reason.code(), "other-root");
        assert!(p.units[1]
            .reason
            .to_string()
            .contains("path differs from the host's in its root"));
        // Without a transaction (plain runs, -a, --marked) it is reported,
        // but never restarted: a user namespace can mount over any path.
        let p = plan_of(None);
        assert_eq!(p.units[0].action, Action::Restart, "the host's process counts");
        assert_eq!(p.units[1].action, Action::Skip);
        assert_eq!(p.units[1].reason, Reason::OtherRootOnly(lib.into()));
        assert_eq!(p.units[1].reason.code(), "other-root-only");
        assert_eq!(p.units[1].processes.len(), 1, "still reported");
    }

    #[test]
    fn another_roots_copy_alongside_a_host_file_restarts_for_the_host_file() {
        let mut scan = scan_of(&[]);
        scan.units = vec!["both.service".into(), "mixed.service".into()];
        let mut both = proc_in(Owner::Unit("both.service".into()), 7, &["/opt/x.so", "/home/u/y.so"]);
        both.files[0].other_root = true;
        let mut mixed = proc_in(
            Owner::Unit("mixed.service".into()),
            8,
            &["/opt/x.so", "/usr/lib/libc.so"],
        );
        mixed.files[0].other_root = true;
        let mut init = proc_in(Owner::Init, 1, &["/usr/lib/systemd/libsystemd-core.so"]);
        init.files[0].other_root = true;
        scan.stale.extend([both, mixed, init]);
        let policy = Policy::default();
        let opts = Options {
            policy: &policy,
            changed: None,
            all: true,
            self_units: &[],
        };
        let p = plan(&mut scan, &opts);
        assert_eq!(p.units[0].reason, Reason::OtherRootOnly("/opt/x.so".into()));
        assert_eq!(p.units[1].action, Action::Restart);
        assert!(p.init.is_none(), "PID 1's root's own copy makes no re-exec");
    }

    #[test]
    fn files_users_control_are_reported_never_restarted() {
        let mut scan = scan_of(&[]);
        scan.units = vec!["home.service".into(), "mixed.service".into()];
        let home = Owner::Unit("home.service".into());
        scan.stale.push(proc_in(home, 7, &["/home/u/lib.so", "/srv/x.py"]));
        let mixed = Owner::Unit("mixed.service".into());
        scan.stale
            .push(proc_in(mixed, 8, &["/home/u/lib.so", "/usr/lib/libc.so"]));
        scan.stale.push(proc_in(Owner::Init, 1, &["/root/x.so"]));
        let policy = Policy::default();
        let opts = Options {
            policy: &policy,
            changed: None,
            all: true,
            self_units: &[],
        };
        let p = plan(&mut scan, &opts);
        assert_eq!(
            (p.units[0].action, p.units[0].reason.code()),
            (Action::Skip, "user-files-only")
        );
        assert_eq!(p.units[0].processes[0].files.len(), 2, "still reported");
        assert_eq!(p.units[1].action, Action::Restart);
        assert!(p.init.is_none());
    }

    #[test]
    fn unit_without_stale_processes_is_listed() {
        let mut scan = scan_of(&[]);
        scan.units.push("quiet.service".into());
        let policy = Policy::default();
        let p = plan(
            &mut scan,
            &Options {
                policy: &policy,
                changed: None,
                all: true,
                self_units: &[],
            },
        );
        assert_eq!(p.units[0].reason, Reason::NotStale);
        assert_eq!(p.restarts().count(), 0);
    }
}
