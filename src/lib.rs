//! restart-stale: find the system services that still run code a package
//! upgrade replaced, decide which may be restarted, and restart them.
//!
//! Reading the system ([`scan`], [`cgroup`], [`policy`]) produces plain
//! data; [`plan`] turns it into decisions without touching the OS.

pub mod app;
pub mod apt;
pub mod cgroup;
pub mod changed;
pub mod cli;
pub mod clr;
pub mod dnf;
pub mod hook;
pub mod interp;
pub mod logging;
pub mod maps;
pub mod pacman;
pub mod plan;
pub mod policy;
pub mod procfs;
pub mod procmap;
pub mod replay;
pub mod report;
pub mod restart;
pub mod scan;
pub mod staleness;
pub mod swupd;
pub mod sysroot;
pub mod systemd;
pub mod tiers;
pub mod unit_name;
