//! Datasets: Parquet shards in the verl schema, a manifest with checksums, a dataset card.
//!
//! Layout: `OUT/<family>/level-<L>/<split>-<i>-of-<n>.parquet` (zstd), `OUT/manifest.json`,
//! `OUT/README.md`. See [`generate()`] for how rows are made deterministic and resumable.

pub mod audit;
mod card;
pub mod generate;
pub mod manifest;
pub mod progress;
pub mod schema;
pub mod shard;
pub mod state;
pub mod verify;

use std::path::{Path, PathBuf};

pub use generate::{GenerateConfig, generate};
pub use manifest::{DEFAULT_LICENSE, Manifest};

/// Join the partial manifests that `count` fan-out workers wrote into `dir`: writes the
/// `manifest.json` and dataset card a single run would have written, then removes the partials.
pub fn merge_workers(dir: &Path, count: u64) -> Result<Manifest, DatasetError> {
    // Exclusive: no worker may still be writing.
    let _lock = state::DirLock::acquire(dir, state::Writer::Run)?;
    let manifest = Manifest::merge(dir, count)?;
    manifest.write(dir)?;
    let mut families: Vec<&'static dyn triad_generators::DynFamily> = Vec::new();
    for stream in &manifest.streams {
        let family = triad_generators::registry::family(&stream.family).ok_or_else(|| {
            DatasetError::Invalid {
                path: dir.join("manifest.json"),
                message: format!("unknown family {}", stream.family),
            }
        })?;
        if !families.iter().any(|f| f.name() == family.name()) {
            families.push(family);
        }
    }
    card::write(dir, &manifest, &families)?;
    for index in 0..count {
        let path = dir.join(manifest::worker_file(index, count));
        std::fs::remove_file(&path).map_err(|e| DatasetError::io(&path, e))?;
        state::remove_worker_lock(dir, index, count)?;
    }
    Ok(manifest)
}

/// The dataset format version (layout, schema, manifest); bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;

/// A 128-bit key for a text: the first 16 bytes of its SHA-256 (duplicate detection in `verify`
/// and `audit`, which keep keys, not texts).
pub(crate) fn hash128(text: &str) -> u128 {
    use sha2::{Digest, Sha256};
    u128::from_be_bytes(
        Sha256::digest(text.as_bytes())[..16]
            .try_into()
            .expect("16 bytes"),
    )
}

/// Errors of dataset reading and writing, with the path they concern.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// A filesystem error.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A Parquet error on a file.
    #[error("{path}: {source}")]
    Parquet {
        /// The path.
        path: PathBuf,
        /// The error.
        source: parquet::errors::ParquetError,
    },
    /// A Parquet error while encoding.
    #[error("parquet: {0}")]
    Encode(#[from] parquet::errors::ParquetError),
    /// An Arrow error.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Generation failed (a certification mismatch is a bug and stops the run).
    #[error("generation failed")]
    Generate(#[from] triad_generators::GenError),
    /// The output directory holds shards of another configuration.
    #[error(
        "{path} was written with a different configuration; pass --overwrite or choose another --out"
    )]
    Foreign {
        /// The shard.
        path: PathBuf,
    },
    /// Another process is writing this dataset directory.
    #[error("{path} is held by {holder}: another `triad generate` is writing this directory")]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as far as known.
        holder: String,
    },
    /// A file on disk is not what triad wrote.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A configuration that cannot be generated (found before anything is written).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A shard's row (or column) is not of the row schema.
    #[error("{}{}: column `{column}`: {message}", path.display(), row.map(|r| format!(" row {r}")).unwrap_or_default())]
    Row {
        /// The shard.
        path: PathBuf,
        /// The row within the shard, when one row is at fault.
        row: Option<u64>,
        /// The column (`extra_info.split`).
        column: &'static str,
        /// What is wrong.
        message: String,
    },
    /// JSON (manifest) error.
    #[error("{path}: {source}")]
    Json {
        /// The path.
        path: PathBuf,
        /// The error.
        source: serde_json::Error,
    },
}

impl DatasetError {
    pub(crate) fn invalid(path: &Path, message: impl Into<String>) -> DatasetError {
        DatasetError::Invalid {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> DatasetError {
        DatasetError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
