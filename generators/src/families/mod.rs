//! The task families, one module each.

pub mod deduction;
pub mod induction;
