//! Interpreted code in real processes: a python3 whose imported module is
//! replaced the way dpkg replaces files, a bash loop whose script is
//! replaced, and a python3 that imports neither. Scratch files live under
//! cargo's target tmpdir; when that lies where users control files
//! (`/tmp`, `/home`), findings are still reported, flagged report-only,
//! and open files under `/tmp` are not judged at all, which the
//! assertions allow for.

use crate::util::live::start_ready as start;
use restart_stale::system::interp::Via;
use restart_stale::system::scan::{Scanner, StaleFile};
use restart_stale::system::staleness::{self, Staleness};
use restart_stale::system::sysroot::SysRoot;
use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// Debian's interpreter, not a wrapper from PATH (pyenv's is a shell script).
fn interpreter(path: &str) -> Option<PathBuf> {
    let p = PathBuf::from(path);
    if p.exists() {
        return Some(p);
    }
    eprintln!("skipped: {path} is not installed");
    None
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// dpkg writes `NAME.dpkg-new`, then renames it over `NAME`.
fn replace_like_dpkg(path: &Path, text: &str) {
    let new = path.with_extension("dpkg-new");
    std::fs::write(&new, text).unwrap();
    std::fs::rename(&new, path).unwrap();
}

fn scan(pid: u32) -> Vec<StaleFile> {
    Scanner::default()
        .process(&SysRoot::default(), pid)
        .unwrap()
        .expect("child is alive")
}

fn under(files: &[StaleFile], dir: &Path) -> Vec<StaleFile> {
    let dir = dir.to_str().unwrap();
    files.iter().filter(|f| f.path.starts_with(dir)).cloned().collect()
}

const PY_MAIN: &str =
    "import sys\nimport helper\nsys.stdout.write('ready\\n')\nsys.stdout.flush()\nimport time\ntime.sleep(60)\n";

#[test]
fn python_import_replaced_like_dpkg_is_found_and_bystander_is_not() {
    let Some(py) = interpreter("/usr/bin/python3") else {
        return;
    };
    let d = scratch();
    let lib = d.path().join("lib");
    write(&d.path().join("app/main.py"), PY_MAIN);
    write(&lib.join("helper.py"), "X = 1\n");
    write(
        &d.path().join("other/main.py"),
        &PY_MAIN.replace("import helper", "import other"),
    );
    write(&lib.join("other.py"), "Y = 1\n");
    let python = |script: &str| {
        let mut c = Command::new(&py);
        c.arg(d.path().join(script))
            .env("PYTHONPATH", &lib)
            .env("PYTHONDONTWRITEBYTECODE", "1");
        start(&mut c)
    };
    let victim = python("app/main.py");
    let bystander = python("other/main.py");
    assert!(under(&scan(victim.0.id()), d.path()).is_empty(), "nothing changed yet");

    replace_like_dpkg(&lib.join("helper.py"), "X = 2\n");
    let found = under(&scan(victim.0.id()), d.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(*found[0].path, *lib.join("helper.py").to_str().unwrap());
    assert_eq!(found[0].via, Via::Import("helper".into()));
    assert_eq!(found[0].why, Staleness::Changed);
    let other = under(&scan(bystander.0.id()), d.path());
    assert!(other.is_empty(), "the bystander imports no replaced module: {other:?}");
}

#[test]
fn bash_loop_whose_script_is_replaced_is_found() {
    let Some(bash) = interpreter("/bin/bash") else { return };
    let d = scratch();
    let script = d.path().join("loop.sh");
    let body = "echo ready\nwhile :; do sleep 1; done\n";
    write(&script, body);
    let child = start(Command::new(bash).arg(&script));
    assert!(under(&scan(child.0.id()), d.path()).is_empty());

    replace_like_dpkg(&script, body);
    let found = under(&scan(child.0.id()), d.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].via, Via::Script);
    // bash holds its script open: the inode tells it was replaced, unless
    // the scratch directory is one where open files are never judged.
    let want = if staleness::ignored(script.to_str().unwrap().as_bytes()) {
        Staleness::Changed
    } else {
        Staleness::Replaced
    };
    assert_eq!(found[0].why, want);
}

#[test]
fn deleted_file_held_open_is_found() {
    let Some(py) = interpreter("/usr/bin/python3") else {
        return;
    };
    let d = scratch();
    let jar = d.path().join("foo.jar");
    if staleness::ignored(jar.to_str().unwrap().as_bytes()) {
        eprintln!("skipped: {} is where open files are never judged", d.path().display());
        return;
    }
    write(&jar, "PK");
    let code = "import sys,time\nf=open(sys.argv[1])\nprint('ready',flush=True)\ntime.sleep(60)\n";
    let child = start(Command::new(py).args(["-c", code]).arg(&jar));
    std::fs::remove_file(&jar).unwrap();
    let found = under(&scan(child.0.id()), d.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].via.clone(), found[0].why), (Via::Fd, Staleness::Deleted));
}

/// The whole run: `status --json` reports the python process (outside
/// any system unit here) with the module's reason, and a transaction that
/// did not change the module leaves it out.
#[test]
fn status_reports_the_import_with_its_reason() {
    let Some(py) = interpreter("/usr/bin/python3") else {
        return;
    };
    let d = scratch();
    let lib = d.path().join("lib");
    write(&d.path().join("app/main.py"), PY_MAIN);
    write(&lib.join("helper.py"), "X = 1\n");
    let mut c = Command::new(&py);
    c.arg(d.path().join("app/main.py"))
        .env("PYTHONPATH", &lib)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let child = start(&mut c);
    replace_like_dpkg(&lib.join("helper.py"), "X = 2\n");
    let helper = lib.join("helper.py").to_str().unwrap().to_string();
    let files_of = |changed: &str| -> Vec<serde_json::Value> {
        let out = assert_cmd::Command::cargo_bin("restart-stale")
            .unwrap()
            .args(["status", "--json", "--changed-files", "-"])
            .env_remove("RESTART_STALE_ROOT")
            .write_stdin(changed.to_string())
            .output()
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut procs: Vec<serde_json::Value> = doc["outside"].as_array().unwrap().clone();
        for u in doc["units"].as_array().unwrap() {
            procs.extend(u["processes"].as_array().unwrap().iter().cloned());
        }
        procs
            .iter()
            .filter(|p| p["pid"] == child.0.id())
            .flat_map(|p| p["files"].as_array().unwrap().clone())
            .collect()
    };
    let files = files_of(&format!("{helper}\n"));
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0]["via"], "import");
    assert_eq!(files[0]["module"], "helper");
    assert_eq!(
        files[0]["reason"],
        format!("imports helper: {helper} (in this transaction)")
    );
    assert!(files_of("/usr/lib/python3/dist-packages/unrelated.py\n").is_empty());
}
