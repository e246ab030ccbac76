//! Compatibility with the paper's released test splits (`../shared/reference/paper`).

use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use triad::dataset::shard::read_batches;
use triad::generators::families::deduction::{Deduction, DeductionInstance, variable_names};
use triad::generators::rng::Draw;
use triad::generators::{Family, ItemCoords, PromptStyle};
use triad::reward::{self, Preset};

use crate::util::paper_data;

struct PaperRow {
    prompt: String,
    solution: String,
    formulas: Option<Vec<String>>,
}

fn struct_child<'a>(array: &'a dyn Array, name: &str) -> &'a dyn Array {
    array
        .as_struct()
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no field {name}"))
        .as_ref()
}

fn read_paper(path: &Path) -> Vec<PaperRow> {
    let mut rows = Vec::new();
    for batch in read_batches(path).unwrap() {
        rows.extend(paper_rows(&batch));
    }
    rows
}

fn paper_rows(batch: &RecordBatch) -> Vec<PaperRow> {
    let prompts = batch.column_by_name("prompt").unwrap().as_list::<i32>();
    let truth = struct_child(
        batch.column_by_name("reward_model").unwrap().as_ref(),
        "ground_truth",
    );
    let solutions = struct_child(truth, "solution_text_format").as_string::<i32>();
    let specs = batch.column_by_name("puzzle_spec");
    (0..batch.num_rows())
        .map(|i| {
            let messages = prompts.value(i);
            let content = struct_child(messages.as_ref(), "content").as_string::<i32>();
            let formulas = specs.map(|spec| {
                let list = struct_child(spec.as_ref(), "formulas")
                    .as_list::<i32>()
                    .value(i);
                let list = list.as_string::<i32>();
                (0..list.len()).map(|k| list.value(k).to_string()).collect()
            });
            PaperRow {
                prompt: content.value(0).to_string(),
                solution: solutions.value(i).to_string(),
                formulas,
            }
        })
        .collect()
}

fn files(dir: &Path, family: &str) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(family))
        .collect();
    found.sort();
    assert!(
        !found.is_empty(),
        "no {family} reference files in {}",
        dir.display()
    );
    found
}

fn paper_instance(row: &PaperRow) -> DeductionInstance {
    let values: Vec<bool> = row.solution.lines().map(|l| l.ends_with("True")).collect();
    DeductionInstance {
        variables: variable_names(values.len()),
        formulas: row
            .formulas
            .clone()
            .expect("deduction rows have puzzle_spec"),
        solution: Some(values),
        unsat_possible: false,
    }
}

/// The `paper` prompt style renders the released rows' prompts byte for byte, and Z3 confirms
/// their answers are the unique models.
#[test]
fn paper_style_is_byte_identical_to_released_deduction_rows() {
    let Some(data) = paper_data("paper_style_is_byte_identical_to_released_deduction_rows") else {
        return;
    };
    let mut checked = 0;
    for path in files(&data, "deduction") {
        for row in read_paper(&path) {
            let instance = paper_instance(&row);
            let prompt = Deduction.render(&instance, PromptStyle::Paper);
            assert_eq!(prompt.messages[0].content, row.prompt, "{}", path.display());
            assert_eq!(Deduction.reference_answer(&instance) + "\n", row.solution);
            Deduction.certify(&instance).unwrap();
            checked += 1;
        }
    }
    assert_eq!(checked, 400);
}

/// The released rows' own ground truth scores 3.0 under `paper`, for all three families, with the
/// label as a bare string, as the `ground_truth` object, with and without the prompt.
#[test]
fn released_ground_truth_scores_three() {
    let Some(data) = paper_data("released_ground_truth_scores_three") else {
        return;
    };
    for family in ["deduction", "induction", "abduction"] {
        for path in files(&data, family) {
            for row in read_paper(&path) {
                let response = format!("Let me reason.</think>\n<answer>{}</answer>", row.solution);
                let object =
                    serde_json::json!({"solution_text_format": row.solution, "statements": []})
                        .to_string();
                for label in [row.solution.as_str(), object.as_str()] {
                    for prompt in [Some(row.prompt.as_str()), None] {
                        let score = reward::score(&response, label, prompt, Preset::Paper);
                        assert_eq!(score.score, 3.0, "{}: {score:?}", path.display());
                        assert_eq!(score.family.as_deref(), Some(family));
                    }
                }
            }
        }
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0.0), |(s, n), v| (s + v, n + 1.0));
    sum / n
}

/// Levels 1–4 reproduce the paper's distribution: formula count and formula length match the
/// released test rows within sampling error.
#[test]
fn generated_levels_match_the_paper_distribution() {
    let Some(data) = paper_data("generated_levels_match_the_paper_distribution") else {
        return;
    };
    for level in 1..=4u8 {
        let path = data.join(format!("deduction-level-{level}-test.parquet"));
        let paper: Vec<Vec<String>> = read_paper(&path)
            .into_iter()
            .map(|r| r.formulas.unwrap())
            .collect();
        let ours: Vec<Vec<String>> = (0..400)
            .map(|index| {
                let coords = ItemCoords {
                    seed: 5,
                    family: "deduction",
                    level,
                    index,
                };
                Deduction
                    .generate(level, &Default::default(), &mut Draw::for_item(&coords))
                    .unwrap()
                    .unwrap()
                    .formulas
            })
            .collect();
        let count = |set: &[Vec<String>]| mean(set.iter().map(|f| f.len() as f64));
        let length =
            |set: &[Vec<String>]| mean(set.iter().flatten().map(|f| f.chars().count() as f64));
        let negations =
            |set: &[Vec<String>]| mean(set.iter().flatten().map(|f| f.matches('¬').count() as f64));
        let (pc, oc) = (count(&paper), count(&ours));
        let (pl, ol) = (length(&paper), length(&ours));
        let (pn, on) = (negations(&paper), negations(&ours));
        eprintln!(
            "level {level}: formulas {pc:.2} vs {oc:.2}; chars {pl:.1} vs {ol:.1}; ¬ {pn:.2} vs {on:.2}"
        );
        assert!(
            (pc - oc).abs() < 0.35,
            "level {level}: formula count {pc} vs {oc}"
        );
        assert!(
            (pl - ol).abs() / pl < 0.12,
            "level {level}: formula length {pl} vs {ol}"
        );
        assert!(
            (pn - on).abs() / pn.max(0.5) < 0.2,
            "level {level}: negations {pn} vs {on}"
        );
    }
}

fn induction_rows(path: &Path) -> Vec<(String, Vec<i64>)> {
    let mut out = Vec::new();
    for batch in read_batches(path).unwrap() {
        let prompts = batch.column_by_name("prompt").unwrap().as_list::<i32>();
        let sequences = batch
            .column_by_name("complete_sequence")
            .unwrap()
            .as_list::<i32>();
        for i in 0..batch.num_rows() {
            let messages = prompts.value(i);
            let content = struct_child(messages.as_ref(), "content")
                .as_string::<i32>()
                .value(0)
                .to_string();
            let seq = sequences.value(i);
            let seq = seq.as_primitive::<arrow::datatypes::Int64Type>();
            out.push((content, seq.values().to_vec()));
        }
    }
    out
}

/// The `paper` style renders the released induction prompts byte for byte; and the determinacy
/// check finds the released items whose answer the visible terms do not determine.
#[test]
fn paper_style_is_byte_identical_to_released_induction_rows() {
    let Some(data) = paper_data("paper_style_is_byte_identical_to_released_induction_rows") else {
        return;
    };
    use triad::generators::families::induction::{Induction, InductionInstance, determined};
    let mut rows = 0;
    for level in 1..=5u8 {
        let path = data.join(format!("induction-level-{level}-test.parquet"));
        let mut ambiguous = 0;
        let all = induction_rows(&path);
        for (prompt, sequence) in &all {
            let user = prompt.split("<|im_start|>user\n").nth(1).unwrap();
            let list = user.lines().nth(1).unwrap();
            let items: Vec<&str> = list.trim_matches(['[', ']']).split(", ").collect();
            let masked = items.iter().position(|t| *t == "'?'").unwrap();
            let instance = InductionInstance {
                sequence: sequence.clone(),
                masked: vec![masked],
                rule: String::new(),
                missing_term_header: user
                    .starts_with("Given the following sequence with a missing term,"),
                checked_level: level,
            };
            assert_eq!(
                &Induction.render(&instance, PromptStyle::Paper).messages[0].content,
                prompt
            );
            ambiguous += usize::from(determined(level, &instance).is_err());
            rows += 1;
        }
        eprintln!(
            "paper induction level {level}: {ambiguous}/{} released test items not determined",
            all.len()
        );
        if level >= 3 {
            assert!(
                ambiguous > 0,
                "the paper's k-step items include undetermined ones"
            );
        }
    }
    assert_eq!(rows, 500);
}

fn python_list(line: &str, key: &str) -> Vec<String> {
    let inner = line
        .strip_prefix(key)
        .unwrap()
        .trim()
        .trim_start_matches("['")
        .trim_end_matches("']");
    if inner.is_empty() || inner == "[]" {
        return Vec::new();
    }
    inner.split("', '").map(String::from).collect()
}

/// The `paper` style renders the released abduction prompts byte for byte; Z3 agrees with every
/// released label; and the membership shortcut scores 100% on the released data.
#[test]
fn released_abduction_rows_render_identically_and_z3_agrees() {
    let Some(data) = paper_data("released_abduction_rows_render_identically_and_z3_agrees") else {
        return;
    };
    use triad::generators::families::abduction::{Abduction, AbductionInstance, Mode};
    let mut rows = 0;
    let (mut goals_seen, mut membership_hits) = (0, 0);
    for path in files(&data, "abduction") {
        for row in read_paper(&path) {
            let user = row.prompt.split("<|im_start|>user\n").nth(1).unwrap();
            let lines: Vec<&str> = user.lines().collect();
            let reachable: Vec<bool> = row
                .solution
                .lines()
                .map(|l| !l.ends_with("unreachable"))
                .collect();
            let instance = AbductionInstance {
                mode: Mode::Reachability,
                premises: python_list(lines[0], "premises:"),
                known: python_list(lines[1], "known_atoms:"),
                goals: python_list(lines[2], "goals:"),
                reachable: reachable.clone(),
                observation: None,
                hypotheses: vec![],
                explanations: vec![],
            };
            assert_eq!(
                Abduction.render(&instance, PromptStyle::Paper).messages[0].content,
                row.prompt
            );
            Abduction
                .certify(&instance)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            for (goal, label) in instance.goals.iter().zip(&reachable) {
                goals_seen += 1;
                membership_hits += usize::from(instance.known.contains(goal) == *label);
            }
            rows += 1;
        }
    }
    assert_eq!(rows, 1000);
    eprintln!(
        "membership shortcut on the paper's abduction test rows: {membership_hits}/{goals_seen}"
    );
    assert_eq!(membership_hits, goals_seen, "the paper's flaw, reproduced");
}
