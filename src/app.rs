//! Wiring: command line → scan → plan → report (→ restart).

use crate::changed::ChangedSet;
use crate::cli::{exit, Cli, Command, ScanArgs};
use crate::plan::{self, Plan};
use crate::policy::{self, Policy};
use crate::report;
use crate::scan::{self, Scope};
use crate::sysroot::SysRoot;
use anyhow::Result;

/// What the run is for; decides scan scope and wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Status,
    DryRun,
    Restart,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Status => "status",
            Mode::DryRun => "dry-run",
            Mode::Restart => "restart",
        }
    }
}

/// Runs the command and returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    let root = SysRoot::new(&cli.root);
    let links = |cmd, units: &[String]| -> Result<i32> {
        for line in policy::apply(&root, policy::ADMIN_DIR, cmd, units)? {
            println!("{line}");
        }
        Ok(exit::OK)
    };
    match cli.command {
        Some(Command::Allow { units }) => links(policy::Command::Allow, &units),
        Some(Command::Disallow { units }) => links(policy::Command::Disallow, &units),
        Some(Command::Default { units }) => links(policy::Command::Default, &units),
        Some(Command::GenerateAssets { dir }) => crate::cli::generate_assets(&dir).map(|_| exit::OK),
        Some(Command::Status { scan }) => execute(&root, &RunOptions::from_args(&scan)?, Mode::Status, cli.verbose),
        None if cli.dry_run => execute(&root, &RunOptions::from_args(&cli.scan)?, Mode::DryRun, cli.verbose),
        None => execute(&root, &RunOptions::from_args(&cli.scan)?, Mode::Restart, cli.verbose),
    }
}

/// Everything a scan-plan-act run needs besides the root and mode. Hooks
/// build this directly with the changed set they derived.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub all: bool,
    pub json: bool,
    pub changed: Option<ChangedSet>,
}

impl RunOptions {
    pub fn from_args(args: &ScanArgs) -> Result<Self> {
        let changed = args.changed_files.as_deref().map(ChangedSet::load).transpose()?;
        Ok(Self {
            all: args.all,
            json: args.json,
            changed,
        })
    }
}

/// Scans and plans; the inputs every mode shares.
pub struct Planned {
    pub plan: Plan,
    pub scan: scan::Scan,
    pub policy: Policy,
}

pub fn build_plan(root: &SysRoot, args: &RunOptions, scope: Scope) -> Result<Planned> {
    let policy = Policy::load(root)?;
    let scan = scan::scan(root, scope)?;
    // Only our own process tree can hold the package manager that called us.
    let self_units = if root.is_host() {
        crate::cgroup::ancestor_units(root, std::process::id())
    } else {
        Vec::new()
    };
    let opts = plan::Options {
        policy: &policy,
        changed: args.changed.as_ref(),
        all: args.all,
        self_units: &self_units,
    };
    let plan = plan::plan(&scan, &opts);
    Ok(Planned { plan, scan, policy })
}

/// Scans, plans, reports and (in [`Mode::Restart`]) acts; returns the exit code.
pub fn execute(root: &SysRoot, args: &RunOptions, mode: Mode, verbose: u8) -> Result<i32> {
    let scope = if mode == Mode::Restart {
        Scope::SystemUnits
    } else {
        Scope::Everything
    };
    let p = build_plan(root, args, scope)?;
    for w in &p.policy.warnings {
        log::warn!("{w}");
    }
    for problem in &p.scan.problems {
        log::warn!("{problem}");
    }
    let ctx = report::Context {
        mode: mode.name(),
        layout: p.scan.layout,
        changed_files: args.changed.as_ref().map(|c| c.len()),
        processes_scanned: p.scan.processes_scanned,
        problems: &p.scan.problems,
        warnings: &p.policy.warnings,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report::json(&p.plan, &ctx))?);
    } else {
        print!("{}", report::text(&p.plan, &ctx, verbose > 0));
    }
    let pending = p.plan.restarts().count() > 0 || p.plan.init.is_some();
    if mode == Mode::Restart && pending {
        log::warn!("restarting is not implemented yet; nothing was restarted");
    }
    Ok(if pending { exit::PENDING } else { exit::OK })
}
