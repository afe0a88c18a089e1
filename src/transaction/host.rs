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

/// Kept here for the hooks' callers; the check itself lives with the
/// systemd boundary, where the restart step uses it too.
pub use crate::systemd::running as systemd_running;
