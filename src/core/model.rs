//! Plain data the layers hand each other: what a scan found, the cgroup
//! layout it found it in, and what a restart did. The readers in
//! `crate::system` fill these in; the plan and the report only read them.

use crate::core::unit_name::Owner;
use serde::Serialize;
use std::sync::Arc;

/// Why a file counts as stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Staleness {
    /// The path now holds a different inode on the same filesystem.
    Replaced,
    /// The kernel marks the file unlinked and nothing contradicts it.
    Deleted,
    /// A script or module whose change time is after the process started
    /// (it was read then; nothing tells which inode it read).
    Changed,
}

/// How a process uses a stale file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// Mapped into memory (the executable, a library).
    #[default]
    Map,
    /// Held open through a file descriptor.
    Fd,
    /// The script the interpreter was started with.
    Script,
    /// A module the script loads, by the name it was imported under.
    Import(Arc<str>),
}

impl Via {
    /// The JSON `via` value; `None` for a mapping (the key is left out).
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Via::Map => None,
            Via::Fd => Some("fd"),
            Via::Script => Some("script"),
            Via::Import(_) => Some("import"),
        }
    }
}

/// The finding in words, for everything but a mapping, e.g.
/// `imports pydhelper: /usr/lib/python3/dist-packages/pydhelper.py (in this transaction)`.
/// `in_transaction`: the plan kept the file because the transaction
/// changed it.
pub fn reason(via: &Via, why: Staleness, path: &str, in_transaction: bool) -> Option<String> {
    let how = if in_transaction {
        " (in this transaction)"
    } else {
        match why {
            Staleness::Replaced => " replaced",
            Staleness::Deleted => " deleted",
            Staleness::Changed => " changed after the process started",
        }
    };
    Some(match via {
        Via::Map => return None,
        Via::Fd if why == Staleness::Deleted => format!("holds {path} (deleted) open"),
        Via::Fd if in_transaction => format!("holds {path} open{how}"),
        Via::Fd => format!("holds {path} open, replaced since"),
        Via::Script => format!("script {path}{how}"),
        Via::Import(m) => format!("imports {m}: {path}{how}"),
    })
}

/// One stale file a process still runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct StaleFile {
    /// The path, without the kernel's ` (deleted)` marker. Shared: a
    /// library mapped by a thousand processes is one allocation.
    pub path: Arc<str>,
    pub why: Staleness,
    /// True when this is the process's executable.
    pub exe: bool,
    /// How the process uses it: mapped, held open, its script, a module.
    pub via: Via,
    /// It lies where users control files: reported, never a reason to
    /// restart ([`crate::core::places`]).
    pub user: bool,
    /// Counted for the file of the transaction with the same directory and
    /// soname stem (a library whose name carries its version, replaced by
    /// another version), when the old version's file list is unknown.
    pub sibling: Option<Arc<str>>,
    /// The process lives in another mount namespace, and its root holds
    /// another file at this path than the host does (a chroot jail's or a
    /// container's own copy): a transaction on the host did not change it.
    pub other_root: bool,
}

impl StaleFile {
    pub fn new(path: Arc<str>, why: Staleness, via: Via) -> Self {
        Self {
            path,
            why,
            exe: false,
            via,
            user: false,
            sibling: None,
            other_root: false,
        }
    }

    /// The finding in words, when it is more than a mapped file (see
    /// [`reason`]) or was counted for its sibling.
    pub(crate) fn reason_text(&self, in_transaction: bool) -> Option<String> {
        match &self.sibling {
            Some(s) => Some(format!(
                "{} deleted; the transaction changed {s}, of the same directory and soname",
                self.path
            )),
            None => reason(&self.via, self.why, &self.path, in_transaction),
        }
    }
}

/// A process with at least one stale file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleProcess {
    pub pid: u32,
    pub comm: String,
    #[serde(skip)]
    pub owner: Owner,
    pub files: Vec<StaleFile>,
}

/// Which processes to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The system slice and PID 1: all a restart needs.
    SystemUnits,
    /// Every process, for the full report.
    Everything,
}

/// Everything a scan learned.
#[derive(Debug, Default)]
pub struct Scan {
    pub layout: Option<Layout>,
    /// Every system unit that has processes, stale or not.
    pub units: Vec<String>,
    pub stale: Vec<StaleProcess>,
    /// Non-fatal problems, such as permission errors, one line each.
    pub problems: Vec<String>,
    pub processes_scanned: usize,
}

/// The cgroup layouts systemd can run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// Pure cgroup v2 at `/sys/fs/cgroup`.
    Unified,
    /// v1 with systemd's own `name=systemd` hierarchy.
    Legacy,
    /// v1 controllers plus a v2 tree at `/sys/fs/cgroup/unified`.
    Hybrid,
}

/// Why a restart run reloaded systemd's unit files before the restarts:
/// the `daemon_reload` object of the JSON report (docs/json.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaemonReload {
    /// The first unit's cause, e.g. `unit file changed in this
    /// transaction: /usr/lib/systemd/system/x.service`.
    pub reason: String,
    /// False when `Manager.Reload` failed; the units restarted anyway.
    pub reloaded: bool,
}

/// What happened to one unit, or to PID 1 (as `init.scope`), in a restart
/// run: the `restarts` entries of the JSON report (docs/json.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct UnitResult {
    /// The text of the log line that reported it, without the unit.
    pub detail: String,
    /// `restarted` (done and verified clean), `failed`, `skipped` or
    /// `held` (by the health gate, docs/restarts.md).
    pub outcome: &'static str,
    /// What exactly: a skip code from live state, or how the job ended.
    pub result: &'static str,
    pub unit: String,
    /// The restart wave it was in, from 1; absent for a unit never
    /// planned into one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wave: Option<usize>,
    /// `settled` or `failed` when it was watched for the settle time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settle: Option<&'static str>,
    /// Why the health gate held it, e.g. `earlier restart of x.service failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
    /// The failed run's `InvocationID`: `journalctl
    /// _SYSTEMD_INVOCATION_ID=ID` shows its journal lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
}
