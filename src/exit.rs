//! How a run ended, as every layer reports it. Only `main.rs` turns an
//! [`Outcome`] into a process exit status; the numbers are documented in
//! the man page and the README.

/// The result of one command, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Outcome {
    /// Nothing to do, or everything planned was done.
    #[default]
    Done,
    /// Restarts are needed but were not done (status, dry run).
    Pending,
    /// At least one restart failed or left stale processes behind.
    RestartFailed,
    /// A restart failed or did not settle, and the health gate held the
    /// restarts of every later wave (docs/restarts.md).
    Held,
    /// A runtime error.
    Error,
}

impl Outcome {
    /// The outcome of two steps of one run: an error wins over a failed
    /// restart, which wins over pending work.
    pub(crate) fn worst(self, other: Outcome) -> Outcome {
        self.max(other)
    }
}

#[cfg(test)]
mod tests {
    use super::Outcome;

    #[test]
    fn the_worse_outcome_wins() {
        assert_eq!(Outcome::Done.worst(Outcome::Pending), Outcome::Pending);
        assert_eq!(Outcome::Error.worst(Outcome::RestartFailed), Outcome::Error);
        assert_eq!(Outcome::RestartFailed.worst(Outcome::Done), Outcome::RestartFailed);
    }
}
