//! Version ordering as the package managers define it: dpkg's (Debian
//! Policy §5.6.12) and rpm's `rpmvercmp`. Kernel release strings such as
//! `6.1.0-27-amd64` or `6.11.4-301.fc41.x86_64` are not package versions,
//! but the kernel packages name their images after them, so the newest
//! installed kernel is the greatest release string in the package
//! manager's own order.

use std::cmp::Ordering;

/// Which package manager's order applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    Dpkg,
    Rpm,
}

impl Order {
    pub(crate) fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            Order::Dpkg => dpkg_cmp(a, b),
            Order::Rpm => rpm_cmp(a, b),
        }
    }
}

/// Compares two runs of ASCII digits by value, without parsing: a run may
/// be longer than any integer type.
fn numeric_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let trim = |s: &[u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
    let (a, b) = (&a[trim(a)..], &b[trim(b)..]);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// dpkg's weight of a character in a non-digit run: `~` before the end
/// of the string, letters before everything else.
fn dpkg_weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// Splits off the leading run of bytes for which `digit` holds (or not).
fn split_run(s: &[u8], digit: bool) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|c| c.is_ascii_digit() == digit).count();
    s.split_at(n)
}

/// dpkg's `verrevcmp` on a whole string: alternating non-digit runs
/// (compared by [`dpkg_weight`]) and digit runs (compared by value).
pub fn dpkg_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        let (ta, ra) = split_run(a, false);
        let (tb, rb) = split_run(b, false);
        for i in 0..ta.len().max(tb.len()) {
            let o = dpkg_weight(ta.get(i).copied()).cmp(&dpkg_weight(tb.get(i).copied()));
            if o != Ordering::Equal {
                return o;
            }
        }
        let (da, ra) = split_run(ra, true);
        let (db, rb) = split_run(rb, true);
        let o = numeric_cmp(da, db);
        if o != Ordering::Equal {
            return o;
        }
        (a, b) = (ra, rb);
    }
    Ordering::Equal
}

/// Drops the separators rpm ignores (anything but letters, digits, `~`
/// and `^`).
fn rpm_skip(s: &[u8]) -> &[u8] {
    let n = s
        .iter()
        .take_while(|c| !c.is_ascii_alphanumeric() && **c != b'~' && **c != b'^')
        .count();
    &s[n..]
}

/// rpm's `rpmvercmp`: alphanumeric segments; a numeric segment is newer
/// than an alphabetic one; `~` sorts before anything, `^` after the end.
pub fn rpm_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        a = rpm_skip(a);
        b = rpm_skip(b);
        match (a.first(), b.first()) {
            (Some(b'~'), Some(b'~')) | (Some(b'^'), Some(b'^')) => {
                (a, b) = (&a[1..], &b[1..]);
                continue;
            }
            (Some(b'~'), _) => return Ordering::Less,
            (_, Some(b'~')) => return Ordering::Greater,
            (Some(b'^'), None) => return Ordering::Greater,
            (None, Some(b'^')) => return Ordering::Less,
            (Some(b'^'), _) => return Ordering::Less,
            (_, Some(b'^')) => return Ordering::Greater,
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(_), Some(_)) => {}
        }
        let digit = a[0].is_ascii_digit();
        let take = |s: &[u8]| -> usize {
            s.iter()
                .take_while(|c| {
                    if digit {
                        c.is_ascii_digit()
                    } else {
                        c.is_ascii_alphabetic()
                    }
                })
                .count()
        };
        let (na, nb) = (take(a), take(b));
        if nb == 0 {
            // Segments of different kinds: the numeric one is newer.
            return if digit { Ordering::Greater } else { Ordering::Less };
        }
        let o = if digit {
            numeric_cmp(&a[..na], &b[..nb])
        } else {
            a[..na].cmp(&b[..nb])
        };
        if o != Ordering::Equal {
            return o;
        }
        (a, b) = (&a[na..], &b[nb..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    /// (older, newer) pairs, and equal pairs, in both orders.
    const BOTH_LESS: &[(&str, &str)] = &[
        ("6.1.0-27-amd64", "6.1.0-28-amd64"),
        ("6.1.0-9", "6.1.0-10"),
        ("6.1.0-9-amd64", "6.1.0-10-amd64"),
        ("6.1.0-28-amd64", "6.12.0-1-amd64"),
        ("6.11.4-301.fc41.x86_64", "6.11.10-200.fc41.x86_64"),
        ("6.11.4-300.fc41.x86_64", "6.11.4-301.fc41.x86_64"),
        ("6.11.4-301.fc40.x86_64", "6.11.4-301.fc41.x86_64"),
        (
            "5.10.0-99999999999999999999-amd64",
            "5.10.0-100000000000000000000-amd64",
        ),
        ("1.0~rc1", "1.0"),
        ("1.0", "1.0a"),
    ];

    #[test]
    fn dpkg_and_rpm_agree_on_kernel_releases() {
        for order in [Order::Dpkg, Order::Rpm] {
            for (old, new) in BOTH_LESS {
                assert_eq!(order.compare(old, new), Less, "{order:?}: {old} < {new}");
                assert_eq!(order.compare(new, old), Greater, "{order:?}: {new} > {old}");
                assert_eq!(order.compare(old, old), Equal, "{order:?}: {old}");
            }
        }
    }

    #[test]
    fn where_the_orders_differ() {
        // dpkg: a letter sorts before a non-letter; rpm ignores separators.
        assert_eq!(dpkg_cmp("1.0a", "1.0+"), Less);
        assert_eq!(rpm_cmp("1.0.1", "1.0_1"), Equal);
        assert_eq!(dpkg_cmp("1.0.1", "1.0_1"), Less);
        // rpm: a numeric segment beats an alphabetic one.
        assert_eq!(rpm_cmp("1.1", "1.a"), Greater);
        assert_eq!(rpm_cmp("1.0^git1", "1.0"), Greater);
        assert_eq!(rpm_cmp("1.0^git1", "1.0.1"), Less);
        assert_eq!(dpkg_cmp("007", "7"), Equal);
        assert_eq!(dpkg_cmp("", ""), Equal);
        assert_eq!(rpm_cmp("", "1"), Less);
    }
}
