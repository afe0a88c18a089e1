//! apt's `/var/log/apt/history.log`: one block per apt run, written by
//! apt's `pkgDPkgPM::OpenLog`/`CloseLog`:
//!
//! ```text
//! Start-Date: 2026-11-22  01:50:10
//! Commandline: apt-get upgrade
//! Requested-By: admin (1000)
//! Install: libnew1:amd64 (1.0, automatic), tool:amd64 (2.1)
//! Upgrade: libc6:amd64 (2.36-9+deb12u10, 2.36-9+deb12u14), libfoo:i386 (1:2.3-4, 1:2.3-5)
//! Remove: old:amd64 (0.9)
//! End-Date: 2026-11-22  01:50:20
//! ```
//!
//! Fields apt may also write: `Reinstall`, `Downgrade`, `Purge`,
//! `Disappeared`, `Error`, `Comment`. Blocks are appended in time order,
//! so a file's order is the order of the transactions.

use crate::replay::package::{split_deb_package, valid_deb_version, Change, PackageChange};
use crate::replay::stamp::Stamp;
use crate::replay::{read_back, Replay};
use crate::system::sysroot::SysRoot;
use anyhow::{bail, Result};

/// The live log; rotations add `.N.gz`.
pub const HISTORY_LOG: &str = "/var/log/apt/history.log";

/// One apt run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// `file:line` of its `Start-Date`.
    pub origin: String,
    /// `None` when the `Start-Date` value was corrupt.
    pub start: Option<Stamp>,
    pub end: Option<Stamp>,
    pub commandline: Option<String>,
    /// apt's `Error:` line: dpkg failed part-way; files may have changed.
    pub error: Option<String>,
    pub packages: Vec<PackageChange>,
}

/// What a `Key:` line carries.
enum Field {
    Start,
    End,
    Commandline,
    Error,
    Ignored,
    Packages(Change),
    /// Packages whose files were all taken over by others (no arch, maybe
    /// no version).
    Disappeared,
}

fn field(key: &str) -> Option<Field> {
    Some(match key {
        "Start-Date" => Field::Start,
        "End-Date" => Field::End,
        "Commandline" => Field::Commandline,
        "Error" => Field::Error,
        "Requested-By" | "Comment" => Field::Ignored,
        "Install" => Field::Packages(Change::Install),
        "Reinstall" => Field::Packages(Change::Reinstall),
        "Upgrade" => Field::Packages(Change::Upgrade),
        "Downgrade" => Field::Packages(Change::Downgrade),
        "Remove" => Field::Packages(Change::Remove),
        "Purge" => Field::Packages(Change::Purge),
        "Disappeared" => Field::Disappeared,
        _ => return None,
    })
}

/// `YYYY-MM-DD  HH:MM:SS` (apt writes two spaces).
fn stamp(value: &str) -> Option<Stamp> {
    let mut it = value.split_whitespace();
    let s = Stamp::from_log(it.next()?, it.next()?)?;
    it.next().is_none().then_some(s)
}

/// Parses one history file; `file` names it in warnings. Corrupt lines
/// and entries are reported in `warnings` and skipped.
pub fn parse(text: &str, file: &str, warnings: &mut Vec<String>) -> Vec<Transaction> {
    let mut out: Vec<Transaction> = Vec::new();
    let mut open = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        let at = format!("{file}:{}", i + 1);
        if line.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(':').filter(|(k, _)| valid_key(k)) else {
            warnings.push(format!("{at}: not a \"Field: value\" line: {}; skipped", shorten(line)));
            continue;
        };
        let value = value.strip_prefix(' ').unwrap_or(value);
        let Some(f) = field(key) else {
            warnings.push(format!("{at}: unknown field {key:?}; skipped"));
            continue;
        };
        if let Field::Start = f {
            let start = stamp(value);
            if start.is_none() {
                warnings.push(format!("{at}: Start-Date {value:?} is not a date and time"));
            }
            out.push(Transaction {
                origin: at,
                start,
                end: None,
                commandline: None,
                error: None,
                packages: Vec::new(),
            });
            open = true;
            continue;
        }
        let (true, Some(t)) = (open, out.last_mut()) else {
            warnings.push(format!(
                "{at}: {key} outside a transaction (no Start-Date before it); skipped"
            ));
            continue;
        };
        match f {
            Field::Start => unreachable!("handled above"),
            Field::End => {
                t.end = stamp(value);
                if t.end.is_none() {
                    warnings.push(format!("{at}: End-Date {value:?} is not a date and time"));
                }
                open = false;
            }
            Field::Commandline => t.commandline = Some(value.to_string()),
            Field::Error => t.error = Some(value.to_string()),
            Field::Ignored => {}
            Field::Packages(change) => {
                let entry = |e: &str| entry_of(e, change);
                t.packages.extend(entries(value, &entry, key, &at, warnings));
            }
            Field::Disappeared => t.packages.extend(entries(value, &disappeared, key, &at, warnings)),
        }
    }
    out
}

fn valid_key(k: &str) -> bool {
    !k.is_empty() && k.bytes().all(|c| c.is_ascii_alphabetic() || c == b'-')
}

/// At most 60 characters of a line, for messages.
fn shorten(line: &str) -> String {
    let cut: String = line.chars().take(60).collect();
    if cut.len() < line.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

type EntryParser<'a> = &'a dyn Fn(&str) -> Result<PackageChange, String>;

/// The entries of a package field that parse; the others are reported.
fn entries(value: &str, parse: EntryParser, key: &str, at: &str, w: &mut Vec<String>) -> Vec<PackageChange> {
    let mut out = Vec::new();
    for (n, entry) in split_entries(value).into_iter().enumerate() {
        match parse(entry) {
            Ok(p) => out.push(p),
            Err(why) => w.push(format!(
                "{at}: {key} entry {} {}: {why}; skipped",
                n + 1,
                shorten(entry)
            )),
        }
    }
    out
}

/// Splits at the commas outside parentheses; never fails, so a damaged
/// entry stays one piece and is rejected on its own.
fn split_entries(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in value.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim());
    parts
}

/// `pkg:arch (v1[, v2][, automatic])` → the package and the items inside
/// the parentheses.
fn split_entry(entry: &str) -> Result<(&str, Vec<&str>), String> {
    let Some(open) = entry.find('(') else {
        return Err("no version in parentheses".into());
    };
    let pkg = entry[..open].trim_end();
    let Some(inner) = entry[open + 1..].strip_suffix(')') else {
        return Err("no closing parenthesis".into());
    };
    if inner.contains(['(', ')']) {
        return Err("nested parentheses".into());
    }
    Ok((pkg, inner.split(',').map(str::trim).collect()))
}

fn version(v: &str) -> Result<String, String> {
    if valid_deb_version(v) {
        Ok(v.to_string())
    } else {
        Err(format!("{v:?} is not a version"))
    }
}

fn entry_of(entry: &str, change: Change) -> Result<PackageChange, String> {
    let (pkg, items) = split_entry(entry)?;
    let (name, arch) = split_deb_package(pkg)?;
    let (old, new) = match (change, &items[..]) {
        (Change::Upgrade | Change::Downgrade, [old, new]) => (Some(version(old)?), Some(version(new)?)),
        (Change::Install, [v] | [v, "automatic"]) => (None, Some(version(v)?)),
        (Change::Reinstall, [v]) => (Some(version(v)?), Some(version(v)?)),
        (Change::Remove | Change::Purge, [v]) => (Some(version(v)?), None),
        _ => return Err(format!("unexpected {:?} in parentheses", items.join(", "))),
    };
    Ok(PackageChange {
        name,
        arch,
        change,
        old,
        new,
    })
}

/// `pkg` or `pkg (ver)`: apt writes the name as dpkg reported it.
fn disappeared(entry: &str) -> Result<PackageChange, String> {
    let (pkg, old) = if entry.contains('(') {
        let (pkg, items) = split_entry(entry)?;
        match &items[..] {
            [v] => (pkg, Some(version(v)?)),
            _ => return Err(format!("unexpected {:?} in parentheses", items.join(", "))),
        }
    } else {
        (entry, None)
    };
    let (name, arch) = split_deb_package(pkg)?;
    Ok(PackageChange {
        name,
        arch,
        change: Change::Remove,
        old,
        new: None,
    })
}

/// Which transactions to replay, from `all` in time order: the `nth`
/// newest (1 = the last), among those since `since` if given; without
/// `nth`, every one since `since`; with neither, the last.
pub fn select(all: &[Transaction], since: Option<Stamp>, nth: Option<usize>) -> Result<Vec<&Transaction>> {
    let pool: Vec<&Transaction> = match since {
        Some(s) => all.iter().filter(|t| t.start.is_some_and(|t| t >= s)).collect(),
        None => all.iter().collect(),
    };
    let nth = match (since, nth) {
        (Some(_), None) => return Ok(pool),
        (_, n) => n.unwrap_or(1),
    };
    if nth == 0 || nth > pool.len() {
        let scope = since.map(|s| format!(" since {s}")).unwrap_or_default();
        bail!(
            "there is no transaction {nth} back: {HISTORY_LOG}* holds {} transaction(s){scope}",
            pool.len()
        );
    }
    Ok(vec![pool[pool.len() - nth]])
}

/// `replay --apt-history`: the `nth` newest apt run (default: the last),
/// among those since `since`; with `since` alone, all of them. Package
/// databases know today's file names only, so a library whose name
/// carries its version is matched by its soname stem too.
pub fn replay(root: &SysRoot, nth: Option<usize>, since: Option<Stamp>) -> Result<Replay> {
    let mut r = Replay::default();
    let all = read_back(root, HISTORY_LOG, &mut r.warnings, parse, |ts| match since {
        Some(since) => ts.iter().find_map(|t| t.start).is_some_and(|s| s < since),
        None => ts.len() >= nth.unwrap_or(1),
    })?;
    let chosen = select(&all, since, nth)?;
    if let (true, Some(since)) = (chosen.is_empty(), since) {
        r.described.push(format!("no apt transaction since {since}"));
    }
    for t in &chosen {
        let when = t.start.map_or_else(|| "an unknown time".to_string(), |s| s.to_string());
        let cmd = t.commandline.as_deref().unwrap_or("no command line");
        r.described.push(format!(
            "replaying the apt transaction of {when} ({cmd}) at {}: {} package(s)",
            t.origin,
            t.packages.len()
        ));
    }
    super::dpkg::replay_files(root, chosen.iter().flat_map(|t| &t.packages), &mut r);
    Ok(r.with_soname_stems())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "
Start-Date: 2026-11-20  10:00:00
Commandline: apt-get install libfoo:i386
Requested-By: admin (1000)
Install: libfoo:i386 (1:2.3-4), libbar1:i386 (0.5-1, automatic)
End-Date: 2026-11-20  10:00:04

Start-Date: 2026-11-22  01:50:10
Commandline: /usr/bin/unattended-upgrade
Upgrade: libc6:amd64 (2.36-9+deb12u10, 2.36-9+deb12u14), libfoo:i386 (1:2.3-4, 1:2.3-5)
Remove: old-tool:amd64 (0.9)
Purge: gone:amd64 (1.0)
Reinstall: same:all (3.0)
Downgrade: back:amd64 (2.0, 1.9)
Disappeared: vanished, vanished2 (4.0)
Error: Sub-process /usr/bin/dpkg returned an error code (1)
End-Date: 2026-11-22  01:50:20
";

    #[test]
    fn parses_blocks_multiarch_epochs_and_every_field() {
        let mut w = Vec::new();
        let t = parse(SAMPLE, "h.log", &mut w);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].origin, "h.log:2");
        assert_eq!(t[0].commandline.as_deref(), Some("apt-get install libfoo:i386"));
        let names: Vec<String> = t[0].packages.iter().map(|p| p.to_string()).collect();
        assert_eq!(names, ["Install libfoo:i386 - 1:2.3-4", "Install libbar1:i386 - 0.5-1"]);
        let names: Vec<String> = t[1].packages.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            names,
            [
                "Upgrade libc6:amd64 2.36-9+deb12u10 2.36-9+deb12u14",
                "Upgrade libfoo:i386 1:2.3-4 1:2.3-5",
                "Remove old-tool:amd64 0.9 -",
                "Purge gone:amd64 1.0 -",
                "Reinstall same:all 3.0 3.0",
                "Downgrade back:amd64 2.0 1.9",
                "Remove vanished - -",
                "Remove vanished2 4.0 -",
            ]
        );
        assert_eq!(t[1].start.unwrap().to_string(), "2026-11-22 01:50:10");
        assert_eq!(t[1].end.unwrap().to_string(), "2026-11-22 01:50:20");
        assert!(t[1].error.is_some());
    }

    #[test]
    fn corrupt_lines_and_entries_are_reported_and_skipped() {
        let text = "garbage before\nCommandline: orphan\n\
            Start-Date: 2026-11-22  01:50:10\n\
            Upgrade: good:amd64 (1.0, 2.0), bad:amd64 (1.0), ugly:amd64 (x, 2.0), trunc:amd64 (1.0, 2\n\
            Install: Caps:amd64 (1.0), ok:amd64 (1.0, manual), fine:amd64 (1.0)\n\
            Frobnicate: x\n\
            \u{fffd}\u{fffd}binary junk\n\
            End-Date: 2026-11-22  01:50:20\n\
            Start-Date: yesterday-ish\n\
            Remove: rm:amd64 (1.0)\n";
        let mut w = Vec::new();
        let t = parse(text, "/var/log/apt/history.log.2.gz", &mut w);
        let joined = w.join("\n");
        for needle in [
            "history.log.2.gz:1: not a \"Field: value\" line",
            "history.log.2.gz:2: Commandline outside a transaction",
            "history.log.2.gz:4: Upgrade entry 2 \"bad:amd64 (1.0)\"",
            "history.log.2.gz:4: Upgrade entry 3 \"ugly:amd64 (x, 2.0)\": \"x\" is not a version",
            "history.log.2.gz:4: Upgrade entry 4 \"trunc:amd64 (1.0, 2\": no closing parenthesis",
            "history.log.2.gz:5: Install entry 1 \"Caps:amd64 (1.0)\": \"Caps\" is not a package name",
            "history.log.2.gz:5: Install entry 2",
            "history.log.2.gz:6: unknown field \"Frobnicate\"",
            "history.log.2.gz:7: not a \"Field: value\" line",
            "history.log.2.gz:9: Start-Date \"yesterday-ish\" is not a date and time",
        ] {
            assert!(joined.contains(needle), "missing {needle:?} in\n{joined}");
        }
        assert_eq!(w.len(), 10, "{joined}");
        assert_eq!(t.len(), 2);
        let kept: Vec<&str> = t[0].packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(kept, ["good", "fine"]);
        assert_eq!(t[1].start, None);
        assert_eq!(t[1].packages.len(), 1);
    }

    #[test]
    fn never_panics_on_odd_input() {
        let mut w = Vec::new();
        for text in [
            "",
            "\n\n",
            ":",
            "Start-Date:",
            "Start-Date: ",
            "Upgrade: ()",
            "Start-Date: 2026-11-22  01:50:10\nUpgrade: (",
            "Start-Date: 2026-11-22  01:50:10\nUpgrade: ))((, ,",
            "Start-Date: 2026-11-22  01:50:10\nInstall: é:amd64 (1)",
            "Start-Date: 2026-11-22  01:50:10\nInstall: a:b:c (1.0)",
            "\u{0}\u{0}",
        ] {
            parse(text, "f", &mut w);
        }
    }

    #[test]
    fn selects_nth_newest_and_since() {
        let text = (1..=4)
            .map(|d| {
                format!(
                    "Start-Date: 2026-11-0{d}  12:00:00\nCommandline: run {d}\nEnd-Date: 2026-11-0{d}  12:00:01\n\n"
                )
            })
            .collect::<String>();
        let all = parse(&text, "h", &mut Vec::new());
        let cmd = |v: Vec<&Transaction>| -> Vec<String> { v.iter().map(|t| t.commandline.clone().unwrap()).collect() };
        assert_eq!(cmd(select(&all, None, None).unwrap()), ["run 4"]);
        assert_eq!(cmd(select(&all, None, Some(1)).unwrap()), ["run 4"]);
        assert_eq!(cmd(select(&all, None, Some(3)).unwrap()), ["run 2"]);
        let since = Stamp::parse_since("2026-11-02 12:00").unwrap();
        assert_eq!(
            cmd(select(&all, Some(since), None).unwrap()),
            ["run 2", "run 3", "run 4"]
        );
        assert_eq!(cmd(select(&all, Some(since), Some(3)).unwrap()), ["run 2"]);
        let err = select(&all, None, Some(5)).unwrap_err().to_string();
        assert!(err.contains("4 transaction"), "{err}");
        let later = Stamp::parse_since("2027-01-01").unwrap();
        assert!(select(&all, Some(later), None).unwrap().is_empty());
        assert!(select(&all, Some(later), Some(1)).is_err());
    }
}
