//! The pipeline's configuration (`trainer/pipeline.toml`), its defaults and its checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use triad::generators::PromptStyle;
use triad::reward::Preset;

use crate::TrainError;
use crate::advantage::Estimator;
use crate::sft::Target;

/// The families the pipeline trains specialists of: every family in the registry, in its order.
pub fn families() -> Vec<&'static str> {
    triad::generators::registry::names()
}

/// The data the pipeline generates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Train items per family and level.
    pub train: u64,
    /// Test items per family and level.
    pub test: u64,
    /// How prompts are rendered (`compact` suits small fresh models: about half the tokens).
    #[serde(default)]
    pub prompt_style: PromptStyle,
}

/// The base model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseConfig {
    /// A local Hugging Face model directory; when absent, a fresh model of `init` size.
    #[serde(default)]
    pub model: Option<PathBuf>,
    /// Named size of a fresh model.
    #[serde(default = "default_init")]
    pub init: String,
    /// BPE vocabulary of a fresh model's tokenizer.
    #[serde(default = "default_vocab")]
    pub vocab_size: usize,
    /// Positions of a fresh model.
    #[serde(default = "default_positions")]
    pub max_positions: usize,
    /// SFT warm-up steps on a mix of all three families at the curriculum levels (0: none).
    pub sft_steps: u64,
    /// SFT batch size.
    #[serde(default = "default_batch")]
    pub sft_batch_size: usize,
    /// SFT learning rate.
    #[serde(default = "default_sft_lr")]
    pub sft_lr: f64,
    /// SFT completion: the answer format only, or the solver's checked trace then the answer.
    #[serde(default = "default_target")]
    pub sft_target: Target,
}

/// Supervised training of each specialist on its own family's traces (or answers) before its RL.
///
/// Not in the paper, whose specialists are RL from an instruct model that already reads
/// formulas and rules: a fresh model of a million parameters has no such ability for RL to
/// sharpen (RL from a format-only start leaves greedy accuracy where it was), so at this scale
/// the specialist stage has to teach the ability first. Absent: RL-only specialists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecialistSftConfig {
    /// Steps per family (a family not named gets none).
    pub steps: BTreeMap<String, u64>,
    /// Sequences per step.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Learning rate.
    #[serde(default = "default_sft_lr")]
    pub lr: f64,
    /// SFT completion.
    #[serde(default = "default_target")]
    pub target: Target,
}

impl SpecialistSftConfig {
    /// The SFT steps of `family`'s specialist.
    pub fn steps_of(&self, family: &str) -> u64 {
        self.steps.get(family).copied().unwrap_or(0)
    }
}

fn default_init() -> String {
    "tiny".into()
}
fn default_vocab() -> usize {
    1024
}
fn default_positions() -> usize {
    1024
}
fn default_batch() -> usize {
    16
}
fn default_sft_lr() -> f64 {
    1e-3
}
fn default_target() -> Target {
    crate::sft::DEFAULT_TARGET
}

/// One RL stage's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlStageConfig {
    /// Optimizer steps.
    pub steps: u64,
    /// Steps per curriculum level before advancing regardless of accuracy.
    #[serde(default)]
    pub max_steps_per_level: Option<u64>,
    /// Prompts per step.
    #[serde(default = "default_prompts")]
    pub prompts: usize,
    /// Rollouts per prompt.
    #[serde(default = "default_rollouts")]
    pub rollouts: usize,
    /// Advantage estimator.
    #[serde(default = "default_estimator")]
    pub estimator: Estimator,
    /// Learning rate (default: `triad-train rl`'s for the starting model's size,
    /// [`crate::rl::default_lr`]).
    #[serde(default)]
    pub lr: Option<f64>,
    /// Sampling temperature.
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// Longest response.
    #[serde(default = "default_new_tokens")]
    pub max_new_tokens: usize,
    /// KL coefficient.
    #[serde(default = "default_kl")]
    pub kl_coef: f64,
    /// Share of each step's prompts drawn from the levels already left behind
    /// ([`crate::rl::RlOptions::replay`]).
    #[serde(default = "default_replay", skip_serializing_if = "crate::rl::is_zero")]
    pub replay: f64,
}

// A stage's defaults are `triad-train rl`'s (one set, in `rl`).
fn default_prompts() -> usize {
    crate::rl::DEFAULT_PROMPTS
}
fn default_rollouts() -> usize {
    crate::rl::DEFAULT_ROLLOUTS
}
fn default_estimator() -> Estimator {
    crate::rl::DEFAULT_ESTIMATOR
}
fn default_temperature() -> f64 {
    crate::rl::DEFAULT_TEMPERATURE
}
fn default_new_tokens() -> usize {
    crate::rl::DEFAULT_MAX_NEW_TOKENS
}
fn default_kl() -> f64 {
    crate::rl::DEFAULT_KL_COEF
}
fn default_replay() -> f64 {
    crate::rl::DEFAULT_REPLAY
}

/// The merge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeConfig {
    /// Weight per family.
    pub weights: BTreeMap<String, f64>,
    /// Divide by the sum (mergekit's default).
    #[serde(default)]
    pub normalize: bool,
}

/// The held-out domain set and its RL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// Families of the domain set.
    pub families: Vec<String>,
    /// Its levels (the specialists never see them).
    pub levels: Vec<u8>,
    /// The RL stage run on it.
    pub rl: RlStageConfig,
}

/// The whole pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// The one seed every stage's seed derives from.
    pub seed: u64,
    /// Curriculum levels of the specialists, in order (the paper: 1 then 2).
    pub levels: Vec<u8>,
    /// Data sizes.
    pub data: DataConfig,
    /// The base model.
    pub base: BaseConfig,
    /// The specialists' supervised stage before their RL (none when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specialist_sft: Option<SpecialistSftConfig>,
    /// The specialists' RL.
    pub specialist: RlStageConfig,
    /// The merge.
    pub merge: MergeConfig,
    /// The domain stage.
    pub domain: DomainConfig,
    /// Test tasks per family and level in every evaluation (all when absent).
    #[serde(default)]
    pub eval_limit: Option<usize>,
    /// Longest response in evaluations.
    #[serde(default = "default_new_tokens")]
    pub eval_max_new_tokens: usize,
    /// Reward preset.
    #[serde(default)]
    pub reward: Preset,
}

impl PipelineConfig {
    /// Read and check a TOML configuration.
    pub fn read(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        let config: PipelineConfig = toml::from_str(&text)
            .map_err(|e| TrainError::Invalid(format!("{}: {e}", path.display())))?;
        config.validate()?;
        Ok(config)
    }

    pub(super) fn validate(&self) -> Result<(), TrainError> {
        if self.levels.is_empty() || self.domain.levels.is_empty() {
            return Err(TrainError::Invalid(
                "levels and domain.levels must not be empty".into(),
            ));
        }
        let families = families();
        for family in &families {
            if !self.merge.weights.contains_key(*family) {
                return Err(TrainError::Invalid(format!(
                    "merge.weights has no weight for {family}"
                )));
            }
        }
        let sft_families = self.specialist_sft.iter().flat_map(|s| s.steps.keys());
        for family in self
            .merge
            .weights
            .keys()
            .chain(&self.domain.families)
            .chain(sft_families)
        {
            if !families.contains(&family.as_str()) {
                return Err(TrainError::Invalid(format!("unknown family {family:?}")));
            }
        }
        Ok(())
    }
}
