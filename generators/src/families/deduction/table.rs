//! The fast exact path: truth tables as bitsets over all 2^n assignments.
//!
//! Bit `a` of a table is the formula's value under assignment `a`, where variable `k` is
//! `(a >> k) & 1`. One `u64` covers 64 assignments, so a 12-variable formula is 64 words and a
//! whole paper-level instance is decided in a few microseconds.

use super::formula::Formula;

/// Largest variable count the fast path takes (2^20 bits = 128 KiB per table).
pub const MAX_VARS: usize = 20;

/// Bits of variable `k` within one word, for `k < 6`: the positions `p` of a word whose bit `k`
/// is set.
pub(super) const LOW_PATTERNS: [u64; 6] = [
    0xAAAA_AAAA_AAAA_AAAA,
    0xCCCC_CCCC_CCCC_CCCC,
    0xF0F0_F0F0_F0F0_F0F0,
    0xFF00_FF00_FF00_FF00,
    0xFFFF_0000_FFFF_0000,
    0xFFFF_FFFF_0000_0000,
];

/// A truth table over `n` variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    n: usize,
    words: Vec<u64>,
}

impl Table {
    fn words_for(n: usize) -> usize {
        if n <= 6 { 1 } else { 1 << (n - 6) }
    }

    fn valid_mask(&self) -> u64 {
        if self.n >= 6 {
            !0
        } else {
            (1u64 << (1u32 << self.n)) - 1
        }
    }

    /// The table that is true everywhere.
    pub fn all_true(n: usize) -> Table {
        assert!(
            n <= MAX_VARS,
            "fast path takes at most {MAX_VARS} variables"
        );
        let mut table = Table {
            n,
            words: vec![!0; Table::words_for(n)],
        };
        let mask = table.valid_mask();
        table.words[0] &= mask;
        table
    }

    /// The table of a formula.
    pub fn of(formula: &Formula, n: usize) -> Table {
        assert!(
            n <= MAX_VARS,
            "fast path takes at most {MAX_VARS} variables"
        );
        let mut words = vec![0; Table::words_for(n)];
        eval_into(formula, &mut words);
        let mut table = Table { n, words };
        let mask = table.valid_mask();
        table.words[0] &= mask;
        table
    }

    /// Conjoin another table into this one.
    pub fn and_assign(&mut self, other: &Table) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= b;
        }
    }

    /// Rows `64 i .. 64 i + 63`, a bit each (row `64 i + b` is bit `b`).
    pub fn word(&self, i: usize) -> u64 {
        self.words[i]
    }

    /// The value under assignment `a`.
    #[cfg(test)]
    pub fn get(&self, a: usize) -> bool {
        (self.words[a / 64] >> (a % 64)) & 1 == 1
    }

    /// How many assignments are true.
    pub fn count(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// The first true assignment, as one bool per variable.
    pub fn first(&self) -> Option<Vec<bool>> {
        let (w, word) = self.words.iter().enumerate().find(|(_, w)| **w != 0)?;
        let a = w * 64 + word.trailing_zeros() as usize;
        Some((0..self.n).map(|k| (a >> k) & 1 == 1).collect())
    }
}

/// Word `word_index` of variable `var`'s own table.
pub(super) fn var_word(var: usize, word_index: usize) -> u64 {
    if var < 6 {
        LOW_PATTERNS[var]
    } else if (word_index >> (var - 6)) & 1 == 1 {
        !0
    } else {
        0
    }
}

/// Evaluate `formula` over the assignments of `out` (which is overwritten).
fn eval_into(formula: &Formula, out: &mut [u64]) {
    match formula {
        Formula::Lit { var, neg } => {
            let flip = if *neg { !0 } else { 0 };
            for (i, w) in out.iter_mut().enumerate() {
                *w = var_word(*var, i) ^ flip;
            }
        }
        Formula::Not(inner) => {
            eval_into(inner, out);
            for w in out.iter_mut() {
                *w = !*w;
            }
        }
        Formula::Bin(op, l, r) => {
            eval_into(l, out);
            let mut right = vec![0; out.len()];
            eval_into(r, &mut right);
            for (a, b) in out.iter_mut().zip(&right) {
                *a = op.apply(*a, *b);
            }
        }
    }
}

/// Count the models of a conjunction of formulas, and return the first one.
pub fn solve(formulas: &[Formula], n: usize) -> (u64, Option<Vec<bool>>) {
    let mut table = Table::all_true(n);
    for f in formulas {
        table.and_assign(&Table::of(f, n));
    }
    (table.count(), table.first())
}

#[cfg(test)]
mod tests {
    use super::super::formula::variable_names;
    use super::*;
    use crate::rng::Draw;

    /// Brute force one assignment at a time: the slow oracle the bitsets must match.
    fn brute(formulas: &[Formula], n: usize) -> u64 {
        (0..1u64 << n)
            .filter(|a| {
                let assignment: Vec<bool> = (0..n).map(|k| (a >> k) & 1 == 1).collect();
                formulas.iter().all(|f| f.eval(&assignment))
            })
            .count() as u64
    }

    #[test]
    fn matches_brute_force() {
        let mut draw = Draw::from_seed_bytes([1; 32]);
        for n in [1, 2, 3, 5, 6, 7, 9] {
            for _ in 0..200 {
                let formulas: Vec<Formula> =
                    (0..3).map(|_| Formula::random(&mut draw, n, 3)).collect();
                let (count, first) = solve(&formulas, n);
                assert_eq!(
                    count,
                    brute(&formulas, n),
                    "{:?}",
                    formulas[0].render(&variable_names(n))
                );
                if let Some(a) = first {
                    assert!(formulas.iter().all(|f| f.eval(&a)));
                }
            }
        }
    }
}
