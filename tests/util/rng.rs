//! A small deterministic generator (xorshift64*): reproducible from its
//! seed, no dependency. Shared by the robustness tests and the fuzz
//! crate's seeded loop (`fuzz/src/bin/fuzz-loop.rs` includes this file).

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}
