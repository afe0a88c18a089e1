//! From a parsed command line to the layers below: clap's structs stop
//! here, everything past this module takes plain options.

use super::hooks::{AptHook, Dnf5Step, DnfStep, PacmanStep, ZypperStep};
use super::{Cli, Command, ReplayArgs, ScanArgs, ScanMethod, Units};
use crate::core::changed::ChangedSet;
use crate::exit::Outcome;
use crate::managers::{self, apt, dnf, pacman, zypper, Source};
use crate::run::{self, Marks, Mode, Options};
use crate::system::policy;
use crate::system::scan;
use crate::system::sysroot::SysRoot;
use crate::systemd::Bus;
use crate::transaction::launch::HOOK_DBUS_TIMEOUT;
use anyhow::{bail, Result};

/// Runs the command; the outcome becomes the exit status in main.
pub fn run(cli: Cli) -> Result<Outcome> {
    let root = SysRoot::new(&cli.root);
    // The run's one connection to systemd, opened when a step first needs
    // it. Hooks, which a package manager waits for, and `status`, a
    // report, bound each call shortly; a finish or a manual run waits as
    // long as a busy PID 1 may take.
    let hook_bus = Bus::with_timeout(HOOK_DBUS_TIMEOUT);
    let bus = match &cli.command {
        Some(Command::AptHook { hook: AptHook::Finish })
        | Some(Command::DnfHook { step: DnfStep::Finish })
        | Some(Command::PacmanHook {
            step: Some(PacmanStep::Finish),
        })
        | Some(Command::ZypperHook {
            step: Some(ZypperStep::Finish),
        }) => Bus::default(),
        Some(Command::AptHook { .. } | Command::DnfHook { .. } | Command::Dnf5Hook { .. })
        | Some(Command::PacmanHook { .. } | Command::ZypperHook { .. }) => hook_bus,
        Some(Command::Status { .. }) => Bus::with_timeout(crate::restart::mark::STATUS_TIMEOUT),
        _ => Bus::default(),
    };
    let links = |cmd, units: &[String]| -> Result<Outcome> {
        for line in policy::apply(&root, policy::ADMIN_DIR, cmd, units)? {
            println!("{line}");
        }
        Ok(Outcome::Done)
    };
    match cli.command {
        Some(Command::Allow(Units { units })) => links(policy::Command::Allow, &units),
        Some(Command::Disallow(Units { units })) => links(policy::Command::Disallow, &units),
        Some(Command::Default(Units { units })) => links(policy::Command::Default, &units),
        Some(Command::GenerateAssets { dir }) => super::assets::generate_assets(&dir).map(|_| Outcome::Done),
        Some(Command::AptHook { hook }) => Ok(match hook {
            AptHook::PreInstallPkgs => apt::pre_install_pkgs(&root),
            AptHook::PostInvoke => apt::post_invoke(&bus, &root, cli.verbose),
            AptHook::Finish => apt::finish(&bus, &root, cli.verbose),
        }),
        Some(Command::DnfHook { step }) => Ok(match step {
            DnfStep::Transaction { file } => dnf::transaction(&bus, &root, &file, cli.verbose),
            DnfStep::Finish => dnf::finish(&bus, &root, cli.verbose),
        }),
        Some(Command::Dnf5Hook { step }) => Ok(match step {
            Dnf5Step::Begin { args } => dnf::dnf5_begin(&root, &args),
            Dnf5Step::Package { args } => dnf::dnf5_package(&root, &args),
            Dnf5Step::PreTransaction { args } => dnf::dnf5_pre_transaction(&root, &args),
            Dnf5Step::PostTransaction { args } => dnf::dnf5_post_transaction(&bus, &root, &args, cli.verbose),
        }),
        Some(Command::PacmanHook { step }) => Ok(match step {
            None => pacman::record_targets(&bus, &root, cli.verbose),
            Some(PacmanStep::Finish) => pacman::finish(&bus, &root, cli.verbose),
        }),
        Some(Command::ZypperHook { step }) => Ok(match step {
            None => zypper::plugin(&bus, &root, cli.verbose),
            Some(ZypperStep::Finish) => zypper::finish(&bus, &root, cli.verbose),
        }),
        Some(Command::Status { scan, batch }) => {
            let opts = Options {
                batch,
                history: true,
                bus,
                ..options(&root, &scan)?
            };
            run::execute(&root, &opts, Mode::Status, cli.verbose)
        }
        Some(Command::Replay(args)) => replay(&root, &args, cli.verbose),
        None => {
            let mut opts = options(&root, &cli.scan)?;
            opts.bus = bus.clone();
            opts.restart = cli.act.restart.settings(&root);
            opts.security_only = cli.act.security_only;
            opts.marks = if cli.defer {
                Marks::Set
            } else if cli.marked {
                Marks::Restart
            } else {
                Marks::Ignore
            };
            if cli.act.dry_run {
                return run::execute(&root, &opts, Mode::DryRun, cli.verbose);
            }
            super::pending::holding_lock(&bus, &root, cli.verbose, || {
                run::execute(&root, &opts, Mode::Restart, cli.verbose)
            })
        }
    }
}

/// The options of the default action and `status`.
pub(crate) fn options(root: &SysRoot, args: &ScanArgs) -> Result<Options> {
    let changed = args.changed_files.as_deref().map(ChangedSet::load).transpose()?;
    Ok(Options {
        all: args.report.all,
        json: args.report.json,
        changed,
        data_files: args.data_files,
        method: match args.scan_method {
            ScanMethod::Auto => scan::Method::Auto,
            ScanMethod::Text => scan::Method::Text,
        },
        textfile: args.textfile.clone(),
        packages: Some(managers::host_packages(root)),
        ..Options::default()
    })
}

fn replay(root: &SysRoot, args: &ReplayArgs, verbose: u8) -> Result<Outcome> {
    let opts = Options {
        all: args.report.all,
        json: args.report.json,
        restart: args.act.restart.settings(root),
        security_only: args.act.security_only,
        packages: Some(managers::host_packages(root)),
        ..Options::default()
    };
    let mode = if args.act.dry_run { Mode::DryRun } else { Mode::Restart };
    let r = managers::replay(root, &source(args)?, &managers::rpm::RpmCommand::REPLAY)?;
    crate::replay::run(root, r, opts, mode, verbose)
}

/// The one history source the arguments name (clap checks there is one).
pub fn source(a: &ReplayArgs) -> Result<Source> {
    Ok(if let Some(nth) = a.apt_history {
        Source::AptHistory { nth, since: a.since }
    } else if a.dpkg_log {
        let Some(since) = a.since else {
            bail!("--dpkg-log needs --since")
        };
        Source::DpkgLog { since }
    } else if let Some(sel) = a.dnf_transaction {
        Source::Dnf(sel)
    } else if let Some(from) = a.swupd_from {
        Source::Swupd { from }
    } else if let Some(f) = &a.files {
        Source::Files(f.clone())
    } else {
        bail!("nothing to replay: give a source such as --apt-history")
    })
}
