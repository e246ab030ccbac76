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

use super::cnf::DirectCnf;
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
/// for good — as clauses over its own variables where it has few ([`DirectCnf`]), else
/// Tseitin-encoded and flattened ([`assert_formula`]) — and the planted model is unique exactly
/// when the clauses are unsatisfiable. The answers are Z3's (tested), so the items are the ones
/// Z3 made, faster.
///
/// The last other model found is kept as a witness: while every formula added since holds under
/// it, the planted model is still not unique and the core is not asked again (most formulas of a
/// nearly unique set leave the witness standing, so most questions cost one evaluation).
/// When the witness falls, a surviving [`Neighbours`] assignment (one or two values flipped
/// from the planted model) takes its place before the core is asked: some of the hardest
/// questions of a nearly unique set have such an answer.
pub struct SatOracle {
    core: Batsat,
    vars: Vec<SatLit>,
    witness: Option<Vec<bool>>,
    neighbours: Neighbours,
}

/// The assignments one or two flips away from the planted model that every formula added so far
/// holds under, evaluated 64 at a time (one bit lane each): a formula costs one pass per word
/// with a survivor, and few survive more than a few dozen formulas.
struct Neighbours {
    planted: Vec<bool>,
    /// The flipped variables of each lane: `flips[lane]` is `(i, j)`, `i == j` for one flip.
    flips: Vec<(usize, usize)>,
    /// Surviving lanes, a bit each.
    alive: Vec<u64>,
}

impl Neighbours {
    fn new(planted: &[bool]) -> Neighbours {
        let n = planted.len();
        let flips: Vec<(usize, usize)> = (0..n).flat_map(|i| (i..n).map(move |j| (i, j))).collect();
        let mut alive = vec![u64::MAX; flips.len().div_ceil(64)];
        if !flips.len().is_multiple_of(64) {
            *alive.last_mut().expect("a word") = (1 << (flips.len() % 64)) - 1;
        }
        Neighbours {
            planted: planted.to_vec(),
            flips,
            alive,
        }
    }

    /// Keep the lanes `formula` holds under.
    fn add(&mut self, formula: &Formula) {
        let mut lanes = vec![0u64; self.planted.len()];
        for w in 0..self.alive.len() {
            if self.alive[w] == 0 {
                continue;
            }
            for (v, lane) in lanes.iter_mut().enumerate() {
                *lane = if self.planted[v] { u64::MAX } else { 0 };
            }
            for (bit, &(i, j)) in self.flips[w * 64..].iter().take(64).enumerate() {
                lanes[i] ^= 1 << bit;
                if j != i {
                    lanes[j] ^= 1 << bit;
                }
            }
            self.alive[w] &= eval_lanes(formula, &lanes);
        }
    }

    /// A surviving assignment.
    fn survivor(&self) -> Option<Vec<bool>> {
        let (w, word) = self.alive.iter().enumerate().find(|(_, w)| **w != 0)?;
        let (i, j) = self.flips[w * 64 + word.trailing_zeros() as usize];
        let mut assignment = self.planted.clone();
        assignment[i] = !assignment[i];
        assignment[j] = !assignment[j] ^ (i == j);
        Some(assignment)
    }
}

/// `formula` under 64 assignments at once: bit `b` of `lanes[v]` is variable `v` in lane `b`.
fn eval_lanes(formula: &Formula, lanes: &[u64]) -> u64 {
    match formula {
        Formula::Lit { var, neg } => lanes[*var] ^ if *neg { u64::MAX } else { 0 },
        Formula::Not(inner) => !eval_lanes(inner, lanes),
        Formula::Bin(op, l, r) => {
            let (l, r) = (eval_lanes(l, lanes), eval_lanes(r, lanes));
            match op {
                Op::And => l & r,
                Op::Or => l | r,
                Op::Implies => !l | r,
                Op::Iff => !(l ^ r),
                Op::Xor => l ^ r,
            }
        }
    }
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
            neighbours: Neighbours::new(planted),
        }
    }

    /// Add a formula (true under the planted assignment).
    pub fn add(&mut self, formula: &Formula) {
        match DirectCnf::of(formula) {
            Some(cnf) => {
                let mut literals = Vec::new();
                for clause in cnf.clauses() {
                    literals.clear();
                    literals.extend(clause.map(
                        |(v, value)| {
                            if value { self.vars[v] } else { !self.vars[v] }
                        },
                    ));
                    self.core.clause(&literals);
                }
            }
            None => assert_formula(&mut Tseitin::new(&mut self.core), formula, &self.vars),
        }
        self.neighbours.add(formula);
        if self.witness.as_ref().is_some_and(|w| !formula.eval(w)) {
            self.witness = self.neighbours.survivor();
        }
    }

    /// `Some(true)` when no other model remains, `Some(false)` when one does (never `None`: the
    /// core has no resource limit, and these instances take microseconds).
    pub fn unique(&mut self) -> Option<bool> {
        if self.witness.is_some() {
            return Some(false);
        }
        if let Some(survivor) = self.neighbours.survivor() {
            self.witness = Some(survivor);
            return Some(false);
        }
        if !self.core.satisfiable(&[]) {
            return Some(true);
        }
        self.witness = Some(self.vars.iter().map(|&v| self.core.value(v)).collect());
        Some(false)
    }
}

/// Add `formula` as clauses: each of its top-level conjuncts becomes one clause over its
/// flattened disjuncts, so only the subformulas below those need gates (nested conjunctions and
/// disjunctions become one n-ary gate each). Equivalent to asserting its Tseitin literal, with
/// fewer variables and clauses for the search to propagate through.
fn assert_formula<S: SatCore>(gates: &mut Tseitin<'_, S>, formula: &Formula, vars: &[SatLit]) {
    let mut conjuncts = Vec::new();
    flatten(formula, true, Op::And, &mut conjuncts);
    for (conjunct, positive) in conjuncts {
        let mut disjuncts = Vec::new();
        flatten(conjunct, positive, Op::Or, &mut disjuncts);
        let literals: Vec<SatLit> = disjuncts
            .into_iter()
            .map(|(f, positive)| encode_signed(gates, f, positive, vars))
            .collect();
        gates.assert_any(&literals);
    }
}

/// The operands of `formula` (negated when not `positive`) read as a conjunction (`op` =
/// [`Op::And`]) or a disjunction ([`Op::Or`]) through negations, De Morgan and `→`, each with
/// its sign; a subformula of another shape is one operand.
fn flatten<'f>(formula: &'f Formula, positive: bool, op: Op, out: &mut Vec<(&'f Formula, bool)>) {
    let conjunction = op == Op::And;
    match formula {
        Formula::Not(inner) => flatten(inner, !positive, op, out),
        Formula::Bin(Op::And, l, r) if positive == conjunction => {
            flatten(l, positive, op, out);
            flatten(r, positive, op, out);
        }
        Formula::Bin(Op::Or, l, r) if positive != conjunction => {
            flatten(l, positive, op, out);
            flatten(r, positive, op, out);
        }
        // a → b is ¬a ∨ b; ¬(a → b) is a ∧ ¬b.
        Formula::Bin(Op::Implies, l, r) if positive != conjunction => {
            flatten(l, !positive, op, out);
            flatten(r, positive, op, out);
        }
        _ => out.push((formula, positive)),
    }
}

/// A literal equivalent to `formula` (negated when not `positive`).
fn encode_signed<S: SatCore>(
    gates: &mut Tseitin<'_, S>,
    formula: &Formula,
    positive: bool,
    vars: &[SatLit],
) -> SatLit {
    let sign = |l: SatLit| if positive { l } else { !l };
    match formula {
        Formula::Lit { var, neg } => sign(if *neg { !vars[*var] } else { vars[*var] }),
        Formula::Not(inner) => encode_signed(gates, inner, !positive, vars),
        Formula::Bin(op @ (Op::Iff | Op::Xor), l, r) => {
            let (l, r) = (
                encode_signed(gates, l, true, vars),
                encode_signed(gates, r, true, vars),
            );
            sign(if *op == Op::Xor {
                gates.xor(l, r)
            } else {
                gates.iff(l, r)
            })
        }
        Formula::Bin(..) => {
            let mut conjuncts = Vec::new();
            flatten(formula, positive, Op::And, &mut conjuncts);
            if conjuncts.len() > 1 {
                let inputs: Vec<SatLit> = conjuncts
                    .into_iter()
                    .map(|(f, p)| encode_signed(gates, f, p, vars))
                    .collect();
                return gates.and_all(&inputs);
            }
            let mut disjuncts = Vec::new();
            flatten(formula, positive, Op::Or, &mut disjuncts);
            let negated: Vec<SatLit> = disjuncts
                .into_iter()
                .map(|(f, p)| encode_signed(gates, f, !p, vars))
                .collect();
            !gates.and_all(&negated)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Draw;

    /// The flattened encoding holds under exactly the assignments that satisfy the formula:
    /// every assignment of 5 variables, fixed by assumptions, on 400 random formulas of depth 1–5.
    #[test]
    fn the_encoding_holds_exactly_where_the_formula_does() {
        let mut draw = Draw::from_seed_bytes([7; 32]);
        for k in 0..400u32 {
            let formula = Formula::random(&mut draw, 5, 1 + k % 5);
            let mut core = Batsat::default();
            let vars: Vec<SatLit> = (0..5).map(|_| core.fresh()).collect();
            assert_formula(&mut Tseitin::new(&mut core), &formula, &vars);
            for row in 0..32u32 {
                let values: Vec<bool> = (0..5).map(|j| row >> j & 1 == 1).collect();
                let fixed: Vec<SatLit> = vars
                    .iter()
                    .zip(&values)
                    .map(|(&v, &value)| if value { v } else { !v })
                    .collect();
                assert_eq!(
                    core.satisfiable(&fixed),
                    formula.eval(&values),
                    "{formula:?} under {values:?}"
                );
            }
        }
    }

    /// The survivors are the assignments one or two flips from the planted model under which
    /// every formula added so far holds, checked against plain evaluation lane by lane.
    #[test]
    fn neighbours_are_the_near_assignments_every_formula_holds_under() {
        let mut draw = Draw::from_seed_bytes([3; 32]);
        for n in [2, 7, 12] {
            let planted: Vec<bool> = (0..n).map(|_| draw.chance(0.5)).collect();
            let mut neighbours = Neighbours::new(&planted);
            let mut formulas = Vec::new();
            for _ in 0..6 {
                let formula = Formula::random(&mut draw, n, 2);
                neighbours.add(&formula);
                formulas.push(formula);
                for (lane, &(i, j)) in neighbours.flips.iter().enumerate() {
                    let mut assignment = planted.clone();
                    assignment[i] = !assignment[i];
                    if j != i {
                        assignment[j] = !assignment[j];
                    }
                    let holds = formulas.iter().all(|f| f.eval(&assignment));
                    assert_eq!(neighbours.alive[lane / 64] >> (lane % 64) & 1 == 1, holds);
                }
                if let Some(survivor) = neighbours.survivor() {
                    assert!(formulas.iter().all(|f| f.eval(&survivor)));
                    let flipped = survivor.iter().zip(&planted).filter(|(a, b)| a != b);
                    assert!((1..=2).contains(&flipped.count()));
                }
            }
        }
    }
}
