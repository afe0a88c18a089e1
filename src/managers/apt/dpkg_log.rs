//! dpkg's `/var/log/dpkg.log`: one line per action, written by dpkg's
//! `log_action` as `DATE TIME ACTION PKG INSTALLED-VERSION AVAILABLE-VERSION`:
//!
//! ```text
//! 2026-11-22 01:50:12 upgrade libdemo1:amd64 1.0 2.0
//! 2026-11-22 01:50:12 install libnew1:amd64 <none> 1.0
//! 2026-11-22 01:50:13 remove old-tool:amd64 0.9 <none>
//! ```
//!
//! An absent version is `<none>`, translated in other locales (`<keine>`),
//! so any `<…>` counts as absent. `status`, `configure`, `trigproc`,
//! `conffile` and `startup` lines change no files and are passed over.

use crate::core::fixes::Upgrades;
use crate::replay::logfiles;
use crate::replay::package::{split_deb_package, valid_deb_version, Change, PackageChange};
use crate::replay::stamp::Stamp;
use crate::replay::{read_back, Replay};
use crate::system::sysroot::SysRoot;
use anyhow::Result;
use std::collections::BTreeMap;

/// The live log; rotations add `.1`, `.2.gz`, …
pub const DPKG_LOG: &str = "/var/log/dpkg.log";

/// One install, upgrade, remove or purge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `file:line`.
    pub origin: String,
    pub at: Stamp,
    pub package: PackageChange,
}

/// The lines that do not change which files a package has.
const PASSED_OVER: &[&str] = &["status", "configure", "trigproc", "conffile", "startup"];

/// Parses one dpkg.log; `file` names it in warnings. Corrupt lines are
/// reported in `warnings` and skipped.
pub fn parse(text: &str, file: &str, warnings: &mut Vec<String>) -> Vec<Event> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let origin = format!("{file}:{}", i + 1);
        match parse_line(line) {
            Ok(Some((at, package))) => out.push(Event { origin, at, package }),
            Ok(None) => {}
            Err(why) => warnings.push(format!("{origin}: {why}; skipped")),
        }
    }
    out
}

fn parse_line(line: &str) -> Result<Option<(Stamp, PackageChange)>, String> {
    let fields: Vec<&str> = line.split(' ').collect();
    let at = match fields[..] {
        [d, t, ..] => Stamp::from_log(d, t),
        _ => None,
    }
    .ok_or("does not start with a date and time")?;
    let change = match fields.get(2).copied() {
        Some("install") => Change::Install,
        Some("upgrade") => Change::Upgrade,
        Some("remove") => Change::Remove,
        Some("purge") => Change::Purge,
        Some(w) if PASSED_OVER.contains(&w) => return Ok(None),
        Some(w) => return Err(format!("unknown action {w:?}")),
        None => return Err("no action".into()),
    };
    let [_, _, _, pkg, old, new] = fields[..] else {
        return Err(format!(
            "expected PACKAGE OLD-VERSION NEW-VERSION after {:?}",
            fields[2]
        ));
    };
    let (name, arch) = split_deb_package(pkg)?;
    let package = PackageChange {
        name,
        arch,
        change,
        old: version(old)?,
        new: version(new)?,
    };
    Ok(Some((at, package)))
}

/// A version, or `None` for dpkg's (possibly translated) `<none>`.
fn version(v: &str) -> Result<Option<String>, String> {
    if v.starts_with('<') && v.ends_with('>') && v.len() > 2 {
        Ok(None)
    } else if valid_deb_version(v) {
        Ok(Some(v.to_string()))
    } else {
        Err(format!("{v:?} is not a version"))
    }
}

/// The events at or after `since`, in log order.
pub fn since(events: &[Event], since: Stamp) -> Vec<&Event> {
    events.iter().filter(|e| e.at >= since).collect()
}

/// The generations `status` reads: the live log and its first rotation
/// (a month's worth by logrotate's default). Older changes are rare
/// behind a still-running process, and every run of `status` pays this.
const STATUS_GENERATIONS: usize = 2;

/// For `status`, which has no transaction: each package's newest change
/// in dpkg.log, whose old version is the one a process started before it
/// still runs (docs/cves.md). A package whose newest change removed it is
/// left out. `None` without a readable dpkg.log (not a Debian system).
pub(crate) fn status_upgrades(root: &SysRoot) -> Option<Upgrades> {
    let names = match logfiles::generations(root, DPKG_LOG) {
        Ok(n) if !n.is_empty() => n,
        Ok(_) => return None,
        Err(e) => {
            log::debug!("{e:#}");
            return None;
        }
    };
    let mut warnings = Vec::new();
    let mut events = Vec::new();
    for name in names.iter().take(STATUS_GENERATIONS).rev() {
        let file = logfiles::read(root, name, &mut warnings);
        events.extend(parse(&file.text, &file.name, &mut warnings));
    }
    warnings.iter().for_each(|w| log::debug!("{w}"));
    Some(newest_changes(&events))
}

/// Each package's newest change among `events` (oldest first), as the
/// annotation's upgrades: its old version and the one it installed.
pub(crate) fn newest_changes(events: &[Event]) -> Upgrades {
    let mut newest: BTreeMap<(&str, Option<&str>), &PackageChange> = BTreeMap::new();
    for e in events {
        newest.insert((&e.package.name, e.package.arch.as_deref()), &e.package);
    }
    let mut ups = Upgrades::default();
    for p in newest.values().filter(|p| p.change.leaves_files()) {
        ups.add(&p.name, p.arch.as_deref(), p.old.as_deref(), p.new.as_deref());
    }
    ups
}

/// `replay --since` alone: every dpkg install, upgrade and remove since
/// the time (soname stems as in [`super::history::replay`]).
pub fn replay(root: &SysRoot, since: Stamp) -> Result<Replay> {
    let mut r = Replay::default();
    let all = read_back(root, DPKG_LOG, &mut r.warnings, parse, |es| {
        es.first().is_some_and(|e| e.at < since)
    })?;
    let chosen = self::since(&all, since);
    r.described.push(match (chosen.first(), chosen.last()) {
        (Some(a), Some(b)) => format!(
            "replaying {} dpkg action(s) since {since}: from {} at {} to {} at {}",
            chosen.len(),
            a.at,
            a.origin,
            b.at,
            b.origin
        ),
        _ => format!("no dpkg action since {since}"),
    });
    super::dpkg::replay_files(root, chosen.iter().map(|e| &e.package), &mut r);
    Ok(r.with_soname_stems())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_actions_multiarch_epochs_and_passes_over_the_rest() {
        let text = "\
2026-11-22 01:50:10 startup archives unpack
2026-11-22 01:50:12 upgrade libc6:amd64 2.36-9+deb12u10 2.36-9+deb12u14
2026-11-22 01:50:12 status half-configured libc6:amd64 2.36-9+deb12u10
2026-11-22 01:50:12 install libfoo:i386 <none> 1:2.3-4
2026-11-22 01:50:13 remove old-tool:amd64 0.9 <keine>
2026-11-22 01:50:13 purge gone:amd64 1.0 <无>
2026-11-22 01:50:14 configure libc6:amd64 2.36-9+deb12u14 <none>
2026-11-22 01:50:14 conffile /etc/foo.conf keep
2026-11-22 01:50:15 trigproc libc-bin:amd64 2.36-9+deb12u14 <none>
2011-01-01 00:00:00 upgrade oldstyle 1.0 1.1
";
        let mut w = Vec::new();
        let e = parse(text, "dpkg.log", &mut w);
        assert!(w.is_empty(), "{w:?}");
        let got: Vec<String> = e.iter().map(|e| format!("{} {}", e.origin, e.package)).collect();
        assert_eq!(
            got,
            [
                "dpkg.log:2 Upgrade libc6:amd64 2.36-9+deb12u10 2.36-9+deb12u14",
                "dpkg.log:4 Install libfoo:i386 - 1:2.3-4",
                "dpkg.log:5 Remove old-tool:amd64 0.9 -",
                "dpkg.log:6 Purge gone:amd64 1.0 -",
                "dpkg.log:10 Upgrade oldstyle 1.0 1.1",
            ]
        );
    }

    #[test]
    fn corrupt_lines_are_reported_and_skipped() {
        let text = "\
2026-11-22 01:50:12 upgrade libdemo1:amd64 1.0 2.0
2026-11-22 01:50:1
2026-11-22 01:50:12 upgrade libdemo1:amd64 1.0
2026-11-22 01:50:12 frobnicate libdemo1:amd64 1.0 2.0
2026-11-22 01:50:12 upgrade LibDemo:amd64 1.0 2.0
2026-11-22 01:50:12 upgrade libdemo1:amd64 1.0 two
garbage
2026-11-22 01:50:12
2026-11-22 01:50:12 install ok:amd64 <none> 1.0
";
        let mut w = Vec::new();
        let e = parse(text, "/var/log/dpkg.log.2.gz", &mut w);
        assert_eq!(e.len(), 2);
        let joined = w.join("\n");
        for needle in [
            "dpkg.log.2.gz:2: does not start with a date and time",
            "dpkg.log.2.gz:3: expected PACKAGE OLD-VERSION NEW-VERSION after \"upgrade\"",
            "dpkg.log.2.gz:4: unknown action \"frobnicate\"",
            "dpkg.log.2.gz:5: \"LibDemo\" is not a package name",
            "dpkg.log.2.gz:6: \"two\" is not a version",
            "dpkg.log.2.gz:7: does not start",
            "dpkg.log.2.gz:8: no action",
        ] {
            assert!(joined.contains(needle), "missing {needle:?} in\n{joined}");
        }
        assert_eq!(w.len(), 7);
    }

    #[test]
    fn since_filters_by_time() {
        let text = "2026-11-21 23:59:59 upgrade a1:amd64 1 2\n2026-11-22 00:00:00 upgrade b1:amd64 1 2\n";
        let e = parse(text, "f", &mut Vec::new());
        let s = since(&e, Stamp::parse_since("2026-11-22").unwrap());
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].package.name, "b1");
    }

    #[test]
    fn never_panics_on_odd_input() {
        for text in [
            "",
            " ",
            "2026-11-22",
            "2026-11-22 01:50:12 upgrade",
            "\u{0}",
            "a b c d e f g h",
        ] {
            parse(text, "f", &mut Vec::new());
        }
    }

    #[test]
    fn status_takes_each_packages_newest_change_and_drops_removed_ones() {
        let text = "\
2026-10-01 10:00:00 upgrade libdemo1:amd64 1.0 2.0
2026-10-01 10:00:00 install libnew1:amd64 <none> 1.0
2026-11-01 10:00:00 upgrade libdemo1:amd64 2.0 3.0
2026-11-01 10:00:00 upgrade libdemo1:i386 1.0 3.0
2026-11-02 10:00:00 install gone:amd64 <none> 1.0
2026-11-03 10:00:00 remove gone:amd64 1.0 <none>
";
        let ups = newest_changes(&parse(text, "dpkg.log", &mut Vec::new()));
        let got: Vec<String> = ups
            .packages
            .iter()
            .map(|u| {
                format!(
                    "{}:{} {:?} {:?}",
                    u.name,
                    u.arch.as_deref().unwrap_or("-"),
                    u.from,
                    u.to
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                "libdemo1:amd64 Some(\"2.0\") Some(\"3.0\")",
                "libdemo1:i386 Some(\"1.0\") Some(\"3.0\")",
                "libnew1:amd64 None Some(\"1.0\")",
            ]
        );
    }

    #[test]
    fn status_reads_the_live_log_and_its_first_rotation_only() {
        let (_t, root) = SysRoot::scratch();
        assert!(status_upgrades(&root).is_none());
        std::fs::create_dir_all(root.path("/var/log")).unwrap();
        let w = |name: &str, text: &str| std::fs::write(root.path(name), text).unwrap();
        w("/var/log/dpkg.log", "2026-11-03 10:00:00 upgrade aa:amd64 2 3\n");
        w(
            "/var/log/dpkg.log.1",
            "2026-10-03 10:00:00 upgrade aa:amd64 1 2\n2026-10-03 10:00:00 upgrade bb:amd64 1 2\n",
        );
        w("/var/log/dpkg.log.2", "2026-09-03 10:00:00 upgrade cc:amd64 1 2\n");
        let ups = status_upgrades(&root).unwrap();
        let got: Vec<(&str, Option<&str>)> = ups
            .packages
            .iter()
            .map(|u| (u.name.as_str(), u.from.as_deref()))
            .collect();
        assert_eq!(got, [("aa", Some("2")), ("bb", Some("1"))]);
    }
}
