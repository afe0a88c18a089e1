//! The integration tests, one binary (as ripgrep's tests/tests.rs): each
//! module below is a file of tests/, and `util` is what they share.
//!
//! - The command line as users and package managers meet it: `cli`, the
//!   hooks (`apt_hook`, `dnf_hook`, `dnf5_hook`, `pacman_hook`) and the
//!   `clr-service-restart` personality.
//! - Golden cases of every corpus (`golden`): a fake root, a command
//!   line, the expected output; `GOLDEN_BLESS=1` rewrites them.
//! - Real processes on the real `/proc` (`live_processes`, `scan_methods`,
//!   `maps_vs_procfs`).
//! - Replay's readers (`replay_dnf`, `replay_robustness`).
//!
//! A test that cannot run where it is run says `skipped: <why>` on stderr.

#[macro_use]
mod util;

mod apt_hook;
mod cli;
mod clr_service_restart;
mod dnf5_hook;
mod dnf_hook;
mod golden;
mod live_processes;
mod maps_vs_procfs;
mod pacman_hook;
mod replay_dnf;
mod replay_robustness;
mod scan_methods;
