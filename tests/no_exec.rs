//! restart-stale reads what processes run and never executes anything
//! found in or named by one (needrestart's CVE-2024-48990 family came
//! from running a process's interpreter). The one program it may start is
//! rpm, at its fixed path, for `replay --dnf-transaction`. This test keeps
//! it that way: every way of starting a program in `src/` outside test
//! modules is listed, and only that one may appear.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without its unit tests (a `#[cfg(test)]` module at
/// the end, as every file here keeps them) and without comments.
fn production_code(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn only_the_fixed_rpm_is_ever_started() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    files.sort();
    let forbidden = [
        "Command::new",
        "posix_spawn",
        "libc::fork",
        "libc::vfork",
        "libc::exec",
        "libc::system",
        "libc::popen",
        "CommandExt",
    ];
    let mut spawns = Vec::new();
    for f in &files {
        let code = production_code(&std::fs::read_to_string(f).unwrap());
        for needle in forbidden {
            for _ in code.matches(needle) {
                spawns.push(format!("{}: {needle}", f.strip_prefix(root).unwrap().display()));
            }
        }
    }
    assert_eq!(
        spawns,
        // CommandExt: rpm runs in its own process group, so a hook can kill
        // it with its children at the deadline.
        vec![
            "src/managers/rpm/mod.rs: Command::new".to_string(),
            "src/managers/rpm/mod.rs: CommandExt".to_string()
        ],
        "programs started from src/"
    );
    let rpm = std::fs::read_to_string(root.join("src/managers/rpm/mod.rs")).unwrap();
    assert!(
        rpm.contains("pub const RPM: &str = \"/usr/bin/rpm\";"),
        "rpm's path is fixed"
    );
}

/// The readers of paths a process or a user chose (the import walk, its
/// search paths, the script and its links) reach the filesystem only
/// through the safe-open layer (`system::safe_open::Jail`, docs/security.md):
/// none of them opens, stats, lists or reads a link by a path of its own.
#[test]
fn readers_of_a_process_paths_go_through_the_safe_open_layer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readers = ["src/system/interp/walk.rs", "src/system/interp/search.rs"];
    let forbidden = [
        "fs::",
        "File::",
        "OpenOptions",
        "libc::open",
        "libc::stat",
        "libc::readlink",
    ];
    let mut bypasses = Vec::new();
    for f in readers {
        let code = production_code(&std::fs::read_to_string(root.join(f)).unwrap());
        assert!(code.contains("Jail"), "{f} no longer takes a Jail: update this test");
        for needle in forbidden {
            for _ in code.matches(needle) {
                bypasses.push(format!("{f}: {needle}"));
            }
        }
    }
    assert_eq!(bypasses, Vec::<String>::new());
}
