//! The integration tests, one binary (as ripgrep's tests/tests.rs): each
//! module below is a file of tests/, and `util` is what they share.
//!
//! - The command line as users and package managers meet it: `cli`, the
//!   hooks (`apt_hook`, `dnf_hook`, `dnf5_hook`, `pacman_hook`,
//!   `zypper_hook`) and the
//!   `clr-service-restart` personality.
//! - Golden cases of every corpus (`golden`): a fake root, a command
//!   line, the expected output; `GOLDEN_BLESS=1` rewrites them.
//! - Real processes on the real `/proc` (`live_processes`, `live_owners`, `scan_methods`,
//!   `maps_vs_procfs`).
//! - Replay's readers (`replay_dnf`, `replay_robustness`).
//! - The Prometheus textfile, read back with a real parser (`prometheus`), and
//!   the reboot flag a hook run writes (`reboot_required`).
//!
//! A test that cannot run where it is run says `skipped: <why>` on stderr.
//!
//! Switches, from the environment:
//! - `GOLDEN_BLESS=1 cargo test --test tests golden` rewrites the golden
//!   expectations (review the diff); `GOLDEN_KEEP=1` keeps the fake root
//!   of a failing case.
//! - `RESTART_STALE_TEST_SCRATCH=DIR` names where live processes map their
//!   library copy, for a machine where neither target/tmp nor `$HOME` is a
//!   writable place the scan considers (tests/util/live.rs).

#[macro_use]
mod util;

mod apt_hook;
mod cli;
mod clr_service_restart;
mod dnf5_hook;
mod dnf_hook;
mod golden;
mod hostile_user;
mod interp_walk;
mod live_interp;
mod live_owners;
mod live_processes;
mod maps_vs_procfs;
mod no_exec;
mod pacman_hook;
mod prometheus;
mod reboot_required;
mod replay_dnf;
mod replay_robustness;
mod scan_methods;
mod scan_threads;
mod zypper_hook;
