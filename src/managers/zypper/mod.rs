//! The zypper integration (docs/zypper.md): a libzypp commit plugin.
//!
//! libzypp starts every executable in `/usr/lib/zypp/plugins/commit/` at
//! the beginning of a commit and talks to it in frames ([`frame`]) on its
//! stdin and stdout: `PLUGINBEGIN`, `COMMITBEGIN` and `COMMITEND` (each
//! with the transaction's steps as JSON), `PLUGINEND`, then `_DISCONNECT`.
//! Our plugin (`hooks/zypper/…/restart-stale`, a wrapper running
//! `restart-stale zypper-hook`):
//!
//! - at `COMMITBEGIN`, before rpm runs, lists the files of the installed
//!   packages the commit replaces or removes (an update's old side is not
//!   a step of its own: libzypp leaves implicit erases out), and holds
//!   them as a record at once ([`crate::transaction::held`]): a plugin
//!   killed during the rpm phase still leaves one for the next finish;
//! - at `COMMITEND`, lists the files of the packages it installed, records
//!   one block in place of the held one and starts
//!   `restart-stale-zypper.service`, which acts once zypper has exited
//!   (the shared finish step, [`crate::transaction`]).
//!
//! The plugin lives as long as the commit, rpm phase included, so its
//! time limit ([`crate::transaction::HOOK_LIMIT`]) is per frame: from the
//! frame's reading to the end of our work on it, never the wait for the
//! next one.
//!
//! Every frame is acknowledged (`ACK`, or `_ENOMETHOD` for one we do not
//! know), and nothing is ever answered with `ERROR`: the commit never
//! fails because of us. Only `COMMITBEGIN` is answered after our work on
//! it, since rpm starts once we answer; libzypp gives a plugin 30 s per
//! answer, and the rpm query is bounded below that. A frame we cannot
//! parse ends the conversation (libzypp then stops the plugin and goes on).

pub mod frame;

use crate::exit::Outcome;
use crate::managers::rpm::{self, FileLister};
use crate::system::sysroot::SysRoot;
use crate::systemd::Bus;
use crate::transaction::process;
use crate::transaction::record::{Block, Direction, Fact, Source};
use crate::transaction::{self, launch};
use anyhow::{Context, Result};
use serde::Deserialize;
use std::fs;
use std::io::{BufRead, Write};
use std::path::PathBuf;

/// One step of libzypp's `TransactionStepList`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Step {
    /// `+` install, `-` erase, `M` multiversion install; absent: ignored.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// `ok` done, `err` failed; absent: not done.
    #[serde(default)]
    pub stage: Option<String>,
    pub solvable: Solvable,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Solvable {
    pub n: String,
    #[serde(default)]
    pub e: Option<u64>,
    pub v: String,
    pub r: String,
    pub a: String,
}

impl Solvable {
    /// `name-[epoch:]version-release.arch`, as the record names packages.
    pub fn nevra(&self) -> String {
        match self.e {
            Some(e) if e > 0 => format!("{}-{e}:{}-{}.{}", self.n, self.v, self.r, self.a),
            _ => rpm::nevra(&self.n, &self.v, &self.r, &self.a),
        }
    }

    /// `name.arch`: what `rpm -q` takes for whatever version is installed
    /// under this name, and how an update's old side is matched to it.
    fn name_arch(&self) -> String {
        format!("{}.{}", self.n, self.a)
    }

    /// What `rpm -q` takes for exactly this package (no epoch).
    fn query(&self) -> String {
        rpm::nevra(&self.n, &self.v, &self.r, &self.a)
    }
}

#[derive(Debug, Deserialize)]
struct StepList {
    #[serde(rename = "TransactionStepList", default)]
    steps: Vec<Step>,
}

/// The rpmdb libzypp uses (`librpmDb::suggestedDbPath`, libzypp 17):
/// `/var/lib/rpm` if it is a directory, else `/usr/lib/sysimage/rpm` if
/// that is one (symlinks do not count), else rpm's own `%_dbpath` (`None`).
/// It hands that path to rpm, so ours must too: Debian's rpm keeps its
/// `%_dbpath` in `~/.rpmdb`, and there a plain `rpm -ql` finds nothing
/// zypper installed.
pub(crate) fn zypp_dbpath(root: &SysRoot) -> Option<PathBuf> {
    ["/var/lib/rpm", "/usr/lib/sysimage/rpm"]
        .into_iter()
        .find(|p| fs::symlink_metadata(root.path(p)).is_ok_and(|m| m.is_dir()))
        .map(PathBuf::from)
}

/// The steps in a `COMMITBEGIN`/`COMMITEND` body.
pub fn steps(body: &[u8]) -> Result<Vec<Step>> {
    let list: StepList =
        serde_json::from_slice(body).context("the transaction steps are not the JSON libzypp sends")?;
    Ok(list.steps)
}

/// What the plugin learned between `COMMITBEGIN` and `COMMITEND`.
#[derive(Debug, Default)]
pub struct Commit {
    /// Files of the installed packages the commit replaces or removes,
    /// listed before rpm ran.
    pub old_files: Vec<String>,
    /// The installed packages an install replaces, by `name.arch`: an
    /// update's old version, which libzypp's steps do not carry.
    pub replaced: Vec<(String, String)>,
    pub errors: Vec<String>,
}

/// `COMMITBEGIN`: list what is installed now under the names the commit
/// touches (`name.arch` for an install: the version it replaces, if any).
pub(crate) fn commit_begin(root: &SysRoot, steps: &[Step], lister: &dyn FileLister) -> Commit {
    let queries: Vec<String> = steps
        .iter()
        .filter_map(|s| match s.kind.as_deref() {
            Some("+") => Some(s.solvable.name_arch()),
            Some("-") => Some(s.solvable.query()),
            // A multiversion install (a kernel) keeps the old version.
            _ => None,
        })
        .collect();
    let mut c = Commit::default();
    if queries.is_empty() {
        return c;
    }
    match lister.list(root, &queries) {
        Ok(l) => {
            c.old_files = l.files;
            // A fresh install has nothing installed under its name yet.
            c.errors
                .extend(l.unexpected.into_iter().map(|u| format!("rpm -ql: {u}")));
        }
        Err(e) => c.errors.push(format!("{e:#}")),
    }
    let installs: Vec<String> = steps
        .iter()
        .filter(|s| s.kind.as_deref() == Some("+"))
        .map(|s| s.solvable.name_arch())
        .collect();
    if !installs.is_empty() {
        match lister.installed(root, &installs) {
            Ok(l) => {
                c.replaced = l
                    .packages
                    .into_iter()
                    .filter_map(|p| {
                        let (name, _, arch) = rpm::split_nevra(&p)?;
                        let key = format!("{name}.{arch}");
                        Some((key, p))
                    })
                    .collect();
                c.errors
                    .extend(l.unexpected.into_iter().map(|u| format!("rpm -q: {u}")));
            }
            Err(e) => c.errors.push(format!("{e:#}")),
        }
    }
    c
}

/// `COMMITEND`: the record block, from the final steps (only those done
/// count) and the lists gathered at `COMMITBEGIN`.
pub(crate) fn commit_end(
    root: &SysRoot,
    steps: &[Step],
    begun: Commit,
    manager: Option<process::Process>,
    lister: &dyn FileLister,
) -> Block {
    let mut facts = vec![Fact::Source(Source::of("zypper"))];
    facts.extend(manager.map(Fact::Manager));
    let done: Vec<&Step> = steps.iter().filter(|s| s.stage.as_deref() == Some("ok")).collect();
    let mut incoming = Vec::new();
    for s in &done {
        match s.kind.as_deref() {
            Some("+") => {
                // Only a done install took its old version out.
                let key = s.solvable.name_arch();
                facts.extend(
                    begun
                        .replaced
                        .iter()
                        .filter(|(k, _)| *k == key)
                        .map(|(_, old)| Fact::Package(Direction::Out, old.clone())),
                );
                facts.push(Fact::Package(Direction::In, s.solvable.nevra()));
                incoming.push(s.solvable.query());
            }
            Some("M") => {
                facts.push(Fact::Package(Direction::In, s.solvable.nevra()));
                incoming.push(s.solvable.query());
            }
            Some("-") => facts.push(Fact::Package(Direction::Out, s.solvable.nevra())),
            _ => {}
        }
    }
    facts.extend(begun.old_files.into_iter().map(Fact::File));
    if !incoming.is_empty() {
        match lister.list(root, &incoming) {
            Ok(l) => {
                facts.extend(l.files.into_iter().map(Fact::File));
                facts.extend(
                    l.not_installed
                        .into_iter()
                        .map(|p| Fact::Error(format!("rpm -ql: {p} is not installed"))),
                );
                facts.extend(l.unexpected.into_iter().map(|u| Fact::Error(format!("rpm -ql: {u}"))));
            }
            Err(e) => facts.push(Fact::Error(format!("{e:#}"))),
        }
    }
    facts.extend(begun.errors.into_iter().map(Fact::Error));
    Block::new(facts)
}

/// The block held from `COMMITBEGIN` on ([`launch::hold`]): what a
/// commit whose plugin is killed before `COMMITEND` leaves behind. Its
/// packages are those planned, its files those listed before rpm ran.
pub(crate) fn early_block(steps: &[Step], begun: &Commit, manager: Option<process::Process>) -> Block {
    let mut facts = vec![Fact::Source(Source::of("zypper"))];
    facts.extend(manager.map(Fact::Manager));
    for s in steps {
        match s.kind.as_deref() {
            Some("+") => {
                let key = s.solvable.name_arch();
                facts.extend(
                    begun
                        .replaced
                        .iter()
                        .filter(|(k, _)| *k == key)
                        .map(|(_, old)| Fact::Package(Direction::Out, old.clone())),
                );
                facts.push(Fact::Package(Direction::In, s.solvable.nevra()));
            }
            Some("M") => facts.push(Fact::Package(Direction::In, s.solvable.nevra())),
            Some("-") => facts.push(Fact::Package(Direction::Out, s.solvable.nevra())),
            _ => {}
        }
    }
    facts.extend(begun.old_files.iter().cloned().map(Fact::File));
    facts.extend(begun.errors.iter().cloned().map(Fact::Error));
    // Read only when the plugin did not get to replace this block.
    facts.push(Fact::Error(
        "the commit plugin ended before COMMITEND: recorded from COMMITBEGIN \
         (the packages planned, the files of those they replace)"
            .into(),
    ));
    Block::new(facts)
}

/// Runs the plugin conversation on `input`/`output` until libzypp
/// disconnects or closes our stdin. `arm` is called as each frame is read,
/// and what it returns is dropped once our work on the frame is done and
/// we wait for the next one: the plugin's time limit ([`plugin`]) covers
/// our work, never libzypp's rpm phase between frames.
pub fn converse<G>(
    bus: &Bus,
    root: &SysRoot,
    input: &mut impl BufRead,
    output: &mut impl Write,
    verbose: u8,
    mut arm: impl FnMut() -> G,
) -> Result<()> {
    let lister = rpm::lister_in(root, zypp_dbpath(root));
    let skip = launch::not_here(root);
    if let Some(why) = &skip {
        log::info!("{why}: not recording zypper's commit");
    }
    let mut begun: Option<Commit> = None;
    let mut held: Option<transaction::held::Held> = None;
    while let Some(f) = frame::read(input)? {
        let _timer = arm();
        let known = matches!(
            f.command.as_str(),
            "PLUGINBEGIN" | "COMMITBEGIN" | "COMMITEND" | "PLUGINEND" | "_DISCONNECT"
        );
        // The old file lists must be read before rpm runs, and libzypp
        // starts rpm as soon as every plugin has answered COMMITBEGIN.
        if f.command == "COMMITBEGIN" && skip.is_none() {
            let (commit, hold) = commit_begin_frame(root, &f.body, &*lister);
            begun = Some(commit);
            held = hold.or(held);
        }
        // Otherwise answer first: the answer never depends on what we
        // make of the frame, and libzypp waits for it.
        frame::reply(output, if known { "ACK" } else { "_ENOMETHOD" })?;
        if skip.is_some() {
            if f.command == "_DISCONNECT" {
                break;
            }
            continue;
        }
        match f.command.as_str() {
            "COMMITEND" => commit_end_frame(
                bus,
                root,
                &f.body,
                begun.take().unwrap_or_default(),
                held.take(),
                &*lister,
                verbose,
            ),
            "_DISCONNECT" => break,
            _ => {}
        }
    }
    Ok(())
}

/// `COMMITBEGIN`: the lists, and the block held until `COMMITEND`.
fn commit_begin_frame(
    root: &SysRoot,
    body: &[u8],
    lister: &dyn FileLister,
) -> (Commit, Option<transaction::held::Held>) {
    let s = match steps(body) {
        Ok(s) => s,
        Err(e) => {
            let errors = vec![format!("COMMITBEGIN: {e:#}")];
            return (
                Commit {
                    errors,
                    ..Commit::default()
                },
                None,
            );
        }
    };
    let commit = commit_begin(root, &s, lister);
    if s.is_empty() {
        return (commit, None);
    }
    let block = early_block(&s, &commit, manager(root));
    let held = launch::hold(root, &ZYPPER, &block)
        .map_err(|e| log::error!("zypper-hook: {e:#}"))
        .ok();
    (commit, held)
}

/// `COMMITEND`: the final block into the spool, then the held one goes
/// (the same transaction, recorded once), then the finish unit starts.
fn commit_end_frame(
    bus: &Bus,
    root: &SysRoot,
    body: &[u8],
    begun: Commit,
    held: Option<transaction::held::Held>,
    lister: &dyn FileLister,
    verbose: u8,
) {
    let s = steps(body).unwrap_or_else(|e| {
        log::error!("COMMITEND: {e:#}");
        Vec::new()
    });
    let block = commit_end(root, &s, begun, manager(root), lister);
    for e in block.errors() {
        log::warn!("{e}");
    }
    if block.packages().next().is_none() {
        log::debug!("zypper's commit changed no package: nothing to record");
    } else if let Err(e) = launch::record(root, &ZYPPER, &block) {
        // The held block stays for the next finish: better than nothing.
        log::error!("zypper-hook: {e:#}");
        if let Some(h) = held {
            // Unlocked: any finish may take it from now on.
            log::warn!("{} is kept for the next finish", h.path().display());
        }
        return;
    }
    if let Some(h) = held {
        if let Err(e) = h.release() {
            log::error!("zypper-hook: {e:#}");
        }
    }
    if block.packages().next().is_some() {
        if let Err(e) = launch::start_finish(bus, root, &ZYPPER, verbose) {
            log::error!("zypper-hook: {e:#}");
        }
    }
}

/// zypper, our parent, for the finish to wait for.
fn manager(root: &SysRoot) -> Option<process::Process> {
    process::parent(root)
        .map_err(|e| log::debug!("not waiting for zypper: {e:#}"))
        .ok()
}

/// `zypper-hook`: the commit plugin, on our stdin and stdout. Always
/// [`Outcome::Done`]. libzypp keeps the plugin from `PLUGINBEGIN` through
/// the rpm phase to `COMMITEND`, so the hooks' limit
/// ([`transaction::HOOK_LIMIT`]) is armed per frame, from its reading to
/// the end of our work on it.
pub fn plugin(bus: &Bus, root: &SysRoot, verbose: u8) -> Outcome {
    transaction::contain("zypper-hook", || {
        converse(
            bus,
            root,
            &mut std::io::stdin().lock(),
            &mut std::io::stdout().lock(),
            verbose,
            || transaction::Watchdog::hook("zypper-hook"),
        )
    })
}

/// `zypper-hook finish`, the command of `restart-stale-zypper.service`.
pub fn finish(bus: &Bus, root: &SysRoot, verbose: u8) -> Outcome {
    transaction::finish::unit_step("zypper-hook finish", || {
        transaction::finish::run(root, &ZYPPER, bus, verbose)
    })
}

/// zypper's side of the transaction layer: its id names the spool, unit
/// and subcommand; the record's facts are the changed set. Its packages
/// are not annotated (libzypp's rpmdb path is its own).
pub const ZYPPER: rpm::RecordedOnRpm = rpm::RecordedOnRpm {
    id: "zypper",
    upgrades: None,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::managers::rpm::Listing;
    use std::cell::RefCell;

    /// Answers from a table of installed packages, as `rpm -ql` would
    /// (by the exact query), and as `rpm -q` would for `name.arch` (the
    /// entries that are whole NEVRAs).
    struct Table(Vec<(&'static str, &'static [&'static str])>, RefCell<Vec<Vec<String>>>);

    impl FileLister for Table {
        fn list(&self, _root: &SysRoot, q: &[String]) -> Result<Listing> {
            self.1.borrow_mut().push(q.to_vec());
            let mut l = Listing::default();
            for name in q {
                match self.0.iter().find(|(n, _)| n == name) {
                    Some((_, files)) => l.files.extend(files.iter().map(|f| f.to_string())),
                    None => l.not_installed.push(name.clone()),
                }
            }
            Ok(l)
        }

        fn installed(&self, _root: &SysRoot, q: &[String]) -> Result<Listing> {
            self.1.borrow_mut().push(q.to_vec());
            let mut l = Listing::default();
            for query in q {
                let found: Vec<String> = self
                    .0
                    .iter()
                    .map(|(n, _)| *n)
                    .filter(|n| rpm::split_nevra(n).is_some_and(|(name, _, arch)| format!("{name}.{arch}") == *query))
                    .map(String::from)
                    .collect();
                if found.is_empty() {
                    l.not_installed.push(query.clone());
                }
                l.packages.extend(found);
            }
            Ok(l)
        }
    }

    const BEGIN: &str = r#"{"TransactionStepList":[
        {"type":"+","solvable":{"n":"libdemo1","v":"2.0","r":"1","a":"x86_64"}},
        {"type":"-","solvable":{"n":"gone","e":1,"v":"1","r":"1","a":"noarch"}},
        {"type":"M","solvable":{"n":"kernel-default","v":"6.4","r":"2","a":"x86_64"}},
        {"solvable":{"n":"implicit","v":"1","r":"1","a":"x86_64"}}]}"#;

    #[test]
    fn old_files_are_listed_before_the_commit_and_new_ones_after() {
        let (_tmp, root) = SysRoot::scratch();
        let before = Table(
            vec![
                ("libdemo1.x86_64", &["/usr/lib64/libdemo.so.1.0"]),
                ("libdemo1-0:1.0-1.x86_64", &[]),
                ("gone-1-1.noarch", &["/usr/bin/gone"]),
            ],
            RefCell::default(),
        );
        let begun = commit_begin(&root, &steps(BEGIN.as_bytes()).unwrap(), &before);
        assert_eq!(before.1.borrow()[0], ["libdemo1.x86_64", "gone-1-1.noarch"]);
        assert_eq!(before.1.borrow()[1], ["libdemo1.x86_64"]);
        assert_eq!(begun.old_files, ["/usr/lib64/libdemo.so.1.0", "/usr/bin/gone"]);
        assert!(begun.errors.is_empty(), "{:?}", begun.errors);

        let end = BEGIN
            .replace(r#""type":"+","#, r#""type":"+","stage":"ok","#)
            .replace(r#""type":"-","#, r#""type":"-","stage":"ok","#);
        let after = Table(
            vec![("libdemo1-2.0-1.x86_64", &["/usr/lib64/libdemo.so.1.1"])],
            RefCell::default(),
        );
        let b = commit_end(&root, &steps(end.as_bytes()).unwrap(), begun, None, &after);
        let packages: Vec<_> = b.packages().map(|(d, n)| format!("{} {n}", d.word())).collect();
        // The update's old side comes from the rpmdb before the commit;
        // the kernel's step was not done (no stage): not counted.
        assert_eq!(
            packages,
            [
                "out libdemo1-0:1.0-1.x86_64",
                "in libdemo1-2.0-1.x86_64",
                "out gone-1:1-1.noarch"
            ]
        );
        let files: Vec<_> = b.files().collect();
        assert_eq!(
            files,
            [
                "/usr/lib64/libdemo.so.1.0",
                "/usr/bin/gone",
                "/usr/lib64/libdemo.so.1.1"
            ]
        );
        assert_eq!(b.source(), Some("zypper"));
        let rec = crate::transaction::record::Record {
            blocks: vec![b],
            problems: vec![],
        };
        assert_eq!(
            crate::transaction::recorded::summary(&ZYPPER, &rec),
            "zypper transaction: gone.noarch 1:1-1 → (removed), libdemo1.x86_64 1.0-1 → 2.0-1"
        );
    }

    /// An install that failed left its old version in place: it is not
    /// recorded as gone, and a fresh install has no old side at all.
    #[test]
    fn only_a_done_install_takes_its_old_version_out() {
        let (_tmp, root) = SysRoot::scratch();
        let begin = r#"{"TransactionStepList":[
            {"type":"+","solvable":{"n":"libdemo1","v":"2.0","r":"1","a":"x86_64"}},
            {"type":"+","solvable":{"n":"fresh","v":"3","r":"1","a":"noarch"}}]}"#;
        let before = Table(vec![("libdemo1-0:1.0-1.x86_64", &[])], RefCell::default());
        let begun = commit_begin(&root, &steps(begin.as_bytes()).unwrap(), &before);
        assert_eq!(
            begun.replaced,
            [("libdemo1.x86_64".to_string(), "libdemo1-0:1.0-1.x86_64".to_string())]
        );
        let end = begin
            .replacen(r#""type":"+","#, r#""type":"+","stage":"err","#, 1)
            .replacen(
                r#""type":"+","solvable":{"n":"fresh""#,
                r#""type":"+","stage":"ok","solvable":{"n":"fresh""#,
                1,
            );
        let b = commit_end(
            &root,
            &steps(end.as_bytes()).unwrap(),
            begun,
            None,
            &Table(vec![], RefCell::default()),
        );
        let packages: Vec<_> = b.packages().map(|(d, n)| format!("{} {n}", d.word())).collect();
        assert_eq!(packages, ["in fresh-3-1.noarch"]);
    }

    /// What Debian's libzypp 17.25.7 (zypper 1.14.42) sent a commit plugin
    /// for `zypper update` of two packages, byte for byte (captured by
    /// ci/e2e/tests/94-zypper.sh): no `content-length`, each body a
    /// NUL-ended JSON object over several lines.
    const LIBZYPP_17_25: &[u8] = include_bytes!("../../../tests/zypper/libzypp-17.25.7-update.frames");

    #[test]
    fn reads_what_libzypp_17_25_sends() {
        let mut r = LIBZYPP_17_25;
        let mut frames = Vec::new();
        while let Some(f) = frame::read(&mut r).unwrap() {
            frames.push(f);
        }
        let commands: Vec<&str> = frames.iter().map(|f| f.command.as_str()).collect();
        assert_eq!(
            commands,
            ["PLUGINBEGIN", "COMMITBEGIN", "COMMITEND", "PLUGINEND", "_DISCONNECT"]
        );
        assert!(frames.iter().all(|f| f.headers.is_empty()));
        let begin = steps(&frames[1].body).unwrap();
        let end = steps(&frames[2].body).unwrap();
        let names: Vec<String> = end.iter().map(|s| s.solvable.nevra()).collect();
        assert_eq!(names, ["libdemo1-2.0-1.x86_64", "demo-allowed-2.0-1.x86_64"]);
        assert!(begin
            .iter()
            .all(|s| s.kind.as_deref() == Some("+") && s.stage.is_none()));
        assert!(end
            .iter()
            .all(|s| s.kind.as_deref() == Some("+") && s.stage.as_deref() == Some("ok")));

        let (_tmp, root) = SysRoot::scratch();
        let mut out = Vec::new();
        converse(&Bus::default(), &root, &mut &LIBZYPP_17_25[..], &mut out, 0, || ()).unwrap();
        let mut r = &out[..];
        let mut answers = Vec::new();
        while let Some(f) = frame::read(&mut r).unwrap() {
            answers.push(f.command);
        }
        assert_eq!(answers, ["ACK"; 5]);
    }

    #[test]
    fn the_rpmdb_is_the_one_libzypp_picks() {
        let (_tmp, root) = SysRoot::scratch();
        assert_eq!(zypp_dbpath(&root), None);
        fs::create_dir_all(root.path("/usr/lib/sysimage/rpm")).unwrap();
        assert_eq!(zypp_dbpath(&root), Some(PathBuf::from("/usr/lib/sysimage/rpm")));
        // openSUSE: /var/lib/rpm is a link to the sysimage one, not chosen.
        fs::create_dir_all(root.path("/var/lib")).unwrap();
        std::os::unix::fs::symlink("../../usr/lib/sysimage/rpm", root.path("/var/lib/rpm")).unwrap();
        assert_eq!(zypp_dbpath(&root), Some(PathBuf::from("/usr/lib/sysimage/rpm")));
        // Debian: rpm ships an empty /var/lib/rpm, which libzypp prefers.
        fs::remove_file(root.path("/var/lib/rpm")).unwrap();
        fs::create_dir(root.path("/var/lib/rpm")).unwrap();
        assert_eq!(zypp_dbpath(&root), Some(PathBuf::from("/var/lib/rpm")));
    }

    #[test]
    fn every_frame_is_answered_even_nonsense() {
        // Not a systemd host: frames are answered, nothing is recorded.
        let (_tmp, root) = SysRoot::scratch();
        let input = b"PLUGINBEGIN\n\n\0COMMITBEGIN\n\nnot json\0WHATEVER\n\n\0COMMITEND\n\n{}\0PLUGINEND\n\n\0_DISCONNECT\n\n\0";
        let mut out = Vec::new();
        converse(&Bus::default(), &root, &mut &input[..], &mut out, 0, || ()).unwrap();
        let mut r = &out[..];
        let mut answers = Vec::new();
        while let Some(f) = frame::read(&mut r).unwrap() {
            answers.push(f.command);
        }
        assert_eq!(answers, ["ACK", "ACK", "_ENOMETHOD", "ACK", "ACK", "ACK"]);
    }
}
