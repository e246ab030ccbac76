//! Hidden rules of integer sequences: how sequences are made (generation) and which rules could
//! have made a given partial sequence (the determinacy check).

use std::collections::BTreeSet;

/// One step of a cyclic rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// `x + r`
    Add(i64),
    /// `x − r`
    Sub(i64),
    /// `x × r`
    Mul(i64),
    /// `x × r` for any `r ≥ 2` (seen only as `0 → 0`, which does not pin `r`).
    MulAny,
    /// `max(1, ⌊x / d⌋)` (the paper's alternating multiply/divide).
    Div(i64),
}

/// Which step kinds a hypothesis class allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepKinds {
    /// Allow `+r`, `−r`, `×r`.
    pub arithmetic: bool,
    /// Allow `max(1, ⌊x/d⌋)`.
    pub div: bool,
}

/// Most step combinations one cyclic fit simulates before it calls the answer open.
pub const MAX_RULE_COMBINATIONS: usize = 1 << 16;

/// Largest divisor considered for a `÷d` step before the set of fitting `d` counts as unbounded.
const MAX_DIV_CANDIDATES: i64 = 64;

impl Step {
    /// Apply the step; `None` on overflow or for [`Step::MulAny`] on a non-zero value.
    pub fn apply(self, x: i64) -> Option<i64> {
        match self {
            Step::Add(r) => x.checked_add(r),
            Step::Sub(r) => x.checked_sub(r),
            Step::Mul(r) => x.checked_mul(r),
            Step::MulAny => (x == 0).then_some(0),
            Step::Div(d) => Some(x.div_euclid(d).max(1)),
        }
    }

    /// Human-readable form.
    pub fn describe(self) -> String {
        match self {
            Step::Add(r) => format!("+{r}"),
            Step::Sub(r) => format!("−{r}"),
            Step::Mul(r) => format!("×{r}"),
            Step::MulAny => "×r".into(),
            Step::Div(d) => format!("÷{d} (floor, at least 1)"),
        }
    }
}

/// Every step of the allowed kinds that maps `a` to `b`; `None` when too many to list.
pub fn steps_between(a: i64, b: i64, kinds: StepKinds) -> Option<Vec<Step>> {
    let mut out = Vec::new();
    if kinds.arithmetic {
        if b > a {
            out.push(Step::Add(b - a));
        }
        if b < a {
            out.push(Step::Sub(a - b));
        }
        if a == 0 && b == 0 {
            out.push(Step::MulAny);
        } else if a != 0 && b % a == 0 && b / a >= 2 {
            out.push(Step::Mul(b / a));
        }
    }
    if kinds.div {
        // ⌊a/d⌋ ≥ 2 needs d ≤ a/2, so d ≤ a + 1 lists every fit when b > 1. When b = 1 every
        // d > a/2 fits (every d at all when a ≤ 0: the clamp lifts any ⌊a/d⌋ ≤ 0 to 1, and a
        // reader of "floor division, never below 1" may apply it there too): list them up to
        // MAX_DIV_CANDIDATES + 1, beyond which all d act alike on the values that follow.
        if b == 1 && a > MAX_DIV_CANDIDATES {
            return None;
        }
        let upper = if b == 1 {
            MAX_DIV_CANDIDATES + 1
        } else {
            a + 1
        };
        for d in 2..=upper {
            if a.div_euclid(d).max(1) == b {
                out.push(Step::Div(d));
            }
        }
    }
    Some(out)
}

/// Steps present in both sets (`MulAny` meets any `Mul(r)`).
fn intersect(a: &[Step], b: &[Step]) -> Vec<Step> {
    let mut out = Vec::new();
    for &x in a {
        for &y in b {
            let met = match (x, y) {
                (Step::MulAny, Step::Mul(r)) | (Step::Mul(r), Step::MulAny) => Some(Step::Mul(r)),
                _ if x == y => Some(x),
                _ => None,
            };
            if let Some(m) = met
                && !out.contains(&m)
            {
                out.push(m);
            }
        }
    }
    out
}

/// What one hypothesis class says about the masked terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fit {
    /// No rule of the class reproduces the visible terms.
    Inconsistent,
    /// The masked values every fitting rule of the class predicts (one tuple per distinct
    /// prediction).
    Predicts(BTreeSet<Vec<i64>>),
    /// Fitting rules exist whose predictions cannot be listed (a step never shown, too few terms):
    /// the answer is not determined by what is shown.
    Unbounded(String),
}

impl Fit {
    /// Merge the fits of two classes.
    pub fn union(self, other: Fit) -> Fit {
        match (self, other) {
            (Fit::Unbounded(why), _) | (_, Fit::Unbounded(why)) => Fit::Unbounded(why),
            (Fit::Inconsistent, x) | (x, Fit::Inconsistent) => x,
            (Fit::Predicts(mut a), Fit::Predicts(b)) => {
                a.extend(b);
                Fit::Predicts(a)
            }
        }
    }
}

/// The visible terms of `sequence` with the `masked` positions hidden.
pub fn partial_of(sequence: &[i64], masked: &[usize]) -> Vec<Option<i64>> {
    sequence
        .iter()
        .enumerate()
        .map(|(i, v)| (!masked.contains(&i)).then_some(*v))
        .collect()
}

/// A partial sequence: `None` marks a hidden term.
pub type Partial<'a> = &'a [Option<i64>];

fn masked_positions(seq: Partial) -> Vec<usize> {
    seq.iter()
        .enumerate()
        .filter(|(_, v)| v.is_none())
        .map(|(i, _)| i)
        .collect()
}

/// Cyclic rules of period `period`: `x[t] = step[(t − 1) mod period](x[t − 1])`.
pub fn fit_cyclic(seq: Partial, period: usize, kinds: StepKinds) -> Fit {
    let mut slots: Vec<Option<Vec<Step>>> = vec![None; period];
    for t in 1..seq.len() {
        let (Some(a), Some(b)) = (seq[t - 1], seq[t]) else {
            continue;
        };
        let Some(steps) = steps_between(a, b, kinds) else {
            return Fit::Unbounded("too many divisors fit".into());
        };
        let slot = &mut slots[(t - 1) % period];
        let merged = match slot.take() {
            None => steps,
            Some(existing) => intersect(&existing, &steps),
        };
        if merged.is_empty() {
            return Fit::Inconsistent;
        }
        *slot = Some(merged);
    }
    let masked = masked_positions(seq);
    // Every slot a hidden term depends on must have been seen.
    let mut needed: Vec<usize> = Vec::new();
    for &m in &masked {
        if m == 0 {
            return Fit::Unbounded("the first term is hidden".into());
        }
        needed.push((m - 1) % period);
        if m + 1 < seq.len() {
            needed.push(m % period);
        }
    }
    needed.sort_unstable();
    needed.dedup();
    if let Some(&unseen) = needed.iter().find(|&&s| slots[s].is_none()) {
        return Fit::Unbounded(format!(
            "step {} of a period-{period} rule is never shown",
            unseen + 1
        ));
    }
    let options: Vec<Vec<Step>> = needed
        .iter()
        .map(|&s| slots[s].clone().expect("seen"))
        .collect();
    // Each needed slot can list dozens of ÷d candidates (any d above x/2 maps a small x to 1), so
    // the combinations multiply: a label of 1, 1, 1, … with five hidden terms over a 5-step cycle
    // would ask for 64⁵ simulations. Past the bound the answer counts as open — so many fitting
    // rules are no evidence of one answer — and the work per item stays bounded.
    let combinations = options
        .iter()
        .try_fold(1usize, |acc, o| acc.checked_mul(o.len()))
        .unwrap_or(usize::MAX);
    if combinations > MAX_RULE_COMBINATIONS {
        return Fit::Unbounded(format!(
            "{combinations} combinations of steps fit (more than {MAX_RULE_COMBINATIONS})"
        ));
    }
    // A ×r step seen only as 0 → 0 does not pin r: any later use on a non-zero value is open.
    if options.iter().flatten().any(|s| *s == Step::MulAny) {
        return Fit::Unbounded("a ×r step shown only as 0 → 0".into());
    }
    let mut predictions = BTreeSet::new();
    let mut choice = vec![0usize; needed.len()];
    loop {
        let step_of = |slot: usize| -> Step {
            let k = needed.iter().position(|&s| s == slot).expect("needed");
            options[k][choice[k]]
        };
        if let Some(values) = simulate(seq, &masked, |t, x| step_of((t - 1) % period).apply(x)) {
            predictions.insert(values);
        }
        // Next combination (odometer).
        let mut k = 0;
        while k < choice.len() {
            choice[k] += 1;
            if choice[k] < options[k].len() {
                break;
            }
            choice[k] = 0;
            k += 1;
        }
        if k == choice.len() {
            break;
        }
    }
    if predictions.is_empty() {
        Fit::Inconsistent
    } else {
        Fit::Predicts(predictions)
    }
}

/// Fill hidden terms forward with `next(t, x[t−1])` and check the terms after them; returns the
/// hidden values, or `None` if the rule contradicts a visible term.
fn simulate(
    seq: Partial,
    masked: &[usize],
    next: impl Fn(usize, i64) -> Option<i64>,
) -> Option<Vec<i64>> {
    let mut filled: Vec<Option<i64>> = seq.to_vec();
    for &m in masked {
        let prev = filled[m - 1]?;
        filled[m] = Some(next(m, prev)?);
        if m + 1 < seq.len()
            && let Some(after) = seq[m + 1]
            && next(m + 1, filled[m]?)? != after
        {
            return None;
        }
    }
    Some(masked.iter().map(|&m| filled[m].expect("filled")).collect())
}

/// Polynomials in the index `n` of degree ≤ `degree` with rational coefficients and integer
/// values at the hidden positions.
pub fn fit_polynomial(seq: Partial, degree: usize) -> Fit {
    let points: Vec<(i128, i128)> = seq
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i as i128, i128::from(v))))
        .collect();
    if points.len() <= degree {
        return Fit::Unbounded(format!("too few terms to pin a degree-{degree} polynomial"));
    }
    let basis = &points[..=degree];
    // All points must lie on the interpolant of the first degree + 1.
    for &(x, y) in &points[degree + 1..] {
        if lagrange(basis, x) != Some((y, 1)) {
            return Fit::Inconsistent;
        }
    }
    let mut values = Vec::new();
    for m in masked_positions(seq) {
        match lagrange(basis, m as i128) {
            Some((v, 1)) => values.push(v as i64),
            _ => return Fit::Inconsistent,
        }
    }
    Fit::Predicts(BTreeSet::from([values]))
}

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

/// The interpolating polynomial through `points` evaluated at `x`, as a reduced fraction.
fn lagrange(points: &[(i128, i128)], x: i128) -> Option<(i128, i128)> {
    let (mut num, mut den) = (0i128, 1i128);
    for (i, &(xi, yi)) in points.iter().enumerate() {
        let (mut n, mut d) = (yi, 1i128);
        for (j, &(xj, _)) in points.iter().enumerate() {
            if i != j {
                n = n.checked_mul(x - xj)?;
                d = d.checked_mul(xi - xj)?;
            }
        }
        num = num.checked_mul(d)?.checked_add(n.checked_mul(den)?)?;
        den = den.checked_mul(d)?;
        let g = gcd(num, den).max(1);
        num /= g;
        den /= g;
    }
    if den < 0 {
        num = -num;
        den = -den;
    }
    Some((num, den))
}

/// Integer linear recurrences `x[n] = a·x[n−1] + b·x[n−2]`.
pub fn fit_recurrence(seq: Partial) -> Fit {
    // Equations a·p + b·q = r from visible triples.
    let equations: Vec<(i128, i128, i128)> = (2..seq.len())
        .filter_map(|n| {
            Some((
                i128::from(seq[n - 1]?),
                i128::from(seq[n - 2]?),
                i128::from(seq[n]?),
            ))
        })
        .collect();
    let Some(&(p1, q1, r1)) = equations.iter().find(|e| e.0 != 0 || e.1 != 0) else {
        return Fit::Unbounded("no equation pins the recurrence".into());
    };
    // A second equation independent of the first pins (a, b).
    let independent = equations.iter().find(|&&(p, q, _)| p1 * q - q1 * p != 0);
    let Some(&(p2, q2, r2)) = independent else {
        return Fit::Unbounded("the recurrence's coefficients are not pinned".into());
    };
    let det = p1 * q2 - q1 * p2;
    let (a_num, b_num) = (r1 * q2 - q1 * r2, p1 * r2 - r1 * p2);
    if a_num % det != 0 || b_num % det != 0 {
        return Fit::Inconsistent;
    }
    let (a, b) = (a_num / det, b_num / det);
    if equations.iter().any(|&(p, q, r)| a * p + b * q != r) {
        return Fit::Inconsistent;
    }
    let masked = masked_positions(seq);
    if masked.iter().any(|&m| m < 2) {
        return Fit::Unbounded("a hidden term among the first two".into());
    }
    let mut filled: Vec<Option<i128>> = seq.iter().map(|v| v.map(i128::from)).collect();
    for n in 2..seq.len() {
        let (Some(x1), Some(x2)) = (filled[n - 1], filled[n - 2]) else {
            continue;
        };
        let predicted = a * x1 + b * x2;
        match filled[n] {
            None => filled[n] = Some(predicted),
            Some(v) if v != predicted => return Fit::Inconsistent,
            Some(_) => {}
        }
    }
    let values: Option<Vec<i64>> = masked
        .iter()
        .map(|&m| filled[m].and_then(|v| i64::try_from(v).ok()))
        .collect();
    values.map_or(Fit::Inconsistent, |v| Fit::Predicts(BTreeSet::from([v])))
}

/// Two sequences interleaved (even and odd positions), each from `inner`.
pub fn fit_interleaved(seq: Partial, inner: &dyn Fn(Partial) -> Fit) -> Fit {
    let even: Vec<Option<i64>> = seq.iter().step_by(2).copied().collect();
    let odd: Vec<Option<i64>> = seq.iter().skip(1).step_by(2).copied().collect();
    let (fe, fo) = (inner(&even), inner(&odd));
    let (pe, po) = match (fe, fo) {
        (Fit::Unbounded(w), _) | (_, Fit::Unbounded(w)) => return Fit::Unbounded(w),
        (Fit::Inconsistent, _) | (_, Fit::Inconsistent) => return Fit::Inconsistent,
        (Fit::Predicts(a), Fit::Predicts(b)) => (a, b),
    };
    // Recombine predictions in position order.
    let masked = masked_positions(seq);
    let mut out = BTreeSet::new();
    for e in &pe {
        for o in &po {
            let (mut ei, mut oi) = (e.iter(), o.iter());
            let values: Vec<i64> = masked
                .iter()
                .map(|m| *if m % 2 == 0 { ei.next() } else { oi.next() }.expect("one per mask"))
                .collect();
            out.insert(values);
        }
    }
    Fit::Predicts(out)
}

/// Periodic modular patterns `x[n] = (a·n + b) mod m`, `2 ≤ m ≤ max_modulus`.
pub fn fit_modular(seq: Partial, max_modulus: i64) -> Fit {
    let masked = masked_positions(seq);
    let mut out = BTreeSet::new();
    for m in 2..=max_modulus {
        for a in 0..m {
            for b in 0..m {
                let value = |n: usize| (a * n as i64 + b).rem_euclid(m);
                if seq
                    .iter()
                    .enumerate()
                    .all(|(n, v)| v.is_none_or(|v| v == value(n)))
                {
                    out.insert(masked.iter().map(|&n| value(n)).collect::<Vec<_>>());
                }
            }
        }
    }
    if out.is_empty() {
        Fit::Inconsistent
    } else {
        Fit::Predicts(out)
    }
}

/// Pure repetition with period `p`: `x[n] = x[n − p]`.
pub fn fit_repeat(seq: Partial, period: usize) -> Fit {
    let masked = masked_positions(seq);
    for residue in 0..period {
        let seen: BTreeSet<i64> = seq
            .iter()
            .skip(residue)
            .step_by(period)
            .flatten()
            .copied()
            .collect();
        if seen.len() > 1 {
            return Fit::Inconsistent;
        }
    }
    let mut values = Vec::new();
    for &n in &masked {
        match seq.iter().skip(n % period).step_by(period).flatten().next() {
            Some(&v) => values.push(v),
            None => {
                return Fit::Unbounded(format!(
                    "a period-{period} repetition never shows that position"
                ));
            }
        }
    }
    Fit::Predicts(BTreeSet::from([values]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARITH: StepKinds = StepKinds {
        arithmetic: true,
        div: false,
    };

    use super::partial_of as seq;

    fn single(fit: &Fit) -> Option<Vec<i64>> {
        match fit {
            Fit::Predicts(p) if p.len() == 1 => p.iter().next().cloned(),
            _ => None,
        }
    }

    #[test]
    fn two_to_four_is_ambiguous_once() {
        // 2 → 4 is both +2 and ×2: a period-1 rule seen once cannot tell.
        let s = seq(&[2, 4, 0], &[2]);
        let fit = fit_cyclic(&s, 1, ARITH);
        assert_eq!(fit, Fit::Predicts(BTreeSet::from([vec![6], vec![8]])));
        // Seen twice, it can.
        let s = seq(&[2, 4, 8, 0], &[3]);
        assert_eq!(single(&fit_cyclic(&s, 1, ARITH)), Some(vec![16]));
    }

    #[test]
    fn unseen_step_is_unbounded() {
        // Period 5, only four transitions visible before the masked one: its step was never shown.
        let s = seq(&[1, 2, 3, 4, 5, 0], &[5]);
        assert!(matches!(fit_cyclic(&s, 5, ARITH), Fit::Unbounded(_)));
    }

    #[test]
    fn missing_middle_term() {
        let s = seq(&[4, 7, 10, 13, 16, 19], &[1]);
        assert_eq!(single(&fit_cyclic(&s, 1, ARITH)), Some(vec![7]));
        assert_eq!(single(&fit_polynomial(&s, 1)), Some(vec![7]));
    }

    #[test]
    fn div_steps() {
        let kinds = StepKinds {
            arithmetic: true,
            div: true,
        };
        // 3 ×2 6 ÷4 1 ×2 2 ÷4 1 ...
        let s = seq(&[3, 6, 1, 2, 1, 2, 0], &[6]);
        let fit = fit_cyclic(&s, 2, kinds);
        assert!(matches!(fit, Fit::Predicts(_)), "{fit:?}");
    }

    #[test]
    fn polynomials_and_recurrences() {
        let squares: Vec<i64> = (0..8).map(|n| n * n + 1).collect();
        assert_eq!(
            single(&fit_polynomial(&seq(&squares, &[7]), 3)),
            Some(vec![50])
        );
        assert_eq!(
            fit_polynomial(&seq(&[1, 2, 4, 8, 16, 32, 64, 0], &[7]), 3),
            Fit::Inconsistent
        );
        let fib = [1, 1, 2, 3, 5, 8, 13, 21, 34];
        assert_eq!(single(&fit_recurrence(&seq(&fib, &[8]))), Some(vec![34]));
        assert_eq!(single(&fit_recurrence(&seq(&fib, &[4]))), Some(vec![5]));
        // Geometric data pins only a line of (a, b); the prediction still agrees there… but the
        // pinning rule treats that as not pinned: stated ambiguity, never a wrong label.
        assert!(matches!(
            fit_recurrence(&seq(&[1, 2, 4, 8, 0], &[4])),
            Fit::Unbounded(_)
        ));
    }

    #[test]
    fn modular_and_repeat() {
        let values: Vec<i64> = (0..12).map(|n| (3 * n + 1) % 7).collect();
        let fit = fit_modular(&seq(&values, &[9]), 12);
        assert_eq!(single(&fit), Some(vec![values[9]]));
        assert_eq!(
            single(&fit_repeat(&seq(&values, &[9]), 7)),
            Some(vec![values[9]])
        );
        assert_eq!(fit_repeat(&seq(&values, &[9]), 3), Fit::Inconsistent);
    }

    #[test]
    fn interleaved() {
        let values = [1, 10, 3, 20, 5, 30, 7, 40, 9, 50];
        let inner = |s: Partial| fit_cyclic(s, 1, ARITH);
        assert_eq!(
            single(&fit_interleaved(&seq(&values, &[9]), &inner)),
            Some(vec![50])
        );
    }
}
