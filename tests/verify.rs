//! `triad verify` passes a generated dataset and catches planted faults, naming the rows.

use std::process::Command;

use crate::util::{generate, run_python};

/// Run `triad COMMAND DIR`; its exit code and standard output.
fn run_on(command: &str, dir: &std::path::Path) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_triad"))
        .args([command, dir.to_str().unwrap()])
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
    )
}

fn verify(dir: &std::path::Path) -> (i32, String) {
    run_on("verify", dir)
}

#[test]
fn clean_dataset_verifies_and_planted_faults_are_caught() {
    let args = [
        "--levels",
        "1,2,7",
        "--train",
        "12",
        "--test",
        "3",
        "--shard-rows",
        "5",
        "--unsat-ratio",
        "0.2",
        "--abduction-mode",
        "mixed",
    ];
    let clean = tempfile::tempdir().unwrap();
    generate(clean.path(), &args);
    let (code, out) = verify(clean.path());
    assert_eq!(code, 0, "{out}");

    for (fault, expected) in [
        ("flip-label", "Z3 certification failed"),
        ("duplicate-row", "row 5: duplicate of"),
        ("truncate", "differs from the manifest"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), &args);
        let planted = run_python("plant_fault.py", &[dir.path().to_str().unwrap(), fault]);
        let mut lines = planted.lines().rev();
        let shard = lines.next().unwrap();
        let (code, out) = verify(dir.path());
        assert_eq!(code, 1, "{fault} not caught: {out}");
        assert!(
            out.contains(shard) && out.contains(expected),
            "{fault}: {out}"
        );
        if let Some(row) = lines.next() {
            assert!(
                out.contains(&format!("{shard} {row}: Z3 certification failed")),
                "{out}"
            );
        }
    }
}

/// Regression: the same induction sequence used to appear at two levels (a two-step add with equal
/// steps is level 1's arithmetic; 2x[n−1] − x[n−2] too; ×÷ can mimic ±). `verify`'s dataset-wide
/// duplicate check must find none.
#[test]
fn no_item_appears_at_two_levels() {
    let dir = tempfile::tempdir().unwrap();
    generate(
        dir.path(),
        &[
            "--families",
            "induction",
            "--levels",
            "1-10",
            "--train",
            "400",
            "--test",
            "100",
        ],
    );
    let output = Command::new(env!("CARGO_BIN_EXE_triad"))
        .args(["verify", dir.path().to_str().unwrap(), "--no-certify"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

fn audit(dir: &std::path::Path) -> (i32, String) {
    run_on("audit", dir)
}

#[test]
fn audit_reports_levels_and_flags_planted_duplicates() {
    let args = [
        "--levels",
        "1,3",
        "--train",
        "40",
        "--test",
        "10",
        "--shard-rows",
        "20",
    ];
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), &args);
    let (code, out) = audit(dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("| abduction | 3 | 40 | 10 | 0/0 | 0 | reachable iff known"),
        "{out}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("audit.json")).unwrap())
            .unwrap();
    assert_eq!(json["rows"], 3 * 2 * 50);
    let card = std::fs::read_to_string(dir.path().join("README.md")).unwrap();
    assert!(card.contains("## Audit") && card.contains("No level is flagged."));
    // Running it twice replaces the section rather than appending another.
    audit(dir.path());
    let card = std::fs::read_to_string(dir.path().join("README.md")).unwrap();
    assert_eq!(card.matches("## Audit").count(), 1);

    run_python(
        "plant_fault.py",
        &[dir.path().to_str().unwrap(), "duplicate-row"],
    );
    let (code, out) = audit(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("flagged: deduction level 1: 1 exact and 1 near duplicates"),
        "{out}"
    );
}
