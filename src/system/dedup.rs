//! The one duplicate test of every per-process list a process can make
//! large: its mappings, its open files, the files its imports add.
//!
//! A process may map 60,000 files or hold 500,000 descriptors open; a
//! `Vec::contains` per entry made that minutes of work for one process.
//! Most processes have a few dozen entries, where a linear look beats
//! hashing, so the set starts as a short vector and turns into a hash set
//! past [`SMALL`] entries: linear for the usual process, constant per
//! entry for the hostile one.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hash};

/// Entries kept in the vector before it turns into a hash set.
const SMALL: usize = 32;

/// `S` hashes the large form: SipHash by default, for entries a process
/// chooses (paths); device and inode pairs take the cheaper hasher of the
/// verdict cache (`staleness::WordHasher`, which says why it is enough).
#[derive(Debug, Clone)]
pub enum SeenSet<T, S = RandomState> {
    Few(Vec<T>),
    Many(HashSet<T, S>),
}

impl<T, S> Default for SeenSet<T, S> {
    fn default() -> Self {
        SeenSet::Few(Vec::new())
    }
}

impl<T: Eq + Hash + Clone, S: BuildHasher + Default> SeenSet<T, S> {
    pub fn contains(&self, x: &T) -> bool {
        match self {
            SeenSet::Few(v) => v.contains(x),
            SeenSet::Many(s) => s.contains(x),
        }
    }

    /// Adds `x`; `false` if it was there already.
    pub fn insert(&mut self, x: T) -> bool {
        match self {
            SeenSet::Few(v) if v.contains(&x) => false,
            SeenSet::Few(v) if v.len() < SMALL => {
                v.push(x);
                true
            }
            SeenSet::Few(v) => {
                let mut s: HashSet<T, S> = v.drain(..).collect();
                s.insert(x);
                *self = SeenSet::Many(s);
                true
            }
            SeenSet::Many(s) => s.insert(x),
        }
    }

    /// Empties the set, keeping the vector's room for the next process.
    pub(crate) fn clear(&mut self) {
        match self {
            SeenSet::Few(v) => v.clear(),
            SeenSet::Many(_) => *self = SeenSet::Few(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_answers_below_and_above_the_switch() {
        let mut s: SeenSet<u64> = SeenSet::default();
        for i in 0..1000u64 {
            assert!(s.insert(i % 500) == (i < 500), "{i}");
            assert!(s.contains(&(i % 500)));
            assert!(!s.contains(&(500 + i)));
        }
        assert!(matches!(s, SeenSet::Many(_)));
        s.clear();
        assert!(!s.contains(&1));
        assert!(s.insert(1));
        assert!(matches!(s, SeenSet::Few(_)));
    }
}
