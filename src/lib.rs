//! # triad
//!
//! Self-verifiable reasoning tasks and the rewards for training language models on them: datasets
//! as Parquet shards in the verl schema ([`dataset`]), a scorer for model rollouts ([`reward`]),
//! and JSONL batch scoring ([`score_file`]). The task families themselves live in
//! [`triad_generators`], re-exported here as [`generators`].
#![deny(missing_docs)]

pub mod bench;
pub mod dataset;
mod label_schema;
pub mod levels;
pub mod online;
pub mod reward;
pub mod score_file;
pub mod server;

pub use label_schema::label_schema;
pub use triad_generators as generators;
