//! Package changelogs as data: Debian's `changelog.Debian` format
//! (deb-changelog(5)) and the text of `rpm -q --changelog`, parsed into
//! one entry per upload with its version, distribution, urgency and the
//! CVE identifiers its text names. The parsers are strict about headers
//! and bounded: a changelog is input from disk, and a hostile or broken
//! one must cost little and never panic.

use std::cmp::Ordering;

/// The most entries one changelog yields: far more than any upgrade
/// spans (openssl's Debian changelog has about 300), so that a huge file
/// is cut off instead of parsed to its end.
pub const MAX_ENTRIES: usize = 2000;

/// The most CVE identifiers kept per entry (a rebase may name hundreds).
pub const MAX_CVES_PER_ENTRY: usize = 500;

/// The longest line looked at; longer lines are body text cut short.
const MAX_LINE: usize = 4096;

/// One upload, newest first in a changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub version: String,
    /// Debian's distribution field (`bookworm-security`); empty for rpm.
    pub distribution: String,
    /// Debian's `urgency=` value, lowercased; `None` for rpm.
    pub urgency: Option<String>,
    /// `CVE-YYYY-NNNN…`, uppercase, in the order first named.
    pub cves: Vec<String>,
}

/// What a parse yielded, and why it stopped early, if it did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub entries: Vec<Entry>,
    /// `Some` when parsing stopped before the end of the text: a line that
    /// is neither a header nor body text, or [`MAX_ENTRIES`].
    pub stopped: Option<String>,
}

/// Parses a Debian changelog header, `NAME (VERSION) DIST…; key=value, …`:
/// the version and the distribution field and the urgency.
pub(crate) fn debian_header(line: &str) -> Option<(String, String, Option<String>)> {
    let (name, rest) = line.split_once(" (")?;
    if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c)) {
        return None;
    }
    let (version, rest) = rest.split_once(')')?;
    if version.is_empty()
        || !version
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".+-~:".contains(&c))
    {
        return None;
    }
    let (dists, keys) = rest.split_once(';')?;
    let dists = dists.trim();
    if dists.is_empty()
        || !dists
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-+._ ".contains(&c))
    {
        return None;
    }
    let urgency = keys.split(',').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        k.eq_ignore_ascii_case("urgency")
            .then(|| v.split_whitespace().next().unwrap_or("").to_ascii_lowercase())
    });
    Some((version.to_string(), dists.to_string(), urgency))
}

/// Parses a Debian changelog, up to [`MAX_ENTRIES`] entries. Body lines
/// start with whitespace; a trailer line (`-- name <mail>  date`) too.
/// Emacs `Local variables:` blocks and `Old Changelog:` sections end the
/// parse quietly: what follows is free text of no fixed format.
pub fn parse_debian(text: &str) -> Parsed {
    let mut out = Parsed::default();
    for line in text.lines() {
        let line = cut(line);
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(e) = out.entries.last_mut() {
                add_cves(&mut e.cves, line);
            }
            continue;
        }
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("local variables:") || lower.starts_with("old changelog:") {
            break;
        }
        if out.entries.len() == MAX_ENTRIES {
            out.stopped = Some(format!("more than {MAX_ENTRIES} entries"));
            break;
        }
        match debian_header(line) {
            Some((version, distribution, urgency)) => out.entries.push(Entry {
                version,
                distribution,
                urgency,
                cves: Vec::new(),
            }),
            None => {
                out.stopped = Some(format!("not a changelog header: {:?}", shorten(line)));
                break;
            }
        }
    }
    out
}

/// Parses `rpm -q --changelog` output: `* Day Mon DD YYYY Name <mail> - EVR`
/// headers (the version after the last ` - `, or the last word), then
/// `- text` lines. A header without a version keeps an empty one, which
/// orders below every version.
pub fn parse_rpm(text: &str) -> Parsed {
    let mut out = Parsed::default();
    for line in text.lines() {
        let line = cut(line);
        if let Some(head) = line.strip_prefix("* ") {
            if out.entries.len() == MAX_ENTRIES {
                out.stopped = Some(format!("more than {MAX_ENTRIES} entries"));
                break;
            }
            out.entries.push(Entry {
                version: rpm_header_version(head),
                distribution: String::new(),
                urgency: None,
                cves: Vec::new(),
            });
            add_cves(&mut out.entries.last_mut().expect("just pushed").cves, head);
        } else if let Some(e) = out.entries.last_mut() {
            add_cves(&mut e.cves, line);
        } else if !line.trim().is_empty() {
            out.stopped = Some(format!("text before the first entry: {:?}", shorten(line)));
            break;
        }
    }
    out
}

/// The EVR of an rpm changelog header, empty when it names none.
fn rpm_header_version(head: &str) -> String {
    let tail = match head.rsplit_once(" - ") {
        Some((_, t)) => t.trim(),
        None => match head.rsplit_once('>') {
            Some((_, t)) => t.trim(),
            None => "",
        },
    };
    let word = tail.split_whitespace().next().unwrap_or("");
    let ok = !word.is_empty()
        && word.as_bytes()[0].is_ascii_digit()
        && word
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._+~^:-".contains(&c));
    if ok {
        word.to_string()
    } else {
        String::new()
    }
}

/// A line cut to [`MAX_LINE`] bytes at a character boundary.
fn cut(line: &str) -> &str {
    if line.len() <= MAX_LINE {
        return line;
    }
    let mut end = MAX_LINE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

fn shorten(line: &str) -> String {
    line.chars().take(80).collect()
}

/// Appends the CVE identifiers of `text` not yet in `cves`: `CVE-`, a
/// four-digit year, `-`, four to seven digits, not part of a longer word.
pub(crate) fn add_cves(cves: &mut Vec<String>, text: &str) {
    let b = text.as_bytes();
    let mut i = 0;
    while i + 13 <= b.len() {
        let start_ok = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        if !(start_ok && b[i..i + 4].eq_ignore_ascii_case(b"cve-")) {
            i += 1;
            continue;
        }
        let year = &b[i + 4..i + 8];
        let digits = b[i + 9..].iter().take_while(|c| c.is_ascii_digit()).count();
        let end = i + 9 + digits;
        let ok = year.iter().all(u8::is_ascii_digit)
            && b[i + 8] == b'-'
            && (4..=7).contains(&digits)
            && b.get(end).is_none_or(|c| !c.is_ascii_alphanumeric());
        if ok {
            let id = format!("CVE-{}", &text[i + 4..end]);
            if !cves.contains(&id) && cves.len() < MAX_CVES_PER_ENTRY {
                cves.push(id);
            }
            i = end;
        } else {
            i += 4;
        }
    }
}

/// Splits `[epoch:]rest` into the epoch's value (0 when absent) and rest.
fn epoch(v: &str) -> (&str, &str) {
    match v.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit()) => (e, rest),
        _ => ("0", v),
    }
}

fn epoch_cmp(a: &str, b: &str) -> Ordering {
    let t = |s: &str| s.trim_start_matches('0').to_string();
    let (a, b) = (t(a), t(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(&b))
}

/// Debian's order of whole versions: epoch, then upstream version, then
/// revision (after the last `-`), each part in dpkg's order.
pub fn deb_cmp(a: &str, b: &str) -> Ordering {
    let ((ea, ra), (eb, rb)) = (epoch(a), epoch(b));
    let (ua, va) = ra.rsplit_once('-').unwrap_or((ra, ""));
    let (ub, vb) = rb.rsplit_once('-').unwrap_or((rb, ""));
    epoch_cmp(ea, eb)
        .then_with(|| crate::core::version::dpkg_cmp(ua, ub))
        .then_with(|| crate::core::version::dpkg_cmp(va, vb))
}

/// rpm's order of `[epoch:]version-release`: epoch, version, release.
pub fn evr_cmp(a: &str, b: &str) -> Ordering {
    let ((ea, ra), (eb, rb)) = (epoch(a), epoch(b));
    let (va, la) = ra.rsplit_once('-').unwrap_or((ra, ""));
    let (vb, lb) = rb.rsplit_once('-').unwrap_or((rb, ""));
    epoch_cmp(ea, eb)
        .then_with(|| crate::core::version::rpm_cmp(va, vb))
        .then_with(|| crate::core::version::rpm_cmp(la, lb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_gives_version_distribution_and_urgency() {
        let h = debian_header("openssl (3.0.15-1~deb12u1) bookworm-security; urgency=medium").unwrap();
        assert_eq!(
            h,
            (
                "3.0.15-1~deb12u1".into(),
                "bookworm-security".into(),
                Some("medium".into())
            )
        );
        let h = debian_header("foo (1:2.0-1+b1) sid; urgency=low, binary-only=yes").unwrap();
        assert_eq!(h.0, "1:2.0-1+b1");
        assert_eq!(h.2.as_deref(), Some("low"));
        assert!(debian_header("foo 1.0 sid; urgency=low").is_none());
        assert!(debian_header("foo (1.0) ; urgency=low").is_none());
        assert!(debian_header("foo (1 0) sid; urgency=low").is_none());
    }

    #[test]
    fn cves_are_found_once_and_only_as_whole_words() {
        let mut v = Vec::new();
        add_cves(&mut v, "Fix CVE-2024-1234, cve-2024-56789 and CVE-2024-1234 again;");
        add_cves(
            &mut v,
            "not XCVE-2024-1111 nor CVE-2024-123 nor CVE-2024-12345678 nor CVE-24-1234",
        );
        add_cves(&mut v, "(CVE-2025-0001)");
        assert_eq!(v, ["CVE-2024-1234", "CVE-2024-56789", "CVE-2025-0001"]);
    }

    #[test]
    fn an_unparsable_top_level_line_stops_the_parse() {
        let p = parse_debian("a (2) sid; urgency=high\n  * CVE-2020-0001\n\ngarbage here\na (1) sid; urgency=low\n");
        assert_eq!(p.entries.len(), 1);
        assert!(p.stopped.unwrap().contains("garbage"));
    }

    #[test]
    fn the_entry_cap_holds() {
        let text: String = (0..MAX_ENTRIES + 5)
            .map(|i| format!("a ({}) sid; urgency=low\n  * x\n", MAX_ENTRIES + 5 - i))
            .collect();
        let p = parse_debian(&text);
        assert_eq!(p.entries.len(), MAX_ENTRIES);
        assert!(p.stopped.is_some());
    }

    #[test]
    fn epochs_and_revisions_order_whole_versions() {
        assert_eq!(deb_cmp("1:1.0-1", "2.0-1"), Ordering::Greater);
        assert_eq!(deb_cmp("1.0-1", "1.0-1+b1"), Ordering::Less);
        assert_eq!(deb_cmp("3.0.15-1~deb12u1", "3.0.15-1"), Ordering::Less);
        assert_eq!(deb_cmp("0:1.0", "1.0"), Ordering::Equal);
        assert_eq!(evr_cmp("1:3.0.7-2", "3.2.0-1"), Ordering::Greater);
        assert_eq!(evr_cmp("3.0.7-10", "3.0.7-9"), Ordering::Greater);
    }

    /// A Fedora-style changelog (tests/changelogs/fedora-openssl.txt): an
    /// upgrade from 1:3.2.4-1 to 1:3.2.4-3 fixed three CVEs, two of them
    /// named in one line; the rebase's CVE was fixed before.
    #[test]
    fn a_fedora_changelog_gives_the_fixes_of_an_rpm_upgrade() {
        use crate::core::fixes::{summarize, Upgrade};
        let p = parse_rpm(include_str!("../../tests/changelogs/fedora-openssl.txt"));
        assert_eq!(p.entries.len(), 4);
        assert!(p.stopped.is_none());
        let up = Upgrade {
            name: "openssl-libs".into(),
            arch: None,
            from: Some("1:3.2.4-1".into()),
            to: Some("1:3.2.4-3".into()),
        };
        let f = summarize(&up, &p, evr_cmp);
        assert_eq!(f.cves, ["CVE-2026-41210", "CVE-2026-41211", "CVE-2026-41212"]);
        assert!(!f.security && f.urgency.is_none() && f.is_security());
        let older = Upgrade {
            from: Some("3.2.3-5".into()),
            ..up
        };
        assert_eq!(
            summarize(&older, &p, evr_cmp).cves.len(),
            5,
            "epoch 1 is newer than none"
        );
    }

    #[test]
    fn rpm_headers_carry_the_evr_after_the_dash() {
        let p = parse_rpm(
            "* Tue Jan 14 2025 A B <a@b> - 1:3.2.2-9\n- Fix CVE-2024-9143\n\n* Mon Jan 06 2025 A B <a@b> 3.2.2-8\n- x\n* Sun Jan 05 2025 A B <a@b>\n- y\n",
        );
        let v: Vec<_> = p.entries.iter().map(|e| e.version.as_str()).collect();
        assert_eq!(v, ["1:3.2.2-9", "3.2.2-8", ""]);
        assert_eq!(p.entries[0].cves, ["CVE-2024-9143"]);
    }
}
