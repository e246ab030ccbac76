//! `manifest.json`: what a dataset holds, how it was made, and a checksum per shard.
//!
//! It carries no timestamps or host names, so the same command writes the same bytes.

use std::path::Path;

use serde::{Deserialize, Serialize};
use triad_generators::{AbductionMode, PromptStyle, Split};

use super::{DatasetError, FORMAT_VERSION};

/// The manifest of a dataset directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `triad-dataset`.
    pub format: String,
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The triad version that wrote it.
    pub triad_version: String,
    /// The master seed.
    pub seed: u64,
    /// The prompt style.
    pub prompt_style: PromptStyle,
    /// Fraction of unsatisfiable deduction items.
    pub unsat_ratio: f64,
    /// The abduction question asked.
    #[serde(default)]
    pub abduction_mode: AbductionMode,
    /// Rows per shard.
    pub shard_rows: u64,
    /// One entry per (family, level, split).
    pub streams: Vec<StreamEntry>,
    /// Rows in all shards.
    pub total_rows: u64,
}

/// The shards of one (family, level, split).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamEntry {
    /// Family name.
    pub family: String,
    /// Level.
    pub level: u8,
    /// Split.
    pub split: Split,
    /// Rows asked for.
    pub requested: u64,
    /// Rows written.
    pub rows: u64,
    /// Candidates drawn from the seeded stream (rejections and duplicates included).
    pub candidates: u64,
    /// True when the family ran out of distinct items before `requested`.
    pub exhausted: bool,
    /// The configuration hash stamped in every shard's footer.
    pub config: String,
    /// The shards, in order.
    pub shards: Vec<ShardEntry>,
}

/// One shard file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// Path relative to the dataset directory, with `/` separators.
    pub path: String,
    /// Rows.
    pub rows: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file.
    pub sha256: String,
}

impl Manifest {
    /// A manifest with no streams yet.
    pub fn new(
        seed: u64,
        prompt_style: PromptStyle,
        options: &triad_generators::GenOptions,
        shard_rows: u64,
    ) -> Manifest {
        Manifest {
            format: "triad-dataset".into(),
            format_version: FORMAT_VERSION,
            triad_version: env!("CARGO_PKG_VERSION").into(),
            seed,
            prompt_style,
            unsat_ratio: options.unsat_ratio,
            abduction_mode: options.abduction_mode,
            shard_rows,
            streams: Vec::new(),
            total_rows: 0,
        }
    }

    /// Read `manifest.json` from a dataset directory.
    pub fn read(dir: &Path) -> Result<Manifest, DatasetError> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|e| DatasetError::io(&path, e))?;
        serde_json::from_str(&text).map_err(|source| DatasetError::Json { path, source })
    }

    /// Write `manifest.json` atomically.
    pub fn write(&self, dir: &Path) -> Result<(), DatasetError> {
        let mut text = serde_json::to_string_pretty(self).expect("manifest serializes");
        text.push('\n');
        super::shard::write_atomic(&dir.join("manifest.json"), text.as_bytes())
    }
}
