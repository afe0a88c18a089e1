//! What one run does, given its mode and options and whether anything
//! runs stale code: which report it writes and when, and how it acts.
//! Pure, and table-tested; `run.rs` carries the steps out.

/// What the run is for; decides scan scope and wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Status,
    DryRun,
    Restart,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Status => "status",
            Mode::DryRun => "dry-run",
            Mode::Restart => "restart",
        }
    }
}

/// What a restart run does with systemd's `needs-restart` unit markers
/// (docs/deferred.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Marks {
    /// Restart now; marks are left alone.
    #[default]
    Ignore,
    /// Restart nothing; mark what a restart run would restart now
    /// (`--defer`, or a hook with automatic restarts off).
    Set,
    /// Restart only the marked units that are still stale, and clear
    /// their marks (`--marked`, the maintenance window).
    Restart,
}

impl Marks {
    /// The report's `mode` for a restart run with these marks.
    pub(crate) fn mode_name(self, mode: Mode) -> &'static str {
        match (mode, self) {
            (Mode::Restart, Marks::Set) => "defer",
            (Mode::Restart, Marks::Restart) => "marked",
            _ => mode.name(),
        }
    }
}

/// What the admin (or the hook) asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ask {
    pub json: bool,
    pub batch: bool,
    /// Print only when something runs stale code (clr-service-restart).
    pub quiet: bool,
    pub security_only: bool,
    pub canary: bool,
    pub marks: Marks,
}

/// What the plan found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Found {
    /// A unit or PID 1 runs stale code.
    pub stale: bool,
    /// A restart (or PID 1's re-exec) is planned.
    pub pending: bool,
}

/// Which report, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    Nothing,
    /// needrestart's batch lines instead of the report.
    Batch,
    /// The report before acting, so a reader sees the plan first.
    Before {
        json: bool,
    },
    /// The JSON after acting: it carries the restarts' results.
    JsonAfter,
}

/// How the run acts on the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Nothing,
    /// Restart what the plan allows (a dry run: say what it would do).
    Restart {
        dry_run: bool,
    },
    /// `restart = security`: the security fixes' units now, mark the rest.
    SecurityFirst {
        dry_run: bool,
    },
    /// `--defer`: mark, restart nothing.
    Defer,
    /// `--canary N --defer`: the canary's units now, mark what it held.
    CanaryThenMark,
    /// `--marked`: restart the marked units still stale, clear marks.
    RestartMarked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Steps {
    /// `status` shows which units carry the mark.
    pub read_marks: bool,
    pub report: Report,
    pub act: Act,
}

/// The steps of a run.
pub fn steps(mode: Mode, ask: &Ask, found: &Found) -> Steps {
    let show = !ask.quiet || found.stale;
    let json_after = ask.json && mode == Mode::Restart;
    let report = match () {
        _ if ask.batch => Report::Batch,
        _ if !show => Report::Nothing,
        _ if json_after => Report::JsonAfter,
        _ => Report::Before { json: ask.json },
    };
    // A window run goes on without anything stale: marks left on units no
    // longer stale are cleared, so `systemctl --marked` skips them.
    let marked_run = mode == Mode::Restart && ask.marks == Marks::Restart;
    let acts = (found.pending || marked_run) && matches!(mode, Mode::Restart | Mode::DryRun);
    let dry_run = mode == Mode::DryRun;
    let act = match (acts, mode, ask.marks) {
        (false, ..) => Act::Nothing,
        (true, Mode::Restart, Marks::Set) if ask.canary => Act::CanaryThenMark,
        (true, Mode::Restart, Marks::Set) => Act::Defer,
        (true, Mode::Restart, Marks::Restart) => Act::RestartMarked,
        _ if ask.security_only => Act::SecurityFirst { dry_run },
        _ => Act::Restart { dry_run },
    };
    Steps {
        read_marks: mode == Mode::Status && !ask.batch,
        report,
        act,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALE: Found = Found {
        stale: true,
        pending: true,
    };
    const STALE_NOTHING_PLANNED: Found = Found {
        stale: true,
        pending: false,
    };
    const CLEAN: Found = Found {
        stale: false,
        pending: false,
    };

    #[test]
    fn each_mode_and_option_has_its_steps() {
        use Act::{CanaryThenMark, Defer, Nothing, RestartMarked, SecurityFirst};
        use Mode::*;
        let plain = Ask::default();
        let json = Ask { json: true, ..plain };
        let batch = Ask { batch: true, ..plain };
        let quiet = Ask { quiet: true, ..plain };
        let sec = Ask {
            security_only: true,
            ..plain
        };
        let defer = Ask {
            marks: Marks::Set,
            ..plain
        };
        let canary_defer = Ask { canary: true, ..defer };
        let marked = Ask {
            marks: Marks::Restart,
            ..plain
        };
        let before = Report::Before { json: false };
        #[rustfmt::skip]
        let table: &[(Mode, Ask, Found, bool, Report, Act)] = &[
            (Status, plain, STALE, true, before, Nothing),
            (Status, batch, STALE, false, Report::Batch, Nothing),
            (Status, batch, CLEAN, false, Report::Batch, Nothing),
            (Status, json, STALE, true, Report::Before { json: true }, Nothing),
            (DryRun, plain, STALE, false, before, Act::Restart { dry_run: true }),
            (DryRun, json, STALE, false, Report::Before { json: true }, Act::Restart { dry_run: true }),
            (DryRun, sec, STALE, false, before, SecurityFirst { dry_run: true }),
            // Marks are a restart run's business only.
            (DryRun, defer, STALE, false, before, Act::Restart { dry_run: true }),
            (Restart, plain, STALE, false, before, Act::Restart { dry_run: false }),
            (Restart, json, STALE, false, Report::JsonAfter, Act::Restart { dry_run: false }),
            (Restart, plain, STALE_NOTHING_PLANNED, false, before, Nothing),
            (Restart, quiet, CLEAN, false, Report::Nothing, Nothing),
            (Restart, quiet, STALE, false, before, Act::Restart { dry_run: false }),
            (Restart, sec, STALE, false, before, SecurityFirst { dry_run: false }),
            (Restart, defer, STALE, false, before, Defer),
            (Restart, canary_defer, STALE, false, before, CanaryThenMark),
            (Restart, marked, STALE, false, before, RestartMarked),
            // The window clears stale marks even when nothing is stale.
            (Restart, marked, CLEAN, false, before, RestartMarked),
            (Restart, defer, CLEAN, false, before, Nothing),
        ];
        for (i, &(mode, ask, found, read_marks, report, act)) in table.iter().enumerate() {
            let want = Steps {
                read_marks,
                report,
                act,
            };
            assert_eq!(steps(mode, &ask, &found), want, "row {i}: {mode:?} {ask:?} {found:?}");
        }
    }

    #[test]
    fn a_restart_run_names_its_marks() {
        assert_eq!(Marks::Set.mode_name(Mode::Restart), "defer");
        assert_eq!(Marks::Restart.mode_name(Mode::Restart), "marked");
        assert_eq!(Marks::Set.mode_name(Mode::DryRun), "dry-run");
        assert_eq!(Marks::Ignore.mode_name(Mode::Status), "status");
    }
}
