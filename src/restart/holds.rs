//! Which units the last restart run's health gate held, and why, kept
//! under /run so `status --batch` (monitoring) can say why a stale unit
//! was left alone. Lines `UNIT MILLISECONDS-SINCE-EPOCH RESULT`; each run
//! rewrites the entries of the units it planned, so a unit restarted
//! since is no longer listed. /run is gone at reboot, and so are holds.

use super::recent;
use crate::core::model::UnitResult;
use crate::system::sysroot::SysRoot;
use std::collections::BTreeMap;

/// Where the record lives, inside the root.
pub const HOLDS_PATH: &str = "/run/restart-stale/held";

/// One held unit: when, and the result code (`earlier-failure`,
/// `start-limit`, `restarted-lately`, `canary`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub at_ms: u64,
    pub result: String,
}

/// The record's lines; a line that does not parse is dropped.
pub fn parse(text: &str) -> BTreeMap<String, Held> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let (unit, at, result) = (f.next()?, f.next()?, f.next()?);
            let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
            (ok(unit) && ok(result) && f.next().is_none()).then_some(())?;
            let held = Held {
                at_ms: at.parse().ok()?,
                result: result.to_string(),
            };
            Some((unit.to_string(), held))
        })
        .collect()
}

/// Reads the record; missing or unreadable is empty (unreadable with a
/// warning: it only explains, nothing depends on it).
pub fn load(root: &SysRoot) -> BTreeMap<String, Held> {
    recent::read_state(root, HOLDS_PATH).map_or_else(BTreeMap::new, |t| parse(&t))
}

/// Replaces the entries of `planned` with this run's holds among
/// `results`. A failed write is a warning only.
pub(crate) fn save(root: &SysRoot, planned: &[&str], results: &[UnitResult], now_ms: u64) {
    let mut record = load(root);
    let before = record.clone();
    record.retain(|u, _| !planned.contains(&u.as_str()));
    for r in results.iter().filter(|r| r.outcome == "held") {
        let held = Held {
            at_ms: now_ms,
            result: r.result.to_string(),
        };
        record.insert(r.unit.clone(), held);
    }
    if record == before {
        return;
    }
    let text: String = record
        .iter()
        .map(|(u, h)| format!("{u} {} {}\n", h.at_ms, h.result))
        .collect();
    recent::write_state(root, HOLDS_PATH, &text);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(unit: &str, outcome: &'static str, result: &'static str) -> UnitResult {
        UnitResult {
            detail: String::new(),
            outcome,
            result,
            unit: unit.into(),
            wave: None,
            settle: None,
            held: None,
            invocation_id: None,
        }
    }

    #[test]
    fn a_run_replaces_the_holds_of_what_it_planned() {
        let (_d, root) = SysRoot::scratch();
        assert!(load(&root).is_empty());
        let first = [
            result("a.service", "failed", "did-not-settle"),
            result("b.service", "held", "earlier-failure"),
            result("c.service", "held", "start-limit"),
        ];
        save(&root, &["a.service", "b.service", "c.service"], &first, 1_000);
        let got = load(&root);
        assert_eq!(got.keys().collect::<Vec<_>>(), vec!["b.service", "c.service"]);
        assert_eq!(got["c.service"].result, "start-limit");
        // The next run restarted b and never planned c: c's hold stays.
        save(
            &root,
            &["b.service"],
            &[result("b.service", "restarted", "verified-clean")],
            2_000,
        );
        let got = load(&root);
        assert_eq!(got.keys().collect::<Vec<_>>(), vec!["c.service"]);
        assert_eq!(got["c.service"].at_ms, 1_000);
    }

    #[test]
    fn broken_lines_are_dropped() {
        let got =
            parse("a.service 12 canary\njunk\nb.service x canary\nc.service 1 two words\nd.service 3 start-limit\n");
        assert_eq!(got.keys().collect::<Vec<_>>(), vec!["a.service", "d.service"]);
    }
}
