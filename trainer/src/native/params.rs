//! The Qwen2 parameter set as a typed struct over any payload (`&[f32]` weights, `Vec<f32>`
//! gradients, tensors), with the checkpoint name of every field written once.

use candle_core::{Layout, Storage, StorageRef, Tensor};

use crate::config::ModelConfig;

/// Checkpoint names of one layer's tensors (after `model.layers.{i}.`), in field order.
const LAYER_NAMES: [&str; 12] = [
    "input_layernorm.weight",
    "self_attn.q_proj.weight",
    "self_attn.q_proj.bias",
    "self_attn.k_proj.weight",
    "self_attn.k_proj.bias",
    "self_attn.v_proj.weight",
    "self_attn.v_proj.bias",
    "self_attn.o_proj.weight",
    "post_attention_layernorm.weight",
    "mlp.gate_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
];

/// One decoder layer's tensors.
#[derive(Clone, Debug)]
pub(crate) struct LayerParams<T> {
    pub ln1: T,
    pub wq: T,
    pub bq: T,
    pub wk: T,
    pub bk: T,
    pub wv: T,
    pub bv: T,
    pub wo: T,
    pub ln2: T,
    pub wg: T,
    pub wu: T,
    pub wd: T,
}

impl<T> LayerParams<T> {
    fn from_array([ln1, wq, bq, wk, bk, wv, bv, wo, ln2, wg, wu, wd]: [T; 12]) -> Self {
        LayerParams {
            ln1,
            wq,
            bq,
            wk,
            bk,
            wv,
            bv,
            wo,
            ln2,
            wg,
            wu,
            wd,
        }
    }

    fn into_array(self) -> [T; 12] {
        let LayerParams {
            ln1,
            wq,
            bq,
            wk,
            bk,
            wv,
            bv,
            wo,
            ln2,
            wg,
            wu,
            wd,
        } = self;
        [ln1, wq, bq, wk, bk, wv, bv, wo, ln2, wg, wu, wd]
    }
}

/// Every tensor of the model.
#[derive(Clone, Debug)]
pub(crate) struct Params<T> {
    pub embed: T,
    pub layers: Vec<LayerParams<T>>,
    pub norm: T,
    /// `None` when the LM head is tied to the embedding.
    pub lm_head: Option<T>,
}

impl<T> Params<T> {
    /// Build every field from its checkpoint name, in a fixed order.
    pub fn try_from_names<E>(
        config: &ModelConfig,
        mut f: impl FnMut(&str) -> Result<T, E>,
    ) -> Result<Self, E> {
        let embed = f("model.embed_tokens.weight")?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let mut fields = Vec::with_capacity(LAYER_NAMES.len());
            for name in LAYER_NAMES {
                fields.push(f(&format!("model.layers.{i}.{name}"))?);
            }
            let fields: [T; 12] = fields.try_into().ok().expect("twelve layer tensors");
            layers.push(LayerParams::from_array(fields));
        }
        let norm = f("model.norm.weight")?;
        let lm_head = if config.tie_word_embeddings {
            None
        } else {
            Some(f("lm_head.weight")?)
        };
        Ok(Params {
            embed,
            layers,
            norm,
            lm_head,
        })
    }

    /// Every field with its checkpoint name.
    pub fn into_named(self) -> Vec<(String, T)> {
        let mut out = vec![("model.embed_tokens.weight".to_string(), self.embed)];
        for (i, layer) in self.layers.into_iter().enumerate() {
            for (name, value) in LAYER_NAMES.iter().zip(layer.into_array()) {
                out.push((format!("model.layers.{i}.{name}"), value));
            }
        }
        out.push(("model.norm.weight".to_string(), self.norm));
        if let Some(head) = self.lm_head {
            out.push(("lm_head.weight".to_string(), head));
        }
        out
    }

    /// Apply `f` to every field (same order as [`Params::try_from_names`]).
    pub fn try_map<U, E>(self, mut f: impl FnMut(T) -> Result<U, E>) -> Result<Params<U>, E> {
        Ok(Params {
            embed: f(self.embed)?,
            layers: self
                .layers
                .into_iter()
                .map(|l| {
                    let mapped: Result<Vec<U>, E> =
                        l.into_array().into_iter().map(&mut f).collect();
                    let fields: [U; 12] = mapped?.try_into().ok().expect("twelve layer tensors");
                    Ok(LayerParams::from_array(fields))
                })
                .collect::<Result<_, E>>()?,
            norm: f(self.norm)?,
            lm_head: self.lm_head.map(f).transpose()?,
        })
    }

    /// Borrow every field.
    pub fn as_ref(&self) -> Params<&T> {
        Params {
            embed: &self.embed,
            layers: self
                .layers
                .iter()
                .map(|l| LayerParams {
                    ln1: &l.ln1,
                    wq: &l.wq,
                    bq: &l.bq,
                    wk: &l.wk,
                    bk: &l.bk,
                    wv: &l.wv,
                    bv: &l.bv,
                    wo: &l.wo,
                    ln2: &l.ln2,
                    wg: &l.wg,
                    wu: &l.wu,
                    wd: &l.wd,
                })
                .collect(),
            norm: &self.norm,
            lm_head: self.lm_head.as_ref(),
        }
    }
}

/// Weights as `f32` slices borrowed from CPU tensors.
pub(crate) type Weights<'a> = Params<&'a [f32]>;

/// Run `f` on the weights of `lookup` (name → tensor) read in place: the tensors' storage stays
/// read-locked for the call, nothing is copied.
pub(crate) fn with_weights<'t, R>(
    config: &ModelConfig,
    lookup: impl Fn(&str) -> Option<&'t Tensor>,
    f: impl FnOnce(&Weights) -> R,
) -> candle_core::Result<R> {
    let tensors = Params::try_from_names(config, |name| {
        lookup(name).ok_or_else(|| candle_core::Error::Msg(format!("no tensor {name}")))
    })?;
    let guards: Params<(StorageRef, &Layout)> =
        tensors.try_map(|t| Ok::<_, candle_core::Error>(t.storage_and_layout()))?;
    let borrowed = guards.as_ref();
    let weights = borrowed.try_map(|(storage, layout)| cpu_f32(storage, layout))?;
    Ok(f(&weights))
}

fn cpu_f32<'a>(storage: &'a Storage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    let Storage::Cpu(cpu) = storage else {
        candle_core::bail!("the native pass runs on CPU tensors only");
    };
    let data = cpu.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("the native pass needs contiguous weights"),
    }
}
