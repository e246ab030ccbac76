//! Causal grouped-query attention over packed sequences, forward and backward.
//!
//! Queries, keys and values are head-major (`[heads, rows, head_dim]`, the rows of every
//! sequence back to back, no padding). The work splits into one task per (key/value head,
//! sequence): the query heads sharing that key/value head run inside it, so the key and value
//! gradients of a task are its own and no two tasks write the same memory. The backward
//! recomputes the attention weights from the saved log-sum-exp (as FlashAttention does) instead
//! of keeping `rows²` weights per head.

use std::cell::RefCell;

use rayon::prelude::*;

use triad_kernels::{Out, View, matmul_serial};

/// The shape of one attention call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Heads {
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (`heads` is a multiple).
    pub kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
}

impl Heads {
    fn groups(&self) -> usize {
        self.heads / self.kv_heads
    }
}

thread_local! {
    /// Per-thread `rows²` scratch, kept between calls (filled before it is read).
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Split `buffer` (head-major, `count` heads of `Σ lengths` rows of `width`) into one slice per
/// (head, sequence), heads outer.
fn segments<'a>(buffer: &'a [f32], lengths: &[usize], width: usize) -> Vec<Vec<&'a [f32]>> {
    let total: usize = lengths.iter().sum();
    buffer
        .chunks(total * width)
        .map(|mut head| {
            lengths
                .iter()
                .map(|len| {
                    let (seg, rest) = head.split_at(len * width);
                    head = rest;
                    seg
                })
                .collect()
        })
        .collect()
}

fn segments_mut<'a>(
    buffer: &'a mut [f32],
    lengths: &[usize],
    width: usize,
) -> Vec<Vec<&'a mut [f32]>> {
    let total: usize = lengths.iter().sum();
    buffer
        .chunks_mut(total * width)
        .map(|mut head| {
            lengths
                .iter()
                .map(|len| {
                    let (seg, rest) = std::mem::take(&mut head).split_at_mut(len * width);
                    head = rest;
                    seg
                })
                .collect()
        })
        .collect()
}

/// `scores = scale · q kᵀ` (`[n, n]`; the part above the diagonal is computed and then masked,
/// which on these sizes costs less than splitting the product).
fn scaled_scores(q: &[f32], k: &[f32], n: usize, d: usize, scale: f32, scores: &mut [f32]) {
    matmul_serial(
        scores,
        n,
        View::new(q, n, d),
        View::new(k, n, d).t(),
        scale,
        Out::Set,
    );
}

/// Causal softmax of each row in place (zero above the diagonal), each row's log-sum-exp of the
/// scaled scores into `lse`.
fn softmax_rows(scores: &mut [f32], n: usize, lse: &mut [f32]) {
    for (i, (row, lse)) in scores.chunks_mut(n).zip(lse.iter_mut()).enumerate() {
        let (seen, future) = row.split_at_mut(i + 1);
        let max = seen.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for v in seen.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        let inv = 1.0 / sum;
        seen.iter_mut().for_each(|v| *v *= inv);
        future.fill(0.0);
        *lse = max + sum.ln();
    }
}

/// Recompute the weights from saved log-sum-exps: `p_ij = exp(s_ij − lse_i)`, zero for `j > i`.
fn weights_from_lse(scores: &mut [f32], n: usize, lse: &[f32]) {
    for (i, (row, &lse)) in scores.chunks_mut(n).zip(lse).enumerate() {
        let (seen, future) = row.split_at_mut(i + 1);
        seen.iter_mut().for_each(|v| *v = (*v - lse).exp());
        future.fill(0.0);
    }
}

fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| {
        let mut pair = cell.borrow_mut();
        let (a, b) = &mut *pair;
        if a.len() < len {
            a.resize(len, 0.0);
            b.resize(len, 0.0);
        }
        f(&mut a[..len], &mut b[..len])
    })
}

/// Forward: `out [heads, rows, head_dim]` and `lse [heads, rows]` from `q [heads, …]`,
/// `k`, `v [kv_heads, …]` over sequences of `lengths` rows.
pub(crate) fn forward(
    shape: Heads,
    lengths: &[usize],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    lse: &mut [f32],
) {
    let d = shape.head_dim;
    let scale = 1.0 / (d as f32).sqrt();
    let (q, k, v) = (
        segments(q, lengths, d),
        segments(k, lengths, d),
        segments(v, lengths, d),
    );
    let mut outs = segments_mut(out, lengths, d);
    let mut lses = segments_mut(lse, lengths, 1);
    // One task per (kv head, sequence), holding the query heads of its group.
    let mut tasks: Vec<ForwardTask> = Vec::new();
    for g in 0..shape.kv_heads {
        for b in 0..lengths.len() {
            tasks.push(ForwardTask {
                g,
                b,
                heads: Vec::with_capacity(shape.groups()),
            });
        }
    }
    for h in (0..shape.heads).rev() {
        let g = h / shape.groups();
        for (b, (o, l)) in outs
            .pop()
            .expect("one output per head")
            .into_iter()
            .zip(lses.pop().expect("one lse per head"))
            .enumerate()
        {
            tasks[g * lengths.len() + b].heads.push(ForwardHead {
                q: q[h][b],
                out: o,
                lse: l,
            });
        }
    }
    tasks
        .into_par_iter()
        .for_each(|ForwardTask { g, b, heads }| {
            let n = lengths[b];
            if n == 0 {
                return;
            }
            with_scratch(n * n, |scores, _| {
                for ForwardHead {
                    q: qh,
                    out: o,
                    lse: l,
                } in heads
                {
                    scaled_scores(qh, k[g][b], n, d, scale, scores);
                    softmax_rows(scores, n, l);
                    matmul_serial(
                        o,
                        d,
                        View::new(scores, n, n),
                        View::new(v[g][b], n, d),
                        1.0,
                        Out::Set,
                    );
                }
            });
        });
}

/// The saved inputs of one attention call.
pub(crate) struct Saved<'a> {
    /// Rotated queries `[heads, rows, head_dim]`.
    pub q: &'a [f32],
    /// Rotated keys `[kv_heads, rows, head_dim]`.
    pub k: &'a [f32],
    /// Values `[kv_heads, rows, head_dim]`.
    pub v: &'a [f32],
    /// Log-sum-exps `[heads, rows]`.
    pub lse: &'a [f32],
}

/// The gradients of one attention call's inputs, written (not accumulated).
pub(crate) struct Grads<'a> {
    /// `∂L/∂q`, `[heads, rows, head_dim]`.
    pub dq: &'a mut [f32],
    /// `∂L/∂k`, `[kv_heads, rows, head_dim]`.
    pub dk: &'a mut [f32],
    /// `∂L/∂v`, `[kv_heads, rows, head_dim]`.
    pub dv: &'a mut [f32],
}

/// A query head within a forward task, and where its results go.
struct ForwardHead<'a> {
    q: &'a [f32],
    out: &'a mut [f32],
    lse: &'a mut [f32],
}

/// One (key/value head, sequence) of the forward.
struct ForwardTask<'a> {
    g: usize,
    b: usize,
    heads: Vec<ForwardHead<'a>>,
}

/// A query head within a backward task: its saved inputs and its gradient.
struct BackwardHead<'a> {
    q: &'a [f32],
    lse: &'a [f32],
    dout: &'a [f32],
    dq: &'a mut [f32],
}

/// One (key/value head, sequence) of the backward, owning that head's key/value gradients.
struct BackwardTask<'a> {
    g: usize,
    b: usize,
    dk: &'a mut [f32],
    dv: &'a mut [f32],
    heads: Vec<BackwardHead<'a>>,
}

/// Backward from `dout [heads, rows, head_dim]`.
pub(crate) fn backward(shape: Heads, lengths: &[usize], saved: Saved, dout: &[f32], grads: Grads) {
    let d = shape.head_dim;
    let scale = 1.0 / (d as f32).sqrt();
    let (q, k, v) = (
        segments(saved.q, lengths, d),
        segments(saved.k, lengths, d),
        segments(saved.v, lengths, d),
    );
    let (lse, dout) = (segments(saved.lse, lengths, 1), segments(dout, lengths, d));
    let mut dqs = segments_mut(grads.dq, lengths, d);
    let dks = segments_mut(grads.dk, lengths, d);
    let dvs = segments_mut(grads.dv, lengths, d);
    let mut tasks: Vec<BackwardTask> = Vec::new();
    for (g, (dk, dv)) in dks.into_iter().zip(dvs).enumerate() {
        for (b, (dk, dv)) in dk.into_iter().zip(dv).enumerate() {
            tasks.push(BackwardTask {
                g,
                b,
                dk,
                dv,
                heads: Vec::with_capacity(shape.groups()),
            });
        }
    }
    for h in (0..shape.heads).rev() {
        let g = h / shape.groups();
        for (b, dq) in dqs.pop().expect("one dq per head").into_iter().enumerate() {
            tasks[g * lengths.len() + b].heads.push(BackwardHead {
                q: q[h][b],
                lse: lse[h][b],
                dout: dout[h][b],
                dq,
            });
        }
    }
    tasks.into_par_iter().for_each(|task| {
        let BackwardTask {
            g,
            b,
            dk,
            dv,
            heads,
        } = task;
        let n = lengths[b];
        if n == 0 {
            return;
        }
        let (kh, vh) = (k[g][b], v[g][b]);
        with_scratch(n * n, |p, dp| {
            for (i, head) in heads.into_iter().enumerate() {
                let BackwardHead {
                    q: qh,
                    lse,
                    dout: doh,
                    dq,
                } = head;
                let mode = if i == 0 { Out::Set } else { Out::Add };
                scaled_scores(qh, kh, n, d, scale, p);
                weights_from_lse(p, n, lse);
                // dV += Pᵀ dO; dP = dO Vᵀ.
                matmul_serial(
                    dv,
                    d,
                    View::new(p, n, n).t(),
                    View::new(doh, n, d),
                    1.0,
                    mode,
                );
                matmul_serial(
                    dp,
                    n,
                    View::new(doh, n, d),
                    View::new(vh, n, d).t(),
                    1.0,
                    Out::Set,
                );
                // dS = P ∘ (dP − rowsum(P ∘ dP)).
                for (prow, dprow) in p.chunks_mut(n).zip(dp.chunks(n)) {
                    let dot: f32 = prow.iter().zip(dprow).map(|(a, b)| a * b).sum();
                    for (pv, dpv) in prow.iter_mut().zip(dprow) {
                        *pv *= dpv - dot;
                    }
                }
                // dQ = scale · dS K; dK += scale · dSᵀ Q.
                matmul_serial(
                    dq,
                    d,
                    View::new(p, n, n),
                    View::new(kh, n, d),
                    scale,
                    Out::Set,
                );
                matmul_serial(
                    dk,
                    d,
                    View::new(p, n, n).t(),
                    View::new(qh, n, d),
                    scale,
                    mode,
                );
            }
        });
    });
}
