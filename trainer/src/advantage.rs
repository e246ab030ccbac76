//! Advantage estimators for outcome rewards (one scalar reward per rollout, on its last token).
//!
//! - **REINFORCE++ as the paper ran it** (Logic-RL's verl fork): with γ = 1 and the reward on the
//!   last token, every token's return is the rollout's reward; the returns are then whitened over
//!   all response tokens of the batch (no per-prompt grouping), so a rollout's weight in the
//!   whitening is its length.
//! - **GRPO**: each rollout's reward normalised within the group of rollouts of its prompt,
//!   `(r − mean) / (std + ε)`, with the sample (unbiased) standard deviation as PyTorch computes it.
//!
//! Both return one advantage per rollout, applied to all of its tokens.

use serde::{Deserialize, Serialize};

/// Which estimator to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Estimator {
    /// Batch-whitened returns (the paper's REINFORCE++).
    #[value(name = "reinforce++")]
    #[serde(rename = "reinforce++")]
    ReinforcePlusPlus,
    /// Group-normalised rewards.
    Grpo,
}

/// Epsilon added to the standard deviation of a GRPO group.
pub const GRPO_EPS: f64 = 1e-6;
/// Epsilon added to the variance when whitening.
pub const WHITEN_EPS: f64 = 1e-8;

/// REINFORCE++ advantages: rewards whitened over tokens (`lengths[i]` tokens carry `rewards[i]`),
/// with the unbiased token variance (verl's `masked_whiten`).
pub fn reinforce_plus_plus(rewards: &[f64], lengths: &[usize]) -> Vec<f64> {
    let tokens: usize = lengths.iter().sum();
    if tokens == 0 {
        return vec![0.0; rewards.len()];
    }
    let n = tokens as f64;
    let mean = rewards
        .iter()
        .zip(lengths)
        .map(|(r, &l)| r * l as f64)
        .sum::<f64>()
        / n;
    let squares = rewards
        .iter()
        .zip(lengths)
        .map(|(r, &l)| (r - mean).powi(2) * l as f64)
        .sum::<f64>();
    let variance = if tokens > 1 { squares / (n - 1.0) } else { 0.0 };
    let scale = 1.0 / (variance + WHITEN_EPS).sqrt();
    rewards.iter().map(|r| (r - mean) * scale).collect()
}

/// GRPO advantages for consecutive groups of `group` rollouts.
pub fn grpo(rewards: &[f64], group: usize) -> Vec<f64> {
    assert!(group > 0, "group size must be positive");
    rewards
        .chunks(group)
        .flat_map(|g| {
            let n = g.len() as f64;
            let mean = g.iter().sum::<f64>() / n;
            let std = if g.len() > 1 {
                (g.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
            } else {
                0.0
            };
            g.iter().map(move |r| (r - mean) / (std + GRPO_EPS))
        })
        .collect()
}

/// Advantages by `estimator`.
pub fn advantages(
    estimator: Estimator,
    rewards: &[f64],
    lengths: &[usize],
    group: usize,
) -> Vec<f64> {
    match estimator {
        Estimator::ReinforcePlusPlus => reinforce_plus_plus(rewards, lengths),
        Estimator::Grpo => grpo(rewards, group),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
    }

    #[test]
    fn grpo_matches_hand_computation() {
        // Group 1: rewards 3, -1 → mean 1, sample std √8 = 2.828427.
        // Group 2: all equal → zero advantage.
        let a = grpo(&[3.0, -1.0, 2.0, 2.0], 2);
        let s = 8f64.sqrt() + GRPO_EPS;
        assert!(close(&a, &[2.0 / s, -2.0 / s, 0.0, 0.0]), "{a:?}");
    }

    #[test]
    fn reinforce_pp_weights_rollouts_by_length() {
        // Rewards 1 (3 tokens) and 0 (1 token): token mean 0.75, token values 1,1,1,0:
        // squares 3·0.0625 + 0.5625 = 0.75, unbiased variance 0.75 / 3 = 0.25, std 0.5.
        let a = reinforce_plus_plus(&[1.0, 0.0], &[3, 1]);
        let std = (0.25f64 + WHITEN_EPS).sqrt();
        assert!(close(&a, &[0.25 / std, -0.75 / std]), "{a:?}");
        // Whitened over tokens: the token-weighted mean of the advantages is zero.
        assert!((a[0] * 3.0 + a[1]).abs() < 1e-9);
    }

    #[test]
    fn constant_rewards_give_zero_advantage() {
        assert!(close(
            &reinforce_plus_plus(&[2.0; 3], &[4, 5, 6]),
            &[0.0; 3]
        ));
        assert!(close(&grpo(&[-1.0; 4], 4), &[0.0; 4]));
    }
}
