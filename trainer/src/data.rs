//! Tasks read from a triad dataset directory (its manifest and Parquet shards).

use std::collections::BTreeSet;
use std::path::Path;

use arrow::array::{Array, Int64Array, ListArray, StringArray, StructArray};
use triad::dataset::{Manifest, shard};

use crate::TrainError;
use crate::tokenizer::chat_prompt;

/// One task: its prompt, label and reference answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// Row id.
    pub id: String,
    /// Family name.
    pub family: String,
    /// Level.
    pub level: u8,
    /// `train` or `test`.
    pub split: String,
    /// The prompt's (role, content) messages.
    pub messages: Vec<(String, String)>,
    /// The label the scorer judges against.
    pub label: String,
    /// The reference answer.
    pub answer: String,
}

impl Task {
    /// The prompt rendered in ChatML with the assistant turn opened.
    pub fn prompt_text(&self) -> String {
        chat_prompt(self.messages.iter().map(|(r, c)| (r.as_str(), c.as_str())))
    }
}

/// Which rows to read.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// `train` or `test`.
    pub split: String,
    /// Families to keep (all when empty).
    pub families: BTreeSet<String>,
    /// Levels to keep (all when empty).
    pub levels: BTreeSet<u8>,
    /// At most this many rows per (family, level) (all when `None`), the first in stream order.
    pub per_level: Option<usize>,
}

impl Selection {
    /// Every row of `split`.
    pub fn split(split: &str) -> Self {
        Selection {
            split: split.to_string(),
            ..Selection::default()
        }
    }
}

fn column<'a, T: 'static>(
    batch: &'a arrow::array::RecordBatch,
    name: &str,
) -> Result<&'a T, TrainError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| TrainError::Invalid(format!("shard has no usable {name} column")))
}

fn messages(prompts: &ListArray, row: usize) -> Result<Vec<(String, String)>, TrainError> {
    let list = prompts.value(row);
    let structs = list
        .as_any()
        .downcast_ref::<StructArray>()
        .ok_or_else(|| TrainError::Invalid("prompt is not a list of structs".into()))?;
    let field = |name: &str| {
        structs
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| TrainError::Invalid(format!("prompt messages have no {name}")))
    };
    let (roles, contents) = (field("role")?, field("content")?);
    Ok((0..structs.len())
        .map(|i| (roles.value(i).to_string(), contents.value(i).to_string()))
        .collect())
}

/// Read the selected tasks of the dataset at `dir`, in manifest order (family, level, split,
/// then row order).
pub fn load_tasks(dir: &Path, selection: &Selection) -> Result<Vec<Task>, TrainError> {
    let manifest = Manifest::read(dir)?;
    let mut tasks = Vec::new();
    for stream in &manifest.streams {
        let keep = stream.split.name() == selection.split
            && (selection.families.is_empty() || selection.families.contains(&stream.family))
            && (selection.levels.is_empty() || selection.levels.contains(&stream.level));
        if !keep {
            continue;
        }
        let limit = selection.per_level.unwrap_or(usize::MAX);
        let mut taken = 0;
        'shards: for entry in &stream.shards {
            for batch in shard::read_batches(&dir.join(&entry.path))? {
                let ids = column::<StringArray>(&batch, "id")?;
                let labels = column::<StringArray>(&batch, "label")?;
                let answers = column::<StringArray>(&batch, "answer")?;
                let families = column::<StringArray>(&batch, "family")?;
                let levels = column::<Int64Array>(&batch, "level")?;
                let prompts = column::<ListArray>(&batch, "prompt")?;
                for row in 0..batch.num_rows() {
                    if taken >= limit {
                        break 'shards;
                    }
                    tasks.push(Task {
                        id: ids.value(row).to_string(),
                        family: families.value(row).to_string(),
                        level: u8::try_from(levels.value(row)).unwrap_or(u8::MAX),
                        split: stream.split.name().to_string(),
                        messages: messages(prompts, row)?,
                        label: labels.value(row).to_string(),
                        answer: answers.value(row).to_string(),
                    });
                    taken += 1;
                }
            }
        }
    }
    if tasks.is_empty() {
        return Err(TrainError::Invalid(format!(
            "{}: no {} rows match the selection",
            dir.display(),
            selection.split
        )));
    }
    Ok(tasks)
}
