//! The hidden subcommands package managers run (docs/apt.md, docs/dnf.md,
//! docs/pacman.md). Each one names an entry point of its manager (`crate::managers`); none of
//! them ever fails the package manager (only the `finish` steps, which
//! run in their own units, report failure).

use clap::Subcommand;
use std::path::PathBuf;

/// `restart-stale apt-hook …`: entry points for apt.conf.d.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum AptHook {
    /// Read apt's hook protocol 3 on stdin and record the transaction.
    PreInstallPkgs,
    /// After a dpkg run: start restart-stale-apt.service unless it is queued.
    PostInvoke,
    /// Wait for the package manager to finish, then act on the record.
    Finish,
}

/// `restart-stale dnf-hook …`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum DnfStep {
    /// Record the transaction the dnf 4 plugin wrote to FILE and start
    /// restart-stale-dnf.service.
    Transaction { file: PathBuf },
    /// Wait for dnf to exit, then act on the record (the unit's command).
    Finish,
}

/// `restart-stale dnf5-hook …`, as the actions file calls it. The
/// arguments are taken raw and checked by the manager, so that even
/// nonsense gets a message naming the argument and exit status 0, never a
/// usage error.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Dnf5Step {
    /// First in each transaction: print `tmp.restart_stale_pid=PID` for the
    /// actions plugin, which then runs the other steps. PID.
    Begin {
        #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// One package of the transaction: PID ACTION NEVRA
    /// (`${pid} ${pkg.action} ${pkg.full_nevra}`).
    Package {
        #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Before the rpm transaction: copy the file lists of outgoing packages. PID.
    PreTransaction {
        #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// After it: list incoming packages, record, start the unit. PID.
    PostTransaction {
        #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
        args: Vec<String>,
    },
}

/// `restart-stale pacman-hook [finish]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum PacmanStep {
    /// Wait for pacman to exit, then act on the record (the unit's command).
    Finish,
}

/// `restart-stale zypper-hook [finish]`: without a step, the libzypp
/// commit plugin on stdin and stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum ZypperStep {
    /// Wait for zypper to exit, then act on the record (the unit's command).
    Finish,
}
