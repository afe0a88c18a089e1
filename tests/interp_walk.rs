//! The static import walk on fake trees: each case writes a small tree
//! of sources under a temporary root and names the modules the walk must
//! find from the script, by import name and path, in the order found.

use restart_stale::system::interp::cmdline::Lang;
use restart_stale::system::interp::walk::{self, Entry, Walk, MAX_DEPTH};
use std::path::Path;

fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

fn found(root: &Path, lang: Lang, script: &str, search: &[&str]) -> Vec<(String, String)> {
    found_with_core(root, lang, script, search, &[])
}

fn found_with_core(root: &Path, lang: Lang, script: &str, search: &[&str], core: &[&str]) -> Vec<(String, String)> {
    let w = Walk {
        root,
        lang,
        search: search.iter().map(|s| s.to_string()).collect(),
        cwd: "/".into(),
        preload: Vec::new(),
        core: core.iter().map(|s| s.to_string()).collect(),
    };
    walk::walk(w, &Entry::Script(script.into()))
        .loaded
        .into_iter()
        .map(|l| (l.module.to_string(), l.path.to_string()))
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

const PY: &[&str] = &["/app", "/usr/lib/python3.11", "/usr/lib/python3/dist-packages"];

#[test]
fn python_relative_imports() {
    let t = tree(&[
        ("/app/main.py", "from pkg.sub import x\n"),
        ("/app/pkg/__init__.py", ""),
        (
            "/app/pkg/sub/__init__.py",
            "from . import sibling\nfrom ..top import thing\n",
        ),
        ("/app/pkg/sub/x.py", ""),
        ("/app/pkg/sub/sibling.py", ""),
        ("/app/pkg/top.py", ""),
    ]);
    assert_eq!(
        found(t.path(), Lang::Python, "/app/main.py", PY),
        pairs(&[
            ("", "/app/main.py"),
            ("pkg", "/app/pkg/__init__.py"),
            ("pkg.sub", "/app/pkg/sub/__init__.py"),
            ("pkg.sub.x", "/app/pkg/sub/x.py"),
            (".sibling", "/app/pkg/sub/sibling.py"),
            ("..top", "/app/pkg/top.py"),
        ])
    );
}

#[test]
fn python_packages_submodules_and_attributes() {
    let t = tree(&[
        ("/app/main.py", "import pkg.mod\nfrom lib import submodule, CONSTANT\n"),
        ("/usr/lib/python3/dist-packages/pkg/__init__.py", ""),
        ("/usr/lib/python3/dist-packages/pkg/mod.py", ""),
        ("/usr/lib/python3/dist-packages/lib/__init__.py", "CONSTANT = 1\n"),
        ("/usr/lib/python3/dist-packages/lib/submodule.py", ""),
    ]);
    let d = "/usr/lib/python3/dist-packages";
    assert_eq!(
        found(t.path(), Lang::Python, "/app/main.py", PY),
        vec![
            ("".into(), "/app/main.py".into()),
            ("pkg".into(), format!("{d}/pkg/__init__.py")),
            ("pkg.mod".into(), format!("{d}/pkg/mod.py")),
            ("lib".into(), format!("{d}/lib/__init__.py")),
            ("lib.submodule".into(), format!("{d}/lib/submodule.py")),
        ]
    );
}

#[test]
fn python_namespace_packages_span_directories() {
    let t = tree(&[
        ("/app/main.py", "import ns.one\nimport ns.two\n"),
        ("/usr/lib/python3.11/ns/one.py", ""),
        ("/usr/lib/python3/dist-packages/ns/two.py", ""),
    ]);
    assert_eq!(
        found(t.path(), Lang::Python, "/app/main.py", PY),
        pairs(&[
            ("", "/app/main.py"),
            ("ns.one", "/usr/lib/python3.11/ns/one.py"),
            ("ns.two", "/usr/lib/python3/dist-packages/ns/two.py"),
        ])
    );
}

#[test]
fn python_try_except_both_branches_and_missing_modules() {
    let t = tree(&[
        (
            "/app/main.py",
            "try:\n    import fast\nexcept ImportError:\n    import slow\nimport not_installed\nimport sys\n",
        ),
        ("/usr/lib/python3.11/fast.py", ""),
        ("/usr/lib/python3.11/slow.py", ""),
    ]);
    assert_eq!(
        found(t.path(), Lang::Python, "/app/main.py", PY),
        pairs(&[
            ("", "/app/main.py"),
            ("fast", "/usr/lib/python3.11/fast.py"),
            ("slow", "/usr/lib/python3.11/slow.py"),
        ])
    );
}

/// The interpreter's own library is checked where the script loads it,
/// but not read: its imports stay within it (docs/benchmarks.md). A
/// package directory below it on the path (`site-packages`) is read.
#[test]
fn core_modules_are_checked_but_not_followed() {
    let t = tree(&[
        (
            "/app/main.py",
            "import json
import vendored
",
        ),
        (
            "/usr/lib/python3.11/json/__init__.py",
            "from .decoder import x
",
        ),
        ("/usr/lib/python3.11/json/decoder.py", ""),
        (
            "/usr/lib/python3.11/site-packages/vendored.py",
            "import helper
",
        ),
        ("/usr/lib/python3.11/site-packages/helper.py", ""),
    ]);
    let search = ["/app", "/usr/lib/python3.11", "/usr/lib/python3.11/site-packages"];
    let want_core = pairs(&[
        ("", "/app/main.py"),
        ("json", "/usr/lib/python3.11/json/__init__.py"),
        ("vendored", "/usr/lib/python3.11/site-packages/vendored.py"),
        ("helper", "/usr/lib/python3.11/site-packages/helper.py"),
    ]);
    assert_eq!(
        found_with_core(
            t.path(),
            Lang::Python,
            "/app/main.py",
            &search,
            &["/usr/lib/python3.11"]
        ),
        want_core
    );
    // Without the core mark the same tree is followed all the way.
    let all = found(t.path(), Lang::Python, "/app/main.py", &search);
    assert!(
        all.contains(&(".decoder".into(), "/usr/lib/python3.11/json/decoder.py".into())),
        "{all:?}"
    );
}

#[test]
fn python_cycles_end() {
    let t = tree(&[
        ("/app/main.py", "import a\n"),
        ("/app/a.py", "import b\n"),
        ("/app/b.py", "import a\nimport main\n"),
    ]);
    assert_eq!(
        found(t.path(), Lang::Python, "/app/main.py", PY),
        pairs(&[("", "/app/main.py"), ("a", "/app/a.py"), ("b", "/app/b.py")])
    );
}

#[test]
fn python_depth_is_bounded() {
    let mut files: Vec<(String, String)> = (0..MAX_DEPTH + 10)
        .map(|i| (format!("/app/m{i}.py"), format!("import m{}\n", i + 1)))
        .collect();
    files.push(("/app/main.py".into(), "import m0\n".into()));
    let refs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let t = tree(&refs);
    let got = found(t.path(), Lang::Python, "/app/main.py", PY);
    assert_eq!(got.len(), MAX_DEPTH + 1, "{got:?}");
}

#[test]
fn oversized_and_special_files_are_not_read() {
    let big = format!("import hidden\n{}", "#".repeat(2 << 20));
    let t = tree(&[
        ("/app/main.py", "import big\nimport fifo\n"),
        ("/app/big.py", &big),
        ("/app/hidden.py", ""),
    ]);
    let fifo = std::ffi::CString::new(t.path().join("app/fifo.py").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    // The big module is itself checked, but not read: `hidden` stays unseen.
    assert_eq!(
        found(t.path(), Lang::Python, "/app/main.py", PY),
        pairs(&[("", "/app/main.py"), ("big", "/app/big.py")])
    );
}

const PERL: &[&str] = &["/srv/d", "/usr/share/perl5", "/usr/share/perl/5.36"];

#[test]
fn perl_parent_require_file_and_use_lib() {
    let t = tree(&[
        (
            "/usr/sbin/d",
            "use strict;\nuse lib '/opt/d/lib';\nuse FindBin;\nuse lib \"$FindBin::Bin/../share/d\";\nuse D::Child;\nrequire \"d-conf.pl\";\nuse Missing::Thing;\n",
        ),
        ("/usr/share/perl/5.36/strict.pm", ""),
        ("/usr/share/perl/5.36/FindBin.pm", ""),
        ("/usr/share/perl/5.36/parent.pm", ""),
        ("/opt/d/lib/D/Child.pm", "package D::Child;\nuse parent qw(D::Base);\nuse parent -norequire, 'D::Inline';\n1;\n"),
        ("/opt/d/lib/D/Base.pm", "package D::Base;\nrequire D::Child;\n1;\n"),
        ("/usr/share/d/d-conf.pl", "1;\n"),
    ]);
    assert_eq!(
        found(t.path(), Lang::Perl, "/usr/sbin/d", PERL),
        pairs(&[
            ("", "/usr/sbin/d"),
            ("strict", "/usr/share/perl/5.36/strict.pm"),
            ("FindBin", "/usr/share/perl/5.36/FindBin.pm"),
            ("D::Child", "/opt/d/lib/D/Child.pm"),
            ("d-conf.pl", "/usr/share/d/d-conf.pl"),
            ("parent", "/usr/share/perl/5.36/parent.pm"),
            ("D::Base", "/opt/d/lib/D/Base.pm"),
        ])
    );
}

#[test]
fn shell_scripts_are_checked_not_read() {
    let t = tree(&[("/usr/lib/d/loop.sh", ". /usr/lib/d/other.sh\n")]);
    assert_eq!(
        found(t.path(), Lang::Shell, "/usr/lib/d/loop.sh", &[]),
        pairs(&[("", "/usr/lib/d/loop.sh")])
    );
    assert!(found(t.path(), Lang::Shell, "/usr/lib/d/gone.sh", &[]).is_empty());
}
