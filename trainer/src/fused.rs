//! Fused CPU kernels, each with its backward, where candle's composed ops would allocate and
//! traverse a full tensor per step.
//!
//! Attention's `softmax(scale · q·kᵀ + causal mask)` was five element-wise passes forward (scale,
//! mask, max, exp, normalise) and more backward, over the largest tensor of a training step
//! (`[batch, heads, seq, seq]`). [`causal_softmax`] is one pass each way.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// `softmax(scale · scores + causal mask)` over the last dimension of `[…, seq, total]` scores:
/// row `i` of each `[seq, total]` block sees columns `0..=offset + i` (the positions before it,
/// `offset` of them cached), the rest get probability 0. Differentiable.
pub fn causal_softmax(scores: &Tensor, scale: f64, offset: usize) -> Result<Tensor> {
    scores.contiguous()?.apply_op1(CausalSoftmax {
        scale: scale as f32,
        offset,
    })
}

struct CausalSoftmax {
    scale: f32,
    offset: usize,
}

/// The contiguous f32 slice of a storage, or an error naming the op.
fn f32_slice<'a>(op: &str, storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op}: f32 tensors only")
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: contiguous tensors only")
    };
    Ok(&data[start..end])
}

/// `(seq, total)`: the last two dimensions.
fn block(op: &str, layout: &Layout) -> Result<(usize, usize)> {
    match layout.dims() {
        [.., seq, total] if *total > 0 => Ok((*seq, *total)),
        dims => candle_core::bail!("{op}: scores of shape {dims:?}"),
    }
}

impl CausalSoftmax {
    /// Columns row `r` (of the flattened rows) may see.
    fn visible(&self, row: usize, seq: usize, total: usize) -> usize {
        (self.offset + row % seq + 1).min(total)
    }
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "causal-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(self.name(), storage, layout)?;
        let (seq, total) = block(self.name(), layout)?;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(total)
            .zip(x.par_chunks(total))
            .enumerate()
            .for_each(|(r, (out, row))| {
                let visible = self.visible(r, seq, total);
                let max = row[..visible]
                    .iter()
                    .fold(f32::NEG_INFINITY, |m, &v| m.max(v * self.scale));
                let mut sum = 0f32;
                for (o, &v) in out[..visible].iter_mut().zip(&row[..visible]) {
                    *o = (v * self.scale - max).exp();
                    sum += *o;
                }
                let inverse = 1.0 / sum;
                out[..visible].iter_mut().for_each(|o| *o *= inverse);
            });
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, _scores: &Tensor, probs: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let backward = CausalSoftmaxBackward { scale: self.scale };
        Ok(Some(
            probs.apply_op2_no_bwd(&grad.contiguous()?, &backward)?,
        ))
    }
}

/// `d scores = scale · p ⊙ (g − Σ g ⊙ p)` per row (0 where `p` is).
struct CausalSoftmaxBackward {
    scale: f32,
}

impl CustomOp2 for CausalSoftmaxBackward {
    fn name(&self) -> &'static str {
        "causal-softmax-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let p = f32_slice(self.name(), s1, l1)?;
        let g = f32_slice(self.name(), s2, l2)?;
        let (_, total) = block(self.name(), l1)?;
        if p.len() != g.len() {
            candle_core::bail!(
                "{}: {} probabilities, {} gradients",
                self.name(),
                p.len(),
                g.len()
            );
        }
        let mut dx = vec![0f32; p.len()];
        dx.par_chunks_mut(total)
            .zip(p.par_chunks(total).zip(g.par_chunks(total)))
            .for_each(|(out, (p, g))| {
                let dot: f32 = p.iter().zip(g).map(|(p, g)| p * g).sum();
                for ((o, &p), &g) in out.iter_mut().zip(p).zip(g) {
                    *o = self.scale * p * (g - dot);
                }
            });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{D, Device, Tensor, Var};

    /// The composed form the kernel replaces: scale, add the causal mask, softmax.
    fn composed(scores: &Tensor, scale: f64, offset: usize) -> Tensor {
        let seq = scores.dim(2).unwrap();
        let mask = crate::model::causal_mask(seq, offset, &Device::Cpu).unwrap();
        let scaled = (scores * scale).unwrap().broadcast_add(&mask).unwrap();
        candle_nn::ops::softmax(&scaled, D::Minus1).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    #[test]
    fn values_and_gradients_match_the_composed_softmax() {
        for (seq, offset) in [(4, 2), (5, 0), (1, 6)] {
            let total = seq + offset;
            let scores = Var::randn(0f32, 3.0, (2, 3, seq, total), &Device::Cpu).unwrap();
            let weights = Tensor::randn(0f32, 1.0, (2, 3, seq, total), &Device::Cpu).unwrap();
            let fused = super::causal_softmax(scores.as_tensor(), 0.35, offset).unwrap();
            let plain = composed(scores.as_tensor(), 0.35, offset);
            assert!(max_diff(&fused, &plain) < 1e-6, "values ({seq}, {offset})");
            let grad = |probs: &Tensor| {
                let loss = (probs * &weights).unwrap().sum_all().unwrap();
                loss.backward()
                    .unwrap()
                    .get(scores.as_tensor())
                    .unwrap()
                    .clone()
            };
            assert!(
                max_diff(&grad(&fused), &grad(&plain)) < 1e-5,
                "gradients ({seq}, {offset})"
            );
        }
    }
}
