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

use crate::core::model::Layout;
use crate::core::model::Staleness;
use crate::core::model::UnitResult;
use crate::core::model::{StaleFile, StaleProcess};
use crate::core::plan::{Action, OutsideProcess, Plan};
use serde::Serialize;
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
    /// Why the host needs a reboot, and the kernel's status.
    pub reboot: Option<&'a crate::core::reboot::Reboot>,
    /// Units marked `needs-restart` for a later restart (docs/deferred.md);
    /// `None` when the marks were not read.
    pub marked: Option<&'a [String]>,
}

fn write_who(w: &mut impl Write, p: &StaleProcess) -> io::Result<()> {
    write!(w, "pid {} ({})", p.pid, p.comm)
}

fn write_files(w: &mut impl Write, p: &StaleProcess) -> io::Result<()> {
    for (i, f) in p.files.iter().enumerate() {
        let why = match f.why {
            Staleness::Deleted => "deleted",
            Staleness::Replaced => "replaced",
        };
        let sep = if i == 0 { "" } else { ", " };
        write!(w, "{sep}{} [{why}{}]", f.path, if f.exe { ", exe" } else { "" })?;
    }
    Ok(())
}

fn write_process_line(w: &mut impl Write, p: &StaleProcess) -> io::Result<()> {
    w.write_all(b"    ")?;
    write_who(w, p)?;
    w.write_all(b": ")?;
    write_files(w, p)?;
    w.write_all(b"\n")
}

/// Human-readable report. Units with nothing stale appear only when
/// `verbose` is set, to keep the everyday output short.
pub fn write_text(w: &mut impl Write, plan: &Plan, ctx: &Context, verbose: bool) -> io::Result<()> {
    let shown: Vec<_> = plan
        .units
        .iter()
        .filter(|u| verbose || !u.processes.is_empty())
        .collect();
    let width = shown.iter().map(|u| u.unit.len()).max().unwrap_or(0);
    if ctx.layout.is_none() {
        writeln!(
            w,
            "no system units found: no systemd cgroup tree with a system.slice here"
        )?;
    }
    for u in &shown {
        let action = match u.action {
            Action::Restart => "restart",
            Action::Skip => "skip",
        };
        writeln!(w, "{:width$}  {action:7}  ({})", u.unit, u.reason)?;
        if ctx.marked.is_some_and(|m| m.contains(&u.unit)) {
            writeln!(w, "    marked for restart (Markers=needs-restart)")?;
        }
        for p in &u.processes {
            write_process_line(w, p)?;
        }
    }
    if let Some(init) = &plan.init {
        writeln!(w, "{:width$}  {:7}  (PID 1 runs stale code)", "init.scope", "reexec")?;
        write_process_line(w, init)?;
    }
    if !plan.outside.is_empty() {
        writeln!(w, "stale, outside system units:")?;
        for o in &plan.outside {
            let cg = if o.cgroup.is_empty() { "?" } else { &o.cgroup };
            w.write_all(b"    ")?;
            write_who(w, &o.process)?;
            write!(w, " in {cg}: ")?;
            write_files(w, &o.process)?;
            w.write_all(b"\n")?;
        }
    }
    if shown.is_empty() && plan.init.is_none() && plan.outside.is_empty() {
        writeln!(w, "nothing stale")?;
    }
    if let Some(r) = ctx.reboot {
        crate::core::reboot::write_text(w, r)?;
    }
    Ok(())
}

/// The text report as a string (tests and small callers).
pub fn text(plan: &Plan, ctx: &Context, verbose: bool) -> String {
    let mut out = Vec::new();
    let _ = write_text(&mut out, plan, ctx, verbose);
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Serialize)]
struct FileDoc<'a> {
    exe: bool,
    path: &'a str,
    why: Staleness,
}

/// A process's files, serialized straight from the plan: the bulk of a
/// big report, so never copied into a vector of their own.
struct FilesDoc<'a>(&'a [StaleFile]);

impl Serialize for FilesDoc<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|f| FileDoc {
            exe: f.exe,
            path: &f.path,
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
    fn new(p: &'a StaleProcess, cgroup: Option<&'a str>) -> Self {
        Self {
            cgroup,
            comm: &p.comm,
            files: FilesDoc(&p.files),
            pid: p.pid,
        }
    }
}

/// The processes of one unit, serialized as they are reached.
struct ProcessesDoc<'a>(&'a [StaleProcess]);

impl Serialize for ProcessesDoc<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|p| ProcessDoc::new(p, None)))
    }
}

/// The stale processes outside system units, with their cgroups.
struct OutsideDoc<'a>(&'a [OutsideProcess]);

impl Serialize for OutsideDoc<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|o| ProcessDoc::new(&o.process, Some(&o.cgroup))))
    }
}

#[derive(Serialize)]
struct UnitDoc<'a> {
    action: Action,
    processes: ProcessesDoc<'a>,
    reason: &'static str,
    reason_text: String,
    unit: &'a str,
}

#[derive(Serialize)]
struct Document<'a> {
    cgroup_layout: Option<Layout>,
    changed_files: Option<usize>,
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
    units: Vec<UnitDoc<'a>>,
    warnings: &'a [String],
}

/// Writes the versioned JSON document on one line, with a final newline.
/// Compact, not pretty-printed: a full report on a busy host runs to
/// megabytes, and indentation made it 40% bigger and 5% slower to scan and
/// report (docs/benchmarks.md). `jq .` makes it readable.
pub fn write_json(w: &mut impl Write, plan: &Plan, ctx: &Context) -> io::Result<()> {
    let units = plan
        .units
        .iter()
        .map(|u| UnitDoc {
            action: u.action,
            processes: ProcessesDoc(&u.processes),
            reason: u.reason.code(),
            reason_text: u.reason.to_string(),
            unit: &u.unit,
        })
        .collect();
    let doc = Document {
        cgroup_layout: ctx.layout,
        changed_files: ctx.changed_files,
        init: plan.init.as_ref().map(|p| ProcessDoc::new(p, None)),
        marked: ctx.marked,
        mode: ctx.mode,
        outside: OutsideDoc(&plan.outside),
        problems: ctx.problems,
        processes_scanned: ctx.processes_scanned,
        reboot: ctx.reboot,
        restarts: ctx.restarts,
        schema: SCHEMA,
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

    #[test]
    fn json_is_one_line_with_sorted_keys() {
        let process = StaleProcess {
            pid: 7,
            comm: "d".into(),
            owner: Owner::Unit("a.service".into()),
            files: vec![StaleFile {
                path: Arc::from("/usr/lib/libx.so"),
                why: Staleness::Replaced,
                exe: false,
            }],
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
        let ctx = Context {
            mode: "status",
            layout: None,
            changed_files: None,
            processes_scanned: 1,
            problems: &[],
            warnings: &[],
            restarts: None,
            reboot: None,
            marked: None,
        };
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
            "units",
            "warnings",
        ];
        assert!(top.windows(2).all(|w| at(w[0]) < at(w[1])), "{text}");
        let file = ["exe", "path", "why"];
        assert!(file.windows(2).all(|w| at(w[0]) < at(w[1])), "{text}");
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["units"][0]["processes"][0]["files"][0]["path"], "/usr/lib/libx.so");
    }
}
