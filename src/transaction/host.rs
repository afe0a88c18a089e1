//! Where the hook runs: suspended by the admin, or where no systemd
//! manages services (a chroot, an image build, a container without
//! systemd). In those cases the hooks do nothing and say why.

/// Set to a non-empty value other than `0` to make the apt hooks do
/// nothing at all (like needrestart's `NEEDRESTART_SUSPEND`).
pub const SUSPEND_ENV: &str = "RESTART_STALE_SUSPEND";

/// Why the hooks are suspended, if they are.
pub fn suspended() -> Option<String> {
    let value = std::env::var(SUSPEND_ENV).ok()?;
    (!value.is_empty() && value != "0").then(|| format!("{SUSPEND_ENV}={value} is set"))
}

/// Set to a non-empty value other than `0` to defer this transaction's
/// restarts (mark the units for a maintenance window, docs/deferred.md),
/// for one run of any package manager.
pub const DEFER_ENV: &str = "RESTART_STALE_DEFER";

/// The lasting setting for every package manager's hooks, for the
/// managers that have no configuration of their own for it (pacman,
/// zypper, dnf 5); apt and dnf 4 honour it too. Lines `key = value`,
/// `#` comments. Not in `/etc/restart-stale/`, which holds only policy
/// links.
pub const HOOKS_CONF: &str = "/etc/restart-stale.conf";

/// Why this transaction's restarts are deferred, if they are: the
/// caller's environment, or [`HOOKS_CONF`].
pub fn deferred(root: &SysRoot) -> Option<String> {
    if let Ok(v) = std::env::var(DEFER_ENV) {
        if !v.is_empty() && v != "0" {
            return Some(format!("{DEFER_ENV}={v} is set"));
        }
    }
    hooks_conf_defers(root)
}

/// `auto-restart = false` in [`HOOKS_CONF`] defers. A file or value that
/// cannot be read defers too, with a warning: the admin meant something,
/// and marking instead of restarting is the side that can be undone.
fn hooks_conf_defers(root: &SysRoot) -> Option<String> {
    let path = root.path(HOOKS_CONF);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            log::warn!("cannot read {HOOKS_CONF}: {e}; restarts are deferred");
            return Some(format!("{HOOKS_CONF} cannot be read"));
        }
    };
    let text = String::from_utf8_lossy(&text);
    let mut defer = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            log::warn!("{HOOKS_CONF}:{}: not `key = value`, ignored", n + 1);
            continue;
        };
        match key.trim() {
            "auto-restart" => match super::record::parse_bool(value) {
                Some(true) => defer = None,
                Some(false) => defer = Some(format!("{HOOKS_CONF} says auto-restart = false")),
                None => {
                    log::warn!(
                        "{HOOKS_CONF}:{}: auto-restart {:?} is not a boolean; restarts are deferred",
                        n + 1,
                        value.trim()
                    );
                    defer = Some(format!("{HOOKS_CONF}:{} is not a boolean", n + 1));
                }
            },
            // Read by `security_only`.
            "restart" => {}
            // Read by conf_settle.
            "settle" => {}
            other => log::warn!("{HOOKS_CONF}:{}: unknown setting {other:?}, ignored", n + 1),
        }
    }
    defer
}

/// The values `key` is given in [`HOOKS_CONF`], with their line numbers,
/// in file order (the last one wins); none when the file is unreadable
/// (`hooks_conf_defers` says so).
fn conf_values(root: &SysRoot, key: &str) -> Vec<(usize, String)> {
    let Ok(text) = std::fs::read(root.path(HOOKS_CONF)) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&text)
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with('#'))
        .filter_map(|(n, line)| {
            let (k, v) = line.split_once('=')?;
            (k.trim() == key).then(|| (n + 1, v.trim().to_string()))
        })
        .collect()
}

/// `restart = security` in [`HOOKS_CONF`]: only the units a security
/// fix is behind restart now, the others are marked (docs/cves.md);
/// `restart = all`, the default, restarts every allowed unit. The last
/// line that sets it wins; an unknown value warns and keeps the default.
pub(crate) fn security_only(root: &SysRoot) -> bool {
    let mut security = false;
    for (n, v) in conf_values(root, "restart") {
        match v.as_str() {
            "security" => security = true,
            "all" => security = false,
            v => log::warn!("{HOOKS_CONF}:{n}: restart {v:?} is neither all nor security, ignored"),
        }
    }
    security
}

/// `settle = SECONDS` in [`HOOKS_CONF`]: the health gate's settle time
/// when `--settle` is not given (docs/restarts.md). `None` when unset,
/// unreadable or not a number (with a warning): the default holds then.
pub(crate) fn conf_settle(root: &SysRoot) -> Option<std::time::Duration> {
    let mut settle = None;
    for (n, v) in conf_values(root, "settle") {
        match v.parse::<u64>() {
            Ok(s) => settle = Some(std::time::Duration::from_secs(s)),
            Err(_) => log::warn!("{HOOKS_CONF}:{n}: settle {v:?} is not a number of seconds, ignored"),
        }
    }
    settle
}

use crate::system::sysroot::SysRoot;

/// Kept here for the hooks' callers; the check itself lives with the
/// systemd boundary, where the restart step uses it too.
pub use crate::systemd::running as systemd_running;

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: Option<&str>) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let root = SysRoot::new(dir.path());
        if let Some(t) = text {
            std::fs::create_dir_all(dir.path().join("etc")).unwrap();
            std::fs::write(root.path(HOOKS_CONF), t).unwrap();
        }
        hooks_conf_defers(&root)
    }

    #[test]
    fn restart_security_is_read_and_does_not_defer() {
        let dir = tempfile::tempdir().unwrap();
        let root = SysRoot::new(dir.path());
        assert!(!security_only(&root));
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        for (text, want) in [
            ("restart = security\n", true),
            ("# restart = security\n", false),
            ("restart = security\nrestart = all\n", false),
            ("restart = sometimes\n", false),
        ] {
            std::fs::write(root.path(HOOKS_CONF), text).unwrap();
            assert_eq!(security_only(&root), want, "{text}");
            assert_eq!(hooks_conf_defers(&root), None, "{text}");
        }
    }

    #[test]
    fn hooks_conf_defers_only_when_it_says_so_or_cannot_be_read() {
        assert_eq!(conf(None), None);
        assert_eq!(conf(Some("# nothing\n\n")), None);
        assert_eq!(conf(Some("auto-restart = true\n")), None);
        assert_eq!(
            conf(Some("# window at night\nauto-restart = false\n")).as_deref(),
            Some("/etc/restart-stale.conf says auto-restart = false")
        );
        assert_eq!(
            conf(Some("auto-restart=maybe\n")).as_deref(),
            Some("/etc/restart-stale.conf:1 is not a boolean")
        );
        // The settle time is not an unknown setting.
        assert_eq!(conf(Some("settle = 0\n")), None);
        // The last line that sets it wins; junk lines are ignored.
        assert_eq!(
            conf(Some("auto-restart = no\nfoo\nbar = 1\nauto-restart = yes\n")),
            None
        );
    }

    #[test]
    fn the_settle_time_comes_from_the_conf_file() {
        let settle = |text: Option<&str>| {
            let dir = tempfile::tempdir().unwrap();
            let root = SysRoot::new(dir.path());
            if let Some(t) = text {
                std::fs::create_dir_all(dir.path().join("etc")).unwrap();
                std::fs::write(root.path(HOOKS_CONF), t).unwrap();
            }
            conf_settle(&root).map(|d| d.as_secs())
        };
        assert_eq!(settle(None), None);
        assert_eq!(settle(Some("auto-restart = true\n")), None);
        assert_eq!(settle(Some("settle = 12\n")), Some(12));
        assert_eq!(settle(Some("settle=0\n# settle = 9\n")), Some(0));
        assert_eq!(settle(Some("settle = soon\n")), None);
    }
}
