//! The registry of families: adding a family is one module plus one line in [`FAMILIES`].
//!
//! # Adding a family
//!
//! 1. Write `generators/src/families/<name>.rs` (or a directory module) with a unit struct and an
//!    `impl Family` for it: its instance type (what labels carry), its options (a serde struct
//!    with defaults, keys unique across families; [`crate::NoOptions`] for none), its audit
//!    [`crate::audit::Tally`], and the methods — generate, check, render, reference answer,
//!    near miss, judge, certify, canonical text, Parquet fields, instance schema. Declare the
//!    module in `families/mod.rs`.
//! 2. Add `&families::<name>::<Type>` to [`FAMILIES`]. That line is the only one outside the
//!    module: generation, the CLI's option flags, manifests and configuration hashes, Parquet
//!    columns, labels, scoring and the reward server, `verify`, `audit`, `bench` and the trainer's
//!    pipeline all walk this list.
//!
//! The test-only [`crate::families`]`::parity` family is registered exactly so (under
//! `#[cfg(test)]`), and `every_family_has_what_the_pipelines_need` walks the list with it in.

use crate::families::abduction::Abduction;
use crate::families::deduction::Deduction;
use crate::families::induction::Induction;
use crate::family::DynFamily;

/// Every family this build has, in canonical order.
pub static FAMILIES: &[&dyn DynFamily] = &[
    &Deduction,
    &Induction,
    &Abduction,
    #[cfg(test)]
    &crate::families::parity::Parity,
];

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
    use std::collections::BTreeSet;

    use super::FAMILIES;
    use crate::audit::AnswerSpread;
    use crate::{DynFamily, GenOptions, Item, ItemCoords, Label, PromptStyle, Split, Verdict};

    #[test]
    fn names_are_unique() {
        let mut names = super::names();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FAMILIES.len());
    }

    #[test]
    fn the_test_family_is_registered_like_the_others() {
        assert_eq!(
            super::names(),
            ["deduction", "induction", "abduction", "parity"]
        );
    }

    /// Option keys are unique across families (a bare `key=value` names one option, and the
    /// configuration hash lists them flat), documented one for one, and round-trip.
    #[test]
    fn every_familys_options_are_documented_and_distinct() {
        let mut seen = BTreeSet::new();
        for family in FAMILIES {
            let defaults = family.default_options();
            let keys: BTreeSet<&str> = defaults.json().keys().map(String::as_str).collect();
            let documented: BTreeSet<&str> = family.option_docs().iter().map(|d| d.key).collect();
            assert_eq!(keys, documented, "{}", family.name());
            for key in keys {
                assert!(
                    seen.insert(key.to_string()),
                    "{}: option {key} is another family's",
                    family.name()
                );
            }
            let json = serde_json::Value::Object(defaults.json().clone());
            assert_eq!(family.options_from_json(&json).unwrap(), defaults);
            let mut unknown = defaults.json().clone();
            unknown.insert("no_such_option".into(), 1.into());
            assert!(family.options_from_json(&unknown.into()).is_err());
        }
    }

    /// A paper label is attributed to at most one family.
    #[test]
    fn paper_formats_are_distinct() {
        let formats: Vec<_> = FAMILIES.iter().filter_map(|f| f.paper_format()).collect();
        for (i, a) in formats.iter().enumerate() {
            assert!(!formats[i + 1..].contains(a), "{a:?} claimed twice");
        }
        assert_eq!(formats.len(), 3, "the paper's three tasks");
    }

    /// The first candidate of a level that lands in `split`.
    fn first_item(family: &'static dyn DynFamily, level: u8, split: Split) -> Item {
        (0..2000)
            .find_map(|index| {
                let coords = ItemCoords {
                    seed: 3,
                    family: family.name(),
                    level,
                    index,
                };
                family
                    .candidate_in(
                        &coords,
                        &GenOptions::default(),
                        PromptStyle::Chat,
                        Some(split),
                    )
                    .unwrap()
            })
            .unwrap_or_else(|| panic!("{} level {level}: no {split} item", family.name()))
    }

    /// What generation, `verify`, scoring, `audit`, `bench` and the pipeline ask of a family,
    /// asked of every registered one (the test-only parity family included).
    #[test]
    fn every_family_has_what_the_pipelines_need() {
        for &family in FAMILIES {
            let name = family.name();
            let levels = family.levels();
            assert!(!levels.is_empty(), "{name}");
            assert!(family.instance_schema().is_object(), "{name}");
            for level in [*levels.start(), *levels.end()] {
                assert!(!family.describe_level(level).is_empty());
                for split in [Split::Train, Split::Test] {
                    let item = first_item(family, level, split);
                    assert_eq!((item.family, item.level), (name, level));
                    assert_eq!(item.fields.len(), family.fields().len(), "{name}");
                    let Ok(Label::Triad {
                        family: labelled,
                        instance,
                        ..
                    }) = Label::parse(&item.label)
                    else {
                        panic!("{name}: label does not parse: {}", item.label)
                    };
                    assert_eq!(labelled.name(), name);
                    // Scoring: the reference is right, the near miss parses and is wrong.
                    let judge = |answer: &str| family.judge_json(&instance, answer).unwrap();
                    assert_eq!(judge(&item.answer), Verdict::Correct, "{name} {level}");
                    let near_miss = family.near_miss_json(&instance).unwrap();
                    assert!(
                        matches!(judge(&near_miss), Verdict::Wrong(_)),
                        "{name} {level}: near miss {near_miss:?} judged {:?}",
                        judge(&near_miss)
                    );
                    // Verify: certification, the reference and every column rebuilt from the label.
                    family.certify_json(&instance).unwrap().unwrap();
                    assert_eq!(family.reference_json(&instance).unwrap(), item.answer);
                    assert_eq!(family.content_key_json(&instance).unwrap(), item.key);
                    let rebuilt = family
                        .rebuild_json(level, &item.label, &instance, PromptStyle::Chat)
                        .unwrap();
                    assert_eq!(
                        (
                            rebuilt.prompt,
                            rebuilt.answer,
                            rebuilt.trace,
                            rebuilt.fields,
                            rebuilt.key
                        ),
                        (item.prompt, item.answer, item.trace, item.fields, item.key)
                    );
                    // Audit: the family's tally takes the instance and reports shortcuts.
                    let mut tally = family.tally();
                    assert!(tally.add_json(&instance), "{name}");
                    assert!(!tally.add_json("{}"), "{name}: a non-instance is skipped");
                    let findings = tally.finish(AnswerSpread {
                        most_common: 1,
                        total: 1,
                    });
                    assert!(!findings.shortcuts.is_empty(), "{name}");
                }
            }
        }
    }
}

#[cfg(test)]
mod trace_tests {
    use super::FAMILIES;
    use crate::options::OptionSet;
    use crate::{DynFamily, GenOptions, ItemCoords, Label, PromptStyle};

    /// Items per (family, level, options) the trace test takes.
    const ITEMS: u64 = 6;

    fn options(assignments: &[&str]) -> GenOptions {
        let mut families = OptionSet::default();
        for a in assignments {
            families.set(a).unwrap();
        }
        GenOptions {
            certify: false,
            families,
        }
    }

    /// Every family at every level (unsatisfiable deduction and explanation-mode abduction
    /// included) writes a trace that its checker accepts step by step and that concludes the
    /// reference answer; a trace with one step changed, or cut short, is refused.
    #[test]
    fn every_trace_checks_and_concludes_the_answer() {
        let settings = [
            options(&[]),
            options(&["unsat_ratio=0.5", "abduction_mode=explanation"]),
        ];
        for &family in FAMILIES {
            for level in family.levels() {
                for (s, generation) in settings.iter().enumerate() {
                    let items = (0..400).filter_map(|index| {
                        let coords = ItemCoords {
                            seed: 11 + s as u64,
                            family: family.name(),
                            level,
                            index,
                        };
                        family
                            .candidate(&coords, generation, PromptStyle::Chat)
                            .unwrap()
                    });
                    for item in items.take(ITEMS as usize) {
                        let what = format!("{} level {level} {}", family.name(), item.id());
                        let Ok(Label::Triad { instance, .. }) = Label::parse(&item.label) else {
                            panic!("{what}: label")
                        };
                        // Deduction's hardest levels may need more case lines than a trace
                        // keeps (MAX_TRACE_LINES). Every other item here has one (an abduction
                        // proof by cases can pass its bounds too, about 1 in 5,000 explanation
                        // items, none among these).
                        let may_lack = family.name() == "deduction" && level >= 9;
                        if item.trace.is_empty() && may_lack {
                            continue;
                        }
                        assert!(!item.trace.is_empty(), "{what}: no trace for {instance}");
                        let check = |t: &str| family.check_trace_json(&instance, t).unwrap();
                        assert_eq!(check(&item.trace), Ok(()), "{what}:\n{}", item.trace);
                        assert_eq!(family.trace_json(&instance).unwrap(), item.trace);
                        let lines: Vec<&str> = item.trace.lines().collect();
                        let cut = lines[..lines.len() - 1].join("\n");
                        assert!(check(&cut).is_err(), "{what}: a cut trace passed");
                        let tampered = tamper(&item.trace);
                        assert!(check(&tampered).is_err(), "{what}: passed:\n{tampered}");
                        assert_progress(family, &instance, &item.trace, &cut, &tampered, &what);
                    }
                }
            }
        }
    }

    /// What a shaped reward reads: the reference trace is complete (credit 1); a cut trace checks
    /// every line it has but is not complete; a tampered one checks the lines before the change
    /// and is refused at a line it has.
    fn assert_progress(
        family: &dyn DynFamily,
        instance: &str,
        trace: &str,
        cut: &str,
        tampered: &str,
        what: &str,
    ) {
        let progress = |t: &str| family.trace_progress_json(instance, t).unwrap();
        let lines = trace.lines().count();
        let full = progress(trace);
        assert_eq!(
            (full.checked_lines, full.complete, full.reference_lines),
            (lines, true, lines),
            "{what}"
        );
        assert_eq!(full.credit(), 1.0);
        for refused in [cut, tampered] {
            let error = family
                .check_trace_json(instance, refused)
                .unwrap()
                .unwrap_err();
            assert!(
                error.starts_with("line "),
                "{what}: {error:?} names no line"
            );
        }
        let short = progress(cut);
        assert_eq!(
            (short.checked_lines, short.complete),
            (lines - 1, false),
            "{what}: every line of a cut trace checks: {:?}\n{cut}",
            family.check_trace_json(instance, cut).unwrap()
        );
        let changed = progress(tampered);
        let unchanged = trace
            .lines()
            .zip(tampered.lines())
            .take_while(|(a, b)| a == b)
            .count();
        assert!(!changed.complete, "{what}");
        assert!(
            (unchanged..tampered.lines().count()).contains(&changed.checked_lines),
            "{what}: {changed:?}, {unchanged} lines unchanged:\n{tampered}"
        );
        assert!(progress("").credit() == 0.0, "{what}");
    }

    /// The trace with one claim made false: a hidden term's value (induction), the first forced
    /// truth value (deduction), else the first number (a premise, a running sum) or verdict.
    fn tamper(trace: &str) -> String {
        if let Some(line) = trace.lines().find(|l| l.ends_with(" (hidden)")) {
            let (head, value) = line
                .trim_end_matches(" (hidden)")
                .rsplit_once(" = ")
                .unwrap();
            let changed = format!("{head} = {}1 (hidden)", value);
            return trace.replacen(line, &changed, 1);
        }
        for (from, to) in [(" is True", " is False"), (" is False", " is True")] {
            if let Some(at) = trace.find(from) {
                return format!("{}{to}{}", &trace[..at], &trace[at + from.len()..]);
            }
        }
        match trace.find(|c: char| c.is_ascii_digit()) {
            Some(at) => {
                let digit = trace.as_bytes()[at];
                let other = if digit == b'9' {
                    '1'
                } else {
                    (digit + 1) as char
                };
                format!("{}{other}{}", &trace[..at], &trace[at + 1..])
            }
            None => trace.replacen(" is unreachable", " is reachable", 1),
        }
    }
}

#[cfg(test)]
mod level_tests {
    use crate::family::GenError;
    use crate::rng::Draw;

    /// A level outside a family's range is an error from `Family::generate` itself, not a panic.
    #[test]
    fn generate_refuses_unknown_levels() {
        use crate::Family;
        use crate::families::{abduction::Abduction, deduction::Deduction, induction::Induction};
        let mut draw = Draw::from_seed_bytes([1; 32]);
        for level in [0, 11, 255] {
            assert!(matches!(
                Deduction.generate(level, &Default::default(), &mut draw),
                Err(GenError::NoSuchLevel { .. })
            ));
            assert!(matches!(
                Induction.generate(level, &Default::default(), &mut draw),
                Err(GenError::NoSuchLevel { .. })
            ));
            assert!(matches!(
                Abduction.generate(level, &Default::default(), &mut draw),
                Err(GenError::NoSuchLevel { .. })
            ));
        }
    }
}
