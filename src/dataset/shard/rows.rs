//! Rows read back: the one typed reader `verify`, `audit` and the trainer share, streaming a
//! shard one record batch (up to 1,024 rows) at a time.
//!
//! A column that is missing or of the wrong type fails the whole batch ([`RowError`] with no
//! row); a value that does not decode (a split that is neither `train` nor `test`, a level
//! outside 0–255, a negative candidate index) fails that row only, so `verify` can name it and go
//! on.

use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, Int64Array, ListArray, RecordBatch, StringArray, StructArray};
use arrow::datatypes::Int64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use triad_generators::{Message, Split};

use super::reader::{Footer, open_shard};
use crate::dataset::DatasetError;

/// A row as stored, typed: what readers of a shard use. The family's structured column and the
/// provenance copies in `extra_info` are left to `verify`, which compares them with columns
/// rebuilt from the label.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRow {
    /// `id`: the content hash, 32 hex digits.
    pub id: String,
    /// `family`.
    pub family: String,
    /// `level`.
    pub level: u8,
    /// `extra_info.split`.
    pub split: Split,
    /// `extra_info.candidate`: the index in the seeded stream the row was generated from.
    pub candidate: u64,
    /// `prompt`: the chat messages.
    pub messages: Vec<Message>,
    /// `label`.
    pub label: String,
    /// `reward_model.ground_truth` (the label again, for verl).
    pub ground_truth: String,
    /// `answer`: the reference answer text.
    pub answer: String,
    /// `trace`: the solver's reasoning to the answer (empty where the item has none, and in
    /// shards written before the column existed).
    pub trace: String,
}

impl StoredRow {
    /// The last message's text (where a pre-filled `<think>` would be).
    pub fn prompt_tail(&self) -> &str {
        self.messages.last().map_or("", |m| m.content.as_str())
    }
}

/// A batch, or one row of it, that does not have the row schema's shape.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}column `{column}`: {message}", row.map(|r| format!("row {r}, ")).unwrap_or_default())]
pub struct RowError {
    /// The row within the batch, when one row is at fault; `None` when the column is.
    pub row: Option<usize>,
    /// The column (`extra_info.split`).
    pub column: &'static str,
    /// What is wrong.
    pub message: String,
}

impl RowError {
    fn column(column: &'static str, message: &str) -> RowError {
        RowError {
            row: None,
            column,
            message: message.to_string(),
        }
    }

    /// The error as a dataset error located in `path`, `first_row` rows into the file.
    pub fn at(self, path: &Path, first_row: u64) -> DatasetError {
        DatasetError::Row {
            path: path.to_path_buf(),
            row: self.row.map(|r| first_row + r as u64),
            column: self.column,
            message: self.message,
        }
    }
}

/// The fixed columns of one batch, each of its declared type.
struct Columns<'a> {
    ids: &'a StringArray,
    families: &'a StringArray,
    levels: &'a Int64Array,
    splits: &'a StringArray,
    candidates: &'a Int64Array,
    prompts: &'a ListArray,
    labels: &'a StringArray,
    truths: &'a StringArray,
    answers: &'a StringArray,
    traces: Option<&'a StringArray>,
}

fn strings<'a>(batch: &'a RecordBatch, column: &'static str) -> Result<&'a StringArray, RowError> {
    batch
        .column_by_name(column)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| RowError::column(column, "missing, or not a string column"))
}

fn child<'a>(
    batch: &'a RecordBatch,
    parent: &str,
    field: &str,
    column: &'static str,
) -> Result<&'a dyn Array, RowError> {
    batch
        .column_by_name(parent)
        .and_then(|c| c.as_struct_opt())
        .and_then(|s: &StructArray| s.column_by_name(field))
        .map(|c| c.as_ref())
        .ok_or_else(|| RowError::column(column, "missing"))
}

impl<'a> Columns<'a> {
    fn of(batch: &'a RecordBatch) -> Result<Columns<'a>, RowError> {
        let int64 = |array: Option<&'a dyn Array>, column| {
            array
                .and_then(|a| a.as_primitive_opt::<Int64Type>())
                .ok_or_else(|| RowError::column(column, "missing, or not an int64 column"))
        };
        let string = |array: &'a dyn Array, column| {
            array
                .as_string_opt::<i32>()
                .ok_or_else(|| RowError::column(column, "not a string column"))
        };
        Ok(Columns {
            ids: strings(batch, "id")?,
            families: strings(batch, "family")?,
            levels: int64(batch.column_by_name("level").map(|c| c.as_ref()), "level")?,
            splits: string(
                child(batch, "extra_info", "split", "extra_info.split")?,
                "extra_info.split",
            )?,
            candidates: int64(
                Some(child(
                    batch,
                    "extra_info",
                    "candidate",
                    "extra_info.candidate",
                )?),
                "extra_info.candidate",
            )?,
            prompts: batch
                .column_by_name("prompt")
                .and_then(|c| c.as_list_opt::<i32>())
                .ok_or_else(|| RowError::column("prompt", "missing, or not a list column"))?,
            labels: strings(batch, "label")?,
            truths: string(
                child(
                    batch,
                    "reward_model",
                    "ground_truth",
                    "reward_model.ground_truth",
                )?,
                "reward_model.ground_truth",
            )?,
            answers: strings(batch, "answer")?,
            traces: batch
                .column_by_name("trace")
                .and_then(|c| c.as_string_opt::<i32>()),
        })
    }

    fn messages(&self, row: usize) -> Result<Vec<Message>, RowError> {
        let bad = |message: &str| RowError {
            row: Some(row),
            column: "prompt",
            message: message.into(),
        };
        let list = self.prompts.value(row);
        let structs = list
            .as_struct_opt()
            .ok_or_else(|| bad("not a list of structs"))?;
        let field = |name| {
            structs
                .column_by_name(name)
                .and_then(|c| c.as_string_opt::<i32>())
                .ok_or_else(|| bad(&format!("messages have no string `{name}`")))
        };
        let (roles, contents) = (field("role")?, field("content")?);
        Ok((0..structs.len())
            .map(|i| Message {
                role: roles.value(i).to_string(),
                content: contents.value(i).to_string(),
            })
            .collect())
    }

    fn row(&self, row: usize) -> Result<StoredRow, RowError> {
        let bad = |column, message: String| RowError {
            row: Some(row),
            column,
            message,
        };
        let level = self.levels.value(row);
        let split = match self.splits.value(row) {
            "train" => Split::Train,
            "test" => Split::Test,
            other => {
                return Err(bad(
                    "extra_info.split",
                    format!("{:?} is neither train nor test", truncate(other)),
                ));
            }
        };
        let candidate = self.candidates.value(row);
        Ok(StoredRow {
            id: self.ids.value(row).to_string(),
            family: self.families.value(row).to_string(),
            level: u8::try_from(level)
                .map_err(|_| bad("level", format!("{level} is not a level (0–255)")))?,
            split,
            candidate: u64::try_from(candidate).map_err(|_| {
                bad(
                    "extra_info.candidate",
                    format!("{candidate} is not an index"),
                )
            })?,
            messages: self.messages(row)?,
            label: self.labels.value(row).to_string(),
            ground_truth: self.truths.value(row).to_string(),
            answer: self.answers.value(row).to_string(),
            trace: self
                .traces
                .map(|t| t.value(row).to_string())
                .unwrap_or_default(),
        })
    }
}

/// At most 40 characters of a stored value, for messages.
fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

/// Every row of a batch, each decoded on its own; `Err` when a column is missing or mistyped.
pub fn decode(batch: &RecordBatch) -> Result<Vec<Result<StoredRow, RowError>>, RowError> {
    let columns = Columns::of(batch)?;
    Ok((0..batch.num_rows()).map(|row| columns.row(row)).collect())
}

/// One record batch of a shard and its rows, decoded.
pub struct RowBatch {
    /// The batch as read (what `verify` compares column by column).
    pub batch: RecordBatch,
    /// Its rows, in order, each decoded on its own.
    pub rows: Vec<Result<StoredRow, RowError>>,
    /// Rows of the shard before this batch.
    pub first_row: u64,
}

/// A shard's rows, one batch at a time.
pub struct ShardRows {
    path: PathBuf,
    reader: ParquetRecordBatchReader,
    rows_read: u64,
}

impl ShardRows {
    /// Open a shard: its footer, and its batches to come.
    pub fn open(path: &Path) -> Result<(Footer, ShardRows), DatasetError> {
        let (footer, reader) = open_shard(path)?;
        let rows = ShardRows {
            path: path.to_path_buf(),
            reader,
            rows_read: 0,
        };
        Ok((footer, rows))
    }

    /// Every row, in order, failing on the first that does not decode (with its path and row):
    /// for readers that only use a well-formed shard (`audit`, the trainer).
    pub fn strict(self) -> impl Iterator<Item = Result<StoredRow, DatasetError>> {
        let path = self.path.clone();
        self.flat_map(move |batch| -> Vec<Result<StoredRow, DatasetError>> {
            match batch {
                Err(e) => vec![Err(e)],
                Ok(RowBatch {
                    rows, first_row, ..
                }) => rows
                    .into_iter()
                    .map(|row| row.map_err(|e| e.at(&path, first_row)))
                    .collect(),
            }
        })
    }
}

impl Iterator for ShardRows {
    type Item = Result<RowBatch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch = match self.reader.next()? {
            Ok(batch) => batch,
            Err(e) => {
                return Some(Err(DatasetError::invalid(
                    &self.path,
                    format!("unreadable after row {}: {e}", self.rows_read),
                )));
            }
        };
        let first_row = self.rows_read;
        self.rows_read += batch.num_rows() as u64;
        Some(
            decode(&batch)
                .map(|rows| RowBatch {
                    batch,
                    rows,
                    first_row,
                })
                .map_err(|e| e.at(&self.path, first_row)),
        )
    }
}

/// Every row of a shard, in order, failing on the first that does not decode.
pub fn read_rows(
    path: &Path,
) -> Result<impl Iterator<Item = Result<StoredRow, DatasetError>>, DatasetError> {
    Ok(ShardRows::open(path)?.1.strict())
}
