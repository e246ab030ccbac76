//! Deduction's audit: the true/false balance, the unsatisfiable share, and the all-true /
//! all-false / constant-answer shortcuts against the 2⁻ⁿ chance of guessing an assignment.

use super::DeductionInstance;
use crate::audit::{AnswerSpread, Findings, Tally, ratio};

/// Deduction statistics of one level.
#[derive(Default)]
pub struct DeductionTally {
    /// Variables of the first instance (chance of guessing an assignment is 2⁻ⁿ).
    variables: Option<usize>,
    items: u64,
    solved: u64,
    true_values: u64,
    values: u64,
    formulas: u64,
    all_true: u64,
    all_false: u64,
}

impl Tally for DeductionTally {
    type Instance = DeductionInstance;

    fn add(&mut self, item: &DeductionInstance) {
        self.variables.get_or_insert(item.variables.len());
        self.items += 1;
        self.formulas += item.formulas.len() as u64;
        if let Some(solution) = &item.solution {
            self.solved += 1;
            self.true_values += solution.iter().filter(|v| **v).count() as u64;
            self.values += solution.len() as u64;
            self.all_true += u64::from(solution.iter().all(|v| *v));
            self.all_false += u64::from(solution.iter().all(|v| !*v));
        }
    }

    fn finish(&self, answers: AnswerSpread) -> Findings {
        let mut out = Findings::default();
        let total = self.items;
        out.stat(
            "true_fraction",
            self.true_values as f64 / self.values.max(1) as f64,
        );
        out.stat("unsat_fraction", ratio((total - self.solved) as f64, total));
        out.stat("formulas_mean", ratio(self.formulas as f64, total));
        let chance = 0.5f64.powi(self.variables.unwrap_or(1) as i32);
        out.shortcut("all true", self.all_true, total, chance);
        out.shortcut("all false", self.all_false, total, chance);
        out.shortcut(
            "constant answer",
            answers.most_common,
            answers.total,
            chance,
        );
        out
    }
}
