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

pub mod finish;
pub mod post_invoke;
pub mod pre_install;
pub mod protocol;
pub mod record;

use crate::exit::Outcome;
use crate::system::sysroot::SysRoot;
use clap::Subcommand;

/// The transient unit that runs `apt-hook finish`.
pub const FINISH_UNIT: &str = "restart-stale-apt.service";

/// apt's documented setting that turns automatic restarts off
/// (`RestartStale::Auto-Restart "false";`); the report is still logged.
/// apt holds this for its whole run; dpkg takes it when run alone
/// (dpkg(1) "FILES"). We only test it, never take it.
pub const FRONTEND_LOCK: &str = "/var/lib/dpkg/lock-frontend";

pub const AUTO_RESTART_KEY: &str = "RestartStale::Auto-Restart";

/// `restart-stale apt-hook …`: entry points for apt.conf.d.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Hook {
    /// Read apt's hook protocol 3 on stdin and record the transaction.
    PreInstallPkgs,
    /// After a dpkg run: start restart-stale-apt.service unless it is queued.
    PostInvoke,
    /// Wait for the package manager to finish, then act on the record.
    Finish,
}

/// Runs one hook and returns its exit status. Hooks called by apt always
/// return 0, even on errors or panics, so apt is never stopped by us.
pub fn run(root: &SysRoot, hook: Hook, verbose: u8) -> Outcome {
    let result = std::panic::catch_unwind(|| match hook {
        Hook::PreInstallPkgs => pre_install::run(root).map(|_| Outcome::Done),
        Hook::PostInvoke => post_invoke::run(root, verbose).map(|_| Outcome::Done),
        Hook::Finish => finish::run(root, verbose),
    });
    // finish runs in its own unit, not in apt: there a failure may show.
    let failed = if hook == Hook::Finish {
        Outcome::Error
    } else {
        Outcome::Done
    };
    match result {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            log::error!("apt-hook {}: {e:#}", hook.name());
            failed
        }
        Err(_) => {
            log::error!("apt-hook {}: internal error (panic)", hook.name());
            failed
        }
    }
}

impl Hook {
    pub fn name(self) -> &'static str {
        match self {
            Hook::PreInstallPkgs => "pre-install-pkgs",
            Hook::PostInvoke => "post-invoke",
            Hook::Finish => "finish",
        }
    }
}
