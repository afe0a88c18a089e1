//! The one connection to the system bus of a run, made where the command
//! line builds the run (`crate::cli::dispatch`) and handed down: every
//! step of the run (the dry run's live check, the restarts, the marks,
//! the hook's start of its finish, the retry timer) uses it, and it is
//! opened only when the first of them needs it, so a run that never asks
//! systemd never touches the bus and a bus that is down fails only the
//! step that needed it.

use super::dbus::Dbus;
use anyhow::Result;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A connection opened on first use, with one timeout for every method
/// call. Clones share it.
#[derive(Clone)]
pub struct Bus(Arc<Lazy>);

struct Lazy {
    timeout: Duration,
    conn: OnceLock<Dbus>,
}

impl Bus {
    /// How long a run's method call may take: a job wait, a reload on a
    /// busy PID 1.
    pub const RUN_TIMEOUT: Duration = super::dbus::METHOD_TIMEOUT;

    /// A connection whose calls each wait at most `timeout`: hooks, which
    /// a package manager waits for, and reports use a short one.
    pub(crate) fn with_timeout(timeout: Duration) -> Bus {
        Bus(Arc::new(Lazy {
            timeout,
            conn: OnceLock::new(),
        }))
    }

    /// The connection, opened now if this is the first use. A failure is
    /// not kept: the next use tries again (the bus may have come up).
    pub fn get(&self) -> Result<&Dbus> {
        if let Some(c) = self.0.conn.get() {
            return Ok(c);
        }
        let c = Dbus::connect_with_timeout(self.0.timeout)?;
        Ok(self.0.conn.get_or_init(|| c))
    }
}

impl Default for Bus {
    fn default() -> Self {
        Bus::with_timeout(Bus::RUN_TIMEOUT)
    }
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let open = self.0.conn.get().is_some();
        write!(f, "Bus(timeout {:?}, open {open})", self.0.timeout)
    }
}
