//! Where users, not packages, control the files.
//!
//! A file under one of these places never makes a service restart,
//! whatever signal found it (mapping, open file, script, import): a user
//! whose process runs inside a service's cgroup, or who can write where a
//! service reads, could otherwise trigger restarts at will. Such findings
//! are reported, flagged report-only, and the plan skips a unit that has
//! nothing else stale. (`/tmp`, `/var/tmp` and `/run` go further: they are
//! never considered at all, see `staleness::ignored`.)

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
pub fn user_controlled(path: &str) -> bool {
    // Asked for every stale file of a report (tens of thousands on a busy
    // host), nearly all under /usr: one byte settles those.
    match path.as_bytes().get(1) {
        Some(b'h' | b'r' | b's' | b'm' | b't' | b'v' | b'd') => USER_CONTROLLED.iter().any(|p| path.starts_with(p)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
