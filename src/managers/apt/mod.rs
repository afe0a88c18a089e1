//! The apt integration: hooks that record a package transaction and,
//! once it is over, restart what it left stale (docs/apt.md).
//!
//! - `apt-hook pre-install-pkgs` (`DPkg::Pre-Install-Pkgs`, protocol 3)
//!   records the actions and copies the file lists that dpkg is about to
//!   change ([`pre_install`], [`record`]).
//! - `apt-hook post-invoke` (`DPkg::Post-Invoke`, after every dpkg run)
//!   starts the transient unit `restart-stale-apt.service`, a no-op while
//!   it is already queued or running ([`post_invoke`]).
//! - `apt-hook finish` (that unit) waits until no package manager holds
//!   the dpkg frontend lock, takes the record and restarts ([`finish`]).
//!
//! The first two run inside apt: they never fail, never prompt and never
//! wait long. Errors are logged and the exit status is 0.

pub mod changelog;
pub mod dpkg;
pub mod dpkg_log;
pub mod finish;
pub mod history;
pub mod post_invoke;
pub mod pre_install;
pub mod protocol;
pub mod record;

use crate::core::fixes::{ByUnit, Upgrades};
use crate::core::plan::Plan;
use crate::exit::Outcome;
use crate::run::Packages;
use crate::system::sysroot::SysRoot;
use crate::systemd::Bus;
use crate::transaction;
use std::collections::BTreeSet;

/// Debian's package database, as a run asks it: dpkg's file lists own a
/// reboot's files, the installed changelogs name the fixes, and dpkg.log
/// says what `status` runs against.
pub struct Dpkg;

impl Packages for Dpkg {
    fn name(&self) -> &'static str {
        "dpkg"
    }

    fn owners(&self, root: &SysRoot, paths: &[String]) -> BTreeSet<String> {
        dpkg::owners(root, paths)
    }

    fn annotate(&self, root: &SysRoot, plan: &Plan, ups: &Upgrades) -> ByUnit {
        changelog::annotate(root, plan, ups)
    }

    fn recent_upgrades(&self, root: &SysRoot) -> Option<Upgrades> {
        dpkg_log::status_upgrades(root)
    }
}

/// The transient unit that runs `apt-hook finish`.
pub const FINISH_UNIT: &str = "restart-stale-apt.service";

/// apt's documented setting that turns automatic restarts off
/// (`RestartStale::Auto-Restart "false";`); the report is still logged.
/// apt holds this for its whole run; dpkg takes it when run alone
/// (dpkg(1) "FILES"). We only test it, never take it.
pub const FRONTEND_LOCK: &str = "/var/lib/dpkg/lock-frontend";

pub const AUTO_RESTART_KEY: &str = "RestartStale::Auto-Restart";

/// `RestartStale::Reexec "false";` keeps PID 1 from being re-executed
/// when it runs stale code (as `--no-reexec` does); on by default.
pub const REEXEC_KEY: &str = "RestartStale::Reexec";

/// `apt-hook pre-install-pkgs`: apt's `DPkg::Pre-Install-Pkgs` hook.
/// Always [`Outcome::Done`]: errors and panics are logged, apt goes on.
pub(crate) fn pre_install_pkgs(root: &SysRoot) -> Outcome {
    transaction::guard("apt-hook pre-install-pkgs", || pre_install::run(root))
}

/// `apt-hook post-invoke`: apt's `DPkg::Post-Invoke` hook; always
/// [`Outcome::Done`].
pub(crate) fn post_invoke(bus: &Bus, root: &SysRoot, verbose: u8) -> Outcome {
    transaction::guard("apt-hook post-invoke", || post_invoke::run(bus, root, verbose))
}

/// `apt-hook finish`, the command of [`FINISH_UNIT`]. It runs in its own
/// unit, not in apt, so there a failure may show.
pub fn finish(bus: &Bus, root: &SysRoot, verbose: u8) -> Outcome {
    transaction::finish::unit_step("apt-hook finish", || finish::run(bus, root, verbose))
}
