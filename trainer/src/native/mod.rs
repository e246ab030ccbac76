//! The native CPU pass: Qwen2's forward and hand-derived backward over `f32` slices, for
//! training on the CPU at the speed of the hardware rather than of a tensor library's
//! per-operation overhead.
//!
//! It computes exactly what the candle model computes (the same weights, read in place from the
//! policy's variables; the same rotary tables; the same loss), but
//! - packs sequences back to back, so no padded position is computed;
//! - runs the final norm and the LM head on the trained positions only;
//! - fuses each element-wise step (RMSNorm, bias + rotary + head layout, SwiGLU, log-softmax)
//!   into one pass with its own backward, instead of a chain of allocating tensor ops;
//! - recomputes attention weights in the backward from saved log-sum-exps;
//! - calls the `gemm` kernels directly, on the caller's buffers;
//! - decodes with a per-sequence key/value cache ([`Decoder`]): prompts of different lengths
//!   batch without padding.
//!
//! Its gradients are checked against candle's autograd on the same batch (see the tests in
//! `crate::objective`); candle remains the path for other devices.

mod attention;
mod decode;
mod ops;
mod params;
mod pass;
mod pool;

pub(crate) use decode::Decoder;
pub(crate) use ops::RotaryTables;
pub(crate) use params::{Weights, with_weights};

/// Run `f` on `policy`'s weights, read in place.
pub(crate) fn with_policy_weights<R>(
    policy: &crate::policy::Policy,
    f: impl FnOnce(&Weights) -> R,
) -> candle_core::Result<R> {
    with_weights(
        policy.model.config(),
        |name| policy.vars.get(name).map(|v| v.as_tensor()),
        f,
    )
}
pub(crate) use pass::{Batch, Saved, backward, forward, forward_stats};
