//! triad-trainer: the paper's training recipe on candle — SFT warm-up, RL (REINFORCE++ / GRPO)
//! with a level curriculum, linear parameter merge of specialists, and evaluation — scoring
//! rollouts with triad's scorer in process.
//!
//! The model ([`model::Qwen2`]) is a Qwen2-architecture causal LM written with differentiable
//! candle ops only: candle-transformers' fused RMSNorm / rotary / softmax kernels have no backward
//! pass, so a model built from them trains only a fraction of its weights, silently. A test checks
//! that every parameter receives a gradient.
#![deny(missing_docs)]

pub mod advantage;
pub mod batch;
pub mod config;
pub mod data;
mod error;
pub mod eval;
mod fused;
pub mod merge;
pub mod metrics;
pub mod model;
mod native;
pub mod objective;
pub mod online;
pub mod optim;
pub mod pipeline;
pub mod plot;
pub mod policy;
pub mod progress;
pub mod reward;
pub mod rl;
pub mod run;
pub mod sample;
pub mod sft;
pub mod st;
pub mod tokenizer;

pub use config::ModelConfig;
pub use error::{Result, TrainError};
