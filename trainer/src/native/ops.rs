//! The element-wise and row-wise kernels of the native pass, each with its backward, each one
//! pass over memory (where candle composes several tensor ops, each allocating its output).

use rayon::prelude::*;

/// Rows per parallel work item: small rows are grouped so a task is worth its scheduling.
fn rows_per_task(width: usize) -> usize {
    (4096 / width.max(1)).max(1)
}

/// RMSNorm forward over `[rows, width]`: `y = x · r · w` with `r = 1/√(mean(x²) + ε)` per row
/// (kept for the backward).
pub(crate) fn rms_norm(x: &[f32], w: &[f32], eps: f32, y: &mut [f32], r: &mut [f32]) {
    let width = w.len();
    y.par_chunks_mut(width)
        .zip(r.par_iter_mut())
        .zip(x.par_chunks(width))
        .with_min_len(rows_per_task(width))
        .for_each(|((y, r), x)| {
            let mean_square = x.iter().map(|v| v * v).sum::<f32>() / width as f32;
            *r = 1.0 / (mean_square + eps).sqrt();
            for ((y, x), w) in y.iter_mut().zip(x).zip(w) {
                *y = x * *r * w;
            }
        });
}

/// RMSNorm backward: `dx += ∂L/∂x` (accumulated: `dx` already holds the residual's gradient)
/// and `dw += ∂L/∂w`, from the output gradient `dy`.
pub(crate) fn rms_norm_backward(
    x: &[f32],
    w: &[f32],
    r: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    dw: &mut [f32],
) {
    let width = w.len();
    let chunk = rows_per_task(width) * 4;
    let partial = dx
        .par_chunks_mut(width * chunk)
        .zip(x.par_chunks(width * chunk))
        .zip(dy.par_chunks(width * chunk))
        .zip(r.par_chunks(chunk))
        .map(|(((dx, x), dy), r)| {
            let mut dw = vec![0f32; width];
            for (((dx, x), dy), &r) in dx
                .chunks_mut(width)
                .zip(x.chunks(width))
                .zip(dy.chunks(width))
                .zip(r)
            {
                // y_j = x_j r w_j, r = (Σx²/n + ε)^-½, so ∂r/∂x_j = −r³ x_j / n.
                let dot: f32 = dy.iter().zip(w).zip(x).map(|((d, w), x)| d * w * x).sum();
                let k = r * r * r * dot / width as f32;
                for j in 0..width {
                    dx[j] += dy[j] * w[j] * r - k * x[j];
                    dw[j] += dy[j] * x[j] * r;
                }
            }
            dw
        })
        .collect::<Vec<_>>();
    add_in_order(dw, partial);
}

/// Add the per-block partial sums into `out` block by block, in the blocks' order. Not rayon's
/// `reduce`: its tree follows work stealing, so float sums (and with them a training run) would
/// differ from run to run in the last bits, and then, a few hundred steps on, visibly.
fn add_in_order(out: &mut [f32], partials: Vec<Vec<f32>>) {
    let mut total = vec![0f32; out.len()];
    for partial in partials {
        for (t, p) in total.iter_mut().zip(partial) {
            *t += p;
        }
    }
    for (o, t) in out.iter_mut().zip(total) {
        *o += t;
    }
}

/// Column sums of `[rows, width]` added into `out` (a bias's gradient).
pub(crate) fn add_column_sums(x: &[f32], out: &mut [f32]) {
    let width = out.len();
    let partial = x
        .par_chunks(width * rows_per_task(width) * 4)
        .map(|block| {
            let mut sum = vec![0f32; width];
            for row in block.chunks(width) {
                for (s, v) in sum.iter_mut().zip(row) {
                    *s += v;
                }
            }
            sum
        })
        .collect::<Vec<_>>();
    add_in_order(out, partial);
}

/// Rotary tables `[positions, head_dim / 2]` (cos, sin), one source for the native pass and
/// for the candle model.
#[derive(Clone, Debug)]
pub(crate) struct RotaryTables {
    /// `cos(p · θ_i)`.
    pub(crate) cos: Vec<f32>,
    /// `sin(p · θ_i)`.
    pub(crate) sin: Vec<f32>,
    /// `head_dim / 2`.
    pub(crate) half: usize,
}

impl RotaryTables {
    /// The tables of Qwen2's rotary embedding (`θ_i = base^(−2i/head_dim)`), computed in `f32`
    /// as Hugging Face does.
    pub(crate) fn new(head_dim: usize, base: f64, positions: usize) -> Self {
        let half = head_dim / 2;
        let inv_freq: Vec<f32> = (0..half)
            .map(|i| 1.0 / base.powf(2.0 * i as f64 / head_dim as f64) as f32)
            .collect();
        let mut cos = Vec::with_capacity(positions * half);
        let mut sin = Vec::with_capacity(positions * half);
        for p in 0..positions {
            for f in &inv_freq {
                let angle = p as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        RotaryTables { cos, sin, half }
    }

    /// Rotate one head vector at `position` in place (`x·cos + rotate_half(x)·sin`).
    fn rotate(&self, x: &mut [f32], position: usize) {
        let h = self.half;
        let (cos, sin) = self.at(position);
        for i in 0..h {
            let (a, b) = (x[i], x[i + h]);
            x[i] = a * cos[i] - b * sin[i];
            x[i + h] = b * cos[i] + a * sin[i];
        }
    }

    /// The transpose of [`RotaryTables::rotate`] (how a gradient goes back through it).
    fn rotate_back(&self, x: &mut [f32], position: usize) {
        let h = self.half;
        let (cos, sin) = self.at(position);
        for i in 0..h {
            let (a, b) = (x[i], x[i + h]);
            x[i] = a * cos[i] + b * sin[i];
            x[i + h] = b * cos[i] - a * sin[i];
        }
    }

    fn at(&self, position: usize) -> (&[f32], &[f32]) {
        let range = position * self.half..(position + 1) * self.half;
        (&self.cos[range.clone()], &self.sin[range])
    }
}

/// Add `bias` to one `[heads · head_dim]` row and rotate each head at `position` (the decoder's
/// row layout; training uses [`to_heads`]).
pub(crate) fn bias_rotate_row(
    row: &mut [f32],
    bias: &[f32],
    rotary: &RotaryTables,
    position: usize,
    head_dim: usize,
) {
    for (a, b) in row.iter_mut().zip(bias) {
        *a += b;
    }
    for head in row.chunks_mut(head_dim) {
        rotary.rotate(head, position);
    }
}

/// `[rows, heads · head_dim]` (a projection's output) plus `bias`, rotated at each row's
/// position when `rotary` is given, laid out head-major `[heads, rows, head_dim]` for attention.
pub(crate) fn to_heads(
    rows: &[f32],
    bias: Option<&[f32]>,
    rotary: Option<&RotaryTables>,
    positions: &[usize],
    head_dim: usize,
    out: &mut [f32],
) {
    let n = positions.len();
    let width = rows.len() / n.max(1);
    out.par_chunks_mut(n * head_dim)
        .enumerate()
        .for_each(|(head, out)| {
            let columns = head * head_dim..(head + 1) * head_dim;
            for (t, dst) in out.chunks_mut(head_dim).enumerate() {
                dst.copy_from_slice(&rows[t * width..][columns.clone()]);
                if let Some(bias) = bias {
                    for (d, b) in dst.iter_mut().zip(&bias[columns.clone()]) {
                        *d += b;
                    }
                }
                if let Some(rotary) = rotary {
                    rotary.rotate(dst, positions[t]);
                }
            }
        });
}

/// The inverse layout move of [`to_heads`]: head-major `[heads, rows, head_dim]` back to
/// `[rows, heads · head_dim]`, each head vector rotated back when `rotary` is given (for
/// gradients; the bias's gradient is the column sum of the result).
pub(crate) fn to_rows(
    heads: &[f32],
    rotary: Option<&RotaryTables>,
    positions: &[usize],
    head_dim: usize,
    out: &mut [f32],
) {
    let n = positions.len();
    let count = heads.len() / (n * head_dim).max(1);
    out.par_chunks_mut(count * head_dim)
        .enumerate()
        .with_min_len(rows_per_task(count * head_dim))
        .for_each(|(t, row)| {
            for (head, dst) in row.chunks_mut(head_dim).enumerate() {
                dst.copy_from_slice(&heads[(head * n + t) * head_dim..][..head_dim]);
                if let Some(rotary) = rotary {
                    rotary.rotate_back(dst, positions[t]);
                }
            }
        });
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// SwiGLU: `h = silu(gate) · up`.
pub(crate) fn swiglu(gate: &[f32], up: &[f32], h: &mut [f32]) {
    h.par_chunks_mut(4096)
        .zip(gate.par_chunks(4096))
        .zip(up.par_chunks(4096))
        .for_each(|((h, g), u)| {
            for ((h, &g), &u) in h.iter_mut().zip(g).zip(u) {
                *h = g * sigmoid(g) * u;
            }
        });
}

/// SwiGLU backward in place: `gate` becomes `∂L/∂gate`, `up` becomes `∂L/∂up`, from `dh`.
pub(crate) fn swiglu_backward(gate: &mut [f32], up: &mut [f32], dh: &[f32]) {
    gate.par_chunks_mut(4096)
        .zip(up.par_chunks_mut(4096))
        .zip(dh.par_chunks(4096))
        .for_each(|((g, u), dh)| {
            for ((g, u), &d) in g.iter_mut().zip(u).zip(dh) {
                let s = sigmoid(*g);
                let silu = *g * s;
                let dgate = d * *u * s * (1.0 + *g * (1.0 - s));
                *u = d * silu;
                *g = dgate;
            }
        });
}

/// Log-softmax statistics of each row of `logits` `[rows, vocab]`: (log-probability of the
/// row's target, entropy, log-sum-exp).
pub(crate) fn log_softmax_stats(
    logits: &[f32],
    targets: &[u32],
    vocab: usize,
) -> Vec<(f32, f32, f32)> {
    logits
        .par_chunks(vocab)
        .zip(targets.par_iter())
        .map(|(z, &target)| {
            let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = z.iter().map(|v| (v - max).exp()).sum();
            let lse = max + sum.ln();
            // H = −Σ p·(z − lse) = lse − Σ p·z.
            let mean_z: f32 = z.iter().map(|v| (v - lse).exp() * v).sum();
            (z[target as usize] - lse, lse - mean_z, lse)
        })
        .collect()
}

/// Turn `logits` into `∂L/∂logits` in place, for `L = Σ_rows dlogp·logp(target) + dent·H`:
/// `∂logp_y/∂z_j = δ_jy − p_j` and `∂H/∂z_j = −p_j (log p_j + H)`.
pub(crate) fn log_softmax_backward(
    logits: &mut [f32],
    targets: &[u32],
    stats: &[(f32, f32, f32)],
    dlogp: &[f32],
    dentropy: &[f32],
    vocab: usize,
) {
    logits
        .par_chunks_mut(vocab)
        .enumerate()
        .for_each(|(row, z)| {
            let (_, entropy, lse) = stats[row];
            let (a, e) = (dlogp[row], dentropy[row]);
            for v in z.iter_mut() {
                let logp = *v - lse;
                let p = logp.exp();
                *v = -a * p - e * p * (logp + entropy);
            }
            z[targets[row] as usize] += a;
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotating_back_undoes_a_rotation() {
        let tables = RotaryTables::new(8, 10_000.0, 16);
        let original: Vec<f32> = (0..8).map(|i| i as f32 - 3.5).collect();
        let mut x = original.clone();
        tables.rotate(&mut x, 11);
        assert!(x.iter().zip(&original).any(|(a, b)| (a - b).abs() > 1e-3));
        tables.rotate_back(&mut x, 11);
        for (a, b) in x.iter().zip(&original) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    /// The column sums (a bias's and a norm weight's gradient) come out bit for bit the same
    /// whatever the thread count and however the work is stolen.
    #[test]
    fn parallel_sums_are_the_same_bits_on_any_thread_count() {
        let (rows, width) = (3_000, 64);
        let x: Vec<f32> = (0..rows * width)
            .map(|i| ((i as f32) * 0.731).sin() * 10f32.powi((i % 7) as i32 - 3))
            .collect();
        let w: Vec<f32> = (0..width).map(|i| 1.0 + (i as f32 * 0.1).cos()).collect();
        let r: Vec<f32> = (0..rows)
            .map(|i| 0.5 + (i as f32 * 0.01).sin().abs())
            .collect();
        let dy: Vec<f32> = x.iter().map(|v| v.cos()).collect();
        let sums = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut column = vec![0f32; width];
                add_column_sums(&x, &mut column);
                let mut dx = vec![0f32; rows * width];
                let mut dw = vec![0f32; width];
                rms_norm_backward(&x, &w, &r, &dy, &mut dx, &mut dw);
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
                (bits(&column), bits(&dw), bits(&dx))
            })
        };
        let one = sums(1);
        for threads in [2, 3, 8, 8, 8] {
            assert!(sums(threads) == one, "{threads} threads");
        }
    }

    #[test]
    fn entropy_of_a_uniform_row_is_log_vocab() {
        let stats = log_softmax_stats(&[2.0; 8], &[3], 8);
        let (logp, entropy, _) = stats[0];
        assert!((logp + 8f32.ln()).abs() < 1e-6);
        assert!((entropy - 8f32.ln()).abs() < 1e-6);
    }
}
