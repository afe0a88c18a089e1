//! What the dnf (4 and 5) and pacman hooks share: the transaction record
//! ([`record`]), the package manager process they wait for
//! ([`process`]), starting the transient unit once the transaction is
//! recorded ([`launch`]) and the unit's work ([`finish`]).
//!
//! The pattern is apt's (src/apt, docs/apt.md), and so are the pieces it is
//! built from: the record file is appended and taken with
//! [`crate::apt::record`], suspension and the systemd check are
//! [`crate::apt::host`], the wait is [`crate::apt::lock::wait_until_free`].
//! Only the record format differs, because these package managers hand us
//! packages and file lists instead of apt's protocol 3.
//!
//! Hooks that a package manager runs always exit 0 ([`guard`]); only the
//! `finish` step, which runs in its own unit, reports failure.

pub mod finish;
pub mod launch;
pub mod process;
pub mod record;

use crate::cli::exit;

/// The package managers whose hooks record here; one record directory and
/// one transient unit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// dnf 4 (the Python plugin) and dnf 5 (the actions plugin).
    Dnf,
    Pacman,
}

impl Family {
    /// The record directory inside the root.
    pub fn dir(self) -> &'static str {
        match self {
            Family::Dnf => "/run/restart-stale/dnf",
            Family::Pacman => "/run/restart-stale/pacman",
        }
    }

    /// The transient unit that runs `finish`.
    pub fn unit(self) -> &'static str {
        match self {
            Family::Dnf => "restart-stale-dnf.service",
            Family::Pacman => "restart-stale-pacman.service",
        }
    }

    /// Our subcommand for this family; `<it> finish` is the unit's command.
    pub fn subcommand(self) -> &'static str {
        match self {
            Family::Dnf => "dnf-hook",
            Family::Pacman => "pacman-hook",
        }
    }

    /// How the package manager is called in messages.
    pub fn name(self) -> &'static str {
        match self {
            Family::Dnf => "dnf",
            Family::Pacman => "pacman",
        }
    }
}

/// Runs a hook step that a package manager called: errors and panics are
/// logged with `what` and the exit status is 0, so the package manager is
/// never stopped by us.
pub fn guard(what: &str, step: impl FnOnce() -> anyhow::Result<()>) -> i32 {
    // Nothing the step touched is used after a panic: we only exit.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => log::error!("{what}: {e:#}"),
        Err(_) => log::error!("{what}: internal error (panic); the package manager continues"),
    }
    exit::OK
}

/// Reads a hook's stdin, at most `limit` bytes, then drains the rest, so
/// the package manager's writes never fail even when we stop reading.
pub fn read_stdin(limit: u64) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    use std::io::Read;
    let mut data = Vec::new();
    let mut stdin = std::io::stdin().lock();
    (&mut stdin)
        .take(limit)
        .read_to_end(&mut data)
        .context("failed to read stdin")?;
    let rest = std::io::copy(&mut stdin, &mut std::io::sink()).unwrap_or(0);
    if rest > 0 {
        log::error!("stdin: {rest} bytes past the first {limit} were ignored");
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_swallows_errors_and_panics() {
        assert_eq!(guard("t", || anyhow::bail!("boom")), exit::OK);
        assert_eq!(guard("t", || panic!("boom")), exit::OK);
        assert_eq!(guard("t", || Ok(())), exit::OK);
    }

    #[test]
    fn families_have_their_own_dir_and_unit() {
        assert_ne!(Family::Dnf.dir(), Family::Pacman.dir());
        assert!(Family::Dnf.unit().ends_with(".service"));
        assert_eq!(Family::Pacman.subcommand(), "pacman-hook");
    }
}
