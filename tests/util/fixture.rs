//! Fake roots: a fixture tree (`tests/cases/*/root`, `tests/replay/root`)
//! copied into a temporary directory and made concrete there.
//!
//! - `maps.in` templates become `maps`, with `{dev:PATH}` and `{ino:PATH}`
//!   (PATH relative to the root) replaced by the copied file's numbers,
//!   which are only known once the tree is copied.
//! - `NAME.gz.in` becomes `NAME.gz`, gzip'd here, so the rotated logs
//!   stay readable text in the repository.

use flate2::write::GzEncoder;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A fake root in a temporary directory, removed on drop.
pub struct FakeRoot {
    tmp: tempfile::TempDir,
    root: PathBuf,
}

impl FakeRoot {
    /// An empty root.
    pub fn empty() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs::create_dir(&root).unwrap();
        FakeRoot { tmp, root }
    }

    /// A concrete copy of the fixture tree `src`.
    pub fn copy_of(src: &Path) -> Self {
        let r = Self::empty();
        r.lay_over(src);
        r
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Copies the fixture tree `src` over this root and makes it concrete.
    pub fn lay_over(&self, src: &Path) {
        copy_tree(src, &self.root);
        make_concrete(&self.root, &self.root);
    }

    /// Keeps the root on disk (to look at after a failure) and says where.
    pub fn keep(self) -> PathBuf {
        self.tmp.keep().join("root")
    }
}

pub fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Golden case `name` of tests/cases with systemd running there
/// (`/run/systemd/system`; the case's `proc/1/root` already points at the
/// root, so it is no chroot).
pub fn case_root(name: &str) -> FakeRoot {
    let r = FakeRoot::copy_of(&manifest_dir().join("tests/cases").join(name).join("root"));
    fs::create_dir_all(r.path().join("run/systemd/system")).unwrap();
    r
}

/// The replay tests' fake system, tests/replay/root.
pub fn replay_system() -> FakeRoot {
    FakeRoot::copy_of(&manifest_dir().join("tests/replay/root"))
}

/// Allows `units` with links in `/etc/restart-stale` under `root`.
pub fn allow(root: &Path, units: &[&str]) {
    let dir = root.join("etc/restart-stale");
    fs::create_dir_all(&dir).unwrap();
    trusted_dir(&dir);
    for u in units {
        symlink(format!("/usr/lib/systemd/system/{u}"), dir.join(u)).unwrap();
    }
}

/// The records of a spool directory: `finish.lock` and the `closing`
/// marker left out.
pub fn record_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    // Not records: the finish lock, finish's last-look flag, and the
    // needrestart drop-in's mark (docs/needrestart.md).
    v.retain(|p| !p.ends_with("finish.lock") && !p.ends_with("closing") && !p.ends_with("auto-restart-off"));
    v.sort();
    v
}

/// Mode 0755 whatever the umask: restart-stale ignores policy
/// directories that group or others can write to.
fn trusted_dir(dir: &Path) {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Copies a fixture tree, symlinks as symlinks, directories 0755.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    trusted_dir(to);
    for entry in fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(entry.file_name());
        let ty = entry.file_type().unwrap();
        if ty.is_symlink() {
            symlink(fs::read_link(entry.path()).unwrap(), &dest).unwrap();
        } else if ty.is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// Expands the templates under `dir` in place; `root` resolves their paths.
fn make_concrete(dir: &Path, root: &Path) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_dir() {
            make_concrete(&p, root);
        } else if name == "maps.in" {
            let text = fs::read_to_string(&p).unwrap();
            fs::write(p.with_file_name("maps"), expand(&text, root)).unwrap();
            fs::remove_file(&p).unwrap();
        } else if let Some(gz) = name.strip_suffix(".in").filter(|n| n.ends_with(".gz")) {
            fs::write(p.with_file_name(gz), gzip(&fs::read(&p).unwrap())).unwrap();
            fs::remove_file(&p).unwrap();
        }
    }
}

fn expand(template: &str, root: &Path) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = start + rest[start..].find('}').expect("unclosed {");
        let (kind, path) = rest[start + 1..end].split_once(':').expect("token is {kind:path}");
        let md = fs::metadata(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        match kind {
            "dev" => out.push_str(&format!("{:02x}:{:02x}", libc::major(md.dev()), libc::minor(md.dev()))),
            "ino" => out.push_str(&md.ino().to_string()),
            _ => panic!("unknown token kind {kind}"),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The line of the text report that names `unit`, or "".
pub fn unit_line(stdout: &str, unit: &str) -> String {
    stdout.lines().find(|l| l.starts_with(unit)).unwrap_or("").to_string()
}

/// Golden case 05 acted on for a transaction that replaced libdemo and
/// `other`: a.service and c.service restart, b.service (a stale file of no
/// package) does not.
pub fn assert_case05_acted_on(stdout: &str) {
    assert!(unit_line(stdout, "a.service").contains("restart"), "{stdout}");
    assert!(unit_line(stdout, "c.service").contains("restart"), "{stdout}");
    assert!(!unit_line(stdout, "b.service").contains("restart"), "{stdout}");
}
