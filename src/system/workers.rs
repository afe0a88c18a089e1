//! Scanning a PID list on several threads, with the results handed back
//! in the list's order.
//!
//! Reading `/proc` is system time spent in the reader's own context, so a
//! second thread gets a second core's worth of it. Each thread has a
//! scanner (`scan::Scanner`) of its own (buffers, the open maps file the
//! `PROCMAP_QUERY` ioctl goes to, verdict caches): a verdict cache shared
//! behind a lock would be taken once per mapping, and a thread's own
//! cache costs only the first look at each library once more per thread.
//! docs/benchmarks.md (issue 27) has the measurements.
//!
//! Threads take PIDs in small blocks from a shared counter rather than a
//! fixed share each, so one process with a huge map does not leave the
//! other threads idle. The caller gets one result per PID, in order,
//! whatever thread produced it: the report is the one a single thread
//! writes.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The environment variable that sets the number of threads; `1` scans
/// on the calling thread alone.
pub const THREADS_VAR: &str = "RESTART_STALE_THREADS";

/// Threads used by default at most. Past a few, procfs readers contend
/// on the same kernel locks and each thread's first look at every library
/// is repeated for little gain.
const DEFAULT_MAX: usize = 8;

/// The most threads the environment can ask for.
const MAX: usize = 64;

/// PIDs a thread takes at a time: enough that the shared counter is rarely
/// touched, few enough that the last blocks spread over all threads.
const BLOCK: usize = 16;

/// How many threads a scan uses: [`THREADS_VAR`] when it holds a positive
/// number, else the cores this process may run on, capped at
/// [`DEFAULT_MAX`]; 1 when neither is known.
pub fn threads() -> usize {
    from_env(std::env::var(THREADS_VAR).ok().as_deref()).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get().min(DEFAULT_MAX))
            .unwrap_or(1)
    })
}

fn from_env(value: Option<&str>) -> Option<usize> {
    let n: usize = value?.trim().parse().ok()?;
    (n > 0).then_some(n.min(MAX))
}

/// Runs `work` on every PID of `pids` with up to `threads` threads, the
/// calling thread and its state `scanner` among them, and returns the
/// results in the order of `pids`. The other threads start from states
/// `sibling` makes of `scanner` (the scan's: `Scanner::sibling`, a
/// parameter so that this room needs nothing of the scan's). A thread the
/// system refuses to start only leaves its share to the others.
pub fn map<S, T, F>(pids: &[u32], threads: usize, scanner: &mut S, sibling: impl Fn(&S) -> S, work: F) -> Vec<T>
where
    S: Send,
    T: Send,
    F: Fn(&mut S, u32) -> T + Sync,
{
    let threads = threads.min(pids.len().div_ceil(BLOCK)).max(1);
    if threads == 1 {
        return pids.iter().map(|&pid| work(scanner, pid)).collect();
    }
    let next = AtomicUsize::new(0);
    let run = |s: &mut S| {
        let mut done = Vec::new();
        loop {
            let start = next.fetch_add(BLOCK, Ordering::Relaxed);
            let Some(block) = pids.get(start..(start + BLOCK).min(pids.len())) else {
                return done;
            };
            if block.is_empty() {
                return done;
            }
            done.extend(block.iter().enumerate().map(|(i, &pid)| (start + i, work(s, pid))));
        }
    };
    let mut siblings: Vec<S> = (1..threads).map(|_| sibling(scanner)).collect();
    let mut done = std::thread::scope(|scope| {
        let handles: Vec<_> = siblings
            .iter_mut()
            .filter_map(|s| {
                let run = &run;
                std::thread::Builder::new()
                    .name("scan".into())
                    .spawn_scoped(scope, move || run(s))
                    .ok()
            })
            .collect();
        let mut done = run(scanner);
        for h in handles {
            match h.join() {
                Ok(part) => done.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        done
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, v)| v).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_and_bad_values_are_ignored() {
        assert_eq!(from_env(Some("1")), Some(1));
        assert_eq!(from_env(Some(" 3\n")), Some(3));
        assert_eq!(from_env(Some("100000")), Some(MAX));
        assert_eq!(from_env(Some("0")), None);
        assert_eq!(from_env(Some("-2")), None);
        assert_eq!(from_env(Some("many")), None);
        assert_eq!(from_env(None), None);
    }

    #[test]
    fn results_come_back_in_pid_order_from_every_thread() {
        let pids: Vec<u32> = (0..1000).rev().collect();
        let mut scanner = ();
        let threads_seen = std::sync::Mutex::new(std::collections::HashSet::new());
        let out = map(
            &pids,
            4,
            &mut scanner,
            |_| (),
            |_, pid| {
                threads_seen.lock().unwrap().insert(std::thread::current().id());
                // Uneven work, so that threads finish blocks out of order.
                if pid % 7 == 0 {
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
                pid * 2
            },
        );
        let want: Vec<u32> = pids.iter().map(|p| p * 2).collect();
        assert_eq!(out, want);
        assert!(threads_seen.lock().unwrap().len() > 1, "ran on one thread only");
    }

    #[test]
    fn short_lists_and_one_thread_stay_on_the_caller() {
        let me = std::thread::current().id();
        let on_caller = |pids: &[u32], threads| {
            map(pids, threads, &mut (), |_| (), |_, _| std::thread::current().id() == me)
                .into_iter()
                .all(|b| b)
        };
        assert!(on_caller(&[1, 2, 3], 8));
        assert!(on_caller(&(0..500).collect::<Vec<_>>(), 1));
        assert!(map(&[], 8, &mut (), |_| (), |_, p| p).is_empty());
    }
}
