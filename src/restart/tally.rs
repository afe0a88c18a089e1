//! What a restart run did, unit by unit: each result as it is logged,
//! the counts the summary line and the exit code come from, and the
//! [`Ran`] the report and the textfile read. Apart from the restart loop
//! so the loop reads as steps and the bookkeeping in one place.

use super::refine::Skip;
pub use crate::core::model::{DaemonReload, UnitResult};
use crate::exit::Outcome as Exit;
use std::time::Duration;

/// How a restart run (or a preview) ended.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Ran {
    pub exit: Exit,
    /// One entry per unit acted on or skipped on live state; empty for
    /// a dry run and when systemd could not be reached.
    pub results: Vec<UnitResult>,
    /// Set when systemd reloaded (or was asked to reload) its unit files
    /// before the restarts.
    pub daemon_reload: Option<DaemonReload>,
}

impl Ran {
    pub(super) fn exit_only(exit: Exit) -> Self {
        Self {
            exit,
            ..Self::default()
        }
    }
}

/// Counts for the summary line and the exit code, and each result.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) clean: usize,
    pub(super) failed: usize,
    pub(super) skipped: usize,
    /// Skipped units that still run the stale code they were chosen for.
    pub(super) left_stale: usize,
    /// Units the health gate held (they still run stale code too).
    pub(super) held: usize,
    /// A failure held the later waves.
    pub(super) halted: bool,
    pub(super) results: Vec<UnitResult>,
    pub(super) daemon_reload: Option<DaemonReload>,
}

/// Which count a result goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Clean,
    Failed,
    Skipped,
    Held,
}

impl Tally {
    /// Logs one result as `UNIT: DETAIL` (failures as errors) and records it.
    pub(super) fn record(&mut self, unit: &str, kind: Kind, result: &'static str, detail: String) {
        let level = match kind {
            Kind::Failed => log::Level::Error,
            Kind::Held => log::Level::Warn,
            Kind::Clean | Kind::Skipped => log::Level::Info,
        };
        self.record_logged(level, unit, unit, kind, result, detail);
    }

    /// Records a unit the health gate holds: not restarted, still stale.
    pub(super) fn record_held(&mut self, unit: &str, wave: Option<usize>, result: &'static str, why: String) {
        self.record(unit, Kind::Held, result, format!("held: {why}"));
        let r = self.results.last_mut().expect("just recorded");
        r.wave = wave;
        r.held = Some(why);
    }

    /// Records a step that is not a unit's restart (the daemon-reload
    /// before them), already logged; it counts as neither done nor failed.
    pub(super) fn record_note(&mut self, what: &str, result: &'static str, detail: String) {
        self.results.push(UnitResult {
            detail,
            outcome: "note",
            result,
            unit: what.to_string(),
            ..UnitResult::default()
        });
    }

    /// Logs one result as `SHOWN: DETAIL` at `level` and records it for `unit`.
    pub(super) fn record_logged(
        &mut self,
        level: log::Level,
        shown: &str,
        unit: &str,
        kind: Kind,
        result: &'static str,
        detail: String,
    ) {
        log::log!(level, "{shown}: {detail}");
        let outcome = match kind {
            Kind::Clean => {
                self.clean += 1;
                "restarted"
            }
            Kind::Failed => {
                self.failed += 1;
                "failed"
            }
            Kind::Skipped => {
                self.skipped += 1;
                "skipped"
            }
            Kind::Held => {
                self.held += 1;
                "held"
            }
        };
        self.results.push(UnitResult {
            detail,
            outcome,
            result,
            unit: unit.to_string(),
            ..UnitResult::default()
        });
    }

    /// Logs the run's summary line; `took`: the restart jobs' time.
    pub(super) fn summarize(&self, took: Duration) {
        log::info!(
            "summary: {} restarted and verified clean, {} failed or still stale, {} not restarted \
             ({} of them still running stale code), {} held by the health gate; restart jobs took {:.2}s",
            self.clean,
            self.failed,
            self.skipped,
            self.left_stale,
            self.held,
            took.as_secs_f64()
        );
    }

    pub(super) fn ran(self) -> Ran {
        let exit = if self.halted {
            Exit::Held
        } else if self.failed > 0 {
            Exit::RestartFailed
        } else if self.left_stale + self.held > 0 {
            Exit::Pending
        } else {
            Exit::Done
        };
        Ran {
            exit,
            results: self.results,
            daemon_reload: self.daemon_reload,
        }
    }
}

/// Leftover processes and unreadable state deserve a look; the other
/// skips are ordinary decisions.
pub(super) fn skip_level(skip: &Skip) -> log::Level {
    match skip {
        Skip::Leftovers { .. } | Skip::Unreadable(_) => log::Level::Warn,
        _ => log::Level::Info,
    }
}

/// Records a unit that live state says not to restart.
pub(super) fn record_skip(tally: &mut Tally, unit: &str, s: &Skip) {
    let kind = if s.is_error() { Kind::Failed } else { Kind::Skipped };
    if s.leaves_stale_code() {
        tally.left_stale += 1;
    }
    let detail = format!("not restarting: {s}");
    tally.record_logged(skip_level(s), unit, unit, kind, s.code(), detail);
}
