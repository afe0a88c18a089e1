//! Fake roots for golden tests (`tests/cases/*/root`, `tests/replay/root`),
//! copied into a temporary directory and made concrete.
//!
//! - `maps.in` templates become `maps`, with `{dev:PATH}` and `{ino:PATH}`
//!   (PATH relative to the root) replaced by the copied file's numbers.
//! - `NAME.gz.in` becomes `NAME.gz`, gzip'd here, so the rotated logs
//!   stay readable text in the repository.
#![allow(dead_code)]

use flate2::write::GzEncoder;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub fn source_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/replay/root")
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        let ty = entry.file_type().unwrap();
        if ty.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &dest).unwrap();
        } else if ty.is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
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
        let md = std::fs::metadata(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
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

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Expands templates under `dir` in place; `root` resolves their paths.
pub fn make_concrete(dir: &Path, root: &Path) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_dir() {
            make_concrete(&p, root);
        } else if name == "maps.in" {
            let text = std::fs::read_to_string(&p).unwrap();
            std::fs::write(p.with_file_name("maps"), expand(&text, root)).unwrap();
            std::fs::remove_file(&p).unwrap();
        } else if let Some(gz) = name.strip_suffix(".in").filter(|n| n.ends_with(".gz")) {
            std::fs::write(p.with_file_name(gz), gzip(&std::fs::read(&p).unwrap())).unwrap();
            std::fs::remove_file(&p).unwrap();
        }
    }
}

/// A concrete copy of the fake root `src`; the copy is `dir.path()/root`.
pub fn concrete_copy(src: &Path) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    copy_tree(src, &root);
    make_concrete(&root, &root);
    (tmp, root)
}

/// A concrete copy of the replay tests' fake system.
pub fn fake_system() -> (tempfile::TempDir, PathBuf) {
    concrete_copy(&source_root())
}

/// A command's stdout as golden files hold it: a JSON document (printed on
/// one line) is pretty-printed so that expectations stay reviewable.
pub fn readable_stdout(stdout: &[u8]) -> String {
    let text = String::from_utf8_lossy(stdout);
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(doc) if text.starts_with('{') => serde_json::to_string_pretty(&doc).unwrap() + "\n",
        _ => text.into_owned(),
    }
}
