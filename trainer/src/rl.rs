//! RL on triad's tasks: sample K rollouts per prompt, score them, estimate advantages
//! (REINFORCE++ or GRPO), and update the policy with a PPO-clipped ratio, a KL penalty to a
//! frozen reference and an entropy bonus; prompts come from a level curriculum.
//!
//! **The KL sign.** The loss is `policy_loss + kl_coef · KL` (minimising it pulls the policy
//! toward the reference). The paper's released code (Logic-RL's verl fork) computes
//! `policy_loss − kl_coef · KL`, which rewards drifting *away* from the reference; at its
//! coefficient (0.001) the effect is small, but it is the wrong sign, and this trainer does not
//! reproduce it.

use std::time::Instant;

use candle_core::Tensor;
use serde::Serialize;

use crate::TrainError;
use crate::advantage::{Estimator, advantages};
use crate::batch::{Sequence, pack};
use crate::data::Task;
use crate::metrics::{self, StepMetrics};
use crate::model::Qwen2;
use crate::optim::{self, AdamW, AdamWConfig, Grads};
use crate::policy::Policy;
use crate::reward::{RewardSource, Rollout};
use crate::run::{RunDir, TrainerState, step_rng};
use crate::sample::{SampleOptions, sample};

/// Optimizer steps of an RL run.
pub const DEFAULT_STEPS: u64 = 50;
/// Prompts per step.
pub const DEFAULT_PROMPTS: usize = 8;
/// Rollouts per prompt.
pub const DEFAULT_ROLLOUTS: usize = 4;
/// The advantage estimator (the paper's).
pub const DEFAULT_ESTIMATOR: Estimator = Estimator::ReinforcePlusPlus;
/// Sampling temperature: 1, so rollouts come from the policy the loss's log-probabilities are
/// of (any other value makes the update off-policy without saying so).
pub const DEFAULT_TEMPERATURE: f64 = 1.0;
/// Nucleus sampling mass (1: off).
pub const DEFAULT_TOP_P: f64 = 1.0;
/// Longest response in tokens.
pub const DEFAULT_MAX_NEW_TOKENS: usize = 64;
/// Learning rate.
pub const DEFAULT_LR: f64 = 1e-4;
/// PPO clip range (the paper's).
pub const DEFAULT_CLIP: f64 = 0.2;
/// KL-to-reference coefficient (the paper's, with the low-variance estimator).
pub const DEFAULT_KL_COEF: f64 = 0.001;
/// Entropy bonus coefficient (the paper's).
pub const DEFAULT_ENTROPY_COEF: f64 = 0.001;
/// Rollout accuracy over the window at which the curriculum advances.
pub const DEFAULT_ADVANCE_ACCURACY: f64 = 0.8;
/// Rollouts the advance rule looks at.
pub const DEFAULT_ADVANCE_WINDOW: usize = 64;

/// The loss's knobs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LossOptions {
    /// PPO clip range ε (ratio clipped to [1 − ε, 1 + ε]).
    pub clip: f64,
    /// KL-to-reference coefficient (added to the loss).
    pub kl_coef: f64,
    /// Entropy bonus coefficient (subtracted from the loss).
    pub entropy_coef: f64,
}

impl Default for LossOptions {
    fn default() -> Self {
        // The paper's: clip 0.2, KL 0.001 (low-variance estimator), entropy 0.001.
        LossOptions {
            clip: DEFAULT_CLIP,
            kl_coef: DEFAULT_KL_COEF,
            entropy_coef: DEFAULT_ENTROPY_COEF,
        }
    }
}

/// RL settings.
#[derive(Clone, Debug, Serialize)]
pub struct RlOptions {
    /// Optimizer steps in total.
    #[serde(skip)]
    pub steps: u64,
    /// Prompts per step.
    pub prompts: usize,
    /// Rollouts per prompt (the GRPO group).
    pub rollouts: usize,
    /// Advantage estimator.
    pub estimator: Estimator,
    /// Sampling settings.
    pub sample: SampleOptions,
    /// Loss settings.
    pub loss: LossOptions,
    /// Passes over each step's rollouts (each one optimizer step; the ratio departs from 1
    /// from the second pass on).
    pub ppo_epochs: usize,
    /// Micro-batches per pass (gradient accumulation).
    pub grad_accum: usize,
    /// AdamW settings.
    pub optim: AdamWConfig,
    /// Global gradient-norm clip.
    pub max_grad_norm: f64,
    /// The curriculum's levels, in order.
    pub levels: Vec<u8>,
    /// Advance when accuracy over the last `advance_window` rollouts reaches this.
    pub advance_accuracy: f64,
    /// Rollouts the advance rule looks at.
    pub advance_window: usize,
    /// Advance after this many steps at a level regardless (the paper's fixed schedule).
    pub max_steps_per_level: Option<u64>,
    /// Seed for prompt choice and sampling.
    pub seed: u64,
    /// Checkpoint every this many steps.
    #[serde(skip)]
    pub save_every: u64,
    /// Progress line every this many steps (0: quiet).
    #[serde(skip)]
    pub log_every: u64,
}

impl Default for RlOptions {
    fn default() -> Self {
        RlOptions {
            steps: DEFAULT_STEPS,
            prompts: DEFAULT_PROMPTS,
            rollouts: DEFAULT_ROLLOUTS,
            estimator: DEFAULT_ESTIMATOR,
            sample: SampleOptions {
                temperature: DEFAULT_TEMPERATURE,
                top_p: DEFAULT_TOP_P,
                max_new_tokens: DEFAULT_MAX_NEW_TOKENS,
            },
            loss: LossOptions::default(),
            ppo_epochs: 1,
            grad_accum: 1,
            optim: AdamWConfig {
                lr: DEFAULT_LR,
                ..AdamWConfig::default()
            },
            max_grad_norm: optim::DEFAULT_MAX_GRAD_NORM,
            levels: vec![1, 2],
            advance_accuracy: DEFAULT_ADVANCE_ACCURACY,
            advance_window: DEFAULT_ADVANCE_WINDOW,
            max_steps_per_level: None,
            seed: 0,
            save_every: 10,
            log_every: 1,
        }
    }
}

/// What one policy update measured.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct UpdateStats {
    /// Loss of the last pass.
    pub loss: f64,
    /// Mean per-token KL to the reference (first pass).
    pub kl: f64,
    /// Mean per-token entropy (first pass).
    pub entropy: f64,
    /// Gradient norm before clipping (last pass).
    pub grad_norm: f64,
    /// Tokens forwarded (all passes).
    pub tokens: usize,
}

/// Per-micro-batch values fixed at the first pass: the old log-probs and the reference's.
struct Frozen {
    old: Tensor,
    reference: Option<Tensor>,
}

/// Masked sum of a `[batch, seq]` tensor.
/// Update the policy on scored rollouts: `advantages[i]` applies to every token of
/// `sequences[i]`. Runs `epochs` passes, each one optimizer step over `micro` micro-batches;
/// the loss is the token mean over the whole batch.
#[allow(clippy::too_many_arguments)]
pub fn policy_update(
    policy: &Policy,
    reference: Option<&Qwen2>,
    optimizer: &mut AdamW,
    sequences: &[Sequence],
    advantages: &[f64],
    loss: &LossOptions,
    epochs: usize,
    micro: usize,
    max_grad_norm: f64,
) -> Result<UpdateStats, TrainError> {
    let device = policy.device.clone();
    let tokens: usize = sequences.iter().map(|s| s.completion.len()).sum();
    let normaliser = tokens.max(1) as f64;
    let chunk = sequences.len().div_ceil(micro.max(1)).max(1);
    let indices: Vec<usize> = (0..sequences.len()).collect();
    let mut frozen: Vec<Frozen> = Vec::new();
    let mut stats = UpdateStats::default();
    for epoch in 0..epochs.max(1) {
        let mut grads = Grads::new();
        let mut total = 0.0;
        for (part, ids) in indices.chunks(chunk).enumerate() {
            let batch: Vec<&Sequence> = ids.iter().map(|&i| &sequences[i]).collect();
            let packed = pack(&batch, policy.codec.pad, &device)?;
            stats.tokens += packed.inputs.elem_count();
            // Every tensor below is over the trained (completion) positions only, `[n]`.
            let logits = policy.model.logits_at(&packed.inputs, &packed.positions)?;
            let (logp, entropy) =
                crate::sample::log_probs_and_entropy(&logits, &packed.trained_targets)?;
            if epoch == 0 {
                let reference = match reference {
                    Some(model) if loss.kl_coef != 0.0 => {
                        let logits = model.logits_at(&packed.inputs, &packed.positions)?;
                        Some(
                            crate::sample::token_log_probs(&logits, &packed.trained_targets)?
                                .detach(),
                        )
                    }
                    _ => None,
                };
                frozen.push(Frozen {
                    old: logp.detach(),
                    reference,
                });
            }
            let f = &frozen[part];
            let adv: Vec<f32> = packed
                .rows
                .iter()
                .map(|&row| advantages[ids[row]] as f32)
                .collect();
            let adv = Tensor::from_vec(adv, packed.rows.len(), &device)?;
            let ratio = (&logp - &f.old)?.exp()?;
            let unclipped = (&ratio * &adv)?.neg()?;
            let clipped = (ratio.clamp(1.0 - loss.clip, 1.0 + loss.clip)? * &adv)?.neg()?;
            let mut per_token = unclipped.maximum(&clipped)?;
            if let Some(reference) = &f.reference {
                // k3 ("low_var_kl"): exp(ref − logp) − (ref − logp) − 1, clamped like verl.
                let diff = (reference - &logp)?;
                let kl = ((diff.exp()? - &diff)? - 1.0)?.clamp(-10.0, 10.0)?;
                if epoch == 0 {
                    stats.kl += f64::from(kl.sum_all()?.to_scalar::<f32>()?) / normaliser;
                }
                per_token = (per_token + (kl * loss.kl_coef)?)?;
            }
            if epoch == 0 {
                stats.entropy += f64::from(entropy.sum_all()?.to_scalar::<f32>()?) / normaliser;
            }
            if loss.entropy_coef != 0.0 {
                per_token = (per_token - (entropy * loss.entropy_coef)?)?;
            }
            let part_loss = (per_token.sum_all()? / normaliser)?;
            total += f64::from(part_loss.to_scalar::<f32>()?);
            optim::accumulate(
                &mut grads,
                optim::collect_grads(&policy.vars, &part_loss.backward()?),
            )?;
        }
        stats.grad_norm = optim::clip_grad_norm(&mut grads, max_grad_norm)?;
        optimizer.step(&policy.vars, &grads)?;
        stats.loss = total;
    }
    Ok(stats)
}

/// The curriculum: advance a level when recent accuracy passes the threshold, or after a set
/// number of steps at it.
fn advance(state: &mut TrainerState, options: &RlOptions, corrects: &[bool]) -> bool {
    state.steps_at_level += 1;
    state.recent.extend_from_slice(corrects);
    let window = options.advance_window.max(1);
    if state.recent.len() > window {
        let excess = state.recent.len() - window;
        state.recent.drain(..excess);
    }
    let accuracy =
        state.recent.iter().filter(|c| **c).count() as f64 / state.recent.len().max(1) as f64;
    let by_accuracy = state.recent.len() >= window && accuracy >= options.advance_accuracy;
    let by_steps = options
        .max_steps_per_level
        .is_some_and(|m| state.steps_at_level >= m);
    let last = state.level_index + 1 >= options.levels.len();
    if (by_accuracy || by_steps) && !last {
        state.level_index += 1;
        state.steps_at_level = 0;
        state.recent.clear();
        return true;
    }
    false
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// The fingerprint of an RL run: its options and its tasks. A checkpoint or finished run with
/// another fingerprint is not taken for this one.
pub fn run_fingerprint(options: &RlOptions, tasks: &[Task]) -> String {
    crate::run::run_fingerprint("rl", options, tasks)
}

/// Train `policy` with RL on `tasks` (train split; the curriculum draws from its levels).
pub fn train(
    policy: Policy,
    tasks: &[Task],
    options: &RlOptions,
    rewards: &RewardSource,
    run: &RunDir,
) -> Result<Policy, TrainError> {
    if options.levels.is_empty() || options.rollouts == 0 || options.prompts == 0 {
        return Err(TrainError::Invalid(
            "rl needs at least one level, prompt and rollout".into(),
        ));
    }
    for level in &options.levels {
        if !tasks.iter().any(|t| t.level == *level) {
            return Err(TrainError::Invalid(format!(
                "the data has no train tasks at curriculum level {level}"
            )));
        }
    }
    let print = options.log_every > 0;
    let fp = run_fingerprint(options, tasks);
    // The KL reference is the model the run started from; a resumed run rebuilds it from there.
    let reference_dir = run.root.join("reference");
    let (policy, mut optimizer, mut state, resumed) =
        run.resume_or_start(policy, "rl", &fp, options.optim)?;
    if resumed && print {
        eprintln!("resuming RL from step {}", state.step);
    }
    if !resumed {
        policy.save(&reference_dir)?;
    }
    let reference = if options.loss.kl_coef != 0.0 {
        Some(Policy::load(&reference_dir, &policy.device)?.frozen_copy()?)
    } else {
        None
    };
    let max_positions = policy.model.config().max_position_embeddings;
    while state.step < options.steps {
        let step = state.step + 1;
        let level = options.levels[state.level_index];
        let pool: Vec<&Task> = tasks.iter().filter(|t| t.level == level).collect();
        let started = Instant::now();
        let mut pick = step_rng(options.seed, "rl-prompts", step);
        let mut roll = step_rng(options.seed, "rl-rollouts", step);
        let sampler = policy.untracked()?;
        let mut sequences = Vec::new();
        let mut texts = Vec::new();
        let mut chosen = Vec::new();
        for _ in 0..options.prompts {
            let task = pool[crate::run::pick_index(&mut pick, pool.len())];
            let prompt_text = task.prompt_text();
            let prompt = policy.codec.encode(&prompt_text)?;
            if prompt.len() + 1 >= max_positions {
                continue;
            }
            let outs = sample(
                &sampler,
                &prompt,
                options.rollouts,
                policy.codec.eos,
                &options.sample,
                &mut roll,
            )?;
            for completion in outs {
                texts.push(policy.codec.decode(&completion)?);
                chosen.push((task, prompt_text.clone()));
                sequences.push(Sequence {
                    prompt: prompt.clone(),
                    completion,
                });
            }
        }
        if sequences.is_empty() {
            return Err(TrainError::Invalid(format!(
                "no level-{level} prompt fits in {max_positions} positions"
            )));
        }
        let sample_seconds = started.elapsed().as_secs_f64();
        let sampled: usize = sequences.iter().map(|s| s.completion.len()).sum();
        let rollouts: Vec<Rollout> = texts
            .iter()
            .zip(&chosen)
            .map(|(text, (task, prompt))| Rollout {
                response: text,
                label: &task.label,
                prompt,
            })
            .collect();
        let scoring = Instant::now();
        let scores = rewards.score(&rollouts)?;
        let reward_seconds = scoring.elapsed().as_secs_f64();
        let values: Vec<f64> = scores.iter().map(|s| s.score).collect();
        let lengths: Vec<usize> = sequences.iter().map(|s| s.completion.len()).collect();
        let adv = advantages(options.estimator, &values, &lengths, options.rollouts);
        let train_started = Instant::now();
        let stats = policy_update(
            &policy,
            reference.as_ref(),
            &mut optimizer,
            &sequences,
            &adv,
            &options.loss,
            options.ppo_epochs,
            options.grad_accum,
            options.max_grad_norm,
        )?;
        let train_seconds = train_started.elapsed().as_secs_f64();
        let corrects: Vec<bool> = scores.iter().map(|s| s.correct).collect();
        let n = scores.len() as f64;
        let (reward_mean, reward_std) = mean_std(&values);
        let accuracy = corrects.iter().filter(|c| **c).count() as f64 / n;
        let format_failures = scores.iter().filter(|s| !s.format_ok).count() as f64 / n;
        let metrics = StepMetrics {
            phase: "rl".into(),
            step,
            level: Some(level),
            loss: stats.loss,
            reward_mean: Some(reward_mean),
            reward_std: Some(reward_std),
            accuracy: Some(accuracy),
            format_failure_rate: Some(format_failures),
            kl: reference.as_ref().map(|_| stats.kl),
            entropy: Some(stats.entropy),
            response_length: sampled as f64 / n,
            grad_norm: stats.grad_norm,
            lr: options.optim.lr,
            train_tokens_per_s: stats.tokens as f64 / train_seconds,
            sample_tokens_per_s: Some(sampled as f64 / sample_seconds),
            reward_seconds: Some(reward_seconds),
            seconds: started.elapsed().as_secs_f64(),
        };
        metrics::append(&run.metrics(), &metrics)?;
        state.step = step;
        let advanced = advance(&mut state, options, &corrects);
        if print && (step % options.log_every == 0 || step == options.steps) {
            eprintln!(
                "rl step {step}/{} level {level}: reward {reward_mean:.3} ± {reward_std:.3}, accuracy {accuracy:.3}, format failures {format_failures:.3}, kl {:.5}, entropy {:.3}, {:.1} s{}",
                options.steps,
                stats.kl,
                stats.entropy,
                metrics.seconds,
                if advanced { " → next level" } else { "" }
            );
        }
        if step % options.save_every.max(1) == 0 || step == options.steps {
            run.save_checkpoint(&policy, &optimizer, &state)?;
        }
    }
    run.save_final(&policy, &state)?;
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curriculum_advances_on_accuracy_or_steps() {
        let options = RlOptions {
            levels: vec![1, 2, 3],
            advance_window: 4,
            advance_accuracy: 0.75,
            max_steps_per_level: Some(3),
            ..RlOptions::default()
        };
        let mut state = TrainerState::default();
        // Two right of four: not yet.
        assert!(!advance(&mut state, &options, &[true, false, true, false]));
        // The window now holds the last four: three of four right → advance.
        assert!(advance(&mut state, &options, &[true, true]));
        assert_eq!(state.level_index, 1);
        // Never accurate, but the step cap moves it on after three steps.
        assert!(!advance(&mut state, &options, &[false]));
        assert!(!advance(&mut state, &options, &[false]));
        assert!(advance(&mut state, &options, &[false]));
        assert_eq!(state.level_index, 2);
        // The last level is kept.
        for _ in 0..5 {
            assert!(!advance(&mut state, &options, &[true; 4]));
        }
        assert_eq!(state.level_index, 2);
    }
}
