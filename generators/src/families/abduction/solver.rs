//! Entailment for abduction: of atoms from known atoms and premises.
//!
//! A goal is reachable iff `premises ∧ known ∧ ¬goal` is unsat. Generation asks on the incremental
//! SAT core ([`Theory`], `crate::sat`): the theory is loaded once per instance (Tseitin-encoded)
//! and each question is a check under assumptions. Z3's version ([`Z3Theory`], one warm
//! finite-domain solver per thread, the theory pushed once and each question a
//! `check_assumptions` call) certifies, and is the reference tests hold the SAT core to.

use std::cell::RefCell;

use z3::ast::Bool;
use z3::{SatResult, Solver};

use super::expr::{Expr, Premise};
use crate::sat::{Batsat, SatCore, SatLit, Tseitin};
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

/// An assumption: atom `.0` has the value `.1`.
type Assumption = (usize, bool);

/// The canonical countermodel both backends compute (see [`Theory::countermodel`]), given the
/// backend's `model_under(assumptions)`: atoms decided in index order, each false when the rest
/// still has a model. An atom false in the last model found needs no check of its own (that model
/// already shows it can be false), so a check is spent only where the last witness had it true.
fn canonical_countermodel(
    atoms: usize,
    facts: &[usize],
    goal: usize,
    mut model_under: impl FnMut(&[Assumption]) -> Result<Option<Vec<bool>>, String>,
) -> Result<Option<Vec<bool>>, String> {
    let mut assumptions: Vec<Assumption> = facts.iter().map(|&f| (f, true)).collect();
    assumptions.push((goal, false));
    let Some(mut witness) = model_under(&assumptions)? else {
        return Ok(None);
    };
    let mut values = vec![false; atoms];
    for &f in facts {
        values[f] = true;
    }
    for atom in 0..atoms {
        if atom == goal || facts.contains(&atom) {
            continue;
        }
        assumptions.push((atom, false));
        if witness[atom] {
            match model_under(&assumptions)? {
                Some(found) => witness = found,
                None => {
                    assumptions.pop();
                    assumptions.push((atom, true));
                    values[atom] = true;
                }
            }
        }
    }
    Ok(Some(values))
}

/// The questions generation and certification ask of a theory.
pub trait Entailment {
    /// Whether `facts` (atoms assumed true, on top of the theory) entail `goal`.
    fn entails(&self, facts: &[usize], goal: usize) -> Result<bool, String>;
}

impl Entailment for Theory {
    fn entails(&self, facts: &[usize], goal: usize) -> Result<bool, String> {
        Theory::entails(self, facts, goal)
    }
}

impl Entailment for Z3Theory<'_> {
    fn entails(&self, facts: &[usize], goal: usize) -> Result<bool, String> {
        Z3Theory::entails(self, facts, goal)
    }
}

/// Z3's form of [`Theory`] (certification, and the reference tests hold the SAT core to): a
/// theory loaded into this thread's solver for a closure.
pub struct Z3Theory<'a> {
    solver: &'a Solver,
    vars: Vec<Bool>,
}

impl Z3Theory<'_> {
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
    #[cfg(test)]
    pub fn countermodel(&self, facts: &[usize], goal: usize) -> Result<Option<Vec<bool>>, String> {
        canonical_countermodel(self.vars.len(), facts, goal, |assumed| {
            let literals: Vec<Bool> = assumed
                .iter()
                .map(|&(atom, value)| {
                    let var = &self.vars[atom];
                    if value { var.clone() } else { var.not() }
                })
                .collect();
            self.model_under(&literals)
        })
    }

    /// A model under `assumptions`, if there is one.
    #[cfg(test)]
    fn model_under(&self, assumptions: &[Bool]) -> Result<Option<Vec<bool>>, String> {
        if !self.satisfiable(assumptions)? {
            return Ok(None);
        }
        let model = self.solver.get_model().ok_or("sat without a model")?;
        Ok(Some(crate::z3util::assignment(&model, &self.vars)))
    }

    #[cfg(test)]
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

/// Load `premises ∧ known` over `atoms` atoms into Z3 and run `f` on it.
pub fn with_z3_theory<T>(
    atoms: usize,
    premises: &[Premise],
    known: &[usize],
    f: impl FnOnce(&Z3Theory) -> T,
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
            let theory = Z3Theory { solver, vars };
            f(&theory)
        })
    })
}

/// A theory on the SAT core: `premises ∧ known` over `atoms` atoms. The answers are Z3's
/// (tested); `countermodel` is canonical, so it does not depend on which models the solver
/// happens to find.
pub struct Theory {
    core: RefCell<Batsat>,
    vars: Vec<SatLit>,
}

fn encode<S: SatCore>(gates: &mut Tseitin<'_, S>, expr: &Expr, vars: &[SatLit]) -> SatLit {
    match expr {
        Expr::Atom(a) => vars[*a],
        Expr::Not(e) => !encode(gates, e, vars),
        Expr::And(a, b) => {
            let (a, b) = (encode(gates, a, vars), encode(gates, b, vars));
            gates.and(a, b)
        }
        Expr::Or(a, b) => {
            let (a, b) = (encode(gates, a, vars), encode(gates, b, vars));
            gates.or(a, b)
        }
    }
}

impl Theory {
    fn new(atoms: usize, premises: &[Premise], known: &[usize]) -> Theory {
        let mut core = Batsat::default();
        let vars: Vec<SatLit> = (0..atoms).map(|_| core.fresh()).collect();
        for p in premises {
            let body = encode(&mut Tseitin::new(&mut core), &p.body, &vars);
            core.clause(&[!body, vars[p.head]]);
        }
        for &k in known {
            core.clause(&[vars[k]]);
        }
        Theory {
            core: RefCell::new(core),
            vars,
        }
    }

    fn satisfiable(&self, assumptions: &[SatLit]) -> bool {
        self.core.borrow_mut().satisfiable(assumptions)
    }

    fn facts_and_not(&self, facts: &[usize], goal: usize) -> Vec<SatLit> {
        let mut assumptions: Vec<SatLit> = facts.iter().map(|&f| self.vars[f]).collect();
        assumptions.push(!self.vars[goal]);
        assumptions
    }

    /// Whether `facts` (atoms assumed true, on top of the theory) entail `goal`.
    pub fn entails(&self, facts: &[usize], goal: usize) -> Result<bool, String> {
        Ok(!self.satisfiable(&self.facts_and_not(facts, goal)))
    }

    /// A model of the theory with `facts` in which `goal` is false, if there is one: the one
    /// with as few atoms true as can be, deciding atoms in index order (each false when the rest
    /// still has a model) — [`Z3Theory::countermodel`]'s, check for check.
    pub fn countermodel(&self, facts: &[usize], goal: usize) -> Result<Option<Vec<bool>>, String> {
        canonical_countermodel(self.vars.len(), facts, goal, |assumed| {
            let literals: Vec<SatLit> = assumed
                .iter()
                .map(|&(atom, value)| {
                    if value {
                        self.vars[atom]
                    } else {
                        !self.vars[atom]
                    }
                })
                .collect();
            Ok(self.model_under(&literals))
        })
    }

    fn model_under(&self, assumptions: &[SatLit]) -> Option<Vec<bool>> {
        let mut core = self.core.borrow_mut();
        core.satisfiable(assumptions)
            .then(|| self.vars.iter().map(|&v| core.value(v)).collect())
    }

    /// Whether the theory with `facts` has a model at all.
    pub fn consistent(&self, facts: &[usize]) -> Result<bool, String> {
        let assumptions: Vec<SatLit> = facts.iter().map(|&f| self.vars[f]).collect();
        Ok(self.satisfiable(&assumptions))
    }
}

/// Load `premises ∧ known` over `atoms` atoms on the SAT core and run `f` on it.
pub fn with_theory<T>(
    atoms: usize,
    premises: &[Premise],
    known: &[usize],
    f: impl FnOnce(&Theory) -> T,
) -> T {
    f(&Theory::new(atoms, premises, known))
}
