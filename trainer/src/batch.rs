//! Packing (prompt, completion) token sequences into right-padded training batches.

use candle_core::{Device, Tensor};

/// A prompt and one completion of it, as token ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sequence {
    /// Prompt ids.
    pub prompt: Vec<u32>,
    /// Completion ids (the tokens that are trained on).
    pub completion: Vec<u32>,
}

/// A batch ready for a teacher-forced forward pass.
#[derive(Debug)]
pub struct Packed {
    /// Input ids `[batch, len − 1]` (each sequence without its last token, right-padded).
    pub inputs: Tensor,
    /// Next-token targets `[batch, len − 1]`.
    pub targets: Tensor,
    /// 1.0 where the target is a completion token, else 0.0, `[batch, len − 1]`.
    pub mask: Tensor,
    /// Completion tokens per sequence.
    pub lengths: Vec<usize>,
    /// The trained positions (`mask` = 1) as indices into the flattened `[batch · (len − 1)]`
    /// grid, in row order: the only positions any loss reads, so the LM head and its
    /// log-softmax run on these alone (see [`crate::model::Qwen2::logits_at`]).
    pub positions: Tensor,
    /// The target token at each of `positions`.
    pub trained_targets: Tensor,
    /// The sequence (row) each of `positions` belongs to.
    pub rows: Vec<usize>,
}

/// Pack `sequences`, right-padding with `pad`. Causal attention keeps real tokens from seeing
/// the padding, and the mask keeps it out of every loss.
pub fn pack(sequences: &[&Sequence], pad: u32, device: &Device) -> candle_core::Result<Packed> {
    let width = sequences
        .iter()
        .map(|s| s.prompt.len() + s.completion.len())
        .max()
        .unwrap_or(1)
        .max(2)
        - 1;
    let mut inputs = Vec::with_capacity(sequences.len() * width);
    let mut targets = Vec::with_capacity(sequences.len() * width);
    let mut mask = Vec::with_capacity(sequences.len() * width);
    let mut positions = Vec::new();
    let mut trained_targets = Vec::new();
    let mut rows = Vec::new();
    for (row, s) in sequences.iter().enumerate() {
        let full: Vec<u32> = s.prompt.iter().chain(&s.completion).copied().collect();
        for t in 0..width {
            inputs.push(full.get(t).copied().unwrap_or(pad));
            targets.push(full.get(t + 1).copied().unwrap_or(pad));
            let position = t + 1;
            let trained = position >= s.prompt.len() && position < full.len();
            mask.push(if trained { 1f32 } else { 0f32 });
            if trained {
                positions.push((row * width + t) as u32);
                trained_targets.push(full[position]);
                rows.push(row);
            }
        }
    }
    let shape = (sequences.len(), width);
    Ok(Packed {
        inputs: Tensor::from_vec(inputs, shape, device)?,
        targets: Tensor::from_vec(targets, shape, device)?,
        mask: Tensor::from_vec(mask, shape, device)?,
        lengths: sequences.iter().map(|s| s.completion.len()).collect(),
        positions: Tensor::new(positions.as_slice(), device)?,
        trained_targets: Tensor::new(trained_targets.as_slice(), device)?,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_covers_exactly_the_completion() {
        let a = Sequence {
            prompt: vec![1, 2, 3],
            completion: vec![4, 5],
        };
        let b = Sequence {
            prompt: vec![1],
            completion: vec![6],
        };
        let p = pack(&[&a, &b], 0, &Device::Cpu).unwrap();
        assert_eq!(
            p.inputs.to_vec2::<u32>().unwrap(),
            vec![vec![1, 2, 3, 4], vec![1, 6, 0, 0]]
        );
        assert_eq!(
            p.targets.to_vec2::<u32>().unwrap(),
            vec![vec![2, 3, 4, 5], vec![6, 0, 0, 0]]
        );
        assert_eq!(
            p.mask.to_vec2::<f32>().unwrap(),
            vec![vec![0., 0., 1., 1.], vec![1., 0., 0., 0.]]
        );
        assert_eq!(p.positions.to_vec1::<u32>().unwrap(), vec![2, 3, 4]);
        assert_eq!(p.trained_targets.to_vec1::<u32>().unwrap(), vec![4, 5, 6]);
        assert_eq!(p.rows, vec![0, 0, 1]);
    }
}
