//! Differential test: the `PROCMAP_QUERY` path and the text path give the
//! same stale files for the same live processes.

use crate::util::live::{replace_like_dpkg, start_victim};
use restart_stale::system::scan::{Method, Scanner};
use restart_stale::system::sysroot::SysRoot;

/// (major, minor) of the running kernel.
fn kernel_version() -> (u32, u32) {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut it = rel
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok());
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

#[test]
fn query_and_text_agree_on_live_processes() {
    let replaced = or_skip!(start_victim());
    replace_like_dpkg(&replaced.lib);
    let deleted = or_skip!(start_victim());
    std::fs::remove_file(&deleted.lib).unwrap();
    let _fresh = or_skip!(start_victim());

    let root = SysRoot::default();
    let mut fast = Scanner::default();
    let mut text = Scanner::default();
    text.method = Method::Text;
    let mut compared = 0;
    for pid in restart_stale::system::cgroup::all_pids(&root).unwrap() {
        let (Ok(Some(a)), Ok(Some(b))) = (fast.process(&root, pid), text.process(&root, pid)) else {
            continue;
        };
        if a != b {
            // A process that maps or unmaps between the two reads (a
            // build, a package manager on the host) cannot be compared;
            // one whose mappings hold still must agree.
            let again = fast.process(&root, pid).ok().flatten();
            if again.as_ref() != Some(&a) || text.process(&root, pid).ok().flatten().as_ref() != Some(&b) {
                continue;
            }
        }
        assert_eq!(a, b, "pid {pid}");
        compared += 1;
    }
    assert!(compared >= 3, "compared only {compared} processes");
    for v in [&replaced, &deleted] {
        let files = fast.process(&root, v.child.id()).unwrap().unwrap();
        assert!(files.iter().any(|f| *f.path == *v.lib.to_str().unwrap()), "{files:?}");
    }
    if kernel_version() >= (6, 11) {
        assert_eq!(fast.kernel_query, Some(true), "kernel should support PROCMAP_QUERY");
    }
    assert_eq!(text.kernel_query, None, "the text method never tries the ioctl");
}
