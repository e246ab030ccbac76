//! The reachability question (the paper's task): generate, judge, certify.

use super::build::{Shape, finish, new_builder};
use super::expr::{self, Premise};
use super::{AbductionInstance, Mode, indices_of, solver};
use crate::answer;
use crate::family::{CertifyError, Verdict};
use crate::rng::Draw;

/// A reachability instance of `shape`, or `None` when the draws are rejected.
pub(super) fn generate(shape: Shape, draw: &mut Draw) -> Option<AbductionInstance> {
    let mut b = new_builder(shape, draw)?;
    let mut goals = Vec::new();
    for _ in 0..shape.goals {
        let goal = b.fresh()?;
        b.protected.push(goal);
        let depth = b.draw.range(shape.depth.0, shape.depth.1) as usize;
        let broken = b.draw.chance(0.5);
        b.chain(goal, depth, broken)?;
        goals.push(goal);
    }
    b.distractors()?;
    let (premises, known) = finish(&mut b);
    let reachable = solver::with_theory(b.names.len(), &b.premises, &b.known, |theory| {
        if !theory.consistent(&[]).ok()? {
            return None;
        }
        goals
            .iter()
            .map(|&g| theory.entails(&[], g).ok())
            .collect::<Option<Vec<bool>>>()
    })?;
    Some(AbductionInstance {
        mode: Mode::Reachability,
        premises,
        known,
        goals: goals.iter().map(|&g| b.names[g].clone()).collect(),
        reachable,
        observation: None,
        hypotheses: Vec::new(),
        explanations: Vec::new(),
    })
}

pub(super) fn judge(instance: &AbductionInstance, text: &str) -> Verdict {
    const WORDS: &[(&str, bool)] = &[("reachable", true), ("unreachable", false)];
    let names: Vec<&str> = instance.goals.iter().map(String::as_str).collect();
    match answer::statements(text, &names, WORDS) {
        Err(e) => Verdict::Unparseable(e),
        Ok(values) => {
            let wrong: Vec<&str> = names
                .iter()
                .zip(values.iter().zip(&instance.reachable))
                .filter(|(_, (got, want))| got != want)
                .map(|(n, _)| *n)
                .collect();
            if wrong.is_empty() {
                Verdict::Correct
            } else {
                Verdict::Wrong(format!("wrong judgement for {}", wrong.join(", ")))
            }
        }
    }
}

pub(super) fn certify(
    instance: &AbductionInstance,
    atoms: &expr::Atoms,
    premises: &[Premise],
    known: &[usize],
) -> Result<(), CertifyError> {
    let names = atoms.names();
    let goals = indices_of(atoms, &instance.goals)?;
    solver::with_z3_theory(names.len(), premises, known, |theory| {
        if !theory.consistent(&[]).map_err(CertifyError::Unknown)? {
            return Err(CertifyError::Malformed(
                "the premises and known atoms have no model".into(),
            ));
        }
        for ((&g, name), &claimed) in goals.iter().zip(&instance.goals).zip(&instance.reachable) {
            let actual = theory.entails(&[], g).map_err(CertifyError::Unknown)?;
            if actual != claimed {
                return Err(CertifyError::NotASolution(format!(
                    "{name} is {}reachable",
                    if actual { "" } else { "un" }
                )));
            }
        }
        Ok(())
    })
}
