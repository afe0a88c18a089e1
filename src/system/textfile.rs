//! Files other programs read from us, each written atomically inside the
//! root: the Prometheus textfile (node_exporter must never scrape half a
//! file), and Debian's `/run/reboot-required` flag with its package list.

use crate::system::sysroot::SysRoot;
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Debian's prometheus-node-exporter reads `*.prom` from here
/// (`--collector.textfile.directory` in /etc/default/prometheus-node-exporter).
pub const DEBIAN_TEXTFILE_DIR: &str = "/var/lib/prometheus/node-exporter";
pub const TEXTFILE_NAME: &str = "restart-stale.prom";

/// Debian's flag: update-notifier, unattended-upgrades and motd read it.
pub const REBOOT_REQUIRED: &str = "/run/reboot-required";
pub const REBOOT_REQUIRED_PKGS: &str = "/run/reboot-required.pkgs";

/// The textfile's path: the one given (an absolute path inside the root,
/// a relative one from the working directory, as a user typing it means),
/// or Debian's when its directory exists; `None` means no textfile.
pub fn textfile_path(root: &SysRoot, given: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = given {
        return Some(if p.is_absolute() { root.path(p) } else { p.to_path_buf() });
    }
    let dir = root.path(DEBIAN_TEXTFILE_DIR);
    dir.is_dir().then(|| dir.join(TEXTFILE_NAME))
}

/// Writes `data` to `path` through a temporary file in the same directory
/// and a rename, so a reader sees the old file or the new one, never a
/// part. The temporary name starts with a dot and does not end in `.prom`:
/// node_exporter only reads `*.prom`, so it never sees the partial file.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        // Readable by node_exporter, which runs as its own user.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        std::fs::rename(&tmp, path)
    };
    write()
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
        .with_context(|| format!("failed to write {}", path.display()))
}

/// Sets the reboot flag and adds `packages` to its list, keeping the
/// names already there (another package's postinst may have written them)
/// and each name once, so a repeated run changes nothing.
pub fn flag_reboot(root: &SysRoot, packages: &BTreeSet<String>) -> Result<()> {
    let flag = root.path(REBOOT_REQUIRED);
    if !flag.exists() {
        // Debian's own postinst scripts write this sentence.
        write_atomic(&flag, b"*** System restart required ***\n")?;
    }
    let list = root.path(REBOOT_REQUIRED_PKGS);
    let old = match std::fs::read_to_string(&list) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", list.display())),
    };
    let have: BTreeSet<&str> = old.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let new: Vec<&str> = packages
        .iter()
        .map(String::as_str)
        .filter(|p| !have.contains(p))
        .collect();
    if new.is_empty() && (list.exists() || packages.is_empty()) {
        return Ok(());
    }
    let mut text = old;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for p in new {
        text.push_str(p);
        text.push('\n');
    }
    write_atomic(&list, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn textfile_defaults_to_debians_directory_when_it_exists() {
        let (_t, root) = SysRoot::scratch();
        assert_eq!(textfile_path(&root, None), None);
        fs::create_dir_all(root.path(DEBIAN_TEXTFILE_DIR)).unwrap();
        let p = textfile_path(&root, None).unwrap();
        assert!(p.ends_with("var/lib/prometheus/node-exporter/restart-stale.prom"));
        let given = textfile_path(&root, Some(Path::new("/srv/x.prom"))).unwrap();
        assert_eq!(given, root.path("/srv/x.prom"));
        let relative = textfile_path(&root, Some(Path::new("out/x.prom"))).unwrap();
        assert_eq!(relative, Path::new("out/x.prom"));
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let (t, _root) = SysRoot::scratch();
        let p = t.path().join("a.prom");
        write_atomic(&p, b"one\n").unwrap();
        write_atomic(&p, b"two\n").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two\n");
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 1);
        let e = write_atomic(&t.path().join("missing/a.prom"), b"x").unwrap_err();
        assert!(format!("{e:#}").contains("failed to write"), "{e:#}");
    }

    #[test]
    fn reboot_flag_is_idempotent_and_keeps_other_names() {
        let (_t, root) = SysRoot::scratch();
        fs::create_dir_all(root.path("/run")).unwrap();
        fs::write(root.path(REBOOT_REQUIRED_PKGS), "linux-image-6.1.0-28-amd64").unwrap();
        let pkgs: BTreeSet<String> = ["dbus", "linux-image-6.1.0-28-amd64"].map(String::from).into();
        flag_reboot(&root, &pkgs).unwrap();
        flag_reboot(&root, &pkgs).unwrap();
        assert!(fs::read_to_string(root.path(REBOOT_REQUIRED))
            .unwrap()
            .contains("restart required"));
        assert_eq!(
            fs::read_to_string(root.path(REBOOT_REQUIRED_PKGS)).unwrap(),
            "linux-image-6.1.0-28-amd64\ndbus\n"
        );
    }
}
