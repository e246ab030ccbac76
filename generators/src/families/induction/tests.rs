use super::determinacy::{fit_determinacy, predictions};
use super::levels::{PAPER_BOUND, explained_below};
use super::rules::Fit;
use super::*;
use crate::family::ItemCoords;

fn instance(level: u8, index: u64) -> InductionInstance {
    let coords = ItemCoords {
        seed: 13,
        family: "induction",
        level,
        index,
    };
    Induction
        .generate(level, &Default::default(), &mut Draw::for_item(&coords))
        .unwrap()
        .expect("generates")
}

#[test]
fn every_level_generates_determined_certified_items() {
    for level in 1..=10 {
        for index in 0..25 {
            let inst = instance(level, index);
            assert_eq!(
                determined(level, &inst),
                Ok(inst.answers()),
                "level {level}: {inst:?}"
            );
            Induction
                .certify(&inst)
                .unwrap_or_else(|e| panic!("level {level}: {e}: {inst:?}"));
            assert_eq!(
                Induction.judge(&inst, &Induction.reference_answer(&inst)),
                Verdict::Correct
            );
            assert!(inst.sequence.iter().all(|v| v.abs() <= PAPER_BOUND));
        }
    }
}

fn built(sequence: &[i64], masked: &[usize], level: u8) -> InductionInstance {
    InductionInstance {
        sequence: sequence.to_vec(),
        masked: masked.to_vec(),
        rule: "hand-built".into(),
        missing_term_header: false,
        checked_level: level,
    }
}

/// Purpose-built ambiguous sequences are refused, by the enumeration and by Z3.
#[test]
fn ambiguous_sequences_are_refused() {
    // 2, 4, ?: +2 and ×2 both explain the prefix.
    let doubling = built(&[2, 4, 8], &[2], 1);
    assert!(determined(1, &doubling).is_err());
    assert!(Induction.certify(&doubling).is_err());
    // (+2, −1, ×2) from 1: the third step is shown once, as 2 → 4 (+2 or ×2).
    let cyclic = built(&[1, 3, 2, 4, 6, 5, 10], &[6], 3);
    assert!(
        determined(3, &cyclic).is_err(),
        "{:?}",
        predictions(3, &cyclic)
    );
    // A 5-step rule with too few terms: the masked step was never shown.
    let short = built(&[1, 3, 2, 6, 3, 5, 4], &[6], 5);
    assert!(determined(5, &short).is_err());
    // Regression (found by `generate --certify`): a step shown only as 0 → 0 is ×r for any r,
    // so a period-4 rule reusing it on 1 can give 2, 3, 4, …
    let zero = built(&[2, 1, 0, 0, 3, 2, 1, 0], &[7], 5);
    assert!(determined(5, &zero).is_err());
    assert!(Induction.certify(&zero).is_err());
    // At level 6 a cubic through the visible terms competes with a geometric rule.
    let geometric = built(&[1, 2, 4, 8, 16], &[4], 6);
    assert!(determined(6, &geometric).is_err());
}

#[test]
fn determined_sequences_pass_z3() {
    let clear = built(&[3, 4, 5, 6, 7, 8, 9], &[6], 1);
    assert_eq!(determined(1, &clear), Ok(vec![9]));
    Induction.certify(&clear).unwrap();
    let wrong_label = built(&[3, 4, 5, 6, 7, 8, 10], &[6], 1);
    assert!(Induction.certify(&wrong_label).is_err());
}

#[test]
fn answers_parse_strictly() {
    let inst = built(&[3, 4, 5, 6, 7, 8, 9], &[6], 1);
    for ok in ["9", " +9. ", "9\n"] {
        assert_eq!(Induction.judge(&inst, ok), Verdict::Correct, "{ok}");
    }
    assert!(matches!(Induction.judge(&inst, "10"), Verdict::Wrong(_)));
    for hedge in ["9 or 10", "9, 10", "nine", "x = 9", ""] {
        assert!(
            matches!(Induction.judge(&inst, hedge), Verdict::Unparseable(_)),
            "{hedge}"
        );
    }
    let two = built(&[1, 4, 9, 16, 25, 36, 49, 64], &[5, 7], 10);
    assert_eq!(Induction.judge(&two, "36, 64"), Verdict::Correct);
    assert!(matches!(Induction.judge(&two, "36,−64"), Verdict::Wrong(_)));
    assert!(matches!(
        Induction.judge(&two, "36"),
        Verdict::Unparseable(_)
    ));
}

#[test]
fn paper_rendering() {
    let inst = built(&[1, -1, 1, -1, 1], &[4], 1);
    let text = &Induction.render(&inst, PromptStyle::Paper).messages[0].content;
    assert!(text.contains("<|im_start|>user\nGiven the following sequence,\n['1', '-1', '1', '-1', '?']\nWhat is the value at the question mark?\n<|im_end|>"));
    let mut missing = built(&[4, 7, 10, 13, 16, 19], &[1], 2);
    missing.missing_term_header = true;
    let text = &Induction.render(&missing, PromptStyle::Paper).messages[0].content;
    assert!(
        text.contains(
            "Given the following sequence with a missing term,\n[4, '?', 10, 13, 16, 19]\n"
        )
    );
}

/// A cyclic level's items need the level's own period: no lower level's classes reproduce what is
/// shown (found by `triad verify` on the 1M run: level-5 items whose seven visible terms a 3-step
/// rule explains were the same prompts as level-3 items).
#[test]
fn cyclic_levels_are_not_explained_by_a_lower_level() {
    let plus_minus = partial_of(&[5, 9, 5, 9, 13, 9, 13], &[6]);
    assert!(explained_below(5, &plus_minus));
    assert!(!explained_below(3, &plus_minus));
    for level in 3..=5 {
        for index in 0..12_000 {
            let inst = instance(level, index);
            assert!(
                !explained_below(level, &inst.partial()),
                "level {level}: {inst:?}"
            );
        }
    }
}

/// Every level's items have one answer under every rule the dataset itself teaches: at levels
/// 1–5 Z3 proves it over all cyclic rules of up to the level's cycle with `+r`, `−r`, `×r` and
/// floor `÷d` (any constants) — independently of the enumeration the generator uses — and at
/// levels 6–10 the union of 6–10's classes predicts exactly the stored answer.
#[test]
fn no_item_has_a_second_answer_under_the_union_class() {
    use crate::family::{DynFamily, ItemCoords};
    for level in 1..=10u8 {
        let mut seen = 0;
        for index in 0..400 {
            let coords = ItemCoords {
                seed: 11,
                family: "induction",
                level,
                index,
            };
            let Some(item) = Induction
                .candidate(&coords, &crate::GenOptions::default(), PromptStyle::Chat)
                .unwrap()
            else {
                continue;
            };
            let label = crate::Label::parse(&item.label).unwrap();
            let crate::Label::Triad { instance, .. } = label else {
                panic!("a triad label")
            };
            let inst: InductionInstance = serde_json::from_str(&instance).unwrap();
            if level <= 5 {
                solver::certify_cyclic(&inst, level)
                    .unwrap_or_else(|e| panic!("level {level}: {e}: {inst:?}"));
            }
            match fit_determinacy(level, &inst.partial()) {
                Fit::Predicts(p) => {
                    assert_eq!(p.into_iter().collect::<Vec<_>>(), vec![inst.answers()])
                }
                other => panic!("level {level}: {other:?}: {inst:?}"),
            }
            assert!(
                item.prompt.messages[1]
                    .content
                    .contains(&class_sentence(level))
            );
            seen += 1;
        }
        assert!(seen > 0, "level {level} made no test item");
    }
    // The motivating case: level 1's −2/+3 reading of 3, 1, 4, 2, 5 gives 3, ÷2/+3 gives 2.
    let two_answers = built(&[3, 1, 4, 2, 5, 3], &[5], 1);
    assert!(determined(1, &two_answers).is_err());
    assert!(Induction.certify(&two_answers).is_err());
}

/// A hostile label cannot make the determinacy check (run by `certify` and `verify`) take
/// exponential time: 1, 1, 1, … fits dozens of ÷d per step, and five hidden terms over a 5-step
/// cycle multiplied them to 64⁵ simulations (minutes); past the bound the answer is open.
#[test]
fn step_combinations_are_bounded() {
    let inst = built(&[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], &[6, 7, 8, 9, 10], 5);
    let why = determined(5, &inst).unwrap_err();
    assert!(why.contains("combinations of steps fit"), "{why}");
    assert!(Induction.certify(&inst).is_err());
}
