//! Tasks read from a triad dataset directory (its manifest and Parquet shards).

use std::collections::BTreeSet;
use std::path::Path;

use triad::dataset::{Manifest, shard};
use triad::generators::{Message, Split};

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
    /// The split.
    pub split: Split,
    /// The prompt's messages.
    pub messages: Vec<Message>,
    /// The label the scorer judges against.
    pub label: String,
    /// The reference answer.
    pub answer: String,
    /// The solver's reasoning trace of the answer (empty where the row has none).
    pub trace: String,
}

impl Task {
    /// The prompt rendered in ChatML with the assistant turn opened.
    pub fn prompt_text(&self) -> String {
        chat_prompt(
            self.messages
                .iter()
                .map(|m| (m.role.as_str(), m.content.as_str())),
        )
    }
}

/// Which rows to read.
#[derive(Clone, Debug)]
pub struct Selection {
    /// The split.
    pub split: Split,
    /// Families to keep (all when empty).
    pub families: BTreeSet<String>,
    /// Levels to keep (all when empty).
    pub levels: BTreeSet<u8>,
    /// At most this many rows per (family, level) (all when `None`), the first in stream order.
    pub per_level: Option<usize>,
}

impl Selection {
    /// Every row of `split`.
    pub fn split(split: Split) -> Self {
        Selection {
            split,
            families: BTreeSet::new(),
            levels: BTreeSet::new(),
            per_level: None,
        }
    }
}

/// Read the selected tasks of the dataset at `dir`, in manifest order (family, level, split,
/// then row order).
pub fn load_tasks(dir: &Path, selection: &Selection) -> Result<Vec<Task>, TrainError> {
    let manifest = Manifest::read(dir)?;
    let mut tasks = Vec::new();
    for stream in &manifest.streams {
        let keep = stream.split == selection.split
            && (selection.families.is_empty() || selection.families.contains(&stream.family))
            && (selection.levels.is_empty() || selection.levels.contains(&stream.level));
        if !keep {
            continue;
        }
        let limit = selection.per_level.unwrap_or(usize::MAX);
        let mut taken = 0;
        'shards: for entry in &stream.shards {
            for row in shard::read_rows(&dir.join(&entry.path))? {
                if taken >= limit {
                    break 'shards;
                }
                let row = row?;
                tasks.push(Task {
                    id: row.id,
                    family: row.family,
                    level: row.level,
                    split: row.split,
                    messages: row.messages,
                    label: row.label,
                    answer: row.answer,
                    trace: row.trace,
                });
                taken += 1;
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
