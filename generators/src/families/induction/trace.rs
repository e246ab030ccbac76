//! Reasoning traces for induction: the step between each pair of neighbouring shown terms (the
//! difference, and the factor where one is exact), the rule read off them, then every term
//! derived from the rule in order — the shown ones as checks, the hidden ones as the answer —
//! and the checker, which recomputes the steps line, parses the rule line back, re-derives every
//! term and compares each line.
//!
//! ```text
//! Steps: + 3, + 5 or × 2, + 3.
//! Rule: each term is the previous one with + 3, × 2 applied in turn.
//! x0 = 2 (shown: the start)
//! x1 = x0 + 3 = 5 (shown)
//! x2 = x1 × 2 = 10 (shown)
//! x3 = x2 + 3 = 13 (shown)
//! x4 = x3 × 2 = 26 (hidden)
//! So the hidden term is 26.
//! ```
//!
//! The steps come first so that the rule is read off work already on the page (each step a
//! subtraction, or a division, of two neighbouring terms) rather than guessed in one line; a
//! pair with a hidden term is `?`, so the list stays aligned with the positions of a cycle (the
//! list ends at the last shown term).
//!
//! The rule is fitted to the complete stored sequence, so it reproduces the shown terms and
//! gives the hidden ones; the dataset's determinacy check (`determinacy.rs`) is what makes every
//! other rule of the taught classes that fits the shown terms agree with it.

use super::InductionInstance;
use super::rules::{Step, StepKinds, steps_between};

/// Longest cycle tried.
const MAX_PERIOD: usize = 5;
/// Largest |coefficient| tried for a recurrence.
const MAX_RECURRENCE_COEFFICIENT: i64 = 6;
/// Largest modulus tried.
const MAX_MODULUS: i64 = 24;

/// A hidden rule, as the trace states it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Rule {
    /// `x[n] = steps[(n − 1) mod k](x[n − 1])`.
    Cycle(Vec<Step>),
    /// `x[n] = Σ coefficient[p]·n^p` (lowest power first).
    Polynomial(Vec<i64>),
    /// `x[n] = a·x[n − 1] + b·x[n − 2]`.
    Recurrence(i64, i64),
    /// Even positions follow one step, odd positions another (each from its own start).
    Interleaved(Step, Step),
    /// `x[n] = (a·n + b) mod m`.
    Modular(i64, i64, i64),
}

fn step_text(step: Step) -> String {
    match step {
        Step::Add(r) => format!("+ {r}"),
        Step::Sub(r) => format!("− {r}"),
        Step::Mul(r) => format!("× {r}"),
        // Never stated: a fit turns it into × 2, which maps 0 to 0 as any factor does.
        Step::MulAny => "× 2".into(),
        Step::Div(d) => format!("÷ {d}"),
    }
}

fn parse_step(text: &str) -> Option<Step> {
    let (op, r) = text.split_once(' ')?;
    let r: i64 = r.parse().ok()?;
    match op {
        "+" if r > 0 => Some(Step::Add(r)),
        "−" if r > 0 => Some(Step::Sub(r)),
        "×" if r >= 2 => Some(Step::Mul(r)),
        "÷" if r >= 2 => Some(Step::Div(r)),
        _ => None,
    }
}

fn signed(v: i64) -> String {
    if v < 0 {
        format!("({v})")
    } else {
        v.to_string()
    }
}

impl Rule {
    /// Terms given rather than derived.
    fn starts(&self) -> usize {
        match self {
            Rule::Cycle(_) => 1,
            Rule::Recurrence(..) | Rule::Interleaved(..) => 2,
            Rule::Polynomial(_) | Rule::Modular(..) => 0,
        }
    }

    fn render(&self) -> String {
        match self {
            Rule::Cycle(steps) if steps.len() == 1 => {
                format!("each term is the previous one {}.", step_text(steps[0]))
            }
            Rule::Cycle(steps) => {
                let parts: Vec<String> = steps.iter().map(|s| step_text(*s)).collect();
                format!(
                    "each term is the previous one with {} applied in turn.",
                    parts.join(", ")
                )
            }
            Rule::Polynomial(c) => {
                let terms: Vec<String> = (0..c.len())
                    .map(|p| format!("{}·n^{p}", signed(c[p])))
                    .collect();
                format!("x[n] = {} for n from 0.", terms.join(" + "))
            }
            Rule::Recurrence(a, b) => {
                format!("x[n] = {}·x[n−1] + {}·x[n−2].", signed(*a), signed(*b))
            }
            Rule::Interleaved(even, odd) => format!(
                "the even positions go {} each time, the odd positions {} each time.",
                step_text(*even),
                step_text(*odd)
            ),
            Rule::Modular(a, b, m) => format!("x[n] = ({a}·n + {b}) mod {m} for n from 0."),
        }
    }

    /// Read back what [`Rule::render`] wrote.
    fn parse(text: &str) -> Option<Rule> {
        if let Some(rest) = text.strip_prefix("each term is the previous one with ") {
            let list = rest.strip_suffix(" applied in turn.")?;
            let steps: Option<Vec<Step>> = list.split(", ").map(parse_step).collect();
            let steps = steps?;
            return (2..=MAX_PERIOD)
                .contains(&steps.len())
                .then_some(Rule::Cycle(steps));
        }
        if let Some(rest) = text.strip_prefix("each term is the previous one ") {
            return Some(Rule::Cycle(vec![parse_step(rest.strip_suffix('.')?)?]));
        }
        if let Some(rest) = text.strip_prefix("the even positions go ") {
            let (even, odd) = rest
                .strip_suffix(" each time.")?
                .split_once(" each time, the odd positions ")?;
            return Some(Rule::Interleaved(parse_step(even)?, parse_step(odd)?));
        }
        let rest = text.strip_prefix("x[n] = ")?;
        if let Some(modular) = parse_modular(rest) {
            return Some(modular);
        }
        if let Some(poly) = rest.strip_suffix(" for n from 0.") {
            let mut coefficients = Vec::new();
            for (p, term) in poly.split(" + ").enumerate() {
                let c = term.strip_suffix(&format!("·n^{p}"))?;
                coefficients.push(unsigned(c)?);
            }
            return (coefficients.len() <= 4).then_some(Rule::Polynomial(coefficients));
        }
        let (a, b) = rest.strip_suffix("·x[n−2].")?.split_once("·x[n−1] + ")?;
        Some(Rule::Recurrence(unsigned(a)?, unsigned(b)?))
    }

    /// Term `n` from the terms before it (`x[..n]`), with the working shown: `(expression,
    /// value)`. `None` on overflow or for a start term.
    fn term(&self, n: usize, x: &[i64]) -> Option<(String, i64)> {
        if n < self.starts() {
            return None;
        }
        let apply = |step: Step, k: usize| -> Option<(String, i64)> {
            let v = step.apply(x[k])?;
            Some((format!("x{k} {}", step_text(step)), v))
        };
        match self {
            Rule::Cycle(steps) => apply(steps[(n - 1) % steps.len()], n - 1),
            Rule::Interleaved(even, odd) => {
                apply(if n.is_multiple_of(2) { *even } else { *odd }, n - 2)
            }
            Rule::Recurrence(a, b) => {
                let v = a
                    .checked_mul(x[n - 1])?
                    .checked_add(b.checked_mul(x[n - 2])?)?;
                Some((
                    format!("{}·x{} + {}·x{}", signed(*a), n - 1, signed(*b), n - 2),
                    v,
                ))
            }
            Rule::Polynomial(c) => {
                let n_i = i64::try_from(n).ok()?;
                let v = c
                    .iter()
                    .rev()
                    .try_fold(0i64, |acc, &k| acc.checked_mul(n_i)?.checked_add(k))?;
                let terms: Vec<String> = (0..c.len())
                    .map(|p| format!("{}·{n}^{p}", signed(c[p])))
                    .collect();
                Some((terms.join(" + "), v))
            }
            Rule::Modular(a, b, m) => {
                let n_i = i64::try_from(n).ok()?;
                let v = a.checked_mul(n_i)?.checked_add(*b)?.rem_euclid(*m);
                Some((format!("({a}·{n} + {b}) mod {m}"), v))
            }
        }
    }

    /// Whether the rule reproduces every term of `sequence`.
    fn reproduces(&self, sequence: &[i64]) -> bool {
        (self.starts()..sequence.len()).all(|n| {
            self.term(n, sequence)
                .is_some_and(|(_, v)| v == sequence[n])
        })
    }
}

/// `(a·n + b) mod m for n from 0.`
fn parse_modular(text: &str) -> Option<Rule> {
    let (inner, m) = text
        .strip_prefix('(')?
        .strip_suffix(" for n from 0.")?
        .split_once(") mod ")?;
    let (a, b) = inner.split_once("·n + ")?;
    let (a, b, m) = (a.parse().ok()?, b.parse().ok()?, m.parse().ok()?);
    (2..=MAX_MODULUS)
        .contains(&m)
        .then_some(Rule::Modular(a, b, m))
}

fn unsigned(text: &str) -> Option<i64> {
    text.strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .unwrap_or(text)
        .parse()
        .ok()
}

/// The one step of the kinds that maps every pair `(x[i], x[i + 1])` given, if any.
fn common_step(pairs: impl Iterator<Item = (i64, i64)> + Clone) -> Option<Step> {
    let kinds = StepKinds {
        arithmetic: true,
        div: true,
    };
    // A 0 → 0 pair fits every factor: take the candidates from a pair that pins the step.
    let (a, b) = pairs
        .clone()
        .find(|&p| p != (0, 0))
        .or_else(|| pairs.clone().next())?;
    // Too many divisors map a large value to 1 to list them; the arithmetic steps still fit.
    let candidates = steps_between(a, b, kinds).or_else(|| {
        let arithmetic = StepKinds {
            arithmetic: true,
            div: false,
        };
        steps_between(a, b, arithmetic)
    })?;
    candidates
        .into_iter()
        .map(|s| if s == Step::MulAny { Step::Mul(2) } else { s })
        .find(|s| pairs.clone().all(|(a, b)| s.apply(a) == Some(b)))
}

fn fit_cycle(seq: &[i64], period: usize) -> Option<Rule> {
    if seq.len() < period + 1 {
        return None;
    }
    let steps: Option<Vec<Step>> = (0..period)
        .map(|p| {
            common_step(
                (p..seq.len() - 1)
                    .step_by(period)
                    .map(|i| (seq[i], seq[i + 1])),
            )
        })
        .collect();
    Some(Rule::Cycle(steps?)).filter(|r| r.reproduces(seq))
}

fn fit_interleaved(seq: &[i64]) -> Option<Rule> {
    let half = |start: usize| {
        common_step(
            (start..seq.len().saturating_sub(2))
                .step_by(2)
                .map(|i| (seq[i], seq[i + 2])),
        )
    };
    Some(Rule::Interleaved(half(0)?, half(1)?)).filter(|r| r.reproduces(seq))
}

fn fit_recurrence(seq: &[i64]) -> Option<Rule> {
    let range = -MAX_RECURRENCE_COEFFICIENT..=MAX_RECURRENCE_COEFFICIENT;
    range
        .clone()
        .flat_map(|a| range.clone().map(move |b| Rule::Recurrence(a, b)))
        .find(|r| seq.len() > 3 && r.reproduces(seq))
}

fn fit_modular(seq: &[i64]) -> Option<Rule> {
    (2..=MAX_MODULUS)
        .flat_map(|m| (0..m).flat_map(move |a| (0..m).map(move |b| Rule::Modular(a, b, m))))
        .find(|r| r.reproduces(seq))
}

/// The polynomial of degree ≤ 3 through the first four terms (Newton's forward differences,
/// turned into integer power coefficients when they are integers), if it reproduces them all.
fn fit_polynomial(seq: &[i64]) -> Option<Rule> {
    if seq.len() < 5 {
        return None;
    }
    let x: Vec<i128> = seq[..4].iter().map(|&v| i128::from(v)).collect();
    let d1 = x[1] - x[0];
    let d2 = x[2] - 2 * x[1] + x[0];
    let d3 = x[3] - 3 * x[2] + 3 * x[1] - x[0];
    // x[n] = x0 + d1·n + d2·n(n−1)/2 + d3·n(n−1)(n−2)/6, times 6:
    let six = [6 * x[0], 6 * d1 - 3 * d2 + 2 * d3, 3 * d2 - 3 * d3, d3];
    let coefficients: Option<Vec<i64>> = six
        .iter()
        .map(|c| (c % 6 == 0).then(|| i64::try_from(c / 6).ok()).flatten())
        .collect();
    let mut coefficients = coefficients?;
    while coefficients.len() > 1 && coefficients.last() == Some(&0) {
        coefficients.pop();
    }
    Some(Rule::Polynomial(coefficients)).filter(|r| r.reproduces(seq))
}

/// The rule the trace states: the first that reproduces the whole sequence, the item's own
/// band's classes first.
fn fit(instance: &InductionInstance) -> Option<Rule> {
    let seq = &instance.sequence;
    let cycles = || (1..=MAX_PERIOD).find_map(|k| fit_cycle(seq, k));
    let extended = || {
        fit_polynomial(seq)
            .or_else(|| fit_recurrence(seq))
            .or_else(|| fit_interleaved(seq))
            .or_else(|| fit_modular(seq))
    };
    if instance.checked_level >= 6 {
        extended().or_else(cycles)
    } else {
        cycles().or_else(extended)
    }
}

fn conclusion(values: &[i64]) -> String {
    let list: Vec<String> = values.iter().map(i64::to_string).collect();
    if values.len() == 1 {
        format!("So the hidden term is {}.", list[0])
    } else {
        format!("So the hidden terms are {}.", list.join(", "))
    }
}

/// The lines that follow the rule line: every term in order, and the conclusion. `x` holds the
/// shown terms (`None` hidden); the hidden ones come from the rule. `Err` names the first term
/// the rule does not give or that contradicts a shown one.
fn derive(rule: &Rule, shown: &[Option<i64>]) -> Result<Vec<String>, String> {
    let mut x = Vec::with_capacity(shown.len());
    let mut lines = Vec::with_capacity(shown.len() + 1);
    let mut hidden = Vec::new();
    for (n, &value) in shown.iter().enumerate() {
        let line = match (rule.term(n, &x), value) {
            (None, Some(v)) if n < rule.starts() => {
                x.push(v);
                format!("x{n} = {v} (shown: the start)")
            }
            (None, None) if n < rule.starts() => {
                return Err(format!("x{n} is hidden but the rule starts from it"));
            }
            (None, _) => return Err(format!("the rule overflows at x{n}")),
            (Some((_, got)), Some(v)) if got != v => {
                return Err(format!(
                    "the rule gives x{n} = {got}, the sequence shows {v}"
                ));
            }
            (Some((how, got)), shown_value) => {
                x.push(got);
                if shown_value.is_none() {
                    hidden.push(got);
                }
                let tag = if shown_value.is_some() {
                    "shown"
                } else {
                    "hidden"
                };
                format!("x{n} = {how} = {got} ({tag})")
            }
        };
        lines.push(line);
    }
    lines.push(conclusion(&hidden));
    Ok(lines)
}

/// The trace of `instance`; empty when no rule of the known classes reproduces its sequence (a
/// label the generator did not make).
pub(super) fn trace(instance: &InductionInstance) -> String {
    let Some(rule) = fit(instance) else {
        return String::new();
    };
    let shown = instance.partial();
    match derive(&rule, &shown) {
        Ok(lines) => format!(
            "{}\nRule: {}\n{}",
            steps_line(&shown),
            rule.render(),
            lines.join("\n")
        ),
        Err(_) => String::new(),
    }
}

/// The step from `a` to the next term `b`, as the steps line states it: the difference, and the
/// factor when `b` is an exact multiple (≥ 2) of `a`. Exact in i128, so no pair overflows.
fn observed_step(a: i64, b: i64) -> String {
    let (a, b) = (i128::from(a), i128::from(b));
    let difference = b - a;
    let mut text = if difference < 0 {
        format!("− {}", -difference)
    } else {
        format!("+ {difference}")
    };
    if a != 0 && b % a == 0 && b / a >= 2 {
        text.push_str(&format!(" or × {}", b / a));
    }
    text
}

/// `Steps: …` over neighbouring terms, `?` where either is hidden — except after the last shown
/// term, where a `?` would say nothing (no later step's position depends on it).
fn steps_line(shown: &[Option<i64>]) -> String {
    let end = shown
        .iter()
        .rposition(Option::is_some)
        .map_or(0, |last| last + 1);
    let steps: Vec<String> = shown[..end]
        .windows(2)
        .map(|pair| match (pair[0], pair[1]) {
            (Some(a), Some(b)) => observed_step(a, b),
            _ => "?".into(),
        })
        .collect();
    format!("Steps: {}.", steps.join(", "))
}

/// Check `text` against the instance's shown terms: the steps line is the shown terms' steps,
/// the rule line parses, every term line is the rule's derivation of that term (equal to the
/// shown value where one is shown), and the conclusion gives the reference answer.
pub(super) fn check(instance: &InductionInstance, text: &str) -> Result<(), String> {
    let shown = instance.partial();
    let mut lines = text.lines();
    let steps = steps_line(&shown);
    if lines.next() != Some(steps.as_str()) {
        return Err(format!("line 1: expected {steps:?}"));
    }
    let rule_text = lines
        .next()
        .and_then(|l| l.strip_prefix("Rule: "))
        .ok_or("line 2: does not start with \"Rule: \"")?;
    let rule =
        Rule::parse(rule_text).ok_or_else(|| format!("line 2: not a rule: {rule_text:?}"))?;
    let want = derive(&rule, &shown).map_err(|e| format!("line 2: {e}"))?;
    let got: Vec<&str> = lines.collect();
    if let Some(i) = (0..want.len().max(got.len()))
        .find(|&i| got.get(i).copied() != want.get(i).map(String::as_str))
    {
        return Err(format!(
            "line {}: expected {:?}",
            i + 3,
            want.get(i).map_or("the end", String::as_str)
        ));
    }
    if want.last() != Some(&conclusion(&instance.answers())) {
        return Err(format!(
            "line {}: the rule's hidden terms are not the reference answer",
            got.len() + 2
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(sequence: Vec<i64>, masked: Vec<usize>, level: u8) -> InductionInstance {
        InductionInstance {
            sequence,
            masked,
            rule: String::new(),
            missing_term_header: false,
            checked_level: level,
        }
    }

    /// A `0 → 0` step fits every factor, so the factor comes from another period (found as
    /// 20 of 1,050 level 3–5 items without a trace before), and a large value falling to 1 is a
    /// subtraction even though too many divisors also map it there.
    #[test]
    fn steps_pinned_by_other_periods_and_large_drops_to_one() {
        for item in [
            instance(
                vec![2, 4, 0, 0, 0, -4, -16, -32, -36, -144, -288],
                vec![10],
                3,
            ),
            instance(vec![100, 1, 100, 1, 100, 1], vec![5], 2),
        ] {
            let text = trace(&item);
            assert!(!text.is_empty(), "{:?}", item.sequence);
            assert_eq!(check(&item, &text), Ok(()), "{text}");
        }
        let drop = trace(&instance(vec![100, 1, 100, 1, 100, 1], vec![5], 2));
        assert!(
            drop.starts_with(
                "Steps: − 99, + 99 or × 100, − 99, + 99 or × 100.\n\
                 Rule: each term is the previous one with − 99, + 99 "
            ),
            "{drop}"
        );
    }

    /// The steps line states every neighbouring pair's difference (and exact factor, negative
    /// terms included), `?` around a hidden term, and a trace whose steps line is wrong or
    /// missing is refused even when the rest derives the answer.
    #[test]
    fn the_steps_line_is_each_pair_s_step_and_is_checked() {
        let item = instance(vec![-3, -6, -4, -8, -6, -12], vec![2], 3);
        let text = trace(&item);
        let (steps, rest) = text.split_once('\n').unwrap();
        assert_eq!(steps, "Steps: − 3 or × 2, ?, ?, + 2, − 6 or × 2.");
        assert_eq!(check(&item, &text), Ok(()), "{text}");
        let wrong = text.replacen("+ 2,", "+ 3,", 1);
        assert_eq!(
            check(&item, &wrong),
            Err(format!("line 1: expected {steps:?}"))
        );
        assert!(
            check(&item, rest).is_err(),
            "a trace without its steps passed"
        );
    }
}
