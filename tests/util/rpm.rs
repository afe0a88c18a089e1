//! A stand-in for `rpm -ql --root ROOT NEVRA...` (`RESTART_STALE_RPM`,
//! honoured in test roots only): it lists `ROOT/rpmdb/<NAME>`, where NAME
//! is whatever the query names (a NEVRA, or `name.arch`), and logs each
//! call to `ROOT/rpm-calls`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const RPM: &str = r#"#!/bin/sh
# Stand-in for `rpm -ql --root ROOT NEVRA...`: lists ROOT/rpmdb/NEVRA.
[ "$1" = -ql ] && [ "$2" = --root ] || { echo "unexpected: $*" >&2; exit 2; }
root=$3; shift 3
echo "$*" >>"$root/rpm-calls"
missing=0
for n in "$@"; do
    if [ -f "$root/rpmdb/$n" ]; then cat "$root/rpmdb/$n"
    else echo "package $n is not installed"; missing=$((missing + 1)); fi
done
exit $missing
"#;

/// Writes the stand-in where any user may run it; the directory lives as
/// long as the returned guard.
pub fn rpm_stand_in() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let rpm = dir.path().join("rpm");
    fs::write(&rpm, RPM).unwrap();
    fs::set_permissions(&rpm, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    (dir, rpm)
}

/// Makes rpm answer `name` with `files`.
pub fn installed(root: &Path, nevra: &str, files: &[&str]) {
    fs::create_dir_all(root.join("rpmdb")).unwrap();
    let text: String = files.iter().map(|f| format!("{f}\n")).collect();
    fs::write(root.join("rpmdb").join(nevra), text).unwrap();
}
