//! Shards read by a real reader (pyarrow): verl columns, the published schemas, and every row's
//! label scoring its own reference answer as fully correct.

use serde_json::Value;

use crate::util::{generate, repo, run_python, triad};

#[test]
fn pyarrow_reads_shards_and_every_label_scores_its_reference() {
    for style in ["chat", "paper"] {
        let dir = tempfile::tempdir().unwrap();
        generate(
            dir.path(),
            &[
                "--levels",
                "1-7",
                "--train",
                "12",
                "--test",
                "4",
                "--shard-rows",
                "5",
                "--prompt-style",
                style,
                "--unsat-ratio",
                "0.2",
                "--abduction-mode",
                "mixed",
            ],
        );
        let rollouts = dir.path().join("rollouts.jsonl");
        let schemas = repo().join("schemas");
        let report = run_python(
            "check_shards.py",
            &[
                dir.path().to_str().unwrap(),
                schemas.to_str().unwrap(),
                rollouts.to_str().unwrap(),
            ],
        );
        assert!(report.contains("rows=336"), "{report}");
        let scored = dir.path().join("scored.jsonl");
        triad(&[
            "score",
            "--input",
            rollouts.to_str().unwrap(),
            "--output",
            scored.to_str().unwrap(),
        ]);
        let text = std::fs::read_to_string(&scored).unwrap();
        assert_eq!(text.lines().count(), 336);
        for line in text.lines() {
            let result: Value = serde_json::from_str(line).unwrap();
            assert_eq!(result["score"], 3.0, "{style}: {line}");
        }
    }
}

#[test]
fn datasets_loads_the_default_config_and_every_level_config() {
    let dir = tempfile::tempdir().unwrap();
    generate(
        dir.path(),
        &[
            "--levels",
            "1-2",
            "--train",
            "6",
            "--test",
            "3",
            "--license",
            "cc-by-4.0",
        ],
    );
    // `datasets` caches what it loads: keep that out of the user's home, and off the network.
    let cache = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(crate::util::python())
        .arg(repo().join("tests/python/check_dataset_card.py"))
        .arg(dir.path())
        .arg("cc-by-4.0")
        .env("HF_HOME", cache.path())
        .env("HF_DATASETS_OFFLINE", "1")
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("ok 7 configs"));
}
