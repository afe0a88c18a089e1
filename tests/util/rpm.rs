//! A stand-in for `rpm -ql --root ROOT NEVRA...` and `rpm -q --qf FORMAT
//! --root ROOT NAME...` (`RESTART_STALE_RPM`, honoured in test roots only):
//! it lists `ROOT/rpmdb/<NAME>` (files), `ROOT/rpmdb-packages/<NAME>`
//! (packages) or, for the changelog query's format, `ROOT/rpmdb-changelogs/<NAME>`,
//! where NAME is whatever the query names (a NEVRA, or `name.arch`), and
//! logs each call to `ROOT/rpm-calls`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const RPM: &str = r#"#!/bin/sh
# Stand-in for `rpm -ql --root ROOT NEVRA...` (lists ROOT/rpmdb/NEVRA) and
# `rpm -q --qf FORMAT --root ROOT NAME...` (lists ROOT/rpmdb-packages/NAME).
if [ "$1" = -ql ] && [ "$2" = --root ]; then
    root=$3; db=rpmdb; shift 3
elif [ "$1" = -q ] && [ "$2" = --qf ] && [ "$4" = --root ]; then
    case $3 in
        @@restart-stale*) db=rpmdb-changelogs ;;
        *) db=rpmdb-packages ;;
    esac
    root=$5; shift 5
else
    echo "unexpected: $*" >&2; exit 2
fi
echo "$*" >>"$root/rpm-calls"
missing=0
for n in "$@"; do
    if [ -f "$root/$db/$n" ]; then cat "$root/$db/$n"
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

/// Makes `rpm -q` answer `query` (such as `name.arch`) with `nevras`.
pub fn installed_as(root: &Path, query: &str, nevras: &[&str]) {
    fs::create_dir_all(root.join("rpmdb-packages")).unwrap();
    let text: String = nevras.iter().map(|n| format!("{n}\n")).collect();
    fs::write(root.join("rpmdb-packages").join(query), text).unwrap();
}

/// Makes the changelog query answer `query` (`name.arch`) with `files`
/// and the `rpm -q --changelog` text `changelog`.
pub fn changelog(root: &Path, query: &str, files: &[&str], changelog: &str) {
    fs::create_dir_all(root.join("rpmdb-changelogs")).unwrap();
    let files: String = files.iter().map(|f| format!("F {f}\n")).collect();
    let text = format!("@@restart-stale {query}\n{files}{changelog}");
    fs::write(root.join("rpmdb-changelogs").join(query), text).unwrap();
}
