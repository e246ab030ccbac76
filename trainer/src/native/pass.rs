//! The Qwen2 forward pass that keeps what its backward needs, and that backward, over packed
//! sequences (every sequence's rows back to back: no padding is computed).

use super::attention::{self, Heads};
use super::ops::{self, RotaryTables};
use super::params::{LayerParams, Params, Weights};
use super::pool::Buffer;
use crate::batch::Sequence;
use crate::config::ModelConfig;
use triad_kernels::{Out, View, matmul};

/// A teacher-forced batch, packed: the input rows of every sequence back to back.
#[derive(Clone, Debug)]
pub(crate) struct Batch {
    /// Input token of each row.
    tokens: Vec<u32>,
    /// Position of each row within its sequence.
    positions: Vec<usize>,
    /// Rows per sequence.
    lengths: Vec<usize>,
    /// The trained rows (a completion token is their next token), in row order.
    selected: Vec<usize>,
    /// The next token of each selected row.
    targets: Vec<u32>,
    /// The sequence of each selected row.
    sequence_of: Vec<usize>,
    /// Factor on the logits before the log-softmax: 1 / the sampling temperature.
    logit_scale: f32,
}

impl Batch {
    /// Pack `sequences`: each contributes its tokens but the last as inputs, and the positions
    /// whose next token is a completion token as trained rows (the rows
    /// [`crate::batch::pack`] masks in, in the same order).
    pub(crate) fn new(sequences: &[&Sequence]) -> Self {
        let mut batch = Batch {
            tokens: Vec::new(),
            positions: Vec::new(),
            lengths: Vec::with_capacity(sequences.len()),
            selected: Vec::new(),
            targets: Vec::new(),
            sequence_of: Vec::new(),
            logit_scale: 1.0,
        };
        for (index, s) in sequences.iter().enumerate() {
            let full: Vec<u32> = s.prompt.iter().chain(&s.completion).copied().collect();
            let rows = full.len().saturating_sub(1);
            let first_trained = s.prompt.len().saturating_sub(1);
            for t in 0..rows {
                if t >= first_trained {
                    batch.selected.push(batch.tokens.len());
                    batch.targets.push(full[t + 1]);
                    batch.sequence_of.push(index);
                }
                batch.tokens.push(full[t]);
                batch.positions.push(t);
            }
            batch.lengths.push(rows);
        }
        batch
    }

    /// Score the batch under the policy's distribution at `temperature` (logits divided by it
    /// before the log-softmax, in the forward and the backward alike).
    pub(crate) fn at_temperature(mut self, temperature: f64) -> Self {
        self.logit_scale = (1.0 / temperature) as f32;
        self
    }

    /// The sequence each trained position belongs to.
    pub(crate) fn sequence_of(&self) -> &[usize] {
        &self.sequence_of
    }

    /// The largest token id among inputs and targets (checked against the vocabulary before a
    /// pass: the native pass indexes the embedding and the logits by it).
    pub(crate) fn largest_token(&self) -> Option<u32> {
        self.tokens.iter().chain(&self.targets).copied().max()
    }

    /// The longest sequence's rows.
    pub(crate) fn longest(&self) -> usize {
        self.lengths.iter().copied().max().unwrap_or(0)
    }

    fn rows(&self) -> usize {
        self.tokens.len()
    }
}

/// The sizes of one pass.
#[derive(Clone, Copy, Debug)]
struct Dims {
    rows: usize,
    hidden: usize,
    inter: usize,
    vocab: usize,
    heads: Heads,
    eps: f32,
}

impl Dims {
    fn new(config: &ModelConfig, batch: &Batch) -> Self {
        Dims {
            rows: batch.rows(),
            hidden: config.hidden_size,
            inter: config.intermediate_size,
            vocab: config.vocab_size,
            heads: Heads {
                heads: config.num_attention_heads,
                kv_heads: config.num_key_value_heads,
                head_dim: config.head_dim(),
            },
            eps: config.rms_norm_eps as f32,
        }
    }

    fn q_width(&self) -> usize {
        self.heads.heads * self.heads.head_dim
    }

    fn kv_width(&self) -> usize {
        self.heads.kv_heads * self.heads.head_dim
    }
}

/// What one layer's backward reads.
struct LayerActivations {
    x: Buffer,
    r1: Buffer,
    xn1: Buffer,
    q: Buffer,
    k: Buffer,
    v: Buffer,
    o: Buffer,
    lse: Buffer,
    x_mid: Buffer,
    r2: Buffer,
    xn2: Buffer,
    gate: Buffer,
    up: Buffer,
}

/// A finished forward pass: per-position statistics and what the backward needs.
pub(crate) struct Saved {
    layers: Vec<LayerActivations>,
    /// The last layer's output at the selected rows `[selected, hidden]`.
    last: Buffer,
    final_r: Buffer,
    final_normed: Buffer,
    logits: Buffer,
    stats: Vec<(f32, f32, f32)>,
}

impl Saved {
    /// The log-probability of each trained position's target.
    pub(crate) fn log_probs(&self) -> Vec<f32> {
        self.stats.iter().map(|s| s.0).collect()
    }

    /// The entropy of each trained position's next-token distribution.
    pub(crate) fn entropies(&self) -> Vec<f32> {
        self.stats.iter().map(|s| s.1).collect()
    }
}

/// `x [rows, in] · Wᵀ` with `W [out, in]` into a fresh `[rows, out]`.
pub(super) fn project(x: &[f32], w: &[f32], rows: usize, input: usize, output: usize) -> Buffer {
    let mut y = Buffer::scratch(rows * output);
    matmul(
        &mut y,
        output,
        View::new(x, rows, input),
        View::new(w, output, input).t(),
        1.0,
        Out::Set,
    );
    y
}

/// `y += x [rows, in] · Wᵀ` (a residual branch).
fn project_add(y: &mut [f32], x: &[f32], w: &[f32], rows: usize, input: usize, output: usize) {
    matmul(
        y,
        output,
        View::new(x, rows, input),
        View::new(w, output, input).t(),
        1.0,
        Out::Add,
    );
}

/// Backward of `y = x Wᵀ`: `dW += dyᵀ x`, and `dx (⟵ or +=) dy W`.
#[allow(clippy::too_many_arguments)]
fn project_backward(
    dy: &[f32],
    x: &[f32],
    w: &[f32],
    dw: &mut [f32],
    dx: &mut [f32],
    dx_mode: Out,
    rows: usize,
    input: usize,
    output: usize,
) {
    matmul(
        dw,
        input,
        View::new(dy, rows, output).t(),
        View::new(x, rows, input),
        1.0,
        Out::Add,
    );
    matmul(
        dx,
        input,
        View::new(dy, rows, output),
        View::new(w, output, input),
        1.0,
        dx_mode,
    );
}

fn layer_forward(
    dims: &Dims,
    w: &LayerParams<&[f32]>,
    rotary: &RotaryTables,
    batch: &Batch,
    x: Buffer,
) -> (LayerActivations, Buffer) {
    let (n, d, i) = (dims.rows, dims.hidden, dims.inter);
    let (qw, kvw, hd) = (dims.q_width(), dims.kv_width(), dims.heads.head_dim);
    let pos = &batch.positions;
    let (mut xn1, mut r1) = (Buffer::scratch(n * d), Buffer::scratch(n));
    ops::rms_norm(&x, w.ln1, dims.eps, &mut xn1, &mut r1);
    let mut q = Buffer::scratch(n * qw);
    ops::to_heads(
        &project(&xn1, w.wq, n, d, qw),
        Some(w.bq),
        Some(rotary),
        pos,
        hd,
        &mut q,
    );
    let mut k = Buffer::scratch(n * kvw);
    ops::to_heads(
        &project(&xn1, w.wk, n, d, kvw),
        Some(w.bk),
        Some(rotary),
        pos,
        hd,
        &mut k,
    );
    let mut v = Buffer::scratch(n * kvw);
    ops::to_heads(
        &project(&xn1, w.wv, n, d, kvw),
        Some(w.bv),
        None,
        pos,
        hd,
        &mut v,
    );
    let (mut o, mut lse) = (
        Buffer::scratch(n * qw),
        Buffer::scratch(n * dims.heads.heads),
    );
    attention::forward(dims.heads, &batch.lengths, &q, &k, &v, &mut o, &mut lse);
    let mut o_rows = Buffer::scratch(n * qw);
    ops::to_rows(&o, None, pos, hd, &mut o_rows);
    let mut x_mid = Buffer::copy_of(&x);
    project_add(&mut x_mid, &o_rows, w.wo, n, qw, d);
    let (mut xn2, mut r2) = (Buffer::scratch(n * d), Buffer::scratch(n));
    ops::rms_norm(&x_mid, w.ln2, dims.eps, &mut xn2, &mut r2);
    let gate = project(&xn2, w.wg, n, d, i);
    let up = project(&xn2, w.wu, n, d, i);
    let mut h = Buffer::scratch(n * i);
    ops::swiglu(&gate, &up, &mut h);
    let mut out = Buffer::copy_of(&x_mid);
    project_add(&mut out, &h, w.wd, n, i, d);
    let saved = LayerActivations {
        x,
        r1,
        xn1,
        q,
        k,
        v,
        o,
        lse,
        x_mid,
        r2,
        xn2,
        gate,
        up,
    };
    (saved, out)
}

/// Backward through one layer: `dx` holds `∂L/∂output` and leaves holding `∂L/∂input`.
fn layer_backward(
    dims: &Dims,
    w: &LayerParams<&[f32]>,
    g: &mut LayerParams<Vec<f32>>,
    rotary: &RotaryTables,
    batch: &Batch,
    mut a: LayerActivations,
    dx: &mut [f32],
) {
    let (n, d, i) = (dims.rows, dims.hidden, dims.inter);
    let (qw, kvw, hd) = (dims.q_width(), dims.kv_width(), dims.heads.head_dim);
    let pos = &batch.positions;
    // MLP: out = x_mid + (silu(gate) · up) Wdᵀ.
    let mut h = Buffer::scratch(n * i);
    ops::swiglu(&a.gate, &a.up, &mut h);
    matmul(
        &mut g.wd,
        i,
        View::new(dx, n, d).t(),
        View::new(&h, n, i),
        1.0,
        Out::Add,
    );
    let dh = &mut h;
    matmul(
        dh,
        i,
        View::new(dx, n, d),
        View::new(w.wd, d, i),
        1.0,
        Out::Set,
    );
    ops::swiglu_backward(&mut a.gate, &mut a.up, dh);
    let (dgate, dup) = (&a.gate, &a.up);
    let mut dxn2 = Buffer::scratch(n * d);
    project_backward(dgate, &a.xn2, w.wg, &mut g.wg, &mut dxn2, Out::Set, n, d, i);
    project_backward(dup, &a.xn2, w.wu, &mut g.wu, &mut dxn2, Out::Add, n, d, i);
    ops::rms_norm_backward(&a.x_mid, w.ln2, &a.r2, &dxn2, dx, &mut g.ln2);
    // Attention: x_mid = x + o Woᵀ.
    let mut o_rows = Buffer::scratch(n * qw);
    ops::to_rows(&a.o, None, pos, hd, &mut o_rows);
    let mut do_rows = Buffer::scratch(n * qw);
    project_backward(
        dx,
        &o_rows,
        w.wo,
        &mut g.wo,
        &mut do_rows,
        Out::Set,
        n,
        qw,
        d,
    );
    let mut do_heads = o_rows;
    ops::to_heads(&do_rows, None, None, pos, hd, &mut do_heads);
    let (mut dq, mut dk, mut dv) = (
        Buffer::scratch(n * qw),
        Buffer::scratch(n * kvw),
        Buffer::scratch(n * kvw),
    );
    attention::backward(
        dims.heads,
        &batch.lengths,
        attention::Saved {
            q: &a.q,
            k: &a.k,
            v: &a.v,
            lse: &a.lse,
        },
        &do_heads,
        attention::Grads {
            dq: &mut dq,
            dk: &mut dk,
            dv: &mut dv,
        },
    );
    let mut dxn1 = Buffer::scratch(n * d);
    let dq_rows = &mut do_rows;
    ops::to_rows(&dq, Some(rotary), pos, hd, dq_rows);
    ops::add_column_sums(dq_rows, &mut g.bq);
    project_backward(
        dq_rows,
        &a.xn1,
        w.wq,
        &mut g.wq,
        &mut dxn1,
        Out::Set,
        n,
        d,
        qw,
    );
    let mut kv_rows = Buffer::scratch(n * kvw);
    ops::to_rows(&dk, Some(rotary), pos, hd, &mut kv_rows);
    ops::add_column_sums(&kv_rows, &mut g.bk);
    project_backward(
        &kv_rows,
        &a.xn1,
        w.wk,
        &mut g.wk,
        &mut dxn1,
        Out::Add,
        n,
        d,
        kvw,
    );
    ops::to_rows(&dv, None, pos, hd, &mut kv_rows);
    ops::add_column_sums(&kv_rows, &mut g.bv);
    project_backward(
        &kv_rows,
        &a.xn1,
        w.wv,
        &mut g.wv,
        &mut dxn1,
        Out::Add,
        n,
        d,
        kvw,
    );
    ops::rms_norm_backward(&a.x, w.ln1, &a.r1, &dxn1, dx, &mut g.ln1);
}

/// The forward pass over `batch`, keeping its activations.
pub(crate) fn forward(
    config: &ModelConfig,
    w: &Weights,
    rotary: &RotaryTables,
    batch: &Batch,
) -> Saved {
    run_forward(config, w, rotary, batch, true)
}

/// The forward pass over `batch` for its per-position (log-prob, entropy, …) values only: each
/// layer's activations are freed as soon as the next layer has them (a frozen reference's
/// pass, run while the policy's activations are held, then costs one layer, not a model).
pub(crate) fn forward_stats(
    config: &ModelConfig,
    w: &Weights,
    rotary: &RotaryTables,
    batch: &Batch,
) -> Vec<(f32, f32, f32)> {
    run_forward(config, w, rotary, batch, false).stats
}

fn run_forward(
    config: &ModelConfig,
    w: &Weights,
    rotary: &RotaryTables,
    batch: &Batch,
    keep_activations: bool,
) -> Saved {
    let dims = Dims::new(config, batch);
    let (n, d) = (dims.rows, dims.hidden);
    let mut x = Buffer::scratch(n * d);
    for (row, &token) in x.chunks_mut(d).zip(&batch.tokens) {
        row.copy_from_slice(&w.embed[token as usize * d..][..d]);
    }
    let mut layers = Vec::with_capacity(w.layers.len());
    for layer in &w.layers {
        let (saved, out) = layer_forward(&dims, layer, rotary, batch, x);
        if keep_activations {
            layers.push(saved);
        }
        x = out;
    }
    // The final norm and the LM head run on the trained rows only.
    let m = batch.selected.len();
    let mut last = Buffer::scratch(m * d);
    for (dst, &row) in last.chunks_mut(d).zip(&batch.selected) {
        dst.copy_from_slice(&x[row * d..][..d]);
    }
    let (mut final_normed, mut final_r) = (Buffer::scratch(m * d), Buffer::scratch(m));
    ops::rms_norm(&last, w.norm, dims.eps, &mut final_normed, &mut final_r);
    let head = w.lm_head.unwrap_or(w.embed);
    let mut logits = project(&final_normed, head, m, d, dims.vocab);
    scale(&mut logits, batch.logit_scale);
    let stats = ops::log_softmax_stats(&logits, &batch.targets, dims.vocab);
    Saved {
        layers,
        last,
        final_r,
        final_normed,
        logits,
        stats,
    }
}

fn scale(values: &mut [f32], factor: f32) {
    if factor != 1.0 {
        values.iter_mut().for_each(|v| *v *= factor);
    }
}

/// Gradients of `L = Σ dlogp_i · logp_i + dentropy_i · H_i` over the trained positions, for
/// every weight.
pub(crate) fn backward(
    config: &ModelConfig,
    w: &Weights,
    rotary: &RotaryTables,
    batch: &Batch,
    saved: Saved,
    dlogp: &[f32],
    dentropy: &[f32],
) -> Params<Vec<f32>> {
    let dims = Dims::new(config, batch);
    let (n, d, vocab) = (dims.rows, dims.hidden, dims.vocab);
    let m = batch.selected.len();
    let mut grads = w
        .as_ref()
        .try_map(|t| Ok::<_, std::convert::Infallible>(vec![0.0; t.len()]))
        .expect("infallible");
    let Saved {
        layers,
        last,
        final_r,
        final_normed,
        mut logits,
        stats,
    } = saved;
    ops::log_softmax_backward(&mut logits, &batch.targets, &stats, dlogp, dentropy, vocab);
    // The logits were scaled before the log-softmax: the chain rule scales their gradient.
    scale(&mut logits, batch.logit_scale);
    let head = w.lm_head.unwrap_or(w.embed);
    let head_grad = match grads.lm_head.as_mut() {
        Some(g) => g,
        None => &mut grads.embed,
    };
    let mut d_normed = Buffer::scratch(m * d);
    project_backward(
        &logits,
        &final_normed,
        head,
        head_grad,
        &mut d_normed,
        Out::Set,
        m,
        d,
        vocab,
    );
    let mut d_last = Buffer::zeroed(m * d);
    ops::rms_norm_backward(
        &last,
        w.norm,
        &final_r,
        &d_normed,
        &mut d_last,
        &mut grads.norm,
    );
    let mut dx = Buffer::zeroed(n * d);
    for (src, &row) in d_last.chunks(d).zip(&batch.selected) {
        for (a, b) in dx[row * d..][..d].iter_mut().zip(src) {
            *a += b;
        }
    }
    for ((layer, g), saved) in w
        .layers
        .iter()
        .zip(grads.layers.iter_mut())
        .zip(layers)
        .rev()
    {
        layer_backward(&dims, layer, g, rotary, batch, saved, &mut dx);
    }
    for (src, &token) in dx.chunks(d).zip(&batch.tokens) {
        for (a, b) in grads.embed[token as usize * d..][..d].iter_mut().zip(src) {
            *a += b;
        }
    }
    grads
}
