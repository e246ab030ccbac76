//! The JSONL training log: one object per step, appended as the run goes.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::TrainError;

/// What one step records. Fields that a phase does not measure are `null`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    /// `sft` or `rl`.
    pub phase: String,
    /// Step number, from 1.
    pub step: u64,
    /// Curriculum level of the step's prompts.
    #[serde(default)]
    pub level: Option<u8>,
    /// Training loss (`null` when not finite).
    #[serde(deserialize_with = "null_as_nan")]
    pub loss: f64,
    /// Mean reward of the step's rollouts.
    #[serde(default)]
    pub reward_mean: Option<f64>,
    /// Standard deviation of the rewards.
    #[serde(default)]
    pub reward_std: Option<f64>,
    /// Fraction of rollouts with a correct answer in the right format.
    #[serde(default)]
    pub accuracy: Option<f64>,
    /// Fraction of rollouts failing the format rule.
    #[serde(default)]
    pub format_failure_rate: Option<f64>,
    /// Mean per-token KL to the reference (k3 estimator).
    #[serde(default)]
    pub kl: Option<f64>,
    /// Mean per-token entropy of the policy on its completions.
    #[serde(default)]
    pub entropy: Option<f64>,
    /// Mean completion length in tokens.
    pub response_length: f64,
    /// Gradient norm before clipping (`null` when not finite: the step was skipped).
    #[serde(deserialize_with = "null_as_nan")]
    pub grad_norm: f64,
    /// Optimizer steps skipped because the gradient norm was not finite (RL: one per pass).
    #[serde(default)]
    pub skipped_steps: Option<u64>,
    /// Fraction of the step's prompts whose rollouts all got the same reward: their advantages
    /// are 0 under GRPO, so they teach nothing (RL).
    #[serde(default)]
    pub zero_variance_groups: Option<f64>,
    /// Learning rate.
    pub lr: f64,
    /// Tokens trained on per second (forward + backward).
    pub train_tokens_per_s: f64,
    /// Tokens sampled per second (RL).
    #[serde(default)]
    pub sample_tokens_per_s: Option<f64>,
    /// Seconds spent scoring the step's rollouts (RL).
    #[serde(default)]
    pub reward_seconds: Option<f64>,
    /// Seconds the step took.
    pub seconds: f64,
}

/// serde_json writes a non-finite float as `null`; read it back as NaN, so a log with a
/// skipped step stays readable.
fn null_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Append one line to the log at `path`.
pub fn append(path: &Path, metrics: &StepMetrics) -> Result<(), TrainError> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| TrainError::io(path, e))?;
    let mut line = serde_json::to_string(metrics).expect("metrics serialize");
    line.push('\n');
    file.write_all(line.as_bytes())
        .map_err(|e| TrainError::io(path, e))
}

/// Read every line of a log.
pub fn read(path: &Path) -> Result<Vec<StepMetrics>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map_err(|e| TrainError::Invalid(format!("{}:{}: {e}", path.display(), i + 1)))
        })
        .collect()
}

/// Drop the lines of `phase` after `step` (a resumed run re-does those steps).
pub fn truncate_after(path: &Path, phase: &str, step: u64) -> Result<(), TrainError> {
    if !path.exists() {
        return Ok(());
    }
    let kept: Vec<StepMetrics> = read(path)?
        .into_iter()
        .filter(|m| m.phase != phase || m.step <= step)
        .collect();
    let mut text = String::new();
    for m in &kept {
        text.push_str(&serde_json::to_string(m).expect("metrics serialize"));
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| TrainError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A skipped step's non-finite gradient norm is written as `null` and read back as NaN: the
    /// log stays readable (plots and resumes read it).
    #[test]
    fn a_non_finite_norm_round_trips_through_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let step = StepMetrics {
            phase: "rl".into(),
            step: 1,
            grad_norm: f64::NAN,
            skipped_steps: Some(1),
            zero_variance_groups: Some(0.25),
            ..StepMetrics::default()
        };
        append(&path, &step).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"grad_norm\":null"), "{text}");
        let back = read(&path).unwrap();
        assert!(back[0].grad_norm.is_nan());
        assert_eq!(back[0].skipped_steps, Some(1));
        assert_eq!(back[0].zero_variance_groups, Some(0.25));
    }
}
