//! Z3 plumbing shared by the families.
//!
//! z3 0.22 gives each thread an implicit context, so solvers live in thread-locals and are reused
//! through push/pop: creating Z3's default solver costs ~5 ms, a fresh finite-domain one ~0.1 ms,
//! a push/check/pop round on a warm one tens of microseconds. Limits are Z3's deterministic
//! `rlimit`, never wall-clock timeouts, so an "unknown" is the same on every machine and
//! generation stays reproducible.

use z3::{Params, Solver};

/// A finite-domain (SAT-based) solver for purely Boolean problems, with a resource limit.
pub(crate) fn finite_domain_solver(rlimit: u32) -> Solver {
    let solver = Solver::new_for_logic("QF_FD").unwrap_or_default();
    let mut params = Params::new();
    params.set_u32("rlimit", rlimit);
    solver.set_params(&params);
    solver
}
