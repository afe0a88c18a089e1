//! What every package manager's integration shares, from the hook's
//! record to the restart:
//!
//! - [`spool`]: records appended by hook runs and taken by one finish;
//! - [`record`]: the fact-per-line record format of dnf and pacman, and
//!   [`family`], their finish adapter;
//! - [`finish`]: the finish loop, with the [`finish::Adapter`] trait each
//!   package manager implements (apt's lives in `crate::apt::finish`);
//! - [`launch`]: starting the transient unit that runs finish;
//! - [`host`], [`process`], [`wait`]: suspension and systemd checks, the
//!   package manager's process, waiting for a lock or a process to go.
//!
//! Hooks that a package manager runs always exit 0 ([`guard`]); only the
//! `finish` step, which runs in its own unit, reports failure.

pub mod family;
pub mod finish;
pub mod host;
pub mod launch;
pub mod process;
pub mod record;
pub mod spool;
pub mod wait;

use crate::exit::Outcome;

/// Runs a hook step that a package manager called: errors and panics are
/// logged with `what` and the exit status is 0, so the package manager is
/// never stopped by us.
pub fn guard(what: &str, step: impl FnOnce() -> anyhow::Result<()>) -> Outcome {
    // Nothing the step touched is used after a panic: we only exit.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => log::error!("{what}: {e:#}"),
        Err(_) => log::error!("{what}: internal error (panic); the package manager continues"),
    }
    Outcome::Done
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
        assert_eq!(guard("t", || anyhow::bail!("boom")), Outcome::Done);
        assert_eq!(guard("t", || panic!("boom")), Outcome::Done);
        assert_eq!(guard("t", || Ok(())), Outcome::Done);
    }
}
