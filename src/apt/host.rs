//! Where the hook runs: suspended by the admin, or where no systemd
//! manages services (a chroot, an image build, a container without
//! systemd). In those cases the hooks do nothing and say why.

use crate::sysroot::SysRoot;
use std::os::unix::fs::MetadataExt;

/// Set to a non-empty value other than `0` to make the apt hooks do
/// nothing at all (like needrestart's `NEEDRESTART_SUSPEND`).
pub const SUSPEND_ENV: &str = "RESTART_STALE_SUSPEND";

/// Why the hooks are suspended, if they are.
pub fn suspended() -> Option<String> {
    let value = std::env::var(SUSPEND_ENV).ok()?;
    (!value.is_empty() && value != "0").then(|| format!("{SUSPEND_ENV}={value} is set"))
}

/// `Ok` when systemd runs this system and we are not in a chroot;
/// otherwise the reason we should leave services alone.
///
/// systemd creates `/run/systemd/system` at boot (sd_booted(3)). Inside a
/// chroot that shares the host's `/run` and `/proc` that directory
/// exists too, so we also compare our root with PID 1's, as
/// systemd-detect-virt `--chroot` does.
pub fn systemd_running(root: &SysRoot) -> Result<(), String> {
    if !root.path("/run/systemd/system").is_dir() {
        return Err("no systemd running".into());
    }
    let ours = std::fs::metadata(root.root()).map_err(|e| format!("cannot stat {}: {e}", root.root().display()))?;
    let pid1_path = root.path("/proc/1/root");
    let pid1 = std::fs::metadata(&pid1_path)
        .map_err(|e| format!("cannot tell whether this is a chroot ({}: {e})", pid1_path.display()))?;
    if (ours.dev(), ours.ino()) != (pid1.dev(), pid1.ino()) {
        return Err("running in a chroot".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_systemd_and_the_same_root_as_pid1() {
        let tmp = tempfile::tempdir().unwrap();
        let root = SysRoot::new(tmp.path());
        assert_eq!(systemd_running(&root), Err("no systemd running".into()));
        std::fs::create_dir_all(root.path("/run/systemd/system")).unwrap();
        assert!(systemd_running(&root).unwrap_err().contains("cannot tell"));
        std::fs::create_dir_all(root.path("/proc/1")).unwrap();
        std::fs::create_dir_all(root.path("/elsewhere")).unwrap();
        std::os::unix::fs::symlink(root.path("/elsewhere"), root.path("/proc/1/root")).unwrap();
        assert_eq!(systemd_running(&root), Err("running in a chroot".into()));
        std::fs::remove_file(root.path("/proc/1/root")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), root.path("/proc/1/root")).unwrap();
        assert_eq!(systemd_running(&root), Ok(()));
    }
}
