//! A formula as clauses over its own variables, read off its truth table: what the generation
//! oracle's SAT core is given where the clause list is short, with Tseitin gates for the rest.
//!
//! The clauses are an irredundant cover of the formula's false rows (Minato–Morreale ISOP), each
//! cube of false rows excluded by one clause. No gate variables: a clause propagates straight
//! between the formula's variables, and the core answers a level-10 item's questions ~15% faster,
//! the encoding's own cost included (BENCHMARKS.md, issue 21).

use super::formula::Formula;
use super::table::{LOW_PATTERNS, var_word};

/// Most clauses a formula's direct encoding may have; past it, the formula gets Tseitin gates
/// (an ⊕ of many variables needs exponentially many clauses). Chosen by measurement: caps of 16,
/// 32, 64, 128 and 256 took 9%, 14%, 22%, 23% and 24% off level 10's final uniqueness questions
/// asked from scratch (no cap: 9%, the longest lists slow the search).
pub(super) const MAX_DIRECT_CLAUSES: usize = 64;

/// Most variables a formula may have for the direct encoding (its table has 2^this rows; the
/// generator's formulas have at most 16 leaves).
const MAX_DIRECT_VARS: usize = 16;

/// A product of literals over a formula's own variables: (variables in it, their values).
type Cube = (u32, u32);

/// A formula as clauses over its variables ([`DirectCnf::of`]).
pub(super) struct DirectCnf {
    /// The formula's variables; local variable `j` is `vars[j]`.
    vars: Vec<usize>,
    /// The cubes of false rows, one clause each.
    cubes: Vec<Cube>,
}

impl DirectCnf {
    /// `formula` as at most [`MAX_DIRECT_CLAUSES`] clauses over its variables, true exactly
    /// where it is; `None` when it needs more (or has more than 16 variables).
    pub(super) fn of(formula: &Formula) -> Option<DirectCnf> {
        let vars = formula.variables();
        let k = vars.len();
        if k > MAX_DIRECT_VARS {
            return None;
        }
        let mut local = vec![0u8; vars.iter().max().map_or(0, |&v| v + 1)];
        for (j, &v) in vars.iter().enumerate() {
            local[v] = j as u8;
        }
        let mut cubes = Vec::with_capacity(MAX_DIRECT_CLAUSES + 1);
        let mut pool = Pool::default();
        if k <= 6 {
            let falses = !word_table(formula, &local);
            isop_word(falses, falses, k, (0, 0), &mut cubes)?;
        } else {
            let mut falses = table(formula, &local, words_for(k), &mut pool);
            falses.iter_mut().for_each(|w| *w = !*w);
            let mut cover = pool.take(falses.len(), |_| 0);
            isop(
                &falses,
                &falses,
                k,
                (0, 0),
                &mut cubes,
                &mut cover,
                &mut pool,
            )?;
        }
        Some(DirectCnf { vars, cubes })
    }

    /// Each clause, as its literals `(variable, value)`: satisfied where some variable has its
    /// value.
    pub(super) fn clauses(&self) -> impl Iterator<Item = impl Iterator<Item = (usize, bool)> + '_> {
        let vars = &self.vars;
        self.cubes.iter().map(move |&(fixed, values)| {
            (0..vars.len())
                .filter(move |j| fixed >> j & 1 == 1)
                .map(move |j| (vars[j], values >> j & 1 == 0))
        })
    }
}

/// Table words for `k` variables: one up to six (the word repeats the table), else 2^(k−6).
fn words_for(k: usize) -> usize {
    1 << k.saturating_sub(6)
}

/// The table of a formula over at most six local variables (`local[v]`: variable `v`'s),
/// repeated over the word.
fn word_table(formula: &Formula, local: &[u8]) -> u64 {
    match formula {
        Formula::Lit { var, neg } => {
            LOW_PATTERNS[usize::from(local[*var])] ^ if *neg { u64::MAX } else { 0 }
        }
        Formula::Not(inner) => !word_table(inner, local),
        Formula::Bin(op, l, r) => op.apply(word_table(l, local), word_table(r, local)),
    }
}

/// The table of a formula over its local variables, `words` words (variable `j < 6` picks bits
/// of a word, the others pick words).
fn table(formula: &Formula, local: &[u8], words: usize, pool: &mut Pool) -> Vec<u64> {
    match formula {
        Formula::Lit { var, neg } => {
            let j = usize::from(local[*var]);
            let flip = if *neg { u64::MAX } else { 0 };
            pool.take(words, |i| var_word(j, i) ^ flip)
        }
        Formula::Not(inner) => {
            let mut t = table(inner, local, words, pool);
            t.iter_mut().for_each(|w| *w = !*w);
            t
        }
        Formula::Bin(op, l, r) => {
            let mut t = table(l, local, words, pool);
            let right = table(r, local, words, pool);
            for (a, b) in t.iter_mut().zip(&right) {
                *a = op.apply(*a, *b);
            }
            pool.give(right);
            t
        }
    }
}

/// [`isop`] on one word (at most six variables): no allocation, for most calls of a search
/// are here.
fn isop_word(lower: u64, upper: u64, k: usize, prefix: Cube, out: &mut Vec<Cube>) -> Option<u64> {
    if lower == 0 {
        return Some(0);
    }
    if upper == u64::MAX {
        out.push(prefix);
        return (out.len() <= MAX_DIRECT_CLAUSES).then_some(u64::MAX);
    }
    let x = k - 1;
    let (pattern, shift, bit) = (LOW_PATTERNS[x], 1u32 << x, 1u32 << x);
    let zero = |w: u64| (w & !pattern) | (w & !pattern) << shift;
    let one = |w: u64| (w & pattern) | (w & pattern) >> shift;
    let (l0, l1, u0, u1) = (zero(lower), one(lower), zero(upper), one(upper));
    if l0 == l1 && u0 == u1 {
        // Neither bound depends on x: no cube needs it.
        return isop_word(lower, upper, x, prefix, out);
    }
    let c0 = isop_word(l0 & !u1, u0, x, (prefix.0 | bit, prefix.1), out)?;
    let c1 = isop_word(l1 & !u0, u1, x, (prefix.0 | bit, prefix.1 | bit), out)?;
    let shared = isop_word((l0 & !c0) | (l1 & !c1), u0 & u1, x, prefix, out)?;
    Some(((c0 | shared) & !pattern) | ((c1 | shared) & pattern))
}

/// Push onto `out` cubes (each extended by `prefix`) whose union `g` has `lower ⊆ g ⊆ upper`,
/// none of them redundant, over the variables below `k`, and write `g`'s table to `cover`; `None`
/// once `out` passes [`MAX_DIRECT_CLAUSES`]. Tables as [`table`] writes them: variable `j < 6`
/// picks bits of a word, the others pick words. The variable split on is always the highest
/// left, so a table's cofactors are its two halves (within a word: [`isop_word`]).
fn isop(
    lower: &[u64],
    upper: &[u64],
    k: usize,
    prefix: Cube,
    out: &mut Vec<Cube>,
    cover: &mut [u64],
    pool: &mut Pool,
) -> Option<()> {
    if lower.iter().all(|&w| w == 0) {
        cover.fill(0);
        return Some(());
    }
    if upper.iter().all(|&w| w == u64::MAX) {
        out.push(prefix);
        cover.fill(u64::MAX);
        return (out.len() <= MAX_DIRECT_CLAUSES).then_some(());
    }
    if k <= 6 {
        cover[0] = isop_word(lower[0], upper[0], k, prefix, out)?;
        return Some(());
    }
    // Above the word's six variables the highest variable halves the table.
    let x = k - 1;
    let half = lower.len() / 2;
    let (l0, l1) = lower.split_at(half);
    let (u0, u1) = upper.split_at(half);
    let (c0, c1) = cover.split_at_mut(half);
    if l0 == l1 && u0 == u1 {
        // Neither bound depends on x: no cube needs it.
        isop(l0, u0, x, prefix, out, c0, pool)?;
        c1.copy_from_slice(c0);
        return Some(());
    }
    let bit = 1u32 << x;
    // Rows only a cube with x = 0 (x = 1) can cover, then what is left, by cubes without x.
    let only0 = pool.take(half, |i| l0[i] & !u1[i]);
    isop(&only0, u0, x, (prefix.0 | bit, prefix.1), out, c0, pool)?;
    pool.give(only0);
    let only1 = pool.take(half, |i| l1[i] & !u0[i]);
    isop(
        &only1,
        u1,
        x,
        (prefix.0 | bit, prefix.1 | bit),
        out,
        c1,
        pool,
    )?;
    pool.give(only1);
    let rest = pool.take(half, |i| (l0[i] & !c0[i]) | (l1[i] & !c1[i]));
    let both = pool.take(half, |i| u0[i] & u1[i]);
    let mut shared = pool.take(half, |_| 0);
    isop(&rest, &both, x, prefix, out, &mut shared, pool)?;
    for i in 0..half {
        c0[i] |= shared[i];
        c1[i] |= shared[i];
    }
    pool.give(rest);
    pool.give(both);
    pool.give(shared);
    Some(())
}

/// Table buffers [`isop`] reuses: one search would otherwise allocate a few per call.
#[derive(Default)]
struct Pool(Vec<Vec<u64>>);

impl Pool {
    fn take(&mut self, len: usize, word: impl Fn(usize) -> u64) -> Vec<u64> {
        let mut buffer = self.0.pop().unwrap_or_default();
        buffer.clear();
        buffer.extend((0..len).map(word));
        buffer
    }

    fn give(&mut self, buffer: Vec<u64>) {
        self.0.push(buffer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Draw;

    fn holds(cnf: &DirectCnf, assignment: &[bool]) -> bool {
        cnf.clauses()
            .all(|mut c| c.any(|(v, value)| assignment[v] == value))
    }

    fn clauses(formula: &Formula) -> Option<Vec<Vec<(usize, bool)>>> {
        DirectCnf::of(formula).map(|cnf| cnf.clauses().map(|c| c.collect()).collect())
    }

    /// On every assignment of up to 9 variables, the clauses hold exactly where the formula does,
    /// at every depth the levels use (many formulas fall back; enough do not).
    #[test]
    fn the_clauses_hold_exactly_where_the_formula_does() {
        let mut draw = Draw::from_seed_bytes([5; 32]);
        let mut direct = 0;
        for n in [1, 2, 3, 5, 6, 7, 9] {
            for depth in 1..=4 {
                for _ in 0..60 {
                    let formula = Formula::random(&mut draw, n, depth);
                    let Some(cnf) = DirectCnf::of(&formula) else {
                        continue;
                    };
                    direct += 1;
                    assert!(cnf.cubes.len() <= MAX_DIRECT_CLAUSES);
                    for a in 0..1u32 << n {
                        let assignment: Vec<bool> = (0..n).map(|j| a >> j & 1 == 1).collect();
                        assert_eq!(holds(&cnf, &assignment), formula.eval(&assignment));
                    }
                }
            }
        }
        assert!(direct > 1_000, "{direct} formulas encoded directly");
    }

    /// A tautology needs no clause, a contradiction the empty one, an ⊕ of six variables its
    /// 32 clauses, and one of eight (128 at least) falls back to gates.
    #[test]
    fn constants_and_wide_xors() {
        let lit = |var, neg| Formula::Lit { var, neg };
        let either = Formula::Bin(
            super::super::formula::Op::Or,
            Box::new(lit(0, false)),
            Box::new(lit(0, true)),
        );
        assert_eq!(clauses(&either), Some(vec![]));
        let never = Formula::Not(Box::new(either));
        assert_eq!(clauses(&never), Some(vec![vec![]]));
        let xor = (1..8).fold(lit(0, false), |acc, v| {
            Formula::Bin(
                super::super::formula::Op::Xor,
                Box::new(acc),
                Box::new(lit(v, false)),
            )
        });
        assert_eq!(clauses(&xor), None);
        let xor6 = (1..6).fold(lit(0, false), |acc, v| {
            Formula::Bin(
                super::super::formula::Op::Xor,
                Box::new(acc),
                Box::new(lit(v, false)),
            )
        });
        assert_eq!(clauses(&xor6).map(|c| c.len()), Some(32));
    }
}
