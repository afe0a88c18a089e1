//! The boundary to the service manager: one thin trait pair in front of
//! systemd's D-Bus API ([`dbus`]), with a recording fake for tests
//! ([`fake`]).
//!
//! The split is deliberate: [`UnitQuery`] only reads, [`ServiceManager`]
//! adds everything that changes state. A dry run is handed a
//! `&dyn UnitQuery`, so the compiler proves it cannot restart anything.

pub mod bus;
pub mod dbus;
#[cfg(test)]
pub mod fake;

pub use bus::Bus;

use crate::system::sysroot::SysRoot;
use anyhow::Result;
use std::os::unix::fs::MetadataExt;
use std::time::Instant;

/// The live properties of one loaded unit that the restart rules need.
/// Service-only properties are `None`/0/empty for other unit types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitInfo {
    pub active_state: String,
    pub sub_state: String,
    pub refuse_manual_stop: bool,
    pub can_start: bool,
    pub can_stop: bool,
    /// Units that can activate this one, e.g. `foo.socket`.
    pub triggered_by: Vec<String>,
    /// `Service.Type`: simple, exec, forking, oneshot, notify, …
    pub service_type: Option<String>,
    /// `KillMode`: control-group, mixed, process or none.
    pub kill_mode: Option<String>,
    /// `Service.MainPID`; 0 when there is none.
    pub main_pid: u32,
    /// `ControlGroup`, e.g. `/system.slice/foo.service`; empty when none.
    pub control_group: String,
    /// Units a restart of this one restarts or stops too, each once,
    /// with the first tie found.
    pub dependants: Vec<Dependant>,
    /// `NeedDaemonReload`: its unit file changed on disk since systemd
    /// loaded it, so a restart now would run the old definition.
    pub need_daemon_reload: bool,
    /// `FragmentPath`: the unit file systemd loaded it from; empty for a
    /// transient or generated-only unit.
    pub fragment_path: String,
    /// `DropInPaths`: the drop-ins (`x.service.d/*.conf`) it loaded.
    pub drop_in_paths: Vec<String>,
    /// `Markers` (systemd ≥ 248), e.g. `needs-restart`: set by a deferred
    /// run, restarted by `systemctl reload-or-restart --marked` or
    /// `restart-stale --marked`. Empty on an older systemd.
    pub markers: Vec<String>,
    /// `After=`: the units it is ordered after (the restart waves).
    pub after: Vec<String>,
    /// `Service.NRestarts` (systemd ≥ 235): automatic restarts since the
    /// last manual start; 0 for other unit types.
    pub n_restarts: u32,
    /// `StartLimitBurst`; 0 when unknown.
    pub start_limit_burst: u32,
    /// `StartLimitIntervalUSec`; 0 when unknown or turned off.
    pub start_limit_interval_usec: u64,
    /// `Service.ExecMainStartTimestamp`: when its main process last
    /// started, µs since the epoch; 0 when never or unknown.
    pub exec_main_start_usec: u64,
    /// `InvocationID` in hex, which `journalctl _SYSTEMD_INVOCATION_ID=`
    /// takes; empty when it has none.
    pub invocation_id: String,
}

/// How a restart of a unit reaches one of its dependants
/// (systemd.unit(5); `src/core/unit-dependency-atom.c` maps each to the
/// restart or stop it propagates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tie {
    /// The dependant is `PartOf=` the unit (the unit's `ConsistsOf`).
    PartOf,
    /// The dependant is `BindsTo=` the unit (`BoundBy`).
    BindsTo,
    /// The dependant is `Requires=` the unit (`RequiredBy`).
    Requires,
    /// The unit's `PropagatesStopTo` (systemd ≥ 249): set by
    /// `PropagatesStopTo=` in the unit or by `StopPropagatedFrom=` in the
    /// dependant; systemd keeps both directions in the unit's list.
    PropagatesStopTo,
}

impl Tie {
    /// The setting as a unit file spells it.
    pub fn setting(self) -> &'static str {
        match self {
            Tie::PartOf => "PartOf=",
            Tie::BindsTo => "BindsTo=",
            Tie::Requires => "Requires=",
            Tie::PropagatesStopTo => "PropagatesStopTo=",
        }
    }
}

/// A unit that a restart of another one restarts or stops too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependant {
    pub unit: String,
    pub tie: Tie,
}

/// The marker a deferred run sets: systemd's own, which `systemctl
/// reload-or-restart --marked` acts on (org.freedesktop.systemd1(5),
/// `Markers`).
pub const NEEDS_RESTART: &str = "needs-restart";

impl UnitInfo {
    /// Whether a deferred run (or anyone else) marked it `needs-restart`.
    pub fn marked(&self) -> bool {
        self.markers.iter().any(|m| m == NEEDS_RESTART)
    }

    /// `inactive` or `failed`: systemd carries no restart or stop over to
    /// such a unit, nor through it (a try-restart of it is a no-op).
    pub fn stopped(&self) -> bool {
        matches!(self.active_state.as_str(), "inactive" | "failed")
    }

    /// `active (running)`: the only state in which a restart is wanted.
    pub fn running(&self) -> bool {
        self.active_state == "active" && self.sub_state == "running"
    }
}

/// A `JobRemoved` signal: job `job` for `unit` ended with `result` (one
/// of done, canceled, timeout, failed, dependency, skipped; see
/// org.freedesktop.systemd1(5)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRemoved {
    pub job: String,
    pub unit: String,
    pub result: String,
}

/// The answer to a restart request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// A job was queued; its object path.
    Job(String),
    /// systemd refused, e.g. `RefuseManualStop=yes` ("may be requested by
    /// dependency only"). A skip, not a crash.
    Refused(String),
}

/// The answer to setting a unit's `Markers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marking {
    Set,
    /// This systemd has no `Markers` (older than 248): nothing can be
    /// marked on this host; the reason as systemd said it.
    Unsupported(String),
}

/// Read-only questions to the service manager: all a dry run may ask.
pub trait UnitQuery {
    /// The unit's live properties; `None` if systemd has no such unit loaded.
    fn unit(&self, name: &str) -> Result<Option<UnitInfo>>;

    /// Whether `socket` has `Accept=yes` (spawns one service per connection).
    fn socket_accepts(&self, socket: &str) -> Result<bool>;
}

/// Everything that changes state in the service manager, on top of the
/// read-only questions.
pub trait ServiceManager: UnitQuery {
    /// Starts listening for `JobRemoved`, then asks systemd to send it
    /// (`Manager.Subscribe`). Call before any job is enqueued, so no
    /// signal can slip past; a later call on the same connection (the
    /// next restart wave) keeps the first subscription.
    fn subscribe(&self) -> Result<()>;

    /// `Manager.TryRestartUnit(unit, "replace")`: restarts the unit if it
    /// runs, and never starts a unit that stopped meanwhile.
    fn enqueue_restart(&self, unit: &str) -> Result<Enqueued>;

    /// The next `JobRemoved` signal. `Ok(None)` once `deadline` passes;
    /// `Err` when the bus connection is gone.
    fn next_job_removed(&self, deadline: Instant) -> Result<Option<JobRemoved>>;

    /// `Manager.Reload` (what `systemctl daemon-reload` does); returns once
    /// systemd has reloaded its unit files.
    fn reload(&self) -> Result<()>;

    /// `Manager.Reexecute`, then waits until systemd answers on the bus
    /// again, at most until `deadline`.
    fn reexecute(&self, deadline: Instant) -> Result<()>;

    /// `Manager.SetUnitProperties(unit, runtime=true, [("Markers", changes)])`:
    /// each change is `+marker` (add) or `-marker` (remove); systemd
    /// parses the prefixes itself and keeps the other markers. Runtime
    /// only: markers are live state, gone at reboot.
    fn set_markers(&self, unit: &str, changes: &[String]) -> Result<Marking>;

    /// Runs `argv` as a transient `Type=oneshot` service `name`
    /// (`Manager.StartTransientUnit`), without waiting for it. A no-op
    /// returning `Ok` when a unit of that name is already active,
    /// activating or deactivating, which makes "once per transaction" work
    /// for callers that fire several times.
    fn start_transient_service(&self, name: &str, argv: &[String], description: &str) -> Result<()>;

    /// Arms a transient timer `timer` (`x.timer`) that starts the transient
    /// `Type=oneshot` service of the same stem (`x.service`, running
    /// `argv`) once, `delay` from now (`OnActiveSec=`): both made by one
    /// `Manager.StartTransientUnit`, the service as its auxiliary unit, as
    /// `systemd-run --on-active=` does. A no-op returning `Ok` when a
    /// unit of that name is already loaded.
    fn start_transient_timer(
        &self,
        timer: &str,
        delay: std::time::Duration,
        argv: &[String],
        description: &str,
    ) -> Result<()>;
}

/// `Ok` when systemd runs this system and we are not in a chroot;
/// otherwise the reason we should leave services alone.
///
/// systemd creates `/run/systemd/system` at boot (sd_booted(3)). Inside a
/// chroot that shares the host's `/run` and `/proc` that directory
/// exists too, so we also compare our root with PID 1's, as
/// systemd-detect-virt `--chroot` does.
pub fn running(root: &SysRoot) -> Result<(), String> {
    if !root.path("/run/systemd/system").is_dir() {
        return Err("no systemd running".into());
    }
    let ours = std::fs::metadata(root.root()).map_err(|e| format!("cannot stat {}: {e}", root.root().display()))?;
    let pid1_path = root.path("/proc/1/root");
    let pid1 = std::fs::metadata(&pid1_path)
        .map_err(|e| format!("cannot tell whether this is a chroot ({}: {e})", pid1_path.display()))?;
    if (ours.dev(), ours.ino()) != (pid1.dev(), pid1.ino()) {
        return Err("running in a chroot".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_systemd_and_the_same_root_as_pid1() {
        let (tmp, root) = SysRoot::scratch();
        assert_eq!(running(&root), Err("no systemd running".into()));
        std::fs::create_dir_all(root.path("/run/systemd/system")).unwrap();
        assert!(running(&root).unwrap_err().contains("cannot tell"));
        std::fs::create_dir_all(root.path("/proc/1")).unwrap();
        std::fs::create_dir_all(root.path("/elsewhere")).unwrap();
        std::os::unix::fs::symlink(root.path("/elsewhere"), root.path("/proc/1/root")).unwrap();
        assert_eq!(running(&root), Err("running in a chroot".into()));
        std::fs::remove_file(root.path("/proc/1/root")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), root.path("/proc/1/root")).unwrap();
        assert_eq!(running(&root), Ok(()));
    }
}
