//! Where users, not packages, control the files.
//!
//! A file under one of these places never makes a service restart,
//! whatever signal found it (mapping, open file, script, import): a user
//! whose process runs inside a service's cgroup, or who can write where a
//! service reads, could otherwise trigger restarts at will. Such findings
//! are reported, flagged report-only, and the plan skips a unit that has
//! nothing else stale. (`/tmp`, `/var/tmp` and `/run` go further: they are
//! never considered at all, see `staleness::ignored`.)
//!
//! The places are a fast first test on the path as the kernel prints it.
//! A home reached through a link (OSTree's `/var/home`) or a directory
//! open to everyone (`/var/crash`) is caught by who owns the resolved
//! path and who may write it ([`opens_to_users`]); `system::ownership`
//! walks the filesystem for it.

/// Places no distribution package installs into, and users (or the
/// services' own data) fill. Documented in README.md ("Where users control
/// files").
const USER_CONTROLLED: &[&str] = &[
    "/home/",
    "/root/",
    "/srv/",
    "/mnt/",
    "/media/",
    "/tmp/",
    "/var/tmp/",
    "/run/",
    "/dev/shm/",
    "/var/mail/",
    "/var/spool/",
    "/var/www/",
];

/// Whether `path` (as the process sees it) lies where users control files.
pub(crate) fn user_controlled(path: &str) -> bool {
    // Asked for every stale file of a report (tens of thousands on a busy
    // host), nearly all under /usr: one byte settles those.
    match path.as_bytes().get(1) {
        Some(b'h' | b'r' | b's' | b'm' | b't' | b'v' | b'd') => USER_CONTROLLED.iter().any(|p| path.starts_with(p)),
        _ => false,
    }
}

/// An entry of a resolved path, as `lstat` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub uid: u32,
    pub gid: u32,
    /// `st_mode`: file type and permission bits.
    pub mode: u32,
}

/// The ids whose files are the system's own: root's, and those of whoever
/// runs the tool (root on a host; the user running a test, whose files
/// that user could restart services for anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trusted {
    pub uid: u32,
    pub gid: u32,
}

const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_ISVTX: u32 = 0o1000;

/// Whether someone other than the trusted ids can change what lies at or
/// below `e`: it belongs to another user, or another group or everyone
/// may write it. A sticky directory owned by a trusted id is the
/// exception (`/tmp`, `/var/crash`): there users can only rename and
/// remove their own entries, so only the entry's own owner matters, and
/// that is asked of the entry.
pub(crate) fn opens_to_users(e: Entry, t: Trusted) -> bool {
    let trusted_owner = e.uid == 0 || e.uid == t.uid;
    let group_writes = e.mode & 0o020 != 0 && e.gid != 0 && e.gid != t.gid;
    let others_write = e.mode & 0o002 != 0;
    let sticky_dir = e.mode & S_IFMT == S_IFDIR && e.mode & S_ISVTX != 0;
    !trusted_owner || ((group_writes || others_write) && !sticky_dir)
}

/// Whether users control a file given its resolved path's entries: the
/// file (`None` when it no longer exists) and its directories up to `/`.
#[cfg(test)]
pub(crate) fn users_control(file: Option<Entry>, dirs: &[Entry], t: Trusted) -> bool {
    file.into_iter()
        .chain(dirs.iter().copied())
        .any(|e| opens_to_users(e, t))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Trusted = Trusted { uid: 0, gid: 0 };
    const DIR: u32 = S_IFDIR;
    const REG: u32 = 0o100_000;

    fn e(uid: u32, gid: u32, mode: u32) -> Entry {
        Entry { uid, gid, mode }
    }

    #[test]
    fn ownership_and_writability_decide() {
        let usr = e(0, 0, DIR | 0o755);
        let root_file = e(0, 0, REG | 0o644);
        let tmp = e(0, 0, DIR | 0o1777);
        #[rustfmt::skip]
        let table: &[(&str, Option<Entry>, &[Entry], bool)] = &[
            ("root's file in root's tree", Some(root_file), &[usr, usr], false),
            ("a user's file", Some(e(1000, 1000, REG | 0o644)), &[usr], true),
            ("a user's directory on the way", Some(root_file), &[e(1000, 1000, DIR | 0o755), usr], true),
            ("a user's directory higher up", Some(root_file), &[usr, usr, e(1000, 0, DIR | 0o700), usr], true),
            ("everyone may write the file", Some(e(0, 0, REG | 0o666)), &[usr], true),
            ("another group may write the directory", Some(root_file), &[e(0, 50, DIR | 0o2775), usr], true),
            ("root's group may write the directory", Some(root_file), &[e(0, 0, DIR | 0o775), usr], false),
            ("everyone may write a non-sticky directory", Some(root_file), &[e(0, 0, DIR | 0o777), usr], true),
            ("root's file in a sticky root directory", Some(root_file), &[tmp, usr], false),
            ("a user's file in a sticky root directory", Some(e(1000, 1000, REG | 0o600)), &[tmp, usr], true),
            ("root's directory in a sticky root directory", Some(root_file), &[usr, tmp, usr], false),
            ("a sticky directory a user owns", Some(root_file), &[e(1000, 1000, DIR | 0o1777), usr], true),
            ("the sticky bit on a file does not protect it", Some(e(0, 0, REG | 0o1666)), &[usr], true),
            ("a deleted file in root's tree", None, &[usr, usr], false),
            ("a deleted file in a user's directory", None, &[e(1000, 1000, DIR | 0o755), usr], true),
            ("a deleted file in a sticky root directory", None, &[tmp, usr], false),
        ];
        for (what, file, dirs, want) in table {
            assert_eq!(users_control(*file, dirs, ME), *want, "{what}");
        }
    }

    #[test]
    fn whoever_runs_the_tool_is_trusted_like_root() {
        let me = Trusted { uid: 1000, gid: 1000 };
        let usr = e(0, 0, DIR | 0o755);
        assert!(!users_control(
            Some(e(1000, 1000, REG | 0o664)),
            &[e(1000, 1000, DIR | 0o775), usr],
            me
        ));
        assert!(users_control(Some(e(1001, 1000, REG | 0o644)), &[usr], me));
        assert!(users_control(Some(e(1000, 1001, REG | 0o664)), &[usr], me));
    }

    #[test]
    fn home_and_srv_are_user_places_usr_is_not() {
        assert!(user_controlled("/home/alice/lib/evil.py"));
        assert!(user_controlled("/srv/app/main.pl"));
        assert!(user_controlled("/root/x.so"));
        assert!(!user_controlled("/usr/lib/python3/dist-packages/a.py"));
        assert!(!user_controlled("/homework/x"));
        for p in USER_CONTROLLED {
            assert!(user_controlled(&format!("{p}x")), "{p}");
        }
    }
}
