//! restart-stale: find the system services that still run code a package
//! upgrade replaced, decide which may be restarted, and restart them.
//!
//! The layers, top to bottom; a module imports only from layers below it
//! (`ci/check-layers` enforces this):
//!
//! - [`cli`]: the command lines (clap), and dispatch to the layers below;
//! - the package-manager adapters [`apt`], [`dnf`], [`pacman`], [`zypper`], [`swupd`],
//!   and [`history`] (past transactions): they turn what a package manager
//!   says into a changed-file set;
//! - [`transaction`]: the one record format and spool, the finish loop
//!   the adapters plug into, the transient unit;
//! - [`run`]: scan → plan → report → restart for one set of options;
//! - [`restart`]: the executor, on the [`systemd`] trait;
//! - [`pkgdb`]: package databases (dpkg file lists, rpm queries);
//! - [`core`]: plain data and pure decisions (plan, tiers, report, kernel
//!   status and reboot reasons, batch lines, the Prometheus textfile);
//! - [`system`]: readers of /proc, /sys and the policy links, on an
//!   injectable root;
//! - [`exit`], [`logging`]: leaves.

pub mod cli;
pub mod core;
pub mod exit;
pub mod logging;
pub mod managers;
pub mod replay;
pub mod restart;
pub mod run;
pub mod system;
pub mod systemd;
pub mod transaction;
