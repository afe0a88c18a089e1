//! One run: scan → plan → report (→ restart), for plain [`Options`] and a
//! [`Mode`]. Every entry point ends here: the command line, the hooks' finish
//! step, replay and clr-service-restart.

use crate::core::changed::ChangedSet;
use crate::core::plan::{self, Plan};
use crate::core::report;
use crate::exit::Outcome;
use crate::restart;
use crate::system::policy::{self, Policy};
use crate::system::scan::{self, Scope};
use crate::system::sysroot::SysRoot;
use anyhow::Result;
use std::io::Write;
use std::path::Path;

/// A full report on a busy host runs to megabytes; bigger writes mean
/// fewer system calls (8 KiB, the default, made 330 for one report).
const OUTPUT_BUFFER: usize = 64 * 1024;

/// What the run is for; decides scan scope and wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Status,
    DryRun,
    Restart,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Status => "status",
            Mode::DryRun => "dry-run",
            Mode::Restart => "restart",
        }
    }
}

/// Everything a scan-plan-act run needs besides the root and mode. Hooks
/// build this directly with the changed set they derived.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub all: bool,
    pub json: bool,
    pub changed: Option<ChangedSet>,
    /// Also check non-executable file mappings.
    pub data_files: bool,
    /// How mappings are read (benchmarks force text).
    pub method: scan::Method,
    /// Timeout and re-exec switch for the restart step.
    pub restart: restart::Settings,
    /// Print the report only when some unit (or PID 1) runs stale code:
    /// clr-service-restart prints nothing otherwise, and its motd helper
    /// takes any output for "a restart is needed".
    pub quiet: bool,
}

/// Scans and plans; the inputs every mode shares.
pub struct Planned {
    pub plan: Plan,
    pub scan: scan::Scan,
    pub policy: Policy,
}

pub fn build_plan(root: &SysRoot, args: &Options, scope: Scope) -> Result<Planned> {
    let policy = Policy::load(root)?;
    let mut scanner = scan::Scanner::default();
    scanner.method = args.method;
    scanner.data_files = args.data_files;
    let mut scan = scan::scan_with(root, scope, scanner)?;
    // Only our own process tree can hold the package manager that called us.
    let self_units = if root.is_host() {
        crate::system::cgroup::ancestor_units(root, std::process::id())
    } else {
        Vec::new()
    };
    // Packages name files by the directories they were packaged in; the
    // kernel names them by their real path. Only the filesystem knows
    // which directories are links (`/usr/sbin → bin` on Fedora).
    let changed = args
        .changed
        .as_ref()
        .map(|c| c.with_real_dirs(|dir| Some(root.resolve(Path::new(dir))?.to_str()?.to_string())));
    let opts = plan::Options {
        policy: &policy,
        changed: changed.as_ref(),
        all: args.all,
        self_units: &self_units,
    };
    let plan = plan::plan(&mut scan, &opts);
    Ok(Planned { plan, scan, policy })
}

/// Scan problems are per process (or per unreadable cgroup, which come
/// first); an ordinary user meets one for every process of another user,
/// so many of them become one summary line.
fn log_problems(problems: &[String]) {
    const SHOWN: usize = 3;
    if problems.len() <= SHOWN {
        problems.iter().for_each(|p| log::warn!("{p}"));
        return;
    }
    log::warn!(
        "{} processes or cgroups could not be read (first: {}); run as root to see them all, -v lists each",
        problems.len(),
        problems[0]
    );
    problems.iter().for_each(|p| log::debug!("{p}"));
}

/// Scans, plans, reports and (in [`Mode::Restart`]) acts; returns the exit code.
pub fn execute(root: &SysRoot, args: &Options, mode: Mode, verbose: u8) -> Result<Outcome> {
    let scope = if mode == Mode::Restart {
        Scope::SystemUnits
    } else {
        Scope::Everything
    };
    let p = build_plan(root, args, scope)?;
    for w in &p.policy.warnings {
        log::warn!("{w}");
    }
    log_problems(&p.scan.problems);
    let mut ctx = report::Context {
        mode: mode.name(),
        layout: p.scan.layout,
        changed_files: args.changed.as_ref().map(|c| c.len()),
        processes_scanned: p.scan.processes_scanned,
        problems: &p.scan.problems,
        warnings: &p.policy.warnings,
        restarts: None,
    };
    let stale_units = p.plan.units.iter().any(|u| !u.processes.is_empty()) || p.plan.init.is_some();
    let show = !args.quiet || stale_units;
    if !show {
        log::debug!("no unit runs stale code");
    }
    // The text report comes before the restart's log lines, so a reader
    // sees the plan first; a restart run's JSON waits for the results.
    let json_after = args.json && mode == Mode::Restart;
    if show && !json_after {
        write_report(&p.plan, &ctx, args.json, verbose)?;
    }
    let pending = p.plan.restarts().count() > 0 || p.plan.init.is_some();
    let ran = (pending && matches!(mode, Mode::Restart | Mode::DryRun)).then(|| {
        let mut settings = args.restart;
        // Policy can turn the PID 1 re-exec off: `disallow init.scope`.
        if matches!(p.policy.verdict("init.scope"), policy::Verdict::DeniedByAdmin(_)) {
            settings.reexec = false;
        }
        restart::run(root, &p.plan, p.scan.layout, &settings, mode == Mode::DryRun)
    });
    if show && json_after {
        ctx.restarts = Some(match &ran {
            Some(Ok(r)) => &r.results,
            _ => &[],
        });
        write_report(&p.plan, &ctx, true, verbose)?;
    }
    match ran {
        Some(r) => Ok(r?.exit),
        None => Ok(if pending { Outcome::Pending } else { Outcome::Done }),
    }
}

fn write_report(plan: &plan::Plan, ctx: &report::Context, json: bool, verbose: u8) -> Result<()> {
    let mut out = std::io::BufWriter::with_capacity(OUTPUT_BUFFER, std::io::stdout().lock());
    if json {
        report::write_json(&mut out, plan, ctx)?;
    } else {
        report::write_text(&mut out, plan, ctx, verbose > 0)?;
    }
    out.flush()?;
    Ok(())
}
