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

/// `--reward steps` through the CLI: a right answer 1, a wrong one half the share of the
/// reference trace its think block gets through (read by the family's checker), a broken format 0.
#[test]
fn steps_preset_credits_checked_trace_lines() {
    let label = deduction_label(
        &["A".into(), "B".into()],
        &["(A ∨ B)".into(), "¬A".into()],
        Some(vec![false, true]),
    );
    let Ok(triad_generators::Label::Triad {
        family, instance, ..
    }) = triad_generators::Label::parse(&label.to_string())
    else {
        panic!("a triad label")
    };
    let trace = family.trace_json(&instance).unwrap();
    let lines: Vec<&str> = trace.lines().collect();
    assert_eq!(lines.len(), 3, "{trace}");
    let right = "(1) A is False\n(2) B is True";
    let wrong = "(1) A is True\n(2) B is True";
    let row = |think: &str, answer: &str| {
        json!({"response": format!("<think>\n{think}\n</think>\n<answer>\n{answer}\n</answer>"),
            "label": label.to_string()})
        .to_string()
    };
    let first_then_wrong = format!(
        "{}\nB is False, since otherwise formula 1 would be false.",
        lines[0]
    );
    let input = [
        row(&trace, right),
        row(&trace, wrong),
        row(&first_then_wrong, wrong),
        row("no steps", wrong),
        json!({"response": format!("{trace}</think><answer>{wrong}</answer>"),
            "label": label.to_string()})
        .to_string(),
    ]
    .join("\n");
    let scores: Vec<f64> = score_bytes(&["score", "--reward", "steps"], input.as_bytes())
        .iter()
        .map(|v| v["score"].as_f64().unwrap())
        .collect();
    assert_eq!(scores, vec![1.0, 0.5, 0.5 / 3.0, 0.0, 0.0]);
}

/// Run `triad ARGS` on `input`; it must succeed; its result lines.
fn score_bytes(args: &[&str], input: &[u8]) -> Vec<Value> {
    let output = crate::util::triad_stdin_bytes(args, input);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn deduction_label(
    variables: &[String],
    formulas: &[String],
    solution: Option<Vec<bool>>,
) -> Value {
    json!({"v": 1, "family": "deduction", "level": 1, "prefill": false, "unsat_possible": true,
        "instance": {"variables": variables, "formulas": formulas, "solution": solution, "unsat_possible": true}})
}

/// Hostile and broken input costs its own line only: each scores the minimum with a reason, every
/// other line is scored, in order, and the process neither aborts nor hangs.
#[test]
fn hostile_lines_cost_only_themselves() {
    let good_label = deduction_label(
        &["A".into(), "B".into()],
        &["(A ∨ B)".into(), "¬A".into()],
        Some(vec![false, true]),
    );
    let good = json!({"response": "<think>x</think><answer>A is false\nB is true</answer>", "label": good_label.to_string()}).to_string();
    let deep = format!("{}A{}", "(".repeat(100_000), ")".repeat(100_000));
    let deep_label = deduction_label(&["A".into()], &[deep], Some(vec![true]));
    let many: Vec<String> = (0..1_000_000).map(|i| format!("V{i}")).collect();
    let wide_label = deduction_label(&many, &["A".into()], None);
    let unsat_label = deduction_label(
        &["A".into(), "B".into()],
        &["(A ∧ B)".into(), "¬A".into()],
        None,
    );
    let unsat = |answer: &str| {
        json!({"response": format!("<think>x</think><answer>{answer}</answer>"), "label": unsat_label.to_string()}).to_string()
    };
    let empty_label = deduction_label(&[], &[], Some(vec![]));
    let response = "<think>x</think><answer>A is true</answer>";
    let mut input: Vec<u8> = Vec::new();
    let mut line = |bytes: &[u8]| {
        input.extend_from_slice(bytes);
        input.push(b'\n');
    };
    line(good.as_bytes()); // 0
    line(b"\xff\xfe{\"response\": \"\xc3\x28\"}"); // 1: invalid UTF-8
    line(&[0x00, 0x9f, 0x92, 0x96, 0xe2, 0x28, 0xa1]); // 2: random bytes
    line(
        json!({"response": response, "label": deep_label.to_string()})
            .to_string()
            .as_bytes(),
    ); // 3
    line(
        json!({"response": response, "label": wide_label})
            .to_string()
            .as_bytes(),
    ); // 4
    line(unsat("It is not unsatisfiable.").as_bytes()); // 5
    line(unsat("Unsatisfiable? No, a model exists.").as_bytes()); // 6
    line(unsat("No satisfying assignment exists.").as_bytes()); // 7
    line(
        json!({"response": response, "label": empty_label.to_string()})
            .to_string()
            .as_bytes(),
    ); // 8
    line(format!("{{\"response\": \"{}\"}}", "x".repeat(5000)).as_bytes()); // 9: over the line limit
    line(good.as_bytes()); // 10
    let results = score_bytes(&["score", "--max-line-bytes", "4096"], &input);
    assert_eq!(results.len(), 11);
    let reason = |i: usize| results[i]["reason"].as_str().unwrap_or("").to_string();
    let score = |i: usize| results[i]["score"].as_f64().unwrap();
    // The line limit is 4 KiB here: the deep and wide labels are over it too, so score them
    // again below with the default limit to reach the label checks.
    for i in [0, 7, 10] {
        assert_eq!(score(i), 3.0, "line {i}: {}", reason(i));
    }
    for i in [1, 2, 9] {
        assert_eq!(score(i), -3.0);
        assert!(
            reason(i).starts_with("bad_input"),
            "line {i}: {}",
            reason(i)
        );
    }
    assert!(reason(1).contains("UTF-8"), "{}", reason(1));
    assert!(reason(9).contains("over the limit"), "{}", reason(9));
    for i in [5, 6] {
        assert_ne!(
            score(i),
            3.0,
            "a negated claim scored as correct: {}",
            reason(i)
        );
        assert!(
            reason(i).starts_with("unparseable"),
            "line {i}: {}",
            reason(i)
        );
    }
    assert!(reason(8).starts_with("bad_label"), "{}", reason(8));

    let mut labels = Vec::new();
    for label in [&deep_label, &wide_label] {
        labels.extend_from_slice(
            json!({"response": response, "label": label.to_string()})
                .to_string()
                .as_bytes(),
        );
        labels.push(b'\n');
    }
    let results = score_bytes(&["score"], &labels);
    assert_eq!(results.len(), 2);
    for result in &results {
        assert_eq!(result["score"], -3.0);
        assert!(
            result["reason"].as_str().unwrap().starts_with("bad_label"),
            "{result}"
        );
    }
}
