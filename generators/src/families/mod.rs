//! The task families, one module each.

pub mod deduction;
