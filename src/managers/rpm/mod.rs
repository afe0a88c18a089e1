//! File lists and versions of installed rpm packages, from the rpmdb
//! through the system's own `rpm -q` (the rpmdb format is rpm's business).
//!
//! Only `/usr/bin/rpm` is ever run, with package names taken from the
//! package manager's history database, each checked to be a plain NEVRA
//! (no option-like or blank names), and without a shell.

pub mod changelog;

use crate::system::sysroot::SysRoot;
use anyhow::{anyhow, bail, Context, Result};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The rpm binary of the running system, never one under the root.
pub const RPM: &str = "/usr/bin/rpm";

/// How many packages one `rpm -ql` call gets.
const BATCH: usize = 200;

/// How long all `rpm -ql` calls of one listing may take together. A
/// listing of a whole system's upgrade takes a second or two; rpm stuck
/// on the rpmdb (a lock, a broken sqlite file, a slow disk) would
/// otherwise hold dnf's hooks, and dnf, for as long as it likes.
pub const RPM_LIMIT: Duration = Duration::from_secs(15);

/// What the rpmdb said about a batch of packages.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// Their files ([`FileLister::list`]).
    pub files: Vec<String>,
    /// The packages themselves, `name-epoch:version-release.arch`
    /// ([`FileLister::installed`]).
    pub packages: Vec<String>,
    /// Packages rpm reports as not installed (removed since).
    pub not_installed: Vec<String>,
    /// Output lines that were neither.
    pub unexpected: Vec<String>,
    /// The files and changelog of each package ([`FileLister::changelogs`]).
    pub changelogs: Vec<Changelog>,
}

/// One package's answer to the changelog query.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changelog {
    /// `name.arch`, as queried.
    pub package: String,
    pub files: Vec<String>,
    /// In `rpm -q --changelog`'s form, for [`crate::core::changelog::parse_rpm`].
    pub text: String,
}

/// The boundary to the rpmdb; tests use a fake.
pub trait FileLister {
    /// The files of the installed packages `nevras` under `root`.
    fn list(&self, root: &SysRoot, nevras: &[String]) -> Result<Listing>;

    /// Which packages are installed under `root` by the names `queries`
    /// (NEVRAs, or `name.arch`): [`Listing::packages`], and the queries
    /// that name none in [`Listing::not_installed`].
    fn installed(&self, root: &SysRoot, queries: &[String]) -> Result<Listing>;

    /// The files and changelogs of the installed packages `queries`
    /// (`name.arch`), in [`Listing::changelogs`]: the fixes annotation
    /// (docs/cves.md). A lister that cannot read them says so.
    fn changelogs(&self, _root: &SysRoot, _queries: &[String]) -> Result<Listing> {
        bail!("this rpmdb reader reads no changelogs")
    }
}

/// How rpm is asked: for the files of packages, or for the packages.
#[derive(Debug, Clone, Copy)]
enum Query {
    Files,
    Packages,
    Changelogs,
}

/// One line per package, the epoch always there: a package without one
/// says `0:`, which [`split_nevra`] leaves out again.
const PACKAGE_FORMAT: &str = r"%{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH}\n";

/// Per package a marker line, its files (`F PATH`), then its changelog
/// as `rpm -q --changelog` prints it (rpm's own alias for that option).
const CHANGELOG_FORMAT: &str = r"@@restart-stale %{NAME}.%{ARCH}\n[F %{FILENAMES}\n][* %{CHANGELOGTIME:day} %{CHANGELOGNAME}\n%{CHANGELOGTEXT}\n\n]";

/// A package's changelog text is cut here: Fedora's longest (glibc,
/// kernel) are a few hundred KiB.
const MAX_CHANGELOG: usize = 8 << 20;

impl Query {
    fn args(self) -> &'static [&'static str] {
        match self {
            Query::Files => &["-ql"],
            Query::Packages => &["-q", "--qf", PACKAGE_FORMAT],
            Query::Changelogs => &["-q", "--qf", CHANGELOG_FORMAT],
        }
    }

    fn parse(self, stdout: &str) -> Listing {
        match self {
            Query::Files => parse_ql(stdout),
            Query::Packages => parse_packages(stdout),
            Query::Changelogs => parse_changelogs(stdout),
        }
    }
}

/// `rpm -ql --root ROOT NEVRA...`, all batches of one listing within the
/// time limit it holds: [`RPM_LIMIT`] in hooks ([`RpmCommand::HOOK`]),
/// longer where nobody waits on us ([`RpmCommand::REPLAY`]).
pub struct RpmCommand(pub Duration);

impl RpmCommand {
    pub const HOOK: RpmCommand = RpmCommand(RPM_LIMIT);
    /// Replay is run by hand, on transactions of any size; the limit only
    /// guards against an rpm that never ends.
    pub const REPLAY: RpmCommand = RpmCommand(Duration::from_secs(300));
}

impl FileLister for RpmCommand {
    fn list(&self, root: &SysRoot, nevras: &[String]) -> Result<Listing> {
        list_with(Path::new(RPM), root, nevras, self.0)
    }

    fn installed(&self, root: &SysRoot, queries: &[String]) -> Result<Listing> {
        query_in(Path::new(RPM), root, None, Query::Packages, queries, self.0)
    }

    fn changelogs(&self, root: &SysRoot, queries: &[String]) -> Result<Listing> {
        query_in(Path::new(RPM), root, None, Query::Changelogs, queries, self.0)
    }
}

/// `PROGRAM -ql --root ROOT NEVRA...` in batches, all done within `limit`
/// or killed: [`RpmCommand`] with another program and limit, for tests
/// that stand in for rpm.
pub(crate) fn list_with(program: &Path, root: &SysRoot, nevras: &[String], limit: Duration) -> Result<Listing> {
    query_in(program, root, None, Query::Files, nevras, limit)
}

/// `query` for `nevras` in batches, in the rpmdb at `dbpath` under the
/// root (`--dbpath`), or in rpm's own `%_dbpath` for `None`.
fn query_in(
    program: &Path,
    root: &SysRoot,
    dbpath: Option<&Path>,
    query: Query,
    nevras: &[String],
    limit: Duration,
) -> Result<Listing> {
    let deadline = Instant::now() + limit;
    let mut all = Listing::default();
    for batch in nevras.chunks(BATCH) {
        let l = run_rpm(program, root, dbpath, query, batch, deadline)?;
        all.files.extend(l.files);
        all.packages.extend(l.packages);
        all.not_installed.extend(l.not_installed);
        all.unexpected.extend(l.unexpected);
        all.changelogs.extend(l.changelogs);
    }
    Ok(all)
}

fn run_rpm(
    program: &Path,
    root: &SysRoot,
    dbpath: Option<&Path>,
    query: Query,
    nevras: &[String],
    deadline: Instant,
) -> Result<Listing> {
    if let Some(bad) = nevras.iter().find(|n| !safe_argument(n)) {
        bail!("refusing to pass {bad:?} to rpm: not a package name");
    }
    let mut cmd = Command::new(program);
    cmd.args(query.args()).arg("--root").arg(root.root());
    if let Some(db) = dbpath {
        cmd.arg("--dbpath").arg(db);
    }
    let child = cmd
        .args(nevras)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that a timeout kills whatever it
        // started too (and nothing keeps our pipes open).
        .process_group(0)
        .spawn()
        .with_context(|| format!("failed to run {} to query the rpmdb", program.display()))?;
    let how = query.args()[0];
    let out = wait_until(child, deadline).with_context(|| format!("{} {how}", program.display()))?;
    let listing = query.parse(&String::from_utf8_lossy(&out.stdout));
    // rpm's exit status counts the packages not found; anything else
    // without any output is a failure (no rpmdb, unreadable rpmdb).
    let answered = !listing.files.is_empty()
        || !listing.packages.is_empty()
        || !listing.not_installed.is_empty()
        || !listing.changelogs.is_empty();
    if !out.status.success() && !answered {
        bail!(
            "{} {how} failed ({}): {}",
            program.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(listing)
}

/// Collects a child's output, killing its process group if it and its
/// output are not done by `deadline`.
fn wait_until(mut child: Child, deadline: Instant) -> Result<std::process::Output> {
    // Drained on threads: rpm blocks once a pipe buffer (64 KiB) is full,
    // and a long file list is far more than that. Channels, not joins, so
    // that waiting for the output has the deadline too.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            let _ = tx.send(buf);
        });
        rx
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let late = |child: &mut Child| {
        // SAFETY: kill(2) on the process group of a child we spawned with
        // process_group(0); the group keeps its id while the child is
        // unreaped, and after that only members it started can be in it.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
        let _ = child.wait();
        anyhow!("did not finish in time; killed it (the rpmdb may be locked or damaged)")
    };
    let status = loop {
        if let Some(status) = child.try_wait().context("failed to wait for it")? {
            break status;
        }
        if Instant::now() >= deadline {
            return Err(late(&mut child));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // Something it started may still hold the pipes open.
    let mut collect = |rx: mpsc::Receiver<Vec<u8>>| {
        rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .map_err(|_| late(&mut child))
    };
    let stdout = collect(stdout)?;
    let stderr = collect(stderr)?;
    Ok(std::process::Output { status, stdout, stderr })
}

/// A NEVRA we are willing to put on rpm's command line.
pub fn safe_argument(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && s.bytes()
            .all(|c| c.is_ascii_graphic() && !b"'\"\\`$%;|&<>*?[]{}()".contains(&c))
}

/// `rpm -ql` output: absolute paths, `(contains no files)`, and
/// `package X is not installed` (with `LC_ALL=C`).
pub fn parse_ql(stdout: &str) -> Listing {
    let mut l = Listing::default();
    for line in stdout.lines() {
        if line.starts_with('/') {
            l.files.push(line.to_string());
        } else if !not_installed(line, &mut l) && line != "(contains no files)" && !line.trim().is_empty() {
            l.unexpected.push(line.to_string());
        }
    }
    l
}

/// The output of `rpm -q --qf PACKAGE_FORMAT`: a NEVRA per line, and
/// `package X is not installed`.
pub fn parse_packages(stdout: &str) -> Listing {
    let mut l = Listing::default();
    for line in stdout.lines() {
        if split_nevra(line).is_some() && safe_argument(line) {
            l.packages.push(line.to_string());
        } else if !not_installed(line, &mut l) && !line.trim().is_empty() {
            l.unexpected.push(line.to_string());
        }
    }
    l
}

/// The output of `rpm -q --qf CHANGELOG_FORMAT`: per package its marker,
/// `F PATH` lines, then the changelog; `package X is not installed` between.
/// A line of a changelog that looks like the marker of a package already
/// seen stays text.
pub(crate) fn parse_changelogs(stdout: &str) -> Listing {
    let mut l = Listing::default();
    let mut in_text = false;
    for line in stdout.lines() {
        let marker = line
            .strip_prefix("@@restart-stale ")
            .filter(|p| safe_argument(p) && p.contains('.') && !l.changelogs.iter().any(|c| c.package == *p));
        if let Some(package) = marker {
            l.changelogs.push(Changelog {
                package: package.to_string(),
                ..Changelog::default()
            });
            in_text = false;
            continue;
        }
        // rpm's own line, between the packages in the order asked.
        if not_installed(line, &mut l) {
            continue;
        }
        let Some(c) = l.changelogs.last_mut() else {
            if !line.trim().is_empty() {
                l.unexpected.push(line.to_string());
            }
            continue;
        };
        match line.strip_prefix("F ") {
            Some(f) if !in_text && f.starts_with('/') => c.files.push(f.to_string()),
            _ if c.text.len() + line.len() < MAX_CHANGELOG => {
                in_text = true;
                c.text.push_str(line);
                c.text.push('\n');
            }
            _ => {}
        }
    }
    l
}

/// Notes `package X is not installed` in `l`; false for any other line.
fn not_installed(line: &str, l: &mut Listing) -> bool {
    match line
        .strip_prefix("package ")
        .and_then(|r| r.strip_suffix(" is not installed"))
    {
        Some(p) => {
            l.not_installed.push(p.to_string());
            true
        }
        None => false,
    }
}

/// `name-version-release.arch`: rpm's query form. The epoch is left out;
/// two installed packages never differ in the epoch alone.
pub fn nevra(name: &str, version: &str, release: &str, arch: &str) -> String {
    format!("{name}-{version}-{release}.{arch}")
}

/// `name-[epoch:]version-release.arch` → `(name, evr, arch)`, with a zero
/// epoch left out of `evr`.
pub fn split_nevra(s: &str) -> Option<(&str, String, &str)> {
    let (nevr, arch) = s.rsplit_once('.')?;
    let (nev, release) = nevr.rsplit_once('-')?;
    let (name, ev) = nev.rsplit_once('-')?;
    if [name, ev, release, arch].iter().any(|p| p.is_empty()) {
        return None;
    }
    let ev = ev.strip_prefix("0:").unwrap_or(ev);
    Some((name, format!("{ev}-{release}"), arch))
}

/// A NEVRA as the summary names it: `name.arch` and its version.
pub fn package_key(nevra: &str) -> Option<(String, String)> {
    let (name, evr, arch) = split_nevra(nevra)?;
    Some((format!("{name}.{arch}"), evr))
}

/// A manager on the rpm database (dnf, zypper): the record's facts are
/// the changed set, package names are NEVRAs, and the rpmdb answers for
/// owners and changelogs.
pub struct RecordedOnRpm {
    pub id: &'static str,
    /// The packages of a record for the fixes annotation, where the
    /// manager's record names them in a form we read.
    pub upgrades: Option<fn(&crate::transaction::record::Record) -> Option<crate::core::fixes::Upgrades>>,
}

impl crate::transaction::Manager for RecordedOnRpm {
    fn id(&self) -> &'static str {
        self.id
    }

    fn packages(&self) -> Option<&'static dyn crate::run::Packages> {
        Some(&Rpmdb)
    }

    fn split_package(&self, package: &str) -> Option<(String, String)> {
        package_key(package)
    }

    fn upgrades(&self, rec: &crate::transaction::record::Record) -> Option<crate::core::fixes::Upgrades> {
        self.upgrades.and_then(|f| f(rec))
    }
}

/// Names a stand-in for rpm in tests. Honoured only with a root other
/// than `/`: on a real system we run the system's `/usr/bin/rpm`, never
/// a program an environment variable names.
pub const RPM_ENV: &str = "RESTART_STALE_RPM";

/// The stand-in's time limit in milliseconds, instead of [`RPM_LIMIT`],
/// so that a test of the limit need not take 15 s. Honoured with
/// [`RPM_ENV`] only.
pub const RPM_LIMIT_ENV: &str = "RESTART_STALE_RPM_LIMIT_MS";

/// The system's rpm as the hooks run it, or in a test root the stand-in.
pub(crate) fn lister(root: &SysRoot) -> Box<dyn FileLister> {
    lister_in(root, None)
}

/// [`lister`] in the rpmdb at `dbpath` under the root, for a package
/// manager that chose its database itself (libzypp, see
/// [`crate::managers::zypper`]); `None` is rpm's own `%_dbpath`.
pub(crate) fn lister_in(root: &SysRoot, dbpath: Option<PathBuf>) -> Box<dyn FileLister> {
    lister_within(root, dbpath, RPM_LIMIT)
}

/// [`lister_in`] with a time limit of its own, for a hook whose whole run
/// has a shorter bound than [`RPM_LIMIT`] (dnf5's, see `crate::managers::dnf::dnf5`).
pub(crate) fn lister_within(root: &SysRoot, dbpath: Option<PathBuf>, limit: Duration) -> Box<dyn FileLister> {
    match std::env::var_os(RPM_ENV) {
        Some(p) if !root.is_host() => {
            let limit = std::env::var(RPM_LIMIT_ENV)
                .ok()
                .and_then(|ms| ms.parse().ok())
                .map_or(limit, Duration::from_millis);
            Box::new(Rpm {
                program: PathBuf::from(p),
                limit,
                dbpath,
            })
        }
        _ => Box::new(Rpm {
            program: PathBuf::from(RPM),
            limit,
            dbpath,
        }),
    }
}

struct Rpm {
    program: PathBuf,
    limit: Duration,
    dbpath: Option<PathBuf>,
}

impl FileLister for Rpm {
    fn list(&self, root: &SysRoot, nevras: &[String]) -> Result<Listing> {
        query_in(
            &self.program,
            root,
            self.dbpath.as_deref(),
            Query::Files,
            nevras,
            self.limit,
        )
    }

    fn installed(&self, root: &SysRoot, queries: &[String]) -> Result<Listing> {
        query_in(
            &self.program,
            root,
            self.dbpath.as_deref(),
            Query::Packages,
            queries,
            self.limit,
        )
    }

    fn changelogs(&self, root: &SysRoot, queries: &[String]) -> Result<Listing> {
        query_in(
            &self.program,
            root,
            self.dbpath.as_deref(),
            Query::Changelogs,
            queries,
            self.limit,
        )
    }
}

/// The form rpm's queries take: the NEVRA without its epoch. Two
/// installed packages never differ in the epoch alone.
pub fn query_form(nevra: &str) -> String {
    let Some((nevr, arch)) = nevra.rsplit_once('.') else {
        return nevra.to_string();
    };
    let Some((nev, release)) = nevr.rsplit_once('-') else {
        return nevra.to_string();
    };
    let Some((name, ev)) = nev.rsplit_once('-') else {
        return nevra.to_string();
    };
    let v = match ev.split_once(':') {
        Some((e, v)) if !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit()) => v,
        _ => ev,
    };
    format!("{name}-{v}-{release}.{arch}")
}

/// Where rpm keeps its database: the Fedora 36+ location, then the
/// classic one (a link to the first on newer systems).
const RPMDB_DIRS: [&str; 2] = ["/usr/lib/sysimage/rpm", "/var/lib/rpm"];

/// True when the root holds an rpm database.
pub(crate) fn has_rpmdb(root: &SysRoot) -> bool {
    RPMDB_DIRS.iter().any(|d| root.is_dir(d))
}

/// The rpm database, as a run asks it: the changelogs in the rpmdb name
/// the fixes ([`changelog`]). rpm systems keep no reboot-required list.
pub struct Rpmdb;

impl crate::run::Packages for Rpmdb {
    fn name(&self) -> &'static str {
        "rpmdb"
    }

    fn annotate(
        &self,
        root: &SysRoot,
        plan: &crate::core::plan::Plan,
        ups: &crate::core::fixes::Upgrades,
    ) -> crate::core::fixes::ByUnit {
        changelog::annotate(plan, ups, &*lister(root), root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hook_ends_within_30_seconds() {
        use crate::transaction::{launch::HOOK_DBUS_TIMEOUT, HOOK_LIMIT};
        // rpm, then D-Bus calls, all inside the watchdog's limit, which
        // leaves time to exit before apt's 30 s.
        assert!(RPM_LIMIT + HOOK_DBUS_TIMEOUT < HOOK_LIMIT);
        assert!(HOOK_LIMIT + Duration::from_secs(5) <= Duration::from_secs(30));
    }

    #[test]
    fn parses_rpm_ql_output() {
        let out = "/usr/lib64/libfoo.so.1\n/usr/share/doc/foo\n(contains no files)\n\
                   package bar-1.0-1.x86_64 is not installed\nerror: odd\n";
        let l = parse_ql(out);
        assert_eq!(l.files, ["/usr/lib64/libfoo.so.1", "/usr/share/doc/foo"]);
        assert_eq!(l.not_installed, ["bar-1.0-1.x86_64"]);
        assert_eq!(l.unexpected, ["error: odd"]);
    }

    #[test]
    fn parses_the_installed_packages() {
        let out = "libdemo1-0:1.0-1.x86_64\nkernel-default-0:6.4-2.x86_64\nkernel-default-0:6.5-1.x86_64\n\
                   gone-1:1-1.noarch\npackage fresh.x86_64 is not installed\n\
                   gpg-pubkey-0:abc-def.(none)\n\n";
        let l = parse_packages(out);
        assert_eq!(
            l.packages,
            [
                "libdemo1-0:1.0-1.x86_64",
                "kernel-default-0:6.4-2.x86_64",
                "kernel-default-0:6.5-1.x86_64",
                "gone-1:1-1.noarch"
            ]
        );
        assert_eq!(l.not_installed, ["fresh.x86_64"]);
        // Not a package name we would pass on (and never one we ask for).
        assert_eq!(l.unexpected, ["gpg-pubkey-0:abc-def.(none)"]);
        assert!(l.files.is_empty());
        assert_eq!(
            split_nevra(&l.packages[0]),
            Some(("libdemo1", "1.0-1".to_string(), "x86_64"))
        );
    }

    #[test]
    fn only_plain_names_reach_rpm() {
        assert!(safe_argument("glibc-2.40-3.fc41.x86_64"));
        assert!(safe_argument("libstdc++-14.2.1-3.fc41.x86_64"));
        assert!(safe_argument("vim-enhanced-9.1.825-1.fc41.x86_64"));
        for bad in [
            "",
            "-e",
            "--eval=%{lua:x}",
            "a b",
            "a\nb",
            "$(x)",
            "a;b",
            "*",
            "%{lua:x}",
        ] {
            assert!(!safe_argument(bad), "{bad:?}");
        }
        assert_eq!(nevra("bash", "5.2.26", "3.fc41", "x86_64"), "bash-5.2.26-3.fc41.x86_64");
    }

    /// A stuck rpm (a child keeps stdout open while rpm waits on it), and
    /// output held open after rpm itself exited: both are killed at the
    /// deadline, not waited for.
    #[test]
    fn rpm_output_is_not_waited_for_past_the_deadline() {
        for script in [
            "#!/bin/sh\necho /usr/lib/partial\nsleep 60 & sleep 60\n",
            "#!/bin/sh\necho /usr/lib/x\nsleep 60 &\nexit 0\n",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let rpm = dir.path().join("rpm");
            std::fs::write(&rpm, script).unwrap();
            std::fs::set_permissions(&rpm, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
            let start = Instant::now();
            let err = list_with(
                &rpm,
                &SysRoot::default(),
                &["a-1-1.x86_64".into()],
                Duration::from_millis(300),
            )
            .unwrap_err();
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{script:?}: {:?}",
                start.elapsed()
            );
            assert!(format!("{err:#}").contains("killed"), "{script:?}: {err:#}");
        }
    }

    #[test]
    fn refuses_unsafe_names_before_running_anything() {
        let err = RpmCommand::HOOK
            .list(&SysRoot::default(), &["ok-1-1.x86_64".into(), "--eval=x".into()])
            .unwrap_err();
        assert!(err.to_string().contains("--eval=x"), "{err}");
    }

    #[test]
    fn parses_the_changelog_query() {
        let out = "@@restart-stale openssl-libs.x86_64\nF /usr/lib64/libssl.so.3\nF /usr/lib64/libcrypto.so.3\n\
                   * Thu Nov 19 2026 Jane Roe <j@e> - 1:3.2.4-3\n- Fix CVE-2026-41210\nF /not/a/file\n\n\
                   @@restart-stale openssl-libs.x86_64\n\
                   package gone.x86_64 is not installed\n\
                   @@restart-stale zlib.x86_64\nF /usr/lib64/libz.so.1\n";
        let l = parse_changelogs(out);
        assert_eq!(l.changelogs.len(), 2, "{l:?}");
        let ssl = &l.changelogs[0];
        assert_eq!(ssl.package, "openssl-libs.x86_64");
        assert_eq!(ssl.files, ["/usr/lib64/libssl.so.3", "/usr/lib64/libcrypto.so.3"]);
        assert!(ssl.text.starts_with("* Thu Nov 19 2026"), "{}", ssl.text);
        assert!(ssl
            .text
            .contains("F /not/a/file\n\n@@restart-stale openssl-libs.x86_64\n"));
        assert_eq!(l.not_installed, ["gone.x86_64"]);
        assert_eq!(l.changelogs[1].files, ["/usr/lib64/libz.so.1"]);
        assert!(l.changelogs[1].text.is_empty());
    }
}
