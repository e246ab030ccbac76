//! The model configuration: the fields of a Hugging Face Qwen2 `config.json`, and the named sizes
//! `--init` builds.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::TrainError;

/// A Qwen2 `config.json`. Unknown fields are kept (`extra`) so a loaded config is written back
/// with nothing lost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Always `["Qwen2ForCausalLM"]` for what triad-train writes.
    #[serde(default = "default_architectures")]
    pub architectures: Vec<String>,
    /// `qwen2`.
    #[serde(default = "default_model_type")]
    pub model_type: String,
    /// Vocabulary size (rows of the embedding matrix).
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Width of the SwiGLU feed-forward layer.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention when fewer than the query heads).
    pub num_key_value_heads: usize,
    /// Longest sequence the rotary table covers.
    pub max_position_embeddings: usize,
    /// Rotary base.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// RMSNorm epsilon.
    #[serde(default = "default_rms_norm_eps")]
    pub rms_norm_eps: f64,
    /// Whether the output projection is the embedding matrix.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// `silu` (the only activation Qwen2 uses).
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    /// The dtype the weights are stored in.
    #[serde(default = "default_torch_dtype")]
    pub torch_dtype: String,
    /// Beginning-of-sequence token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_token_id: Option<u32>,
    /// Any other field of the file, kept as it was.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn default_architectures() -> Vec<String> {
    vec!["Qwen2ForCausalLM".into()]
}
fn default_model_type() -> String {
    "qwen2".into()
}
fn default_rope_theta() -> f64 {
    10_000.0
}
fn default_rms_norm_eps() -> f64 {
    1e-6
}
fn default_hidden_act() -> String {
    "silu".into()
}
fn default_torch_dtype() -> String {
    "float32".into()
}

/// The sizes `--init` knows: (name, hidden, intermediate, layers, heads, kv heads).
pub const NAMED_SIZES: &[(&str, usize, usize, usize, usize, usize)] = &[
    ("micro", 64, 128, 2, 4, 2),
    ("tiny", 128, 384, 4, 4, 2),
    ("small", 256, 768, 6, 8, 4),
    ("base", 512, 1536, 8, 8, 4),
];

impl ModelConfig {
    /// A named size with the given vocabulary, tied embeddings, f32 weights.
    pub fn named(name: &str, vocab_size: usize, max_positions: usize) -> Result<Self, TrainError> {
        let &(_, hidden, intermediate, layers, heads, kv_heads) =
            NAMED_SIZES.iter().find(|s| s.0 == name).ok_or_else(|| {
                let known: Vec<_> = NAMED_SIZES.iter().map(|s| s.0).collect();
                TrainError::Config(format!(
                    "unknown size {name:?}; known: {}",
                    known.join(", ")
                ))
            })?;
        Ok(ModelConfig {
            architectures: default_architectures(),
            model_type: default_model_type(),
            vocab_size,
            hidden_size: hidden,
            intermediate_size: intermediate,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: kv_heads,
            max_position_embeddings: max_positions,
            rope_theta: default_rope_theta(),
            rms_norm_eps: default_rms_norm_eps(),
            tie_word_embeddings: true,
            hidden_act: default_hidden_act(),
            torch_dtype: default_torch_dtype(),
            bos_token_id: None,
            eos_token_id: None,
            extra: serde_json::Map::new(),
        })
    }

    /// Read `config.json` from a model directory.
    pub fn read(dir: &Path) -> Result<Self, TrainError> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
        let config: ModelConfig = serde_json::from_str(&text)
            .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?;
        config.validate()?;
        Ok(config)
    }

    /// Write `config.json` into a model directory.
    pub fn write(&self, dir: &Path) -> Result<(), TrainError> {
        let path = dir.join("config.json");
        let mut text = serde_json::to_string_pretty(self).expect("config serializes");
        text.push('\n');
        std::fs::write(&path, text).map_err(|e| TrainError::io(&path, e))
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Weights of a Qwen2 model of this shape (biases on q, k and v only; one embedding when
    /// tied), without loading it: what RL's learning-rate default is chosen by.
    pub fn parameter_count(&self) -> usize {
        let (h, i, vocab) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let q = self.num_attention_heads * self.head_dim();
        let kv = self.num_key_value_heads * self.head_dim();
        let attention = h * q + q + 2 * (h * kv + kv) + q * h;
        let layer = attention + 3 * h * i + 2 * h;
        let heads = if self.tie_word_embeddings { 1 } else { 2 };
        heads * vocab * h + self.num_hidden_layers * layer + h
    }

    /// Reject shapes the model cannot be built with.
    pub fn validate(&self) -> Result<(), TrainError> {
        let problem = if self.num_attention_heads == 0 || self.num_key_value_heads == 0 {
            Some("head counts must be positive".to_string())
        } else if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            Some(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ))
        } else if !self
            .num_attention_heads
            .is_multiple_of(self.num_key_value_heads)
        {
            Some(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads, self.num_key_value_heads
            ))
        } else if !self.head_dim().is_multiple_of(2) {
            Some("the head width must be even for rotary embeddings".to_string())
        } else if self.hidden_act != "silu" {
            Some(format!(
                "hidden_act {:?} is not supported (Qwen2 uses silu)",
                self.hidden_act
            ))
        } else {
            None
        };
        match problem {
            Some(p) => Err(TrainError::Config(p)),
            None => Ok(()),
        }
    }
}
