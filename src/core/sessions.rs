//! Stale processes outside the system units, grouped by user and by
//! logind session (or the user's service manager), for the text, JSON and
//! batch reports. Pure: the plan's outside processes, the uids read for
//! them and the user names in, groups out.
//!
//! The session and its user come from the cgroup path systemd gives
//! them (`user.slice/user-UID.slice/session-N.scope`,
//! `user-UID.slice/user@UID.service/...`), as needrestart does on systemd
//! hosts: a `sudo` inside alice's session is still alice's session, and it
//! is alice who has to log out. Only a process outside user.slice (a
//! container's `machine.slice`, a stray cgroup) is grouped by its own uid.

use crate::core::plan::OutsideProcess;
use serde::Serialize;
use std::collections::BTreeMap;

/// Where in a user's slice a process runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A logind session scope, `session-N.scope`.
    Session,
    /// The user's `systemd --user` itself, or a scope it started.
    UserManager,
    /// A service of the user's manager.
    UserService,
    /// Not in a user's slice at all.
    Other,
}

/// The session of a cgroup path: the slice's uid, the kind, and for a
/// logind session its id (`3`, `c1`). `None` outside a `user-UID.slice`.
pub(crate) fn session_of(cgroup: &str) -> Option<(u32, Kind, Option<String>)> {
    let parts: Vec<&str> = cgroup.split('/').filter(|p| !p.is_empty()).collect();
    let (at, uid) = parts.iter().enumerate().find_map(|(i, p)| {
        let uid = p.strip_prefix("user-")?.strip_suffix(".slice")?.parse::<u32>().ok()?;
        Some((i, uid))
    })?;
    let next = parts.get(at + 1)?;
    if let Some(n) = next.strip_prefix("session-").and_then(|r| r.strip_suffix(".scope")) {
        return Some((uid, Kind::Session, Some(n.to_string())));
    }
    if !(next.starts_with("user@") && next.ends_with(".service")) {
        return None;
    }
    // The manager's own process sits in init.scope and the apps it starts
    // in scopes; anything in a service below it is one of the user's
    // services (needrestart's `user service`).
    let service = parts.len() > at + 2 && parts.last().is_some_and(|l| l.ends_with(".service"));
    let kind = if service { Kind::UserService } else { Kind::UserManager };
    Some((uid, kind, None))
}

/// One user's stale processes in one session (or outside any).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub kind: Kind,
    /// The stale processes, ascending.
    pub pids: Vec<u32>,
    /// The logind session id, for [`Kind::Session`].
    pub session: Option<String>,
    /// The slice's uid, or for [`Kind::Other`] the process's real uid;
    /// `None` when it could not be read.
    pub uid: Option<u32>,
    /// The uid's name in the root's /etc/passwd; `None` when not there.
    pub user: Option<String>,
    /// Indices into the plan's `outside`, in the plan's order.
    #[serde(skip)]
    pub members: Vec<usize>,
}

impl Group {
    /// The user as the reports print it: the name, else the uid.
    pub(crate) fn who(&self) -> String {
        match (&self.user, self.uid) {
            (Some(n), _) => n.clone(),
            (None, Some(u)) => u.to_string(),
            (None, None) => "unknown user".into(),
        }
    }

    /// The text report's heading: `alice @ session #3`, or for a process
    /// outside any user's slice `www-data, no session`.
    pub(crate) fn heading(&self) -> String {
        match self.kind {
            Kind::Other => format!("{}, no session", self.who()),
            _ => format!("{} @ {}", self.who(), self.label()),
        }
    }

    /// The session in needrestart's words (`session #3`, `user manager`,
    /// `user service`), or `no session`.
    pub(crate) fn label(&self) -> String {
        match self.kind {
            Kind::Session => format!("session #{}", self.session.as_deref().unwrap_or("?")),
            Kind::UserManager => "user manager".into(),
            Kind::UserService => "user service".into(),
            Kind::Other => "no session".into(),
        }
    }

    /// A logind session or a user manager: what needrestart prints as a
    /// `NEEDRESTART-SESS` line.
    pub(crate) fn is_session(&self) -> bool {
        self.kind != Kind::Other
    }
}

/// Groups the outside processes by user and session. `uids` holds the
/// real uid of processes outside user.slice (by pid); `names` maps uids to
/// user names. Sorted by user as printed, then session label, the groups
/// without a session last for each user (needrestart sorts by user name,
/// then by its session string), and an unknown user last of all.
pub fn group(outside: &[OutsideProcess], uids: &BTreeMap<u32, u32>, names: &BTreeMap<u32, String>) -> Vec<Group> {
    let mut by: BTreeMap<(Option<u32>, Kind, Option<String>), Vec<usize>> = BTreeMap::new();
    for (i, o) in outside.iter().enumerate() {
        let key = match session_of(&o.cgroup) {
            Some((uid, kind, id)) => (Some(uid), kind, id),
            None => (uids.get(&o.process.pid).copied(), Kind::Other, None),
        };
        by.entry(key).or_default().push(i);
    }
    let mut groups: Vec<Group> = by
        .into_iter()
        .map(|((uid, kind, session), members)| {
            let mut pids: Vec<u32> = members.iter().map(|&i| outside[i].process.pid).collect();
            pids.sort_unstable();
            Group {
                kind,
                pids,
                session,
                uid,
                user: uid.and_then(|u| names.get(&u).cloned()),
                members,
            }
        })
        .collect();
    groups.sort_by_cached_key(|g| (g.uid.is_none(), g.who(), !g.is_session(), g.label()));
    groups
}

/// How many session groups there are, and how many users own them; read
/// from the cgroup paths alone (Prometheus needs no names).
pub fn counts(outside: &[OutsideProcess]) -> (usize, usize) {
    let groups = group(outside, &BTreeMap::new(), &BTreeMap::new());
    let sessions: Vec<&Group> = groups.iter().filter(|g| g.is_session()).collect();
    let mut users: Vec<Option<u32>> = sessions.iter().map(|g| g.uid).collect();
    users.dedup();
    (sessions.len(), users.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{StaleFile, StaleProcess, Staleness, Via};
    use crate::core::unit_name::Owner;

    fn outside(cgroup: &str, pid: u32) -> OutsideProcess {
        OutsideProcess {
            cgroup: cgroup.into(),
            process: StaleProcess {
                pid,
                comm: "p".into(),
                owner: Owner::Outside(cgroup.into()),
                files: vec![StaleFile::new("/usr/lib/libx.so".into(), Staleness::Replaced, Via::Map)],
            },
        }
    }

    #[test]
    fn sessions_from_cgroup_paths() {
        let s = |n: &str| Some(n.to_string());
        let cases = [
            (
                "/user.slice/user-1000.slice/session-3.scope",
                Some((1000, Kind::Session, s("3"))),
            ),
            (
                "user.slice/user-0.slice/session-c1.scope",
                Some((0, Kind::Session, s("c1"))),
            ),
            (
                "/user.slice/user-1000.slice/user@1000.service/init.scope",
                Some((1000, Kind::UserManager, None)),
            ),
            (
                "/user.slice/user-1000.slice/user@1000.service/app.slice/app-firefox-1.scope",
                Some((1000, Kind::UserManager, None)),
            ),
            (
                "/user.slice/user-1000.slice/user@1000.service/app.slice/pipewire.service",
                Some((1000, Kind::UserService, None)),
            ),
            (
                "/user.slice/user-1000.slice/user@1000.service",
                Some((1000, Kind::UserManager, None)),
            ),
            ("/user.slice/user-1000.slice", None),
            ("/user.slice/user-1000.slice/other.scope", None),
            ("/machine.slice/machine-web.scope/payload", None),
            ("/user.slice/user-x.slice/session-1.scope", None),
            ("/user.slice", None),
            ("", None),
        ];
        for (cg, want) in cases {
            assert_eq!(session_of(cg), want, "{cg}");
        }
    }

    #[test]
    fn grouped_by_user_then_session() {
        let plan = [
            outside("/user.slice/user-1000.slice/session-7.scope", 10),
            outside("/user.slice/user-1001.slice/session-2.scope", 11),
            outside("/user.slice/user-1000.slice/session-7.scope", 9),
            outside("/machine.slice/machine-web.scope/payload", 12),
            outside("/user.slice/user-1000.slice/user@1000.service/init.scope", 13),
            outside("/machine.slice/machine-db.scope/payload", 14),
            outside("/user.slice/user-1000.slice/session-10.scope", 15),
            outside("/", 16),
        ];
        // 16's status was unreadable; 12 runs as alice in a container.
        let uids = BTreeMap::from([(12, 1000), (14, 0), (9, 0)]);
        let names = BTreeMap::from([(0, "root".to_string()), (1000, "alice".to_string())]);
        let got: Vec<(String, String, Vec<u32>)> = group(&plan, &uids, &names)
            .iter()
            .map(|g| (g.who(), g.label(), g.pids.clone()))
            .collect();
        let want = [
            ("1001", "session #2", vec![11]),
            ("alice", "session #10", vec![15]),
            // pid 9 is a root process in alice's session: alice's session.
            ("alice", "session #7", vec![9, 10]),
            ("alice", "user manager", vec![13]),
            ("alice", "no session", vec![12]),
            ("root", "no session", vec![14]),
            ("unknown user", "no session", vec![16]),
        ];
        let want: Vec<(String, String, Vec<u32>)> = want
            .iter()
            .map(|(u, s, p)| (u.to_string(), s.to_string(), p.clone()))
            .collect();
        assert_eq!(got, want);
        let g = &group(&plan, &uids, &names)[2];
        assert_eq!(g.members, vec![0, 2], "members keep the plan's order");
    }

    #[test]
    fn counts_ignore_processes_outside_sessions() {
        let plan = [
            outside("/user.slice/user-1000.slice/session-7.scope", 1),
            outside("/user.slice/user-1000.slice/session-8.scope", 2),
            outside("/user.slice/user-1000.slice/user@1000.service/init.scope", 3),
            outside("/user.slice/user-0.slice/session-1.scope", 4),
            outside("/machine.slice/machine-web.scope/payload", 5),
        ];
        assert_eq!(counts(&plan), (4, 2));
        assert_eq!(counts(&[]), (0, 0));
    }
}
