//! Rendering a plan for people (aligned text) and for scripts (JSON).
//!
//! The JSON schema is documented in docs/json.md; bump [`SCHEMA`] on any
//! incompatible change.

use crate::cgroup::Layout;
use crate::plan::{Action, Plan};
use crate::scan::StaleProcess;
use crate::staleness::Staleness;
use serde_json::{json, Value};
use std::fmt::Write;

pub const SCHEMA: &str = "restart-stale/1";

/// Facts about the run that surround the plan.
pub struct Context<'a> {
    pub mode: &'a str,
    pub layout: Option<Layout>,
    pub changed_files: Option<usize>,
    pub processes_scanned: usize,
    pub problems: &'a [String],
    pub warnings: &'a [String],
}

fn who(p: &StaleProcess) -> String {
    format!("pid {} ({})", p.pid, p.comm)
}

fn files_line(p: &StaleProcess) -> String {
    format!("{}: {}", who(p), files_list(p))
}

fn files_list(p: &StaleProcess) -> String {
    let files: Vec<String> = p
        .files
        .iter()
        .map(|f| {
            let why = match f.why {
                Staleness::Deleted => "deleted",
                Staleness::Replaced => "replaced",
            };
            format!("{} [{why}{}]", f.path, if f.exe { ", exe" } else { "" })
        })
        .collect();
    files.join(", ")
}

/// Human-readable report. Units with nothing stale appear only when
/// `verbose` is set, to keep the everyday output short.
pub fn text(plan: &Plan, ctx: &Context, verbose: bool) -> String {
    let mut out = String::new();
    let shown: Vec<_> = plan
        .units
        .iter()
        .filter(|u| verbose || !u.processes.is_empty())
        .collect();
    let width = shown.iter().map(|u| u.unit.len()).max().unwrap_or(0);
    if ctx.layout.is_none() {
        out.push_str("no system units found: no systemd cgroup tree with a system.slice here\n");
    }
    for u in &shown {
        let action = match u.action {
            Action::Restart => "restart",
            Action::Skip => "skip",
        };
        let _ = writeln!(out, "{:width$}  {action:7}  ({})", u.unit, u.reason);
        for p in &u.processes {
            let _ = writeln!(out, "    {}", files_line(p));
        }
    }
    if let Some(init) = &plan.init {
        let _ = writeln!(out, "{:width$}  {:7}  (PID 1 runs stale code)", "init.scope", "reexec");
        let _ = writeln!(out, "    {}", files_line(init));
    }
    if !plan.outside.is_empty() {
        out.push_str("stale, outside system units:\n");
        for o in &plan.outside {
            let cg = if o.cgroup.is_empty() { "?" } else { &o.cgroup };
            let _ = writeln!(out, "    {} in {cg}: {}", who(&o.process), files_list(&o.process));
        }
    }
    if shown.is_empty() && plan.init.is_none() && plan.outside.is_empty() {
        out.push_str("nothing stale\n");
    }
    out
}

fn process_json(p: &StaleProcess) -> Value {
    json!({ "pid": p.pid, "comm": p.comm, "files": p.files })
}

/// The versioned JSON document.
pub fn json(plan: &Plan, ctx: &Context) -> Value {
    let units: Vec<Value> = plan
        .units
        .iter()
        .map(|u| {
            json!({
                "unit": u.unit,
                "action": u.action,
                "reason": u.reason.code(),
                "reason_text": u.reason.to_string(),
                "processes": u.processes.iter().map(process_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    let outside: Vec<Value> = plan
        .outside
        .iter()
        .map(|o| {
            let mut v = process_json(&o.process);
            v["cgroup"] = json!(o.cgroup);
            v
        })
        .collect();
    json!({
        "schema": SCHEMA,
        "mode": ctx.mode,
        "cgroup_layout": ctx.layout,
        "changed_files": ctx.changed_files,
        "processes_scanned": ctx.processes_scanned,
        "units": units,
        "init": plan.init.as_ref().map(process_json),
        "outside": outside,
        "problems": ctx.problems,
        "warnings": ctx.warnings,
    })
}
