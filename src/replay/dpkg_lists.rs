//! The files of installed Debian packages, from dpkg's lists
//! `/var/lib/dpkg/info/<pkg>[:<arch>].list`.
//!
//! dpkg names the list `<pkg>:<arch>.list` for `Multi-Arch: same`
//! packages and `<pkg>.list` otherwise, so the qualified name is tried
//! first. (Stand-in until the apt hook's `dpkg_info` lands on main.)

use crate::changed::ChangedSet;
use crate::sysroot::SysRoot;
use anyhow::Context;
use std::path::PathBuf;

pub const INFO_DIR: &str = "/var/lib/dpkg/info";

/// The list of `package` for `arch`, else the unqualified one; `None`
/// when the package is not installed.
fn find_list(root: &SysRoot, package: &str, arch: Option<&str>) -> Option<PathBuf> {
    let info = root.path(INFO_DIR);
    arch.map(|a| info.join(format!("{package}:{a}.list")))
        .into_iter()
        .chain([info.join(format!("{package}.list"))])
        .find(|p| p.is_file())
}

/// One absolute path a line; dpkg's `/.` and blank lines are dropped.
pub fn parse_list(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| l.starts_with('/') && *l != "/.")
}

/// The changed set and what could not be put into it.
#[derive(Debug, Default)]
pub struct Derived {
    pub set: ChangedSet,
    pub lists_read: usize,
    /// `pkg:arch` without a list now.
    pub without_list: Vec<String>,
    pub problems: Vec<String>,
}

/// The current files of `packages` (`(name, arch)`), directories left out:
/// they are never mapped code and would only bloat the set.
pub fn derive(root: &SysRoot, packages: &[(String, Option<String>)]) -> Derived {
    let mut d = Derived::default();
    for (name, arch) in packages {
        let Some(list) = find_list(root, name, arch.as_deref()) else {
            d.without_list
                .push(arch.as_ref().map_or(name.clone(), |a| format!("{name}:{a}")));
            continue;
        };
        let shown = format!("{INFO_DIR}/{}", list.file_name().unwrap_or_default().to_string_lossy());
        match std::fs::read(&list).with_context(|| format!("failed to read {shown}")) {
            Ok(data) => {
                d.lists_read += 1;
                parse_list(&String::from_utf8_lossy(&data))
                    .filter(|f| !is_dir(root, f))
                    .for_each(|f| d.set.insert(f));
            }
            Err(e) => d.problems.push(format!("{e:#}")),
        }
    }
    d
}

/// A path that is gone or unreadable counts as a file.
pub fn is_dir(root: &SysRoot, path: &str) -> bool {
    std::fs::metadata(root.path(path)).is_ok_and(|m| m.is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn multi_arch_same_lists_are_qualified_others_are_not() {
        let tmp = tempfile::tempdir().unwrap();
        let root = SysRoot::new(tmp.path());
        let info = root.path(INFO_DIR);
        fs::create_dir_all(&info).unwrap();
        fs::create_dir_all(root.path("/usr/lib/x86_64-linux-gnu")).unwrap();
        fs::write(
            info.join("libc6:amd64.list"),
            "/.\n/usr\n/usr/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu/libc.so.6\n",
        )
        .unwrap();
        fs::write(info.join("libfoo:i386.list"), "/usr/lib/i386-linux-gnu/libfoo.so.1\n").unwrap();
        fs::write(info.join("tool.list"), "/usr/bin/tool\n").unwrap();
        let pkgs = |v: &[(&str, Option<&str>)]| -> Vec<(String, Option<String>)> {
            v.iter().map(|(n, a)| (n.to_string(), a.map(str::to_string))).collect()
        };
        let d = derive(
            &root,
            &pkgs(&[
                ("libc6", Some("amd64")),
                ("libfoo", Some("i386")),
                ("tool", Some("amd64")),
                ("gone", Some("amd64")),
            ]),
        );
        assert_eq!(d.lists_read, 3);
        assert_eq!(d.without_list, ["gone:amd64"]);
        assert_eq!(d.set.len(), 3, "{:?}", d.set);
        assert!(d.set.contains("/usr/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(d.set.contains("/usr/lib/i386-linux-gnu/libfoo.so.1"));
        assert!(d.set.contains("/usr/bin/tool"));
        let d = derive(&root, &pkgs(&[("libfoo", Some("amd64"))]));
        assert_eq!(d.without_list, ["libfoo:amd64"]);
    }
}
