//! `restart-stale status --batch`: the line format of `needrestart -b`,
//! which monitoring plugins and apt-dater already parse (docs/batch.md).
//! Pure: the plan, the reboot section and the user names in, lines out.

use crate::core::fixes::{ByUnit, Fix};
use crate::core::plan::Plan;
use crate::core::reboot::Reboot;
use crate::core::sessions::Group;
use std::collections::BTreeMap;
use std::io::{self, Write};

/// Writes the batch lines: version, kernel (KEXP only when an image was
/// found, as needrestart does), one SVC line per system unit running
/// stale code whatever its decision (and `init.scope` for a stale PID 1),
/// one SESS line per user and session (`groups`, from
/// [`crate::core::sessions::group`], in their order).
///
/// With `fixes`, one `RESTART-STALE-FIX:` line per package upgrade behind
/// a stale unit follows its SVC line: ours, not needrestart's, so its
/// parsers (which match `NEEDRESTART-` lines) pass over it:
/// `RESTART-STALE-FIX: UNIT PACKAGE FROM TO security|- CVE,CVE|-`.
/// A unit the last restart run's health gate held (`held`: unit to its
/// result code) gets `RESTART-STALE-HELD: UNIT RESULT` before those.
pub fn write(
    w: &mut impl Write,
    plan: &Plan,
    reboot: &Reboot,
    groups: &[Group],
    fixes: Option<&ByUnit>,
    held: &BTreeMap<String, String>,
) -> io::Result<()> {
    writeln!(w, "NEEDRESTART-VER: {}", env!("CARGO_PKG_VERSION"))?;
    let k = &reboot.kernel;
    // needrestart reads the release from uname(2); with /proc unreadable
    // we have none, and an empty KCUR is what a parser copes with best.
    writeln!(w, "NEEDRESTART-KCUR: {}", k.running.as_deref().unwrap_or(""))?;
    if let Some(exp) = &k.expected {
        writeln!(w, "NEEDRESTART-KEXP: {exp}")?;
    }
    writeln!(w, "NEEDRESTART-KSTA: {}", k.ksta)?;
    let mut units: Vec<&str> = plan
        .units
        .iter()
        .filter(|u| !u.processes.is_empty())
        .map(|u| u.unit.as_str())
        .collect();
    // PID 1 needs a re-exec, which needrestart lists as a service too
    // (its `systemd-manager`); we call it init.scope everywhere.
    if plan.init.is_some() {
        units.push("init.scope");
    }
    // needrestart sorts services without regard to case.
    units.sort_by_key(|u| u.to_lowercase());
    for u in units {
        writeln!(w, "NEEDRESTART-SVC: {u}")?;
        if let Some(result) = held.get(u) {
            writeln!(w, "RESTART-STALE-HELD: {u} {result}")?;
        }
        for f in fixes.and_then(|f| f.get(u)).into_iter().flatten() {
            write_fix(w, u, f)?;
        }
    }
    for g in groups.iter().filter(|g| g.is_session()) {
        writeln!(w, "NEEDRESTART-SESS: {} @ {}", g.who(), g.label())?;
    }
    Ok(())
}

fn write_fix(w: &mut impl Write, unit: &str, f: &Fix) -> io::Result<()> {
    let word = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let cves = if f.cves.is_empty() {
        "-".to_string()
    } else {
        f.cves.join(",")
    };
    let security = if f.security { "security" } else { "-" };
    writeln!(
        w,
        "RESTART-STALE-FIX: {unit} {} {} {} {security} {cves}",
        f.package,
        word(&f.from),
        word(&f.to)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::kernel::{self, Facts, Installed};
    use crate::core::model::{StaleFile, StaleProcess, Staleness, Via};
    use crate::core::plan::{Action, OutsideProcess, Reason, UnitPlan};
    use crate::core::reboot;
    use crate::core::sessions;
    use crate::core::unit_name::Owner;
    use std::collections::BTreeMap;

    fn stale(pid: u32) -> StaleProcess {
        StaleProcess {
            pid,
            comm: "p".into(),
            owner: Owner::Outside(String::new()),
            files: vec![StaleFile::new("/usr/lib/libx.so".into(), Staleness::Replaced, Via::Map)],
        }
    }

    fn unit(name: &str, reason: Reason, pids: &[u32]) -> UnitPlan {
        UnitPlan {
            unit: name.into(),
            action: if reason == Reason::AllUnits {
                Action::Restart
            } else {
                Action::Skip
            },
            reason,
            processes: pids.iter().map(|&p| stale(p)).collect(),
        }
    }

    fn outside(cgroup: &str, pid: u32) -> OutsideProcess {
        OutsideProcess {
            cgroup: cgroup.into(),
            process: stale(pid),
        }
    }

    #[test]
    fn batch_lines() {
        let plan = Plan {
            units: vec![
                unit("Zebra.service", Reason::AllUnits, &[3]),
                unit("apache2.service", Reason::NotAllowed, &[4]),
                unit("clean.service", Reason::NotStale, &[]),
                unit("dbus.service", Reason::NeverTier("bus"), &[5]),
            ],
            init: Some(stale(1)),
            outside: vec![
                outside("/user.slice/user-1000.slice/session-7.scope", 9),
                outside("/user.slice/user-1000.slice/session-7.scope", 10),
                outside("/user.slice/user-1001.slice/session-2.scope", 11),
                outside("/user.slice/user-0.slice/user@0.service/init.scope", 12),
                outside("/machine.slice/machine-web.scope/payload", 13),
            ],
            gate: Default::default(),
        };
        let kernel = kernel::assess(&Facts {
            running: Some("6.1.0-27-amd64".into()),
            installed: ["6.1.0-27-amd64", "6.1.0-28-amd64"]
                .map(|r| Installed {
                    release: r.into(),
                    banner: None,
                })
                .to_vec(),
            ..Facts::default()
        });
        let r = reboot::assess(&plan, kernel, true);
        let names = BTreeMap::from([(0, "root".to_string()), (1000, "alice".to_string())]);
        let groups = sessions::group(&plan.outside, &BTreeMap::from([(13, 0)]), &names);
        let mut out = Vec::new();
        write(&mut out, &plan, &r, &groups, None, &BTreeMap::new()).unwrap();
        let want = format!(
            "NEEDRESTART-VER: {}\n\
NEEDRESTART-KCUR: 6.1.0-27-amd64\n\
NEEDRESTART-KEXP: 6.1.0-28-amd64\n\
NEEDRESTART-KSTA: 3\n\
NEEDRESTART-SVC: apache2.service\n\
NEEDRESTART-SVC: dbus.service\n\
NEEDRESTART-SVC: init.scope\n\
NEEDRESTART-SVC: Zebra.service\n\
NEEDRESTART-SESS: 1001 @ session #2\n\
NEEDRESTART-SESS: alice @ session #7\n\
NEEDRESTART-SESS: root @ user manager\n",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    /// Our FIX and HELD lines follow their unit's SVC line and start with our own
    /// prefix, so a needrestart parser's `NEEDRESTART-` match skips them.
    #[test]
    fn fix_and_held_lines_follow_their_unit_and_are_ours() {
        use crate::core::fixes::{ByUnit, Fix, Upgrade};
        let plan = Plan {
            units: vec![
                unit("ssh.service", Reason::NotAllowed, &[3]),
                unit("cron.service", Reason::NotAllowed, &[4]),
            ],
            ..Plan::default()
        };
        let up = Upgrade {
            name: "libssl3".into(),
            arch: None,
            from: Some("3.0.20-1".into()),
            to: Some("3.0.22-1".into()),
        };
        let mut f = Fix::unknown(&up, "x");
        f.unknown = None;
        f.security = true;
        f.cves = vec!["CVE-2025-1111".into(), "CVE-2025-2222".into()];
        let fixes = ByUnit::from([("ssh.service".to_string(), vec![f])]);
        let r = reboot::assess(&plan, kernel::assess(&Facts::default()), true);
        let mut out = Vec::new();
        // A hold of the last run is said for a unit still stale only.
        let held = BTreeMap::from([
            ("ssh.service".to_string(), "earlier-failure".to_string()),
            ("gone.service".to_string(), "canary".to_string()),
        ]);
        write(&mut out, &plan, &r, &[], Some(&fixes), &held).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("SVC") || l.contains("FIX") || l.contains("HELD"))
            .collect();
        assert_eq!(
            lines,
            [
                "NEEDRESTART-SVC: cron.service",
                "NEEDRESTART-SVC: ssh.service",
                "RESTART-STALE-HELD: ssh.service earlier-failure",
                "RESTART-STALE-FIX: ssh.service libssl3 3.0.20-1 3.0.22-1 security CVE-2025-1111,CVE-2025-2222"
            ]
        );
    }

    #[test]
    fn unknown_kernel_has_no_kexp() {
        let r = reboot::assess(&Plan::default(), kernel::assess(&Facts::default()), true);
        let mut out = Vec::new();
        write(&mut out, &Plan::default(), &r, &[], None, &BTreeMap::new()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("NEEDRESTART-KCUR: \nNEEDRESTART-KSTA: 0\n"), "{text}");
    }
}
