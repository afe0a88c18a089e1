//! One run: scan → plan → report (→ restart), for plain [`Options`] and a
//! [`Mode`]. Every entry point ends here: the command line, the hooks' finish
//! step, replay and clr-service-restart.

pub mod packages;

use crate::core::changed::ChangedSet;
use crate::core::model::UnitResult;
use crate::core::plan::{self, Plan};
use crate::core::reboot::{self, Reboot};
use crate::core::report;
use crate::core::steps::{self, Act, Report};
use crate::core::{batch, kernel, prom};
use crate::exit::Outcome;
use crate::restart;
use crate::system::policy::{self, Policy};
use crate::system::scan::{self, Scope};
use crate::system::sysroot::SysRoot;
use anyhow::Result;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// A full report on a busy host runs to megabytes; bigger writes mean
/// fewer system calls (8 KiB, the default, made 330 for one report).
const OUTPUT_BUFFER: usize = 64 * 1024;

pub use crate::core::steps::{Marks, Mode};
pub use packages::Packages;

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
    /// Units never restarted by this run: the package manager's, which a
    /// hook recorded (a finish runs in its own unit, so they are not among
    /// our ancestors).
    pub protect: Vec<String>,
    /// Print the report only when some unit (or PID 1) runs stale code:
    /// clr-service-restart prints nothing otherwise, and its motd helper
    /// takes any output for "a restart is needed".
    pub quiet: bool,
    /// Print needrestart's batch lines instead of the report (`status
    /// --batch`, docs/batch.md).
    pub batch: bool,
    /// Where the Prometheus textfile goes (inside the root); `None` means
    /// Debian's node-exporter directory when it exists (docs/prometheus.md).
    pub textfile: Option<PathBuf>,
    /// Run by a package manager's hook: a needed reboot is flagged in
    /// `/run/reboot-required`, and the textfile is written in report-only
    /// runs too.
    pub hook: bool,
    /// Restart now, defer with marks, or restart the marked units; only a
    /// [`Mode::Restart`] run looks at it.
    pub marks: Marks,
    /// The transaction's packages with their old and new versions: each
    /// stale unit is annotated with what they fixed (docs/cves.md).
    pub upgrades: Option<crate::core::fixes::Upgrades>,
    /// `restart = security` / `--security-only`: only the units an
    /// upgrade's security fix is behind restart now, the others are
    /// marked for later (docs/cves.md).
    pub security_only: bool,
    /// The run's connection to systemd, opened when first needed; the
    /// command line chooses its timeout.
    pub bus: crate::systemd::Bus,
    /// The package database that owns the host's files and knows their
    /// changelogs, handed in by the command line or the finish; `None`
    /// reads none (no fixes annotated, no owners of a reboot's files).
    pub packages: Option<&'static dyn Packages>,
    /// Whether `status`, which has no transaction, may ask `packages` for
    /// the versions stale processes started against (its package history;
    /// docs/cves.md).
    pub history: bool,
}

/// Scans and plans; the inputs every mode shares.
pub struct Planned {
    pub plan: Plan,
    pub scan: scan::Scan,
    pub policy: Policy,
}

pub(crate) fn build_plan(root: &SysRoot, args: &Options, scope: Scope) -> Result<Planned> {
    let policy = Policy::load(root)?;
    let mut scanner = scan::Scanner::default();
    scanner.method = args.method;
    scanner.data_files = args.data_files;
    let mut scan = scan::scan_with(root, scope, scanner)?;
    // Only our own process tree can hold the package manager that called us.
    let mut self_units = if root.is_host() {
        crate::system::cgroup::ancestor_units(root, std::process::id())
    } else {
        Vec::new()
    };
    self_units.extend(args.protect.iter().cloned());
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

/// The fixes of each stale unit: a changelog read per upgraded package
/// a unit still runs (docs/cves.md).
fn annotate(
    root: &SysRoot,
    db: Option<&dyn Packages>,
    plan: &Plan,
    ups: &crate::core::fixes::Upgrades,
) -> Option<crate::core::fixes::ByUnit> {
    use crate::core::fixes::{self, Family};
    let fixes = match (ups.family, db) {
        (Family::Unsupported(why), _) => fixes::unknown_for(plan, &ups.packages, why),
        (_, Some(db)) => db.annotate(root, plan, ups),
        (_, None) => return None,
    };
    log::debug!("fixes of {} unit(s) read from their packages' changelogs", fixes.len());
    Some(fixes)
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

/// What one run found and did, for the outputs written after it.
struct Done {
    outcome: Outcome,
    plan: Plan,
    fixes: Option<crate::core::fixes::ByUnit>,
    reboot: Reboot,
    results: Vec<UnitResult>,
}

/// Scans, plans, reports and (in [`Mode::Restart`]) acts; returns the exit
/// code. Then writes the textfile and, under a hook, the reboot flag;
/// neither can fail the run.
pub fn execute(root: &SysRoot, args: &Options, mode: Mode, verbose: u8) -> Result<Outcome> {
    let started = Instant::now();
    let done = execute_plan(root, args, mode, verbose);
    if mode != Mode::DryRun || args.hook {
        publish_textfile(root, args, mode, &done, started);
    }
    if let (Ok(d), true) = (&done, args.hook) {
        flag_reboot(root, args, d);
    }
    done.map(|d| d.outcome)
}

/// The PID 1 re-exec switch as the run applies it: policy can turn it
/// off with `disallow init.scope`.
fn reexec(args: &Options, policy: &Policy) -> bool {
    args.restart.reexec && !matches!(policy.verdict("init.scope"), policy::Verdict::DeniedByAdmin(_))
}

fn execute_plan(root: &SysRoot, args: &Options, mode: Mode, verbose: u8) -> Result<Done> {
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
    let found = steps::Found {
        stale: p.plan.units.iter().any(|u| !u.processes.is_empty()) || p.plan.init.is_some(),
        pending: p.plan.restarts().count() > 0 || p.plan.init.is_some(),
    };
    let ask = steps::Ask {
        json: args.json,
        batch: args.batch,
        quiet: args.quiet,
        security_only: args.security_only,
        canary: args.restart.canary.is_some(),
        marks: args.marks,
    };
    let todo = steps::steps(mode, &ask, &found);
    // Without a transaction, the host's package history stands in, and
    // only when something runs stale code it could be behind.
    let from_history = match (&args.upgrades, args.packages) {
        (None, Some(db)) if args.history && found.stale => db.recent_upgrades(root),
        _ => None,
    };
    let fixes = args
        .upgrades
        .as_ref()
        .or(from_history.as_ref())
        .and_then(|u| annotate(root, args.packages, &p.plan, u));
    // Only `status` shows the marks: a restart run's results say them.
    let marked = todo
        .read_marks
        .then(|| restart::mark::read_marks(&args.bus, root, &p.plan))
        .flatten();
    let mut ctx = report::Context {
        mode: args.marks.mode_name(mode),
        layout: p.scan.layout,
        changed_files: args.changed.as_ref().map(|c| c.len()),
        processes_scanned: p.scan.processes_scanned,
        problems: &p.scan.problems,
        warnings: &p.policy.warnings,
        restarts: None,
        daemon_reload: None,
        reboot: None,
        marked: marked.as_deref(),
        sessions: None,
        fixes: fixes.as_ref(),
        security_only: matches!(todo.act, Act::SecurityFirst { .. }),
    };
    let groups = crate::system::users::session_groups(root, &p.plan.outside);
    ctx.sessions = Some(&groups);
    let kernel = kernel::assess(&crate::system::kernel::facts(root));
    let reboot = reboot::assess(&p.plan, kernel, reexec(args, &p.policy));
    ctx.reboot = Some(&reboot);
    match todo.report {
        Report::Batch => write_batch(root, &p.plan, &reboot, &groups, fixes.as_ref())?,
        Report::Before { json } => write_report(&p.plan, &ctx, json, verbose)?,
        Report::Nothing => log::debug!("no unit runs stale code"),
        Report::JsonAfter => {}
    }
    let mut settings = args.restart;
    settings.reexec = reexec(args, &p.policy);
    let (changed, layout) = (args.changed.as_ref(), p.scan.layout);
    let ran = match todo.act {
        Act::Nothing => None,
        Act::CanaryThenMark => Some(restart::mark::run_canary(
            &args.bus, root, &p.plan, changed, layout, &settings,
        )),
        Act::Defer => Some(restart::mark::run_deferred(&args.bus, root, &p.plan)),
        Act::RestartMarked => Some(restart::mark::run_marked(&args.bus, root, &p.plan, layout, &settings)),
        Act::SecurityFirst { dry_run } => {
            let none = crate::core::fixes::ByUnit::new();
            let (now, later) = crate::core::fixes::security_split(&p.plan, fixes.as_ref().unwrap_or(&none));
            Some(security_first(
                &args.bus,
                root,
                (&now, &later),
                changed,
                layout,
                &settings,
                dry_run,
            ))
        }
        Act::Restart { dry_run } => Some(restart::run(
            &args.bus, root, &p.plan, changed, layout, &settings, dry_run,
        )),
    };
    if todo.report == Report::JsonAfter {
        ctx.restarts = Some(match &ran {
            Some(Ok(r)) => &r.results,
            _ => &[],
        });
        ctx.daemon_reload = ran.as_ref().and_then(|r| r.as_ref().ok()?.daemon_reload.as_ref());
        write_report(&p.plan, &ctx, true, verbose)?;
    }
    let pending = found.pending;
    let (outcome, results) = match ran {
        Some(r) => {
            let r = r?;
            (r.exit, r.results)
        }
        None => (if pending { Outcome::Pending } else { Outcome::Done }, Vec::new()),
    };
    Ok(Done {
        outcome,
        plan: p.plan,
        fixes,
        reboot,
        results,
    })
}

/// `restart = security`: the security fixes' units restart now, the
/// others are marked for the window; a dry run only says which.
fn security_first(
    bus: &crate::systemd::Bus,
    root: &SysRoot,
    (now, later): (&Plan, &Plan),
    changed: Option<&ChangedSet>,
    layout: Option<crate::core::model::Layout>,
    settings: &restart::Settings,
    dry_run: bool,
) -> Result<restart::Ran> {
    for u in &later.units {
        log::info!(
            "{}: no security fix behind its stale code: {} for the maintenance window",
            u.unit,
            if dry_run { "would be marked" } else { "marking it" }
        );
    }
    let mut ran = restart::run(bus, root, now, changed, layout, settings, dry_run)?;
    if !dry_run && !later.units.is_empty() {
        let marked = restart::mark::run_deferred(bus, root, later)?;
        ran.exit = ran.exit.worst(marked.exit);
        ran.results.extend(marked.results);
    }
    Ok(ran)
}

fn write_batch(
    root: &SysRoot,
    plan: &Plan,
    reboot: &Reboot,
    groups: &[crate::core::sessions::Group],
    fixes: Option<&crate::core::fixes::ByUnit>,
) -> Result<()> {
    let held = restart::holds::load(root)
        .into_iter()
        .map(|(unit, h)| (unit, h.result))
        .collect();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    batch::write(&mut out, plan, reboot, groups, fixes, &held)?;
    out.flush()?;
    Ok(())
}

/// Writes the Prometheus textfile; a failure is a warning, never the
/// run's error: monitoring must not break the restarts it watches.
fn publish_textfile(root: &SysRoot, args: &Options, mode: Mode, done: &Result<Done>, started: Instant) {
    let Some(path) = crate::system::textfile::textfile_path(root, args.textfile.as_deref()) else {
        return;
    };
    let finished = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let (found, outcome, results) = match done {
        Ok(d) => (
            Some(prom::Findings {
                plan: &d.plan,
                reboot: &d.reboot,
                fixes: d.fixes.as_ref(),
            }),
            d.outcome,
            &d.results[..],
        ),
        Err(_) => (None, Outcome::Error, &[][..]),
    };
    let run = prom::Run {
        mode: mode.name(),
        finished,
        duration: started.elapsed().as_secs_f64(),
        outcome,
        results,
    };
    let text = prom::render(found.as_ref(), &run);
    match crate::system::textfile::write_atomic(&path, text.as_bytes()) {
        Ok(()) => log::debug!("wrote {}", path.display()),
        // An ordinary user running `status` may not write node_exporter's
        // directory (nor, when another user owns it, would we let them);
        // only a path asked for deserves a warning then.
        Err(e) if args.textfile.is_none() && (permission_denied(&e) || refused_unprivileged(&e)) => {
            log::debug!("{e:#}")
        }
        Err(e) => log::warn!("{e:#}"),
    }
}

fn refused_unprivileged(e: &anyhow::Error) -> bool {
    // SAFETY: geteuid cannot fail.
    e.downcast_ref::<crate::system::safe_write::Refused>().is_some() && unsafe { libc::geteuid() } != 0
}

fn permission_denied(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied)
}

/// Debian's convention for a package transaction that needs a reboot:
/// `/run/reboot-required`, and the packages behind it in
/// `/run/reboot-required.pkgs` (dpkg's owners of the new kernel image and
/// of the stale files no restart replaces). Never fails the hook.
fn flag_reboot(root: &SysRoot, opts: &Options, d: &Done) {
    if !d.reboot.needed {
        return;
    }
    let mut paths = Vec::new();
    if d.reboot.reasons.iter().any(|r| r.code.starts_with("kernel-")) {
        if let Some(rel) = &d.reboot.kernel.expected {
            paths.push(format!("/boot/vmlinuz-{rel}"));
            paths.push(format!("/usr/lib/modules/{rel}/vmlinuz"));
        }
    }
    let units: Vec<&str> = d.reboot.reasons.iter().filter_map(|r| r.unit.as_deref()).collect();
    let stale = d
        .plan
        .units
        .iter()
        .filter(|u| units.contains(&u.unit.as_str()))
        .flat_map(|u| &u.processes)
        .chain(d.plan.init.iter().filter(|_| units.contains(&"init.scope")));
    paths.extend(stale.flat_map(|p| &p.files).map(|f| f.path.to_string()));
    paths.sort();
    paths.dedup();
    let packages = opts
        .packages
        .map_or_else(Default::default, |db| db.owners(root, &paths));
    match crate::system::textfile::flag_reboot(root, &packages) {
        Ok(()) => log::info!(
            "a reboot is needed: flagged in {}",
            crate::system::textfile::REBOOT_REQUIRED
        ),
        Err(e) => log::warn!("{e:#}"),
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
