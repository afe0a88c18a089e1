//! Why the host needs a reboot (or a re-login): what no restart can fix.
//! Pure: computed from the plan, the kernel status and the re-exec
//! switch; the report, the batch output, the textfile and
//! `/run/reboot-required` all render this one value.

use crate::core::kernel::{State, Status};
use crate::core::plan::{Plan, Reason};
use serde::Serialize;
use std::io::{self, Write};

/// One reason; `code` is part of the JSON schema and the metric labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RebootReason {
    pub code: &'static str,
    /// The same for people.
    pub detail: String,
    /// The unit, for the unit reasons.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// The reboot section of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reboot {
    pub kernel: Status,
    pub needed: bool,
    pub reasons: Vec<RebootReason>,
}

/// Every reason code, for documentation and for metrics that report 0.
pub const CODES: [&str; 4] = ["kernel-upgrade", "kernel-abi-upgrade", "never-tier-stale", "init-stale"];

/// The reasons: a newer kernel installed; a never-tier unit (dbus, logind,
/// user@, a display manager) running stale code, which only a reboot or
/// the users logging out again replace; PID 1 running stale code while
/// its re-exec is off (`--no-reexec`, `disallow init.scope`).
pub(crate) fn assess(plan: &Plan, kernel: Status, reexec: bool) -> Reboot {
    let mut reasons = Vec::new();
    match kernel.state {
        State::VersionUpgrade => reasons.push(RebootReason {
            code: "kernel-upgrade",
            detail: format!(
                "kernel {} runs, {} is installed",
                kernel.running.as_deref().unwrap_or("?"),
                kernel.expected.as_deref().unwrap_or("?")
            ),
            unit: None,
        }),
        State::AbiUpgrade => reasons.push(RebootReason {
            code: "kernel-abi-upgrade",
            detail: format!(
                "kernel {} runs, another build of it is installed",
                kernel.running.as_deref().unwrap_or("?")
            ),
            unit: None,
        }),
        State::Unknown | State::Current | State::LivePatched => {}
    }
    for u in &plan.units {
        if let (Reason::NeverTier(why), false) = (&u.reason, u.processes.is_empty()) {
            reasons.push(RebootReason {
                code: "never-tier-stale",
                detail: format!("{} runs stale code and is never restarted ({why})", u.unit),
                unit: Some(u.unit.clone()),
            });
        }
    }
    if plan.init.is_some() && !reexec {
        reasons.push(RebootReason {
            code: "init-stale",
            detail: "PID 1 runs stale code and its re-exec is off".into(),
            unit: Some("init.scope".into()),
        });
    }
    Reboot {
        kernel,
        needed: !reasons.is_empty(),
        reasons,
    }
}

/// The text report's section: shown when a reboot is needed or the kernel
/// is live-patched, silent otherwise (the everyday report stays short).
pub(crate) fn write_text(w: &mut impl Write, r: &Reboot) -> io::Result<()> {
    if r.kernel.patched() {
        let mut how: Vec<String> = r.kernel.livepatches.iter().map(|p| format!("livepatch {p}")).collect();
        if r.kernel.kpatch {
            how.push("kpatch".into());
        }
        if r.kernel.ksplice {
            how.push("Ksplice".into());
        }
        writeln!(
            w,
            "kernel {} is live-patched ({}): the running code is not the image on disk",
            r.kernel.running.as_deref().unwrap_or("?"),
            how.join(", ")
        )?;
    }
    if !r.needed {
        return Ok(());
    }
    writeln!(w, "reboot needed:")?;
    for reason in &r.reasons {
        writeln!(w, "    {} ({})", reason.detail, reason.code)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::kernel::{self, Facts, Installed};
    use crate::core::model::StaleProcess;
    use crate::core::plan::{Action, UnitPlan};
    use crate::core::unit_name::Owner;

    fn stale(pid: u32) -> StaleProcess {
        StaleProcess {
            pid,
            comm: "x".into(),
            owner: Owner::Unit("x".into()),
            files: Vec::new(),
        }
    }

    fn unit(name: &str, reason: Reason, stale_pids: &[u32]) -> UnitPlan {
        UnitPlan {
            unit: name.into(),
            action: Action::Skip,
            reason,
            processes: stale_pids.iter().map(|&p| stale(p)).collect(),
        }
    }

    fn kernel(running: &str, installed: &str) -> Status {
        kernel::assess(&Facts {
            running: Some(running.into()),
            installed: vec![Installed {
                release: installed.into(),
                banner: None,
            }],
            ..Facts::default()
        })
    }

    #[test]
    fn reasons_from_plan_kernel_and_reexec() {
        let plan = Plan {
            units: vec![
                unit("dbus.service", Reason::NeverTier("message bus"), &[5]),
                unit("user@1000.service", Reason::NeverTier("user manager"), &[]),
                unit("cron.service", Reason::NotAllowed, &[6]),
            ],
            init: Some(stale(1)),
            outside: Vec::new(),
            gate: Default::default(),
        };
        let r = assess(&plan, kernel("6.1.0-27-amd64", "6.1.0-28-amd64"), false);
        let codes: Vec<_> = r.reasons.iter().map(|x| (x.code, x.unit.as_deref())).collect();
        assert_eq!(
            codes,
            [
                ("kernel-upgrade", None),
                ("never-tier-stale", Some("dbus.service")),
                ("init-stale", Some("init.scope"))
            ]
        );
        assert!(r.needed);
        let mut text = Vec::new();
        write_text(&mut text, &r).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("kernel 6.1.0-27-amd64 runs, 6.1.0-28-amd64 is installed (kernel-upgrade)"),
            "{text}"
        );

        // Re-exec on and the newest kernel running: nothing left.
        let plan = Plan {
            init: Some(stale(1)),
            ..Plan::default()
        };
        let r = assess(&plan, kernel("6.1.0-28-amd64", "6.1.0-28-amd64"), true);
        assert!(!r.needed && r.reasons.is_empty());
        let mut text = Vec::new();
        write_text(&mut text, &r).unwrap();
        assert!(text.is_empty());
    }
}
