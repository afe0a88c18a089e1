//! A process's credentials from a pidfd (`PIDFD_GET_INFO`, Linux 6.13+).
//!
//! `/proc/PID/status` is the other place the real uid is found, and the
//! kernel formats the whole file (signal masks, CPU and memory-node lists,
//! memory figures) for that one line: about 9 µs a process, where a pidfd
//! and one ioctl take about 3.5 µs. The caller falls back to the status
//! file whenever this says no (older kernels, exited processes), so the
//! answer is the same either way. The uapi is `struct pidfd_info` in
//! `linux/pidfd.h`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The first version of `struct pidfd_info` (64 bytes), all we read.
#[repr(C)]
#[derive(Default)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    ruid: u32,
    rgid: u32,
    euid: u32,
    egid: u32,
    suid: u32,
    sgid: u32,
    fsuid: u32,
    fsgid: u32,
    spare0: u32,
}

/// `PIDFD_INFO_CREDS`: the uids and gids, which the kernel fills in
/// whether asked or not; asked for all the same, and checked in the
/// answer's mask.
const INFO_CREDS: u64 = 1 << 1;

/// `_IOWR(PIDFS_IOCTL_MAGIC, 11, struct pidfd_info)`.
const GET_INFO: u64 = (3 << 30) | ((std::mem::size_of::<PidfdInfo>() as u64) << 16) | (0xff << 8) | 11;

/// The real uid of process `pid` of our own PID namespace, as our user
/// namespace sees it (what the `Uid:` line of its status shows us).
pub(crate) fn real_uid(pid: u32) -> io::Result<u32> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new
    // descriptor or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just returned to us and is owned by no
    // one else; OwnedFd closes it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut info = PidfdInfo {
        mask: INFO_CREDS,
        ..PidfdInfo::default()
    };
    // SAFETY: `info` is a live, writable struct of the size encoded in
    // GET_INFO, which is all the kernel writes.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), GET_INFO as _, &mut info as *mut PidfdInfo) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if info.mask & INFO_CREDS == 0 {
        return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
    }
    Ok(info.ruid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_uid(pid: u32) -> u32 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap();
        line.split_whitespace().next().unwrap().parse().unwrap()
    }

    #[test]
    fn agrees_with_the_status_file_or_says_why_not() {
        let mut child = std::process::Command::new("sleep").arg("10").spawn().unwrap();
        let pids = [std::process::id(), child.id()];
        let got: Vec<io::Result<u32>> = pids.iter().map(|&p| real_uid(p)).collect();
        let want: Vec<u32> = pids.iter().map(|&p| status_uid(p)).collect();
        child.kill().unwrap();
        child.wait().unwrap();
        match &got[0] {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::ENOTTY | libc::EINVAL)) => {
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "skipped: no PIDFD_GET_INFO on this kernel ({e})");
                return;
            }
            _ => {}
        }
        let got: Vec<u32> = got.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn an_exited_process_is_an_error() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(real_uid(pid).is_err());
        assert!(real_uid(u32::MAX).is_err());
    }
}
