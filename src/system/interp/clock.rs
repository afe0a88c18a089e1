//! When a process started, and whether a file changed after that.
//!
//! A script or module is read once, when the interpreter starts or imports
//! it; nothing in `/proc` tells which inode it read. What is left is time:
//! a file whose change time (`ctime`, which no one can set back, unlike
//! `mtime`, which dpkg sets to the package's timestamp) is after the
//! process started was changed under it.

use crate::system::sysroot::SysRoot;

/// A time in nanoseconds since the epoch.
pub type Nanos = i128;

const NANOS: Nanos = 1_000_000_000;

/// How far the estimate of a start time may be early: `btime` in
/// `/proc/stat` is the boot time truncated to a second, the start time is
/// counted in ticks, and clock adjustments since boot move `btime` too. A
/// change closer to the start than this is not trusted to be after it (a
/// restart for nothing is what a false positive costs; a change in that
/// second is almost always the install that preceded the start).
const MARGIN: Nanos = NANOS + NANOS / 20;

/// The boot time (`btime` of `/proc/stat`) in seconds, if readable.
pub(crate) fn boot_time(root: &SysRoot) -> Option<i64> {
    let text = std::fs::read_to_string(root.path("proc/stat")).ok()?;
    parse_btime(&text)
}

fn parse_btime(text: &str) -> Option<i64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Field 22 of `/proc/PID/stat`: the start time in clock ticks since boot.
/// The command name (field 2) may hold spaces and parentheses, so fields
/// are counted after its last `)`.
pub(crate) fn parse_start_ticks(stat: &[u8]) -> Option<u64> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

fn ticks_per_second() -> i64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t
    } else {
        100
    }
}

/// When `pid` started, in nanoseconds since the epoch.
pub(crate) fn process_start(root: &SysRoot, pid: u32, btime: i64) -> Option<Nanos> {
    let stat = crate::system::procfs::read(&root.proc_pid(pid, "stat")).ok()?;
    let ticks = parse_start_ticks(&stat)?;
    let hz = Nanos::from(ticks_per_second());
    Some(Nanos::from(btime) * NANOS + Nanos::from(ticks) * NANOS / hz)
}

/// Whether a file changed at `ctime` changed after a process started at `start`.
pub(crate) fn changed_after(ctime: Nanos, start: Nanos) -> bool {
    ctime > start + MARGIN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_ticks_survive_odd_command_names() {
        let stat = b"42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 1000 10";
        assert_eq!(parse_start_ticks(stat), Some(12345));
        assert_eq!(parse_start_ticks(b"42 (x) S 1"), None);
        assert_eq!(parse_start_ticks(b"garbage"), None);
        assert_eq!(parse_start_ticks(&[0xff, b')', b' ']), None);
    }

    #[test]
    fn btime_is_found_among_other_lines() {
        assert_eq!(
            parse_btime("cpu  1 2 3\nbtime 1700000000\nprocesses 5\n"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_btime("cpu 1\n"), None);
    }

    #[test]
    fn changes_within_the_margin_do_not_count() {
        assert!(!changed_after(10 * NANOS, 10 * NANOS));
        assert!(!changed_after(10 * NANOS + MARGIN, 10 * NANOS));
        assert!(changed_after(12 * NANOS, 10 * NANOS));
    }

    #[test]
    fn our_own_start_is_in_the_past() {
        let root = SysRoot::default();
        let btime = boot_time(&root).unwrap();
        let start = process_start(&root, std::process::id(), btime).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as Nanos;
        assert!(start <= now + MARGIN && start > now - 3600 * NANOS, "{start} vs {now}");
    }
}
