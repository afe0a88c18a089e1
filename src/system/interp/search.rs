//! Module search paths, derived from the interpreter's name and the
//! distribution's fixed layout, never from running the interpreter.
//!
//! Every path here is in the inspected process's view (its root); the
//! walker reads them under `/proc/PID/root`, through the process's
//! [`Jail`], never by a path of ours. Directories that do not
//! exist cost one failed `stat` each, so the lists name the Debian and
//! Fedora layouts side by side.

use super::cmdline::Interpreter;
use crate::system::safe_open::Jail;

/// Normalises an absolute path lexically: `.` and empty parts dropped,
/// `..` taken back (never above `/`). Paths from a process's command line
/// or environment thus stay inside its root when joined under it.
pub(crate) fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Paths in the kernel's own filesystems. `/dev/fd/3` or
/// `/proc/self/...` (`bash /dev/fd/3`, a `PYTHONPATH` entry) would name
/// *our* descriptors and files when looked up from here, not the
/// process's: a script or module path there is never followed.
pub fn pseudo(path: &str) -> bool {
    ["/proc", "/dev", "/sys"].iter().any(|p| {
        path.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// `rel` made absolute against `dir` (both in the process's view).
pub fn absolute(dir: &str, rel: &str) -> String {
    if rel.starts_with('/') {
        normalize(rel)
    } else {
        normalize(&format!("{dir}/{rel}"))
    }
}

/// `path` (absolute, in the process's view) with its symbolic links
/// resolved inside `root`, as the interpreter saw it: Python puts the
/// directory of the script's real path first on its module path, so a
/// script installed as a link (`/usr/bin/x` → `/usr/share/x/x.py`) imports
/// from the link target's directory. Links are read, never followed by
/// the kernel, so an absolute target stays inside `root`. Gives up after
/// 40 links, like the kernel.
pub(crate) fn resolve_links(root: &Jail, path: &str) -> String {
    let mut todo: Vec<String> = normalize(path)
        .split('/')
        .rev()
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect();
    let mut done = String::new();
    let mut hops = 0;
    while let Some(part) = todo.pop() {
        let candidate = format!("{done}/{part}");
        let Some(target) = root.read_link(&candidate) else {
            done = candidate;
            continue;
        };
        hops += 1;
        let Some(target) = target.to_str().filter(|_| hops <= 40) else {
            return normalize(path);
        };
        if target.starts_with('/') {
            done.clear();
        }
        todo.extend(target.split('/').rev().filter(|p| !p.is_empty()).map(String::from));
        // `..` and `.` from a link target are taken as they come.
        while let Some(p) = todo.last() {
            match p.as_str() {
                "." => {
                    todo.pop();
                }
                ".." => {
                    todo.pop();
                    done = parent(&done);
                    if done == "/" {
                        done.clear();
                    }
                }
                _ => break,
            }
        }
    }
    if done.is_empty() {
        "/".to_string()
    } else {
        done
    }
}

/// The directory part of an absolute path.
pub fn parent(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => path[..i].to_string(),
    }
}

/// The versions found as subdirectories of `dir` (under the process's
/// `root`) whose names start with `prefix` and continue with a digit,
/// highest first: `python3.11` under `/usr/lib` gives `3.11`.
fn versions_in(root: &Jail, dir: &str, prefix: &str) -> Vec<String> {
    let mut found: Vec<String> = root
        .list(dir)
        .into_iter()
        .filter_map(|name| {
            let name = name.into_string().ok()?;
            let v = name.strip_prefix(prefix)?;
            (v.starts_with(|c: char| c.is_ascii_digit()) && v.chars().all(|c| c.is_ascii_digit() || c == '.'))
                .then(|| v.to_string())
        })
        .collect();
    found.sort_by_key(|v| std::cmp::Reverse(version_key(v)));
    found
}

fn version_key(v: &str) -> Vec<u32> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// An interpreter's fixed module path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Fixed {
    /// In search order.
    pub dirs: Vec<String>,
    /// Those of `dirs` that hold the interpreter's own library (Python's
    /// standard library, Debian's `perl-base`). Their files ship with the
    /// interpreter's executable, or in binary packages that depend on its
    /// exact version: a new copy of any of them comes with a new
    /// executable (or `libpython`), which the mapping signal sees. So the walk checks the modules a script
    /// loads from there, but does not follow their own imports, which are
    /// most of a walk's cost (docs/benchmarks.md). Fedora's
    /// `/usr/share/perl5`, where core modules are packaged one by one, is
    /// not among them; nor is any `site-packages`/`dist-packages`.
    pub core: Vec<String>,
}

/// Python's module path after the script's directory and PYTHONPATH.
/// `exe` is the interpreter's path in the process's view: an interpreter
/// outside `/usr` (`/opt/python/bin/python3.12`, a pyenv build) has its
/// own `lib/python3.X` next to its `bin`.
pub fn python(root: &Jail, interp: &Interpreter, exe: &str) -> Fixed {
    let version = if interp.version.contains('.') {
        interp.version.clone()
    } else {
        match versions_in(root, "/usr/lib", "python3.").first() {
            Some(minor) => format!("3.{minor}"),
            None => return Fixed::default(),
        }
    };
    let prefix = parent(&parent(exe));
    let mut dirs = Vec::new();
    let mut core = Vec::new();
    if prefix != "/usr" && prefix != "/" {
        core.push(format!("{prefix}/lib/python{version}"));
        dirs.push(format!("{prefix}/lib/python{version}"));
        dirs.push(format!("{prefix}/lib/python{version}/site-packages"));
    }
    for d in [
        "/usr/lib/python{v}",
        "/usr/lib/python{v}/lib-dynload",
        "/usr/local/lib/python{v}/dist-packages",
        "/usr/lib/python3/dist-packages",
        // Fedora
        "/usr/lib64/python{v}",
        "/usr/local/lib64/python{v}/site-packages",
        "/usr/local/lib/python{v}/site-packages",
        "/usr/lib64/python{v}/site-packages",
        "/usr/lib/python{v}/site-packages",
    ] {
        dirs.push(d.replace("{v}", &version));
    }
    for d in ["/usr/lib/python{v}", "/usr/lib64/python{v}"] {
        core.push(d.replace("{v}", &version));
    }
    Fixed { dirs, core }
}

/// Perl's `@INC` as Debian and Fedora build it. Debian's directories
/// carry the version (`/usr/share/perl/5.36`); it is taken from the
/// interpreter's name when it has one (`perl5.36.0`), otherwise from the
/// directories that exist.
pub fn perl(root: &Jail, name_version: &str) -> Fixed {
    let listed = versions_in(root, "/usr/share/perl", "5.");
    let (minor, patch) = if name_version.matches('.').count() == 2 {
        let minor = name_version.rsplit_once('.').map(|(m, _)| m.to_string());
        (minor, Some(name_version.to_string()))
    } else {
        let minor = listed.iter().find(|v| !v.contains('.')).map(|m| format!("5.{m}"));
        let patch = minor.as_ref().and_then(|m| {
            listed
                .iter()
                .map(|v| format!("5.{v}"))
                .find(|v| v.starts_with(&format!("{m}.")))
                .or_else(|| Some(format!("{m}.0")))
        });
        (minor, patch)
    };
    let mut dirs = vec!["/etc/perl".to_string()];
    let mut core = Vec::new();
    let arches = arch_dirs(root);
    if let (Some(v), Some(patch)) = (&minor, &patch) {
        for a in &arches {
            dirs.push(format!("/usr/local/lib/{a}/perl/{patch}"));
        }
        dirs.push(format!("/usr/local/share/perl/{patch}"));
        for a in &arches {
            dirs.push(format!("/usr/lib/{a}/perl5/{v}"));
        }
        dirs.push("/usr/share/perl5".to_string());
        for a in &arches {
            // Only perl-base is in lockstep with /usr/bin/perl (it ships
            // it); perl-modules-5.NN may be upgraded on its own.
            core.push(format!("/usr/lib/{a}/perl-base"));
            dirs.push(format!("/usr/lib/{a}/perl-base"));
            dirs.push(format!("/usr/lib/{a}/perl/{v}"));
        }
        dirs.push(format!("/usr/share/perl/{v}"));
        dirs.push("/usr/local/lib/site_perl".to_string());
    }
    for d in [
        "/usr/local/lib64/perl5",
        "/usr/local/share/perl5",
        "/usr/lib64/perl5/vendor_perl",
        "/usr/share/perl5/vendor_perl",
        "/usr/lib64/perl5",
        "/usr/share/perl5",
    ] {
        if !dirs.iter().any(|x| x == d) {
            dirs.push(d.to_string());
        }
    }
    Fixed { dirs, core }
}

/// Debian's multiarch triplets that have a `perl-base` directory.
fn arch_dirs(root: &Jail) -> Vec<String> {
    let mut v: Vec<String> = root
        .list("/usr/lib")
        .into_iter()
        .filter_map(|n| n.into_string().ok())
        .filter(|n| n.contains("-linux-") && root.is_dir(&format!("/usr/lib/{n}/perl-base")))
        .collect();
    v.sort();
    v
}

/// The directories of a `PATH`-like variable from the process's
/// environment (`PYTHONPATH`, `PERL5LIB`), made absolute against its
/// working directory. They are only ever read as directories.
pub(crate) fn from_environ(environ: &[u8], var: &str, cwd: &str) -> Vec<String> {
    let key = format!("{var}=");
    environ
        .split(|&b| b == 0)
        .find_map(|e| e.strip_prefix(key.as_bytes()))
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(|v| {
            v.split(':')
                .filter(|d| !d.is_empty())
                .map(|d| absolute(cwd, d))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_never_climbs_above_root() {
        assert_eq!(normalize("/a/./b//../c"), "/a/c");
        assert_eq!(normalize("/../../etc/x"), "/etc/x");
        assert_eq!(absolute("/srv/app", "../lib"), "/srv/lib");
        assert_eq!(absolute("/srv/app", "/usr/lib"), "/usr/lib");
        assert_eq!(parent("/usr/bin/python3"), "/usr/bin");
        assert_eq!(parent("/x"), "/");
    }

    #[test]
    fn kernel_filesystems_are_pseudo() {
        assert!(pseudo("/dev/fd/3"));
        assert!(pseudo("/proc/self/fd/3"));
        assert!(pseudo("/sys"));
        assert!(!pseudo("/devices/x"));
        assert!(!pseudo("/usr/lib/x.py"));
    }

    #[test]
    fn links_resolve_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("usr/share/x")).unwrap();
        std::fs::create_dir_all(r.join("usr/bin")).unwrap();
        std::fs::write(r.join("usr/share/x/x.py"), "").unwrap();
        std::os::unix::fs::symlink("/usr/share/x/x.py", r.join("usr/bin/x")).unwrap();
        std::os::unix::fs::symlink("../share/x/x.py", r.join("usr/bin/y")).unwrap();
        std::os::unix::fs::symlink("loop", r.join("usr/bin/loop")).unwrap();
        std::os::unix::fs::symlink("/../../../etc", r.join("usr/bin/escape")).unwrap();
        assert_eq!(
            resolve_links(&Jail::open(r).unwrap(), "/usr/bin/x"),
            "/usr/share/x/x.py"
        );
        assert_eq!(
            resolve_links(&Jail::open(r).unwrap(), "/usr/bin/y"),
            "/usr/share/x/x.py"
        );
        assert_eq!(resolve_links(&Jail::open(r).unwrap(), "/usr/bin/./z"), "/usr/bin/z");
        assert_eq!(resolve_links(&Jail::open(r).unwrap(), "/usr/bin/loop"), "/usr/bin/loop");
        assert_eq!(
            resolve_links(&Jail::open(r).unwrap(), "/usr/bin/escape/passwd"),
            "/etc/passwd"
        );
    }

    #[test]
    fn python_paths_from_the_name() {
        let root = tempfile::tempdir().unwrap();
        let i = Interpreter {
            lang: super::super::cmdline::Lang::Python,
            version: "3.11".into(),
        };
        let d = python(&Jail::open(root.path()).unwrap(), &i, "/usr/bin/python3.11");
        assert_eq!(d.core, ["/usr/lib/python3.11", "/usr/lib64/python3.11"]);
        let d = d.dirs;
        assert_eq!(
            &d[..4],
            [
                "/usr/lib/python3.11",
                "/usr/lib/python3.11/lib-dynload",
                "/usr/local/lib/python3.11/dist-packages",
                "/usr/lib/python3/dist-packages"
            ]
        );
        let d = python(&Jail::open(root.path()).unwrap(), &i, "/opt/py/bin/python3.11");
        assert_eq!(d.dirs[0], "/opt/py/lib/python3.11");
        assert_eq!(d.core[0], "/opt/py/lib/python3.11");
        assert_eq!(d.dirs[1], "/opt/py/lib/python3.11/site-packages");
        // No minor version in the name: taken from the directories.
        std::fs::create_dir_all(root.path().join("usr/lib/python3.9")).unwrap();
        std::fs::create_dir_all(root.path().join("usr/lib/python3.12")).unwrap();
        let bare = Interpreter {
            version: "3".into(),
            ..i
        };
        assert_eq!(
            python(&Jail::open(root.path()).unwrap(), &bare, "/usr/bin/python3").dirs[0],
            "/usr/lib/python3.12"
        );
    }

    #[test]
    fn perl_inc_from_existing_directories() {
        let root = tempfile::tempdir().unwrap();
        for d in [
            "usr/share/perl/5.36",
            "usr/share/perl/5.36.0",
            "usr/lib/x86_64-linux-gnu/perl-base",
        ] {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        let inc = perl(&Jail::open(root.path()).unwrap(), "");
        assert_eq!(inc.core, ["/usr/lib/x86_64-linux-gnu/perl-base"]);
        let inc = inc.dirs;
        assert_eq!(
            perl(&Jail::open(root.path()).unwrap(), "5.36.0").dirs[..want_len()],
            inc[..want_len()]
        );
        let want = [
            "/etc/perl",
            "/usr/local/lib/x86_64-linux-gnu/perl/5.36.0",
            "/usr/local/share/perl/5.36.0",
            "/usr/lib/x86_64-linux-gnu/perl5/5.36",
            "/usr/share/perl5",
            "/usr/lib/x86_64-linux-gnu/perl-base",
            "/usr/lib/x86_64-linux-gnu/perl/5.36",
            "/usr/share/perl/5.36",
        ];
        assert_eq!(&inc[..want.len()], want);
    }

    fn want_len() -> usize {
        8
    }

    #[test]
    fn environ_paths_are_split_and_anchored() {
        let env = b"HOME=/root\0PYTHONPATH=/opt/a::rel\0PATH=/bin\0";
        assert_eq!(from_environ(env, "PYTHONPATH", "/srv"), vec!["/opt/a", "/srv/rel"]);
        assert!(from_environ(env, "PERL5LIB", "/").is_empty());
        assert!(from_environ(b"PERL5LIB=\xff\0", "PERL5LIB", "/").is_empty());
    }
}
