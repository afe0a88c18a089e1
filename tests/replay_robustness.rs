//! The replay parsers never panic: the sample logs of `tests/replay/root`
//! with random damage (bytes flipped, cut, repeated) and random strings
//! of the formats' own tokens go through every parser.

use crate::util::rng::Rng;
use restart_stale::managers::apt::{dpkg_log, history as apt_history};
use restart_stale::managers::swupd::manifests as swupd;
use restart_stale::replay::files;
use std::path::PathBuf;

fn sample(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/replay/root")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn damage(rng: &mut Rng, data: &[u8]) -> Vec<u8> {
    let mut d = data.to_vec();
    for _ in 0..1 + rng.below(8) {
        if d.is_empty() {
            break;
        }
        let at = rng.below(d.len());
        match rng.below(4) {
            0 => d[at] = rng.next() as u8,
            1 => d.truncate(at),
            2 => {
                let end = (at + rng.below(20)).min(d.len());
                let piece = d[at..end].to_vec();
                d.splice(at..at, piece);
            }
            _ => {
                d.remove(at);
            }
        }
    }
    d
}

const TOKENS: &[&str] = &[
    "Start-Date: ",
    "End-Date: ",
    "Upgrade: ",
    "Install: ",
    "Disappeared: ",
    "2026-11-22",
    "  ",
    " ",
    "01:50:12",
    "libc6:amd64",
    ":",
    "(",
    ")",
    ", ",
    ",",
    "1:2.3-4",
    "automatic",
    "\n",
    "\r\n",
    "\t",
    "<none>",
    "upgrade",
    "remove",
    "MANIFEST\t30\n",
    "F...",
    ".d..",
    "400",
    "/usr/lib/x",
    "é",
    "\u{fffd}",
    "\0",
    "-",
    "99999999999999999999",
];

fn token_soup(rng: &mut Rng) -> Vec<u8> {
    let mut s = String::new();
    for _ in 0..rng.below(60) {
        s.push_str(TOKENS[rng.below(TOKENS.len())]);
    }
    let mut b = s.into_bytes();
    if rng.below(4) == 0 && !b.is_empty() {
        let at = rng.below(b.len());
        b[at] = 0xff;
    }
    b
}

fn all_parsers(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut w = Vec::new();
    apt_history::parse(&text, "f", &mut w);
    dpkg_log::parse(&text, "f", &mut w);
    swupd::parse(&text, "f", &mut w);
    files::parse(data, "f", &mut w);
}

#[test]
fn damaged_samples_and_token_soup_never_panic() {
    let samples = [
        sample("var/log/apt/history.log"),
        sample("var/log/apt/history.log.2.gz.in"),
        sample("var/log/dpkg.log"),
        sample("var/log/dpkg.log.1"),
        sample("var/lib/swupd/cache/https___cdn.example.org_update/manifest/400/Manifest.openssl"),
    ];
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for _ in 0..3000 {
        let s = &samples[rng.below(samples.len())];
        all_parsers(&damage(&mut rng, s));
        all_parsers(&token_soup(&mut rng));
    }
}
