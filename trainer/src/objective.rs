//! Per-token objectives over a batch of (prompt, completion) sequences, on either backend.
//!
//! Every loss the trainer optimises is a sum over trained (completion) positions of a function
//! of that position's target log-probability and next-token entropy: SFT's negative
//! log-likelihood, RL's clipped policy loss with its KL and entropy terms. So a pass is split in
//! two: [`forward`] returns those per-position values, the caller turns them into the loss and
//! its derivatives with respect to each value (plain scalar arithmetic, written once in
//! `sft.rs` / `rl.rs`), and [`Forward::backward`] turns the derivatives into weight gradients.
//! On the CPU the native pass (`crate::native`) does both halves; elsewhere candle's autograd
//! does, through the surrogate `Σ dlogp·logp + dentropy·H`, whose gradient is the same.

use candle_core::Tensor;

use crate::batch::{Sequence, pack};
use crate::native;
use crate::optim::{self, Grads};
use crate::policy::Policy;
use crate::{ModelConfig, TrainError};

/// Which implementation runs a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// candle ops and autograd (any device).
    Candle,
    /// The hand-written CPU pass.
    Native,
}

impl Backend {
    /// The fastest backend for `policy`'s device: native on the CPU, candle elsewhere.
    pub fn for_policy(policy: &Policy) -> Self {
        if policy.device.is_cpu() {
            Backend::Native
        } else {
            Backend::Candle
        }
    }
}

/// Values at each trained position of a batch, in row order (sequence by sequence).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenStats {
    /// Log-probability of the target token.
    pub log_probs: Vec<f32>,
    /// Entropy of the next-token distribution (empty when not asked for on candle).
    pub entropies: Vec<f32>,
    /// The sequence (index into the batch) of each position.
    pub sequence_of: Vec<usize>,
}

enum Tape {
    Candle {
        log_probs: Tensor,
        entropies: Option<Tensor>,
    },
    Native {
        batch: Box<native::Batch>,
        saved: Box<native::Saved>,
    },
}

/// A forward pass whose backward has not run yet.
pub struct Forward {
    /// The per-position values.
    pub stats: TokenStats,
    /// Positions of the right-padded `[batch, longest − 1]` grid (what RL's metrics count).
    pub padded_positions: usize,
    tape: Tape,
}

fn padded_positions(batch: &[&Sequence]) -> usize {
    let longest = batch
        .iter()
        .map(|s| s.prompt.len() + s.completion.len())
        .max()
        .unwrap_or(1)
        .max(2);
    batch.len() * (longest - 1)
}

/// The forward pass of `policy` over `batch` on `backend`, ready for a backward. `entropy` asks
/// for the entropies too (the native pass always computes them). `temperature` divides the
/// logits before the log-softmax, so the values (and their gradients) are those of the
/// distribution that sampled the completions (verl's `logits.div_(temperature)`; 1 for SFT).
pub fn forward(
    policy: &Policy,
    batch: &[&Sequence],
    temperature: f64,
    entropy: bool,
    backend: Backend,
) -> Result<Forward, TrainError> {
    check_temperature(temperature)?;
    let padded = padded_positions(batch);
    match backend {
        Backend::Candle => {
            let packed = pack(batch, policy.codec.pad, &policy.device)?;
            let logits = policy.model.logits_at(&packed.inputs, &packed.positions)?;
            let logits = if temperature == 1.0 {
                logits
            } else {
                (logits / temperature)?
            };
            let (log_probs, entropies) = if entropy {
                let (l, e) =
                    crate::sample::log_probs_and_entropy(&logits, &packed.trained_targets)?;
                (l, Some(e))
            } else {
                (
                    crate::sample::token_log_probs(&logits, &packed.trained_targets)?,
                    None,
                )
            };
            let stats = TokenStats {
                log_probs: log_probs.to_vec1()?,
                entropies: match &entropies {
                    Some(e) => e.to_vec1()?,
                    None => Vec::new(),
                },
                sequence_of: packed.rows,
            };
            Ok(Forward {
                stats,
                padded_positions: padded,
                tape: Tape::Candle {
                    log_probs,
                    entropies,
                },
            })
        }
        Backend::Native => {
            let packed = native::Batch::new(batch).at_temperature(temperature);
            let saved = native_pass(policy, &packed, native::forward)?;
            let stats = TokenStats {
                log_probs: saved.log_probs(),
                entropies: saved.entropies(),
                sequence_of: packed.sequence_of().to_vec(),
            };
            Ok(Forward {
                stats,
                padded_positions: padded,
                tape: Tape::Native {
                    batch: Box::new(packed),
                    saved: Box::new(saved),
                },
            })
        }
    }
}

fn rotary_for(policy: &Policy, batch: &native::Batch) -> native::RotaryTables {
    let config = policy.model.config();
    native::RotaryTables::new(config.head_dim(), config.rope_theta, batch.longest())
}

/// Run a native pass `f` of `policy` over `batch`, after checking the batch fits the model.
fn native_pass<R>(
    policy: &Policy,
    batch: &native::Batch,
    f: impl FnOnce(&ModelConfig, &native::Weights, &native::RotaryTables, &native::Batch) -> R,
) -> Result<R, TrainError> {
    let config = policy.model.config();
    if batch.longest() > config.max_position_embeddings {
        return Err(TrainError::Invalid(format!(
            "a sequence of {} positions exceeds max_position_embeddings {}",
            batch.longest(),
            config.max_position_embeddings
        )));
    }
    if let Some(token) = batch.largest_token()
        && token as usize >= config.vocab_size
    {
        return Err(TrainError::Invalid(format!(
            "token id {token} is outside the vocabulary of {}",
            config.vocab_size
        )));
    }
    let rotary = rotary_for(policy, batch);
    Ok(native::with_policy_weights(policy, |w| {
        f(config, w, &rotary, batch)
    })?)
}

/// The target log-probabilities of `batch` under `model` at `temperature` (a frozen
/// reference: no tape kept).
pub fn log_probs(
    model: &Policy,
    batch: &[&Sequence],
    temperature: f64,
    backend: Backend,
) -> Result<Vec<f32>, TrainError> {
    match backend {
        Backend::Native => {
            check_temperature(temperature)?;
            let packed = native::Batch::new(batch).at_temperature(temperature);
            let stats = native_pass(model, &packed, native::forward_stats)?;
            Ok(stats.iter().map(|s| s.0).collect())
        }
        Backend::Candle => Ok(forward(model, batch, temperature, false, backend)?
            .stats
            .log_probs),
    }
}

/// A temperature a distribution can be scored at: finite and positive (greedy decoding, at
/// temperature 0, has no log-probabilities to train on).
fn check_temperature(temperature: f64) -> Result<(), TrainError> {
    if temperature.is_finite() && temperature > 0.0 {
        Ok(())
    } else {
        Err(TrainError::Invalid(format!(
            "log-probabilities need a finite temperature above 0, not {temperature}"
        )))
    }
}

impl Forward {
    /// Weight gradients of `Σ dlogp_i · logp_i + dentropy_i · H_i` (`dentropy` may be empty:
    /// no entropy term).
    pub fn backward(
        self,
        policy: &Policy,
        dlogp: &[f32],
        dentropy: &[f32],
    ) -> Result<Grads, TrainError> {
        let n = self.stats.log_probs.len();
        if dlogp.len() != n || !(dentropy.is_empty() || dentropy.len() == n) {
            return Err(TrainError::Invalid(format!(
                "{n} positions but {} log-prob and {} entropy derivatives",
                dlogp.len(),
                dentropy.len()
            )));
        }
        match self.tape {
            Tape::Candle {
                log_probs,
                entropies,
            } => {
                let device = log_probs.device().clone();
                let mut surrogate = (&log_probs * Tensor::new(dlogp, &device)?)?.sum_all()?;
                if !dentropy.is_empty() {
                    let Some(h) = entropies else {
                        return Err(TrainError::Invalid(
                            "an entropy term needs a forward pass with entropies".into(),
                        ));
                    };
                    surrogate = (surrogate + (h * Tensor::new(dentropy, &device)?)?.sum_all()?)?;
                }
                Ok(optim::collect_grads(&policy.vars, &surrogate.backward()?))
            }
            Tape::Native { batch, saved } => {
                let zeros;
                let dentropy = if dentropy.is_empty() {
                    zeros = vec![0.0; n];
                    &zeros
                } else {
                    dentropy
                };
                let config = policy.model.config();
                let rotary = rotary_for(policy, &batch);
                let grads = native::with_policy_weights(policy, |w| {
                    native::backward(config, w, &rotary, &batch, *saved, dlogp, dentropy)
                })?;
                let mut out = Grads::new();
                for (name, values) in grads.into_named() {
                    let var = &policy.vars[&name];
                    out.insert(name, Tensor::from_vec(values, var.dims(), var.device())?);
                }
                Ok(out)
            }
        }
    }
}
