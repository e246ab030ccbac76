//! # triad-generators
//!
//! The task families of triad, and nothing else: each family makes an instance from a seeded RNG,
//! renders it as a prompt, writes its reference answer, parses and judges a model's answer, and
//! certifies the instance with Z3. There is no I/O here; datasets, scoring pipelines and servers
//! live in the `triad` crate and only talk to families through [`DynFamily`].
//!
//! ```
//! use triad_generators::{registry, GenOptions, ItemCoords, PromptStyle, Split, Verdict};
//!
//! let deduction = registry::family("deduction").unwrap();
//! let coords = ItemCoords { seed: 7, family: "deduction", level: 1, index: 0 };
//! let item = deduction.candidate(&coords, &GenOptions::default(), PromptStyle::Chat).unwrap().unwrap();
//! let label = triad_generators::Label::parse(&item.label).unwrap();
//! assert_eq!(label.judge(&item.answer), Verdict::Correct);
//! ```
#![deny(missing_docs)]

pub mod answer;
pub mod audit;
pub mod families;
mod family;
pub mod fields;
pub mod frame;
mod label;
pub mod limits;
mod options;
pub mod paper;
pub mod registry;
pub mod rng;
pub mod sat;
mod z3util;

pub use family::{
    CertifyError, DynFamily, Family, GenError, GenOptions, InstanceError, Item, ItemCoords,
    Message, Prompt, PromptStyle, Split, TraceProgress, Verdict, certify_item,
};
pub use label::{LABEL_VERSION, Label, LabelError};
pub use options::{FamilyOptions, NoOptions, OptionDoc, OptionSet, OptionsError, parse_value};

/// Revision of what the generators make from given coordinates. Bumped whenever some family's
/// items for the same (seed, family, level, index) change, so that resuming a dataset never
/// joins shards of two revisions (it is part of every stream's configuration hash).
///
/// 2: induction levels 3–5 refuse sequences a lower level's rules already explain.
/// 3: induction items are determined under every rule class the dataset teaches (floor division
///    at every level 1–5; levels 6–8 against all of 6–10's classes), and chat prompts state the
///    class.
/// 4: one candidate stream per (family, level) feeds both splits (the split left the item seed;
///    each candidate goes to the split its content picks), so rows differ from revision 3's.
/// 5: explanation-mode abduction items whose observation follows only by cases carry a proof by
///    cases as their trace (they had none).
/// 6: induction traces open with the steps between neighbouring shown terms (`Steps: …`), from
///    which the rule line is read.
/// 7: deduction's chat and compact prompts number the formulas (`  3. (A ∨ B)`), as the trace
///    cites them.
/// 8: the deduction trace splits, where no value fails by propagation alone, on the variable
///    whose two values propagate most (a lookahead solver's rule) and, on its main line, refutes
///    the other value that propagates most; more level 9–10 items have a trace within
///    the line bound, and traces of the others differ.
pub const OUTPUT_REVISION: u32 = 8;
