//! Z3 for abduction: entailment of atoms from known atoms and premises.
//!
//! A goal is reachable iff `premises ∧ known ∧ ¬goal` is unsat. One warm finite-domain solver per
//! thread is reused: the theory is pushed once per instance and each question is a
//! `check_assumptions` call.

use z3::ast::Bool;
use z3::{SatResult, Solver};

use super::expr::{Expr, Premise};
use crate::z3util::WarmSolver;

const RLIMIT: u32 = 20_000_000;

thread_local! {
    static SOLVER: WarmSolver = WarmSolver::new(|| crate::z3util::finite_domain_solver(RLIMIT));
}

fn term(expr: &Expr, vars: &[Bool]) -> Bool {
    match expr {
        Expr::Atom(a) => vars[*a].clone(),
        Expr::Not(e) => term(e, vars).not(),
        Expr::And(a, b) => Bool::and(&[term(a, vars), term(b, vars)]),
        Expr::Or(a, b) => Bool::or(&[term(a, vars), term(b, vars)]),
    }
}

/// A theory loaded into this thread's solver for the duration of a closure.
pub struct Theory<'a> {
    solver: &'a Solver,
    vars: Vec<Bool>,
}

impl Theory<'_> {
    /// Whether `facts` (atoms assumed true, on top of the theory) entail `goal`.
    pub fn entails(&self, facts: &[usize], goal: usize) -> Result<bool, String> {
        let mut assumptions: Vec<Bool> = facts.iter().map(|&f| self.vars[f].clone()).collect();
        assumptions.push(self.vars[goal].not());
        match self.solver.check_assumptions(&assumptions) {
            SatResult::Unsat => Ok(true),
            SatResult::Sat => Ok(false),
            SatResult::Unknown => Err(self.solver.get_reason_unknown().unwrap_or_default()),
        }
    }

    /// A model of the theory with `facts` in which `goal` is false, if there is one: the one
    /// with as few atoms true as can be, deciding atoms in index order (each false when the rest
    /// still has a model). Canonical — whatever state the warm solver is in, the same theory
    /// gives the same model. An atom false in the last model found needs no check of its own
    /// (that model already shows it can be false), so a check is spent only where the last
    /// witness had the atom true.
    pub fn countermodel(&self, facts: &[usize], goal: usize) -> Result<Option<Vec<bool>>, String> {
        let mut assumptions: Vec<Bool> = facts.iter().map(|&f| self.vars[f].clone()).collect();
        assumptions.push(self.vars[goal].not());
        let Some(mut witness) = self.model_under(&assumptions)? else {
            return Ok(None);
        };
        let mut values = vec![false; self.vars.len()];
        for &f in facts {
            values[f] = true;
        }
        for (atom, var) in self.vars.iter().enumerate() {
            if atom == goal || facts.contains(&atom) {
                continue;
            }
            assumptions.push(var.not());
            if witness[atom] {
                match self.model_under(&assumptions)? {
                    Some(found) => witness = found,
                    None => {
                        assumptions.pop();
                        assumptions.push(var.clone());
                        values[atom] = true;
                    }
                }
            }
        }
        Ok(Some(values))
    }

    /// A model under `assumptions`, if there is one.
    fn model_under(&self, assumptions: &[Bool]) -> Result<Option<Vec<bool>>, String> {
        if !self.satisfiable(assumptions)? {
            return Ok(None);
        }
        let model = self.solver.get_model().ok_or("sat without a model")?;
        Ok(Some(crate::z3util::assignment(&model, &self.vars)))
    }

    fn satisfiable(&self, assumptions: &[Bool]) -> Result<bool, String> {
        match self.solver.check_assumptions(assumptions) {
            SatResult::Unsat => Ok(false),
            SatResult::Sat => Ok(true),
            SatResult::Unknown => Err(self.solver.get_reason_unknown().unwrap_or_default()),
        }
    }

    /// Whether the theory with `facts` has a model at all.
    pub fn consistent(&self, facts: &[usize]) -> Result<bool, String> {
        let assumptions: Vec<Bool> = facts.iter().map(|&f| self.vars[f].clone()).collect();
        match self.solver.check_assumptions(&assumptions) {
            SatResult::Unsat => Ok(false),
            SatResult::Sat => Ok(true),
            SatResult::Unknown => Err(self.solver.get_reason_unknown().unwrap_or_default()),
        }
    }
}

/// Load `premises ∧ known` over `atoms` atoms and run `f` on it.
pub fn with_theory<T>(
    atoms: usize,
    premises: &[Premise],
    known: &[usize],
    f: impl FnOnce(&Theory) -> T,
) -> T {
    SOLVER.with(|warm| {
        warm.scoped(|solver| {
            let vars: Vec<Bool> = (0..atoms)
                .map(|i| Bool::new_const(format!("a{i}")))
                .collect();
            for p in premises {
                solver.assert(term(&p.body, &vars).implies(&vars[p.head]));
            }
            for &k in known {
                solver.assert(&vars[k]);
            }
            let theory = Theory { solver, vars };
            f(&theory)
        })
    })
}
