//! `triad verify`: re-read a dataset and prove it is what its manifest says — everything a
//! loader will read, and nothing else beside it.
//!
//! - **The manifest**: present and readable; its totals add up (shard rows to stream rows, stream
//!   rows to `total_rows`, `exhausted` exactly when fewer rows than requested); each stream once;
//!   each shard under the name its stream implies; each stream's configuration hash recomputed
//!   from the manifest's settings (a seed edited in the manifest, or shards written with another
//!   one, shows here and in the shard footers).
//! - **The files**: every `*.parquet` in the directory is a shard the manifest lists (the dataset
//!   card's `train-*.parquet` globs would load any other); every listed shard exists and hashes
//!   to the manifest's SHA-256. A shard that does not is one problem and is not parsed at all, so
//!   a corrupted file cannot make verify allocate without bound; a shard that fails to read is
//!   one problem naming it, and verify moves on to the next.
//! - **Every row**: its label parsed, its id recomputed from its content, its split checked
//!   against the content partition, its label re-certified with Z3, its reference answer
//!   re-scored as a model's response, and every other column — the prompt re-rendered from the
//!   label's instance in the manifest's prompt style, the family's instance columns, the answer,
//!   `extra_info` — rebuilt from the label and compared, so a model is never shown one problem and
//!   scored on another. Ids are checked for duplicates across the whole dataset (which also
//!   catches train/test overlap).
//!
//! Problems name the file and row. Memory: one record batch of one shard at a time, plus the
//! dataset-wide id table.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;

use arrow::array::{Array, RecordBatch};
use rayon::prelude::*;
use triad_generators::rng::split_of_key;
use triad_generators::{Label, PromptStyle, Split, Verdict};

use super::generate::{StreamKey, shard_file_name, stream_config_hash};
use super::manifest::{Manifest, ShardEntry};
use super::shard::{self, Row, RowBatch, RowError, ShardRows, StoredRow};
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

/// Check one row; returns what is wrong with it.
fn check_row(row: &StoredRow, expected_split: Split, certify: bool) -> Vec<String> {
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
    if family.name() != row.family || level != row.level {
        problems.push(format!(
            "label says {} level {level}, row says {} level {}",
            family.name(),
            row.family,
            row.level
        ));
    }
    match family.content_key_json(&instance) {
        Ok(key) if format!("{key:032x}") == row.id => {
            if split_of_key(key) != expected_split {
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
    let think = if reward::prompt_prefills_think(row.prompt_tail()) {
        ""
    } else {
        "<think>"
    };
    let response = format!(
        "{think}checking</think>\n<answer>\n{}\n</answer>",
        row.answer
    );
    let scored = reward::score(
        &response,
        &row.label,
        Some(row.prompt_tail()),
        Preset::Paper,
    );
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

/// The row a generator would have written for this label at this place: every column rebuilt
/// from the label alone (the candidate index, a seed coordinate, is taken from the row).
fn expected_row(row: &StoredRow, split: Split, index: u64, style: PromptStyle) -> Option<Row> {
    let Ok(Label::Triad {
        family,
        level,
        instance,
        ..
    }) = Label::parse(&row.label)
    else {
        return None;
    };
    let item = family
        .rebuild_json(level, &row.label, &instance, style)
        .ok()?;
    Some(Row {
        item,
        split,
        index,
        candidate: row.candidate,
    })
}

/// What it means when a column differs from the one rebuilt from the label.
fn column_problem(column: &str, style: PromptStyle) -> String {
    match column {
        "prompt" => format!(
            "prompt differs from the label's instance rendered in the {} style: a model would be shown one problem and scored on another",
            style.name()
        ),
        "answer" => "answer column differs from the label's reference answer".into(),
        "trace" => "trace column differs from the family's derivation for the label".into(),
        "extra_info" => {
            "extra_info differs from the row's place and label (split, index, family, level, id)"
                .into()
        }
        "label" | "id" | "family" | "level" | "reward_model" => {
            format!("column `{column}` differs from the label")
        }
        other => format!("column `{other}` differs from the label's instance"),
    }
}

/// Compare every column of the batch with the one rebuilt from its labels; returns the rows (by
/// position in the batch) and what differs. Rows whose label cannot be read are left to
/// `check_row`, which names that.
fn compare_columns(
    batch: &RecordBatch,
    rows: &[Result<StoredRow, RowError>],
    split: Split,
    first_index: u64,
    style: PromptStyle,
) -> Result<Vec<(usize, String)>, String> {
    let rebuilt: Vec<Option<Row>> = rows
        .par_iter()
        .enumerate()
        .map(|(i, row)| {
            let row = row.as_ref().ok()?;
            expected_row(row, split, first_index + i as u64, style)
        })
        .collect();
    // Rows that do not decode or whose label cannot be read have nothing to compare with
    // (check_row names them).
    let positions: Vec<usize> = (0..rows.len()).filter(|&i| rebuilt[i].is_some()).collect();
    let expected_rows: Vec<Row> = rebuilt.into_iter().flatten().collect();
    if expected_rows.is_empty() {
        return Ok(Vec::new());
    }
    let expected = shard::record_batch(&expected_rows).map_err(|e| e.to_string())?;
    drop(expected_rows);
    let every_row = positions.len() == batch.num_rows();
    let schema = expected.schema();
    let mut problems = Vec::new();
    for (c, field) in schema.fields().iter().enumerate() {
        let Some(actual) = batch.column_by_name(field.name()) else {
            return Err(format!("no column `{}`", field.name()));
        };
        let wanted = expected.column(c);
        // The usual case, every label readable and every column right: one comparison a column.
        if every_row && actual.as_ref() == wanted.as_ref() {
            continue;
        }
        for (k, &row) in positions.iter().enumerate() {
            if actual.slice(row, 1).as_ref() != wanted.slice(k, 1).as_ref() {
                problems.push((row, column_problem(field.name(), style)));
            }
        }
    }
    problems.sort_by_key(|(row, _)| *row);
    Ok(problems)
}

/// Check the manifest's own arithmetic and names; problems are located at `manifest.json`.
fn check_manifest(manifest: &Manifest) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(message) = super::manifest::check_license(&manifest.license) {
        problems.push(message);
    }
    let key = StreamKey::of_manifest(manifest);
    let mut seen = HashSet::new();
    let mut total = 0u64;
    for stream in &manifest.streams {
        let name = format!("{} level {} {}", stream.family, stream.level, stream.split);
        if !seen.insert((stream.family.clone(), stream.level, stream.split)) {
            problems.push(format!("stream {name} is listed twice"));
        }
        let shard_rows: u64 = stream.shards.iter().map(|s| s.rows).sum();
        if shard_rows != stream.rows {
            problems.push(format!(
                "stream {name}: its shards hold {shard_rows} rows, the stream says {}",
                stream.rows
            ));
        }
        if stream.rows > stream.requested || stream.exhausted != (stream.rows < stream.requested) {
            problems.push(format!(
                "stream {name}: {} rows of {} requested, but exhausted is {}",
                stream.rows, stream.requested, stream.exhausted
            ));
        }
        let hash = stream_config_hash(
            &key,
            &stream.family,
            stream.level,
            stream.split,
            stream.requested,
        );
        if hash != stream.config {
            problems.push(format!(
                "stream {name}: configuration hash {} is not what the manifest's settings give ({hash}): the manifest was edited, or describes another run",
                stream.config
            ));
        }
        for (i, shard) in stream.shards.iter().enumerate() {
            let expected = format!(
                "{}/level-{}/{}",
                stream.family,
                stream.level,
                shard_file_name(
                    stream.split,
                    i as u64,
                    stream.requested,
                    manifest.shard_rows
                )
            );
            if shard.path != expected {
                problems.push(format!(
                    "stream {name}: shard {i} is {}, expected {expected}",
                    shard.path
                ));
            }
        }
        total += stream.rows;
    }
    if total != manifest.total_rows {
        problems.push(format!(
            "total_rows is {}, the streams hold {total}",
            manifest.total_rows
        ));
    }
    problems
}

/// Every `*.parquet` file under `dir` (hidden files and directories aside: loaders skip them),
/// relative, with `/` separators.
fn parquet_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(path);
            } else if name.ends_with(".parquet")
                && let Ok(relative) = path.strip_prefix(dir)
            {
                let parts: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                found.push(parts.join("/"));
            }
        }
    }
    found.sort();
    found
}

/// Verify the dataset in `dir`. `certify` re-proves every label with Z3.
///
/// Everything wrong is a [`Problem`] in the report, a missing or unreadable manifest included;
/// the error is kept for failures of verify itself.
pub fn verify(dir: &Path, certify: bool) -> Result<VerifyReport, DatasetError> {
    verify_with(dir, certify, &mut super::progress::Silent)
}

/// [`verify`], reporting each shard done to `progress`.
pub fn verify_with(
    dir: &Path,
    certify: bool,
    progress: &mut dyn super::progress::Progress,
) -> Result<VerifyReport, DatasetError> {
    let mut report = VerifyReport::default();
    let manifest = match Manifest::read(dir) {
        Ok(manifest) => manifest,
        Err(e) => {
            report.problems.push(Problem {
                location: "manifest.json".into(),
                message: format!("no readable manifest: {e}"),
            });
            return Ok(report);
        }
    };
    for message in check_manifest(&manifest) {
        report.problems.push(Problem {
            location: "manifest.json".into(),
            message,
        });
    }
    let listed: HashSet<&str> = manifest
        .streams
        .iter()
        .flat_map(|s| &s.shards)
        .map(|s| s.path.as_str())
        .collect();
    for stray in parquet_files(dir) {
        if !listed.contains(stray.as_str()) {
            report.problems.push(Problem {
                location: stray,
                message: "Parquet file not in the manifest (a loader globbing the dataset's `*.parquet` would read it)".into(),
            });
        }
    }
    let mut first_seen = FirstSeen::default();
    let mut shard_paths: Vec<&str> = Vec::new();
    let key = StreamKey::of_manifest(&manifest);
    let shards = manifest.streams.iter().map(|s| s.shards.len() as u64).sum();
    progress.begin(manifest.total_rows, shards);
    for stream in &manifest.streams {
        let config = stream_config_hash(
            &key,
            &stream.family,
            stream.level,
            stream.split,
            stream.requested,
        );
        let mut first_index = 0u64;
        for entry in &stream.shards {
            report.shards += 1;
            let shard_index = shard_paths.len() as u32;
            shard_paths.push(&entry.path);
            let context = ShardContext {
                dir,
                entry,
                split: stream.split,
                config: &config,
                style: manifest.prompt_style,
                first_index,
                shard_index,
                certify,
            };
            first_index += entry.rows;
            verify_shard(&context, &mut report, &mut first_seen, &shard_paths);
            progress.shard_done(entry.rows);
        }
    }
    progress.end();
    Ok(report)
}

/// Where a shard sits and how to check it.
struct ShardContext<'a> {
    dir: &'a Path,
    entry: &'a ShardEntry,
    split: Split,
    /// The configuration hash the manifest's settings give for its stream.
    config: &'a str,
    style: PromptStyle,
    /// Its first row's index in the stream.
    first_index: u64,
    shard_index: u32,
    certify: bool,
}

fn verify_shard(
    context: &ShardContext<'_>,
    report: &mut VerifyReport,
    first_seen: &mut FirstSeen,
    shard_paths: &[&str],
) {
    let entry = context.entry;
    let problem = |message: String| Problem {
        location: entry.path.clone(),
        message,
    };
    let path = context.dir.join(&entry.path);
    match shard::sha256_file(&path) {
        Ok((digest, _)) if digest != entry.sha256 => {
            // Not parsed: a corrupted file is not what the manifest describes, and its bytes
            // could make the Parquet reader allocate without bound.
            report.problems.push(problem(format!(
                "SHA-256 {digest} differs from the manifest's {}; the shard is corrupted or was replaced, and was not read further",
                entry.sha256
            )));
            return;
        }
        Ok(_) => {}
        Err(e) => {
            report.problems.push(problem(format!("cannot read: {e}")));
            return;
        }
    }
    let (footer, batches) = match ShardRows::open(&path) {
        Ok(opened) => opened,
        Err(e) => {
            report
                .problems
                .push(problem(format!("not a readable shard: {e}")));
            return;
        }
    };
    if footer.config.as_deref() != Some(context.config) {
        report.problems.push(problem(format!(
            "footer configuration {} is not the manifest's {}: written by another run or configuration",
            footer.config.as_deref().unwrap_or("(none)"),
            context.config
        )));
    }
    let mut rows_in_shard = 0u64;
    for batch in batches {
        let RowBatch { batch, rows, .. } = match batch {
            Ok(read) => read,
            Err(e) => {
                // The location is the shard already: say what, not where.
                let what = match e {
                    DatasetError::Row {
                        column, message, ..
                    } => format!(
                        "unreadable after row {rows_in_shard}: column `{column}`: {message}"
                    ),
                    DatasetError::Invalid { message, .. } => message,
                    other => other.to_string(),
                };
                report.problems.push(problem(what));
                return;
            }
        };
        let row_problems: Vec<Vec<String>> = rows
            .par_iter()
            .map(|row| match row {
                Ok(row) => check_row(row, context.split, context.certify),
                Err(e) => vec![format!("column `{}`: {}", e.column, e.message)],
            })
            .collect();
        let columns = match compare_columns(
            &batch,
            &rows,
            context.split,
            context.first_index + rows_in_shard,
            context.style,
        ) {
            Ok(found) => found,
            Err(e) => {
                report.problems.push(problem(format!("schema: {e}")));
                return;
            }
        };
        let mut columns = columns.into_iter().peekable();
        for (i, (row, found)) in rows.iter().zip(row_problems).enumerate() {
            let at = (context.shard_index, rows_in_shard as u32);
            let location = format!("{} row {rows_in_shard}", entry.path);
            rows_in_shard += 1;
            let mut messages = found;
            while let Some((_, message)) = columns.next_if(|(r, _)| *r == i) {
                messages.push(message);
            }
            for message in messages {
                report.problems.push(Problem {
                    location: location.clone(),
                    message,
                });
            }
            let Ok(row) = row else { continue };
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
