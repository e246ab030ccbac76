//! `triad verify`: re-read a dataset and prove it is what its manifest says.
//!
//! Every shard is re-read and its SHA-256 compared with the manifest; every row's label is parsed,
//! its id recomputed from its content, its split checked against the content partition, its
//! label re-certified with Z3, and its reference answer re-scored as a model's response; ids are
//! checked for duplicates across the whole dataset (which also catches train/test overlap).
//! Problems name the shard and row.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use rayon::prelude::*;
use triad_generators::rng::split_of_key;
use triad_generators::{Label, Verdict};

use super::manifest::Manifest;
use super::shard::{self, string_column};
use super::{DatasetError, hash128};
use crate::reward::{self, Preset};

/// One thing wrong with a dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// `path` or `path row N`.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// What `verify` found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Shards checked.
    pub shards: usize,
    /// Rows checked.
    pub rows: u64,
    /// Everything wrong, in dataset order.
    pub problems: Vec<Problem>,
}

/// The row fields verification needs.
struct RowView {
    id: String,
    label: String,
    ground_truth: String,
    family: String,
    level: i64,
    split: String,
    answer: String,
    prompt_tail: String,
}

fn rows_of(batch: &RecordBatch) -> Result<Vec<RowView>, String> {
    let column =
        |name: &str| string_column(batch, name).ok_or_else(|| format!("no string column `{name}`"));
    let (ids, labels, families, answers) = (
        column("id")?,
        column("label")?,
        column("family")?,
        column("answer")?,
    );
    let levels = batch
        .column_by_name("level")
        .and_then(|c| c.as_primitive_opt::<arrow::datatypes::Int64Type>())
        .ok_or("no int64 column `level`")?;
    let child = |column: &str, field: &str| {
        batch
            .column_by_name(column)
            .and_then(|c| c.as_struct_opt())
            .and_then(|s| s.column_by_name(field))
            .and_then(|c| c.as_string_opt::<i32>())
            .cloned()
            .ok_or_else(|| format!("no `{column}.{field}`"))
    };
    let truths = child("reward_model", "ground_truth")?;
    let splits = child("extra_info", "split")?;
    let prompts = batch
        .column_by_name("prompt")
        .and_then(|c| c.as_list_opt::<i32>())
        .ok_or("no `prompt` list")?;
    (0..batch.num_rows())
        .map(|i| {
            let messages = prompts.value(i);
            let contents = messages
                .as_struct_opt()
                .and_then(|s| s.column_by_name("content"))
                .and_then(|c| c.as_string_opt::<i32>())
                .ok_or("prompt messages lack `content`")?;
            let tail = if contents.is_empty() {
                String::new()
            } else {
                contents.value(contents.len() - 1).to_string()
            };
            Ok(RowView {
                id: ids.value(i).to_string(),
                label: labels.value(i).to_string(),
                ground_truth: truths.value(i).to_string(),
                family: families.value(i).to_string(),
                level: levels.value(i),
                split: splits.value(i).to_string(),
                answer: answers.value(i).to_string(),
                prompt_tail: tail,
            })
        })
        .collect()
}

/// Check one row; returns what is wrong with it.
fn check_row(row: &RowView, expected_split: &str, certify: bool) -> Vec<String> {
    let mut problems = Vec::new();
    if row.label != row.ground_truth {
        problems.push("label differs from reward_model.ground_truth".to_string());
    }
    if row.split != expected_split {
        problems.push(format!(
            "extra_info.split is {} in a {expected_split} shard",
            row.split
        ));
    }
    let label = match Label::parse(&row.label).and_then(|l| l.validate().map(|()| l)) {
        Ok(Label::Triad {
            family,
            level,
            instance,
            ..
        }) => (family, level, instance),
        Ok(Label::Paper(_)) => return vec!["label is a paper label, not a triad label".into()],
        Err(e) => {
            problems.push(format!("unreadable label: {e}"));
            return problems;
        }
    };
    let (family, level, instance) = label;
    if family.name() != row.family || i64::from(level) != row.level {
        problems.push(format!(
            "label says {} level {level}, row says {} level {}",
            family.name(),
            row.family,
            row.level
        ));
    }
    match family.content_key_json(&instance) {
        Ok(key) if format!("{key:032x}") == row.id => {
            if split_of_key(key).name() != expected_split {
                problems.push(format!(
                    "content belongs to the {} split",
                    split_of_key(key).name()
                ));
            }
        }
        Ok(key) => problems.push(format!(
            "id {} does not match the content (hash {key:032x})",
            row.id
        )),
        Err(e) => problems.push(format!("instance unreadable: {e}")),
    }
    if certify {
        match family.certify_json(&instance) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => problems.push(format!("Z3 certification failed: {e}")),
            Err(e) => problems.push(format!("instance unreadable: {e}")),
        }
    }
    match family.judge_json(&instance, &row.answer) {
        Ok(Verdict::Correct) => {}
        Ok(other) => problems.push(format!("reference answer judged {other:?}")),
        Err(e) => problems.push(format!("instance unreadable: {e}")),
    }
    let think = if reward::prompt_prefills_think(&row.prompt_tail) {
        ""
    } else {
        "<think>"
    };
    let response = format!(
        "{think}checking</think>\n<answer>\n{}\n</answer>",
        row.answer
    );
    let scored = reward::score(&response, &row.label, Some(&row.prompt_tail), Preset::Paper);
    if scored.score != 3.0 {
        problems.push(format!(
            "reference answer scores {} ({:?})",
            scored.score, scored.reason
        ));
    }
    problems
}

/// Where a row sits: shard (an index into the dataset's shard list) and row within it.
type RowAt = (u32, u32);

/// The first occurrence of every id across the dataset, keyed by the id's 128-bit value (an id
/// that is not 32 hex digits — already a problem of its own — by its hash) and located by shard
/// index: ~40 bytes a row, where id and location strings took ~200.
#[derive(Default)]
struct FirstSeen(HashMap<u128, RowAt>);

impl FirstSeen {
    /// Record `id` at `at`; the earlier location when it was already there.
    fn insert(&mut self, id: &str, at: RowAt) -> Option<RowAt> {
        let key = (id.len() == 32)
            .then(|| u128::from_str_radix(id, 16).ok())
            .flatten()
            .unwrap_or_else(|| hash128(id));
        match self.0.entry(key) {
            Entry::Occupied(e) => Some(*e.get()),
            Entry::Vacant(e) => {
                e.insert(at);
                None
            }
        }
    }
}

/// Verify the dataset in `dir`. `certify` re-proves every label with Z3.
///
/// Memory: one record batch of one shard at a time (shards are read row group by row group), plus
/// the dataset-wide id table.
pub fn verify(dir: &Path, certify: bool) -> Result<VerifyReport, DatasetError> {
    let manifest = Manifest::read(dir)?;
    let mut report = VerifyReport::default();
    let mut first_seen = FirstSeen::default();
    let mut shard_paths: Vec<&str> = Vec::new();
    for stream in &manifest.streams {
        let split = stream.split.name();
        for entry in &stream.shards {
            report.shards += 1;
            let shard_index = shard_paths.len() as u32;
            shard_paths.push(&entry.path);
            let path = dir.join(&entry.path);
            let problem = |message: String| Problem {
                location: entry.path.clone(),
                message,
            };
            match shard::sha256_file(&path) {
                Ok((digest, _)) if digest != entry.sha256 => {
                    report.problems.push(problem(format!(
                        "SHA-256 {digest} differs from the manifest's {}",
                        entry.sha256
                    )));
                }
                Ok(_) => {}
                Err(e) => {
                    report.problems.push(problem(format!("cannot read: {e}")));
                    continue;
                }
            }
            let batches = match shard::batch_reader(&path) {
                Ok(reader) => reader,
                Err(e) => {
                    report
                        .problems
                        .push(problem(format!("not a readable shard: {e}")));
                    continue;
                }
            };
            let mut rows_in_shard = 0u64;
            for batch in batches {
                let rows = match batch.map_err(|e| e.to_string()).and_then(|b| rows_of(&b)) {
                    Ok(rows) => rows,
                    Err(e) => {
                        report.problems.push(problem(format!("schema: {e}")));
                        continue;
                    }
                };
                let row_problems: Vec<Vec<String>> = rows
                    .par_iter()
                    .map(|row| check_row(row, split, certify))
                    .collect();
                for (row, found) in rows.iter().zip(row_problems) {
                    let at = (shard_index, rows_in_shard as u32);
                    let location = format!("{} row {rows_in_shard}", entry.path);
                    rows_in_shard += 1;
                    for message in found {
                        report.problems.push(Problem {
                            location: location.clone(),
                            message,
                        });
                    }
                    if let Some((shard, row_index)) = first_seen.insert(&row.id, at) {
                        report.problems.push(Problem {
                            location,
                            message: format!(
                                "duplicate of {} row {row_index} (id {})",
                                shard_paths[shard as usize], row.id
                            ),
                        });
                    }
                }
            }
            if rows_in_shard != entry.rows {
                report.problems.push(problem(format!(
                    "{rows_in_shard} rows, the manifest says {}",
                    entry.rows
                )));
            }
            report.rows += rows_in_shard;
        }
    }
    Ok(report)
}
