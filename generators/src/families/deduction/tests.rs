use super::*;
use crate::family::{DynFamily, ItemCoords, Split};

/// The first instance the stream makes at candidate `index` or after (a candidate may be
/// rejected).
fn instance(level: u8, index: u64, options: &DeductionOptions) -> DeductionInstance {
    (index..index + 100)
        .find_map(|index| {
            let coords = ItemCoords {
                seed: 11,
                family: "deduction",
                level,
                index,
            };
            let mut draw = Draw::for_item(&coords);
            Deduction.generate(level, options, &mut draw).unwrap()
        })
        .expect("generates")
}

#[test]
fn every_level_generates_certified_unique_instances() {
    for level in 1..=10 {
        let count = if level <= 7 { 6 } else { 2 };
        for index in 0..count {
            let inst = instance(level, index, &DeductionOptions::default());
            let s = shape(level).unwrap();
            assert_eq!(inst.variables.len(), s.vars);
            if s.max_formulas.is_none() {
                assert!((3..=6).contains(&inst.formulas.len()));
            }
            Deduction
                .certify(&inst)
                .unwrap_or_else(|e| panic!("level {level}: {e}"));
            let reference = Deduction.reference_answer(&inst);
            assert_eq!(Deduction.judge(&inst, &reference), Verdict::Correct);
            // Every variable named in the answer appears in some formula.
            let formulas = Deduction::parse_formulas(&inst).unwrap();
            let mut seen = vec![false; s.vars];
            formulas.iter().for_each(|f| f.visit_vars(&mut seen));
            assert!(
                seen.iter().all(|&x| x),
                "level {level}: a variable appears in no formula"
            );
        }
    }
}

/// The fast path and Z3 must agree: on random formula sets (most with zero or many models) and on
/// the unique instances the generator keeps.
#[test]
fn truth_tables_and_z3_agree_on_thousands_of_instances() {
    let mut draw = Draw::from_seed_bytes([5; 32]);
    let mut checked = 0;
    for round in 0..2500 {
        let n = 3 + round % 10;
        let depth = 1 + (round % 4) as u32;
        let count = draw.range(1, 6) as usize;
        let formulas: Vec<Formula> = (0..count)
            .map(|_| Formula::random(&mut draw, n, depth))
            .collect();
        let (table_count, _) = table::solve(&formulas, n);
        let z3 = solver::models(&formulas, n, 3).unwrap();
        assert_eq!(table_count.min(3), z3.len() as u64, "round {round}");
        for model in &z3 {
            assert!(formulas.iter().all(|f| f.eval(model)));
        }
        checked += 1;
    }
    for level in 1..=6 {
        for index in 0..100 {
            let inst = instance(level, index, &DeductionOptions::default());
            Deduction.certify(&inst).unwrap();
            checked += 1;
        }
    }
    assert!(checked >= 3000);
}

#[test]
fn unsat_instances_are_proven_unsat() {
    let options = DeductionOptions { unsat_ratio: 1.0 };
    for level in [1, 3, 5, 7] {
        let inst = instance(level, 1, &options);
        assert!(inst.solution.is_none());
        Deduction.certify(&inst).unwrap();
        assert_eq!(Deduction.judge(&inst, UNSAT_ANSWER), Verdict::Correct);
        let guess = render_assignment(&inst.variables, &vec![true; inst.variables.len()]);
        assert!(matches!(Deduction.judge(&inst, &guess), Verdict::Wrong(_)));
        let prompt = Deduction.render(&inst, PromptStyle::Chat);
        assert!(
            prompt.messages[0]
                .content
                .contains("No satisfying assignment exists.")
        );
    }
}

#[test]
fn certify_rejects_wrong_claims() {
    let mut inst = instance(2, 0, &DeductionOptions::default());
    let mut flipped = inst.clone();
    let first = flipped.solution.as_mut().unwrap();
    first[0] = !first[0];
    assert!(matches!(
        Deduction.certify(&flipped),
        Err(CertifyError::NotASolution(_))
    ));
    inst.formulas.truncate(1);
    let unique_before = Deduction.certify(&inst);
    assert!(
        matches!(unique_before, Err(CertifyError::NotUnique(_))),
        "{unique_before:?}"
    );
    let mut claims_unsat = instance(2, 0, &DeductionOptions::default());
    claims_unsat.solution = None;
    assert!(matches!(
        Deduction.certify(&claims_unsat),
        Err(CertifyError::Satisfiable(_))
    ));
}

fn fixed() -> DeductionInstance {
    // (A ∨ B), ¬A: models with A false and B true; C and D free → two variables pinned, so use
    // formulas pinning all four.
    DeductionInstance {
        variables: variable_names(4),
        formulas: vec![
            "(A ∨ B)".into(),
            "¬A".into(),
            "(C ↔ B)".into(),
            "(D ⊕ C)".into(),
        ],
        solution: Some(vec![false, true, true, false]),
        unsat_possible: false,
    }
}

#[test]
fn judging() {
    let inst = fixed();
    Deduction.certify(&inst).unwrap();
    let ok = "(1) A is false\n(2) B is true\n(3) C is true\n(4) D is false";
    assert_eq!(Deduction.judge(&inst, ok), Verdict::Correct);
    assert_eq!(
        Deduction.judge(&inst, "**A** = False, B: TRUE, `C` is True; D is false."),
        Verdict::Correct
    );
    let wrong = "(1) A is false\n(2) B is true\n(3) C is true\n(4) D is true";
    assert_eq!(
        Deduction.judge(&inst, wrong),
        Verdict::Wrong("formula 4 `(D ⊕ C)` is false".into())
    );
    for hedge in [
        "A is false, A is true, B is true, C is true, D is false",
        "A is false, B is true, C is true",
        "A is false, B is true, C is true, D is false, E is true",
        "A is false, B is true, C is true, D is false. Or no satisfying assignment.",
        "",
    ] {
        assert!(
            matches!(Deduction.judge(&inst, hedge), Verdict::Unparseable(_)),
            "{hedge}"
        );
    }
    assert!(matches!(
        Deduction.judge(&inst, "No satisfying assignment exists."),
        Verdict::Wrong(_)
    ));
}

/// Any satisfying assignment is correct, not only the stored one (matters if a label is ever
/// built by hand without uniqueness).
#[test]
fn any_model_is_correct() {
    let inst = DeductionInstance {
        variables: variable_names(2),
        formulas: vec!["(A ∨ B)".into()],
        solution: Some(vec![true, true]),
        unsat_possible: false,
    };
    assert_eq!(
        Deduction.judge(&inst, "A is true\nB is false"),
        Verdict::Correct
    );
    assert_eq!(
        Deduction.judge(&inst, "A is false\nB is true"),
        Verdict::Correct
    );
}

#[test]
fn paper_style_prompt_shape() {
    let inst = fixed();
    let prompt = Deduction.render(&inst, PromptStyle::Paper);
    assert_eq!(prompt.messages.len(), 1);
    let text = &prompt.messages[0].content;
    assert!(text.starts_with("<|im_start|>system\nYou are a helpful assistant."));
    assert!(text.contains("<|im_start|>user\nBelow are some nested formulas:\n  - (A ∨ B)\n"));
    assert!(text.ends_with(
        "Please list the truth value of each variable\n\n<|im_end|>\n<|im_start|>assistant\n<think>"
    ));
    let chat = Deduction.render(&inst, PromptStyle::Chat);
    assert_eq!(chat.messages[0].role, "system");
    assert!(
        !chat
            .messages
            .iter()
            .any(|m| m.content.contains("<|im_start|>"))
    );
    assert!(chat.messages[1].content.contains("A, B, C and D"));
    // Chat (and compact) number the formulas as the trace cites them; the paper's keeps bullets.
    assert!(
        chat.messages[1]
            .content
            .contains(":\n  1. (A ∨ B)\n  2. ¬A\n  3. (C ↔ B)\n  4. (D ⊕ C)\nList the truth value")
    );
    let trace = Deduction.trace(&inst);
    assert!(trace.contains("formula 2"), "{trace}");
}

#[test]
fn compact_style_is_the_chat_puzzle_and_a_format_hint_in_one_user_message() {
    let mut inst = fixed();
    let chat = Deduction.render(&inst, PromptStyle::Chat);
    let compact = Deduction.render(&inst, PromptStyle::Compact);
    assert_eq!(compact.messages.len(), 1);
    assert_eq!(compact.messages[0].role, "user");
    assert!(!compact.prefills_think);
    assert_eq!(
        compact.messages[0].content,
        format!(
            "{}\n{}",
            chat.messages[1].content,
            crate::frame::COMPACT_HINT
        )
    );
    assert!(!compact.messages[0].content.contains("helpful assistant"));
    // Where an instance may be unsatisfiable, the compact prompt still says what to answer then.
    inst.unsat_possible = true;
    let compact = Deduction.render(&inst, PromptStyle::Compact);
    assert!(compact.messages[0].content.contains(UNSAT_ANSWER));
}

/// One candidate stream feeds both splits: each candidate lands in the split its content picks,
/// asking for one split gives exactly that split's candidates of the same stream (the other's
/// stop early, unfinished), and the two never share content.
#[test]
fn candidates_land_in_their_own_split() {
    use crate::DynFamily;
    let mut train = std::collections::HashSet::new();
    let mut test = std::collections::HashSet::new();
    for index in 0..300 {
        let coords = ItemCoords {
            seed: 3,
            family: "deduction",
            level: 1,
            index,
        };
        let options = crate::GenOptions::default();
        let any = Deduction
            .candidate(&coords, &options, PromptStyle::Chat)
            .unwrap();
        for split in [Split::Train, Split::Test] {
            let only = Deduction
                .candidate_in(&coords, &options, PromptStyle::Chat, Some(split))
                .unwrap();
            let expected = any.as_ref().filter(|item| item.split() == split);
            assert_eq!(only.map(|i| i.key), expected.map(|i| i.key));
        }
        if let Some(item) = any {
            assert_eq!(crate::rng::split_of_key(item.key), item.split());
            match item.split() {
                Split::Train => train.insert(item.key),
                Split::Test => test.insert(item.key),
            };
        }
    }
    assert!(
        train.len() > 150 && test.len() > 30,
        "{} {}",
        train.len(),
        test.len()
    );
    assert!(train.is_disjoint(&test));
}

fn unsat_instance() -> DeductionInstance {
    DeductionInstance {
        variables: variable_names(2),
        formulas: vec!["(A ∧ B)".into(), "¬A".into()],
        solution: None,
        unsat_possible: true,
    }
}

/// The claim of unsatisfiability is read as a claim: the sentence itself, however it is cased or
/// punctuated — never a sentence that merely contains the words.
#[test]
fn unsat_claims_are_read_not_searched_for() {
    let inst = unsat_instance();
    Deduction.certify(&inst).unwrap();
    for claim in [
        UNSAT_ANSWER,
        "no satisfying assignment exists",
        "**No satisfying assignment exists!**",
        "Unsatisfiable.",
        "The formulas are unsatisfiable.",
        "  NO SOLUTION  ",
    ] {
        assert_eq!(Deduction.judge(&inst, claim), Verdict::Correct, "{claim}");
    }
    for negated in [
        "It is not unsatisfiable.",
        "Unsatisfiable? No, a model exists.",
        "Not unsatisfiable",
        "I doubt that no satisfying assignment exists.",
        "Maybe unsatisfiable, maybe not.",
        "unsatisfiable or satisfiable",
    ] {
        assert!(
            matches!(Deduction.judge(&inst, negated), Verdict::Unparseable(_)),
            "{negated}: {:?}",
            Deduction.judge(&inst, negated)
        );
    }
}

#[test]
fn labels_without_variables_or_formulas_or_with_bad_shapes_are_refused() {
    let good = fixed();
    assert_eq!(Deduction.check(&good), Ok(()));
    let mut no_vars = good.clone();
    no_vars.variables.clear();
    no_vars.solution = Some(vec![]);
    let mut no_formulas = good.clone();
    no_formulas.formulas.clear();
    let mut short = good.clone();
    short.solution = Some(vec![true]);
    let mut twice = good.clone();
    twice.variables[1] = "A".into();
    let mut huge = good.clone();
    huge.variables = variable_names(crate::limits::MAX_LIST_ITEMS + 1);
    huge.solution = None;
    for (what, bad) in [
        ("no variables", no_vars),
        ("no formulas", no_formulas),
        ("short solution", short),
        ("repeated name", twice),
        ("too many variables", huge),
    ] {
        assert!(Deduction.check(&bad).is_err(), "{what}");
        let json = serde_json::to_string(&bad).unwrap();
        assert!(
            DynFamily::judge_json(&Deduction, &json, "A is true").is_err(),
            "{what}"
        );
    }
}

/// Judging is linear in the number of variables: names are indexed, never searched.
#[test]
fn judging_many_variables_is_linear() {
    let n = crate::limits::MAX_LIST_ITEMS;
    let mut names = variable_names(n);
    names.reverse(); // not in spreadsheet order: the hash-map index
    let formulas: Vec<String> = names.iter().map(|v| format!("¬{v}")).collect();
    let inst = DeductionInstance {
        variables: names.clone(),
        formulas,
        solution: Some(vec![false; n]),
        unsat_possible: false,
    };
    assert_eq!(Deduction.check(&inst), Ok(()));
    let answer: String = names.iter().map(|v| format!("{v} is false\n")).collect();
    // Quadratic matching made this take seconds at 10^5 names; here it must not even show.
    for _ in 0..20 {
        assert_eq!(Deduction.judge(&inst, &answer), Verdict::Correct);
    }
}

/// The SAT core's uniqueness answers are Z3's, formula by formula, on the extended levels' own
/// draws (planted model, formulas true under it): so generation with it makes Z3's items.
#[test]
fn the_sat_core_answers_uniqueness_as_z3_does() {
    sat_core_agrees_with_z3(40);
}

/// The same on 1,000 items per level (minutes; `cargo test -p triad-generators -- --ignored`).
#[test]
#[ignore]
fn the_sat_core_answers_uniqueness_as_z3_does_on_thousands() {
    sat_core_agrees_with_z3(1000);
}

fn sat_core_agrees_with_z3(items: u16) {
    let mut checked = 0;
    for level in 7..=10 {
        let shape = shape(level).unwrap();
        for item in 0..items {
            let mut seed = [7u8; 32];
            seed[0] = level;
            seed[1..3].copy_from_slice(&item.to_le_bytes());
            let mut draw = crate::rng::Draw::from_seed_bytes(seed);
            let planted: Vec<bool> = (0..shape.vars).map(|_| draw.chance(0.5)).collect();
            let mut fast = solver::SatOracle::new(&planted);
            solver::with_oracle(&planted, |z3| {
                for _ in 0..shape.max_formulas.unwrap() {
                    let f = conditioned(&mut draw, shape, &planted, true).unwrap();
                    fast.add(&f);
                    z3.add(&f);
                    let answer = fast.unique();
                    assert_eq!(answer, z3.unique(), "level {level} item {item}");
                    checked += 1;
                    if answer == Some(true) {
                        break;
                    }
                }
            });
        }
    }
    assert!(
        checked > 4 * usize::from(items) * 20,
        "{checked} answers compared"
    );
}
