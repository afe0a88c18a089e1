//! `restart-stale status --batch`: the line format of `needrestart -b`,
//! which monitoring plugins and apt-dater already parse (docs/batch.md).
//! Pure: the plan, the reboot section and the user names in, lines out.

use crate::core::plan::Plan;
use crate::core::reboot::Reboot;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

/// A logind session, or a user's service manager, that a stale process
/// outside the system units belongs to: (uid, what needrestart calls it).
pub type Session = (u32, String);

/// The session of a cgroup path, in needrestart's words: `session #N` for
/// `user-UID.slice/session-N.scope`, `user service` for a unit of the
/// user's manager, `user manager` for the manager itself. `None` outside
/// user.slice (a container's `machine.slice`, a stray cgroup).
pub fn session_of(cgroup: &str) -> Option<Session> {
    let parts: Vec<&str> = cgroup.split('/').filter(|p| !p.is_empty()).collect();
    let uid_at = parts
        .iter()
        .position(|p| p.strip_prefix("user-").and_then(|r| r.strip_suffix(".slice")).is_some())?;
    let uid: u32 = parts[uid_at]
        .strip_prefix("user-")?
        .strip_suffix(".slice")?
        .parse()
        .ok()?;
    let next = parts.get(uid_at + 1)?;
    if let Some(n) = next.strip_prefix("session-").and_then(|r| r.strip_suffix(".scope")) {
        return Some((uid, format!("session #{n}")));
    }
    if next.starts_with("user@") && next.ends_with(".service") {
        // The manager's own process sits in init.scope; anything in a
        // unit below it is one of the user's services.
        let what = match parts.last() {
            Some(last) if last.ends_with(".service") && parts.len() > uid_at + 2 => "user service",
            _ => "user manager",
        };
        return Some((uid, what.to_string()));
    }
    None
}

/// Every session with a stale process, once.
pub fn sessions(plan: &Plan) -> BTreeSet<Session> {
    plan.outside.iter().filter_map(|o| session_of(&o.cgroup)).collect()
}

/// Writes the batch lines: version, kernel (KEXP only when an image was
/// found, as needrestart does), one SVC line per system unit running
/// stale code whatever its decision (and `init.scope` for a stale PID 1),
/// one SESS line per user and session.
/// `names` maps uids to user names; an unknown uid is printed as a number.
pub fn write(w: &mut impl Write, plan: &Plan, reboot: &Reboot, names: &BTreeMap<u32, String>) -> io::Result<()> {
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
    }
    let mut lines: Vec<(String, String)> = sessions(plan)
        .into_iter()
        .map(|(uid, s)| (names.get(&uid).cloned().unwrap_or_else(|| uid.to_string()), s))
        .collect();
    lines.sort();
    for (user, s) in lines {
        writeln!(w, "NEEDRESTART-SESS: {user} @ {s}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::kernel::{self, Facts, Installed};
    use crate::core::model::{StaleFile, StaleProcess, Staleness, Via};
    use crate::core::plan::{Action, OutsideProcess, Reason, UnitPlan};
    use crate::core::reboot;
    use crate::core::unit_name::Owner;

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
    fn session_names_follow_needrestart() {
        let cases = [
            (
                "/user.slice/user-1000.slice/session-3.scope",
                Some((1000, "session #3")),
            ),
            ("user.slice/user-0.slice/session-c1.scope", Some((0, "session #c1"))),
            (
                "/user.slice/user-1000.slice/user@1000.service/init.scope",
                Some((1000, "user manager")),
            ),
            (
                "/user.slice/user-1000.slice/user@1000.service/app.slice/pipewire.service",
                Some((1000, "user service")),
            ),
            ("/machine.slice/machine-web.scope/payload", None),
            ("/user.slice/user-x.slice/session-1.scope", None),
            ("/user.slice", None),
            ("", None),
        ];
        for (cg, want) in cases {
            let got = session_of(cg);
            assert_eq!(got.as_ref().map(|(u, s)| (*u, s.as_str())), want, "{cg}");
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
            ],
            protected: Vec::new(),
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
        let mut out = Vec::new();
        write(&mut out, &plan, &r, &names).unwrap();
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

    #[test]
    fn unknown_kernel_has_no_kexp() {
        let r = reboot::assess(&Plan::default(), kernel::assess(&Facts::default()), true);
        let mut out = Vec::new();
        write(&mut out, &Plan::default(), &r, &BTreeMap::new()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("NEEDRESTART-KCUR: \nNEEDRESTART-KSTA: 0\n"), "{text}");
    }
}
