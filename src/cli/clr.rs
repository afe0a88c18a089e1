//! restart-stale invoked as `clr-service-restart` (a symlink the package
//! installs at /usr/bin/clr-service-restart): the command line of Clear
//! Linux's tool (clr-service-restart(1)), so swupd and admins' habits keep
//! working (docs/swupd.md).
//!
//! - `clr-service-restart allow|disallow|default UNIT…` maintain links in
//!   `/etc/clr-service-restart`, as the original does; a name without a
//!   type suffix means `.service`, as systemctl reads it.
//! - `clr-service-restart [-n] [-a]` scans and restarts. swupd runs it
//!   with no arguments after an update; then the files the update changed
//!   count ([`crate::managers::swupd`]), or every stale mapping when that cannot be
//!   known. A run that restarted without error records the version.
//!
//! Differences kept on purpose: restart-stale's links and tiers apply too,
//! and a report goes to stdout. Like the original, `-n` prints nothing
//! when no unit runs stale code and exits 0 when restarts are pending;
//! a run that could not restart exits as restart-stale does (3, 4).

use super::Units;
use crate::core::unit_name;
use crate::exit::Outcome;
use crate::managers::swupd;
use crate::system::policy;
use crate::system::sysroot::SysRoot;
use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The name that selects this personality.
pub const NAME: &str = "clr-service-restart";

/// Restart the system services that still run code an update replaced
/// (restart-stale's clr-service-restart compatible command line).
#[derive(Debug, Parser)]
#[command(name = NAME, version, disable_help_subcommand = true)]
pub struct ClrCli {
    /// Don't restart anything; show what would happen.
    #[arg(short = 'n')]
    pub dry_run: bool,

    /// Consider all system units, not only allowed ones.
    #[arg(short = 'a')]
    pub all: bool,

    /// More output (debug messages).
    #[arg(short, action = clap::ArgAction::Count, hide = true)]
    pub verbose: u8,

    /// Read /proc, /sys, /etc and /usr under this directory (for tests).
    #[arg(long, hide = true, env = crate::system::sysroot::ROOT_ENV, default_value = "/")]
    pub root: PathBuf,

    #[command(subcommand)]
    pub command: Option<ClrCommand>,
}

#[derive(Debug, Subcommand)]
pub enum ClrCommand {
    /// Mark units as restartable (a link in /etc/clr-service-restart).
    Allow(Units),
    /// Mark units as never restartable (a link to /dev/null).
    Disallow(Units),
    /// Remove the local link: back to the distribution default.
    Default(Units),
}

/// Whether argv[0] asks for this personality.
pub fn invoked_as(argv0: &std::ffi::OsStr) -> bool {
    Path::new(argv0).file_name().is_some_and(|n| n == NAME)
}

/// Parses `args` (argv[0] first) and runs; returns the exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> Outcome {
    let cli = ClrCli::parse_from(args);
    if cli.command.is_some() && (cli.dry_run || cli.all) {
        ClrCli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "-n and -a do not combine with allow, disallow or default",
            )
            .exit();
    }
    crate::logging::init(cli.verbose);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            log::error!("{e:#}");
            Outcome::Error
        }
    }
}

/// `rngd` → `rngd.service`, as systemctl reads a name without a suffix.
pub(crate) fn unit_of(name: &str) -> String {
    if unit_name::suffix(name).is_some() {
        name.to_string()
    } else {
        format!("{name}.service")
    }
}

pub fn run(cli: ClrCli) -> Result<Outcome> {
    let root = SysRoot::new(&cli.root);
    let (cmd, units) = match cli.command {
        // As in `dispatch`: the run's one connection, opened when needed.
        None => {
            let bus = crate::systemd::Bus::default();
            return swupd::after_update(&bus, &root, cli.dry_run, cli.all, cli.verbose);
        }
        Some(ClrCommand::Allow(Units { units })) => (policy::Command::Allow, units),
        Some(ClrCommand::Disallow(Units { units })) => (policy::Command::Disallow, units),
        Some(ClrCommand::Default(Units { units })) => (policy::Command::Default, units),
    };
    let units: Vec<String> = units.iter().map(|u| unit_of(u)).collect();
    for line in policy::apply(&root, policy::CLR_ADMIN_DIR, cmd, &units)? {
        println!("{line}");
    }
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        ClrCli::command().debug_assert();
    }

    #[test]
    fn parses_like_clr_service_restart() {
        let c = ClrCli::try_parse_from([NAME, "-n", "-a"]).unwrap();
        assert!(c.dry_run && c.all && c.command.is_none());
        let c = ClrCli::try_parse_from([NAME, "-a", "-n"]).unwrap();
        assert!(c.dry_run && c.all);
        let c = ClrCli::try_parse_from([NAME, "allow", "tallow", "rngd.service"]).unwrap();
        assert!(matches!(c.command, Some(ClrCommand::Allow(Units { ref units })) if units.len() == 2));
        assert!(ClrCli::try_parse_from([NAME, "allow"]).is_err());
        assert!(ClrCli::try_parse_from([NAME, "-x"]).is_err());
        assert!(ClrCli::try_parse_from([NAME, "--changed-files", "x"]).is_err());
        assert!(ClrCli::try_parse_from([NAME, "status"]).is_err());
    }

    #[test]
    fn names_without_suffix_are_services() {
        assert_eq!(unit_of("rngd"), "rngd.service");
        assert_eq!(unit_of("tallow.service"), "tallow.service");
        assert_eq!(unit_of("getty@.service"), "getty@.service");
        assert_eq!(unit_of("foo.socket"), "foo.socket");
    }

    #[test]
    fn argv0_selects_the_personality() {
        assert!(invoked_as("/usr/bin/clr-service-restart".as_ref()));
        assert!(invoked_as("clr-service-restart".as_ref()));
        assert!(!invoked_as("/usr/bin/restart-stale".as_ref()));
    }
}
