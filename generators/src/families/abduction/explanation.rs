//! The explanation question (abduction proper): enumerate every minimal explanation, generate,
//! judge, certify.

use std::collections::{BTreeSet, HashMap};

use super::build::{Shape, finish, new_builder};
use super::expr::{self, Expr, Premise};
use super::{AbductionInstance, Mode, index_of, indices_of, solver};
use crate::family::{CertifyError, Verdict};
use crate::rng::Draw;

/// Every minimal subset of `hypotheses` that entails `observation` (subsets in size order, so a
/// subset is minimal iff it contains no smaller one already found: entailment is monotone).
fn minimal_explanations(
    theory: &impl solver::Entailment,
    hypotheses: &[usize],
    observation: usize,
) -> Option<Vec<Vec<usize>>> {
    let m = hypotheses.len();
    let mut masks: Vec<u32> = (0..1u32 << m).collect();
    masks.sort_by_key(|s| (s.count_ones(), *s));
    let mut minimal: Vec<u32> = Vec::new();
    for mask in masks {
        if minimal.iter().any(|&found| found & !mask == 0) {
            continue;
        }
        let facts: Vec<usize> = (0..m)
            .filter(|i| mask >> i & 1 == 1)
            .map(|i| hypotheses[i])
            .collect();
        if theory.entails(&facts, observation).ok()? {
            minimal.push(mask);
        }
    }
    Some(
        minimal
            .iter()
            .map(|&mask| {
                (0..m)
                    .filter(|i| mask >> i & 1 == 1)
                    .map(|i| hypotheses[i])
                    .collect()
            })
            .collect(),
    )
}

/// An explanation instance of `shape`, or `None` when the draws are rejected.
pub(super) fn generate(shape: Shape, draw: &mut Draw) -> Option<AbductionInstance> {
    let mut b = new_builder(shape, draw)?;
    let observation = b.fresh()?;
    let count = b.draw.range(3, 5) as usize;
    let hypotheses: Vec<usize> = (0..count).map(|_| b.fresh()).collect::<Option<_>>()?;
    // Two or three derivations of the observation, each needing one or two hypotheses at the
    // bottom of a chain; some hypotheses end up irrelevant.
    let routes = b.draw.range(1, 3);
    for _ in 0..routes {
        let depth = b.draw.range(shape.depth.0.min(3), shape.depth.0.max(2)) as usize;
        let mut head = observation;
        for _ in 0..depth.saturating_sub(1) {
            let below = b.fresh()?;
            let body = b.entailed_body(below, true)?;
            b.premises.push(Premise { body, head });
            head = below;
        }
        let h1 = Expr::Atom(b.pick(&hypotheses));
        let h2 = Expr::Atom(b.pick(&hypotheses));
        let k = Expr::Atom(b.pick(&b.known.clone()));
        let body = match b.draw.below(3) {
            0 => Expr::and(h1, k),
            1 => Expr::and(h1, h2),
            _ => Expr::or(h1, Expr::and(h2, k)),
        };
        b.premises.push(Premise { body, head });
    }
    b.protected.extend(&hypotheses);
    b.protected.push(observation);
    b.distractors()?;
    let (premises, known) = finish(&mut b);
    let explanations = solver::with_theory(b.names.len(), &b.premises, &b.known, |theory| {
        if !theory.consistent(&hypotheses).ok()? || theory.entails(&[], observation).ok()? {
            return None;
        }
        minimal_explanations(theory, &hypotheses, observation)
    })?;
    if explanations.is_empty() {
        return None;
    }
    let name_set = |set: &Vec<usize>| {
        let mut names: Vec<String> = set.iter().map(|&h| b.names[h].clone()).collect();
        names.sort();
        names
    };
    let mut explanations: Vec<Vec<String>> = explanations.iter().map(name_set).collect();
    explanations.sort();
    Some(AbductionInstance {
        mode: Mode::Explanation,
        premises,
        known,
        goals: Vec::new(),
        reachable: Vec::new(),
        observation: Some(b.names[observation].clone()),
        hypotheses: hypotheses.iter().map(|&h| b.names[h].clone()).collect(),
        explanations,
    })
}

pub(super) fn judge(instance: &AbductionInstance, text: &str) -> Verdict {
    // Hypotheses by lower-case name, so reading the answer is one hash per token.
    let candidates: HashMap<String, &str> = instance
        .hypotheses
        .iter()
        .map(|h| (h.to_ascii_lowercase(), h.as_str()))
        .collect();
    let mut chosen: BTreeSet<&str> = BTreeSet::new();
    for token in text.split(|c: char| c == ',' || c.is_whitespace() || "{}[]().`*".contains(c)) {
        if token.is_empty() || token.eq_ignore_ascii_case("and") {
            continue;
        }
        let Some(&name) = candidates.get(&token.to_ascii_lowercase()) else {
            return Verdict::Unparseable(format!(
                "`{}` is not a candidate hypothesis",
                token.chars().take(40).collect::<String>()
            ));
        };
        if !chosen.insert(name) {
            return Verdict::Unparseable(format!("`{name}` named twice"));
        }
    }
    if chosen.is_empty() {
        return Verdict::Unparseable("no hypothesis named".into());
    }
    let is_chosen = |e: &Vec<String>| e.iter().all(|h| chosen.contains(h.as_str()));
    if instance
        .explanations
        .iter()
        .any(|e| e.len() == chosen.len() && is_chosen(e))
    {
        return Verdict::Correct;
    }
    Verdict::Wrong(if instance.explanations.iter().any(is_chosen) {
        "sufficient but not minimal".into()
    } else {
        "does not entail the observation".into()
    })
}

pub(super) fn certify(
    instance: &AbductionInstance,
    atoms: &expr::Atoms,
    premises: &[Premise],
    known: &[usize],
) -> Result<(), CertifyError> {
    let names = atoms.names();
    let observation = index_of(atoms, instance.observation.as_deref().unwrap_or_default())?;
    let hypotheses = indices_of(atoms, &instance.hypotheses)?;
    let found = solver::with_z3_theory(names.len(), premises, known, |theory| {
        minimal_explanations(theory, &hypotheses, observation)
    })
    .ok_or_else(|| CertifyError::Unknown("Z3 gave up".into()))?;
    let mut found: Vec<Vec<String>> = found
        .iter()
        .map(|set| {
            let mut n: Vec<String> = set.iter().map(|&h| names[h].clone()).collect();
            n.sort();
            n
        })
        .collect();
    found.sort();
    if found == instance.explanations && !found.is_empty() {
        Ok(())
    } else {
        Err(CertifyError::NotASolution(format!(
            "minimal explanations are {found:?}"
        )))
    }
}
