//! The zbus implementation of [`ServiceManager`], on the system bus.
//!
//! zbus 5's blocking API with our own small `#[zbus::proxy]` definitions:
//! we make a handful of calls and wait for one signal, so an async runtime
//! (or zbus_systemd, which only has async proxies) would not pay for
//! itself. zbus 6 dropped the blocking API, hence the pin to 5.x.
//!
//! Interfaces: org.freedesktop.systemd1(5). Properties are read uncached,
//! one `Get` each, so no `PropertiesChanged` match rules are installed.

use super::{Dependant, Enqueued, JobRemoved, Marking, ServiceManager, Tie, UnitInfo, UnitQuery};
use anyhow::{anyhow, bail, Context, Result};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use zbus::blocking::{fdo::DBusProxy, Connection, MessageIterator};
use zbus::proxy::CacheProperties;
use zbus::zvariant::{OwnedObjectPath, Value};

const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER_IFACE: &str = "org.freedesktop.systemd1.Manager";

/// How long one method call may take. Restart calls only queue a job and
/// return at once; this guards against a hung systemd, not slow units.
pub const METHOD_TIMEOUT: Duration = Duration::from_secs(60);

/// How many `JobRemoved` signals zbus may buffer before our reader thread
/// drains them; a restart can trigger jobs for many dependencies.
const SIGNAL_QUEUE: usize = 4096;

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1",
    gen_async = false
)]
trait Manager {
    fn get_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    fn try_restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn subscribe(&self) -> zbus::Result<()>;
    fn reexecute(&self) -> zbus::Result<()>;
    fn reload(&self) -> zbus::Result<()>;
    fn reset_failed_unit(&self, name: &str) -> zbus::Result<()>;
    fn set_unit_properties(&self, name: &str, runtime: bool, properties: &[(&str, Value<'_>)]) -> zbus::Result<()>;
    fn start_transient_unit(
        &self,
        name: &str,
        mode: &str,
        properties: &[(&str, Value<'_>)],
        aux: &[(&str, &[(&str, Value<'_>)])],
    ) -> zbus::Result<OwnedObjectPath>;
    #[zbus(property, name = "Version")]
    fn version(&self) -> zbus::Result<String>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1",
    gen_async = false
)]
trait Unit {
    #[zbus(property, name = "ActiveState")]
    fn active_state(&self) -> zbus::Result<String>;
    #[zbus(property, name = "SubState")]
    fn sub_state(&self) -> zbus::Result<String>;
    #[zbus(property, name = "RefuseManualStop")]
    fn refuse_manual_stop(&self) -> zbus::Result<bool>;
    #[zbus(property, name = "CanStart")]
    fn can_start(&self) -> zbus::Result<bool>;
    #[zbus(property, name = "CanStop")]
    fn can_stop(&self) -> zbus::Result<bool>;
    #[zbus(property, name = "TriggeredBy")]
    fn triggered_by(&self) -> zbus::Result<Vec<String>>;
    #[zbus(property, name = "ConsistsOf")]
    fn consists_of(&self) -> zbus::Result<Vec<String>>;
    #[zbus(property, name = "BoundBy")]
    fn bound_by(&self) -> zbus::Result<Vec<String>>;
    #[zbus(property, name = "RequiredBy")]
    fn required_by(&self) -> zbus::Result<Vec<String>>;
    #[zbus(property, name = "PropagatesStopTo")]
    fn propagates_stop_to(&self) -> zbus::Result<Vec<String>>;
    #[zbus(property, name = "NeedDaemonReload")]
    fn need_daemon_reload(&self) -> zbus::Result<bool>;
    #[zbus(property, name = "FragmentPath")]
    fn fragment_path(&self) -> zbus::Result<String>;
    #[zbus(property, name = "DropInPaths")]
    fn drop_in_paths(&self) -> zbus::Result<Vec<String>>;
    #[zbus(property, name = "Markers")]
    fn markers(&self) -> zbus::Result<Vec<String>>;
    #[zbus(property, name = "After")]
    fn after(&self) -> zbus::Result<Vec<String>>;
    #[zbus(property, name = "StartLimitBurst")]
    fn start_limit_burst(&self) -> zbus::Result<u32>;
    #[zbus(property, name = "StartLimitIntervalUSec")]
    fn start_limit_interval_usec(&self) -> zbus::Result<u64>;
    #[zbus(property, name = "InvocationID")]
    fn invocation_id(&self) -> zbus::Result<Vec<u8>>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Service",
    default_service = "org.freedesktop.systemd1",
    gen_async = false
)]
trait Service {
    #[zbus(property, name = "Type")]
    fn service_type(&self) -> zbus::Result<String>;
    #[zbus(property, name = "KillMode")]
    fn kill_mode(&self) -> zbus::Result<String>;
    #[zbus(property, name = "MainPID")]
    fn main_pid(&self) -> zbus::Result<u32>;
    #[zbus(property, name = "ControlGroup")]
    fn control_group(&self) -> zbus::Result<String>;
    #[zbus(property, name = "NRestarts")]
    fn n_restarts(&self) -> zbus::Result<u32>;
    #[zbus(property, name = "ExecMainStartTimestamp")]
    fn exec_main_start_timestamp(&self) -> zbus::Result<u64>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Socket",
    default_service = "org.freedesktop.systemd1",
    gen_async = false
)]
trait Socket {
    #[zbus(property, name = "Accept")]
    fn accept(&self) -> zbus::Result<bool>;
}

/// The D-Bus error name of a failed call, if it was a method error.
fn error_name(e: &zbus::Error) -> Option<String> {
    use zbus::DBusError;
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.to_string()),
        zbus::Error::FDO(f) => Some(f.name().to_string()),
        _ => None,
    }
}

/// Whether a failed `SetUnitProperties` means this systemd has no
/// `Markers` at all. systemd answers an unknown property with
/// `PropertyReadOnly` ("Cannot set property %s, or unknown property.",
/// `bus_unit_set_properties` in src/core/dbus-unit.c); `InvalidArgs` and
/// `UnknownProperty` are what other bus peers and older versions use for
/// the same.
fn markers_unsupported(name: Option<&str>) -> bool {
    matches!(
        name,
        Some(
            "org.freedesktop.DBus.Error.PropertyReadOnly"
                | "org.freedesktop.DBus.Error.InvalidArgs"
                | "org.freedesktop.DBus.Error.UnknownProperty"
        )
    )
}

/// A property an older systemd does not have reads as empty: sd-bus
/// answers `UnknownProperty` for it (`InvalidArgs` from other peers and
/// older versions). Any other error still is one.
fn newer_property<T: Default>(read: zbus::Result<T>) -> zbus::Result<T> {
    match read {
        Err(e)
            if matches!(
                error_name(&e).as_deref(),
                Some("org.freedesktop.DBus.Error.UnknownProperty" | "org.freedesktop.DBus.Error.InvalidArgs")
            ) =>
        {
            Ok(T::default())
        }
        r => r,
    }
}

/// An invocation ID as journalctl's `_SYSTEMD_INVOCATION_ID=` spells
/// it: 32 lowercase hex digits; empty when the unit has none.
fn hex(id: &[u8]) -> String {
    if id.iter().all(|&b| b == 0) {
        return String::new();
    }
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// systemd on the system bus.
pub struct Dbus {
    conn: Connection,
    jobs: Mutex<Option<Receiver<JobRemoved>>>,
}

impl Dbus {
    /// Connects to the system bus, with `timeout` for each method call
    /// ([`METHOD_TIMEOUT`] for a run; hooks, which a package manager waits
    /// for, use a short one); only [`super::Bus`] calls this. systemd's
    /// private socket is not tried: a peer-to-peer connection needs zbus's
    /// `p2p` feature, and every systemd host we target runs a bus
    /// (dbus-daemon or dbus-broker). zbus bounds only the calls; the connection handshake
    /// with a bus that accepts and never answers is bounded by the hook's
    /// watchdog (`crate::transaction::guard`).
    pub(crate) fn connect_with_timeout(timeout: Duration) -> Result<Self> {
        let conn = zbus::blocking::connection::Builder::system()
            .and_then(|b| b.method_timeout(timeout).build())
            .context("failed to connect to the D-Bus system bus (is dbus running?)")?;
        Ok(Self {
            conn,
            jobs: Mutex::new(None),
        })
    }

    fn manager(&self) -> Result<ManagerProxy<'_>> {
        Ok(ManagerProxy::builder(&self.conn)
            .cache_properties(CacheProperties::No)
            .build()?)
    }

    /// The unit's object path; `None` when systemd has not loaded it.
    fn unit_path(&self, name: &str) -> Result<Option<OwnedObjectPath>> {
        match self.manager()?.get_unit(name) {
            Ok(p) => Ok(Some(p)),
            Err(e) if error_name(&e).as_deref() == Some("org.freedesktop.systemd1.NoSuchUnit") => Ok(None),
            Err(e) => Err(e).with_context(|| format!("failed to look up {name}")),
        }
    }

    fn read_unit(&self, name: &str, path: OwnedObjectPath) -> zbus::Result<UnitInfo> {
        let unit = UnitProxy::builder(&self.conn)
            .path(path.clone())?
            .cache_properties(CacheProperties::No)
            .build()?;
        let mut info = UnitInfo {
            active_state: unit.active_state()?,
            sub_state: unit.sub_state()?,
            refuse_manual_stop: unit.refuse_manual_stop()?,
            can_start: unit.can_start()?,
            can_stop: unit.can_stop()?,
            triggered_by: unit.triggered_by()?,
            need_daemon_reload: unit.need_daemon_reload()?,
            fragment_path: unit.fragment_path()?,
            drop_in_paths: unit.drop_in_paths()?,
            // systemd < 248 has no such property; no markers then, and
            // the unit's other facts still count.
            markers: unit.markers().unwrap_or_default(),
            after: unit.after()?,
            // Older systemd spelled these StartLimitInterval/Burst only
            // on the unit file side; no limit is known then.
            start_limit_burst: newer_property(unit.start_limit_burst())?,
            start_limit_interval_usec: newer_property(unit.start_limit_interval_usec())?,
            invocation_id: hex(&newer_property(unit.invocation_id())?),
            ..UnitInfo::default()
        };
        let ties = [
            (Tie::PartOf, unit.consists_of()?),
            (Tie::BindsTo, unit.bound_by()?),
            (Tie::Requires, unit.required_by()?),
            (Tie::PropagatesStopTo, newer_property(unit.propagates_stop_to())?),
        ];
        for (tie, units) in ties {
            for d in units {
                if !info.dependants.iter().any(|x| x.unit == d) {
                    info.dependants.push(Dependant { unit: d, tie });
                }
            }
        }
        if name.ends_with(".service") {
            let svc = ServiceProxy::builder(&self.conn)
                .path(path)?
                .cache_properties(CacheProperties::No)
                .build()?;
            info.service_type = Some(svc.service_type()?);
            info.kill_mode = Some(svc.kill_mode()?);
            info.main_pid = svc.main_pid()?;
            info.control_group = svc.control_group()?;
            // NRestarts is systemd ≥ 235.
            info.n_restarts = newer_property(svc.n_restarts())?;
            info.exec_main_start_usec = svc.exec_main_start_timestamp()?;
        }
        Ok(info)
    }

    /// Polls until `org.freedesktop.systemd1` has an owner other than
    /// `before` and answers a property read.
    fn wait_for_systemd(&self, before: Option<String>, deadline: Instant) -> Result<()> {
        let dbus = DBusProxy::new(&self.conn)?;
        loop {
            let owner = dbus.get_name_owner(SYSTEMD.try_into()?).ok().map(|o| o.to_string());
            if owner.is_some() && owner != before && self.manager()?.version().is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("systemd did not come back on the bus after re-executing");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl UnitQuery for Dbus {
    fn unit(&self, name: &str) -> Result<Option<UnitInfo>> {
        let Some(path) = self.unit_path(name)? else {
            return Ok(None);
        };
        match self.read_unit(name, path) {
            Ok(info) => Ok(Some(info)),
            // Unloaded between GetUnit and the property reads.
            Err(e) if error_name(&e).as_deref() == Some("org.freedesktop.DBus.Error.UnknownObject") => Ok(None),
            Err(e) => Err(e).with_context(|| format!("failed to read the properties of {name}")),
        }
    }

    fn socket_accepts(&self, socket: &str) -> Result<bool> {
        let Some(path) = self.unit_path(socket)? else {
            return Ok(false);
        };
        let proxy = SocketProxy::builder(&self.conn)
            .path(path)?
            .cache_properties(CacheProperties::No)
            .build()?;
        proxy
            .accept()
            .with_context(|| format!("failed to read Accept of {socket}"))
    }
}

impl ServiceManager for Dbus {
    fn subscribe(&self) -> Result<()> {
        // systemd refuses a second Subscribe from one client
        // (AlreadySubscribed), and a second reader would split the
        // signals: the first wave's subscription serves every later one.
        if self.jobs.lock().map_err(|_| anyhow!("job channel poisoned"))?.is_some() {
            return Ok(());
        }
        // The match rule is registered with the bus before Subscribe
        // returns, and the reader thread drains signals into a channel so
        // none are lost while we are busy enqueueing.
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .sender(SYSTEMD)?
            .path(MANAGER_PATH)?
            .interface(MANAGER_IFACE)?
            .member("JobRemoved")?
            .build();
        let signals = MessageIterator::for_match_rule(rule, &self.conn, Some(SIGNAL_QUEUE))
            .context("failed to listen for JobRemoved signals")?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("job-removed".into())
            .spawn(move || {
                for msg in signals {
                    // An error here means the connection is gone: stop,
                    // which closes the channel and tells the waiter.
                    let Ok(msg) = msg else { break };
                    let Ok((_id, job, unit, result)) =
                        msg.body().deserialize::<(u32, OwnedObjectPath, String, String)>()
                    else {
                        continue;
                    };
                    let ev = JobRemoved {
                        job: job.to_string(),
                        unit,
                        result,
                    };
                    if tx.send(ev).is_err() {
                        break;
                    }
                }
            })
            .context("failed to start the signal reader thread")?;
        *self.jobs.lock().map_err(|_| anyhow!("job channel poisoned"))? = Some(rx);
        self.manager()?
            .subscribe()
            .context("failed to subscribe to systemd's signals")
    }

    fn enqueue_restart(&self, unit: &str) -> Result<Enqueued> {
        match self.manager()?.try_restart_unit(unit, "replace") {
            Ok(job) => Ok(Enqueued::Job(job.to_string())),
            Err(e) if error_name(&e).as_deref() == Some("org.freedesktop.systemd1.OnlyByDependency") => {
                Ok(Enqueued::Refused(e.to_string()))
            }
            Err(e) => Err(e).with_context(|| format!("failed to restart {unit}")),
        }
    }

    fn next_job_removed(&self, deadline: Instant) -> Result<Option<JobRemoved>> {
        let guard = self.jobs.lock().map_err(|_| anyhow!("job channel poisoned"))?;
        let rx = guard.as_ref().context("not subscribed to JobRemoved")?;
        let wait = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(ev) => Ok(Some(ev)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => bail!("lost the connection to the system bus"),
        }
    }

    fn reload(&self) -> Result<()> {
        self.manager()?
            .reload()
            .context("failed to reload systemd's unit files (Manager.Reload)")
    }

    fn reexecute(&self, deadline: Instant) -> Result<()> {
        let dbus = DBusProxy::new(&self.conn)?;
        let before = dbus.get_name_owner(SYSTEMD.try_into()?).ok().map(|o| o.to_string());
        // systemd does not answer Reexecute; the bus reports NoReply once
        // the old instance drops off (systemctl's daemon-reexec expects the
        // same). Any other error means it was not done.
        if let Err(e) = self.manager()?.reexecute() {
            match error_name(&e).as_deref() {
                Some("org.freedesktop.DBus.Error.NoReply") | Some("org.freedesktop.DBus.Error.Disconnected") => {}
                _ if matches!(e, zbus::Error::InputOutput(_)) => {}
                _ => return Err(e).context("failed to re-execute systemd"),
            }
        }
        self.wait_for_systemd(before, deadline)
    }

    fn set_markers(&self, unit: &str, changes: &[String]) -> Result<Marking> {
        let props = [("Markers", Value::from(changes.to_vec()))];
        match self.manager()?.set_unit_properties(unit, true, &props) {
            Ok(()) => Ok(Marking::Set),
            Err(e) if markers_unsupported(error_name(&e).as_deref()) => Ok(Marking::Unsupported(e.to_string())),
            Err(e) => Err(e).with_context(|| format!("failed to set Markers of {unit}")),
        }
    }

    fn start_transient_service(&self, name: &str, argv: &[String], description: &str) -> Result<()> {
        if !name.ends_with(".service") {
            bail!("transient unit name {name:?} must end in .service");
        }
        let Some(program) = argv.first() else {
            bail!("no command given for {name}");
        };
        let manager = self.manager()?;
        if let Some(info) = self.unit(name)? {
            match info.active_state.as_str() {
                "active" | "activating" | "deactivating" | "reloading" => {
                    log::info!("{name}: already {}; not starting it again", info.active_state);
                    return Ok(());
                }
                // A failed transient unit stays loaded and blocks its name.
                "failed" => manager
                    .reset_failed_unit(name)
                    .with_context(|| format!("failed to reset {name}"))?,
                _ => {}
            }
        }
        let props = transient_properties(program, argv, description);
        match manager.start_transient_unit(name, "replace", &props, &[]) {
            Ok(_) => Ok(()),
            // Someone else started it between our check and the call.
            Err(e) if error_name(&e).as_deref() == Some("org.freedesktop.systemd1.UnitExists") => {
                log::info!("{name}: already exists; not starting it again");
                Ok(())
            }
            Err(e) => Err(e).with_context(|| format!("failed to start transient unit {name}")),
        }
    }

    fn start_transient_timer(&self, timer: &str, delay: Duration, argv: &[String], description: &str) -> Result<()> {
        self.start_timer(timer, delay, argv, description)
    }
}

/// The properties of a retry timer and of the service it starts.
struct TimerProps<'a> {
    timer: Vec<(&'static str, Value<'a>)>,
    service: Vec<(&'static str, Value<'a>)>,
}

fn timer_properties<'a>(delay: Duration, argv: &[String], description: &'a str) -> TimerProps<'a> {
    let usec = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
    let timer = vec![
        ("Description", Value::from(description)),
        // systemd-run --on-active sends the same: one monotonic timer,
        // its base named as the unit file setting is.
        ("TimersMonotonic", Value::from(vec![("OnActiveSec".to_string(), usec)])),
        // Fired once, then unloaded: the name is free for the next retry.
        ("RemainAfterElapse", Value::from(false)),
    ];
    TimerProps {
        timer,
        service: transient_properties(&argv[0], argv, description),
    }
}

/// How long a finish unit may run. A `oneshot` has no start timeout of
/// its own, so one process that makes the scan slow (a user's crontab
/// runs in `cron.service`) would hold the unit, and every later
/// transaction's finish behind it, for ever. A finish killed at this
/// limit leaves its record in the spool, where the next finish takes it
/// first (transaction::spool).
pub const FINISH_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(20 * 60);

impl Dbus {
    fn start_timer(&self, timer: &str, delay: Duration, argv: &[String], description: &str) -> Result<()> {
        let Some(stem) = timer.strip_suffix(".timer") else {
            bail!("transient timer name {timer:?} must end in .timer");
        };
        if argv.is_empty() {
            bail!("no command given for {timer}");
        }
        let service = format!("{stem}.service");
        let props = timer_properties(delay, argv, description);
        let aux = [(service.as_str(), &props.service[..])];
        match self.manager()?.start_transient_unit(timer, "fail", &props.timer, &aux) {
            Ok(_) => Ok(()),
            Err(e) if error_name(&e).as_deref() == Some("org.freedesktop.systemd1.UnitExists") => {
                log::info!("{timer}: already armed; not arming it again");
                Ok(())
            }
            Err(e) => Err(e).with_context(|| format!("failed to start transient timer {timer}")),
        }
    }
}

/// The properties of a finish unit running `argv`.
fn transient_properties<'a>(program: &str, argv: &[String], description: &'a str) -> Vec<(&'static str, Value<'a>)> {
    let exec_start = vec![(program.to_string(), argv.to_vec(), false)];
    vec![
        ("Description", Value::from(description)),
        ("Type", Value::from("oneshot")),
        // For a oneshot, the start is the whole run.
        ("TimeoutStartUSec", Value::from(FINISH_TIME_LIMIT.as_micros() as u64)),
        // Unload it when it ends, even after a failure, so the name is
        // free for the next transaction.
        ("CollectMode", Value::from("inactive-or-failed")),
        ("ExecStart", Value::from(exec_start)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finish_unit_has_a_time_limit() {
        let argv = vec!["/usr/bin/restart-stale".to_string(), "apt-hook".into(), "finish".into()];
        let props = transient_properties(&argv[0], &argv, "x");
        let limit = props
            .iter()
            .find(|(k, _)| *k == "TimeoutStartUSec")
            .expect("a time limit");
        assert_eq!(limit.1, Value::from(1_200_000_000u64));
        assert!(props.iter().any(|(k, v)| *k == "Type" && *v == Value::from("oneshot")));
    }

    #[test]
    fn a_retry_timer_fires_once_after_its_delay_and_runs_a_finish_unit() {
        let argv = vec!["/usr/bin/restart-stale".to_string(), "apt-hook".into(), "finish".into()];
        let props = timer_properties(Duration::from_secs(120), &argv, "x");
        let monotonic = props.timer.iter().find(|(k, _)| *k == "TimersMonotonic").unwrap();
        assert_eq!(
            monotonic.1,
            Value::from(vec![("OnActiveSec".to_string(), 120_000_000u64)])
        );
        assert!(props
            .timer
            .iter()
            .any(|(k, v)| *k == "RemainAfterElapse" && *v == Value::from(false)));
        // The service it starts is a finish unit like any other.
        assert_eq!(props.service, transient_properties(&argv[0], &argv, "x"));
    }

    #[test]
    fn a_property_an_older_systemd_lacks_reads_as_empty() {
        let missing = |e: zbus::fdo::Error| newer_property::<Vec<String>>(Err(zbus::Error::FDO(Box::new(e))));
        let unknown = zbus::fdo::Error::UnknownProperty("Unknown property or interface.".into());
        assert_eq!(missing(unknown).unwrap(), Vec::<String>::new());
        assert_eq!(
            missing(zbus::fdo::Error::InvalidArgs("no".into())).unwrap(),
            Vec::<String>::new()
        );
        // The unit went away, or the bus did: still an error.
        assert!(missing(zbus::fdo::Error::UnknownObject("gone".into())).is_err());
        assert!(newer_property::<Vec<String>>(Err(zbus::Error::InvalidReply)).is_err());
        assert_eq!(
            newer_property(Ok(vec!["b.service".to_string()])).unwrap(),
            ["b.service"]
        );
    }
}
