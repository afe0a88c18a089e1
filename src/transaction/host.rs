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
/// restarts (mark the units for a maintenance window, docs/deferred.md):
/// the switch for pacman, zypper and dnf 5, which have no setting of
/// their own for it; apt and dnf 4 honour it too.
pub const DEFER_ENV: &str = "RESTART_STALE_DEFER";

/// Whether the hook's caller asked to defer the restarts.
pub fn deferred() -> bool {
    std::env::var(DEFER_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Kept here for the hooks' callers; the check itself lives with the
/// systemd boundary, where the restart step uses it too.
pub use crate::systemd::running as systemd_running;
