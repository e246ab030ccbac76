//! Solvers for deduction: generation's uniqueness oracle on the incremental SAT core
//! ([`SatOracle`]), and Z3 for model counting by blocking clauses and certification (plus Z3's
//! own oracle, which tests hold the SAT core's answers against).
//!
//! z3 0.22 uses an implicit per-thread context, so every function here builds its own solver and
//! terms on the calling thread; nothing Z3 crosses threads. Solvers carry a deterministic resource
//! limit (`rlimit`), never a wall-clock timeout, so an "unknown" is the same on every machine and
//! generation stays reproducible.

use z3::ast::Bool;
use z3::{SatResult, Solver};

use super::formula::{Formula, Op};
use crate::sat::{Batsat, SatCore, SatLit, Tseitin};
use crate::z3util::WarmSolver;

/// Z3's deterministic resource limit per solver.
pub const RLIMIT: u32 = 50_000_000;

thread_local! {
    /// One warm finite-domain (SAT) solver per thread, used through push/pop and recycled
    /// (see [`WarmSolver`]). Creating Z3's default solver costs ~5 ms and a fresh QF_FD one
    /// ~0.1 ms.
    static SOLVER: WarmSolver = WarmSolver::new(|| crate::z3util::finite_domain_solver(RLIMIT));
}

/// Run `f` on this thread's solver inside a push/pop scope.
fn scoped<T>(f: impl FnOnce(&Solver) -> T) -> T {
    SOLVER.with(|solver| solver.scoped(f))
}

fn term(formula: &Formula, vars: &[Bool]) -> Bool {
    match formula {
        Formula::Lit { var, neg: false } => vars[*var].clone(),
        Formula::Lit { var, neg: true } => vars[*var].not(),
        Formula::Not(inner) => term(inner, vars).not(),
        Formula::Bin(op, l, r) => {
            let (l, r) = (term(l, vars), term(r, vars));
            match op {
                super::formula::Op::Implies => l.implies(&r),
                super::formula::Op::And => Bool::and(&[l, r]),
                super::formula::Op::Or => Bool::or(&[l, r]),
                super::formula::Op::Iff => l.iff(&r),
                super::formula::Op::Xor => l.xor(&r),
            }
        }
    }
}

fn variables(n: usize) -> Vec<Bool> {
    (0..n).map(|k| Bool::new_const(format!("v{k}"))).collect()
}

/// The clause that excludes exactly `assignment`.
fn blocking_clause(vars: &[Bool], assignment: &[bool]) -> Bool {
    let differs: Vec<Bool> = vars
        .iter()
        .zip(assignment)
        .map(|(v, &value)| if value { v.not() } else { v.clone() })
        .collect();
    Bool::or(&differs)
}

/// Up to `limit` models of the conjunction, found one at a time with blocking clauses.
pub fn models(formulas: &[Formula], n: usize, limit: usize) -> Result<Vec<Vec<bool>>, String> {
    scoped(|solver| models_in(solver, formulas, n, limit))
}

fn models_in(
    solver: &Solver,
    formulas: &[Formula],
    n: usize,
    limit: usize,
) -> Result<Vec<Vec<bool>>, String> {
    let vars = variables(n);
    for f in formulas {
        solver.assert(term(f, &vars));
    }
    let mut found = Vec::new();
    while found.len() < limit {
        match solver.check() {
            SatResult::Unsat => break,
            SatResult::Unknown => return Err(reason(solver)),
            SatResult::Sat => {
                let model = solver.get_model().ok_or("sat without a model")?;
                let assignment = crate::z3util::assignment(&model, &vars);
                solver.assert(blocking_clause(&vars, &assignment));
                found.push(assignment);
            }
        }
    }
    Ok(found)
}

fn reason(solver: &Solver) -> String {
    solver
        .get_reason_unknown()
        .unwrap_or_else(|| "unknown".into())
}

/// Z3's form of [`SatOracle`].
///
/// The blocking clause of the planted assignment is asserted once; each added formula is asserted
/// permanently; the planted assignment is unique exactly when the solver reports unsat.
#[cfg(test)]
pub struct UniquenessOracle<'a> {
    solver: &'a Solver,
    vars: Vec<Bool>,
}

#[cfg(test)]
impl UniquenessOracle<'_> {
    /// Add a formula (true under the planted assignment).
    pub fn add(&mut self, formula: &Formula) {
        self.solver.assert(term(formula, &self.vars));
    }

    /// `Some(true)` when no other model remains, `Some(false)` when one does, `None` on unknown.
    pub fn unique(&self) -> Option<bool> {
        match self.solver.check() {
            SatResult::Unsat => Some(true),
            SatResult::Sat => Some(false),
            SatResult::Unknown => None,
        }
    }
}

/// Run `f` with Z3's oracle for `planted` on this thread's solver (the reference the SAT
/// core's [`SatOracle`] is tested against).
#[cfg(test)]
pub fn with_oracle<T>(planted: &[bool], f: impl FnOnce(&mut UniquenessOracle) -> T) -> T {
    scoped(|solver| {
        let vars = variables(planted.len());
        solver.assert(blocking_clause(&vars, planted));
        f(&mut UniquenessOracle { solver, vars })
    })
}

/// Decides, formula by formula, whether a planted assignment has become the only model, on the
/// incremental SAT core: the planted assignment's blocking clause is added once, each formula
/// (Tseitin-encoded) for good, and the planted model is unique exactly when the clauses are
/// unsatisfiable. The answers are Z3's (tested), so the items are the ones Z3 made, faster.
///
/// The last other model found is kept as a witness: while every formula added since holds under
/// it, the planted model is still not unique and the core is not asked again (most formulas of a
/// nearly unique set leave the witness standing, so most questions cost one evaluation).
pub struct SatOracle {
    core: Batsat,
    vars: Vec<SatLit>,
    witness: Option<Vec<bool>>,
}

impl SatOracle {
    /// An oracle for `planted`.
    pub fn new(planted: &[bool]) -> SatOracle {
        let mut core = Batsat::default();
        let vars: Vec<SatLit> = planted.iter().map(|_| core.fresh()).collect();
        let differs: Vec<SatLit> = vars
            .iter()
            .zip(planted)
            .map(|(&v, &value)| if value { !v } else { v })
            .collect();
        core.clause(&differs);
        SatOracle {
            core,
            vars,
            witness: None,
        }
    }

    /// Add a formula (true under the planted assignment).
    pub fn add(&mut self, formula: &Formula) {
        let literal = encode(&mut Tseitin::new(&mut self.core), formula, &self.vars);
        self.core.clause(&[literal]);
        if self.witness.as_ref().is_some_and(|w| !formula.eval(w)) {
            self.witness = None;
        }
    }

    /// `Some(true)` when no other model remains, `Some(false)` when one does (never `None`: the
    /// core has no resource limit, and these instances take microseconds).
    pub fn unique(&mut self) -> Option<bool> {
        if self.witness.is_some() {
            return Some(false);
        }
        if !self.core.satisfiable(&[]) {
            return Some(true);
        }
        self.witness = Some(self.vars.iter().map(|&v| self.core.value(v)).collect());
        Some(false)
    }
}

fn encode<S: SatCore>(gates: &mut Tseitin<'_, S>, formula: &Formula, vars: &[SatLit]) -> SatLit {
    match formula {
        Formula::Lit { var, neg } => {
            if *neg {
                !vars[*var]
            } else {
                vars[*var]
            }
        }
        Formula::Not(inner) => !encode(gates, inner, vars),
        Formula::Bin(op, l, r) => {
            let (l, r) = (encode(gates, l, vars), encode(gates, r, vars));
            match op {
                Op::Implies => gates.implies(l, r),
                Op::And => gates.and(l, r),
                Op::Or => gates.or(l, r),
                Op::Iff => gates.iff(l, r),
                Op::Xor => gates.xor(l, r),
            }
        }
    }
}
