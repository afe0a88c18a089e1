//! When this tool last restarted each unit, kept under /run across
//! runs, so back-to-back transactions never restart a unit twice within
//! one settle time. Lines `UNIT MILLISECONDS-SINCE-EPOCH`; /run is gone at
//! reboot, which is when the record stops meaning anything.

use crate::system::safe_write;
use crate::system::sysroot::SysRoot;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the record lives, inside the root.
pub const RECENT_PATH: &str = "/run/restart-stale/recent";

/// Milliseconds since the epoch now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The record's lines; a line that does not parse is dropped.
pub fn parse(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (unit, ms) = l.split_once(' ')?;
            Some((unit.to_string(), ms.trim().parse().ok()?))
        })
        .collect()
}

/// How long ago, by the record, this tool restarted `unit`.
pub(crate) fn ago(record: &BTreeMap<String, u64>, unit: &str, now_ms: u64) -> Option<Duration> {
    record
        .get(unit)
        .map(|&t| Duration::from_millis(now_ms.saturating_sub(t)))
}

/// Reads the record; a missing or unreadable one is empty (unreadable
/// with a warning: the start-limit check still guards the unit).
pub fn load(root: &SysRoot) -> BTreeMap<String, u64> {
    read_state(root, RECENT_PATH).map_or_else(BTreeMap::new, |t| parse(&t))
}

/// The text of one of this tool's state files under /run; `None` when
/// it is missing, or unreadable (with a warning): the state only
/// explains or paces, no decision is lost without it.
pub(super) fn read_state(root: &SysRoot, rel: &str) -> Option<String> {
    let path = root.path(rel);
    match std::fs::read(&path) {
        Ok(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            log::warn!("cannot read {}: {e}", path.display());
            None
        }
    }
}

/// Replaces one of this tool's state files under /run with `text`; a
/// failed write is a warning only.
pub(super) fn write_state(root: &SysRoot, rel: &str, text: &str) {
    let path = root.path(rel);
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .map_err(anyhow::Error::from)
        .and_then(|()| safe_write::replace_file(&path, text.as_bytes(), 0o644, false));
    if let Err(e) = written {
        log::warn!("failed to write {}: {e:#}", path.display());
    }
}

/// Adds `units` as restarted at `now_ms`, drops entries older than
/// `keep`, and writes the record. A failed write is a warning only.
pub(crate) fn save(root: &SysRoot, record: &mut BTreeMap<String, u64>, units: &[String], now_ms: u64, keep: Duration) {
    let keep_ms = keep.as_millis() as u64;
    record.retain(|_, t| now_ms.saturating_sub(*t) < keep_ms);
    for u in units {
        record.insert(u.clone(), now_ms);
    }
    let text: String = record.iter().map(|(u, t)| format!("{u} {t}\n")).collect();
    write_state(root, RECENT_PATH, &text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_round_trips_and_forgets_old_entries() {
        let (_d, root) = SysRoot::scratch();
        assert!(load(&root).is_empty());
        let mut r = load(&root);
        save(&root, &mut r, &["a.service".into()], 1_000, Duration::from_secs(5));
        save(&root, &mut r, &["b.service".into()], 4_000, Duration::from_secs(5));
        let got = load(&root);
        assert_eq!(ago(&got, "a.service", 5_000), Some(Duration::from_secs(4)));
        assert_eq!(ago(&got, "b.service", 5_000), Some(Duration::from_secs(1)));
        let mut r = got;
        save(&root, &mut r, &[], 7_000, Duration::from_secs(5));
        assert_eq!(load(&root).keys().collect::<Vec<_>>(), vec!["b.service"]);
        assert_eq!(parse("junk\nx.service notanumber\ny.service 12\n").len(), 1);
    }
}
