//! Supervised warm-up on (prompt, reference answer) pairs, loss on the answer tokens only.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::batch::Sequence;
use crate::data::Task;
use crate::metrics::{self, StepMetrics};
use crate::objective::{self, Backend};
use crate::optim::{self, AdamW, AdamWConfig, Grads};
use crate::policy::Policy;
use crate::run::{RunDir, step_rng};
use crate::tokenizer::{TextCodec, sft_target};

/// SFT settings.
#[derive(Clone, Debug, Serialize)]
pub struct SftOptions {
    /// Optimizer steps in total (a resumed run continues up to this).
    #[serde(skip)]
    pub steps: u64,
    /// Sequences per step.
    pub batch_size: usize,
    /// What the completion is trained to be.
    pub target: Target,
    /// Micro-batches per step (gradients accumulate across them).
    pub grad_accum: usize,
    /// AdamW settings.
    pub optim: AdamWConfig,
    /// Clip the global gradient norm to this (0: no clipping).
    pub max_grad_norm: f64,
    /// Seed for batch selection.
    pub seed: u64,
    /// Save a checkpoint every this many steps (and at the end).
    #[serde(skip)]
    pub save_every: u64,
    /// Print a progress line every this many steps (0: quiet).
    #[serde(skip)]
    pub log_every: u64,
}

impl Default for SftOptions {
    fn default() -> Self {
        SftOptions {
            steps: 200,
            batch_size: 16,
            target: DEFAULT_TARGET,
            grad_accum: 1,
            optim: AdamWConfig::default(),
            max_grad_norm: crate::optim::DEFAULT_MAX_GRAD_NORM,
            seed: 0,
            save_every: 50,
            log_every: 10,
        }
    }
}

/// The SFT completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// `<think>\n</think>\n<answer>\n{answer}\n</answer>`: the answer format only.
    Answer,
    /// `<think>\n{trace}\n</think>\n<answer>\n{answer}\n</answer>`: the solver's checked
    /// reasoning, then the answer (a row without a trace gets the answer target).
    Trace,
}

/// The default SFT target.
pub const DEFAULT_TARGET: Target = Target::Answer;

/// Tokenised (prompt, target) pairs for `tasks`; tasks too long for the model are skipped.
pub fn examples(
    tasks: &[Task],
    codec: &TextCodec,
    max_positions: usize,
    target: Target,
) -> Result<Vec<Sequence>, TrainError> {
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        let sequence = example(task, codec, target)?;
        if sequence.prompt.len() + sequence.completion.len() <= max_positions {
            out.push(sequence);
        }
    }
    if out.is_empty() {
        return Err(TrainError::Invalid(format!(
            "no task fits in {max_positions} positions"
        )));
    }
    Ok(out)
}

/// The completion text SFT trains on for `task` (ending in the end-of-turn token).
pub fn target_text(task: &Task, target: Target) -> String {
    let prefilled = triad::reward::prompt_prefills_think(&task.prompt_text());
    let trace = match target {
        Target::Answer => "",
        Target::Trace => task.trace.as_str(),
    };
    sft_target(&task.answer, trace, prefilled)
}

/// `task`'s tokenised (prompt, target) pair, whatever its length.
pub fn example(task: &Task, codec: &TextCodec, target: Target) -> Result<Sequence, TrainError> {
    Ok(Sequence {
        prompt: codec.encode(&task.prompt_text())?,
        completion: codec.encode(&target_text(task, target))?,
    })
}

/// One optimizer step on `batch` split into `micro` micro-batches; returns (loss, grad norm).
/// The loss is the mean negative log-likelihood of the completion tokens of the whole step.
pub fn step(
    policy: &Policy,
    optimizer: &mut AdamW,
    batch: &[&Sequence],
    micro: usize,
    max_grad_norm: f64,
) -> Result<(f64, f64), TrainError> {
    step_on(
        policy,
        optimizer,
        batch,
        micro,
        max_grad_norm,
        Backend::for_policy(policy),
    )
}

/// [`step`] on a chosen backend.
pub fn step_on(
    policy: &Policy,
    optimizer: &mut AdamW,
    batch: &[&Sequence],
    micro: usize,
    max_grad_norm: f64,
    backend: Backend,
) -> Result<(f64, f64), TrainError> {
    let tokens: usize = batch.iter().map(|s| s.completion.len()).sum();
    let normaliser = tokens.max(1) as f64;
    let mut grads = Grads::new();
    let mut loss = 0.0;
    let chunk = batch.len().div_ceil(micro.max(1)).max(1);
    for part in batch.chunks(chunk) {
        let pass = objective::forward(policy, part, 1.0, false, backend)?;
        let log_probs = &pass.stats.log_probs;
        loss -= log_probs.iter().map(|&l| f64::from(l)).sum::<f64>() / normaliser;
        // L = −Σ logp / normaliser.
        let dlogp = vec![(-1.0 / normaliser) as f32; log_probs.len()];
        optim::accumulate(&mut grads, pass.backward(policy, &dlogp, &[])?)?;
    }
    let norm = optimizer.clip_and_step(&policy.vars, &mut grads, max_grad_norm)?;
    Ok((loss, norm))
}

/// The fingerprint of an SFT run: its options and its tasks.
pub fn run_fingerprint(options: &SftOptions, tasks: &[Task]) -> String {
    crate::run::run_fingerprint("sft", options, tasks)
}

/// Train `policy` on `tasks` into `run`, resuming from its checkpoint when there is one.
pub fn train(
    policy: Policy,
    tasks: &[Task],
    options: &SftOptions,
    run: &RunDir,
) -> Result<Policy, TrainError> {
    if options.batch_size == 0 {
        // An empty batch has no loss: every step would be a silent no-op.
        return Err(TrainError::Invalid(
            "sft needs a batch of at least one sequence (--batch-size 0)".into(),
        ));
    }
    let print = options.log_every > 0;
    let fp = run_fingerprint(options, tasks);
    let (policy, mut optimizer, mut state, resumed) =
        run.resume_or_start(policy, "sft", &fp, options.optim)?;
    if resumed && print {
        eprintln!("resuming SFT from step {}", state.step);
    }
    let data = examples(
        tasks,
        &policy.codec,
        policy.model.config().max_position_embeddings,
        options.target,
    )?;
    let bar = crate::progress::StepBar::new("sft", state.step, options.steps, print);
    while state.step < options.steps {
        let step = state.step + 1;
        let started = Instant::now();
        let mut rng = step_rng(options.seed, "sft-batch", step);
        let batch: Vec<&Sequence> = (0..options.batch_size)
            .map(|_| &data[crate::run::pick_index(&mut rng, data.len())])
            .collect();
        let (loss, norm) = self::step(
            &policy,
            &mut optimizer,
            &batch,
            options.grad_accum,
            options.max_grad_norm,
        )?;
        let seconds = started.elapsed().as_secs_f64();
        let tokens: usize = batch
            .iter()
            .map(|s| s.prompt.len() + s.completion.len())
            .sum();
        let completion: usize = batch.iter().map(|s| s.completion.len()).sum();
        metrics::append(
            &run.metrics(),
            &StepMetrics {
                phase: "sft".into(),
                step,
                loss,
                response_length: completion as f64 / batch.len() as f64,
                grad_norm: norm,
                skipped_steps: Some(u64::from(!norm.is_finite())),
                lr: options.optim.lr,
                train_tokens_per_s: tokens as f64 / seconds,
                seconds,
                ..StepMetrics::default()
            },
        )?;
        state.step = step;
        bar.step(
            step,
            format!("loss {loss:.4}, {:.0} tokens/s", tokens as f64 / seconds),
        );
        if print && (step % options.log_every == 0 || step == options.steps) {
            bar.line(&format!(
                "sft step {step}/{}: loss {loss:.4}, grad norm {norm:.3}, {:.0} tokens/s",
                options.steps,
                tokens as f64 / seconds
            ));
        }
        if step % options.save_every.max(1) == 0 || step == options.steps {
            run.save_checkpoint(&policy, &optimizer, &state)?;
        }
    }
    bar.finish();
    run.save_final(&policy, &state)?;
    Ok(policy)
}
