//! Decoding: `n` rollouts of one prompt, batched, with a KV cache, temperature and nucleus
//! (top-p) sampling; temperature 0 is greedy.

use candle_core::{D, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::model::Qwen2;

/// Sampling settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleOptions {
    /// Softmax temperature; 0 picks the most likely token.
    pub temperature: f64,
    /// Keep the smallest set of tokens whose probability reaches `top_p`.
    pub top_p: f64,
    /// Stop after this many new tokens.
    pub max_new_tokens: usize,
}

impl SampleOptions {
    /// Greedy decoding of at most `max_new_tokens`.
    pub fn greedy(max_new_tokens: usize) -> Self {
        SampleOptions {
            temperature: 0.0,
            top_p: 1.0,
            max_new_tokens,
        }
    }
}

/// Pick a token from one row of logits.
fn pick(logits: &[f32], options: &SampleOptions, rng: &mut ChaCha8Rng) -> u32 {
    if options.temperature <= 0.0 {
        return argmax(logits);
    }
    let inv_t = 1.0 / options.temperature as f32;
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut probs: Vec<(u32, f32)> = logits
        .iter()
        .enumerate()
        .map(|(i, &l)| (i as u32, ((l - max) * inv_t).exp()))
        .collect();
    let total: f32 = probs.iter().map(|p| p.1).sum();
    // Highest first; ties by id so the order never depends on the sort's stability.
    probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let cutoff = options.top_p.clamp(0.0, 1.0) as f32 * total;
    let mut kept = 0;
    let mut mass = 0.0;
    for p in &probs {
        mass += p.1;
        kept += 1;
        if mass >= cutoff {
            break;
        }
    }
    let probs = &probs[..kept];
    let draw = (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * mass;
    let mut acc = 0.0;
    for p in probs {
        acc += p.1;
        if draw < acc {
            return p.0;
        }
    }
    probs[kept - 1].0
}

fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best as u32
}

/// `n` continuations of `prompt`. Each ends with `eos` when the model produced it within the
/// budget (the eos token is included: it is a token the policy chose).
pub fn sample(
    model: &Qwen2,
    prompt: &[u32],
    n: usize,
    eos: u32,
    options: &SampleOptions,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Vec<u32>>, TrainError> {
    decode_pool().install(|| sample_here(model, prompt, n, eos, options, rng))
}

/// A one-thread pool that decoding runs in. A decode step is hundreds of operations on a few
/// rows each, and splitting each product across threads cost more than it saved: on 2 cores,
/// sampling ran 1.35× faster on one thread (same tokens). Training keeps every thread.
fn decode_pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "triad-decode".into())
            .build()
            .expect("a one-thread pool can be built")
    })
}

fn sample_here(
    model: &Qwen2,
    prompt: &[u32],
    n: usize,
    eos: u32,
    options: &SampleOptions,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Vec<u32>>, TrainError> {
    let device = model.device().clone();
    let room = model
        .config()
        .max_position_embeddings
        .saturating_sub(prompt.len());
    let budget = options.max_new_tokens.min(room);
    let mut outputs = vec![Vec::new(); n];
    if budget == 0 || n == 0 {
        return Ok(outputs);
    }
    // Prefill once, then share the prompt's cache across the n rollouts.
    let mut cache = model.new_cache();
    let ids = Tensor::new(prompt, &device)?.unsqueeze(0)?;
    let last = model.forward_last(&ids, &mut cache)?;
    let mut rows: Vec<Vec<f32>> = vec![last.squeeze(0)?.to_vec1()?; n];
    let mut cache = cache.repeat_batch(n)?;
    let mut done = vec![false; n];
    for step in 0..budget {
        let mut next = Vec::with_capacity(n);
        for (i, row) in rows.iter().enumerate() {
            let token = if done[i] {
                eos
            } else {
                pick(row, options, rng)
            };
            if !done[i] {
                outputs[i].push(token);
                done[i] = token == eos;
            }
            next.push(token);
        }
        if done.iter().all(|d| *d) || step + 1 == budget {
            break;
        }
        let ids = Tensor::new(next.as_slice(), &device)?.unsqueeze(1)?;
        let logits = model.forward(&ids, &mut cache)?;
        rows = logits.squeeze(1)?.to_vec2()?;
    }
    Ok(outputs)
}

/// Per-token log-probabilities of `targets` under `logits` (`[batch, seq, vocab]` and
/// `[batch, seq]`), differentiable.
pub fn token_log_probs(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    let log_probs = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    gather_targets(&log_probs, targets)
}

/// Per-position entropy of `logits` (`[batch, seq, vocab]` → `[batch, seq]`).
pub fn entropy(logits: &Tensor) -> candle_core::Result<Tensor> {
    entropy_of(&candle_nn::ops::log_softmax(logits, D::Minus1)?)
}

/// Both of the above from one log-softmax (the RL loss needs both).
pub fn log_probs_and_entropy(
    logits: &Tensor,
    targets: &Tensor,
) -> candle_core::Result<(Tensor, Tensor)> {
    let log_probs = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    Ok((
        gather_targets(&log_probs, targets)?,
        entropy_of(&log_probs)?,
    ))
}

fn gather_targets(log_probs: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    log_probs
        .gather(&targets.unsqueeze(D::Minus1)?.contiguous()?, D::Minus1)?
        .squeeze(D::Minus1)
}

fn entropy_of(log_probs: &Tensor) -> candle_core::Result<Tensor> {
    (log_probs.exp()? * log_probs)?.sum(D::Minus1)?.neg()
}
