//! systemd unit-name rules: validation and unit lookup from cgroup paths.
//!
//! The rules follow systemd.unit(5) "Description": a name is a prefix, an
//! optional `@instance`, and a type suffix; only ASCII letters, digits and
//! `:-_.\` (plus `@` once) are allowed, at most 255 bytes.

use anyhow::{bail, Result};

/// Unit types that can own processes or be named in policy.
const SUFFIXES: &[&str] = &[
    ".service",
    ".socket",
    ".device",
    ".mount",
    ".automount",
    ".swap",
    ".target",
    ".path",
    ".timer",
    ".slice",
    ".scope",
];

const MAX_LEN: usize = 255;

fn valid_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b':' | b'-' | b'_' | b'.' | b'\\')
}

/// The type suffix of `name`, if it has a known one.
pub fn suffix(name: &str) -> Option<&'static str> {
    SUFFIXES.iter().copied().find(|s| name.ends_with(s))
}

/// Checks `name` against systemd's naming rules. Templates (`foo@.service`)
/// are accepted because policy links may name them.
pub fn validate(name: &str) -> Result<()> {
    if name.is_empty() {
        bail!("invalid unit name \"\": empty");
    }
    if name.len() > MAX_LEN {
        bail!("invalid unit name {name:?}: longer than {MAX_LEN} bytes");
    }
    let Some(sfx) = suffix(name) else {
        bail!("invalid unit name {name:?}: missing or unknown type suffix (e.g. .service)");
    };
    let stem = &name[..name.len() - sfx.len()];
    let (prefix, instance) = match stem.split_once('@') {
        Some((p, i)) => (p, Some(i)),
        None => (stem, None),
    };
    if prefix.is_empty() {
        bail!("invalid unit name {name:?}: empty prefix before the suffix");
    }
    let bad = |s: &str| s.bytes().find(|&c| !valid_char(c));
    if let Some(c) = bad(prefix).or_else(|| instance.and_then(bad)) {
        bail!("invalid unit name {name:?}: character {:?} is not allowed", c as char);
    }
    if name.starts_with('.') {
        bail!("invalid unit name {name:?}: must not start with '.'");
    }
    Ok(())
}

/// `foo@bar.service` → `foo@.service`; `None` for non-instances.
pub fn template_of(name: &str) -> Option<String> {
    let at = name.find('@')?;
    let sfx = suffix(name)?;
    if at + 1 + sfx.len() > name.len() || name[at + 1..].len() == sfx.len() {
        return None;
    }
    Some(format!("{}@{}", &name[..at], sfx))
}

/// Where a cgroup path places a process.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owner {
    /// A unit under `system.slice`, possibly in nested slices or in a
    /// delegated sub-cgroup of the unit.
    Unit(String),
    /// PID 1's own cgroup.
    Init,
    /// Anything else: `user.slice`, `machine.slice`, the root cgroup.
    Outside(String),
}

/// Maps a cgroup path (as in `/proc/PID/cgroup`, starting with `/`) to its owner.
pub fn owner_of_cgroup(path: &str) -> Owner {
    let mut parts = path.trim_start_matches('/').split('/');
    match parts.next() {
        Some("init.scope") => return Owner::Init,
        Some("system.slice") => {}
        _ => return Owner::Outside(path.to_string()),
    }
    for part in parts {
        // Nested slices (system-getty.slice) are containers, not owners.
        if part.ends_with(".slice") {
            continue;
        }
        if suffix(part).is_some() && validate(part).is_ok() {
            return Owner::Unit(part.to_string());
        }
        break;
    }
    Owner::Outside(path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_systemd_names() {
        let longest = format!("{}.service", "a".repeat(MAX_LEN - ".service".len()));
        let mut names = vec![
            "foo.service".to_string(),
            "getty@tty1.service".into(),
            "foo@.service".into(),
            "a:b-c_d.e\\x2d.socket".into(),
            longest.clone(),
        ];
        names.extend(SUFFIXES.iter().map(|s| format!("x{s}")));
        for n in &names {
            assert!(validate(n).is_ok(), "{n:?} refused: {:#}", validate(n).unwrap_err());
        }
        assert_eq!(longest.len(), MAX_LEN);
        assert!(validate(&format!("a{longest}")).is_err(), "one byte over {MAX_LEN}");
    }

    #[test]
    fn refuses_bad_names_naming_them() {
        for n in [
            "",
            "../x",
            "x",
            "a/b.service",
            "foo.exe",
            ".service",
            "@x.service",
            "a b.service",
        ] {
            let err = validate(n).unwrap_err().to_string();
            assert!(err.contains(&format!("{n:?}")), "{err}");
        }
    }

    #[test]
    fn template_of_instances() {
        assert_eq!(template_of("getty@tty1.service").as_deref(), Some("getty@.service"));
        assert_eq!(template_of("getty@.service"), None);
        assert_eq!(template_of("sshd.service"), None);
    }

    #[test]
    fn owner_from_cgroup_paths() {
        use Owner::*;
        let u = |s: &str| Unit(s.to_string());
        assert_eq!(owner_of_cgroup("/system.slice/cron.service"), u("cron.service"));
        assert_eq!(
            owner_of_cgroup("/system.slice/system-getty.slice/getty@tty1.service"),
            u("getty@tty1.service")
        );
        assert_eq!(
            owner_of_cgroup("/system.slice/docker.service/payload/inner"),
            u("docker.service")
        );
        assert_eq!(owner_of_cgroup("/init.scope"), Init);
        assert!(matches!(
            owner_of_cgroup("/user.slice/user-1000.slice/session-1.scope"),
            Outside(_)
        ));
        assert!(matches!(owner_of_cgroup("/"), Outside(_)));
        assert!(matches!(owner_of_cgroup("/system.slice"), Outside(_)));
    }
}
