//! The plain driver, with stable cargo and nothing else:
//!
//! ```text
//! fuzz-loop TARGET replay FILE...            run files once (a crash, a corpus)
//! fuzz-loop TARGET loop SEEDS_DIR SECONDS [RNG_SEED]
//! ```
//!
//! `loop` is the fallback for a machine without AFL++: random mutations
//! of the seeds, with no coverage feedback, for a fixed time. A panic
//! saves the input under `fuzz/artifacts/TARGET/` and exits 1.

// The generator the robustness tests use, shared as a file: the fuzz
// crate is a package of its own.
#[path = "../../../tests/util/rng.rs"]
mod rng;

use restart_stale_fuzz::{find, names, Target};
use rng::Rng;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let target = args.first().and_then(|n| find(n)).unwrap_or_else(|| usage());
    let code = match (args.get(1).map(String::as_str), &args[2.min(args.len())..]) {
        (Some("replay"), files) if !files.is_empty() => replay(target, files),
        (Some("loop"), [dir, secs, rest @ ..]) if rest.len() <= 1 => {
            let secs = secs.parse().unwrap_or_else(|_| usage());
            let seed = rest
                .first()
                .map_or(Ok(0x5eed), |s| s.parse())
                .unwrap_or_else(|_| usage());
            run_loop(&args[0], target, Path::new(dir), Duration::from_secs(secs), seed)
        }
        _ => usage(),
    };
    std::process::exit(code);
}

fn usage() -> ! {
    eprintln!("usage: fuzz-loop TARGET replay FILE...\n       fuzz-loop TARGET loop SEEDS_DIR SECONDS [RNG_SEED]");
    eprintln!("targets: {}", names());
    std::process::exit(2);
}

/// Runs each file once; the panic itself is the report.
fn replay(target: Target, files: &[String]) -> i32 {
    for f in files {
        let data = std::fs::read(f).unwrap_or_else(|e| panic!("failed to read {f}: {e}"));
        target(&data);
    }
    0
}

/// The seeds of `dir`, or one empty input when it has none.
fn seeds(dir: &Path) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect();
    if out.is_empty() {
        out.push(Vec::new());
    }
    out
}

fn run_loop(name: &str, target: Target, dir: &Path, limit: Duration, seed: u64) -> i32 {
    let corpus = seeds(dir);
    let dict = dictionary(&corpus);
    let mut rng = Rng(seed | 1);
    let start = Instant::now();
    let mut execs: u64 = 0;
    // The seeds themselves first, then mutants, until the time is up.
    let mut next = corpus.iter().cloned();
    while start.elapsed() < limit {
        let input = next.next().unwrap_or_else(|| mutate(&mut rng, &corpus, &dict));
        let ran = std::panic::catch_unwind(|| target(&input));
        execs += 1;
        if ran.is_err() {
            let path = save_crash(name, &input);
            eprintln!(
                "fuzz-loop {name}: crash after {execs} runs; input saved as {}",
                path.display()
            );
            return 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "fuzz-loop {name}: {execs} runs in {secs:.0} s ({:.0}/s), 0 crashes",
        execs as f64 / secs
    );
    0
}

fn save_crash(name: &str, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts").join(name);
    let _ = std::fs::create_dir_all(&dir);
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let path = dir.join(format!("crash-{hash:016x}"));
    let _ = std::fs::write(&path, input);
    path
}

/// Words and separators of the seeds: splicing whole tokens reaches the
/// parsers' keywords far sooner than random bytes do.
fn dictionary(corpus: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut words: Vec<Vec<u8>> = corpus
        .iter()
        .flat_map(|s| s.split(|b| b" \t\n:=/(),".contains(b)))
        .filter(|w| !w.is_empty() && w.len() <= 32)
        .map(<[u8]>::to_vec)
        .collect();
    words.sort();
    words.dedup();
    for sep in [
        &b" "[..],
        b"\n",
        b"\t",
        b":",
        b"/",
        b"(",
        b")",
        b",",
        b"\0",
        b"\r\n",
        b"-",
        b"\\",
        b"%",
    ] {
        words.push(sep.to_vec());
    }
    words
}

const MAX_LEN: usize = 1 << 16;

/// A seed with one to eight random edits.
fn mutate(rng: &mut Rng, corpus: &[Vec<u8>], dict: &[Vec<u8>]) -> Vec<u8> {
    let mut v = corpus[rng.below(corpus.len())].clone();
    for _ in 0..=rng.below(8) {
        let at = rng.below(v.len() + 1);
        // A byte to change, when there is one.
        let byte = at.min(v.len().saturating_sub(1));
        match rng.below(7) {
            0 if !v.is_empty() => v[byte] ^= 1 << rng.below(8),
            1 if !v.is_empty() => v[byte] = rng.next() as u8,
            2 => v.insert(at, rng.next() as u8),
            3 => {
                let end = (at + rng.below(16)).min(v.len());
                v.drain(at..end);
            }
            4 => {
                let end = (at + rng.below(64)).min(v.len());
                let piece = v[at..end].to_vec();
                let to = rng.below(v.len() + 1);
                v.splice(to..to, piece);
            }
            5 => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len() + 1);
                v.truncate(at);
                v.extend_from_slice(&other[from..]);
            }
            _ => {
                let w = &dict[rng.below(dict.len())];
                v.splice(at..at, w.iter().copied());
            }
        }
    }
    v.truncate(MAX_LEN);
    v
}
