//! The bounded, static walk from a script through the modules it loads.
//!
//! Starting at the script (or `python -m`'s module), each Python or Perl
//! file read is scanned for imports, each import resolved on the search
//! path, and each module found is read in turn, breadth first. Every path
//! comes from the process or a user, so every look at one goes through
//! [`Jail`]: resolved inside the process's root, regular files only, never
//! a link of a user's, a device, a FIFO or a pseudo-file. Each file is
//! read at most [`MAX_FILE`] bytes; a module that is not found is skipped
//! (a builtin, a C extension, a name computed at run time); a file already
//! seen is not read again, so import cycles end. Nothing found is ever
//! executed.
//!
//! The work is bounded by what the walk does, not by what the process
//! makes large: [`MAX_DEPTH`] levels, [`MAX_FILES`] files, [`MAX_SEARCH`]
//! search directories, [`MAX_PROBES`] lookups and [`MAX_BYTES`] read. A
//! walk that reaches a bound stops there and says so ([`Outcome::cut`]),
//! so a hostile script costs a few milliseconds, not minutes.

use super::clock::Nanos;
use super::cmdline::Lang;
use super::perl::{self, Load};
use super::python;
use super::search::{absolute, parent};
use crate::system::safe_open::Jail;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::Arc;

/// Larger source files are still checked themselves but not read.
pub const MAX_FILE: u64 = 1 << 20;
/// How many import levels are followed from the script.
pub const MAX_DEPTH: usize = 32;
/// How many files one walk may check.
pub const MAX_FILES: usize = 2000;
/// How many directories the module path may hold (`-I`, `PYTHONPATH`,
/// `use lib` and the distribution's own together). Real services use a
/// dozen; a script of thousands of `use lib` lines made every lookup
/// probe thousands of directories.
pub const MAX_SEARCH: usize = 64;
/// How many paths one walk may look up. A large Python application with
/// its site-packages takes about a tenth of it.
pub const MAX_PROBES: usize = 32_768;
/// How many bytes one walk may read, all files together.
pub const MAX_BYTES: u64 = 16 << 20;

/// A file the process loaded (or would have: the walk cannot know which
/// branch of a `try` ran).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The module name as the importer wrote it (`pydhelper`,
    /// `Foo::Bar`, `x.pl`); empty for the script.
    pub module: Arc<str>,
    /// The path in the process's view.
    pub path: Arc<str>,
    pub ctime: Nanos,
    /// The script the interpreter runs.
    pub script: bool,
}

/// Where a walk starts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Entry {
    /// An absolute script path in the process's view.
    Script(String),
    /// A Python module name (`-m`).
    Module(String),
}

/// What the walk reads and where it looks.
pub struct Walk<'a> {
    /// The process's root, as we reach it (`/proc/PID/root`).
    pub root: &'a Path,
    pub lang: Lang,
    /// The module path, script directory first.
    pub search: Vec<String>,
    /// The process's working directory, in its view.
    pub cwd: String,
    /// Modules loaded before the script (`perl -M`).
    pub preload: Vec<String>,
    /// Directories of `search` whose modules are checked but not read
    /// ([`super::search::Fixed::core`]).
    pub core: Vec<String>,
}

#[derive(Clone)]
enum Hit {
    File(String, Nanos),
    Package { dir: String, init: String, ctime: Nanos },
    Namespace(Vec<String>),
}

/// What a walk found, and why it stopped early if it did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The files found, the script (when found) first.
    pub loaded: Vec<Loaded>,
    /// The bound reached (`64 search paths`), if one was.
    pub cut: Option<String>,
}

/// Which directories a lookup searched: the module path as it was at a
/// given change (`use lib` changes it), or a package's own directories.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Dirs {
    Search(u32),
    These(Vec<String>),
}

struct State<'a> {
    walk: Walk<'a>,
    jail: Jail,
    script_dir: String,
    found: Vec<Loaded>,
    seen: HashSet<String>,
    queue: VecDeque<(String, usize)>,
    /// The directories of `walk.search`, for `use lib`'s duplicate test.
    in_search: HashSet<String>,
    /// Bumped whenever `walk.search` changes: lookups cached under an
    /// older value are not reused, and no key copies the whole path.
    search_gen: u32,
    /// Lookups already made: a standard library imports `os` and `sys`
    /// hundreds of times, and a builtin such as `sys` is missed in every
    /// directory each time.
    lookups: HashMap<(Dirs, String), Option<Hit>>,
    perl_lookups: HashMap<(u32, String), Option<Found>>,
    probes: usize,
    bytes: u64,
    cut: Option<String>,
}

/// A file found on a search path, with its change time.
type Found = (String, Nanos);

/// Walks from `entry`.
pub fn walk(w: Walk<'_>, entry: &Entry) -> Outcome {
    let Ok(jail) = Jail::open(w.root) else {
        return Outcome::default();
    };
    walk_in(w, jail, entry)
}

/// [`walk`] through a jail of the caller's (tests force its fallback).
pub(crate) fn walk_in(mut w: Walk<'_>, jail: Jail, entry: &Entry) -> Outcome {
    // Most distributions lack most of the listed directories.
    w.search.retain(|d| jail.is_dir(d));
    let script_dir = match entry {
        Entry::Script(s) => parent(s),
        Entry::Module(_) => w.cwd.clone(),
    };
    let mut st = State {
        in_search: w.search.iter().cloned().collect(),
        walk: w,
        jail,
        script_dir,
        found: Vec::new(),
        seen: HashSet::new(),
        queue: VecDeque::new(),
        search_gen: 0,
        lookups: HashMap::new(),
        perl_lookups: HashMap::new(),
        probes: 0,
        bytes: 0,
        cut: None,
    };
    if st.walk.search.len() > MAX_SEARCH {
        st.walk.search.truncate(MAX_SEARCH);
        st.cut_short(format!("{MAX_SEARCH} search paths"));
    }
    match entry {
        Entry::Script(path) => {
            if let Some(ctime) = st.file_ctime(path) {
                st.add("", path, ctime, 0);
                if let Some(s) = st.found.first_mut() {
                    s.script = true;
                }
            }
        }
        Entry::Module(name) => st.python_main(name),
    }
    for name in std::mem::take(&mut st.walk.preload) {
        st.perl_load(Load::Module(name), 0);
    }
    while let Some((path, depth)) = st.queue.pop_front() {
        if st.found.len() >= MAX_FILES {
            st.cut_short(format!("{MAX_FILES} files"));
            break;
        }
        if st.cut.is_some() {
            break;
        }
        st.scan_file(&path, depth);
    }
    Outcome {
        loaded: st.found,
        cut: st.cut,
    }
}

impl State<'_> {
    fn cut_short(&mut self, why: String) {
        self.cut.get_or_insert(why);
    }

    /// Counts one lookup; `false` once the walk has made its share.
    fn probe(&mut self) -> bool {
        if self.probes >= MAX_PROBES {
            self.cut_short(format!("{MAX_PROBES} lookups"));
            return false;
        }
        self.probes += 1;
        true
    }

    fn file_ctime(&mut self, path: &str) -> Option<Nanos> {
        if !self.probe() {
            return None;
        }
        self.jail.file(path).map(|f| f.ctime)
    }

    fn is_dir(&mut self, path: &str) -> bool {
        self.probe() && self.jail.is_dir(path)
    }

    /// Records a file; queues it for reading if it is new and the walk
    /// may go deeper.
    fn add(&mut self, module: &str, path: &str, ctime: Nanos, depth: usize) {
        if self.found.len() >= MAX_FILES || !self.seen.insert(path.to_string()) {
            return;
        }
        self.found.push(Loaded {
            module: Arc::from(module),
            path: Arc::from(path),
            ctime,
            script: false,
        });
        if depth < MAX_DEPTH && matches!(self.walk.lang, Lang::Python | Lang::Perl) && !self.in_core(path) {
            self.queue.push_back((path.to_string(), depth + 1));
        }
    }

    /// Whether `path` was found in a core directory: the longest search
    /// directory holding it is one (`/usr/lib/python3.11` is core, its
    /// `site-packages` below it is not).
    fn in_core(&self, path: &str) -> bool {
        self.walk
            .search
            .iter()
            .filter(|d| path.strip_prefix(d.as_str()).is_some_and(|rest| rest.starts_with('/')))
            .max_by_key(|d| d.len())
            .is_some_and(|d| self.walk.core.contains(d))
    }

    /// Reads a regular file of at most [`MAX_FILE`] bytes, within the
    /// walk's [`MAX_BYTES`]; the jail refuses anything else.
    fn read(&mut self, path: &str) -> Option<Vec<u8>> {
        let left = MAX_BYTES - self.bytes;
        let data = self.jail.read(path, MAX_FILE.min(left));
        match &data {
            Some(d) => self.bytes += d.len() as u64,
            None if left < MAX_FILE
                && self
                    .jail
                    .file(path)
                    .is_some_and(|f| f.size > left && f.size <= MAX_FILE) =>
            {
                self.cut_short(format!("{} MiB read", MAX_BYTES >> 20));
            }
            None => {}
        }
        data
    }

    fn scan_file(&mut self, path: &str, depth: usize) {
        let Some(src) = self.read(path) else { return };
        match self.walk.lang {
            Lang::Python => {
                for imp in python::imports(&src) {
                    self.python_import(path, &imp, depth);
                }
            }
            Lang::Perl => {
                for load in perl::loads(&src) {
                    self.perl_load(load, depth);
                }
            }
            _ => {}
        }
    }

    fn find(&mut self, dirs: &[String], part: &str) -> Option<Hit> {
        let which = if dirs == self.walk.search.as_slice() {
            Dirs::Search(self.search_gen)
        } else {
            Dirs::These(dirs.to_vec())
        };
        let key = (which, part.to_string());
        if let Some(hit) = self.lookups.get(&key) {
            return hit.clone();
        }
        let hit = self.find_uncached(dirs, part);
        // A lookup the bounds stopped is not an answer to keep.
        if self.cut.is_none() {
            self.lookups.insert(key, hit.clone());
        }
        hit
    }

    fn find_uncached(&mut self, dirs: &[String], part: &str) -> Option<Hit> {
        let mut namespace = Vec::new();
        for d in dirs {
            let dir = format!("{d}/{part}");
            let init = format!("{dir}/__init__.py");
            if let Some(ctime) = self.file_ctime(&init) {
                return Some(Hit::Package { dir, init, ctime });
            }
            let file = format!("{dir}.py");
            if let Some(ctime) = self.file_ctime(&file) {
                return Some(Hit::File(file, ctime));
            }
            if self.is_dir(&dir) {
                namespace.push(dir);
            }
        }
        (!namespace.is_empty()).then_some(Hit::Namespace(namespace))
    }

    /// Resolves a dotted module starting in `dirs`, adding every package
    /// `__init__.py` on the way and the module's file. Returns the
    /// directories of the final package (empty for a plain module), where
    /// `from … import name` may find submodules; `None` if not found.
    /// `dots` is the relative import's leading dots, kept in the names.
    fn python_module(&mut self, dots: &str, dotted: &str, mut dirs: Vec<String>, depth: usize) -> Option<Vec<String>> {
        let mut name = dots.to_string();
        for part in dotted.split('.').filter(|p| !p.is_empty()) {
            if name.len() > dots.len() {
                name.push('.');
            }
            name.push_str(part);
            match self.find(&dirs, part)? {
                Hit::File(f, ctime) => {
                    self.add(&name, &f, ctime, depth);
                    dirs = Vec::new();
                }
                Hit::Package { dir, init, ctime } => {
                    self.add(&name, &init, ctime, depth);
                    dirs = vec![dir];
                }
                Hit::Namespace(ns) => dirs = ns,
            }
        }
        Some(dirs)
    }

    fn python_import(&mut self, importer: &str, imp: &python::Import, depth: usize) {
        let dirs = if imp.level == 0 {
            self.walk.search.clone()
        } else {
            let mut base = parent(importer);
            for _ in 1..imp.level {
                base = parent(&base);
            }
            vec![base]
        };
        let dots = ".".repeat(imp.level);
        let Some(pkg) = self.python_module(&dots, &imp.module, dirs, depth) else {
            return;
        };
        if pkg.is_empty() {
            return;
        }
        for n in &imp.names {
            // `from pkg import name`: a submodule, or just an attribute.
            let full = if imp.module.is_empty() {
                format!("{dots}{n}")
            } else {
                format!("{dots}{}.{n}", imp.module)
            };
            let _ = self.python_module_named(&full, n, pkg.clone(), depth);
        }
    }

    /// Like [`Self::python_module`] for one part, recorded under `full`.
    fn python_module_named(&mut self, full: &str, part: &str, dirs: Vec<String>, depth: usize) -> Option<()> {
        match self.find(&dirs, part)? {
            Hit::File(f, ctime) => self.add(full, &f, ctime, depth),
            Hit::Package { init, ctime, .. } => self.add(full, &init, ctime, depth),
            Hit::Namespace(_) => {}
        }
        Some(())
    }

    /// `python -m name`: the module's file (a package's `__main__.py`) is
    /// the script.
    fn python_main(&mut self, name: &str) {
        let search = self.walk.search.clone();
        let Some(dirs) = self.python_module("", name, search, 0) else {
            return;
        };
        if !dirs.is_empty() {
            let _ = self.python_module_named(&format!("{name}.__main__"), "__main__", dirs, 0);
        }
        if let Some(last) = self.found.last_mut() {
            last.script = true;
        }
    }

    fn perl_load(&mut self, load: Load, depth: usize) {
        match load {
            Load::Module(name) => {
                let file = perl::module_file(&name);
                self.perl_find(&name, &file, depth);
            }
            Load::File(f) if f.starts_with('/') || f.starts_with("./") || f.starts_with("../") => {
                let path = absolute(&self.walk.cwd, &f);
                if let Some(ctime) = self.file_ctime(&path) {
                    self.add(&f, &path, ctime, depth);
                }
            }
            Load::File(f) => self.perl_find(&f, &f, depth),
            Load::Lib(dirs) => {
                for d in dirs.iter().rev() {
                    let d = d
                        .replace("${FindBin::Bin}", "$FindBin::Bin")
                        .replace("${FindBin::RealBin}", "$FindBin::Bin")
                        .replace("$FindBin::RealBin", "$FindBin::Bin")
                        .replace("$FindBin::Bin", &self.script_dir);
                    if d.contains('$') || d.is_empty() {
                        continue;
                    }
                    let d = absolute(&self.walk.cwd, &d);
                    if self.in_search.contains(&d) || !self.is_dir(&d) {
                        continue;
                    }
                    if self.walk.search.len() >= MAX_SEARCH {
                        self.cut_short(format!("{MAX_SEARCH} search paths"));
                        return;
                    }
                    // Perl unshifts onto @INC; the path is short (bounded above).
                    self.walk.search.insert(0, d.clone());
                    self.in_search.insert(d);
                    self.search_gen += 1;
                }
            }
        }
    }

    fn perl_find(&mut self, name: &str, file: &str, depth: usize) {
        // Every module says `use strict`: look each name up once per @INC.
        let key = (self.search_gen, file.to_string());
        let hit = match self.perl_lookups.get(&key) {
            Some(hit) => hit.clone(),
            None => {
                let mut hit = None;
                for i in 0..self.walk.search.len() {
                    let path = format!("{}/{file}", self.walk.search[i]);
                    if let Some(c) = self.file_ctime(&path) {
                        hit = Some((path, c));
                        break;
                    }
                }
                if self.cut.is_none() {
                    self.perl_lookups.insert(key, hit.clone());
                }
                hit
            }
        };
        if let Some((path, ctime)) = hit {
            self.add(name, &path, ctime, depth);
        }
    }
}
