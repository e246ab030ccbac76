//! Seed derivation and the few random draws the families need.
//!
//! Every item's RNG is seeded by SHA-256 over its coordinates (master seed, family, level,
//! index): one candidate stream per (family, level) serves both splits, each candidate going to the
//! split its content hash picks ([`split_of_key`]), so an item is a pure function of where it sits: thread count, shard count and resumes
//! cannot change it, and seed `s` item `i + 1` is unrelated to seed `s + 1` item `i` (the
//! `Random(seed + idx)` overlap that reasoning-gym has). The draws are written here on top of the
//! raw ChaCha stream rather than taken from `rand`'s distributions, whose value stability is not
//! promised across versions: a dataset must stay byte-identical for as long as triad's own format
//! version does.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::family::ItemCoords;

/// The random source handed to a family's generator.
pub struct Draw {
    inner: ChaCha8Rng,
}

impl Draw {
    /// The RNG of the item at `coords`.
    pub fn for_item(coords: &ItemCoords) -> Draw {
        let mut hasher = Sha256::new();
        // v2: the split left the coordinates (candidates are routed to a split by content).
        hasher.update(b"triad/item/v2\0");
        hasher.update(coords.seed.to_le_bytes());
        hasher.update(coords.family.as_bytes());
        hasher.update([0, coords.level]);
        hasher.update(coords.index.to_le_bytes());
        Draw::from_seed_bytes(hasher.finalize().into())
    }

    /// An RNG from raw seed bytes (tests and benches).
    pub fn from_seed_bytes(seed: [u8; 32]) -> Draw {
        Draw {
            inner: ChaCha8Rng::from_seed(seed),
        }
    }

    /// A uniform `u64`.
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// A uniform integer in `0..n` (Lemire's multiply-shift with rejection: no modulo bias).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        loop {
            let product = u128::from(self.next_u64()) * u128::from(n);
            let low = product as u64;
            if low >= n.wrapping_neg() % n {
                return (product >> 64) as u64;
            }
        }
    }

    /// A uniform integer in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        assert!(lo <= hi, "empty range {lo}..={hi}");
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// A uniform index into a slice of length `len`.
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// A uniform float in `[0, 1)` with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Shuffle a slice in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }
}

/// A 128-bit content hash of a family's canonical text: the item id and the dedup key.
pub fn content_key(family: &str, canonical: &str) -> u128 {
    let mut hasher = Sha256::new();
    hasher.update(b"triad/content/v1\0");
    hasher.update(family.as_bytes());
    hasher.update([0]);
    hasher.update(canonical.as_bytes());
    let digest = hasher.finalize();
    u128::from_be_bytes(digest[..16].try_into().expect("16 bytes"))
}

/// Which split owns a piece of content. The content space is partitioned by hash, so a test item
/// can never equal a train item, whatever seeds the two splits were generated with, and no worker
/// needs to see the other split to keep them apart. One bucket in [`TEST_BUCKETS`] is test
/// (25% of the content space: small spaces such as induction level 1 still get a usable test split).
pub fn split_of_key(key: u128) -> crate::Split {
    if ((key >> 64) as u64).is_multiple_of(TEST_BUCKETS) {
        crate::Split::Test
    } else {
        crate::Split::Train
    }
}

/// The content space is cut into this many buckets by hash; one of them belongs to the test split.
pub const TEST_BUCKETS: u64 = 4;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Split;

    fn coords(seed: u64, index: u64) -> ItemCoords {
        ItemCoords {
            seed,
            family: "deduction",
            level: 1,
            index,
        }
    }

    #[test]
    fn adjacent_seeds_do_not_shift() {
        let a: Vec<u64> = (0..100)
            .map(|i| Draw::for_item(&coords(42, i + 1)).next_u64())
            .collect();
        let b: Vec<u64> = (0..100)
            .map(|i| Draw::for_item(&coords(43, i)).next_u64())
            .collect();
        assert!(a.iter().zip(&b).all(|(x, y)| x != y));
    }

    #[test]
    fn coordinates_all_matter() {
        let base = coords(1, 1);
        let mut other = base.clone();
        other.index = 2;
        assert_ne!(
            Draw::for_item(&base).next_u64(),
            Draw::for_item(&other).next_u64()
        );
        let mut other = base.clone();
        other.family = "induction";
        assert_ne!(
            Draw::for_item(&base).next_u64(),
            Draw::for_item(&other).next_u64()
        );
        let mut other = base.clone();
        other.level = 2;
        assert_ne!(
            Draw::for_item(&base).next_u64(),
            Draw::for_item(&other).next_u64()
        );
    }

    #[test]
    fn below_is_in_range_and_covers_it() {
        let mut draw = Draw::from_seed_bytes([3; 32]);
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            seen[draw.below(7) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
        for _ in 0..1000 {
            let r = draw.range(-3, 4);
            assert!((-3..=4).contains(&r));
        }
    }

    #[test]
    fn test_bucket_is_about_one_in_four() {
        let test = (0..8000u32)
            .filter(|i| split_of_key(content_key("x", &i.to_string())) == Split::Test)
            .count();
        assert!((1800..2200).contains(&test), "{test}");
    }
}
