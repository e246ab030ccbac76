//! `triad generate`: determinism, dedup, split separation, resume, certification.

use std::collections::HashSet;
use std::path::Path;

use triad::dataset::shard::{read_batches, string_column};
use triad::generators::{Label, Verdict};

use crate::util::{generate, shards};

/// (id, label, answer) of every row, in shard order.
fn rows(dir: &Path) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for path in shards(dir) {
        for batch in read_batches(&path).unwrap() {
            let ids = string_column(&batch, "id").unwrap();
            let labels = string_column(&batch, "label").unwrap();
            let answers = string_column(&batch, "answer").unwrap();
            for i in 0..batch.num_rows() {
                out.push((
                    ids.value(i).into(),
                    labels.value(i).into(),
                    answers.value(i).into(),
                ));
            }
        }
    }
    out
}

/// (path, SHA-256) of every shard and the manifest.
fn files(dir: &Path) -> Vec<(String, String)> {
    let digest = |p: &Path| triad::dataset::shard::sha256_hex(&std::fs::read(p).unwrap());
    let mut out: Vec<(String, String)> = shards(dir)
        .into_iter()
        .map(|p| {
            (
                p.strip_prefix(dir).unwrap().display().to_string(),
                digest(&p),
            )
        })
        .collect();
    out.push(("manifest.json".into(), digest(&dir.join("manifest.json"))));
    out
}

const SMALL: &[&str] = &["--levels", "1,2,6", "--train", "23", "--test", "6"];

#[test]
fn same_bytes_whatever_the_thread_count() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(
        a.path(),
        &[SMALL, &["--threads", "1", "--shard-rows", "7"]].concat(),
    );
    generate(
        b.path(),
        &[SMALL, &["--threads", "2", "--shard-rows", "7"]].concat(),
    );
    assert_eq!(files(a.path()), files(b.path()));
    assert_eq!(shards(a.path()).len(), 3 * 3 * (4 + 1));
}

#[test]
fn same_rows_whatever_the_shard_size() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(a.path(), &[SMALL, &["--shard-rows", "5"]].concat());
    generate(b.path(), &[SMALL, &["--shard-rows", "1000"]].concat());
    let (ra, rb) = (rows(a.path()), rows(b.path()));
    assert_eq!(ra.len(), 3 * 3 * (23 + 6));
    // Shards sort by level, then split (test before train), then index: the same order for both.
    assert_eq!(ra, rb);
}

/// One candidate stream per (family, level) feeds both splits: a split's shards are the bytes it
/// gets when generated alone, and the two together take about as many candidates as they hold
/// rows (a test stream alone used to make four candidates per row and drop three).
#[test]
fn one_candidate_stream_feeds_both_splits() {
    let level = ["--families", "deduction,induction", "--levels", "6,10"];
    let (both, train, test) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    generate(
        both.path(),
        &[&level[..], &["--train", "60", "--test", "20"]].concat(),
    );
    generate(
        train.path(),
        &[&level[..], &["--train", "60", "--test", "0"]].concat(),
    );
    generate(
        test.path(),
        &[&level[..], &["--train", "0", "--test", "20"]].concat(),
    );
    let of_split = |dir: &Path, split: &str| -> Vec<(String, String)> {
        files(dir)
            .into_iter()
            .filter(|(path, _)| path.contains(&format!("/{split}-")))
            .collect()
    };
    assert_eq!(
        of_split(both.path(), "train"),
        of_split(train.path(), "train")
    );
    assert_eq!(of_split(both.path(), "test"), of_split(test.path(), "test"));
    assert_eq!(of_split(both.path(), "train").len(), 4);
    // Per level: the candidates behind the train rows and those behind the test rows are
    // disjoint pieces of one stream that together cover nearly all of its start.
    for family_level in ["deduction/level-6", "induction/level-10"] {
        let candidates = |split: &str| -> HashSet<u64> {
            shards(&both.path().join(family_level))
                .into_iter()
                .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(split))
                .flat_map(|p| {
                    let rows = triad::dataset::shard::read_rows(&p).unwrap();
                    rows.map(|row| row.unwrap().candidate).collect::<Vec<_>>()
                })
                .collect()
        };
        let (train, test) = (candidates("train"), candidates("test"));
        assert_eq!((train.len(), test.len()), (60, 20), "{family_level}");
        assert!(train.is_disjoint(&test), "{family_level}");
        let span = train.iter().chain(&test).max().unwrap() + 1;
        assert!(
            span <= 100,
            "{family_level}: 80 rows from the first {span} candidates"
        );
    }
}

#[test]
fn ids_are_unique_and_splits_disjoint_even_across_seeds() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(
        a.path(),
        &[
            "--families",
            "deduction",
            "--levels",
            "1",
            "--train",
            "400",
            "--test",
            "60",
            "--seed",
            "1",
        ],
    );
    generate(
        b.path(),
        &[
            "--families",
            "deduction",
            "--levels",
            "1",
            "--train",
            "400",
            "--test",
            "60",
            "--seed",
            "2",
        ],
    );
    let split_of = |dir: &Path, split: &str| -> HashSet<String> {
        shards(dir)
            .iter()
            .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(split))
            .flat_map(|p| read_batches(p).unwrap())
            .flat_map(|b| {
                string_column(&b, "id")
                    .unwrap()
                    .iter()
                    .flatten()
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let (train_a, test_a) = (split_of(a.path(), "train"), split_of(a.path(), "test"));
    let (train_b, test_b) = (split_of(b.path(), "train"), split_of(b.path(), "test"));
    assert_eq!(
        (train_a.len(), test_a.len()),
        (400, 60),
        "ids repeat within a split"
    );
    assert!(train_a.is_disjoint(&test_a));
    assert!(train_a.is_disjoint(&test_b) && train_b.is_disjoint(&test_a));
    // Different seeds give different items (adjacent seeds are not shifted copies).
    assert!(train_a.intersection(&train_b).count() < 40);
}

#[test]
fn resumes_to_identical_bytes_after_losing_shards() {
    let (full, partial) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let args = [
        "--levels",
        "1,2",
        "--train",
        "50",
        "--test",
        "10",
        "--shard-rows",
        "10",
    ];
    generate(full.path(), &args);
    generate(partial.path(), &args);
    // Simulate a crash: later shards and the manifest never got written, and a temporary file
    // of an interrupted write is left behind.
    let level2 = partial.path().join("deduction/level-2");
    std::fs::remove_file(level2.join("train-00002-of-00005.parquet")).unwrap();
    std::fs::remove_file(level2.join("train-00004-of-00005.parquet")).unwrap();
    std::fs::remove_file(partial.path().join("manifest.json")).unwrap();
    std::fs::write(
        level2.join(".train-00003-of-00005.parquet.tmp-1"),
        b"half a shard",
    )
    .unwrap();
    generate(partial.path(), &args);
    assert_eq!(files(full.path()), files(partial.path()));
}

#[test]
fn refuses_to_mix_configurations_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    generate(
        dir.path(),
        &[
            "--levels", "1", "--train", "10", "--test", "2", "--seed", "1",
        ],
    );
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_triad"))
        .args([
            "generate", "--out", out, "--quiet", "--levels", "1", "--train", "10", "--test", "2",
            "--seed", "2",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("different configuration"));
    generate(
        dir.path(),
        &[
            "--levels",
            "1",
            "--train",
            "10",
            "--test",
            "2",
            "--seed",
            "2",
            "--overwrite",
        ],
    );
    let fresh = tempfile::tempdir().unwrap();
    generate(
        fresh.path(),
        &[
            "--levels", "1", "--train", "10", "--test", "2", "--seed", "2",
        ],
    );
    assert_eq!(files(dir.path()), files(fresh.path()));
}

/// Every row of every level re-checks under Z3, and its reference answer is judged correct.
#[test]
fn every_row_rechecks_under_z3() {
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
            "--certify",
            "--unsat-ratio",
            "0.3",
        ],
    );
    let all = rows(dir.path());
    assert_eq!(all.len(), 3 * 40);
    let mut unsat = 0;
    for (_, label_text, answer) in &all {
        let label = Label::parse(label_text).unwrap();
        let Label::Triad {
            family, instance, ..
        } = &label
        else {
            panic!("triad label expected")
        };
        family
            .certify_json(instance)
            .unwrap()
            .unwrap_or_else(|e| panic!("{e}: {label_text}"));
        assert_eq!(label.judge(answer), Verdict::Correct);
        unsat += usize::from(answer.starts_with("No satisfying assignment"));
    }
    assert!(unsat > 0 && unsat < all.len() / 3, "unsat rows: {unsat}");
}

/// A real `kill -9` mid-generation, then the same command again: the finished dataset is
/// byte-identical to an uninterrupted run, and no temporary file is left behind.
#[test]
fn resumes_after_kill_9() {
    let args = [
        "--families",
        "deduction",
        "--levels",
        "4,5",
        "--train",
        "500",
        "--test",
        "50",
        "--shard-rows",
        "40",
    ];
    let (full, killed) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(full.path(), &args);
    let out = killed.path().to_str().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_triad"))
        .args(["generate", "--out", out, "--quiet"])
        .args(args)
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while shards(killed.path()).len() < 3 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        assert!(started.elapsed().as_secs() < 120, "no shard appeared");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!killed.path().join("manifest.json").exists());
    generate(killed.path(), &args);
    assert_eq!(files(full.path()), files(killed.path()));
    let leftovers: Vec<_> = walk(killed.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Fan-out: three workers (one finding its index in $SLURM_ARRAY_TASK_ID) write into one
/// directory, `triad manifest merge` joins them, and the result is byte-identical to a single run.
#[test]
fn fan_out_workers_match_a_single_run() {
    let args = [
        "--levels",
        "1,2",
        "--train",
        "15",
        "--test",
        "4",
        "--shard-rows",
        "6",
    ];
    let (single, fanned) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(single.path(), &args);
    let out = fanned.path().to_str().unwrap();
    for index in 0..3 {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_triad"));
        command
            .args(["generate", "--out", out, "--quiet", "--num-shards", "3"])
            .args(args);
        if index == 2 {
            command.env("SLURM_ARRAY_TASK_ID", "2");
        } else {
            command.args(["--shard-index", &index.to_string()]);
        }
        assert!(command.status().unwrap().success());
    }
    assert!(!fanned.path().join("manifest.json").exists());
    crate::util::triad(&["manifest", "merge", out, "--num-shards", "3"]);
    assert_eq!(files(single.path()), files(fanned.path()));
    let card = |d: &Path| std::fs::read(d.join("README.md")).unwrap();
    assert_eq!(card(single.path()), card(fanned.path()));
    let leftovers: Vec<_> = walk(fanned.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("worker"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Peak RSS in MiB of `triad generate` writing `rows` deduction level-1 rows into a single shard.
fn peak_rss_mib(rows: u64) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let rows = rows.to_string();
    let out = crate::util::run_python(
        "peak_rss.py",
        &[
            env!("CARGO_BIN_EXE_triad"),
            "generate",
            "--out",
            dir.path().to_str().unwrap(),
            "--quiet",
            "--families",
            "deduction",
            "--levels",
            "1",
            "--train",
            &rows,
            "--test",
            "0",
            "--shard-rows",
            "1000000",
        ],
    );
    out.trim().parse::<u64>().unwrap() / 1024
}

/// Memory follows the row group, not the shard or the dataset: a single shard of 96,000 rows
/// peaks within 64 MiB of one of 8,000. (Holding the shard's rows until it was encoded, as
/// generation once did, cost ~4.5 KB a row here: +400 MB.)
#[test]
fn memory_does_not_grow_with_the_shard() {
    let small = peak_rss_mib(8_000);
    let large = peak_rss_mib(96_000);
    assert!(
        large < small + 64,
        "peak RSS {small} MiB for 8,000 rows, {large} MiB for 96,000"
    );
}

/// Resuming never adopts corruption: a finished shard that no longer hashes to what was recorded
/// when it was written is regenerated (and the run says so), so the dataset ends byte-identical to
/// a clean run and verifies — where the corrupt shard used to be reused and its new hash written
/// into the manifest, so the corruption then passed `verify`.
#[test]
fn resume_regenerates_corrupted_shards() {
    let args = [
        "--levels",
        "1,2",
        "--train",
        "30",
        "--test",
        "5",
        "--shard-rows",
        "10",
    ];
    let (clean, corrupted) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(clean.path(), &args);
    generate(corrupted.path(), &args);
    let shard = corrupted
        .path()
        .join("induction/level-2/train-00001-of-00003.parquet");
    let mut bytes = std::fs::read(&shard).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&shard, bytes).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_triad"))
        .args([
            "generate",
            "--out",
            corrupted.path().to_str().unwrap(),
            "--quiet",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("induction/level-2/train-00001-of-00003.parquet: its SHA-256")
            && said.contains("regenerated"),
        "{said}"
    );
    assert_eq!(files(clean.path()), files(corrupted.path()));
    crate::util::triad(&["verify", corrupted.path().to_str().unwrap(), "--no-certify"]);
}

/// One writer per directory: a second `generate` into a directory another one is writing fails at
/// once, naming the holder, and leaves the first run's output alone.
#[test]
fn a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let slow = [
        "--families",
        "deduction",
        "--levels",
        "5",
        "--train",
        "100000",
        "--test",
        "0",
    ];
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_triad"))
        .args(["generate", "--out", out, "--quiet"])
        .args(slow)
        .spawn()
        .unwrap();
    let lock = dir.path().join(".triad/lock");
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&lock).map_or(true, |t| t.trim().is_empty()) {
        assert!(
            started.elapsed().as_secs() < 60,
            "the first run never took the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_triad"))
        .args([
            "generate", "--out", out, "--quiet", "--seed", "6", "--levels", "1",
        ])
        .output()
        .unwrap();
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(second.status.code(), Some(2));
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(
        said.contains(&format!("held by process {}", first.id()))
            && said.contains("another `triad generate` is writing this directory"),
        "{said}"
    );
    // The lock goes with the process that held it, however it ended (here: SIGKILL).
    generate(
        dir.path(),
        &[
            "--levels",
            "1",
            "--train",
            "3",
            "--test",
            "1",
            "--overwrite",
        ],
    );
}
