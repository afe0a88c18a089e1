//! Local wall-clock time stamps, as apt's history.log and dpkg.log write
//! them (`strftime("%F %T")` on `localtime`), and the `--since` argument.
//!
//! Logs carry no time zone, so stamps are compared as written: a field
//! tuple, never converted to UTC.

use std::fmt;

/// A local date and time to the second; ordered chronologically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// `n` ASCII digits exactly, as a number.
fn digits(s: &str, n: usize) -> Option<u16> {
    if s.len() != n || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn date(s: &str) -> Option<(u16, u8, u8)> {
    let mut it = s.split('-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() {
        return None;
    }
    let (y, m, d) = (digits(y, 4)?, digits(m, 2)? as u8, digits(d, 2)? as u8);
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m, d))
}

/// `HH:MM:SS`, or `HH:MM` when `seconds_optional`.
fn time(s: &str, seconds_optional: bool) -> Option<(u8, u8, u8)> {
    let parts: Vec<&str> = s.split(':').collect();
    let (h, m, sec) = match parts[..] {
        [h, m, sec] => (h, m, digits(sec, 2)? as u8),
        [h, m] if seconds_optional => (h, m, 0),
        _ => return None,
    };
    let (h, m) = (digits(h, 2)? as u8, digits(m, 2)? as u8);
    (h < 24 && m < 60 && sec < 61).then_some((h, m, sec))
}

impl Stamp {
    fn new((year, month, day): (u16, u8, u8), (hour, minute, second): (u8, u8, u8)) -> Self {
        Self {
            year,
            month,
            day,
            hour,
            minute,
            second,
        }
    }

    /// A log's `YYYY-MM-DD` and `HH:MM:SS` fields.
    pub(crate) fn from_log(d: &str, t: &str) -> Option<Self> {
        Some(Self::new(date(d)?, time(t, false)?))
    }

    /// `--since`: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS]` (or with a `T`),
    /// `today` or `yesterday` (midnight, local time).
    pub fn parse_since(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a time: use YYYY-MM-DD[ HH:MM[:SS]], today or yesterday");
        let s = s.trim();
        match s {
            "today" => return local_midnight(0).ok_or_else(bad),
            "yesterday" => return local_midnight(1).ok_or_else(bad),
            _ => {}
        }
        let (d, t) = match s.split_once([' ', 'T']) {
            Some((d, t)) => (d, Some(t.trim_start())),
            None => (s, None),
        };
        let d = date(d).ok_or_else(bad)?;
        let t = match t {
            Some(t) => time(t, true).ok_or_else(bad)?,
            None => (0, 0, 0),
        };
        Ok(Self::new(d, t))
    }

    /// A Unix time in the local time zone (dnf's history stores those).
    pub(crate) fn from_unix(t: i64) -> Option<Self> {
        let t = libc::time_t::try_from(t).ok()?;
        // SAFETY: localtime_r only writes the tm we pass.
        let tm = unsafe {
            let mut tm: libc::tm = std::mem::zeroed();
            if libc::localtime_r(&t, &mut tm).is_null() {
                return None;
            }
            tm
        };
        Self::from_tm(&tm)
    }

    fn from_tm(tm: &libc::tm) -> Option<Self> {
        Some(Self::new(
            (
                u16::try_from(tm.tm_year + 1900).ok()?,
                u8::try_from(tm.tm_mon + 1).ok()?,
                u8::try_from(tm.tm_mday).ok()?,
            ),
            (
                u8::try_from(tm.tm_hour).ok()?,
                u8::try_from(tm.tm_min).ok()?,
                u8::try_from(tm.tm_sec).ok()?,
            ),
        ))
    }
}

/// Local midnight `days_ago` days before today; mktime(3) normalises the
/// day of month across month ends and DST changes.
fn local_midnight(days_ago: i32) -> Option<Stamp> {
    // SAFETY: time, localtime_r and mktime only touch the values we pass.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return None;
        }
        tm.tm_mday -= days_ago;
        (tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_isdst) = (0, 0, 0, -1);
        let t = libc::mktime(&mut tm);
        if t == -1 || libc::localtime_r(&t, &mut tm).is_null() {
            return None;
        }
        Stamp::from_tm(&tm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_log_fields_strictly() {
        let s = Stamp::from_log("2026-11-22", "01:50:12").unwrap();
        assert_eq!(s.to_string(), "2026-11-22 01:50:12");
        for (d, t) in [
            ("2026-11-22", "1:50:12"),
            ("2026-13-22", "01:50:12"),
            ("2026-11-22", "24:00:00"),
            ("26-11-22", "01:50:12"),
            ("2026-11-22", "01:50"),
            ("2026-11-2x", "01:50:12"),
            ("", ""),
            ("２０２６-11-22", "01:50:12"),
        ] {
            assert_eq!(Stamp::from_log(d, t), None, "{d} {t}");
        }
    }

    #[test]
    fn since_accepts_dates_times_and_words() {
        let p = |s| Stamp::parse_since(s).map(|s| s.to_string());
        assert_eq!(p("2026-11-22").unwrap(), "2026-11-22 00:00:00");
        assert_eq!(p("2026-11-22 01:50").unwrap(), "2026-11-22 01:50:00");
        assert_eq!(p("2026-11-22T01:50:12").unwrap(), "2026-11-22 01:50:12");
        assert!(p("last tuesday").unwrap_err().contains("last tuesday"));
        assert!(p("2026-11-22 1:50").is_err());
        let today = Stamp::parse_since("today").unwrap();
        let yesterday = Stamp::parse_since("yesterday").unwrap();
        assert!(yesterday < today);
        assert_eq!((today.hour, today.minute, today.second), (0, 0, 0));
    }

    #[test]
    fn orders_chronologically() {
        let a = Stamp::from_log("2025-12-31", "23:59:59").unwrap();
        let b = Stamp::from_log("2026-01-01", "00:00:00").unwrap();
        assert!(a < b);
    }

    #[test]
    fn converts_unix_time() {
        assert!(Stamp::from_unix(1_790_000_000).is_some());
    }
}
