//! The package manager process a record waits for: its PID and its start
//! time (`/proc/PID/stat` field 22, proc(5)), so that a recycled PID is
//! not mistaken for it.

use crate::system::sysroot::SysRoot;
use anyhow::{Context, Result};
use std::fmt;

/// A process, identified beyond its PID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    /// Start time after boot, in clock ticks.
    pub start: u64,
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.pid, self.start)
    }
}

/// `(state, start time)` from `/proc/PID/stat` text. The comm field may
/// hold spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the comm come field 3 (state) ... field 22 (starttime).
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Reads the identity of `pid`.
pub(crate) fn identify(root: &SysRoot, pid: u32) -> Result<Process> {
    let path = root.proc_pid(pid, "stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("failed to read {}", path.display()))?;
    let (_, start) = parse_stat(&text).with_context(|| format!("{}: unexpected format", path.display()))?;
    Ok(Process { pid, start })
}

/// Whether `p` still runs: its PID exists, started at the same time, and
/// is not a zombie.
pub fn alive(root: &SysRoot, p: Process) -> bool {
    let Ok(text) = std::fs::read_to_string(root.proc_pid(p.pid, "stat")) else {
        return false;
    };
    matches!(parse_stat(&text), Some((state, start)) if start == p.start && state != 'Z' && state != 'X')
}

/// Our parent: the package manager when it executes us directly (pacman,
/// dnf5's actions plugin).
pub fn parent(root: &SysRoot) -> Result<Process> {
    // SAFETY: getppid has no preconditions.
    let ppid = unsafe { libc::getppid() };
    identify(root, u32::try_from(ppid).context("no parent process")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (dnf (py) x) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 1000 10 \
18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";

    #[test]
    fn reads_state_and_start_after_the_comm() {
        assert_eq!(parse_stat(STAT), Some(('S', 98765)));
        assert_eq!(parse_stat("1 (x) S 1"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn a_recycled_pid_or_a_zombie_is_not_alive() {
        let (_tmp, root) = SysRoot::scratch();
        std::fs::create_dir_all(root.proc_pid(4242, "")).unwrap();
        std::fs::write(root.proc_pid(4242, "stat"), STAT).unwrap();
        let p = identify(&root, 4242).unwrap();
        assert_eq!(
            p,
            Process {
                pid: 4242,
                start: 98765
            }
        );
        assert!(alive(&root, p));
        assert!(!alive(&root, Process { start: 1, ..p }));
        std::fs::write(root.proc_pid(4242, "stat"), STAT.replace(") S ", ") Z ")).unwrap();
        assert!(!alive(&root, p));
        assert!(!alive(
            &root,
            Process {
                pid: 4243,
                start: 98765
            }
        ));
        assert!(identify(&root, 4243)
            .unwrap_err()
            .to_string()
            .contains("/proc/4243/stat"));
    }

    #[test]
    fn our_parent_is_alive() {
        let root = SysRoot::default();
        let p = parent(&root).unwrap();
        assert!(alive(&root, p));
    }
}
