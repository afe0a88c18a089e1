//! restart-stale: find the system services that still run code a package
//! upgrade replaced, decide which may be restarted, and restart them.
//!
//! The layers, top to bottom; a module imports only from layers below it
//! (`ci/check-layers` enforces this; docs/architecture.md draws them):
//!
//! - [`cli`]: the command lines (clap), and the composition root that
//!   builds the root, the run's one systemd bus and the manager;
//! - [`managers`]: one folder per package manager (hook, package
//!   database, history), behind [`transaction::Manager`] and
//!   [`run::Packages`];
//! - [`transaction`]: the one record format and spool, the finish loop
//!   every manager plugs into, the transient unit; [`replay`]: what every
//!   history reader shares;
//! - [`run`]: scan → plan → report → restart for one set of options;
//! - [`restart`]: the executor, on the [`systemd`] trait;
//! - [`system`]: readers of /proc, /sys and the policy links, on an
//!   injectable root;
//! - [`core`]: plain data and pure decisions (plan, tiers, report, kernel
//!   status and reboot reasons, batch lines, the Prometheus textfile);
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
