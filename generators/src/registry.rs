//! The registry of families: adding a family is one module plus one line in [`FAMILIES`].

use crate::families::abduction::Abduction;
use crate::families::deduction::Deduction;
use crate::families::induction::Induction;
use crate::family::DynFamily;

/// Every family this build has, in canonical order.
pub static FAMILIES: &[&dyn DynFamily] = &[&Deduction, &Induction, &Abduction];

/// Look a family up by name.
pub fn family(name: &str) -> Option<&'static dyn DynFamily> {
    FAMILIES.iter().copied().find(|f| f.name() == name)
}

/// The names of every family, in canonical order.
pub fn names() -> Vec<&'static str> {
    FAMILIES.iter().map(|f| f.name()).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_unique() {
        let mut names = super::names();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), super::FAMILIES.len());
    }
}
