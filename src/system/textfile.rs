//! Files other programs read from us, each written atomically inside the
//! root: the Prometheus textfile (node_exporter must never scrape half a
//! file), and Debian's `/run/reboot-required` flag with its package list.

use crate::system::safe_write::{self, TrustedDir};
use crate::system::sysroot::SysRoot;
use anyhow::{Context, Result};
use std::collections::BTreeSet;
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
pub(crate) fn textfile_path(root: &SysRoot, given: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = given {
        return Some(if p.is_absolute() { root.path(p) } else { p.to_path_buf() });
    }
    let dir = root.path(DEBIAN_TEXTFILE_DIR);
    dir.is_dir().then(|| dir.join(TEXTFILE_NAME))
}

/// Writes `data` to `path` (mode 0644: node_exporter runs as its own
/// user) through [`safe_write`], so a reader sees the old file or the new
/// one, never a part, and a link planted in the directory is never
/// followed. The temporary name starts with a dot and does not end in
/// `.prom`: node_exporter only reads `*.prom`, so it never sees the
/// partial file. A directory that another user owns or that group or
/// others can write is refused, with an error naming it.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    safe_write::replace_file(path, data, 0o644, false)
}

/// Sets the reboot flag and adds `packages` to its list, keeping the
/// names already there (another package's postinst may have written them)
/// and each name once, so a repeated run changes nothing. Both files are
/// read and written only through the checked directory of the flag.
pub(crate) fn flag_reboot(root: &SysRoot, packages: &BTreeSet<String>) -> Result<()> {
    let flag = root.path(REBOOT_REQUIRED);
    let (dir, flag_name) = safe_write::split(&flag)?;
    let dir = TrustedDir::open(dir).with_context(|| format!("failed to write {}", flag.display()))?;
    let list = root.path(REBOOT_REQUIRED_PKGS);
    let (_, list_name) = safe_write::split(&list)?;
    if dir.read(flag_name)?.is_none() {
        // Debian's own postinst scripts write this sentence.
        dir.replace(flag_name, b"*** System restart required ***\n", 0o644)?;
    }
    let found = dir.read(list_name)?;
    let exists = found.is_some();
    let old = String::from_utf8_lossy(&found.unwrap_or_default()).into_owned();
    let have: BTreeSet<&str> = old.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let new: Vec<&str> = packages
        .iter()
        .map(String::as_str)
        .filter(|p| !have.contains(p))
        .collect();
    if new.is_empty() && (exists || packages.is_empty()) {
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
    dir.replace(list_name, text.as_bytes(), 0o644)
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

    /// The name the writer once used for its temporary file was
    /// predictable: a link planted there made root truncate, overwrite
    /// and chmod 0644 whatever it pointed at.
    #[test]
    fn a_link_at_the_old_temporary_name_is_never_written_through() {
        use std::os::unix::fs::{symlink, MetadataExt};
        let (t, _root) = SysRoot::scratch();
        let victim = t.path().join("shadow");
        fs::write(&victim, "root:secret\n").unwrap();
        fs::set_permissions(&victim, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let p = t.path().join("restart-stale.prom");
        let planted = t.path().join(format!(".restart-stale.prom.{}.tmp", std::process::id()));
        symlink(&victim, &planted).unwrap();
        write_atomic(&p, b"metrics\n").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "root:secret\n");
        assert_eq!(fs::metadata(&victim).unwrap().mode() & 0o777, 0o600);
        let written = fs::symlink_metadata(&p).unwrap();
        assert!(written.is_file(), "the textfile is a link");
        assert_eq!(written.mode() & 0o777, 0o644);
        assert_eq!(fs::read_to_string(&p).unwrap(), "metrics\n");
    }

    #[test]
    fn reboot_flag_is_not_written_where_others_can_write() {
        let (_t, root) = SysRoot::scratch();
        fs::create_dir_all(root.path("/run")).unwrap();
        fs::set_permissions(root.path("/run"), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let pkgs: BTreeSet<String> = ["dbus".to_string()].into();
        let e = format!("{:#}", flag_reboot(&root, &pkgs).unwrap_err());
        assert!(e.contains(&root.path("/run").display().to_string()), "{e}");
        assert!(!root.path(REBOOT_REQUIRED).exists());
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
