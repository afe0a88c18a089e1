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

pub mod dpkg_info;
pub mod finish;
pub mod host;
pub mod lock;
pub mod post_invoke;
pub mod pre_install;
pub mod protocol;
pub mod record;

use crate::cli::exit;
use crate::sysroot::SysRoot;
use clap::Subcommand;

/// The transient unit that runs `apt-hook finish`.
pub const FINISH_UNIT: &str = "restart-stale-apt.service";

/// apt's documented setting that turns automatic restarts off
/// (`RestartStale::Auto-Restart "false";`); the report is still logged.
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
pub fn run(root: &SysRoot, hook: Hook, verbose: u8) -> i32 {
    let result = std::panic::catch_unwind(|| match hook {
        Hook::PreInstallPkgs => pre_install::run(root).map(|_| exit::OK),
        Hook::PostInvoke => post_invoke::run(root, verbose).map(|_| exit::OK),
        Hook::Finish => finish::run(root, verbose),
    });
    match result {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            log::error!("apt-hook {}: {e:#}", hook.name());
            if hook == Hook::Finish {
                exit::ERROR
            } else {
                exit::OK
            }
        }
        Err(_) => {
            log::error!("apt-hook {}: internal error (panic); apt continues", hook.name());
            exit::OK
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
