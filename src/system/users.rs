//! Who a stale process outside the system units belongs to: the real uid
//! from `/proc/PID/status` and user names from the root's `/etc/passwd`,
//! read as files (never NSS, which could load modules or ask a network
//! service: users only known to LDAP or sssd stay numbers).

use crate::core::plan::OutsideProcess;
use crate::core::sessions::{self, Group};
use crate::system::pidfd;
use crate::system::procfs;
use crate::system::sysroot::SysRoot;
use crate::system::workers;
use std::collections::BTreeMap;

/// The outside processes grouped by user and session. The uid of a
/// process in a user's slice comes from the slice; only the others need
/// their status read. Nothing is read when there is nothing outside.
///
/// A uid costs a few microseconds of kernel time a process ([`pidfd`]
/// says why); with thousands of stale processes outside the units the
/// reads are split across threads as the scan is ([`workers`]), each
/// with its own buffer.
pub(crate) fn session_groups(root: &SysRoot, outside: &[OutsideProcess]) -> Vec<Group> {
    if outside.is_empty() {
        return Vec::new();
    }
    let pids: Vec<u32> = outside
        .iter()
        .filter(|o| sessions::session_of(&o.cgroup).is_none())
        .map(|o| o.process.pid)
        .collect();
    let found = workers::map(
        &pids,
        workers::threads(),
        &mut Vec::new(),
        |_| Vec::new(),
        |buf, pid| real_uid_in(root, pid, buf),
    );
    let uids = pids
        .into_iter()
        .zip(found)
        .filter_map(|(pid, uid)| Some((pid, uid?)))
        .collect();
    sessions::group(outside, &uids, &user_names(root))
}

/// The real uid of a process; `None` when it exited or its status has no
/// readable `Uid:` line.
#[cfg(test)]
pub(crate) fn real_uid(root: &SysRoot, pid: u32) -> Option<u32> {
    real_uid_in(root, pid, &mut Vec::new())
}

/// [`real_uid`] with `buf` as scratch. On the host the pidfd answers
/// ([`pidfd`]); otherwise, or when it can't, the status file does, in one
/// read(2) where `read_to_string` makes nine (a `statx`, then reads from
/// 32 bytes up, since procfs files report size 0).
fn real_uid_in(root: &SysRoot, pid: u32, buf: &mut Vec<u8>) -> Option<u32> {
    if root.is_host() {
        if let Ok(uid) = pidfd::real_uid(pid) {
            return Some(uid);
        }
    }
    let n = procfs::read_small(&root.proc_pid(pid, "status"), buf).ok()?;
    parse_real_uid(std::str::from_utf8(&buf[..n]).ok()?)
}

/// The first field of `Uid:` (real, effective, saved, filesystem).
fn parse_real_uid(status: &str) -> Option<u32> {
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().next()?.parse().ok()
}

/// uid → user name from the root's /etc/passwd; an unreadable file gives
/// an empty map (the reports then print numbers).
pub(crate) fn user_names(root: &SysRoot) -> BTreeMap<u32, String> {
    let Ok(text) = std::fs::read_to_string(root.path("/etc/passwd")) else {
        return BTreeMap::new();
    };
    parse_passwd(&text)
}

fn parse_passwd(text: &str) -> BTreeMap<u32, String> {
    let mut names = BTreeMap::new();
    for line in text.lines() {
        let mut f = line.split(':');
        if let (Some(name), Some(_), Some(uid)) = (f.next(), f.next(), f.next()) {
            if let Ok(uid) = uid.parse::<u32>() {
                // The first entry wins, as getpwuid(3) finds it.
                names.entry(uid).or_insert_with(|| name.to_string());
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::StaleProcess;
    use crate::core::unit_name::Owner;
    use std::fs;

    #[test]
    fn user_names_first_entry_wins() {
        let n = parse_passwd(
            "root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/:/bin/sh\nbad\n+::::::\nalice:x:1000:1000::/h:/bin/sh\n",
        );
        assert_eq!((n[&0].as_str(), n[&1000].as_str(), n.len()), ("root", "alice", 2));
    }

    #[test]
    fn real_uid_is_the_first_uid_field() {
        assert_eq!(parse_real_uid("Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t5\n"), Some(1000));
        for bad in ["", "Uid:\n", "Uid:\t-1\t0\n", "Name:\tUid: 5\n"] {
            assert_eq!(parse_real_uid(bad), None, "{bad:?}");
        }
        let me = real_uid(&SysRoot::new("/"), std::process::id());
        let status = fs::read_to_string("/proc/self/status").unwrap();
        assert_eq!(me, parse_real_uid(&status));
        assert!(me.is_some());
    }

    #[test]
    fn groups_read_the_status_only_outside_user_slices() {
        let (_t, root) = SysRoot::scratch();
        fs::create_dir_all(root.path("/etc")).unwrap();
        fs::write(
            root.path("/etc/passwd"),
            "alice:x:1000:1000::/h:/bin/sh\nweb:x:33:33::/:/bin/false\n",
        )
        .unwrap();
        for (pid, uid) in [(5, 33), (6, 1000)] {
            fs::create_dir_all(root.path(format!("/proc/{pid}"))).unwrap();
            fs::write(
                root.path(format!("/proc/{pid}/status")),
                format!("Uid:\t{uid}\t{uid}\t{uid}\t{uid}\n"),
            )
            .unwrap();
        }
        let o = |cg: &str, pid| OutsideProcess {
            cgroup: cg.into(),
            process: StaleProcess {
                pid,
                comm: "p".into(),
                owner: Owner::Outside(cg.into()),
                files: Vec::new(),
            },
        };
        // pid 6 runs as alice, but in uid 0's session: root's session.
        let outside = [
            o("/machine.slice/machine-web.scope", 5),
            o("/user.slice/user-0.slice/session-2.scope", 6),
            o("/machine.slice/gone.scope", 7),
        ];
        let got: Vec<(String, String)> = session_groups(&root, &outside)
            .iter()
            .map(|g| (g.who(), g.label()))
            .collect();
        let want = [
            ("0", "session #2"),
            ("web", "no session"),
            ("unknown user", "no session"),
        ];
        assert_eq!(got, want.map(|(u, s)| (u.to_string(), s.to_string())));
        assert!(session_groups(&root, &[]).is_empty());
    }
}
