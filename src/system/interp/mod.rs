//! Services that run interpreted code: the signals beyond mapped ELF files.
//!
//! Three read-only signals, for processes in scope:
//! 1. open files ([`fds`]): stale by the same device-and-inode rule as
//!    mappings;
//! 2. the script on an interpreter's command line ([`cmdline`]), stale
//!    when it changed after the process started ([`clock`]);
//! 3. for Python and Perl, the modules the script loads, found by a
//!    static, bounded walk ([`walk`]) on search paths derived from the
//!    interpreter's name ([`search`]), under the same rule.
//!
//! Findings become ordinary stale files with a [`Via`], so the plan,
//! policy, restart, verification and reports treat them like mappings.
//! Nothing found in or named by a process is ever executed: the
//! interpreter is known by its name, scripts and modules are only read.

pub mod clock;
pub mod cmdline;
pub mod fds;
pub mod perl;
pub mod python;
pub mod search;
pub mod walk;

use crate::core::model::StaleFile;
use crate::system::dedup::SeenSet;
use crate::system::maps::strip_marker;
use crate::system::procfs;
use crate::system::safe_open::Jail;
use crate::system::staleness::{Resolver, Staleness, ViewKey};
use crate::system::sysroot::SysRoot;
use cmdline::{Interpreter, Lang, Target};
use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use walk::{Entry, Loaded, Walk};

pub use crate::core::model::{reason, Via};

/// What the scan learned of a process before these signals.
pub struct Seen<'a> {
    /// Where its mapped paths are judged; open files are judged there too.
    pub view: ViewKey,
    pub root_dir: &'a Path,
    /// In the scope a restart acts on: its open files are read, and its
    /// executable is always read, never assumed.
    pub in_scope: bool,
    /// Device and inode of its lowest executable mapping, which is its
    /// executable's text in every ordinary process.
    pub first_exec: Option<(u64, u64)>,
}

/// What a walk depends on; equal keys give equal walks, so a hundred
/// identical workers cost one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct WalkKey {
    root: (u64, u64),
    interp: Interpreter,
    entry: Entry,
    search: Vec<String>,
    cwd: String,
    preload: Vec<String>,
    core: Vec<String>,
}

/// One walk's files, and the newest change time among them: a worker
/// that started after it (every process of a fresh host) needs no look
/// at each file.
#[derive(Default)]
struct Walked {
    loaded: Vec<Loaded>,
    newest: Option<clock::Nanos>,
}

/// Reusable state of the interpreted-code signals for one scan.
#[derive(Default)]
pub struct Interp {
    boot: Option<Option<i64>>,
    walks: HashMap<WalkKey, Arc<Walked>>,
    /// The distribution's module path per root and interpreter: listing
    /// `/usr/lib` once, not once per worker.
    fixed: HashMap<((u64, u64), Interpreter, String), search::Fixed>,
    /// Script paths with their links resolved, per root.
    links: HashMap<((u64, u64), String), String>,
    /// Whether the executable known by its first mapping runs scripts.
    interpreters: HashMap<(ViewKey, u64, u64), bool>,
    /// Walks actually made (the rest came from the cache).
    pub walks_made: usize,
}

/// A process's `exe` link, read at most once however many steps ask.
pub struct ExeLink {
    path: std::path::PathBuf,
    read: Option<Option<Vec<u8>>>,
}

impl ExeLink {
    pub fn new(root: &SysRoot, pid: u32) -> Self {
        Self {
            path: root.proc_pid(pid, "exe"),
            read: None,
        }
    }

    /// The executable's path, ` (deleted)` stripped; `None` when the
    /// link cannot be read (a kernel thread, an exited process).
    pub fn get(&mut self) -> Option<&[u8]> {
        let path = &self.path;
        self.read
            .get_or_insert_with(|| {
                let target = std::fs::read_link(path).ok()?;
                Some(strip_marker(target.as_os_str().as_bytes()).to_vec())
            })
            .as_deref()
    }
}

fn link_text(path: &Path) -> Option<String> {
    let target = std::fs::read_link(path).ok()?;
    String::from_utf8(strip_marker(target.as_os_str().as_bytes()).to_vec()).ok()
}

/// The set of the paths in `files`, made on first use: a process that
/// maps 60,000 files and adds nothing to them pays nothing for it.
fn paths_of<'a>(paths: &'a mut Option<SeenSet<Arc<str>>>, files: &[StaleFile]) -> &'a mut SeenSet<Arc<str>> {
    paths.get_or_insert_with(|| {
        let mut set = SeenSet::default();
        for f in files {
            set.insert(f.path.clone());
        }
        set
    })
}

impl Interp {
    /// Adds the script and module findings of `pid` to `files` (its stale
    /// mappings so far) and, for a process in scope, those of its open
    /// files.
    pub(crate) fn add_findings(
        &mut self,
        resolver: &mut Resolver,
        root: &SysRoot,
        pid: u32,
        seen: &Seen,
        exe: &mut ExeLink,
        files: &mut Vec<StaleFile>,
    ) {
        let interp = self.interpreter(seen, exe);
        // Most processes: out of scope and no interpreter. They pay for
        // nothing here, not even the set of their paths.
        if !seen.in_scope && interp.is_none() {
            return;
        }
        let mut paths = None;
        if seen.in_scope {
            for (why, path) in fds::stale_open_files(resolver, root, pid, seen.view, seen.root_dir) {
                if paths_of(&mut paths, files).insert(path.clone()) {
                    files.push(StaleFile::new(path, why, Via::Fd));
                }
            }
        }
        let Some(interp) = interp else {
            return;
        };
        let exe = interp.1;
        let interp = interp.0;
        let walked = self.loaded(root, pid, interp, &exe);
        let Some(newest) = walked.newest else {
            return;
        };
        let Some(start) = self.boot_time(root).and_then(|b| clock::process_start(root, pid, b)) else {
            return;
        };
        // Only an open file needs its `via` told; nothing else can come of
        // files that all changed before the process started.
        if !clock::changed_after(newest, start) && !files.iter().any(|f| f.via == Via::Fd) {
            return;
        }
        for l in walked.loaded.iter() {
            let via = if l.script {
                Via::Script
            } else {
                Via::Import(l.module.clone())
            };
            // The interpreter holds it open (bash its script): the open
            // file's inode already told; say what the file is.
            if paths_of(&mut paths, files).contains(&l.path) {
                if let Some(f) = files.iter_mut().find(|f| f.path == l.path && f.via == Via::Fd) {
                    f.via = via;
                }
                continue;
            }
            if clock::changed_after(l.ctime, start) && paths_of(&mut paths, files).insert(l.path.clone()) {
                files.push(StaleFile::new(l.path.clone(), Staleness::Changed, via));
            }
        }
    }

    /// The interpreter `pid` runs, with its executable's path; `None` for
    /// any other program. Out of scope, a process whose executable (by
    /// device and inode) was already known not to be an interpreter costs
    /// no `readlink`: at a thousand processes that was 5% of a scan.
    fn interpreter(&mut self, seen: &Seen, exe: &mut ExeLink) -> Option<(Interpreter, String)> {
        let key = seen.first_exec.map(|(dev, ino)| (seen.view, dev, ino));
        if let (false, Some(k)) = (seen.in_scope, key) {
            if self.interpreters.get(&k) == Some(&false) {
                return None;
            }
        }
        let exe = String::from_utf8(exe.get()?.to_vec()).ok()?;
        let interp = cmdline::interpreter(exe.as_bytes());
        if let Some(k) = key {
            // Once an interpreter was seen with it, never skip it again.
            *self.interpreters.entry(k).or_insert(false) |= interp.is_some();
        }
        Some((interp?, exe))
    }

    fn boot_time(&mut self, root: &SysRoot) -> Option<i64> {
        *self.boot.get_or_insert_with(|| clock::boot_time(root))
    }

    /// The script and modules of an interpreter process, walked once per
    /// distinct [`WalkKey`].
    fn loaded(&mut self, root: &SysRoot, pid: u32, interp: Interpreter, exe: &str) -> Arc<Walked> {
        let Ok(argv) = procfs::read(&root.proc_pid(pid, "cmdline")) else {
            return Arc::default();
        };
        let inv = cmdline::parse(interp.lang, &cmdline::words(&argv));
        let Some(cwd) = link_text(&root.proc_pid(pid, "cwd")) else {
            return Arc::default();
        };
        let proc_root = root.proc_pid(pid, "root");
        let identity = procfs::root_identity(&proc_root);
        // Every path below is the process's or a user's to choose.
        let Ok(jail) = Jail::open(&proc_root) else {
            return Arc::default();
        };
        let entry = match &inv.target {
            Target::Script(s) => match std::str::from_utf8(s).map(|s| search::absolute(&cwd, s)) {
                Ok(s) if !search::pseudo(&s) => {
                    let s = self
                        .links
                        .entry((identity, s))
                        .or_insert_with_key(|(_, s)| search::resolve_links(&jail, s))
                        .clone();
                    if search::pseudo(&s) {
                        return Arc::default();
                    }
                    Entry::Script(s)
                }
                _ => return Arc::default(),
            },
            Target::Module(m) if interp.lang == Lang::Python => Entry::Module(m.clone()),
            _ => return Arc::default(),
        };
        let fixed = self
            .fixed
            .entry((identity, interp.clone(), exe.to_string()))
            .or_insert_with(|| match interp.lang {
                Lang::Python => search::python(&jail, &interp, exe),
                Lang::Perl => search::perl(&jail, &interp.version),
                _ => search::Fixed::default(),
            })
            .clone();
        let search = search_path(root, pid, interp.lang, &entry, &cwd, &inv.include, fixed.dirs);
        let key = WalkKey {
            root: identity,
            interp,
            entry,
            search,
            cwd,
            preload: inv.preload,
            core: fixed.core,
        };
        if let Some(hit) = self.walks.get(&key) {
            return hit.clone();
        }
        self.walks_made += 1;
        let w = Walk {
            root: &proc_root,
            lang: key.interp.lang,
            search: key.search.clone(),
            cwd: key.cwd.clone(),
            preload: if key.interp.lang == Lang::Perl {
                key.preload.clone()
            } else {
                Vec::new()
            },
            core: key.core.clone(),
        };
        let outcome = walk::walk_in(w, jail, &key.entry);
        if let Some(why) = &outcome.cut {
            // What was found still counts; the rest of this script's
            // imports go unchecked, and the admin is told why.
            log::warn!("pid {pid}: walk of its {:?} imports cut short: {why}", key.interp.lang);
        }
        let loaded = outcome.loaded;
        let newest = loaded.iter().map(|l| l.ctime).max();
        let found = Arc::new(Walked { loaded, newest });
        self.walks.insert(key, found.clone());
        found
    }
}

/// The module path of one process, in the order its interpreter searches
/// (`fixed` last). Only Python and Perl have one here.
fn search_path(
    root: &SysRoot,
    pid: u32,
    lang: Lang,
    entry: &Entry,
    cwd: &str,
    include: &[Vec<u8>],
    fixed: Vec<String>,
) -> Vec<String> {
    let var = match lang {
        Lang::Python => "PYTHONPATH",
        Lang::Perl => "PERL5LIB",
        _ => return Vec::new(),
    };
    let script_dir = match entry {
        Entry::Script(s) => search::parent(s),
        Entry::Module(_) => cwd.to_string(),
    };
    let environ = procfs::read(&root.proc_pid(pid, "environ")).unwrap_or_default();
    let mut dirs: Vec<String> = include
        .iter()
        .filter_map(|d| std::str::from_utf8(d).ok())
        .map(|d| search::absolute(cwd, d))
        .collect();
    dirs.push(script_dir);
    dirs.extend(search::from_environ(&environ, var, cwd));
    dirs.extend(fixed);
    let mut seen = std::collections::HashSet::new();
    dirs.retain(|d| !search::pseudo(d) && seen.insert(d.clone()));
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_sentences() {
        let r = |via: Via, why, t| reason(&via, why, "/usr/lib/x.py", t).unwrap();
        assert_eq!(
            r(Via::Script, Staleness::Changed, false),
            "script /usr/lib/x.py changed after the process started"
        );
        assert_eq!(
            r(Via::Script, Staleness::Replaced, false),
            "script /usr/lib/x.py replaced"
        );
        assert_eq!(
            r(Via::Import("x".into()), Staleness::Changed, true),
            "imports x: /usr/lib/x.py (in this transaction)"
        );
        assert_eq!(
            r(Via::Fd, Staleness::Deleted, false),
            "holds /usr/lib/x.py (deleted) open"
        );
        assert_eq!(reason(&Via::Map, Staleness::Deleted, "/x", false), None);
    }
}
