//! The trainer's error type.

use std::path::{Path, PathBuf};

/// What can go wrong in training, merging, loading or evaluating.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A filesystem error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A model configuration that cannot be used.
    #[error("model config: {0}")]
    Config(String),
    /// A checkpoint that cannot be read or does not fit the model.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// Tokenizer trouble.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A dataset that cannot be read.
    #[error(transparent)]
    Dataset(#[from] triad::dataset::DatasetError),
    /// Tensors that cannot be merged (names, shapes, dtypes), or bad merge options.
    #[error("merge: {0}")]
    Merge(String),
    /// Bad options.
    #[error("{0}")]
    Invalid(String),
}

impl TrainError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Result with [`TrainError`].
pub type Result<T, E = TrainError> = std::result::Result<T, E>;
