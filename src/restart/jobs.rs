//! Job bookkeeping: enqueue every restart at once, then match
//! `JobRemoved` signals to our jobs until all ended or the deadline
//! passed. Pure over [`ServiceManager`], so the fake drives every path.

use crate::systemd::{Enqueued, ServiceManager};
use anyhow::Result;
use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

/// How a job ended, as systemd's `JobRemoved` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobResult {
    Done,
    Canceled,
    Timeout,
    Failed,
    Dependency,
    Skipped,
    Other(String),
}

impl From<&str> for JobResult {
    fn from(s: &str) -> Self {
        match s {
            "done" => JobResult::Done,
            "canceled" => JobResult::Canceled,
            "timeout" => JobResult::Timeout,
            "failed" => JobResult::Failed,
            "dependency" => JobResult::Dependency,
            "skipped" => JobResult::Skipped,
            other => JobResult::Other(other.to_string()),
        }
    }
}

impl fmt::Display for JobResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobResult::Done => "done",
            JobResult::Canceled => "canceled",
            JobResult::Timeout => "timeout",
            JobResult::Failed => "failed",
            JobResult::Dependency => "dependency",
            JobResult::Skipped => "skipped",
            JobResult::Other(s) => s,
        })
    }
}

/// What became of one restart request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// systemd reported the job's end.
    Finished { result: JobResult, elapsed: Duration },
    /// Our overall deadline passed first. The job is left to systemd:
    /// cancelling a restart half-way could leave the service stopped.
    StillRunning { elapsed: Duration },
    /// The bus went away before the job's end was reported.
    Lost { elapsed: Duration, error: String },
    /// systemd refused the restart (e.g. `RefuseManualStop=yes`).
    Refused(String),
    /// The restart call itself failed.
    NotQueued(String),
}

impl Outcome {
    /// Whether the restart happened and its result is worth verifying.
    pub fn done(&self) -> bool {
        matches!(
            self,
            Outcome::Finished {
                result: JobResult::Done,
                ..
            }
        )
    }

    /// Whether this outcome makes the run fail. A refusal is a skip.
    #[cfg(test)]
    pub(crate) fn is_failure(&self) -> bool {
        !self.done() && !matches!(self, Outcome::Refused(_))
    }
}

/// Subscribes, enqueues a restart job for every unit, then waits for all
/// of them until `timeout` has passed. Returns one outcome per unit, in
/// the order given. `Err` only if subscribing failed (nothing was queued).
pub(crate) fn restart_all<M: ServiceManager + ?Sized>(
    mgr: &M,
    units: &[String],
    timeout: Duration,
) -> Result<Vec<(String, Outcome)>> {
    mgr.subscribe()?;
    let start = Instant::now();
    let deadline = start + timeout;
    let mut outcomes: Vec<Option<Outcome>> = vec![None; units.len()];
    // job path → (index, enqueue time)
    let mut pending: HashMap<String, (usize, Instant)> = HashMap::new();
    for (i, unit) in units.iter().enumerate() {
        let at = Instant::now();
        match mgr.enqueue_restart(unit) {
            Ok(Enqueued::Job(job)) => {
                log::debug!("{unit}: restart queued as {job}");
                pending.insert(job, (i, at));
            }
            Ok(Enqueued::Refused(why)) => outcomes[i] = Some(Outcome::Refused(why)),
            Err(e) => outcomes[i] = Some(Outcome::NotQueued(format!("{e:#}"))),
        }
    }
    while !pending.is_empty() {
        match mgr.next_job_removed(deadline) {
            Ok(Some(ev)) => {
                // Jobs of other units (dependencies, other clients) end too.
                if let Some((i, at)) = pending.remove(&ev.job) {
                    outcomes[i] = Some(Outcome::Finished {
                        result: JobResult::from(ev.result.as_str()),
                        elapsed: at.elapsed(),
                    });
                }
            }
            Ok(None) => {
                for (_, (i, at)) in pending.drain() {
                    outcomes[i] = Some(Outcome::StillRunning { elapsed: at.elapsed() });
                }
            }
            Err(e) => {
                let error = format!("{e:#}");
                for (_, (i, at)) in pending.drain() {
                    outcomes[i] = Some(Outcome::Lost {
                        elapsed: at.elapsed(),
                        error: error.clone(),
                    });
                }
            }
        }
    }
    Ok(units
        .iter()
        .cloned()
        .zip(outcomes.into_iter().map(|o| o.expect("every unit has an outcome")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systemd::fake::{Call, Event, Fake};

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn results(out: &[(String, Outcome)]) -> Vec<(String, String)> {
        out.iter()
            .map(|(u, o)| {
                let r = match o {
                    Outcome::Finished { result, .. } => result.to_string(),
                    Outcome::StillRunning { .. } => "still-running".into(),
                    Outcome::Lost { .. } => "lost".into(),
                    Outcome::Refused(_) => "refused".into(),
                    Outcome::NotQueued(_) => "not-queued".into(),
                };
                (u.clone(), r)
            })
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn subscribes_then_enqueues_everything_before_waiting() {
        let fake = Fake::default();
        fake.script([Event::removed("a.service", "done"), Event::removed("b.service", "done")]);
        let out = restart_all(&fake, &names(&["a.service", "b.service"]), Duration::from_secs(5)).unwrap();
        assert_eq!(results(&out), pairs(&[("a.service", "done"), ("b.service", "done")]));
        let calls = fake.calls();
        assert_eq!(calls[0], Call::Subscribe);
        assert_eq!(calls[1], Call::EnqueueRestart("a.service".into()));
        assert_eq!(calls[2], Call::EnqueueRestart("b.service".into()));
        assert!(calls[3..].iter().all(|c| *c == Call::NextJobRemoved));
    }

    #[test]
    fn interleaved_and_foreign_signals_match_by_job() {
        let fake = Fake::default();
        fake.script([
            Event::removed("c.service", "done"),
            Event::Foreign {
                unit: "a.service".into(),
                result: "failed".into(),
            },
            Event::Foreign {
                unit: "dep.service".into(),
                result: "done".into(),
            },
            Event::removed("a.service", "dependency"),
            Event::removed("b.service", "canceled"),
        ]);
        let units = names(&["a.service", "b.service", "c.service"]);
        let out = restart_all(&fake, &units, Duration::from_secs(5)).unwrap();
        assert_eq!(
            results(&out),
            pairs(&[
                ("a.service", "dependency"),
                ("b.service", "canceled"),
                ("c.service", "done")
            ])
        );
    }

    #[test]
    fn a_job_that_never_ends_times_out_without_touching_others() {
        let fake = Fake::default();
        fake.script([Event::removed("a.service", "done")]);
        let out = restart_all(&fake, &names(&["a.service", "slow.service"]), Duration::from_millis(1)).unwrap();
        assert_eq!(
            results(&out),
            pairs(&[("a.service", "done"), ("slow.service", "still-running")])
        );
        assert!(out[1].1.is_failure());
        // Waiting stops at the deadline: one wait per signal plus the last.
        let waits = fake.calls().iter().filter(|c| **c == Call::NextJobRemoved).count();
        assert_eq!(waits, 2);
    }

    #[test]
    fn a_unit_that_fails_to_start_is_a_failure() {
        let fake = Fake::default();
        fake.script([
            Event::removed("broken.service", "failed"),
            Event::removed("ok.service", "done"),
        ]);
        let out = restart_all(&fake, &names(&["ok.service", "broken.service"]), Duration::from_secs(5)).unwrap();
        assert_eq!(
            results(&out),
            pairs(&[("ok.service", "done"), ("broken.service", "failed")])
        );
        assert!(out[0].1.done() && !out[0].1.is_failure());
        assert!(out[1].1.is_failure());
    }

    #[test]
    fn bus_disconnecting_mid_wait_marks_the_rest_lost() {
        let fake = Fake::default();
        fake.script([Event::removed("a.service", "done"), Event::Disconnect]);
        let units = names(&["a.service", "b.service", "c.service"]);
        let out = restart_all(&fake, &units, Duration::from_secs(5)).unwrap();
        assert_eq!(
            results(&out),
            pairs(&[("a.service", "done"), ("b.service", "lost"), ("c.service", "lost")])
        );
        let Outcome::Lost { error, .. } = &out[1].1 else {
            unreachable!()
        };
        assert!(error.contains("connection lost"), "{error}");
    }

    #[test]
    fn refusals_and_enqueue_errors_do_not_stop_the_others() {
        let mut fake = Fake::default();
        fake.refuse = vec!["r.service".into()];
        fake.fail_enqueue = vec!["e.service".into()];
        fake.script([Event::removed("a.service", "done")]);
        let units = names(&["r.service", "e.service", "a.service"]);
        let out = restart_all(&fake, &units, Duration::from_secs(5)).unwrap();
        assert_eq!(
            results(&out),
            pairs(&[
                ("r.service", "refused"),
                ("e.service", "not-queued"),
                ("a.service", "done")
            ])
        );
        assert!(!out[0].1.is_failure());
        assert!(out[1].1.is_failure());
    }

    #[test]
    fn nothing_to_wait_for_returns_at_once() {
        let mut fake = Fake::default();
        fake.refuse = vec!["r.service".into()];
        let out = restart_all(&fake, &names(&["r.service"]), Duration::from_secs(5)).unwrap();
        assert_eq!(results(&out), pairs(&[("r.service", "refused")]));
        assert!(!fake.calls().contains(&Call::NextJobRemoved));
    }
}
