//! Incremental decoding on the native kernels: a key/value cache per sequence (each sequence
//! its own length, so prompts of different lengths batch without padding), a pass that appends
//! any number of tokens to each sequence (a prompt's prefill, or one token per step) and returns
//! the next-token logits of each.

use super::ops::{self, RotaryTables};
use super::params::{LayerParams, Weights};
use super::pass::project;
use super::pool::Buffer;
use crate::config::ModelConfig;
use triad_kernels::{Out, View, matmul, matmul_serial};

/// The caches of a batch of sequences being decoded.
#[derive(Clone, Debug)]
pub(crate) struct Decoder {
    config: ModelConfig,
    rotary: RotaryTables,
    /// Positions each sequence's cache can hold.
    capacity: usize,
    /// Positions cached per sequence.
    lens: Vec<usize>,
    /// Per layer, `[sequence, kv_head, capacity, head_dim]` keys (rotated) and values.
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
}

/// Where each packed row of one [`Decoder::extend`] call comes from.
struct Rows {
    /// (sequence, first row, rows) for each sequence given tokens.
    spans: Vec<(usize, usize, usize)>,
    /// Position of each row.
    positions: Vec<usize>,
    tokens: Vec<u32>,
}

impl Decoder {
    /// Empty caches for `sequences` sequences of up to `capacity` positions each.
    pub(crate) fn new(config: &ModelConfig, sequences: usize, capacity: usize) -> Self {
        let per_layer = sequences * config.num_key_value_heads * capacity * config.head_dim();
        Decoder {
            config: config.clone(),
            rotary: RotaryTables::new(config.head_dim(), config.rope_theta, capacity),
            capacity,
            lens: vec![0; sequences],
            keys: vec![vec![0.0; per_layer]; config.num_hidden_layers],
            values: vec![vec![0.0; per_layer]; config.num_hidden_layers],
        }
    }

    /// Each sequence repeated `n` times, in order (`a, a, …, b, b, …`): one prompt's cache for
    /// `n` rollouts.
    pub(crate) fn repeat(&self, n: usize) -> Self {
        let block = self.config.num_key_value_heads * self.capacity * self.config.head_dim();
        let repeat = |caches: &[Vec<f32>]| -> Vec<Vec<f32>> {
            caches
                .iter()
                .map(|c| {
                    c.chunks(block)
                        .flat_map(|seq| std::iter::repeat_n(seq, n))
                        .flatten()
                        .copied()
                        .collect()
                })
                .collect()
        };
        Decoder {
            config: self.config.clone(),
            rotary: self.rotary.clone(),
            capacity: self.capacity,
            lens: self
                .lens
                .iter()
                .flat_map(|&l| std::iter::repeat_n(l, n))
                .collect(),
            keys: repeat(&self.keys),
            values: repeat(&self.values),
        }
    }

    fn rows(&self, tokens: &[&[u32]]) -> Result<Rows, String> {
        if tokens.len() != self.lens.len() {
            return Err(format!(
                "{} token lists for {} sequences",
                tokens.len(),
                self.lens.len()
            ));
        }
        let mut rows = Rows {
            spans: Vec::new(),
            positions: Vec::new(),
            tokens: Vec::new(),
        };
        for (seq, t) in tokens.iter().enumerate() {
            if t.is_empty() {
                continue;
            }
            if let Some(&bad) = t.iter().find(|&&id| id as usize >= self.config.vocab_size) {
                return Err(format!(
                    "token id {bad} is outside the vocabulary of {}",
                    self.config.vocab_size
                ));
            }
            let start = self.lens[seq];
            if start + t.len() > self.capacity {
                return Err(format!(
                    "sequence {seq} would reach {} positions; the cache holds {}",
                    start + t.len(),
                    self.capacity
                ));
            }
            rows.spans.push((seq, rows.tokens.len(), t.len()));
            rows.positions.extend(start..start + t.len());
            rows.tokens.extend_from_slice(t);
        }
        Ok(rows)
    }

    /// Append `tokens[s]` to sequence `s` (an empty list leaves it alone) and return the
    /// next-token logits `[vocab]` of each sequence given tokens, in sequence order.
    pub(crate) fn extend(
        &mut self,
        w: &Weights,
        tokens: &[&[u32]],
    ) -> Result<Vec<Vec<f32>>, String> {
        let rows = self.rows(tokens)?;
        let n = rows.tokens.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let d = self.config.hidden_size;
        let mut x = Buffer::scratch(n * d);
        for (row, &token) in x.chunks_mut(d).zip(&rows.tokens) {
            row.copy_from_slice(&w.embed[token as usize * d..][..d]);
        }
        for (layer, weights) in w.layers.iter().enumerate() {
            self.layer(layer, weights, &rows, &mut x);
        }
        for &(seq, _, count) in &rows.spans {
            self.lens[seq] += count;
        }
        // The head on each sequence's last new row.
        let last: Vec<f32> = rows
            .spans
            .iter()
            .flat_map(|&(_, first, count)| x[(first + count - 1) * d..][..d].to_vec())
            .collect();
        let m = rows.spans.len();
        let (mut normed, mut r) = (vec![0.0; m * d], vec![0.0; m]);
        ops::rms_norm(
            &last,
            w.norm,
            self.config.rms_norm_eps as f32,
            &mut normed,
            &mut r,
        );
        let vocab = self.config.vocab_size;
        let head = w.lm_head.unwrap_or(w.embed);
        let mut logits = vec![0.0; m * vocab];
        matmul(
            &mut logits,
            vocab,
            View::new(&normed, m, d),
            View::new(head, vocab, d).t(),
            1.0,
            Out::Set,
        );
        Ok(logits.chunks(vocab).map(<[f32]>::to_vec).collect())
    }

    fn layer(&mut self, layer: usize, w: &LayerParams<&[f32]>, rows: &Rows, x: &mut [f32]) {
        let c = &self.config;
        let (n, d, inter) = (rows.tokens.len(), c.hidden_size, c.intermediate_size);
        let hd = c.head_dim();
        let (qw, kvw) = (c.num_attention_heads * hd, c.num_key_value_heads * hd);
        let eps = c.rms_norm_eps as f32;
        let (mut xn, mut r) = (Buffer::scratch(n * d), Buffer::scratch(n));
        ops::rms_norm(x, w.ln1, eps, &mut xn, &mut r);
        let mut q = project(&xn, w.wq, n, d, qw);
        let mut k = project(&xn, w.wk, n, d, kvw);
        let mut v = project(&xn, w.wv, n, d, kvw);
        for (t, &pos) in rows.positions.iter().enumerate() {
            ops::bias_rotate_row(&mut q[t * qw..][..qw], w.bq, &self.rotary, pos, hd);
            ops::bias_rotate_row(&mut k[t * kvw..][..kvw], w.bk, &self.rotary, pos, hd);
            for (a, b) in v[t * kvw..][..kvw].iter_mut().zip(w.bv) {
                *a += b;
            }
        }
        self.store(layer, rows, &k, &v);
        let mut o = Buffer::scratch(n * qw);
        self.attend(layer, rows, &q, &mut o);
        let mut proj = project(&o, w.wo, n, qw, d);
        for (a, b) in x.iter_mut().zip(proj.iter()) {
            *a += b;
        }
        ops::rms_norm(x, w.ln2, eps, &mut xn, &mut r);
        let gate = project(&xn, w.wg, n, d, inter);
        let up = project(&xn, w.wu, n, d, inter);
        let mut h = Buffer::scratch(n * inter);
        ops::swiglu(&gate, &up, &mut h);
        matmul(
            &mut proj,
            d,
            View::new(&h, n, inter),
            View::new(w.wd, d, inter).t(),
            1.0,
            Out::Set,
        );
        for (a, b) in x.iter_mut().zip(proj.iter()) {
            *a += b;
        }
    }

    /// Write the new rows' keys and values into their sequences' caches.
    fn store(&mut self, layer: usize, rows: &Rows, k: &[f32], v: &[f32]) {
        let c = &self.config;
        let (kvh, hd, cap) = (c.num_key_value_heads, c.head_dim(), self.capacity);
        for &(seq, first, count) in &rows.spans {
            for t in first..first + count {
                let pos = rows.positions[t];
                for g in 0..kvh {
                    let at = ((seq * kvh + g) * cap + pos) * hd;
                    let from = t * kvh * hd + g * hd;
                    self.keys[layer][at..at + hd].copy_from_slice(&k[from..from + hd]);
                    self.values[layer][at..at + hd].copy_from_slice(&v[from..from + hd]);
                }
            }
        }
    }

    /// Causal attention of the new rows over each sequence's cache (which already holds them).
    fn attend(&self, layer: usize, rows: &Rows, q: &[f32], o: &mut [f32]) {
        let c = &self.config;
        let (heads, kvh, hd, cap) = (
            c.num_attention_heads,
            c.num_key_value_heads,
            c.head_dim(),
            self.capacity,
        );
        let qw = heads * hd;
        let scale = 1.0 / (hd as f32).sqrt();
        let mut scores = Vec::new();
        for &(seq, first, count) in &rows.spans {
            let start = rows.positions[first];
            let total = start + count;
            scores.resize(count * total, 0.0);
            for h in 0..heads {
                let g = h / (heads / kvh);
                let base = (seq * kvh + g) * cap * hd;
                let keys = View::new(&self.keys[layer][base..base + total * hd], total, hd);
                let values = View::new(&self.values[layer][base..base + total * hd], total, hd);
                let queries = View::strided(&q[first * qw + h * hd..], count, hd, qw);
                matmul_serial(&mut scores, total, queries, keys.t(), scale, Out::Set);
                for (i, row) in scores.chunks_mut(total).enumerate() {
                    let (seen, future) = row.split_at_mut(start + i + 1);
                    let max = seen.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0.0;
                    for s in seen.iter_mut() {
                        *s = (*s - max).exp();
                        sum += *s;
                    }
                    seen.iter_mut().for_each(|s| *s /= sum);
                    future.fill(0.0);
                }
                let dst = &mut o[first * qw + h * hd..];
                let weights = View::new(&scores, count, total);
                matmul_serial(dst, qw, weights, values, 1.0, Out::Set);
            }
        }
    }
}
