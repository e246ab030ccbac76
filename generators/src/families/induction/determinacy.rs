//! The determinacy check: which rules reproduce a partial sequence, and whether they agree on the
//! hidden terms — by a level's own classes (to keep levels apart) and by every class the dataset
//! teaches in the level's band (to keep an item only if its answer is the only one).

#[cfg(test)]
use std::collections::BTreeSet;

use super::InductionInstance;
use super::rules::{self, Fit, Partial, StepKinds};

const ARITH: StepKinds = StepKinds {
    arithmetic: true,
    div: false,
};
const ARITH_DIV: StepKinds = StepKinds {
    arithmetic: true,
    div: true,
};

/// Every cyclic rule of period 1 to `max_period` with steps of `kinds`.
fn fit_cycles(seq: Partial, max_period: usize, kinds: StepKinds) -> Fit {
    (1..=max_period).fold(Fit::Inconsistent, |acc, p| {
        acc.union(rules::fit_cyclic(seq, p, kinds))
    })
}

/// What the rules of a level's own hypothesis classes (those its generator draws from) predict.
/// Used to keep each level's items out of the levels below it.
pub fn fit_level(level: u8, seq: Partial) -> Fit {
    match level {
        1 => fit_cycles(seq, 2, ARITH),
        2 => fit_cycles(seq, 2, ARITH_DIV),
        3..=5 => fit_cycles(seq, usize::from(level), ARITH),
        _ => {
            let mut fit = fit_cycles(seq, 3, ARITH).union(rules::fit_polynomial(seq, 3));
            if level >= 7 {
                fit = fit.union(rules::fit_recurrence(seq));
            }
            if level >= 8 {
                let inner =
                    |s: Partial| rules::fit_cyclic(s, 1, ARITH).union(rules::fit_polynomial(s, 2));
                fit = fit.union(rules::fit_interleaved(seq, &inner));
            }
            if level >= 9 {
                fit = fit.union(rules::fit_modular(seq, 12));
                for p in 1..=seq.len() / 2 {
                    fit = fit.union(rules::fit_repeat(seq, p));
                }
            }
            fit
        }
    }
}

/// The longest cycle a level-1–5 item may have: 2 at levels 1 and 2, the level at 3–5.
pub fn max_cycle(level: u8) -> usize {
    match level {
        1 | 2 => 2,
        _ => usize::from(level),
    }
}

/// The determinacy check: what every rule the dataset itself teaches predicts, not only the
/// level's own. At levels 1–5 that is every cyclic rule of up to [`max_cycle`] steps over all the
/// step kinds levels 1–5 use — `+r`, `−r`, `×r` and the paper's `÷d` (floor, at least 1) — with
/// any constant; at levels 6–10, every class levels 6–10 use. (Checking level 1 against its own
/// classes only let `3, 1, 4, 2, 5, ?` through: −2/+3 gives 3, but ÷2/+3, which level 2 teaches,
/// gives 2.)
pub fn fit_determinacy(level: u8, seq: Partial) -> Fit {
    match level {
        1..=5 => fit_cycles(seq, max_cycle(level), ARITH_DIV),
        _ => fit_level(10, seq),
    }
}

/// Every rule class of every level at once (cycles of up to 5 steps of every kind, and the
/// extended classes): the audit's measure of how many items a still wider reading leaves open.
pub fn fit_every_class(seq: Partial) -> Fit {
    fit_cycles(seq, 5, ARITH_DIV).union(fit_level(10, seq))
}

/// Whether the visible terms of `instance` admit a second answer under [`fit_every_class`].
pub fn ambiguous_under_every_class(instance: &InductionInstance) -> bool {
    !matches!(fit_every_class(&instance.partial()), Fit::Predicts(p) if p.len() == 1)
}

/// The hypothesis class of a level, in one sentence for the prompt, so that "the answer is
/// determined" holds from the reader's side too. Says exactly what [`fit_determinacy`] checks.
pub fn class_sentence(level: u8) -> String {
    match level {
        1..=5 => format!(
            "Each term comes from the one before it by adding, subtracting or multiplying by a constant, or by floor division by a constant (never below 1), with the steps repeating in a cycle of at most {} steps.",
            max_cycle(level)
        ),
        _ => "The rule is one of: a repeating cycle of at most 3 steps that each add, subtract or multiply by a constant; a polynomial of degree at most 3 in the position; a recurrence x[n] = a·x[n−1] + b·x[n−2]; two such progressions interleaved at the even and odd positions; (a·n + b) mod m for m at most 12; or a block of terms repeating.".into(),
    }
}

/// Whether the visible terms determine the hidden ones: `Ok` with the values, or why not.
pub fn determined(level: u8, instance: &InductionInstance) -> Result<Vec<i64>, String> {
    match fit_determinacy(level, &instance.partial()) {
        Fit::Predicts(p) if p.len() == 1 => Ok(p.into_iter().next().expect("one")),
        Fit::Predicts(p) => {
            let shown: Vec<String> = p.iter().take(3).map(|v| format!("{v:?}")).collect();
            Err(format!("rules that fit disagree: {}", shown.join(" vs ")))
        }
        Fit::Unbounded(why) => Err(why),
        Fit::Inconsistent => Err("no rule of the level's classes fits".into()),
    }
}

/// Distinct predicted tuples, for diagnostics.
#[cfg(test)]
pub fn predictions(level: u8, instance: &InductionInstance) -> BTreeSet<Vec<i64>> {
    match fit_level(level, &instance.partial()) {
        Fit::Predicts(p) => p,
        _ => BTreeSet::new(),
    }
}
