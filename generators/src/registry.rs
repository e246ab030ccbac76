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

#[cfg(test)]
mod level_tests {
    use crate::GenOptions;
    use crate::family::GenError;
    use crate::rng::Draw;

    /// A level outside a family's range is an error from `Family::generate` itself, not a panic.
    #[test]
    fn generate_refuses_unknown_levels() {
        use crate::Family;
        use crate::families::{abduction::Abduction, deduction::Deduction, induction::Induction};
        let mut draw = Draw::from_seed_bytes([1; 32]);
        let options = GenOptions::default();
        for level in [0, 11, 255] {
            assert!(matches!(
                Deduction.generate(level, &options, &mut draw),
                Err(GenError::NoSuchLevel { .. })
            ));
            assert!(matches!(
                Induction.generate(level, &options, &mut draw),
                Err(GenError::NoSuchLevel { .. })
            ));
            assert!(matches!(
                Abduction.generate(level, &options, &mut draw),
                Err(GenError::NoSuchLevel { .. })
            ));
        }
    }
}
