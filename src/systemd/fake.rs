//! A scripted, recording [`ServiceManager`] for tests: units are plain
//! data, `JobRemoved` signals come from a script, and every call is
//! recorded so a test can assert what was (not) asked of systemd.

use super::{Enqueued, JobRemoved, Marking, ServiceManager, UnitInfo, UnitQuery};
use anyhow::{bail, Result};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// One call made to the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Unit(String),
    SocketAccepts(String),
    Reload,
    Subscribe,
    EnqueueRestart(String),
    NextJobRemoved,
    Reexecute,
    StartTransient {
        name: String,
        argv: Vec<String>,
    },
    StartTimer {
        timer: String,
        delay: std::time::Duration,
        argv: Vec<String>,
    },
    SetMarkers {
        unit: String,
        changes: Vec<String>,
    },
}

impl Call {
    /// Whether the call changes state in systemd. `Subscribe` only adds
    /// us as a signal listener but is still not something a dry run does.
    pub(crate) fn mutates(&self) -> bool {
        matches!(
            self,
            Call::Subscribe
                | Call::EnqueueRestart(_)
                | Call::Reload
                | Call::Reexecute
                | Call::StartTransient { .. }
                | Call::StartTimer { .. }
                | Call::SetMarkers { .. }
        )
    }
}

/// What the next `next_job_removed` call yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The job last enqueued for `unit` ended with `result`.
    Removed { unit: String, result: String },
    /// A job somebody else queued ended.
    Foreign { unit: String, result: String },
    /// The bus connection dropped; this and every later wait fails.
    Disconnect,
}

impl Event {
    pub fn removed(unit: &str, result: &str) -> Self {
        Event::Removed {
            unit: unit.into(),
            result: result.into(),
        }
    }
}

/// The fake service manager. An empty event script behaves like a
/// deadline that has passed.
#[derive(Default)]
pub struct Fake {
    pub units: HashMap<String, UnitInfo>,
    /// Sockets with `Accept=yes`.
    pub accepting_sockets: Vec<String>,
    /// Units whose restart systemd refuses (`OnlyByDependency`).
    pub refuse: Vec<String>,
    /// Units whose restart call fails outright.
    pub fail_enqueue: Vec<String>,
    /// Whether `reexecute` fails.
    pub reexec_fails: bool,
    /// A systemd older than 248: setting `Markers` is refused as an
    /// unknown property.
    pub no_markers: bool,
    pub events: RefCell<VecDeque<Event>>,
    calls: RefCell<Vec<Call>>,
    jobs: RefCell<HashMap<String, String>>,
    next_job: Cell<u32>,
    subscribed: Cell<bool>,
    /// Markers set through `set_markers`, on top of each unit's own.
    markers: RefCell<HashMap<String, Vec<String>>>,
    disconnected: Cell<bool>,
    started: RefCell<Vec<(String, Vec<String>)>>,
    /// The test's clock, and unit states that take over at a time on it.
    clock: RefCell<Option<Rc<Cell<Duration>>>>,
    timeline: RefCell<Vec<(Duration, String, UnitInfo)>>,
}

impl Fake {
    /// A fake with these units loaded.
    pub(crate) fn with_units<'a>(units: impl IntoIterator<Item = (&'a str, UnitInfo)>) -> Self {
        Fake {
            units: units.into_iter().map(|(n, i)| (n.to_string(), i)).collect(),
            ..Fake::default()
        }
    }

    /// Appends signals to the script.
    pub fn script(&self, events: impl IntoIterator<Item = Event>) {
        self.events.borrow_mut().extend(events);
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    /// The units restart was asked for, in order.
    pub fn restarted(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::EnqueueRestart(u) => Some(u),
                _ => None,
            })
            .collect()
    }

    /// Transient services really started (not no-ops), with their argv.
    pub(crate) fn transient_started(&self) -> Vec<(String, Vec<String>)> {
        self.started.borrow().clone()
    }

    /// Every `start_transient_timer` call, as (timer, delay, argv).
    pub(crate) fn timers(&self) -> Vec<(String, std::time::Duration, Vec<String>)> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::StartTimer { timer, delay, argv } => Some((timer, delay, argv)),
                _ => None,
            })
            .collect()
    }

    /// Every `set_markers` call, as (unit, changes), in order.
    pub(crate) fn marker_calls(&self) -> Vec<(String, Vec<String>)> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::SetMarkers { unit, changes } => Some((unit, changes)),
                _ => None,
            })
            .collect()
    }

    /// Shares the test's clock, for [`Fake::later`].
    pub(crate) fn set_clock(&self, clock: Rc<Cell<Duration>>) {
        *self.clock.borrow_mut() = Some(clock);
    }

    /// From `at` on the test's clock, `unit` reads as `info`.
    pub fn later(&self, at: Duration, unit: &str, info: UnitInfo) {
        self.timeline.borrow_mut().push((at, unit.into(), info));
    }

    /// The unit as it is now on the test's clock.
    fn current(&self, name: &str) -> Option<UnitInfo> {
        let now = self.clock.borrow().as_ref().map_or(Duration::ZERO, |c| c.get());
        let timeline = self.timeline.borrow();
        let later = timeline
            .iter()
            .filter(|(at, u, _)| u == name && *at <= now)
            .max_by_key(|(at, _, _)| *at)
            .map(|(_, _, i)| i.clone());
        later.or_else(|| self.units.get(name).cloned())
    }

    fn record(&self, c: Call) {
        self.calls.borrow_mut().push(c);
    }
}

impl Fake {
    /// The unit's markers now: its own, changed by `set_markers` calls.
    pub(crate) fn markers_of(&self, unit: &str) -> Vec<String> {
        if let Some(m) = self.markers.borrow().get(unit) {
            return m.clone();
        }
        self.units.get(unit).map(|u| u.markers.clone()).unwrap_or_default()
    }
}

/// A healthy `active (running)` simple service with main PID `pid`.
pub(crate) fn running_service(pid: u32) -> UnitInfo {
    UnitInfo {
        active_state: "active".into(),
        sub_state: "running".into(),
        can_start: true,
        can_stop: true,
        service_type: Some("simple".into()),
        kill_mode: Some("control-group".into()),
        main_pid: pid,
        ..UnitInfo::default()
    }
}

impl UnitQuery for Fake {
    fn unit(&self, name: &str) -> Result<Option<UnitInfo>> {
        self.record(Call::Unit(name.into()));
        Ok(self.current(name).map(|mut u| {
            u.markers = self.markers_of(name);
            u
        }))
    }

    fn socket_accepts(&self, socket: &str) -> Result<bool> {
        self.record(Call::SocketAccepts(socket.into()));
        Ok(self.accepting_sockets.iter().any(|s| s == socket))
    }
}

impl ServiceManager for Fake {
    fn subscribe(&self) -> Result<()> {
        self.record(Call::Subscribe);
        self.subscribed.set(true);
        Ok(())
    }

    fn enqueue_restart(&self, unit: &str) -> Result<Enqueued> {
        self.record(Call::EnqueueRestart(unit.into()));
        if !self.subscribed.get() {
            bail!("fake: restart of {unit} enqueued before subscribing");
        }
        if self.fail_enqueue.iter().any(|u| u == unit) {
            bail!("fake: failed to restart {unit}");
        }
        if self.refuse.iter().any(|u| u == unit) {
            return Ok(Enqueued::Refused(format!(
                "unit {unit} may be requested by dependency only"
            )));
        }
        let id = self.next_job.get() + 1;
        self.next_job.set(id);
        let job = format!("/org/freedesktop/systemd1/job/{id}");
        self.jobs.borrow_mut().insert(unit.into(), job.clone());
        Ok(Enqueued::Job(job))
    }

    fn next_job_removed(&self, _deadline: Instant) -> Result<Option<JobRemoved>> {
        self.record(Call::NextJobRemoved);
        if !self.subscribed.get() {
            bail!("fake: waiting for jobs without subscribing");
        }
        if self.disconnected.get() {
            bail!("fake: bus connection lost");
        }
        let ev = self.events.borrow_mut().pop_front();
        match ev {
            None => Ok(None),
            Some(Event::Disconnect) => {
                self.disconnected.set(true);
                bail!("fake: bus connection lost")
            }
            Some(Event::Removed { unit, result }) => {
                let job = self
                    .jobs
                    .borrow()
                    .get(&unit)
                    .cloned()
                    .unwrap_or_else(|| "/job/none".into());
                Ok(Some(JobRemoved { job, unit, result }))
            }
            Some(Event::Foreign { unit, result }) => Ok(Some(JobRemoved {
                job: "/org/freedesktop/systemd1/job/99999".into(),
                unit,
                result,
            })),
        }
    }

    fn reload(&self) -> Result<()> {
        self.record(Call::Reload);
        Ok(())
    }

    fn reexecute(&self, _deadline: Instant) -> Result<()> {
        self.record(Call::Reexecute);
        if self.reexec_fails {
            bail!("fake: systemd did not come back on the bus after re-executing");
        }
        Ok(())
    }

    fn set_markers(&self, unit: &str, changes: &[String]) -> Result<Marking> {
        self.record(Call::SetMarkers {
            unit: unit.into(),
            changes: changes.to_vec(),
        });
        if self.no_markers {
            return Ok(Marking::Unsupported(
                "Cannot set property Markers, or unknown property.".into(),
            ));
        }
        if !self.units.contains_key(unit) {
            bail!("fake: unit {unit} not loaded");
        }
        // Like systemd: `+m` adds, `-m` removes, the rest stay.
        let mut now = self.markers_of(unit);
        for c in changes {
            let (add, m) = match c.split_at_checked(1) {
                Some(("+", m)) => (true, m),
                Some(("-", m)) => (false, m),
                _ => bail!("fake: marker change {c:?} without + or -"),
            };
            now.retain(|x| x != m);
            if add {
                now.push(m.to_string());
            }
        }
        self.markers.borrow_mut().insert(unit.into(), now);
        Ok(Marking::Set)
    }

    fn start_transient_service(&self, name: &str, argv: &[String], _description: &str) -> Result<()> {
        self.record(Call::StartTransient {
            name: name.into(),
            argv: argv.to_vec(),
        });
        let loaded = self
            .units
            .get(name)
            .is_some_and(|u| matches!(u.active_state.as_str(), "active" | "activating" | "deactivating"));
        // A started transient unit stays activating for the rest of a test.
        let already = loaded || self.started.borrow().iter().any(|(n, _)| n == name);
        if !already {
            self.started.borrow_mut().push((name.into(), argv.to_vec()));
        }
        Ok(())
    }

    fn start_transient_timer(
        &self,
        timer: &str,
        delay: std::time::Duration,
        argv: &[String],
        _description: &str,
    ) -> Result<()> {
        self.record(Call::StartTimer {
            timer: timer.into(),
            delay,
            argv: argv.to_vec(),
        });
        Ok(())
    }
}
