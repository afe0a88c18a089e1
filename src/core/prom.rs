//! The Prometheus textfile: one run's findings in the text exposition
//! format, for node_exporter's textfile collector (docs/prometheus.md).
//! Pure: rendered from the plan, the reboot section and the run's facts;
//! `crate::system::textfile` puts it on disk atomically.

use crate::core::model::UnitResult;
use crate::core::plan::Plan;
use crate::core::reboot::{self, Reboot};
use crate::exit::Outcome;
use std::fmt::Write;

/// What the run itself was: when it ended, how long it took, how.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    /// `status`, `dry-run` or `restart`.
    pub mode: &'a str,
    /// Seconds since the epoch.
    pub finished: f64,
    pub duration: f64,
    pub outcome: Outcome,
    /// What a restart run did, unit by unit.
    pub results: &'a [UnitResult],
}

/// The outcome as a label value; every value is written, the run's as 1,
/// so an alert can match `{outcome="error"} == 1`.
pub(crate) fn outcome_label(o: Outcome) -> &'static str {
    match o {
        Outcome::Done => "done",
        Outcome::Pending => "pending",
        Outcome::RestartFailed => "restart-failed",
        Outcome::Held => "held",
        Outcome::Error => "error",
    }
}

const OUTCOMES: [Outcome; 5] = [
    Outcome::Done,
    Outcome::Pending,
    Outcome::RestartFailed,
    Outcome::Held,
    Outcome::Error,
];

/// A label value in the exposition format: backslash, double quote and
/// newline escaped. systemd escapes unit names with `\x2d`, so the
/// backslash case is real.
fn label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

/// The findings; `None` when the run failed before it had a plan (then
/// only the run's own metrics are written, so the failure shows).
pub struct Findings<'a> {
    pub plan: &'a Plan,
    pub reboot: &'a Reboot,
    /// The fixes of each unit's upgrades, when the run was annotated.
    pub fixes: Option<&'a crate::core::fixes::ByUnit>,
}

/// Renders the whole file. Every metric is a gauge: each describes the
/// last run, not a count since some start.
pub fn render(found: Option<&Findings>, run: &Run) -> String {
    let mut out = String::new();
    if let Some(f) = found {
        findings(&mut out, f);
    }
    header(
        &mut out,
        "restart_stale_last_run_timestamp_seconds",
        "When the last run ended, seconds since the epoch.",
    );
    let _ = writeln!(out, "restart_stale_last_run_timestamp_seconds {:.3}", run.finished);
    header(
        &mut out,
        "restart_stale_last_run_info",
        "What the last run was: mode status, dry-run or restart.",
    );
    let _ = writeln!(out, "restart_stale_last_run_info{{mode=\"{}\"}} 1", label(run.mode));
    header(
        &mut out,
        "restart_stale_last_run_duration_seconds",
        "How long the last run took.",
    );
    let _ = writeln!(out, "restart_stale_last_run_duration_seconds {:.3}", run.duration);
    header(
        &mut out,
        "restart_stale_last_run_outcome",
        "The last run's outcome: 1 for the one it had, 0 for the others.",
    );
    for o in OUTCOMES {
        let v = u8::from(o == run.outcome);
        let _ = writeln!(
            out,
            "restart_stale_last_run_outcome{{outcome=\"{}\"}} {v}",
            outcome_label(o)
        );
    }
    let count = |what: &str| run.results.iter().filter(|r| r.outcome == what).count();
    header(
        &mut out,
        "restart_stale_units_restarted",
        "Units the last run restarted and verified clean.",
    );
    let _ = writeln!(out, "restart_stale_units_restarted {}", count("restarted"));
    header(
        &mut out,
        "restart_stale_units_failed",
        "Units whose restart failed or left stale code running in the last run.",
    );
    let _ = writeln!(out, "restart_stale_units_failed {}", count("failed"));
    header(
        &mut out,
        "restart_stale_units_held",
        "Units the health gate held in the last run (an earlier restart failed, the start limit, --canary).",
    );
    let _ = writeln!(out, "restart_stale_units_held {}", count("held"));
    out
}

/// One sample per stale unit: the distinct CVE ids its upgrades fixed
/// and it still runs unfixed. The ids are no labels: the series stay
/// bounded by the units.
fn live_cves(out: &mut String, plan: &Plan, fixes: &crate::core::fixes::ByUnit) {
    header(
        out,
        "restart_stale_live_cves",
        "CVE ids the upgrades behind a unit's stale code fixed (docs/cves.md).",
    );
    for u in plan.units.iter().filter(|u| !u.processes.is_empty()) {
        let n = fixes.get(&u.unit).map_or(0, |f| crate::core::fixes::live_cves(f));
        let _ = writeln!(out, "restart_stale_live_cves{{unit=\"{}\"}} {n}", label(&u.unit));
    }
}

fn findings(out: &mut String, f: &Findings) {
    header(
        out,
        "restart_stale_stale_unit",
        "A system unit running stale code, with the decision about it (action, reason code of docs/json.md).",
    );
    for u in f.plan.units.iter().filter(|u| !u.processes.is_empty()) {
        let action = match u.action {
            crate::core::plan::Action::Restart => "restart",
            crate::core::plan::Action::Skip => "skip",
        };
        let _ = writeln!(
            out,
            "restart_stale_stale_unit{{unit=\"{}\",action=\"{action}\",reason=\"{}\"}} 1",
            label(&u.unit),
            u.reason.code()
        );
    }
    if let Some(fixes) = f.fixes {
        live_cves(out, f.plan, fixes);
    }
    header(out, "restart_stale_stale_units", "System units running stale code.");
    let stale = f.plan.units.iter().filter(|u| !u.processes.is_empty()).count();
    let _ = writeln!(out, "restart_stale_stale_units {stale}");
    header(out, "restart_stale_init_stale", "1 when PID 1 runs stale code.");
    let _ = writeln!(out, "restart_stale_init_stale {}", u8::from(f.plan.init.is_some()));
    header(
        out,
        "restart_stale_session_processes",
        "Stale processes outside system units (user sessions, user managers, containers).",
    );
    let _ = writeln!(out, "restart_stale_session_processes {}", f.plan.outside.len());
    // Counts, not a series per user or session: logind numbers sessions
    // without end and a login server has as many users as accounts, so
    // such labels would grow the series without bound (docs/prometheus.md).
    let (sessions, users) = crate::core::sessions::counts(&f.plan.outside);
    header(
        out,
        "restart_stale_stale_sessions",
        "Logind sessions and user managers running stale code (needrestart's NEEDRESTART-SESS lines).",
    );
    let _ = writeln!(out, "restart_stale_stale_sessions {sessions}");
    header(
        out,
        "restart_stale_stale_session_users",
        "Users owning a session or user manager that runs stale code.",
    );
    let _ = writeln!(out, "restart_stale_stale_session_users {users}");
    header(
        out,
        "restart_stale_reboot_required",
        "Reasons for a reboot (or re-login), counted by reason code.",
    );
    for code in reboot::CODES {
        let n = f.reboot.reasons.iter().filter(|r| r.code == code).count();
        let _ = writeln!(out, "restart_stale_reboot_required{{reason=\"{code}\"}} {n}");
    }
    header(
        out,
        "restart_stale_kernel_status",
        "needrestart's kernel status: 0 unknown, 1 current, 2 ABI-compatible upgrade pending, 3 version upgrade pending.",
    );
    let _ = writeln!(out, "restart_stale_kernel_status {}", f.reboot.kernel.ksta);
    header(
        out,
        "restart_stale_kernel_live_patched",
        "1 when the running kernel carries live patches (livepatch, kpatch, Ksplice).",
    );
    let _ = writeln!(
        out,
        "restart_stale_kernel_live_patched {}",
        u8::from(f.reboot.kernel.patched())
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix(cves: &[&str]) -> crate::core::fixes::Fix {
        let up = crate::core::fixes::Upgrade::default();
        let mut f = crate::core::fixes::Fix::unknown(&up, "x");
        f.cves = cves.iter().map(|c| c.to_string()).collect();
        f
    }

    /// One sample per stale unit, counting distinct ids over its
    /// packages; a stale unit without fixes counts 0, a clean unit has no
    /// sample, and no id becomes a label.
    #[test]
    fn live_cves_count_distinct_ids_per_stale_unit() {
        use crate::core::model::{StaleFile, StaleProcess, Staleness, Via};
        use crate::core::plan::{Action, Reason, UnitPlan};
        let p = StaleProcess {
            pid: 4,
            comm: "p".into(),
            owner: crate::core::unit_name::Owner::Outside(String::new()),
            files: vec![StaleFile::new("/usr/lib/libx.so".into(), Staleness::Replaced, Via::Map)],
        };
        let unit = |n: &str, procs: Vec<StaleProcess>| UnitPlan {
            unit: n.into(),
            action: Action::Skip,
            reason: Reason::NotAllowed,
            processes: procs,
        };
        let plan = Plan {
            units: vec![
                unit("ssh.service", vec![p.clone()]),
                unit("cron.service", vec![p]),
                unit("clean.service", vec![]),
            ],
            ..Plan::default()
        };
        let fixes = crate::core::fixes::ByUnit::from([(
            "ssh.service".to_string(),
            vec![fix(&["CVE-2026-1", "CVE-2026-2"]), fix(&["CVE-2026-2", "CVE-2026-3"])],
        )]);
        let mut out = String::new();
        live_cves(&mut out, &plan, &fixes);
        let samples: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "restart_stale_live_cves{unit=\"ssh.service\"} 3",
                "restart_stale_live_cves{unit=\"cron.service\"} 0"
            ]
        );
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\\x2db\"c\nd"), "a\\\\x2db\\\"c\\nd");
    }

    #[test]
    fn a_failed_run_still_says_so() {
        let run = Run {
            mode: "status",
            finished: 1.5,
            duration: 0.25,
            outcome: Outcome::Error,
            results: &[],
        };
        let text = render(None, &run);
        assert!(
            text.contains("restart_stale_last_run_outcome{outcome=\"error\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("restart_stale_last_run_outcome{outcome=\"done\"} 0\n"),
            "{text}"
        );
        assert!(!text.contains("restart_stale_stale_unit"), "{text}");
    }
}
