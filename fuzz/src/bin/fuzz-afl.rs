//! The AFL++ harness: `fuzz-afl TARGET`, input on stdin or in AFL's
//! shared memory. Built with `cargo afl build --features afl`; run by
//! `fuzz/run` and `ci/fuzz-smoke` under `cargo afl fuzz`.

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(target) = restart_stale_fuzz::find(&name) else {
        eprintln!("usage: fuzz-afl TARGET\ntargets: {}", restart_stale_fuzz::names());
        std::process::exit(2);
    };
    // A panic is the crash AFL looks for: fuzz! aborts on it.
    afl::fuzz!(|data: &[u8]| target(data));
}
