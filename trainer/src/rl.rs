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

use serde::Serialize;

use crate::TrainError;
use crate::advantage::{Estimator, advantages};
use crate::batch::Sequence;
use crate::data::Task;
use crate::metrics::{self, StepMetrics};
use crate::objective::{self, Backend};
use crate::online::OnlineTasks;
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
/// Learning rate for a model of fewer than [`SMALL_MODEL_PARAMETERS`] (the sizes `triad-train
/// init` makes); larger models get [`default_lr`]'s smaller rates.
pub const DEFAULT_LR: f64 = 1e-4;
/// Models below this many parameters train at [`DEFAULT_LR`].
pub const SMALL_MODEL_PARAMETERS: usize = 50_000_000;
/// Learning rate for a model from [`SMALL_MODEL_PARAMETERS`] up to 1 B parameters (verl's actor
/// default, 1e-6).
pub const MEDIUM_MODEL_LR: f64 = 1e-6;
/// Learning rate for a model of 1 B parameters or more (the paper's, 5e-7, for 7B and 32B).
pub const LARGE_MODEL_LR: f64 = 5e-7;

/// The RL learning rate for a model of `parameters` parameters. A rate that trains a 1 M
/// parameter model from scratch in minutes (1e-4) would wreck a pretrained 0.5B–7B model within
/// a few steps; the rates used for those (verl's default, the paper's) would leave a tiny model
/// where it started.
pub fn default_lr(parameters: usize) -> f64 {
    if parameters < SMALL_MODEL_PARAMETERS {
        DEFAULT_LR
    } else if parameters < 1_000_000_000 {
        MEDIUM_MODEL_LR
    } else {
        LARGE_MODEL_LR
    }
}
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
/// Share of each step's prompts drawn from the levels the curriculum has left behind (0: none,
/// the paper's schedule). Replay keeps a level's gains from being trained away while the
/// current level is still too hard to give a signal of its own.
pub const DEFAULT_REPLAY: f64 = 0.0;

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
    /// Share of each step's prompts drawn, once the curriculum has advanced, uniformly from the
    /// tasks of its earlier levels (rounded to whole prompts; in [0, 1)). The advance rule
    /// counts only the current level's rollouts. Left out of the run fingerprint when 0, so runs
    /// made before the option existed still resume.
    #[serde(skip_serializing_if = "is_zero")]
    pub replay: f64,
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
            replay: DEFAULT_REPLAY,
            seed: 0,
            save_every: 10,
            log_every: 1,
        }
    }
}

/// Whether an option is 0 (and so left out of a fingerprint that predates it).
pub(crate) fn is_zero(x: &f64) -> bool {
    *x == 0.0
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
    /// Passes whose gradient norm was not finite, so no optimizer step was taken.
    pub skipped_steps: usize,
}

/// One position's loss term and its derivatives, from [`token_loss`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenLoss {
    /// The term's value.
    pub value: f64,
    /// Its derivative with respect to the position's log-probability.
    pub dlogp: f64,
    /// Its derivative with respect to the position's entropy.
    pub dentropy: f64,
    /// The k3 KL estimate (0 without a reference).
    pub kl: f64,
}

/// Derivative of `max(a, b)` given those of `a` and `b`; a tie splits evenly (what autograd does
/// for `maximum`/`minimum`, so both backends agree exactly at ratio 1).
fn max_derivative(a: f64, b: f64, da: f64, db: f64) -> f64 {
    if a > b {
        da
    } else if b > a {
        db
    } else {
        0.5 * (da + db)
    }
}

/// Derivative of `clamp(x, lo, hi)` with respect to `x` (½ at a bound, as autograd splits ties).
fn clamp_derivative(x: f64, lo: f64, hi: f64) -> f64 {
    if x > lo && x < hi {
        1.0
    } else if x == lo || x == hi {
        0.5
    } else {
        0.0
    }
}

/// Bound on a log-ratio before it is exponentiated (the policy ratio's and the KL's, as verl
/// clamps both to ±20): `exp(20)` is finite in f32 and f64, so an extreme or infinite
/// log-probability gives a large finite term with a zero derivative, never an inf or a NaN.
pub const LOG_RATIO_BOUND: f64 = 20.0;
/// Bound on the k3 KL estimate of one position (verl's ±10).
pub const KL_BOUND: f64 = 10.0;

/// The loss of one trained position: the PPO-clipped policy term
/// `max(−r·A, −clip(r, 1 − ε, 1 + ε)·A)` with `r = exp(clamp(logp − old, ±20))`, plus `kl_coef`
/// times the k3 KL estimate `exp(d) − d − 1` with `d = clamp(ref − logp, ±20)` (the estimate
/// clamped to ±10, like verl), minus `entropy_coef` times the entropy. The one definition both
/// backends train on. Only trained (completion) positions reach it: batches are packed, so no
/// padded position has a log-probability to guard.
pub fn token_loss(
    logp: f32,
    old: f32,
    reference: Option<f32>,
    advantage: f64,
    entropy: f32,
    loss: &LossOptions,
) -> TokenLoss {
    // The log-ratio in f32, as the log-probabilities are.
    let log_ratio = f64::from(logp - old);
    let d_log_ratio = bound_derivative(log_ratio, LOG_RATIO_BOUND);
    let ratio = bounded(log_ratio, LOG_RATIO_BOUND).exp();
    let (lo, hi) = (1.0 - loss.clip, 1.0 + loss.clip);
    let unclipped = -ratio * advantage;
    let clipped = -ratio.clamp(lo, hi) * advantage;
    let d_ratio = max_derivative(
        unclipped,
        clipped,
        -advantage,
        -advantage * clamp_derivative(ratio, lo, hi),
    );
    let mut out = TokenLoss {
        value: unclipped.max(clipped),
        dlogp: d_ratio * ratio * d_log_ratio,
        dentropy: -loss.entropy_coef,
        kl: 0.0,
    };
    if let Some(reference) = reference {
        // d = ref − logp, so ∂d/∂logp = −1.
        let diff = f64::from(reference - logp);
        let d_diff = -bound_derivative(diff, LOG_RATIO_BOUND);
        let diff_b = bounded(diff, LOG_RATIO_BOUND);
        let raw = diff_b.exp() - diff_b - 1.0;
        out.kl = raw.clamp(-KL_BOUND, KL_BOUND);
        out.value += loss.kl_coef * out.kl;
        out.dlogp += loss.kl_coef
            * clamp_derivative(raw, -KL_BOUND, KL_BOUND)
            * (diff_b.exp() - 1.0)
            * d_diff;
    }
    out.value -= loss.entropy_coef * f64::from(entropy);
    out
}

/// `x` clamped to `±bound` (a NaN stays NaN: it reaches the gradient norm, and
/// [`AdamW::clip_and_step`] skips the step).
fn bounded(x: f64, bound: f64) -> f64 {
    x.clamp(-bound, bound)
}

/// Derivative of [`bounded`]: 0 outside the bound (an infinite log-ratio then contributes
/// nothing, instead of `0 · inf = NaN`).
fn bound_derivative(x: f64, bound: f64) -> f64 {
    clamp_derivative(x, -bound, bound)
}

/// Per-micro-batch values fixed at the first pass: the old log-probs and the reference's.
struct Frozen {
    old: Vec<f32>,
    reference: Option<Vec<f32>>,
}

/// Update the policy on scored rollouts: `batch.advantages[i]` applies to every token of
/// `batch.sequences[i]`. Runs `epochs` passes, each one optimizer step over `micro`
/// micro-batches; the loss is the token mean over the whole batch.
#[allow(clippy::too_many_arguments)]
pub fn policy_update(
    policy: &Policy,
    reference: Option<&Policy>,
    optimizer: &mut AdamW,
    batch: UpdateBatch,
    loss: &LossOptions,
    epochs: usize,
    micro: usize,
    max_grad_norm: f64,
) -> Result<UpdateStats, TrainError> {
    policy_update_on(
        Backend::for_policy(policy),
        policy,
        reference,
        optimizer,
        batch,
        loss,
        epochs,
        micro,
        max_grad_norm,
    )
}

/// Scored rollouts for [`policy_update`].
#[derive(Clone, Copy, Debug)]
pub struct UpdateBatch<'a> {
    /// The rollouts.
    pub sequences: &'a [Sequence],
    /// One advantage per rollout.
    pub advantages: &'a [f64],
    /// The temperature they were sampled at: the policy's, the old and the reference's
    /// log-probabilities (and the entropy) are all taken at it, so the gradient is that of the
    /// distribution the rollouts came from (at temperature 1 with rollouts sampled at 0.7 it
    /// would not be).
    pub temperature: f64,
}

/// [`policy_update`] on a chosen backend.
#[allow(clippy::too_many_arguments)]
pub fn policy_update_on(
    backend: Backend,
    policy: &Policy,
    reference: Option<&Policy>,
    optimizer: &mut AdamW,
    batch: UpdateBatch,
    loss: &LossOptions,
    epochs: usize,
    micro: usize,
    max_grad_norm: f64,
) -> Result<UpdateStats, TrainError> {
    let UpdateBatch {
        sequences,
        advantages,
        temperature,
    } = batch;
    if advantages.len() != sequences.len() {
        return Err(TrainError::Invalid(format!(
            "{} rollouts but {} advantages",
            sequences.len(),
            advantages.len()
        )));
    }
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
            let pass = objective::forward(policy, &batch, temperature, true, backend)?;
            stats.tokens += pass.padded_positions;
            let values = &pass.stats;
            if epoch == 0 {
                let reference = match reference {
                    Some(model) if loss.kl_coef != 0.0 => {
                        Some(objective::log_probs(model, &batch, temperature, backend)?)
                    }
                    _ => None,
                };
                frozen.push(Frozen {
                    old: values.log_probs.clone(),
                    reference,
                });
            }
            let f = &frozen[part];
            let n = values.log_probs.len();
            let (mut dlogp, mut dentropy) = (Vec::with_capacity(n), Vec::with_capacity(n));
            let (mut kl, mut entropy) = (0.0, 0.0);
            for i in 0..n {
                let term = token_loss(
                    values.log_probs[i],
                    f.old[i],
                    f.reference.as_ref().map(|r| r[i]),
                    advantages[ids[values.sequence_of[i]]],
                    values.entropies[i],
                    loss,
                );
                total += term.value / normaliser;
                kl += term.kl;
                entropy += f64::from(values.entropies[i]);
                dlogp.push((term.dlogp / normaliser) as f32);
                dentropy.push((term.dentropy / normaliser) as f32);
            }
            if epoch == 0 {
                if f.reference.is_some() {
                    stats.kl += kl / normaliser;
                }
                stats.entropy += entropy / normaliser;
            }
            optim::accumulate(&mut grads, pass.backward(policy, &dlogp, &dentropy)?)?;
        }
        stats.grad_norm = optimizer.clip_and_step(&policy.vars, &mut grads, max_grad_norm)?;
        if !stats.grad_norm.is_finite() {
            stats.skipped_steps += 1;
        }
        stats.loss = total;
    }
    Ok(stats)
}

/// Refuse settings under which RL cannot learn or cannot score what it sampled.
fn check_options(options: &RlOptions, online: bool) -> Result<(), TrainError> {
    if (options.levels.is_empty() && !online) || options.rollouts == 0 || options.prompts == 0 {
        return Err(TrainError::Invalid(
            "rl needs at least one level, prompt and rollout".into(),
        ));
    }
    if options.estimator == Estimator::Grpo && options.rollouts < 2 {
        // A group of one has standard deviation 0 and advantage 0: every step would be a no-op.
        return Err(TrainError::Invalid(format!(
            "GRPO normalises rewards within each prompt's group of rollouts: it needs at least 2 \
             rollouts per prompt, not {} (or use --estimator reinforce++)",
            options.rollouts
        )));
    }
    if !(0.0..1.0).contains(&options.replay) {
        // All prompts replayed would leave the current level without rollouts: it could never
        // advance.
        return Err(TrainError::Invalid(format!(
            "--replay is the share of prompts drawn from earlier levels: it must be in [0, 1), \
             not {}",
            options.replay
        )));
    }
    let t = options.sample.temperature;
    if !(t.is_finite() && t > 0.0) {
        return Err(TrainError::Invalid(format!(
            "rl samples its rollouts and trains on their log-probabilities at the sampling \
             temperature: it must be finite and above 0, not {t}"
        )));
    }
    Ok(())
}

/// Fraction of the groups of `group` consecutive rewards (one group per prompt) whose rewards
/// are all equal: under GRPO their advantages are 0, under REINFORCE++ they only shift the
/// batch mean.
pub fn zero_variance_fraction(rewards: &[f64], group: usize) -> f64 {
    let groups: Vec<&[f64]> = rewards.chunks(group.max(1)).collect();
    let flat = groups
        .iter()
        .filter(|g| g.iter().all(|r| *r == g[0]))
        .count();
    flat as f64 / groups.len().max(1) as f64
}

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

/// A step's dataset prompts: `options.prompts` draws, the first from the current level's tasks,
/// the last `round(prompts × replay)` (once the curriculum has advanced) from its earlier levels'.
fn pick_prompts<'t>(
    tasks: &'t [Task],
    options: &RlOptions,
    level_index: usize,
    step: u64,
) -> Vec<&'t Task> {
    let level = options.levels[level_index];
    let current: Vec<&Task> = tasks.iter().filter(|t| t.level == level).collect();
    let earlier_levels = &options.levels[..level_index];
    let earlier: Vec<&Task> = tasks
        .iter()
        .filter(|t| earlier_levels.contains(&t.level) && t.level != level)
        .collect();
    let replayed = if earlier.is_empty() {
        0
    } else {
        ((options.prompts as f64 * options.replay).round() as usize).min(options.prompts - 1)
    };
    let mut pick = step_rng(options.seed, "rl-prompts", step);
    (0..options.prompts)
        .map(|slot| {
            let pool = if slot < options.prompts - replayed {
                &current
            } else {
                &earlier
            };
            pool[crate::run::pick_index(&mut pick, pool.len())]
        })
        .collect()
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

/// Where a run's prompts come from.
pub enum Prompts<'a> {
    /// A dataset's train tasks, drawn through the level curriculum of [`RlOptions::levels`].
    Dataset(&'a [Task]),
    /// Fresh tasks made in process at the levels an adaptive session earns (the curriculum
    /// options are not used).
    Online(&'a mut OnlineTasks),
}

/// Where an online run keeps its session, beside its checkpoints.
pub const SESSION_FILE: &str = "session.json";

/// Train `policy` with RL on `tasks` (train split; the curriculum draws from its levels).
pub fn train(
    policy: Policy,
    tasks: &[Task],
    options: &RlOptions,
    rewards: &RewardSource,
    run: &RunDir,
) -> Result<Policy, TrainError> {
    train_on(policy, Prompts::Dataset(tasks), options, rewards, run)
}

/// Train `policy` with RL on prompts from `prompts`.
pub fn train_on(
    policy: Policy,
    mut prompts: Prompts<'_>,
    options: &RlOptions,
    rewards: &RewardSource,
    run: &RunDir,
) -> Result<Policy, TrainError> {
    check_options(options, matches!(prompts, Prompts::Online(_)))?;
    if let Prompts::Dataset(tasks) = &prompts {
        for level in &options.levels {
            if !tasks.iter().any(|t| t.level == *level) {
                return Err(TrainError::Invalid(format!(
                    "the data has no train tasks at curriculum level {level}"
                )));
            }
        }
    }
    let print = options.log_every > 0;
    let fp = match &prompts {
        Prompts::Dataset(tasks) => run_fingerprint(options, tasks),
        Prompts::Online(online) => {
            crate::run::run_fingerprint("rl-online", &(options, &online.config), &[])
        }
    };
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
    let session_path = run.root.join(SESSION_FILE);
    if let Prompts::Online(online) = &mut prompts
        && resumed
        && session_path.exists()
    {
        online.restore(&session_path)?;
    }
    let reference = if options.loss.kl_coef != 0.0 {
        Some(Policy::load(&reference_dir, &policy.device)?)
    } else {
        None
    };
    let max_positions = policy.model.config().max_position_embeddings;
    let bar = crate::progress::StepBar::new("rl", state.step, options.steps, print);
    while state.step < options.steps {
        let step = state.step + 1;
        let started = Instant::now();
        let fresh: Vec<Task>;
        let (level, picked): (u8, Vec<&Task>) = match &mut prompts {
            Prompts::Dataset(tasks) => {
                // The slice itself, not a borrow of `prompts`: the step's rollouts hold its tasks.
                let tasks: &[Task] = tasks;
                let level = options.levels[state.level_index];
                (level, pick_prompts(tasks, options, state.level_index, step))
            }
            Prompts::Online(online) => {
                fresh = online.draw(options.prompts)?;
                let level = fresh.iter().map(|t| t.level).max().unwrap_or(1);
                (level, fresh.iter().collect())
            }
        };
        let mut roll = step_rng(options.seed, "rl-rollouts", step);
        let mut sequences = Vec::new();
        let mut texts = Vec::new();
        let mut chosen = Vec::new();
        for task in picked {
            let prompt_text = task.prompt_text();
            let prompt = policy.codec.encode(&prompt_text)?;
            if prompt.len() + 1 >= max_positions {
                continue;
            }
            let outs = sample(
                &policy,
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
        let batch = UpdateBatch {
            sequences: &sequences,
            advantages: &adv,
            temperature: options.sample.temperature,
        };
        let stats = policy_update(
            &policy,
            reference.as_ref(),
            &mut optimizer,
            batch,
            &options.loss,
            options.ppo_epochs,
            options.grad_accum,
            options.max_grad_norm,
        )?;
        let train_seconds = train_started.elapsed().as_secs_f64();
        let corrects: Vec<bool> = scores.iter().map(|s| s.correct).collect();
        let frontiers = match &mut prompts {
            Prompts::Online(online) => {
                let labels: Vec<&str> = chosen.iter().map(|(t, _)| t.label.as_str()).collect();
                online.observe(&labels, &scores);
                let levels: Vec<String> = online
                    .frontiers()
                    .iter()
                    .map(|(family, level)| format!("{family} {level}"))
                    .collect();
                format!(", frontier {}", levels.join(", "))
            }
            Prompts::Dataset(_) => String::new(),
        };
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
            skipped_steps: Some(stats.skipped_steps as u64),
            zero_variance_groups: Some(zero_variance_fraction(&values, options.rollouts)),
            lr: options.optim.lr,
            train_tokens_per_s: stats.tokens as f64 / train_seconds,
            sample_tokens_per_s: Some(sampled as f64 / sample_seconds),
            reward_seconds: Some(reward_seconds),
            seconds: started.elapsed().as_secs_f64(),
        };
        metrics::append(&run.metrics(), &metrics)?;
        state.step = step;
        // Replayed prompts say nothing about the current level: the advance rule skips them.
        let level_corrects: Vec<bool> = chosen
            .iter()
            .zip(&corrects)
            .filter(|((task, _), _)| task.level == level)
            .map(|(_, correct)| *correct)
            .collect();
        let advanced =
            matches!(prompts, Prompts::Dataset(_)) && advance(&mut state, options, &level_corrects);
        bar.step(
            step,
            format!(
                "reward {reward_mean:.3}, accuracy {accuracy:.3}, {:.0} tokens/s",
                stats.tokens as f64 / train_seconds
            ),
        );
        if print && (step % options.log_every == 0 || step == options.steps) {
            bar.line(&format!(
                "rl step {step}/{} level {level}{frontiers}: reward {reward_mean:.3} ± {reward_std:.3}, accuracy {accuracy:.3}, format failures {format_failures:.3}, flat groups {:.2}, kl {:.5}, entropy {:.3}, {:.1} s{}{}",
                options.steps,
                metrics.zero_variance_groups.unwrap_or(0.0),
                stats.kl,
                stats.entropy,
                metrics.seconds,
                if stats.skipped_steps > 0 {
                    ", gradient not finite: update skipped"
                } else {
                    ""
                },
                if advanced { " → next level" } else { "" }
            ));
        }
        if step % options.save_every.max(1) == 0 || step == options.steps {
            if let Prompts::Online(online) = &prompts {
                online.save(&session_path)?;
            }
            run.save_checkpoint(&policy, &optimizer, &state)?;
        }
    }
    bar.finish();
    if let Prompts::Online(online) = &prompts {
        online.save(&session_path)?;
    }
    run.save_final(&policy, &state)?;
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The derivative `token_loss` reports is the derivative of the value it reports, in each
    /// regime: inside the clip range, clipped above and below for both signs of advantage,
    /// with and without a reference.
    #[test]
    fn token_loss_derivatives_match_finite_differences() {
        let loss = LossOptions {
            clip: 0.2,
            kl_coef: 0.1,
            entropy_coef: 0.05,
        };
        let old = -1.0f32;
        for (shift, advantage) in [
            (0.05f32, 1.0),
            (0.05, -1.0),
            (0.5, 1.0),
            (0.5, -1.0),
            (-0.5, 1.0),
            (-0.5, -1.0),
        ] {
            for reference in [None, Some(-0.8f32)] {
                let logp = old + shift;
                let at = |l: f32| token_loss(l, old, reference, advantage, 1.3, &loss).value;
                let h = 1e-3f32;
                let numeric = (at(logp + h) - at(logp - h)) / (2.0 * f64::from(h));
                let term = token_loss(logp, old, reference, advantage, 1.3, &loss);
                assert!(
                    (term.dlogp - numeric).abs() < 1e-3,
                    "shift {shift}, A {advantage}, ref {reference:?}: {} vs {numeric}",
                    term.dlogp
                );
                assert_eq!(term.dentropy, -0.05);
            }
        }
        // At ratio 1 (the first pass) the policy gradient is −A exactly, as autograd gives it.
        let first = token_loss(-2.0, -2.0, None, 0.7, 0.0, &loss);
        assert_eq!(first.dlogp, -0.7);
        assert_eq!(first.value, -0.7);
    }

    /// An extreme or infinite log-ratio (a position the old policy or the reference gave
    /// probability 0) gives a finite loss and a zero derivative, for either sign of advantage;
    /// without the bound `exp(inf)` made the derivative `0 · inf = NaN`.
    #[test]
    fn extreme_log_ratios_stay_finite() {
        let loss = LossOptions {
            clip: 0.2,
            kl_coef: 0.1,
            entropy_coef: 0.0,
        };
        let inf = f32::INFINITY;
        for (logp, old, reference) in [
            (-1.0f32, -inf, Some(-1.0f32)),
            (-inf, -1.0, Some(-1.0)),
            (-1.0, -1.0, Some(-inf)),
            (-1.0, -90.0, Some(-60.0)),
            (-90.0, -1.0, Some(-1.0)),
        ] {
            for advantage in [1.0, -1.0] {
                let term = token_loss(logp, old, reference, advantage, 0.5, &loss);
                let what = format!("logp {logp}, old {old}, ref {reference:?}, A {advantage}");
                assert!(term.value.is_finite(), "{what}: value {}", term.value);
                assert!(term.dlogp.is_finite(), "{what}: dlogp {}", term.dlogp);
                assert!(term.kl.abs() <= KL_BOUND, "{what}: kl {}", term.kl);
            }
        }
        // Beyond the bound the ratio is exp(20) and has no gradient.
        let far = token_loss(0.0, -30.0, None, -1.0, 0.0, &loss);
        assert_eq!(far.value, LOG_RATIO_BOUND.exp());
        assert_eq!(far.dlogp, 0.0);
    }

    /// Inside the bounds the KL term is verl's low-variance estimator, sign included:
    /// `exp(ref − logp) − (ref − logp) − 1` added to the loss, its derivative
    /// `kl_coef · (1 − exp(ref − logp))`.
    #[test]
    fn kl_term_is_k3_inside_the_bounds() {
        let loss = LossOptions {
            clip: 0.2,
            kl_coef: 0.5,
            entropy_coef: 0.0,
        };
        let (logp, reference) = (-1.5f32, -1.0f32);
        let with = token_loss(logp, logp, Some(reference), 0.0, 0.0, &loss);
        let d = f64::from(reference - logp);
        assert!((with.kl - (d.exp() - d - 1.0)).abs() < 1e-12);
        assert!((with.value - 0.5 * with.kl).abs() < 1e-12);
        assert!((with.dlogp - 0.5 * (1.0 - d.exp())).abs() < 1e-12);
        // The penalty pulls logp up toward the reference: its derivative is negative here.
        assert!(with.dlogp < 0.0);
    }

    #[test]
    fn refuses_settings_that_cannot_learn() {
        let grpo = |rollouts| RlOptions {
            estimator: Estimator::Grpo,
            rollouts,
            ..RlOptions::default()
        };
        let err = check_options(&grpo(1), false).unwrap_err().to_string();
        assert!(err.contains("at least 2"), "{err}");
        assert!(check_options(&grpo(2), false).is_ok());
        // REINFORCE++ whitens over the batch: one rollout per prompt is fine.
        let single = RlOptions {
            rollouts: 1,
            ..RlOptions::default()
        };
        assert!(check_options(&single, false).is_ok());
        for t in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let mut options = RlOptions::default();
            options.sample.temperature = t;
            let err = check_options(&options, false).unwrap_err().to_string();
            assert!(err.contains("temperature"), "{t}: {err}");
        }
    }

    #[test]
    fn zero_variance_groups_are_counted_per_prompt() {
        // Groups of 3: all right, mixed, all wrong, mixed.
        let rewards = [1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.0];
        assert_eq!(zero_variance_fraction(&rewards, 3), 0.5);
        assert_eq!(zero_variance_fraction(&rewards[..3], 3), 1.0);
        assert_eq!(zero_variance_fraction(&[], 3), 0.0);
    }

    #[test]
    fn the_learning_rate_default_shrinks_with_the_model() {
        assert_eq!(default_lr(920_000), DEFAULT_LR);
        assert_eq!(default_lr(49_999_999), DEFAULT_LR);
        assert_eq!(default_lr(358_800_000), MEDIUM_MODEL_LR);
        assert_eq!(default_lr(7_600_000_000), LARGE_MODEL_LR);
        const { assert!(LARGE_MODEL_LR < MEDIUM_MODEL_LR && MEDIUM_MODEL_LR < DEFAULT_LR) };
    }

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

    fn task_at(level: u8, index: usize) -> Task {
        Task {
            id: format!("{level}-{index}"),
            family: "induction".into(),
            level,
            split: triad::generators::Split::Train,
            messages: Vec::new(),
            label: String::new(),
            answer: String::new(),
            trace: String::new(),
        }
    }

    #[test]
    fn replay_draws_its_share_of_prompts_from_the_levels_left_behind() {
        let tasks: Vec<Task> = (1..=3)
            .flat_map(|level| (0..50).map(move |i| task_at(level, i)))
            .collect();
        let options = RlOptions {
            levels: vec![1, 2, 3],
            prompts: 16,
            replay: 0.25,
            ..RlOptions::default()
        };
        let levels_of = |index, step| -> Vec<u8> {
            pick_prompts(&tasks, &options, index, step)
                .iter()
                .map(|t| t.level)
                .collect()
        };
        // At the first level there is nothing to replay.
        assert!(levels_of(0, 1).iter().all(|l| *l == 1));
        // At level 3, 12 current prompts then 4 from levels 1-2, both of which turn up.
        let mut seen = BTreeSet::new();
        for step in 1..=20 {
            let levels = levels_of(2, step);
            assert!(levels[..12].iter().all(|l| *l == 3), "{levels:?}");
            assert!(
                levels[12..].iter().all(|l| *l == 1 || *l == 2),
                "{levels:?}"
            );
            seen.extend(levels[12..].iter().copied());
            assert_eq!(levels, levels_of(2, step), "deterministic per step");
        }
        assert_eq!(seen, BTreeSet::from([1, 2]));
        // Replay 0 draws the same prompts as before the option existed: the current level only,
        // one stream.
        let plain = RlOptions {
            replay: 0.0,
            ..options.clone()
        };
        let mut pick = step_rng(plain.seed, "rl-prompts", 7);
        let pool: Vec<&Task> = tasks.iter().filter(|t| t.level == 2).collect();
        let expected: Vec<&str> = (0..16)
            .map(|_| {
                pool[crate::run::pick_index(&mut pick, pool.len())]
                    .id
                    .as_str()
            })
            .collect();
        let got: Vec<&str> = pick_prompts(&tasks, &plain, 1, 7)
            .iter()
            .map(|t| t.id.as_str())
            .collect();
        assert_eq!(got, expected);
        // The fingerprint of a run without replay does not mention it (old runs resume).
        assert!(!serde_json::to_string(&plain).unwrap().contains("replay"));
        assert!(serde_json::to_string(&options).unwrap().contains("replay"));
    }

    #[test]
    fn replay_must_leave_the_current_level_some_prompts() {
        for replay in [1.0, 1.5, -0.1, f64::NAN] {
            let options = RlOptions {
                replay,
                ..RlOptions::default()
            };
            assert!(check_options(&options, false).is_err(), "{replay}");
        }
        let options = RlOptions {
            replay: 0.5,
            ..RlOptions::default()
        };
        assert!(check_options(&options, false).is_ok());
    }
}
