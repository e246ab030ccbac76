//! Tasks made on demand: the rows a dataset would hold, generated when asked for.
//!
//! Candidate `j` of a (seed, family, level) stream is a pure function of those coordinates, the
//! family options and the prompt style, and belongs to the split its content picks; a split's
//! stream keeps the candidates of its split, so the task made for it here is the
//! row a `triad generate` dataset of the same settings holds for candidate `j`, column for
//! column (`extra_info.candidate` = `j`), except `extra_info.index`: a dataset numbers its rows
//! after dropping repeated content, which an open-ended stream cannot know, so an online row's
//! index is its candidate index. Online streams do not drop repeats (at level 1 of the small
//! families a stream repeats itself within a few hundred tasks; a dataset's rows are distinct).
//! A train task is never a test item: the content partition that splits datasets decides here
//! too, before a task is made.

use std::time::Instant;

use rayon::prelude::*;
use triad_generators::{DynFamily, GenOptions, ItemCoords, PromptStyle, Split};

use super::OnlineError;
use crate::dataset::shard::{Row, record_batch};

/// Candidates tried per task before a stream counts as exhausted (the sparsest stream, a test
/// split at level 1, accepts about one candidate in ten).
pub const MAX_CANDIDATES_PER_TASK: u64 = 4096;

/// One stream of tasks: the coordinates every candidate of it shares.
#[derive(Clone, Copy)]
pub struct Stream {
    /// The family.
    pub family: &'static dyn DynFamily,
    /// The level.
    pub level: u8,
    /// The split.
    pub split: Split,
    /// The seed.
    pub seed: u64,
    /// The prompt style.
    pub style: PromptStyle,
}

impl Stream {
    /// The key a session keeps this stream's cursor under.
    pub fn cursor_key(&self) -> String {
        format!(
            "{}/{}/{}/{}/{}",
            self.family.name(),
            self.level,
            self.split,
            self.seed,
            self.style.name()
        )
    }

    fn coords(&self, index: u64) -> ItemCoords {
        ItemCoords {
            seed: self.seed,
            family: self.family.name(),
            level: self.level,
            index,
        }
    }
}

/// Tasks of one stream, and where it continues.
#[derive(Debug)]
pub struct Drawn {
    /// The rows, in candidate order.
    pub rows: Vec<Row>,
    /// The candidate after the last one tried.
    pub next: u64,
}

/// Make `n` tasks of `stream` from candidate `start` on, in parallel on the current rayon pool,
/// stopping early (with fewer rows) once `deadline` has passed.
pub fn draw(
    stream: &Stream,
    options: &GenOptions,
    start: u64,
    n: usize,
    deadline: Option<Instant>,
) -> Result<Drawn, OnlineError> {
    let batch = (4 * rayon::current_num_threads() as u64).max(16);
    let limit = start.saturating_add(MAX_CANDIDATES_PER_TASK.saturating_mul(n.max(1) as u64));
    let mut rows = Vec::with_capacity(n);
    let mut next = start;
    while rows.len() < n {
        if next >= limit {
            return Err(OnlineError::Exhausted(format!(
                "{} level {} ({}) gave {} tasks in {} candidates",
                stream.family.name(),
                stream.level,
                stream.split,
                rows.len(),
                next - start
            )));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        // One pool-sized batch at a time, so the deadline is checked every few candidates even
        // where one candidate takes a good part of a second (deduction level 10).
        let end = next.saturating_add(batch).min(limit);
        let made: Vec<(u64, Option<triad_generators::Item>)> = (next..end)
            .into_par_iter()
            .map(|j| {
                stream
                    .family
                    .candidate_in(&stream.coords(j), options, stream.style, Some(stream.split))
                    .map(|item| (j, item))
            })
            .collect::<Result<_, _>>()?;
        for (j, item) in made {
            next = j + 1;
            if let Some(item) = item {
                rows.push(Row {
                    item,
                    split: stream.split,
                    index: j,
                    candidate: j,
                });
                if rows.len() == n {
                    break;
                }
            }
        }
    }
    Ok(Drawn { rows, next })
}

/// Rows as JSON objects with exactly the Parquet row's columns (nulls written out), through the
/// same Arrow record batch the shard writer encodes: one layout, two encodings.
pub fn rows_json(rows: &[Row]) -> Result<Vec<serde_json::Value>, OnlineError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let batch = record_batch(rows)?;
    let mut writer = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow::json::writer::JsonArray>(Vec::new());
    writer.write(&batch)?;
    writer.finish()?;
    let bytes = writer.into_inner();
    match serde_json::from_slice(&bytes)? {
        serde_json::Value::Array(values) => Ok(values),
        _ => Err(OnlineError::Invalid("the JSON writer gave no array".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use triad_generators::registry;

    fn stream(family: &str, level: u8, split: Split) -> Stream {
        Stream {
            family: registry::family(family).unwrap(),
            level,
            split,
            seed: 7,
            style: PromptStyle::Chat,
        }
    }

    #[test]
    fn a_stream_continues_where_it_stopped_and_splits_stay_apart() {
        let options = GenOptions::default();
        let s = stream("deduction", 2, Split::Train);
        let whole = draw(&s, &options, 0, 12, None).unwrap();
        let first = draw(&s, &options, 0, 5, None).unwrap();
        let rest = draw(&s, &options, first.next, 7, None).unwrap();
        let ids = |d: &Drawn| d.rows.iter().map(|r| r.item.id()).collect::<Vec<_>>();
        assert_eq!(ids(&whole), [ids(&first), ids(&rest)].concat());
        assert_eq!(whole.next, rest.next);
        let test = draw(&stream("deduction", 2, Split::Test), &options, 0, 12, None).unwrap();
        assert!(ids(&test).iter().all(|id| !ids(&whole).contains(id)));
    }

    #[test]
    fn json_rows_have_every_column_of_the_parquet_row() {
        let options = GenOptions::default();
        let drawn = draw(&stream("abduction", 1, Split::Train), &options, 0, 3, None).unwrap();
        let rows = rows_json(&drawn.rows).unwrap();
        let schema = crate::dataset::schema::row_schema();
        for (row, drawn) in rows.iter().zip(&drawn.rows) {
            let object = row.as_object().unwrap();
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            assert_eq!(
                object.keys().map(String::as_str).collect::<Vec<_>>().len(),
                names.len()
            );
            for name in names {
                assert!(object.contains_key(name), "{name} missing");
            }
            assert_eq!(row["id"], drawn.item.id());
            assert_eq!(row["label"], drawn.item.label);
            assert_eq!(row["extra_info"]["candidate"], drawn.candidate);
            assert!(row["deduction"].is_null() && row["abduction"].is_object());
        }
    }
}
