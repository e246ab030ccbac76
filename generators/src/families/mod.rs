//! The task families, one module each.

pub mod abduction;
pub mod deduction;
pub mod induction;
#[cfg(test)]
pub mod parity;
