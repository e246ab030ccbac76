//! How each level makes its sequences (before the determinacy check decides what is kept).

use super::determinacy::fit_level;
use super::rules::{Fit, Partial, Step, partial_of};
use crate::rng::Draw;

/// Largest |value| at levels 1–5.
pub(super) const PAPER_BOUND: i64 = 1_000_000_000;
/// Largest |value| at levels 6–10.
const EXTENDED_BOUND: i64 = 1_000_000;

fn cyclic_sequence(start: i64, steps: &[Step], len: usize, bound: i64) -> Option<Vec<i64>> {
    let mut seq = vec![start];
    for t in 1..len {
        let next = steps[(t - 1) % steps.len()].apply(seq[t - 1])?;
        if next.abs() > bound {
            return None;
        }
        seq.push(next);
    }
    Some(seq)
}

fn describe_steps(steps: &[Step]) -> String {
    let parts: Vec<String> = steps.iter().map(|s| s.describe()).collect();
    format!("repeat ({})", parts.join(", "))
}

/// A made sequence before masking: values, rule text, and where the mask goes.
pub(super) struct Made {
    pub sequence: Vec<i64>,
    pub rule: String,
    pub masked: Vec<usize>,
    pub missing_term_header: bool,
}

fn last_masked(sequence: Vec<i64>, rule: String) -> Option<Made> {
    let masked = vec![sequence.len() - 1];
    Some(Made {
        sequence,
        rule,
        masked,
        missing_term_header: false,
    })
}

fn level1(draw: &mut Draw) -> Option<Made> {
    match draw.below(3) {
        0 => {
            let (len, start, step) = (draw.range(5, 8), draw.range(1, 5), draw.range(1, 4));
            let seq = cyclic_sequence(start, &[Step::Add(step)], len as usize, PAPER_BOUND)?;
            last_masked(seq, format!("arithmetic, start {start}, step +{step}"))
        }
        1 => {
            let (len, start, ratio) = (draw.range(5, 8), draw.range(1, 3), draw.range(2, 4));
            let seq = cyclic_sequence(start, &[Step::Mul(ratio)], len as usize, PAPER_BOUND)?;
            last_masked(seq, format!("geometric, start {start}, ratio ×{ratio}"))
        }
        _ => {
            let (len, start) = (draw.range(5, 7), draw.range(1, 10));
            let (add, sub) = (draw.range(1, 3), draw.range(1, 3));
            let steps = [Step::Sub(sub), Step::Add(add)];
            let seq = cyclic_sequence(start, &steps, len as usize, PAPER_BOUND)?;
            last_masked(
                seq,
                format!("alternating, start {start}, {}", describe_steps(&steps)),
            )
        }
    }
}

fn level2(draw: &mut Draw) -> Option<Made> {
    match draw.below(3) {
        0 => {
            let (len, start) = (draw.range(6, 9), draw.range(1, 5));
            let (a, b) = (draw.range(1, 4), draw.range(1, 4));
            if a == b {
                // That is an arithmetic sequence: a level-1 item.
                return None;
            }
            let steps = [Step::Add(b), Step::Add(a)];
            let seq = cyclic_sequence(start, &steps, len as usize, PAPER_BOUND)?;
            last_masked(
                seq,
                format!("two-step add, start {start}, {}", describe_steps(&steps)),
            )
        }
        1 => {
            let (len, start) = (draw.range(6, 9), draw.range(2, 5));
            let (mul, div) = (draw.range(2, 4), draw.range(2, 4));
            let steps = [Step::Div(div), Step::Mul(mul)];
            let seq = cyclic_sequence(start, &steps, len as usize, PAPER_BOUND)?;
            if alternates_plus_minus(&seq) {
                // e.g. 3 ÷3 1 ×3 3 …: the level-1 alternating sequence 3, 1, 3, 1, …
                return None;
            }
            last_masked(
                seq,
                format!(
                    "alternating multiply/divide, start {start}, {}",
                    describe_steps(&steps)
                ),
            )
        }
        _ => {
            let (len, start, step) = (draw.range(6, 8), draw.range(1, 5), draw.range(1, 4));
            let seq = cyclic_sequence(start, &[Step::Add(step)], len as usize, PAPER_BOUND)?;
            let at = draw.range(1, len - 2) as usize;
            Some(Made {
                sequence: seq,
                rule: format!("arithmetic, start {start}, step +{step}"),
                masked: vec![at],
                missing_term_header: true,
            })
        }
    }
}

fn random_step(draw: &mut Draw) -> Step {
    match draw.below(3) {
        0 => Step::Add(draw.range(1, 4)),
        1 => Step::Sub(draw.range(1, 4)),
        _ => Step::Mul(draw.range(2, 4)),
    }
}

fn cyclic_level(draw: &mut Draw, k: usize) -> Option<Made> {
    let (len, start) = (draw.range(7, 11), draw.range(1, 5));
    let steps: Vec<Step> = (0..k).map(|_| random_step(draw)).collect();
    if minimal_period(&steps) < k {
        // A rule that repeats with a shorter period belongs to a lower level.
        return None;
    }
    let seq = cyclic_sequence(start, &steps, len as usize, PAPER_BOUND)?;
    let made = last_masked(seq, format!("start {start}, {}", describe_steps(&steps)))?;
    // Too few terms shown to reveal the k-step cycle: a shorter rule reproduces them (e.g. +4 −4
    // +4 +4 −4 shown for seven terms looks like the 3-step +4 −4 +4), and the same visible
    // sequence would also be a lower level's item — the same prompt at two levels (measured:
    // 8 of 26,667 level-5 items in the 1M run duplicated level 3 and 4 items).
    let shown = partial_of(&made.sequence, &made.masked);
    (!explained_below(k as u8, &shown)).then_some(made)
}

/// Whether some lower level's hypothesis classes reproduce the visible terms.
pub(super) fn explained_below(level: u8, shown: Partial) -> bool {
    (1..level).any(|lower| !matches!(fit_level(lower, shown), Fit::Inconsistent))
}

/// Whether consecutive differences alternate between one negative and one positive constant (the
/// shape of a level-1 alternating ± sequence).
fn alternates_plus_minus(seq: &[i64]) -> bool {
    let diffs: Vec<i64> = seq.windows(2).map(|w| w[1] - w[0]).collect();
    diffs.len() >= 2
        && diffs[0] < 0
        && diffs[1] > 0
        && diffs.iter().enumerate().all(|(i, d)| *d == diffs[i % 2])
}

/// The smallest p such that the steps repeat with period p.
fn minimal_period(steps: &[Step]) -> usize {
    (1..=steps.len())
        .find(|&p| {
            steps.len().is_multiple_of(p) && (0..steps.len()).all(|i| steps[i] == steps[i % p])
        })
        .unwrap_or(steps.len())
}

fn bounded(values: Vec<i64>) -> Option<Vec<i64>> {
    values
        .iter()
        .all(|v| v.abs() <= EXTENDED_BOUND)
        .then_some(values)
}

fn polynomial(draw: &mut Draw) -> Option<(Vec<i64>, String)> {
    let degree = draw.range(2, 3);
    let len = draw.range(7, 9) as usize;
    let mut coeffs: Vec<i64> = (0..degree).map(|_| draw.range(-4, 4)).collect();
    let lead = draw.range(1, 3) * if draw.chance(0.25) { -1 } else { 1 };
    coeffs.push(lead);
    let value = |n: i64| coeffs.iter().rev().fold(0i64, |acc, c| acc * n + c);
    let seq = bounded((0..len as i64).map(value).collect())?;
    let terms: Vec<String> = coeffs
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, c)| **c != 0)
        .map(|(p, c)| match p {
            0 => format!("{c}"),
            1 => format!("{c}·n"),
            _ => format!("{c}·n^{p}"),
        })
        .collect();
    Some((
        seq,
        format!("polynomial x[n] = {} (n from 0)", terms.join(" + ")),
    ))
}

fn recurrence(draw: &mut Draw) -> Option<(Vec<i64>, String)> {
    let a = draw.range(1, 3);
    let b: i64 = [-2, -1, 1, 2][draw.index(4)];
    if (a, b) == (2, -1) {
        // x[n] = 2x[n−1] − x[n−2] is an arithmetic sequence: a level-1 item.
        return None;
    }
    let (x0, x1) = (draw.range(1, 9), draw.range(1, 9));
    let len = draw.range(8, 10) as usize;
    let mut seq = vec![x0, x1];
    while seq.len() < len {
        let n = seq.len();
        seq.push(
            a.checked_mul(seq[n - 1])?
                .checked_add(b.checked_mul(seq[n - 2])?)?,
        );
    }
    Some((
        bounded(seq)?,
        format!("x[n] = {a}·x[n−1] + {b}·x[n−2], x[0] = {x0}, x[1] = {x1}"),
    ))
}

fn simple_progression(draw: &mut Draw, len: usize) -> Option<(Vec<i64>, String)> {
    if draw.chance(0.6) {
        let (start, step) = (draw.range(1, 20), draw.range(-6, 6));
        if step == 0 {
            return None;
        }
        let seq = (0..len as i64).map(|i| start + i * step).collect();
        Some((seq, format!("arithmetic from {start} step {step:+}")))
    } else {
        let (start, ratio) = (draw.range(1, 3), draw.range(2, 3));
        let seq = cyclic_sequence(start, &[Step::Mul(ratio)], len, EXTENDED_BOUND)?;
        Some((seq, format!("geometric from {start} ratio ×{ratio}")))
    }
}

fn interleaved(draw: &mut Draw) -> Option<(Vec<i64>, String)> {
    let len = draw.range(10, 13) as usize;
    let (even, even_rule) = simple_progression(draw, len.div_ceil(2))?;
    let (odd, odd_rule) = simple_progression(draw, len / 2)?;
    let seq = (0..len)
        .map(|i| if i % 2 == 0 { even[i / 2] } else { odd[i / 2] })
        .collect();
    Some((
        bounded(seq)?,
        format!("interleaved: even positions {even_rule}; odd positions {odd_rule}"),
    ))
}

fn modular(draw: &mut Draw) -> Option<(Vec<i64>, String)> {
    let m = draw.range(5, 11);
    let a = draw.range(1, m - 1);
    let b = draw.range(0, m - 1);
    let len = draw.range(12, 16) as usize;
    let seq = (0..len as i64).map(|n| (a * n + b).rem_euclid(m)).collect();
    Some((seq, format!("x[n] = ({a}·n + {b}) mod {m}")))
}

fn extended(draw: &mut Draw, level: u8) -> Option<Made> {
    let kind = if level == 10 {
        draw.range(6, 9) as u8
    } else {
        level
    };
    let (sequence, rule) = match kind {
        6 => polynomial(draw)?,
        7 => recurrence(draw)?,
        8 => interleaved(draw)?,
        _ => modular(draw)?,
    };
    let len = sequence.len();
    let masked = match (level, kind) {
        (10, _) => {
            // Two hidden terms among the last 60%.
            let lo = (len * 2 / 5).max(2);
            let first = draw.range(lo as i64, len as i64 - 1) as usize;
            let mut second = draw.range(lo as i64, len as i64 - 1) as usize;
            while second == first {
                second = draw.range(lo as i64, len as i64 - 1) as usize;
            }
            let mut both = vec![first, second];
            both.sort_unstable();
            both
        }
        (_, 9) => vec![draw.range(len as i64 / 2, len as i64 - 1) as usize],
        _ => vec![len - 1],
    };
    Some(Made {
        sequence,
        rule,
        masked,
        missing_term_header: false,
    })
}

/// A candidate sequence of `level`, before the determinacy check.
pub(super) fn make(level: u8, draw: &mut Draw) -> Option<Made> {
    match level {
        1 => level1(draw),
        2 => level2(draw),
        3..=5 => cyclic_level(draw, usize::from(level)),
        _ => extended(draw, level),
    }
}
