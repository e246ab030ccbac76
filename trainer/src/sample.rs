//! Decoding: `n` rollouts of one prompt, batched, with a KV cache, temperature and nucleus
//! (top-p) sampling; temperature 0 is greedy.

use candle_core::{D, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::model::Qwen2;
use crate::native::{self, Decoder};
use crate::objective::Backend;
use crate::policy::Policy;

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

/// `n` continuations of `prompt` under `policy`. Each ends with `eos` when the model produced it
/// within the budget (the eos token is included: it is a token the policy chose). On the CPU the
/// native decoder runs; elsewhere candle's.
pub fn sample(
    policy: &Policy,
    prompt: &[u32],
    n: usize,
    eos: u32,
    options: &SampleOptions,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Vec<u32>>, TrainError> {
    sample_on(
        Backend::for_policy(policy),
        policy,
        prompt,
        n,
        eos,
        options,
        rng,
    )
}

/// [`sample`] on a chosen backend.
pub fn sample_on(
    backend: Backend,
    policy: &Policy,
    prompt: &[u32],
    n: usize,
    eos: u32,
    options: &SampleOptions,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Vec<u32>>, TrainError> {
    match backend {
        Backend::Native => sample_native(policy, prompt, n, eos, options, rng),
        Backend::Candle => {
            let model = policy.untracked()?;
            decode_pool().install(|| sample_here(&model, prompt, n, eos, options, rng))
        }
    }
}

/// New tokens a prompt may get: the budget, within the model's positions.
fn budget_for(policy: &Policy, prompt: usize, max_new_tokens: usize) -> usize {
    let positions = policy.model.config().max_position_embeddings;
    max_new_tokens.min(positions.saturating_sub(prompt))
}

fn sample_native(
    policy: &Policy,
    prompt: &[u32],
    n: usize,
    eos: u32,
    options: &SampleOptions,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Vec<u32>>, TrainError> {
    let budget = budget_for(policy, prompt.len(), options.max_new_tokens);
    if budget == 0 || n == 0 || prompt.is_empty() {
        return Ok(vec![Vec::new(); n]);
    }
    native::with_policy_weights(policy, |w| {
        // Prefill once (on every thread), then decode the n rollouts from copies of its cache.
        let mut decoder = Decoder::new(policy.model.config(), 1, prompt.len() + budget);
        let first = decoder.extend(w, &[prompt]).map_err(TrainError::Invalid)?;
        let mut decoder = decoder.repeat(n);
        let rows = vec![first[0].clone(); n];
        decode_pool().install(|| {
            decode_loop(&mut decoder, w, rows, vec![budget; n], eos, |row, _| {
                pick(row, options, rng)
            })
        })
    })?
}

/// Feed each sequence its picked tokens until every one has ended (eos) or spent its budget.
/// `rows[i]` is sequence `i`'s first next-token logits; `choose` picks from a row (called in
/// sequence order at every step, for the live sequences only).
fn decode_loop(
    decoder: &mut Decoder,
    w: &native::Weights,
    mut rows: Vec<Vec<f32>>,
    budgets: Vec<usize>,
    eos: u32,
    mut choose: impl FnMut(&[f32], usize) -> u32,
) -> Result<Vec<Vec<u32>>, TrainError> {
    let n = rows.len();
    let mut outputs = vec![Vec::new(); n];
    let mut live: Vec<bool> = budgets.iter().map(|&b| b > 0).collect();
    let mut next = vec![eos; n];
    while live.iter().any(|l| *l) {
        for i in 0..n {
            if live[i] {
                let token = choose(&rows[i], i);
                outputs[i].push(token);
                next[i] = token;
                live[i] = token != eos && outputs[i].len() < budgets[i];
            }
        }
        let inputs: Vec<&[u32]> = (0..n)
            .map(|i| {
                if live[i] {
                    std::slice::from_ref(&next[i])
                } else {
                    &[][..]
                }
            })
            .collect();
        let fresh = decoder.extend(w, &inputs).map_err(TrainError::Invalid)?;
        let live_rows = (0..n).filter(|&i| live[i]);
        for (i, row) in live_rows.zip(fresh) {
            rows[i] = row;
        }
    }
    Ok(outputs)
}

/// Prompts decoded together by [`greedy_batch`].
pub const GREEDY_BATCH: usize = 16;

/// Greedy continuations of many prompts (evaluation). On the CPU, [`GREEDY_BATCH`] prompts
/// decode together, each with its own cache length (no padding); elsewhere one at a time.
pub fn greedy_batch(
    policy: &Policy,
    prompts: &[Vec<u32>],
    eos: u32,
    max_new_tokens: usize,
) -> Result<Vec<Vec<u32>>, TrainError> {
    let options = SampleOptions::greedy(max_new_tokens);
    if Backend::for_policy(policy) == Backend::Candle {
        // Greedy decoding draws nothing; the generator is only there for the signature.
        let mut rng = crate::run::step_rng(0, "greedy", 0);
        return prompts
            .iter()
            .map(|p| {
                Ok(sample(policy, p, 1, eos, &options, &mut rng)?
                    .pop()
                    .unwrap_or_default())
            })
            .collect();
    }
    let mut out = Vec::with_capacity(prompts.len());
    for chunk in prompts.chunks(GREEDY_BATCH) {
        let budgets: Vec<usize> = chunk
            .iter()
            .map(|p| {
                if p.is_empty() {
                    0
                } else {
                    budget_for(policy, p.len(), max_new_tokens)
                }
            })
            .collect();
        let capacity = chunk
            .iter()
            .zip(&budgets)
            .map(|(p, b)| p.len() + b)
            .max()
            .unwrap_or(0);
        let decoded = native::with_policy_weights(policy, |w| {
            let mut decoder = Decoder::new(policy.model.config(), chunk.len(), capacity);
            let inputs: Vec<&[u32]> = chunk
                .iter()
                .zip(&budgets)
                .map(|(p, &b)| if b > 0 { p.as_slice() } else { &[][..] })
                .collect();
            let firsts = decoder.extend(w, &inputs).map_err(TrainError::Invalid)?;
            let mut firsts = firsts.into_iter();
            let rows: Vec<Vec<f32>> = budgets
                .iter()
                .map(|&b| {
                    if b > 0 {
                        firsts.next().unwrap_or_default()
                    } else {
                        Vec::new()
                    }
                })
                .collect();
            decode_pool().install(|| {
                decode_loop(&mut decoder, w, rows, budgets.clone(), eos, |row, _| {
                    argmax(row)
                })
            })
        })??;
        out.extend(decoded);
    }
    Ok(out)
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
