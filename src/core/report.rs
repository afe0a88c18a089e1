//! Rendering a plan for people (aligned text) and for scripts (JSON).
//!
//! Both are written straight to the output: a full report on a busy host
//! names tens of thousands of stale mappings, and building it as a string
//! or a `serde_json::Value` tree first cost a third of the run time and
//! most of the memory (docs/benchmarks.md).
//!
//! The JSON schema is documented in docs/json.md; bump [`SCHEMA`] on any
//! incompatible change. Struct fields are in alphabetical order so keys
//! come out sorted, as the schema promises.

use crate::core::fixes::{ByUnit, Fix};
use crate::core::model::{Layout, StaleFile, StaleProcess, Staleness, UnitResult, Via};
use crate::core::plan::{Action, OutsideProcess, Plan, Reason};
use crate::core::sessions::{self, Group};
use serde::Serialize;
use std::borrow::Cow;
use std::io::{self, Write};

pub const SCHEMA: &str = "restart-stale/1";

/// Facts about the run that surround the plan.
pub struct Context<'a> {
    pub mode: &'a str,
    pub layout: Option<Layout>,
    pub changed_files: Option<usize>,
    pub processes_scanned: usize,
    pub problems: &'a [String],
    pub warnings: &'a [String],
    /// What a restart run did, unit by unit; `None` when nothing was run.
    pub restarts: Option<&'a [UnitResult]>,
    /// Why a restart run reloaded systemd's unit files first; `None` when
    /// it did not (and in the other modes).
    pub daemon_reload: Option<&'a crate::core::model::DaemonReload>,
    /// Why the host needs a reboot, and the kernel's status.
    pub reboot: Option<&'a crate::core::reboot::Reboot>,
    /// Units marked `needs-restart` for a later restart (docs/deferred.md);
    /// `None` when the marks were not read.
    pub marked: Option<&'a [String]>,
    /// The outside processes by user and session
    /// ([`crate::core::sessions::group`]); `None` groups them by their
    /// cgroups alone, without names.
    pub sessions: Option<&'a [Group]>,
    /// What the upgrades behind each unit's stale code fixed
    /// (docs/cves.md); `None` when no transaction was annotated.
    pub fixes: Option<&'a ByUnit>,
    /// The run restarts under `restart = security` (docs/cves.md): an
    /// allowed unit without a security fix is marked, not restarted, and
    /// its line must say so.
    pub security_only: bool,
}

/// Process names, paths, module names and cgroups come from whoever runs
/// the process: a newline or an escape sequence in them must not forge a
/// report line or reach the terminal. (JSON escapes them by itself.)
use crate::logging::escape_controls as clean;

fn write_who(w: &mut impl Write, p: &StaleProcess) -> io::Result<()> {
    write!(w, "pid {} ({})", p.pid, clean(&p.comm))
}

/// The note on a file that the process's root holds as its own copy.
const OTHER_ROOT: &str = "its root's own copy, not the host's";

/// `in_transaction`: the report is of a transaction, so every file shown
/// is part of it.
fn write_files(w: &mut impl Write, p: &StaleProcess, in_transaction: bool) -> io::Result<()> {
    for (i, f) in p.files.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let user = if f.user { "report only: users control it" } else { "" };
        let other = if f.other_root { OTHER_ROOT } else { "" };
        if let Some(reason) = f.reason_text(in_transaction) {
            write!(w, "{sep}{}", clean(&reason))?;
            let notes: Vec<&str> = [user, other].into_iter().filter(|n| !n.is_empty()).collect();
            if !notes.is_empty() {
                write!(w, " [{}]", notes.join(", "))?;
            }
            continue;
        }
        let why = match f.why {
            Staleness::Deleted => "deleted",
            Staleness::Replaced => "replaced",
            Staleness::Changed => "changed",
        };
        let exe = if f.exe { ", exe" } else { "" };
        let user = if f.user { format!(", {user}") } else { String::new() };
        let other = if f.other_root {
            format!(", {other}")
        } else {
            String::new()
        };
        write!(w, "{sep}{} [{why}{exe}{user}{other}]", clean(&f.path))?;
    }
    Ok(())
}

fn write_process_line(w: &mut impl Write, p: &StaleProcess, in_transaction: bool) -> io::Result<()> {
    w.write_all(b"    ")?;
    write_who(w, p)?;
    w.write_all(b": ")?;
    write_files(w, p, in_transaction)?;
    w.write_all(b"\n")
}

/// Human-readable report. Units with nothing stale appear only when
/// `verbose` is set, to keep the everyday output short.
pub(crate) fn write_text(w: &mut impl Write, plan: &Plan, ctx: &Context, verbose: bool) -> io::Result<()> {
    let shown: Vec<_> = plan
        .units
        .iter()
        // A jail's unit left alone by a transaction has no processes in
        // the plan, but a reader must learn why its stale code stays.
        .filter(|u| verbose || !u.processes.is_empty() || matches!(u.reason, Reason::OtherRoot(_)))
        .collect();
    let width = shown.iter().map(|u| u.unit.len()).max().unwrap_or(0);
    let t = ctx.changed_files.is_some();
    if ctx.layout.is_none() {
        writeln!(
            w,
            "no system units found: no systemd cgroup tree with a system.slice here"
        )?;
    }
    for u in &shown {
        let deferred = ctx.security_only
            && u.action == Action::Restart
            && !crate::core::fixes::restarts_now(ctx.fixes.unwrap_or(&ByUnit::new()), &u.unit);
        let (action, why) = match u.action {
            _ if deferred => ("mark", "; no security fix: marked for the maintenance window"),
            Action::Restart => ("restart", ""),
            Action::Skip => ("skip", ""),
        };
        writeln!(
            w,
            "{:width$}  {action:7}  ({}{why})",
            clean(&u.unit),
            clean(&u.reason.to_string())
        )?;
        if ctx.marked.is_some_and(|m| m.contains(&u.unit)) {
            writeln!(w, "    marked for restart (Markers=needs-restart)")?;
        }
        for f in unit_fixes(ctx, &u.unit) {
            writeln!(w, "    fixes still live: {}", clean(&f.describe()))?;
        }
        for p in &u.processes {
            write_process_line(w, p, t)?;
        }
    }
    if let Some(init) = &plan.init {
        writeln!(w, "{:width$}  {:7}  (PID 1 runs stale code)", "init.scope", "reexec")?;
        write_process_line(w, init, t)?;
    }
    write_outside(w, plan, ctx, t)?;
    if shown.is_empty() && plan.init.is_none() && plan.outside.is_empty() {
        writeln!(w, "nothing stale")?;
    }
    if let Some(r) = ctx.reboot {
        crate::core::reboot::write_text(w, r)?;
    }
    Ok(())
}

/// The fixes of `unit`'s stale code, none when not annotated.
fn unit_fixes<'a>(ctx: &Context<'a>, unit: &str) -> &'a [Fix] {
    ctx.fixes.and_then(|f| f.get(unit)).map_or(&[], Vec::as_slice)
}

/// The groups the caller read, or else the outside processes grouped by
/// their cgroups alone (uids from user slices, no names).
fn session_groups<'a>(plan: &Plan, ctx: &Context<'a>) -> Cow<'a, [Group]> {
    match ctx.sessions {
        Some(g) => Cow::Borrowed(g),
        None => Cow::Owned(sessions::group(&plan.outside, &Default::default(), &Default::default())),
    }
}

/// The stale processes outside the system units, under one heading per
/// user and session (`alice @ session #3`), as needrestart lists them.
fn write_outside(w: &mut impl Write, plan: &Plan, ctx: &Context, t: bool) -> io::Result<()> {
    if plan.outside.is_empty() {
        return Ok(());
    }
    let groups = session_groups(plan, ctx);
    writeln!(w, "stale, outside system units, by user and session:")?;
    for g in groups.iter() {
        writeln!(w, "  {}", clean(&g.heading()))?;
        for o in g.members.iter().filter_map(|&i| plan.outside.get(i)) {
            let cg = if o.cgroup.is_empty() { "?" } else { &o.cgroup };
            w.write_all(b"    ")?;
            write_who(w, &o.process)?;
            write!(w, " in {}: ", clean(cg))?;
            write_files(w, &o.process, t)?;
            w.write_all(b"\n")?;
        }
    }
    Ok(())
}

/// The text report as a string (tests and small callers).
pub fn text(plan: &Plan, ctx: &Context, verbose: bool) -> String {
    let mut out = Vec::new();
    let _ = write_text(&mut out, plan, ctx, verbose);
    String::from_utf8_lossy(&out).into_owned()
}

/// One file. The keys a mapping never needs are left out for it, so
/// reports of mappings read as before the other signals existed.
#[derive(Serialize)]
struct FileDoc<'a> {
    exe: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    module: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    other_root: bool,
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    report_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    via: Option<&'static str>,
    why: Staleness,
}

/// A process's files, serialized straight from the plan: the bulk of a
/// big report, so never copied into a vector of their own.
struct FilesDoc<'a>(&'a [StaleFile], bool);

impl Serialize for FilesDoc<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|f| FileDoc {
            exe: f.exe,
            module: match &f.via {
                Via::Import(m) => Some(m),
                _ => None,
            },
            other_root: f.other_root,
            path: &f.path,
            reason: f.reason_text(self.1),
            report_only: f.user,
            via: f.via.code(),
            why: f.why,
        }))
    }
}

#[derive(Serialize)]
struct ProcessDoc<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    cgroup: Option<&'a str>,
    comm: &'a str,
    files: FilesDoc<'a>,
    pid: u32,
}

impl<'a> ProcessDoc<'a> {
    fn new(p: &'a StaleProcess, cgroup: Option<&'a str>, t: bool) -> Self {
        Self {
            cgroup,
            comm: &p.comm,
            files: FilesDoc(&p.files, t),
            pid: p.pid,
        }
    }
}

/// The processes of one unit, serialized as they are reached.
struct ProcessesDoc<'a>(&'a [StaleProcess], bool);

impl Serialize for ProcessesDoc<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|p| ProcessDoc::new(p, None, self.1)))
    }
}

/// The stale processes outside system units, with their cgroups.
struct OutsideDoc<'a>(&'a [OutsideProcess], bool);

impl Serialize for OutsideDoc<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.0
                .iter()
                .map(|o| ProcessDoc::new(&o.process, Some(&o.cgroup), self.1)),
        )
    }
}

#[derive(Serialize)]
struct UnitDoc<'a> {
    action: Action,
    /// Present in an annotated run (a transaction's, or `status` with a
    /// dpkg.log), for units with
    /// stale code: what its upgrades fixed.
    #[serde(skip_serializing_if = "Option::is_none")]
    fixes: Option<&'a [Fix]>,
    processes: ProcessesDoc<'a>,
    reason: &'static str,
    reason_text: String,
    unit: &'a str,
}

#[derive(Serialize)]
struct Document<'a> {
    cgroup_layout: Option<Layout>,
    changed_files: Option<usize>,
    /// Only in a restart run that reloaded systemd first: the other
    /// modes' documents stay as they were.
    #[serde(skip_serializing_if = "Option::is_none")]
    daemon_reload: Option<&'a crate::core::model::DaemonReload>,
    init: Option<ProcessDoc<'a>>,
    /// Absent, not null, when the marks were not read: older readers and
    /// reports of other modes see the document they knew.
    #[serde(skip_serializing_if = "Option::is_none")]
    marked: Option<&'a [String]>,
    mode: &'a str,
    outside: OutsideDoc<'a>,
    problems: &'a [String],
    processes_scanned: usize,
    reboot: Option<&'a crate::core::reboot::Reboot>,
    restarts: Option<&'a [UnitResult]>,
    schema: &'static str,
    sessions: &'a [Group],
    units: Vec<UnitDoc<'a>>,
    warnings: &'a [String],
}

/// Writes the versioned JSON document on one line, with a final newline.
/// Compact, not pretty-printed: a full report on a busy host runs to
/// megabytes, and indentation made it 40% bigger and 5% slower to scan and
/// report (docs/benchmarks.md). `jq .` makes it readable.
pub(crate) fn write_json(w: &mut impl Write, plan: &Plan, ctx: &Context) -> io::Result<()> {
    let t = ctx.changed_files.is_some();
    let groups = session_groups(plan, ctx);
    let units = plan
        .units
        .iter()
        .map(|u| UnitDoc {
            action: u.action,
            fixes: ctx
                .fixes
                .map(|_| unit_fixes(ctx, &u.unit))
                .filter(|_| !u.processes.is_empty()),
            processes: ProcessesDoc(&u.processes, t),
            reason: u.reason.code(),
            reason_text: u.reason.to_string(),
            unit: &u.unit,
        })
        .collect();
    let doc = Document {
        cgroup_layout: ctx.layout,
        changed_files: ctx.changed_files,
        daemon_reload: ctx.daemon_reload,
        init: plan.init.as_ref().map(|p| ProcessDoc::new(p, None, t)),
        marked: ctx.marked,
        mode: ctx.mode,
        outside: OutsideDoc(&plan.outside, t),
        problems: ctx.problems,
        processes_scanned: ctx.processes_scanned,
        reboot: ctx.reboot,
        restarts: ctx.restarts,
        schema: SCHEMA,
        sessions: &groups,
        units,
        warnings: ctx.warnings,
    };
    serde_json::to_writer(&mut *w, &doc)?;
    w.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::plan::{Reason, UnitPlan};
    use crate::core::unit_name::Owner;
    use std::sync::Arc;

    /// The context of a plain `status` run that scanned one process.
    fn status_context() -> Context<'static> {
        Context {
            mode: "status",
            layout: None,
            changed_files: None,
            processes_scanned: 1,
            problems: &[],
            warnings: &[],
            restarts: None,
            daemon_reload: None,
            reboot: None,
            marked: None,
            sessions: None,
            fixes: None,
            security_only: false,
        }
    }

    #[test]
    fn text_cannot_be_forged_by_process_names_or_paths() {
        use crate::core::model::{StaleFile, Via};
        use crate::core::plan::{OutsideProcess, UnitPlan};
        use crate::core::unit_name::Owner;
        let p = StaleProcess {
            pid: 7,
            comm: "x\nfake.service  restart  (allowed)".into(),
            owner: Owner::Outside("/user.slice/a\u{1b}[2J".into()),
            files: vec![StaleFile::new(
                "/usr/lib/lib\nx.so".into(),
                Staleness::Deleted,
                Via::Map,
            )],
        };
        let plan = Plan {
            units: vec![UnitPlan {
                unit: "a.service".into(),
                action: Action::Skip,
                reason: crate::core::plan::Reason::NotAllowed,
                processes: vec![p.clone()],
            }],
            outside: vec![OutsideProcess {
                cgroup: "/user.slice/a\u{1b}[2J".into(),
                process: p,
            }],
            ..Plan::default()
        };
        let ctx = status_context();
        let out = text(&plan, &ctx, true);
        assert!(!out.contains('\u{1b}'), "{out}");
        assert!(!out.lines().any(|l| l.starts_with("fake.service")), "{out}");
        assert!(out.contains("x\\u{a}fake.service"), "{out}");
    }

    #[test]
    fn json_is_one_line_with_sorted_keys() {
        let process = StaleProcess {
            pid: 7,
            comm: "d".into(),
            owner: Owner::Unit("a.service".into()),
            files: vec![StaleFile::new(
                Arc::from("/usr/lib/libx.so"),
                Staleness::Replaced,
                Via::Map,
            )],
        };
        let plan = Plan {
            units: vec![UnitPlan {
                unit: "a.service".into(),
                action: Action::Skip,
                reason: Reason::NotAllowed,
                processes: vec![process],
            }],
            ..Plan::default()
        };
        let ctx = status_context();
        let mut out = Vec::new();
        write_json(&mut out, &plan, &ctx).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        assert!(text.ends_with("}\n"), "{text}");
        let at = |key: &str| {
            text.find(&format!("\"{key}\""))
                .unwrap_or_else(|| panic!("{key} missing: {text}"))
        };
        let top = [
            "cgroup_layout",
            "changed_files",
            "init",
            "mode",
            "outside",
            "problems",
            "processes_scanned",
            "reboot",
            "restarts",
            "schema",
            "sessions",
            "units",
            "warnings",
        ];
        assert!(top.windows(2).all(|w| at(w[0]) < at(w[1])), "{text}");
        let file = ["exe", "path", "why"];
        assert!(file.windows(2).all(|w| at(w[0]) < at(w[1])), "{text}");
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["units"][0]["processes"][0]["files"][0]["path"], "/usr/lib/libx.so");
    }

    #[test]
    fn security_only_names_the_marked_units_mark_and_says_why() {
        let unit = |n: &str, action| UnitPlan {
            unit: n.into(),
            action,
            reason: Reason::NotAllowed,
            processes: vec![StaleProcess {
                pid: 1,
                comm: "x".into(),
                owner: Owner::Unit(n.into()),
                files: vec![],
            }],
        };
        let plan = Plan {
            units: vec![
                unit("cve.service", Action::Restart),
                unit("plain.service", Action::Restart),
            ],
            ..Plan::default()
        };
        let fix = Fix {
            cves: vec!["CVE-2025-1111".into()],
            from: Some("1".into()),
            package: "libx".into(),
            security: false,
            to: Some("2".into()),
            unknown: None,
            urgency: None,
        };
        let fixes = ByUnit::from([("cve.service".to_string(), vec![fix])]);
        let mut ctx = status_context();
        ctx.fixes = Some(&fixes);
        let line = |text: &str, unit: &str| text.lines().find(|l| l.starts_with(unit)).unwrap().to_string();
        let all = text(&plan, &ctx, false);
        assert!(line(&all, "plain.service").contains("  restart  "), "{all}");
        ctx.security_only = true;
        let sec = text(&plan, &ctx, false);
        assert!(line(&sec, "cve.service").contains("  restart  "), "{sec}");
        let plain = line(&sec, "plain.service");
        assert!(!plain.contains("restart"), "{sec}");
        assert!(
            plain.contains("  mark     ") && plain.contains("no security fix"),
            "{sec}"
        );
    }
}
