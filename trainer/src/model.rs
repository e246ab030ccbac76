//! A Qwen2-architecture causal LM (RMSNorm, rotary embeddings, grouped-query attention, SwiGLU)
//! built only from differentiable candle ops, so that every weight trains.
//!
//! Tensor names follow the Hugging Face checkpoints (`model.layers.0.self_attn.q_proj.weight`, …),
//! so a `VarMap` built here saves as a checkpoint that `transformers` loads, and a downloaded
//! Qwen2 checkpoint loads here.

use candle_core::{D, Device, Module, Tensor};
use candle_nn::{Init, VarBuilder};

use crate::config::ModelConfig;

/// Standard deviation of the initial weights (the Qwen2 `initializer_range`).
pub const INIT_STD: f64 = 0.02;

/// A linear layer `y = x Wᵀ + b` with HF's `[out, in]` weight layout.
#[derive(Clone, Debug)]
struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    fn new(vb: VarBuilder, input: usize, output: usize, bias: bool) -> candle_core::Result<Self> {
        let init = Init::Randn {
            mean: 0.0,
            stdev: INIT_STD,
        };
        let weight = vb.get_with_hints((output, input), "weight", init)?;
        let bias = if bias {
            Some(vb.get_with_hints(output, "bias", Init::Const(0.0))?)
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        // Fold the leading dimensions into one so the product is a single 2-D gemm.
        let dims = xs.dims().to_vec();
        let (input, lead) = dims
            .split_last()
            .expect("linear input has a last dimension");
        let rows: usize = lead.iter().product();
        let out = xs.reshape((rows, *input))?.matmul(&self.weight.t()?)?;
        let out = match &self.bias {
            Some(b) => out.broadcast_add(b)?,
            None => out,
        };
        let mut shape = lead.to_vec();
        shape.push(self.weight.dim(0)?);
        out.reshape(shape)
    }
}

/// RMSNorm written out (`x / sqrt(mean(x²) + ε) · w`); candle's fused kernel has no backward.
#[derive(Clone, Debug)]
struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn new(vb: VarBuilder, size: usize, eps: f64) -> candle_core::Result<Self> {
        let weight = vb.get_with_hints(size, "weight", Init::Const(1.0))?;
        Ok(RmsNorm { weight, eps })
    }
}

impl Module for RmsNorm {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let mean_square = xs.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = xs.broadcast_div(&(mean_square + self.eps)?.sqrt()?)?;
        normed.broadcast_mul(&self.weight)
    }
}

/// Rotary position tables, `[max_positions, head_dim / 2]`.
#[derive(Clone, Debug)]
struct Rotary {
    cos: Tensor,
    sin: Tensor,
}

impl Rotary {
    fn new(cfg: &ModelConfig, device: &Device) -> candle_core::Result<Self> {
        // The native pass's tables: one definition of the rotary angles for both.
        let positions = cfg.max_position_embeddings;
        let tables = crate::native::RotaryTables::new(cfg.head_dim(), cfg.rope_theta, positions);
        let shape = (positions, tables.half);
        Ok(Rotary {
            cos: Tensor::from_vec(tables.cos, shape, device)?,
            sin: Tensor::from_vec(tables.sin, shape, device)?,
        })
    }

    /// Rotate `[batch, heads, seq, head_dim]` tensors starting at position `offset`.
    fn apply(&self, xs: &Tensor, offset: usize) -> candle_core::Result<Tensor> {
        let seq = xs.dim(2)?;
        let cos = self.cos.narrow(0, offset, seq)?;
        let sin = self.sin.narrow(0, offset, seq)?;
        // rope_slow is the composed (differentiable) form of the rotary kernel.
        candle_nn::rotary_emb::rope_slow(&xs.contiguous()?, &cos, &sin)
    }
}

#[derive(Clone, Debug)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn new(cfg: &ModelConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let head_dim = cfg.head_dim();
        let (h, q, kv) = (
            cfg.hidden_size,
            cfg.num_attention_heads * head_dim,
            cfg.num_key_value_heads * head_dim,
        );
        Ok(Attention {
            q_proj: Linear::new(vb.pp("q_proj"), h, q, true)?,
            k_proj: Linear::new(vb.pp("k_proj"), h, kv, true)?,
            v_proj: Linear::new(vb.pp("v_proj"), h, kv, true)?,
            o_proj: Linear::new(vb.pp("o_proj"), q, h, false)?,
            heads: cfg.num_attention_heads,
            kv_heads: cfg.num_key_value_heads,
            head_dim,
        })
    }

    fn split_heads(&self, xs: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
        let (b, t, _) = xs.dims3()?;
        xs.reshape((b, t, heads, self.head_dim))?.transpose(1, 2)
    }

    /// Repeat each key/value head for the query heads that share it.
    fn repeat_kv(&self, xs: Tensor) -> candle_core::Result<Tensor> {
        let groups = self.heads / self.kv_heads;
        if groups == 1 {
            return Ok(xs);
        }
        let (b, kv, s, d) = xs.dims4()?;
        xs.unsqueeze(2)?
            .expand((b, kv, groups, s, d))?
            .reshape((b, kv * groups, s, d))
    }

    fn forward(
        &self,
        xs: &Tensor,
        rotary: &Rotary,
        mask: Option<&Tensor>,
        offset: usize,
        cache: &mut Option<(Tensor, Tensor)>,
    ) -> candle_core::Result<Tensor> {
        let (b, t, _) = xs.dims3()?;
        let q = rotary.apply(
            &self.split_heads(&self.q_proj.forward(xs)?, self.heads)?,
            offset,
        )?;
        let k = rotary.apply(
            &self.split_heads(&self.k_proj.forward(xs)?, self.kv_heads)?,
            offset,
        )?;
        let v = self
            .split_heads(&self.v_proj.forward(xs)?, self.kv_heads)?
            .contiguous()?;
        let (k, v) = match cache.take() {
            Some((k0, v0)) => (Tensor::cat(&[&k0, &k], 2)?, Tensor::cat(&[&v0, &v], 2)?),
            None => (k, v),
        };
        *cache = Some((k.clone(), v.clone()));
        let groups = self.heads / self.kv_heads;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        if xs.device().is_cpu() {
            // Grouped-query attention without copying K and V per query head: the `groups` query
            // heads that share a key/value head are stacked as rows of one product.
            let total = k.dim(2)?;
            let q = q
                .contiguous()?
                .reshape((b, self.kv_heads, groups * t, self.head_dim))?;
            let scores = q
                .matmul(&k.t()?.contiguous()?)?
                .reshape((b, self.heads, t, total))?;
            let weights = crate::fused::causal_softmax(&scores, scale, offset)?.reshape((
                b,
                self.kv_heads,
                groups * t,
                total,
            ))?;
            let out = weights
                .matmul(&v)?
                .reshape((b, self.heads, t, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b, t, self.heads * self.head_dim))?;
            return self.o_proj.forward(&out);
        }
        let k = self.repeat_kv(k)?;
        let v = self.repeat_kv(v)?;
        let scores = q.matmul(&k.t()?.contiguous()?)?;
        let scores = (scores * scale)?;
        let scores = match mask {
            Some(m) => scores.broadcast_add(m)?,
            None => scores,
        };
        // The composed softmax (softmax_last_dim is a fused kernel with no backward).
        let weights = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let out = weights
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, t, self.heads * self.head_dim))?;
        self.o_proj.forward(&out)
    }
}

#[derive(Clone, Debug)]
struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl Mlp {
    fn new(cfg: &ModelConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        Ok(Mlp {
            gate_proj: Linear::new(vb.pp("gate_proj"), h, i, false)?,
            up_proj: Linear::new(vb.pp("up_proj"), h, i, false)?,
            down_proj: Linear::new(vb.pp("down_proj"), i, h, false)?,
        })
    }
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let gate = candle_nn::ops::silu(&self.gate_proj.forward(xs)?)?;
        self.down_proj.forward(&(gate * self.up_proj.forward(xs)?)?)
    }
}

#[derive(Clone, Debug)]
struct Layer {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

impl Layer {
    fn new(cfg: &ModelConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Layer {
            input_layernorm: RmsNorm::new(
                vb.pp("input_layernorm"),
                cfg.hidden_size,
                cfg.rms_norm_eps,
            )?,
            self_attn: Attention::new(cfg, vb.pp("self_attn"))?,
            post_attention_layernorm: RmsNorm::new(
                vb.pp("post_attention_layernorm"),
                cfg.hidden_size,
                cfg.rms_norm_eps,
            )?,
            mlp: Mlp::new(cfg, vb.pp("mlp"))?,
        })
    }

    fn forward(
        &self,
        xs: &Tensor,
        rotary: &Rotary,
        mask: Option<&Tensor>,
        offset: usize,
        cache: &mut Option<(Tensor, Tensor)>,
    ) -> candle_core::Result<Tensor> {
        let attn = self.self_attn.forward(
            &self.input_layernorm.forward(xs)?,
            rotary,
            mask,
            offset,
            cache,
        )?;
        let xs = (xs + attn)?;
        let mlp = self
            .mlp
            .forward(&self.post_attention_layernorm.forward(&xs)?)?;
        xs + mlp
    }
}

/// The per-layer key/value cache of one decoding run.
#[derive(Clone, Debug, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
}

impl KvCache {
    /// Positions already cached.
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map_or(0, |(k, _)| k.dim(2).unwrap_or(0))
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Repeat every cached sequence `n` times along the batch (one prompt, `n` rollouts).
    pub fn repeat_batch(&self, n: usize) -> candle_core::Result<KvCache> {
        let layers = self
            .layers
            .iter()
            .map(|l| {
                l.as_ref()
                    .map(|(k, v)| {
                        Ok::<_, candle_core::Error>((
                            k.repeat((n, 1, 1, 1))?,
                            v.repeat((n, 1, 1, 1))?,
                        ))
                    })
                    .transpose()
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(KvCache { layers })
    }
}

/// The Qwen2 causal LM.
#[derive(Clone, Debug)]
pub struct Qwen2 {
    embed_tokens: Tensor,
    layers: Vec<Layer>,
    norm: RmsNorm,
    lm_head: Option<Linear>,
    rotary: Rotary,
    config: ModelConfig,
}

impl Qwen2 {
    /// Build the model, taking (or creating, with Qwen2's initialisation) its weights from `vb`.
    pub fn new(config: &ModelConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let model = vb.pp("model");
        let embed_tokens = model.get_with_hints(
            (config.vocab_size, config.hidden_size),
            "embed_tokens.weight",
            Init::Randn {
                mean: 0.0,
                stdev: INIT_STD,
            },
        )?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::new(config, model.pp("layers").pp(i)))
            .collect::<candle_core::Result<_>>()?;
        let norm = RmsNorm::new(model.pp("norm"), config.hidden_size, config.rms_norm_eps)?;
        let lm_head = if config.tie_word_embeddings {
            None
        } else {
            Some(Linear::new(
                vb.pp("lm_head"),
                config.hidden_size,
                config.vocab_size,
                false,
            )?)
        };
        Ok(Qwen2 {
            embed_tokens,
            layers,
            norm,
            lm_head,
            rotary: Rotary::new(config, vb.device())?,
            config: config.clone(),
        })
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        self.embed_tokens.device()
    }

    /// The configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// A fresh cache for decoding.
    pub fn new_cache(&self) -> KvCache {
        KvCache {
            layers: vec![None; self.layers.len()],
        }
    }

    /// Logits `[batch, seq, vocab]` for token ids `[batch, seq]` placed after the `cache.len()`
    /// positions already in `cache` (which is extended). Padding must come at the end of a row:
    /// causal attention then keeps real tokens from seeing it.
    pub fn forward(&self, ids: &Tensor, cache: &mut KvCache) -> candle_core::Result<Tensor> {
        self.project(&self.hidden(ids, cache)?)
    }

    /// Logits `[batch, vocab]` of the last position only (what the next token is drawn from), the
    /// cache extended as [`Qwen2::forward`] does: a prompt's prefill runs the LM head once.
    pub fn forward_last(&self, ids: &Tensor, cache: &mut KvCache) -> candle_core::Result<Tensor> {
        let hidden = self.hidden(ids, cache)?;
        let seq = hidden.dim(1)?;
        self.project_rows(&hidden.narrow(1, seq - 1, 1)?.squeeze(1)?)
    }

    /// Logits `[n, vocab]` at `positions` (indices into the flattened `[batch · seq]` grid) of a
    /// cache-free forward pass over `ids`: what a loss over some positions needs, with the LM
    /// head and everything after it run on those positions only.
    pub fn logits_at(&self, ids: &Tensor, positions: &Tensor) -> candle_core::Result<Tensor> {
        let hidden = self.hidden(ids, &mut self.new_cache())?;
        let (b, t, h) = hidden.dims3()?;
        self.project_rows(&hidden.reshape((b * t, h))?.index_select(positions, 0)?)
    }

    /// The final (normed) hidden states `[batch, seq, hidden]`; see [`Qwen2::forward`].
    fn hidden(&self, ids: &Tensor, cache: &mut KvCache) -> candle_core::Result<Tensor> {
        let (_, seq) = ids.dims2()?;
        let offset = cache.len();
        if offset + seq > self.config.max_position_embeddings {
            candle_core::bail!(
                "sequence of {} positions exceeds max_position_embeddings {}",
                offset + seq,
                self.config.max_position_embeddings
            );
        }
        // The CPU kernel masks by position itself; other devices add this mask.
        let mask = if seq > 1 && !ids.device().is_cpu() {
            Some(causal_mask(seq, offset, ids.device())?)
        } else {
            None
        };
        let mut xs = self.embed(ids)?;
        for (layer, slot) in self.layers.iter().zip(cache.layers.iter_mut()) {
            xs = layer.forward(&xs, &self.rotary, mask.as_ref(), offset, slot)?;
        }
        self.norm.forward(&xs)
    }

    /// Logits for a whole batch with no cache (training).
    pub fn forward_full(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        self.forward(ids, &mut self.new_cache())
    }

    fn embed(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t) = ids.dims2()?;
        self.embed_tokens
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, t, self.config.hidden_size))
    }

    fn project(&self, hidden: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t, h) = hidden.dims3()?;
        self.project_rows(&hidden.reshape((b * t, h))?)?
            .reshape((b, t, self.config.vocab_size))
    }

    /// `[n, hidden]` → `[n, vocab]`.
    fn project_rows(&self, hidden: &Tensor) -> candle_core::Result<Tensor> {
        match &self.lm_head {
            Some(head) => head.forward(hidden),
            None => hidden.matmul(&self.embed_tokens.t()?),
        }
    }
}

/// `[seq, offset + seq]` additive mask: 0 where position `offset + i` may see `j`, −∞ after.
pub(crate) fn causal_mask(
    seq: usize,
    offset: usize,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let total = offset + seq;
    let values: Vec<f32> = (0..seq)
        .flat_map(|i| {
            (0..total).map(move |j| {
                if j > offset + i {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Tensor::from_vec(values, (seq, total), device)
}
