//! What an upgrade fixed, from its changelog: the CVE identifiers, the
//! urgency and whether the upload came from a security suite, for each
//! package whose old files a unit still runs (docs/cves.md). The readers
//! in [`crate::managers::changelog`] hand parsed changelogs here; the
//! report, the batch lines, the textfile and the `security` restart
//! policy only read the result.

use crate::core::changelog::{Entry, Parsed};
use crate::core::plan::{Action, Plan, UnitPlan};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Which package database the transaction came from: it decides where
/// the changelog is and how versions order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    #[default]
    Deb,
    Rpm,
    /// A manager whose packages carry no changelog we read, with the
    /// reason (pacman, swupd).
    Unsupported(&'static str),
}

/// One package of a transaction: the version that was running (before
/// the transaction) and the one installed by it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Upgrade {
    pub name: String,
    /// The Debian architecture (for `changelog.Debian.<arch>.gz`).
    pub arch: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The packages of a transaction, for the annotation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Upgrades {
    pub family: Family,
    pub packages: Vec<Upgrade>,
}

impl Upgrades {
    /// Adds one change of a package; a package changed twice (two
    /// transactions replayed together, apt's unpack then configure) keeps
    /// its first old version and takes the last new one.
    pub fn add(&mut self, name: &str, arch: Option<&str>, from: Option<&str>, to: Option<&str>) {
        let same = |u: &&mut Upgrade| u.name == name && u.arch.as_deref() == arch;
        match self.packages.iter_mut().find(same) {
            Some(u) => u.to = to.map(str::to_string),
            None => self.packages.push(Upgrade {
                name: name.to_string(),
                arch: arch.map(str::to_string),
                from: from.map(str::to_string),
                to: to.map(str::to_string),
            }),
        }
    }
}

/// What one package's upgrade fixed, the JSON `fixes` entry
/// (docs/json.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
/// Fields in alphabetical order: the JSON keys come out sorted.
pub struct Fix {
    pub cves: Vec<String>,
    pub from: Option<String>,
    pub package: String,
    pub security: bool,
    pub to: Option<String>,
    /// Why the changelog could not tell (all of it or the rest): `no
    /// changelog installed`, `the version that ran is not known`…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
    /// The highest Debian urgency of the entries (see [`max_urgency`]).
    pub urgency: Option<String>,
}

impl Fix {
    /// A package whose fixes are not known, for `reason`.
    pub fn unknown(up: &Upgrade, reason: impl Into<String>) -> Fix {
        Fix {
            package: up.name.clone(),
            from: up.from.clone(),
            to: up.to.clone(),
            cves: Vec::new(),
            urgency: None,
            security: false,
            unknown: Some(reason.into()),
        }
    }

    /// The fix is one the `security` policy restarts for.
    pub(crate) fn is_security(&self) -> bool {
        self.security || !self.cves.is_empty()
    }

    /// The report's words, e.g. `CVE-2025-1111, CVE-2025-2222 (libssl3
    /// 3.0.20 → 3.0.22, security)`.
    pub(crate) fn describe(&self) -> String {
        let what = match (&self.unknown, self.cves.is_empty()) {
            (Some(u), true) => format!("unknown: {u}"),
            (_, true) => "no CVE named".to_string(),
            (_, false) => self.cves.join(", "),
        };
        let v = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
        let mut tags = vec![format!("{} {} → {}", self.package, v(&self.from), v(&self.to))];
        if self.security {
            tags.push("security".into());
        }
        if let Some(u) = self.urgency.as_deref().filter(|u| *u != "low" && *u != "medium") {
            tags.push(format!("urgency {u}"));
        }
        if let (Some(u), false) = (&self.unknown, self.cves.is_empty()) {
            tags.push(format!("incomplete: {u}"));
        }
        format!("{what} ({})", tags.join(", "))
    }
}

/// The rank of a Debian urgency (deb-changelog(5)): low < medium < high
/// < emergency = critical; other words rank below low.
fn urgency_rank(u: &str) -> u8 {
    match u {
        "low" => 1,
        "medium" => 2,
        "high" => 3,
        "emergency" | "critical" => 4,
        _ => 0,
    }
}

/// The highest urgency among `entries`, the rule of docs/cves.md: one
/// `urgency=high` upload in the range makes the upgrade urgent.
pub(crate) fn max_urgency<'a>(entries: impl Iterator<Item = &'a Entry>) -> Option<String> {
    entries
        .filter_map(|e| e.urgency.as_deref())
        .max_by_key(|u| urgency_rank(u))
        .map(str::to_string)
}

/// A security upload: its distribution names a `-security` suite, or its
/// version is a Debian security version (`+deb12u3`, `~deb12u1`).
pub(crate) fn is_security_entry(e: &Entry) -> bool {
    e.distribution.split_whitespace().any(|d| d.ends_with("-security")) || security_version(&e.version)
}

fn security_version(v: &str) -> bool {
    let b = v.as_bytes();
    (0..b.len()).any(|i| {
        (b[i] == b'+' || b[i] == b'~') && b[i + 1..].starts_with(b"deb") && {
            let rest = &b[i + 4..];
            let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
            n > 0 && rest.get(n) == Some(&b'u') && rest.get(n + 1).is_some_and(u8::is_ascii_digit)
        }
    })
}

/// The fix of `up` from its parsed changelog(s): the entries newer than
/// `from` and not newer than `to`, in `cmp`'s version order. Without a
/// `from` nothing can be told; a parse cut short before reaching `from`
/// keeps what it found and says it is incomplete.
pub fn summarize(up: &Upgrade, parsed: &Parsed, cmp: fn(&str, &str) -> Ordering) -> Fix {
    let Some(from) = up.from.as_deref() else {
        return Fix::unknown(up, "the version that ran is not known");
    };
    let newer = |e: &&Entry| cmp(&e.version, from) == Ordering::Greater;
    let upto = |e: &&Entry| {
        up.to
            .as_deref()
            .is_none_or(|to| cmp(&e.version, to) != Ordering::Greater)
    };
    let range: Vec<&Entry> = parsed.entries.iter().filter(newer).filter(upto).collect();
    let mut cves: Vec<String> = Vec::new();
    for e in &range {
        for c in &e.cves {
            if !cves.contains(c) {
                cves.push(c.clone());
            }
        }
    }
    cves.sort_by_key(|c| cve_key(c));
    let reached = parsed.entries.iter().any(|e| !newer(&e));
    let unknown = match (&parsed.stopped, reached) {
        (Some(why), false) => Some(format!("changelog cut short: {why}")),
        _ => None,
    };
    Fix {
        package: up.name.clone(),
        from: up.from.clone(),
        to: up.to.clone(),
        cves,
        urgency: max_urgency(range.iter().copied()),
        security: range.iter().any(|e| is_security_entry(e)),
        unknown,
    }
}

/// CVE ids in numeric order: year, then number.
fn cve_key(id: &str) -> (u32, u64) {
    let mut parts = id.split('-').skip(1);
    let n = |p: Option<&str>| p.and_then(|s| s.parse().ok()).unwrap_or(0);
    (n(parts.next()) as u32, n(parts.next()))
}

/// The fixes of each unit, by unit name; a unit with none is absent.
pub type ByUnit = BTreeMap<String, Vec<Fix>>;

/// The units of `plan` that run stale code: the ones annotated.
pub(crate) fn stale_units(plan: &Plan) -> impl Iterator<Item = &UnitPlan> {
    plan.units.iter().filter(|u| !u.processes.is_empty())
}

/// Every stale unit's fixes unknown, for `why` (a database we cannot
/// read, a manager whose packages carry no changelog); nothing when the
/// transaction named no package.
pub(crate) fn unknown_for(plan: &Plan, packages: &[Upgrade], why: &str) -> ByUnit {
    if packages.is_empty() {
        return ByUnit::new();
    }
    let any = Upgrade {
        name: "*".into(),
        ..Upgrade::default()
    };
    stale_units(plan)
        .map(|u| (u.unit.clone(), vec![Fix::unknown(&any, why)]))
        .collect()
}

/// Each stale unit's fixes: its stale files (or the library each was
/// counted for) looked up in `owner` (normalised path → package index),
/// and `fix` asked once per package a unit runs, in index order.
pub(crate) fn by_unit(
    plan: &Plan,
    owner: &std::collections::HashMap<String, usize>,
    mut fix: impl FnMut(usize) -> Fix,
) -> ByUnit {
    let mut out = ByUnit::new();
    for u in stale_units(plan) {
        let found: std::collections::BTreeSet<usize> = u
            .processes
            .iter()
            .flat_map(|p| &p.files)
            .filter_map(|f| {
                let path = f.sibling.as_deref().unwrap_or(&f.path);
                owner.get(&crate::core::changed::normalize(path)).copied()
            })
            .collect();
        if !found.is_empty() {
            out.insert(u.unit.clone(), found.into_iter().map(&mut fix).collect());
        }
    }
    out
}

/// Whether the `security` policy restarts `unit` now: some upgrade behind
/// its stale code fixed a CVE or came from a security suite.
pub(crate) fn restarts_now(fixes: &ByUnit, unit: &str) -> bool {
    fixes.get(unit).is_some_and(|f| f.iter().any(Fix::is_security))
}

/// `restart = security` (docs/cves.md): the plan cut in two, the
/// restarts to run now and the ones to mark `needs-restart` for the
/// maintenance window. PID 1 and the outside processes stay with the
/// first: the policy chooses among unit restarts only.
pub(crate) fn security_split(plan: &Plan, fixes: &ByUnit) -> (Plan, Plan) {
    let later_unit = |u: &UnitPlan| u.action == Action::Restart && !restarts_now(fixes, &u.unit);
    let mut now = plan.clone();
    now.units.retain(|u| !later_unit(u));
    let later = Plan {
        units: plan.units.iter().filter(|u| later_unit(u)).cloned().collect(),
        init: None,
        outside: Vec::new(),
        gate: plan.gate.clone(),
    };
    (now, later)
}

/// How many distinct CVE ids a unit's fixes name.
pub(crate) fn live_cves(fixes: &[Fix]) -> usize {
    let mut all: Vec<&str> = fixes.iter().flat_map(|f| f.cves.iter().map(String::as_str)).collect();
    all.sort_unstable();
    all.dedup();
    all.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::changelog::{deb_cmp, parse_debian};

    const LOG: &str = "\
libdemo (3.0-1) bookworm; urgency=low

  * New upstream release.

 -- A <a@example.org>  Mon, 03 Mar 2025 10:00:00 +0000

libdemo (2.0-1+deb12u1) bookworm-security; urgency=high

  * Fix CVE-2025-2222 and CVE-2025-1111.

 -- A <a@example.org>  Mon, 03 Feb 2025 10:00:00 +0000

libdemo (1.0-1) bookworm; urgency=medium

  * Initial release. Mentions CVE-2020-0001 long fixed.

 -- A <a@example.org>  Mon, 06 Jan 2025 10:00:00 +0000
";

    fn up(from: Option<&str>, to: &str) -> Upgrade {
        Upgrade {
            name: "libdemo1".into(),
            arch: None,
            from: from.map(str::to_string),
            to: Some(to.into()),
        }
    }

    #[test]
    fn only_the_entries_between_the_versions_count() {
        let p = parse_debian(LOG);
        let f = summarize(&up(Some("1.0-1"), "2.0-1+deb12u1"), &p, deb_cmp);
        assert_eq!(f.cves, ["CVE-2025-1111", "CVE-2025-2222"]);
        assert_eq!(f.urgency.as_deref(), Some("high"));
        assert!(f.security && f.unknown.is_none());
        let f = summarize(&up(Some("2.0-1+deb12u1"), "3.0-1"), &p, deb_cmp);
        assert!(f.cves.is_empty() && !f.security && !f.is_security());
        assert_eq!(f.urgency.as_deref(), Some("low"));
    }

    #[test]
    fn a_version_older_than_every_entry_takes_them_all() {
        let f = summarize(&up(Some("0.9-1"), "3.0-1"), &parse_debian(LOG), deb_cmp);
        assert_eq!(f.cves, ["CVE-2020-0001", "CVE-2025-1111", "CVE-2025-2222"]);
        assert!(f.unknown.is_none());
    }

    #[test]
    fn without_the_old_version_nothing_is_guessed() {
        let f = summarize(&up(None, "3.0-1"), &parse_debian(LOG), deb_cmp);
        assert!(f.cves.is_empty());
        assert_eq!(f.unknown.as_deref(), Some("the version that ran is not known"));
    }

    #[test]
    fn a_package_changed_twice_keeps_its_first_old_version() {
        let mut u = Upgrades::default();
        u.add("libx", Some("amd64"), Some("1"), Some("2"));
        u.add("libx", Some("i386"), Some("1"), Some("2"));
        u.add("libx", Some("amd64"), Some("2"), Some("3"));
        assert_eq!(u.packages.len(), 2);
        assert_eq!(
            (u.packages[0].from.as_deref(), u.packages[0].to.as_deref()),
            (Some("1"), Some("3"))
        );
    }

    #[test]
    fn the_security_policy_restarts_fixed_cves_and_security_uploads_now() {
        use crate::core::plan::Reason;
        let unit = |n: &str, action| UnitPlan {
            unit: n.into(),
            action,
            reason: Reason::NotAllowed,
            processes: vec![],
        };
        let plan = Plan {
            units: vec![
                unit("cve.service", Action::Restart),
                unit("suite.service", Action::Restart),
                unit("plain.service", Action::Restart),
                unit("unknown.service", Action::Restart),
                unit("denied.service", Action::Skip),
            ],
            ..Plan::default()
        };
        let p = parse_debian(LOG);
        let cve = summarize(&up(Some("1.0-1"), "2.0-1+deb12u1"), &p, deb_cmp);
        let plain = summarize(&up(Some("2.0-1+deb12u1"), "3.0-1"), &p, deb_cmp);
        let mut suite = plain.clone();
        suite.security = true;
        let fixes = ByUnit::from([
            ("cve.service".to_string(), vec![plain.clone(), cve]),
            ("suite.service".to_string(), vec![suite]),
            ("plain.service".to_string(), vec![plain]),
        ]);
        let (now, later) = security_split(&plan, &fixes);
        let names = |p: &Plan| p.units.iter().map(|u| u.unit.clone()).collect::<Vec<_>>();
        assert_eq!(names(&now), ["cve.service", "suite.service", "denied.service"]);
        assert_eq!(names(&later), ["plain.service", "unknown.service"]);
    }

    #[test]
    fn security_versions_are_recognised() {
        assert!(security_version("2.36-9+deb12u9"));
        assert!(security_version("3.0.15-1~deb12u1"));
        assert!(!security_version("2.36-9+b1"));
        assert!(!security_version("1.0+debian-1"));
        assert!(!security_version("1.0-1+deb"));
    }

    #[test]
    fn the_highest_urgency_wins_and_unknown_words_rank_lowest() {
        let e = |u: &str| Entry {
            version: "1".into(),
            distribution: "sid".into(),
            urgency: Some(u.into()),
            cves: vec![],
        };
        let es = [e("weird"), e("low"), e("critical"), e("high")];
        assert_eq!(max_urgency(es.iter()).as_deref(), Some("critical"));
    }

    #[test]
    fn a_description_names_cves_versions_and_tags() {
        let f = summarize(&up(Some("1.0-1"), "2.0-1+deb12u1"), &parse_debian(LOG), deb_cmp);
        assert_eq!(
            f.describe(),
            "CVE-2025-1111, CVE-2025-2222 (libdemo1 1.0-1 → 2.0-1+deb12u1, security, urgency high)"
        );
        assert_eq!(live_cves(&[f.clone(), f]), 2);
    }
}
