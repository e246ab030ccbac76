//! Z3 plumbing shared by the families.
//!
//! z3 0.22 gives each thread an implicit context, so solvers live in thread-locals and are reused
//! through push/pop: creating Z3's default solver costs ~5 ms, a fresh finite-domain one ~0.1 ms,
//! a push/check/pop round on a warm one tens of microseconds. Limits are Z3's deterministic
//! `rlimit`, never wall-clock timeouts, so an "unknown" is the same on every machine and
//! generation stays reproducible.

use std::cell::{Cell, RefCell};

use z3::{Params, Solver};

/// The value of each of `vars` in `model` (one Z3 leaves unconstrained: false).
pub(crate) fn assignment(model: &z3::Model, vars: &[z3::ast::Bool]) -> Vec<bool> {
    vars.iter()
        .map(|v| {
            model
                .eval(v, true)
                .and_then(|b| b.as_bool())
                .unwrap_or(false)
        })
        .collect()
}

/// A finite-domain (SAT-based) solver for purely Boolean problems, with a resource limit.
pub(crate) fn finite_domain_solver(rlimit: u32) -> Solver {
    let solver = Solver::new_for_logic("QF_FD").unwrap_or_default();
    with_rlimit(solver, rlimit)
}

/// Z3's default solver (used for integer arithmetic), with a resource limit.
pub(crate) fn default_solver(rlimit: u32) -> Solver {
    with_rlimit(Solver::new(), rlimit)
}

fn with_rlimit(solver: Solver, rlimit: u32) -> Solver {
    let mut params = Params::new();
    params.set_u32("rlimit", rlimit);
    solver.set_params(&params);
    solver
}

/// Scopes a warm solver serves before it is replaced by a fresh one.
///
/// A solver keeps state across push/pop that a scope does not give back, so a thread that only
/// ever reuses one grows without bound: ~45 KB per deduction level-10 instance (6,000 of them took
/// a run from 150 to 430 MB; with recycling it stays at 150). Replacing it every few hundred
/// scopes bounds that at the price of one solver set-up (≤ 5 ms) per `RECYCLE_AFTER` scopes.
/// Results do not depend on it: every check is sat/unsat on its own assertions, and resource
/// limits are per check.
pub(crate) const RECYCLE_AFTER: u32 = 256;

/// One thread's warm solver, replaced after [`RECYCLE_AFTER`] scopes.
pub(crate) struct WarmSolver {
    make: fn() -> Solver,
    solver: RefCell<Solver>,
    scopes: Cell<u32>,
}

impl WarmSolver {
    pub(crate) fn new(make: fn() -> Solver) -> Self {
        WarmSolver {
            make,
            solver: RefCell::new(make()),
            scopes: Cell::new(0),
        }
    }

    /// Run `f` on the solver inside a push/pop scope.
    pub(crate) fn scoped<T>(&self, f: impl FnOnce(&Solver) -> T) -> T {
        self.recycle_if_due();
        let solver = self.solver.borrow();
        solver.push();
        let out = f(&solver);
        solver.pop(1);
        out
    }

    fn recycle_if_due(&self) {
        let scopes = self.scopes.get() + 1;
        if scopes < RECYCLE_AFTER {
            self.scopes.set(scopes);
            return;
        }
        // A nested scope (the solver already borrowed further up this thread's stack) leaves the
        // replacement to the next top-level one.
        if let Ok(mut solver) = self.solver.try_borrow_mut() {
            *solver = (self.make)();
            self.scopes.set(0);
        }
    }
}
