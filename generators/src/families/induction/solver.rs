//! Z3 for induction: within the cyclic step rules of a level, no rule reproduces the visible
//! terms with different hidden values.
//!
//! Each slot of a period-p rule gets an operator selector and a parameter; every visible
//! transition constrains its slot; hidden terms are integer unknowns; and we ask for a model in
//! which some hidden term differs from the label. Unsat for every period proves the label is the
//! only answer the class allows — independently of the enumeration that generated it.

use z3::ast::{Bool, Int};
use z3::{SatResult, Solver};

use super::InductionInstance;
use crate::family::CertifyError;
use crate::z3util::WarmSolver;

const RLIMIT: u32 = 20_000_000;

thread_local! {
    /// One solver per thread, reused with push/pop and recycled (see [`WarmSolver`]): creating
    /// Z3's default solver costs ~5 ms, a push/check/pop round on a warm one ~30 µs.
    static SOLVER: WarmSolver = WarmSolver::new(|| crate::z3util::default_solver(RLIMIT));
}

/// The largest cyclic period the level's hypothesis classes include, and whether `÷` is in them.
fn cyclic_class(level: u8) -> (usize, bool) {
    match level {
        1..=5 => (super::max_cycle(level), true),
        _ => (3, false),
    }
}

fn transition(a: &Int, b: &Int, op: &Int, r: &Int, with_div: bool) -> Bool {
    let mut options = vec![
        Bool::and(&[op.eq(Int::from_i64(0)), r.ge(Int::from_i64(1)), b.eq(a + r)]),
        Bool::and(&[op.eq(Int::from_i64(1)), r.ge(Int::from_i64(1)), b.eq(a - r)]),
        Bool::and(&[op.eq(Int::from_i64(2)), r.ge(Int::from_i64(2)), b.eq(a * r)]),
    ];
    if with_div {
        let quotient = a.div(r);
        let floored = quotient
            .lt(Int::from_i64(1))
            .ite(&Int::from_i64(1), &quotient);
        options.push(Bool::and(&[
            op.eq(Int::from_i64(3)),
            r.ge(Int::from_i64(2)),
            b.eq(floored),
        ]));
    }
    Bool::or(&options)
}

/// Prove with Z3 that no cyclic rule of the level's classes gives other hidden values.
pub fn certify_cyclic(instance: &InductionInstance, level: u8) -> Result<(), CertifyError> {
    let (max_period, with_div) = cyclic_class(level);
    let answers = instance.answers();
    SOLVER.with(|warm| {
        (1..=max_period).try_for_each(|period| {
            warm.scoped(|solver| check_period(solver, instance, &answers, period, with_div))
        })
    })
}

fn check_period(
    solver: &Solver,
    instance: &InductionInstance,
    answers: &[i64],
    period: usize,
    with_div: bool,
) -> Result<(), CertifyError> {
    {
        let terms: Vec<Int> = instance
            .partial()
            .iter()
            .enumerate()
            .map(|(i, v)| v.map_or_else(|| Int::new_const(format!("x{i}")), Int::from_i64))
            .collect();
        let ops: Vec<Int> = (0..period)
            .map(|s| Int::new_const(format!("op{s}")))
            .collect();
        let params: Vec<Int> = (0..period)
            .map(|s| Int::new_const(format!("r{s}")))
            .collect();
        for t in 1..terms.len() {
            let slot = (t - 1) % period;
            solver.assert(transition(
                &terms[t - 1],
                &terms[t],
                &ops[slot],
                &params[slot],
                with_div,
            ));
        }
        let differs: Vec<Bool> = instance
            .masked
            .iter()
            .zip(answers)
            .map(|(&m, &v)| terms[m].eq(Int::from_i64(v)).not())
            .collect();
        solver.assert(Bool::or(&differs));
        match solver.check() {
            SatResult::Unsat => Ok(()),
            SatResult::Sat => {
                let model = solver
                    .get_model()
                    .ok_or_else(|| CertifyError::Unknown("sat without model".into()))?;
                let other: Vec<String> = instance
                    .masked
                    .iter()
                    .map(|&m| {
                        model
                            .eval(&terms[m], true)
                            .and_then(|v| v.as_i64())
                            .map_or("?".into(), |v| v.to_string())
                    })
                    .collect();
                Err(CertifyError::NotUnique(format!(
                    "a period-{period} rule gives {}",
                    other.join(", ")
                )))
            }
            SatResult::Unknown => Err(CertifyError::Unknown(
                solver.get_reason_unknown().unwrap_or_default(),
            )),
        }
    }
}
