//! A small incremental SAT core for generation's yes/no questions, behind one trait.
//!
//! Generation asks tiny questions (≤ 64 variables, a few hundred clauses) many times — "is the
//! planted model still not the only one?" after every added formula — where Z3's per-call
//! overhead, not the search, dominates. [`SatCore`] is what such a question needs: variables,
//! clauses added for good, a check under assumptions. [`Tseitin`] builds clauses from connectives
//! with one fresh variable per gate. The backend is batsat (a pure-Rust MiniSat: CDCL with
//! clause learning and restarts), so the crate adds no C++ build. Z3 stays the certifier:
//! `--certify` and `triad verify` re-prove every label with Z3, and tests check that this core
//! and Z3 give the same answers (hence the same items).

use batsat::{BasicSolver, Lit, SolverInterface, lbool};

/// What a generator asks a SAT solver.
pub trait SatCore {
    /// A fresh variable, as its positive literal.
    fn fresh(&mut self) -> SatLit;
    /// A fresh variable that the clauses added with it define from others (a Tseitin gate's
    /// output): the search need never branch on it, since propagation fixes it once its inputs
    /// are fixed. A core may treat it as [`SatCore::fresh`].
    fn gate(&mut self) -> SatLit {
        self.fresh()
    }
    /// Add a clause (a disjunction of literals) for good.
    fn clause(&mut self, literals: &[SatLit]);
    /// Is the clause set satisfiable with every literal of `assumptions` true?
    fn satisfiable(&mut self, assumptions: &[SatLit]) -> bool;
    /// The value of `literal` in the model the last satisfiable check found.
    fn value(&self, literal: SatLit) -> bool;
}

/// A literal: a variable index and a polarity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SatLit {
    var: u32,
    positive: bool,
}

impl std::ops::Not for SatLit {
    type Output = SatLit;
    fn not(self) -> SatLit {
        SatLit {
            var: self.var,
            positive: !self.positive,
        }
    }
}

/// [`SatCore`] on batsat.
#[derive(Default)]
pub struct Batsat {
    solver: BasicSolver,
    vars: Vec<batsat::Var>,
    buffer: Vec<Lit>,
}

impl Batsat {
    fn lit(&self, literal: SatLit) -> Lit {
        Lit::new(self.vars[literal.var as usize], literal.positive)
    }
}

impl SatCore for Batsat {
    fn fresh(&mut self) -> SatLit {
        self.vars.push(self.solver.new_var_default());
        SatLit {
            var: (self.vars.len() - 1) as u32,
            positive: true,
        }
    }

    fn gate(&mut self) -> SatLit {
        // Not a decision variable: branching only on inputs is ~1.3x faster on generation's
        // near-unique deduction sets (bench in BENCHMARKS.md), and the answers are the same.
        self.vars.push(self.solver.new_var(lbool::UNDEF, false));
        SatLit {
            var: (self.vars.len() - 1) as u32,
            positive: true,
        }
    }

    fn clause(&mut self, literals: &[SatLit]) {
        let mut buffer = std::mem::take(&mut self.buffer);
        buffer.clear();
        buffer.extend(literals.iter().map(|&l| self.lit(l)));
        // `false` means the set is now unsatisfiable; `satisfiable` reports it.
        self.solver.add_clause_reuse(&mut buffer);
        self.buffer = buffer;
    }

    fn satisfiable(&mut self, assumptions: &[SatLit]) -> bool {
        let assumptions: Vec<Lit> = assumptions.iter().map(|&l| self.lit(l)).collect();
        // Without a resource limit the answer is never UNDEF.
        self.solver.solve_limited(&assumptions) == lbool::TRUE
    }

    fn value(&self, literal: SatLit) -> bool {
        self.solver.value_lit(self.lit(literal)) == lbool::TRUE
    }
}

/// Tseitin gates over a [`SatCore`]: each returns a literal equivalent to the connective of its
/// inputs, with the defining clauses added.
pub struct Tseitin<'a, S: SatCore> {
    core: &'a mut S,
}

impl<'a, S: SatCore> Tseitin<'a, S> {
    /// Gates on `core`.
    pub fn new(core: &'a mut S) -> Self {
        Tseitin { core }
    }

    /// `a ∧ b`.
    pub fn and(&mut self, a: SatLit, b: SatLit) -> SatLit {
        let g = self.core.gate();
        self.core.clause(&[!g, a]);
        self.core.clause(&[!g, b]);
        self.core.clause(&[g, !a, !b]);
        g
    }

    /// The conjunction of `inputs` (at least one), as one gate: fewer variables and clauses
    /// than a chain of binary gates, and propagation as strong.
    pub fn and_all(&mut self, inputs: &[SatLit]) -> SatLit {
        if let [one] = inputs {
            return *one;
        }
        let g = self.core.gate();
        let mut all = Vec::with_capacity(inputs.len() + 1);
        all.push(g);
        for &a in inputs {
            self.core.clause(&[!g, a]);
            all.push(!a);
        }
        self.core.clause(&all);
        g
    }

    /// A clause, added for good (a formula asserted as a disjunction needs no gate).
    pub fn assert_any(&mut self, literals: &[SatLit]) {
        self.core.clause(literals);
    }

    /// `a ∨ b`.
    pub fn or(&mut self, a: SatLit, b: SatLit) -> SatLit {
        !self.and(!a, !b)
    }

    /// `a → b`.
    pub fn implies(&mut self, a: SatLit, b: SatLit) -> SatLit {
        self.or(!a, b)
    }

    /// `a ⊕ b`.
    pub fn xor(&mut self, a: SatLit, b: SatLit) -> SatLit {
        let g = self.core.gate();
        self.core.clause(&[!g, a, b]);
        self.core.clause(&[!g, !a, !b]);
        self.core.clause(&[g, !a, b]);
        self.core.clause(&[g, a, !b]);
        g
    }

    /// `a ↔ b`.
    pub fn iff(&mut self, a: SatLit, b: SatLit) -> SatLit {
        !self.xor(a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every gate, on every input, against its truth table (inputs fixed by assumptions).
    #[test]
    fn gates_have_their_truth_tables() {
        type Gate = fn(&mut Tseitin<'_, Batsat>, SatLit, SatLit) -> SatLit;
        type Table = fn(bool, bool) -> bool;
        let gates: [(Gate, Table); 5] = [
            (|t, a, b| t.and(a, b), |a, b| a && b),
            (|t, a, b| t.or(a, b), |a, b| a || b),
            (|t, a, b| t.implies(a, b), |a, b| !a || b),
            (|t, a, b| t.xor(a, b), |a, b| a != b),
            (|t, a, b| t.iff(a, b), |a, b| a == b),
        ];
        for (gate, table) in gates {
            let mut core = Batsat::default();
            let (a, b) = (core.fresh(), core.fresh());
            let g = gate(&mut Tseitin::new(&mut core), a, b);
            for (x, y) in [(false, false), (false, true), (true, false), (true, true)] {
                let fix = |l: SatLit, v: bool| if v { l } else { !l };
                let want = table(x, y);
                assert!(core.satisfiable(&[fix(a, x), fix(b, y), fix(g, want)]));
                assert!(!core.satisfiable(&[fix(a, x), fix(b, y), fix(g, !want)]));
            }
        }
    }

    #[test]
    fn clauses_stay_and_assumptions_do_not() {
        let mut core = Batsat::default();
        let (a, b) = (core.fresh(), core.fresh());
        core.clause(&[a, b]);
        assert!(!core.satisfiable(&[!a, !b]));
        assert!(core.satisfiable(&[!a]));
        core.clause(&[!a]);
        assert!(!core.satisfiable(&[!b]));
        assert!(core.satisfiable(&[]));
        core.clause(&[!b]);
        assert!(!core.satisfiable(&[]));
    }
}
