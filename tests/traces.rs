//! The `trace` column: on every row of a generated dataset (every family, levels 1–10,
//! unsatisfiable deduction and both abduction questions), the family's checker accepts the trace
//! step by step, and the trace-target response `<think>\n{trace}\n</think>\n<answer>\n{answer}\n</answer>`
//! scores correct with the scorer, in every prompt style.

use triad::dataset::shard::read_rows;
use triad::generators::Label;
use triad::reward::{Preset, score};

use crate::util::{generate, shards};

#[test]
fn every_rows_trace_checks_and_its_response_scores_correct() {
    for style in ["chat", "paper", "compact"] {
        let dir = tempfile::tempdir().unwrap();
        generate(
            dir.path(),
            &[
                "--levels",
                "1-10",
                "--train",
                "3",
                "--test",
                "1",
                "--seed",
                "5",
                "--prompt-style",
                style,
                "--unsat-ratio",
                "0.3",
                "--abduction-mode",
                "mixed",
            ],
        );
        let (mut rows, mut traced) = (0, 0);
        for shard in shards(dir.path()) {
            for row in read_rows(&shard).unwrap() {
                let row = row.unwrap();
                rows += 1;
                let what = format!("{style} {} level {} {}", row.family, row.level, row.id);
                if row.trace.is_empty() {
                    // Only deduction's hardest levels may pass the trace's line bound.
                    assert!(
                        row.family == "deduction" && row.level >= 9,
                        "{what}: no trace"
                    );
                    continue;
                }
                traced += 1;
                let Ok(Label::Triad {
                    family, instance, ..
                }) = Label::parse(&row.label)
                else {
                    panic!("{what}: label")
                };
                assert_eq!(
                    family.check_trace_json(&instance, &row.trace).unwrap(),
                    Ok(()),
                    "{what}"
                );
                // The paper style pre-fills `<think>`: the response continues after it.
                let open = if row.prompt_tail().trim_end().ends_with("<think>") {
                    ""
                } else {
                    "<think>"
                };
                let response = format!(
                    "{open}\n{}\n</think>\n<answer>\n{}\n</answer>",
                    row.trace, row.answer
                );
                let scored = score(
                    &response,
                    &row.label,
                    Some(row.prompt_tail()),
                    Preset::Paper,
                );
                assert!(scored.correct, "{what}: {:?}", scored.reason);
            }
        }
        assert!(rows >= 3 * 10 * 4, "{style}: {rows} rows");
        assert!(
            traced * 10 >= rows * 9,
            "{style}: {traced} of {rows} rows traced"
        );
    }
}
