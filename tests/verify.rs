//! `triad verify` passes a generated dataset and catches planted faults, naming the rows.

use std::process::Command;

use crate::util::{generate, run_python};

/// Run `triad COMMAND DIR`; its exit code and standard output (standard error after it).
fn run_on(command: &str, dir: &std::path::Path) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_triad"))
        .args([command, dir.to_str().unwrap()])
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap() + &String::from_utf8(output.stderr).unwrap(),
    )
}

fn verify(dir: &std::path::Path) -> (i32, String) {
    run_on("verify", dir)
}

/// Generate a dataset with `args`, plant `fault` in it, and verify it, which must exit 1. Returns
/// the path the fault was planted in, the row if it names one, and what verify printed.
fn plant_and_verify(args: &[&str], fault: &str) -> (String, Option<String>, String) {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), args);
    let planted = run_python("plant_fault.py", &[dir.path().to_str().unwrap(), fault]);
    let mut lines = planted.lines().rev();
    let place = lines.next().unwrap().to_string();
    let row = lines.next().map(str::to_string);
    let (code, out) = verify(dir.path());
    assert_eq!(code, 1, "{fault} not caught: {out}");
    (place, row, out)
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
        let (shard, row, out) = plant_and_verify(&args, fault);
        assert!(
            out.contains(&shard) && out.contains(expected),
            "{fault}: {out}"
        );
        if let Some(row) = row {
            assert!(
                out.contains(&format!("{shard} {row}: Z3 certification failed")),
                "{out}"
            );
        }
    }
}

/// Everything a loader reads is checked: files beside the shards, the manifest's arithmetic and
/// settings, and every column of every row against its label. Each fault used to pass (exit 0).
#[test]
fn verify_checks_everything_a_loader_reads() {
    let args = [
        "--levels",
        "1",
        "--train",
        "12",
        "--test",
        "3",
        "--shard-rows",
        "5",
    ];
    for (fault, expected) in [
        ("edit-prompt", "prompt differs from the label's instance"),
        (
            "edit-instance",
            "column `deduction` differs from the label's instance",
        ),
        (
            "edit-split",
            "column `extra_info.split`: \"bogus\" is neither train nor test",
        ),
        ("edit-level", "column `level`: 300 is not a level (0–255)"),
        ("extra-file", "Parquet file not in the manifest"),
        ("drop-stream", "Parquet file not in the manifest"),
        ("edit-total", "total_rows is"),
        ("edit-seed", "configuration hash"),
    ] {
        let (place, row, out) = plant_and_verify(&args, fault);
        let located = match row {
            Some(row) => format!("{place} {row}: {expected}"),
            None => place,
        };
        assert!(
            out.contains(&located) && out.contains(expected),
            "{fault}: {out}"
        );
    }
    // The footer names the run that wrote the shard: shards of seed 2 under a manifest of seed 1.
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(one.path(), &args);
    generate(two.path(), &[&args[..], &["--seed", "2"]].concat());
    let shard = "deduction/level-1/train-00000-of-00003.parquet";
    std::fs::copy(two.path().join(shard), one.path().join(shard)).unwrap();
    let manifest_path = one.path().join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let other: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(two.path().join("manifest.json")).unwrap())
            .unwrap();
    manifest["streams"][0]["shards"][0] = other["streams"][0]["shards"][0].clone();
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let (code, out) = verify(one.path());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("{shard}: footer configuration")),
        "{out}"
    );
}

/// A missing or unreadable manifest is a finding (exit 1 with the reason), not an error (exit 2).
#[test]
fn a_missing_or_broken_manifest_is_a_finding() {
    let dir = tempfile::tempdir().unwrap();
    generate(
        dir.path(),
        &["--levels", "1", "--train", "3", "--test", "1"],
    );
    std::fs::write(dir.path().join("manifest.json"), "{not json").unwrap();
    let (code, out) = verify(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("manifest.json: no readable manifest"), "{out}");
    std::fs::remove_file(dir.path().join("manifest.json")).unwrap();
    let (code, out) = verify(dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("manifest.json: no readable manifest"), "{out}");
}

/// One flipped bit anywhere in a shard: verify names that shard, goes on to the next, and stays
/// in bounded memory (it used to allocate without bound at some offsets, 22 GB and OOM-killed).
/// With the manifest rewritten over the corruption, the Parquet reader does meet the bad bytes:
/// then too a failure is one problem and memory stays bounded.
#[test]
fn corrupted_shards_are_named_in_bounded_memory() {
    let args = [
        "--families",
        "deduction",
        "--levels",
        "3",
        "--train",
        "400",
        "--test",
        "1",
        "--shard-rows",
        "200",
    ];
    let clean = tempfile::tempdir().unwrap();
    generate(clean.path(), &args);
    let shard = "deduction/level-3/train-00000-of-00002.parquet";
    for (i, permille) in (0..1000).step_by(50).enumerate() {
        let kind = if i % 2 == 0 {
            "flip-bit"
        } else {
            "flip-bit-rehash"
        };
        let dir = tempfile::tempdir().unwrap();
        copy_tree(clean.path(), dir.path());
        run_python(
            "plant_fault.py",
            &[dir.path().to_str().unwrap(), kind, &permille.to_string()],
        );
        let report = run_python(
            "peak_rss.py",
            &[
                "--report",
                "--limit-mib",
                "3072",
                env!("CARGO_BIN_EXE_triad"),
                "verify",
                dir.path().to_str().unwrap(),
                "--no-certify",
            ],
        );
        let (status, rss) = peak_rss_report(&report);
        assert!(
            rss < 1024,
            "{kind} at {permille}‰: peak RSS {rss} MiB\n{report}"
        );
        if kind == "flip-bit" {
            assert_eq!(status, 1, "{kind} at {permille}‰: {report}");
            assert!(report.contains(&format!("{shard}: SHA-256")), "{report}");
        } else {
            // A bit in padding or an unread statistic can leave the rows intact; otherwise exit 1.
            assert!(
                status == 0 || status == 1,
                "{kind} at {permille}‰: {report}"
            );
        }
        // Verify went on past the bad shard: the others were read and counted.
        assert!(
            report.contains("in 3 shards"),
            "{kind} at {permille}‰: {report}"
        );
    }
}

/// `(exit code, peak RSS in MiB)` from `peak_rss.py --report`.
fn peak_rss_report(report: &str) -> (i32, u64) {
    let value = |key: &str| {
        report
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key}in {report}"))
            .trim()
            .parse::<i64>()
            .unwrap()
    };
    (value("exit ") as i32, (value("peak_kib ") / 1024) as u64)
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
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
    // A row that does not decode stops the audit with where it is (the reader the trainer uses).
    let planted = run_python(
        "plant_fault.py",
        &[dir.path().to_str().unwrap(), "edit-level"],
    );
    let shard = planted.lines().last().unwrap();
    let (code, out) = audit(dir.path());
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!(
            "{shard} row 1: column `level`: 300 is not a level"
        )),
        "{out}"
    );
}
