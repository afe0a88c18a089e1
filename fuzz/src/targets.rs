//! The targets themselves. Text parsers get the bytes through
//! `from_utf8_lossy`, as their callers read files, so that every input
//! reaches the parser instead of being dropped as bad UTF-8.

use restart_stale::managers::apt::{protocol, record as apt_record};
use restart_stale::core::changed::ChangedSet;
use restart_stale::core::changelog::{self, deb_cmp, evr_cmp, Parsed};
use restart_stale::core::fixes::{self, Upgrade};
use restart_stale::core::unit_name::{self, Owner};
use restart_stale::core::version::{dpkg_cmp, rpm_cmp};
use restart_stale::managers::dnf::dnf4;
use restart_stale::managers::dnf::history::Selector;
use restart_stale::replay::package::{valid_deb_arch, valid_deb_name, valid_deb_version, PackageChange};
use restart_stale::replay::stamp::Stamp;
use restart_stale::managers::apt::{dpkg_log, history as apt_history};
use restart_stale::managers::{rpm, swupd::manifests as swupd};
use restart_stale::system::cgroup::{self, Layout};
use restart_stale::system::interp::{cmdline, perl, python};
use restart_stale::system::maps;
use restart_stale::transaction::process::parse_stat;
use restart_stale::transaction::record::{Block, Fact, Record};
use restart_stale::managers::{pacman, zypper};
use std::borrow::Cow;
use std::cmp::Ordering;

fn text(data: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// What the record writer does to free text (`one_line` in
/// transaction/record.rs): control characters become `?`, so that a
/// fact stays one line. The round trips below expect exactly that change
/// and no other.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// `/proc/PID/maps`: every mapping the parser returns has an absolute
/// path and an inode, and the executable-only walk (which skips lines
/// on the permission field alone) returns no mapping the full walk does
/// not.
pub fn maps(data: &[u8]) {
    let all: Vec<_> = maps::mappings(data, false).collect();
    for m in &all {
        assert!(m.path.starts_with(b"/"), "relative path {m:?}");
        assert_ne!(m.ino, 0, "{m:?}");
        let _ = (m.marked_deleted(), m.stripped_path());
    }
    let mut rest = all.iter();
    for m in maps::mappings(data, true) {
        assert!(rest.any(|a| *a == m), "executable-only walk invented {m:?}");
    }
}

/// `/proc/PID/cgroup` under every layout, and the owner of the path it
/// picks: a unit owner is always a valid unit name that is one component
/// of the path.
pub fn cgroup(data: &[u8]) {
    let text = text(data);
    for layout in [None, Some(Layout::Unified), Some(Layout::Legacy), Some(Layout::Hybrid)] {
        let Some(path) = cgroup::systemd_path_of(&text, layout) else {
            continue;
        };
        assert!(text.lines().any(|l| l.ends_with(path)), "{path:?} is on no line");
        check_owner(path);
    }
    // Each line's path as well, as the cgroup.procs walk meets them.
    for line in text.lines() {
        check_owner(line);
    }
}

fn check_owner(path: &str) {
    if let Owner::Unit(u) = unit_name::owner_of_cgroup(path) {
        assert!(
            unit_name::validate(&u).is_ok(),
            "owner {u:?} of {path:?} is not a unit name"
        );
        assert!(
            path.split('/').any(|c| c == u),
            "owner {u:?} is not a component of {path:?}"
        );
    }
}

/// Unit names (policy links, cgroup components): a name that validates
/// has a type suffix and at most 255 bytes, and its template validates.
pub fn unit_name(data: &[u8]) {
    let name = text(data);
    if unit_name::validate(&name).is_err() {
        let _ = unit_name::template_of(&name);
        return;
    }
    assert!(unit_name::suffix(&name).is_some(), "{name:?}");
    assert!(name.len() <= 255, "{name:?}");
    if let Some(t) = unit_name::template_of(&name) {
        assert!(unit_name::validate(&t).is_ok(), "template {t:?} of {name:?}");
    }
}

/// apt's protocol-3 stdin: every action prints back to a line that parses
/// to the same action, and the record the hook writes from the parse
/// reads back with the same actions and no problem.
pub fn apt_protocol(data: &[u8]) {
    let input = protocol::parse(data, "stdin");
    for a in &input.actions {
        assert_eq!(protocol::parse_action(&a.to_string()).as_ref(), Ok(a));
    }
    for e in &input.errors {
        assert!(e.line >= 1, "{e}");
    }
    let _ = input.config_value("RestartStale::Auto-Restart");
    let mut block = apt_record::Block::new(1, 2);
    block.actions = input.actions.clone();
    block.errors = input.errors.iter().map(ToString::to_string).collect();
    let back = apt_record::parse(&block.render(), "pending");
    assert!(back.problems.is_empty(), "{:?}", back.problems);
    assert_eq!(back.blocks, [apt_rendered(&block)]);
}

/// An apt block as it reads back after rendering: free text through
/// [`one_line`], an unpacked .deb's path included (it is part of the
/// `action` line).
fn apt_rendered(b: &apt_record::Block) -> apt_record::Block {
    let mut b = b.clone();
    b.command = b.command.as_deref().map(one_line);
    b.errors = b.errors.iter().map(|e| one_line(e)).collect();
    for a in &mut b.actions {
        if let protocol::Step::Unpack(p) = &mut a.step {
            *p = one_line(p);
        }
    }
    b
}

/// The record format: what parses renders to text that parses again to
/// the same facts (free text through [`one_line`]), without a problem.
pub fn record(data: &[u8]) {
    let first = Record::parse(&text(data), "pending");
    let rendered: String = first.blocks.iter().map(Block::render).collect();
    let second = Record::parse(&rendered, "rendered");
    assert!(second.problems.is_empty(), "{:?}\n{rendered}", second.problems);
    let expected: Vec<Block> = first.blocks.iter().map(rendered_block).collect();
    assert_eq!(second.blocks, expected, "{rendered}");
}

fn rendered_block(b: &Block) -> Block {
    let fact = |f: &Fact| match f {
        Fact::Command(c) => Fact::Command(one_line(c)),
        Fact::Action(a) => Fact::Action(one_line(a)),
        Fact::Error(e) => Fact::Error(one_line(e)),
        other => other.clone(),
    };
    Block {
        time: b.time,
        pid: b.pid,
        facts: b.facts.iter().map(fact).collect(),
    }
}

/// apt's view of the record: the same round trip through apt's blocks.
pub fn apt_record(data: &[u8]) {
    let first = apt_record::parse(&text(data), "pending");
    let _ = (first.auto_restart(), first.reexec(), first.packages());
    let rendered: String = first.blocks.iter().map(apt_record::Block::render).collect();
    let second = apt_record::parse(&rendered, "rendered");
    assert!(second.problems.is_empty(), "{:?}\n{rendered}", second.problems);
    let expected: Vec<_> = first.blocks.iter().map(apt_rendered).collect();
    assert_eq!(second.blocks, expected, "{rendered}");
}

/// A package change from a log names a valid package and versions.
fn check_change(p: &PackageChange) {
    assert!(valid_deb_name(&p.name), "{p}");
    assert!(p.arch.as_deref().is_none_or(valid_deb_arch), "{p}");
    for v in [&p.old, &p.new].into_iter().flatten() {
        assert!(valid_deb_version(v), "{p}");
    }
    let _ = (p.qualified(), p.to_string());
}

/// A stamp prints as a `--since` value that means the same time.
fn check_stamp(s: Stamp) {
    assert_eq!(Stamp::parse_since(&s.to_string()), Ok(s));
}

/// apt's history.log, and the selection of transactions to replay.
pub fn apt_history(data: &[u8]) {
    let mut warnings = Vec::new();
    let all = apt_history::parse(&text(data), "history.log", &mut warnings);
    for t in &all {
        t.packages.iter().for_each(check_change);
        t.start.into_iter().chain(t.end).for_each(check_stamp);
    }
    let since = all.iter().find_map(|t| t.start);
    for nth in [None, Some(0), Some(1), Some(2), Some(usize::MAX)] {
        let _ = apt_history::select(&all, since, nth);
        let _ = apt_history::select(&all, None, nth);
    }
}

/// dpkg.log, and the events since the first one's time.
pub fn dpkg_log(data: &[u8]) {
    let mut warnings = Vec::new();
    let events = dpkg_log::parse(&text(data), "dpkg.log", &mut warnings);
    for e in &events {
        check_change(&e.package);
        check_stamp(e.at);
    }
    if let Some(first) = events.first() {
        assert!(dpkg_log::since(&events, first.at).iter().all(|e| e.at >= first.at));
    }
}

/// The dnf4 plugin's hand-over file: the block written from it reads
/// back with the same facts (free text through [`one_line`]) and no
/// problem.
pub fn dnf4_handover(data: &[u8]) {
    let Ok(h) = dnf4::parse(data, "handover") else {
        return;
    };
    let mut facts = h.facts;
    facts.extend(h.errors.into_iter().map(Fact::Error));
    let block = Block { time: 1, pid: 2, facts };
    let back = Record::parse(&block.render(), "pending");
    assert!(back.problems.is_empty(), "{:?}", back.problems);
    assert_eq!(back.blocks, [rendered_block(&block)]);
}

/// `--dnf-transaction`: a selector prints back to a spelling that parses
/// to it.
pub fn dnf_selector(data: &[u8]) {
    let Ok(sel) = text(data).parse::<Selector>() else {
        return;
    };
    let back = match sel {
        Selector::Id(n) => {
            assert!(n > 0, "{sel:?}");
            n.to_string()
        }
        Selector::Last(0) => "last".to_string(),
        Selector::Last(n) => format!("last-{n}"),
    };
    assert_eq!(back.parse::<Selector>(), Ok(sel));
}

/// swupd manifests and os-release: entries have absolute paths and a
/// version, and an update from `from` changed only entries newer than it.
pub fn swupd_manifest(data: &[u8]) {
    let text = text(data);
    let _ = swupd::version_id(&text);
    let mut warnings = Vec::new();
    let Some(entries) = swupd::parse(&text, "Manifest.os-core", &mut warnings) else {
        return;
    };
    for e in &entries {
        assert!(e.path.starts_with('/') && e.last_change > 0, "{e:?}");
    }
    for from in [0, 1].into_iter().chain(entries.first().map(|e| e.last_change)) {
        for path in swupd::changed(&entries, from) {
            assert!(entries.iter().any(|e| e.path == path && e.last_change > from));
        }
    }
}

/// pacman's target list: every line is a file, a directory or an error;
/// files are absolute, one clean line each; and the record written from
/// them reads back with the same files and no problem.
pub fn pacman_targets(data: &[u8]) {
    let t = pacman::parse(data, "stdin");
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let lines = if body.is_empty() {
        0
    } else {
        body.split(|&b| b == b'\n').count()
    };
    assert_eq!(t.files.len() + t.directories + t.errors.len(), lines);
    for f in &t.files {
        assert!(f.starts_with('/') && !f.chars().any(char::is_control), "{f:?}");
    }
    let (files, errors) = (t.files.clone(), t.errors.clone());
    let back = Record::parse(&pacman::block(t, None).render(), "pending");
    assert!(back.problems.is_empty(), "{:?}", back.problems);
    assert_eq!(back.blocks.len(), 1);
    assert!(back.blocks[0].files().eq(files.iter().map(String::as_str)));
    assert!(back.blocks[0].errors().eq(errors.iter().map(String::as_str)));
}

/// `--changed-files`: every absolute entry of an accepted list is in the
/// set, also after adding the real directories.
pub fn changed_files(data: &[u8]) {
    let Ok(set) = ChangedSet::parse(data, "changed.txt") else {
        return;
    };
    let with_real = set.with_real_dirs(|d| (d.len() % 3 == 0).then(|| format!("/real{d}")));
    let text = text(data);
    let sep = if text.contains('\0') { '\0' } else { '\n' };
    for entry in text.split(sep) {
        // Only a newline-separated list allows CRLF.
        let entry = if sep == '\n' {
            entry.trim_end_matches('\r')
        } else {
            entry
        };
        if entry.starts_with('/') {
            assert!(set.contains(entry), "{entry:?} is missing");
            assert!(with_real.contains(entry), "{entry:?} is missing after with_real_dirs");
        }
    }
}

/// `/proc/PID/stat`: comm may hold anything, spaces and `)` included.
pub fn proc_stat(data: &[u8]) {
    let _ = parse_stat(&text(data));
}

/// libzypp's plugin frames, read one after another as the plugin does,
/// and the steps of each body.
pub fn zypper_frame(data: &[u8]) {
    let mut input = std::io::Cursor::new(data);
    while let Ok(Some(f)) = zypper::frame::read(&mut input) {
        let _ = f.header("content-length");
        zypper_steps(&f.body);
    }
}

/// The steps JSON of COMMITBEGIN and COMMITEND, and the NEVRAs the
/// plugin makes of them.
pub fn zypper_steps(data: &[u8]) {
    let Ok(steps) = zypper::steps(data) else {
        return;
    };
    for s in steps {
        let nevra = s.solvable.nevra();
        let _ = (rpm::split_nevra(&nevra), rpm::query_form(&nevra));
        check_argument(&nevra);
    }
}

/// What `safe_argument` lets onto rpm's command line is never an option.
fn check_argument(s: &str) {
    if rpm::safe_argument(s) {
        assert!(!s.starts_with('-') && !s.chars().any(char::is_whitespace), "{s:?}");
    }
}

/// `rpm -ql` output: files are absolute; every line also goes through
/// the NEVRA helpers.
pub fn rpm_ql(data: &[u8]) {
    let text = text(data);
    let l = rpm::parse_ql(&text);
    assert!(l.files.iter().all(|f| f.starts_with('/')), "{l:?}");
    // The same text as `rpm -q --qf` output: a package is a NEVRA we
    // would pass to rpm ourselves (zypper records it as the old side).
    let p = rpm::parse_packages(&text);
    for n in &p.packages {
        assert!(rpm::split_nevra(n).is_some() && rpm::safe_argument(n), "{n:?}");
    }
    let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(
        p.packages.len() + p.not_installed.len() + p.unexpected.len(),
        lines,
        "{p:?}"
    );
    for line in text.lines() {
        if let Some((name, evr, arch)) = rpm::split_nevra(line) {
            assert!(!name.is_empty() && !evr.is_empty() && !arch.is_empty(), "{line:?}");
        }
        let _ = rpm::query_form(line);
        check_argument(line);
    }
}

/// The version orders on up to three lines: each is reflexive,
/// antisymmetric and transitive, as `max_by` over kernel releases needs.
pub fn version(data: &[u8]) {
    let text = text(data);
    let mut it = text.splitn(3, '\n');
    let v: [&str; 3] = std::array::from_fn(|_| it.next().unwrap_or(""));
    for cmp in [dpkg_cmp as fn(&str, &str) -> Ordering, rpm_cmp] {
        for a in v {
            assert_eq!(cmp(a, a), Ordering::Equal, "{a:?}");
            for b in v {
                assert_eq!(cmp(a, b), cmp(b, a).reverse(), "{a:?} {b:?}");
                for c in v {
                    if cmp(a, b) != Ordering::Greater && cmp(b, c) != Ordering::Greater {
                        assert_ne!(cmp(a, c), Ordering::Greater, "{a:?} <= {b:?} <= {c:?}");
                    }
                }
            }
        }
    }
}

/// Changelogs, as Debian's and as `rpm -q --changelog` text: at most
/// `MAX_ENTRIES` entries; every CVE id is `CVE-`, a four-digit year and
/// four to seven digits; the fixes between any two of its versions name
/// only ids of its entries, in both version orders.
pub fn changelog(data: &[u8]) {
    let text = text(data);
    let parsed = [changelog::parse_debian(&text), changelog::parse_rpm(&text)];
    for (p, cmp) in parsed.iter().zip([deb_cmp as fn(&str, &str) -> Ordering, evr_cmp]) {
        check_changelog(p, cmp);
    }
}

fn check_changelog(p: &Parsed, cmp: fn(&str, &str) -> Ordering) {
    assert!(p.entries.len() <= changelog::MAX_ENTRIES);
    let all: Vec<&String> = p.entries.iter().flat_map(|e| &e.cves).collect();
    for c in &all {
        let b = c.as_bytes();
        let digits = &b[9..];
        assert!(
            c.starts_with("CVE-") && b[4..8].iter().all(u8::is_ascii_digit) && b[8] == b'-',
            "{c:?}"
        );
        assert!(
            (4..=7).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit),
            "{c:?}"
        );
    }
    let versions: Vec<&str> = p.entries.iter().take(3).map(|e| e.version.as_str()).collect();
    for &a in &versions {
        for &b in &versions {
            assert_eq!(cmp(a, b), cmp(b, a).reverse(), "{a:?} {b:?}");
            let up = Upgrade {
                name: "p".into(),
                arch: None,
                from: Some(a.into()),
                to: Some(b.into()),
            };
            let f = fixes::summarize(&up, p, cmp);
            assert!(f.cves.iter().all(|c| all.contains(&c)), "{f:?}");
        }
    }
}

/// Python sources (the interpreter scanner): every import it reports
/// names a module or, for `from . import x`, at least one name.
pub fn python_imports(data: &[u8]) {
    for i in python::imports(data) {
        assert!(!i.module.is_empty() || i.level > 0, "{i:?}");
    }
}

/// Perl sources: every module a load names maps to a file name.
pub fn perl_loads(data: &[u8]) {
    for l in perl::loads(data) {
        if let perl::Load::Module(m) = l {
            let _ = perl::module_file(&m);
        }
    }
}

/// `/proc/PID/cmdline` of an interpreter, read for every language, and
/// the executable name of its first word.
pub fn interp_cmdline(data: &[u8]) {
    let argv = cmdline::words(data);
    if let Some(exe) = argv.first() {
        let _ = cmdline::interpreter(exe);
    }
    for lang in [
        cmdline::Lang::Python,
        cmdline::Lang::Perl,
        cmdline::Lang::Ruby,
        cmdline::Lang::Shell,
    ] {
        let _ = cmdline::parse(lang, &argv);
    }
}

/// Names the tree and query paths of [`safe_open_tree`] are made of.
const TREE_NAMES: &[&str] = &["a", "b", "c", "d"];
/// Link targets: inside the tree, climbing out of it, into our own root's
/// devices, procfs and sysfs, and magic links.
const TREE_LINKS: &[&str] = &[
    "a",
    "b/c",
    "../a",
    "/a",
    "/a/b",
    "..",
    "/",
    "../../..",
    "a/../b",
    "/proc/self/root",
    "/proc/self/fd/0",
    "/dev/zero",
    "/dev/null",
    "/sys/kernel",
    "/etc/hostname",
    "/nowhere",
];

/// The tree of one input, built afresh under a directory of ours.
fn build_tree(dir: &std::path::Path, ops: &[u8]) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("scratch directory");
    for op in ops.chunks_exact(3) {
        let mut rel = TREE_NAMES[usize::from(op[1]) % TREE_NAMES.len()].to_string();
        if op[1] & 0x80 != 0 {
            rel = format!("{}/{rel}", TREE_NAMES[usize::from(op[2] >> 4) % TREE_NAMES.len()]);
        }
        let path = dir.join(&rel);
        // Failures (a parent that is a file, a name taken) are the tree's shape.
        let _ = match op[0] % 4 {
            0 => std::fs::create_dir(&path),
            // O_EXCL: never through a FIFO or link an earlier op put there.
            1 => std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, format!("file:{rel}").as_bytes())),
            2 => std::os::unix::fs::symlink(TREE_LINKS[usize::from(op[2]) % TREE_LINKS.len()], &path),
            _ => {
                let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL");
                // SAFETY: a valid C string.
                unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
                Ok(())
            }
        };
    }
}

/// The safe-open layer over a tree of directories, files, symbolic links
/// (inside it, out of it, to devices, procfs, sysfs and magic links) and
/// FIFOs: whatever a query path is, what it reads is one of the tree's
/// own regular files (never a device, a FIFO, which would hang, a pseudo
/// file or a file of our root), what it lists are the tree's names, and
/// `openat2` and the component walk of old kernels agree.
pub fn safe_open_tree(data: &[u8]) {
    use restart_stale::system::safe_open::Jail;
    let (n, rest) = match data.split_first() {
        Some((n, rest)) => (usize::from(*n % 12) * 3, rest),
        None => return,
    };
    let (ops, query) = rest.split_at(n.min(rest.len()));
    let dir = std::env::temp_dir().join(format!("restart-stale-fuzz-tree.{}", std::process::id()));
    build_tree(&dir, ops);
    let parts = [".", "..", "a", "b", "c", "d"];
    let path: String = query
        .iter()
        .take(8)
        .map(|b| format!("/{}", parts[usize::from(*b) % parts.len()]))
        .collect();
    let path = if path.is_empty() { "/".to_string() } else { path };
    let fast = Jail::open(&dir).expect("tree opens");
    let slow = Jail::open(&dir).expect("tree opens").without_openat2();
    let read = fast.read(&path, 4096);
    assert_eq!(read, slow.read(&path, 4096), "the two lookups disagree on {path}");
    if let Some(got) = &read {
        assert!(got.starts_with(b"file:"), "{path} read {got:?}, not a file of the tree");
    }
    assert_eq!(fast.stat(&path), slow.stat(&path), "stat {path}");
    let listed = fast.list(&path);
    assert_eq!(listed, slow.list(&path), "list {path}");
    for name in &listed {
        assert!(TREE_NAMES.iter().any(|n| name == n), "{path} lists {name:?}");
    }
}
