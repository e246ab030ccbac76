//! `triad score`: JSONL in, JSONL out, in order, bad lines scored not fatal.

use serde_json::{Value, json};

use crate::util::triad_stdin;

const PAPER_LABEL: &str = "(1) A is False\n(2) B is True\n";

#[test]
fn scores_in_order_and_survives_bad_lines() {
    let triad_label = r#"{"v":1,"family":"deduction","level":1,"prefill":false,"instance":{"variables":["A","B"],"formulas":["(A ∨ B)","¬A"],"solution":[false,true]}}"#;
    let lines = [
        json!({"response": "…</think><answer>(1) A is False\n(2) B is True</answer>", "label": PAPER_LABEL}).to_string(),
        "{not json".to_string(),
        json!({"response": "<think>x</think><answer>A is false\nB is true</answer>", "label": triad_label}).to_string(),
        json!({"response": "x</think><answer>A is true</answer>", "label": {"solution_text_format": PAPER_LABEL, "statements": []}}).to_string(),
        json!({"response": "<think>x</think><answer>A is false\nB is true</answer>", "label": "{\"v\":1}"}).to_string(),
        json!({"response": "x</think><answer>A is false, B is true</answer>", "label": PAPER_LABEL, "prompt": [{"role": "user", "content": "…<|im_start|>assistant\n<think>"}]}).to_string(),
        json!({"response": "<think>x</think><answer>A is false, B is true</answer>", "label": PAPER_LABEL, "prompt": "plain chat prompt"}).to_string(),
    ];
    let output = triad_stdin(&["score", "--reward", "paper"], &(lines.join("\n") + "\n"));
    assert!(output.status.success());
    let results: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let scores: Vec<f64> = results
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert_eq!(scores, vec![3.0, -3.0, 3.0, -1.0, -3.0, 3.0, 3.0]);
    let reason = |i: usize| results[i]["reason"].as_str().unwrap_or("").to_string();
    assert!(reason(1).starts_with("bad_input"));
    assert!(reason(3).starts_with("unparseable"));
    assert!(reason(4).starts_with("bad_label"));
    assert_eq!(results[2]["correct"], true);
    assert_eq!(results[0]["reason"], Value::Null);
    let summary = String::from_utf8(output.stderr).unwrap();
    assert!(
        summary.contains("deduction") && summary.contains("accuracy"),
        "{summary}"
    );
}

#[test]
fn binary_preset_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let output = dir.path().join("out.jsonl");
    let lines = [
        json!({"response": "x</think><answer>A is false, B is true</answer>", "label": PAPER_LABEL}).to_string(),
        json!({"response": "x</think><answer>A is true, B is true</answer>", "label": PAPER_LABEL}).to_string(),
    ];
    std::fs::write(&input, lines.join("\n")).unwrap();
    let run = triad_stdin(
        &[
            "score",
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            "--reward",
            "binary",
        ],
        "",
    );
    assert!(run.status.success());
    let scores: Vec<f64> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["score"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(scores, vec![1.0, 0.0]);
}
