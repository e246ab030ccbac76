//! A policy: the model, its trainable variables and its tokenizer; built fresh (`--init`) or
//! loaded from a Hugging Face model directory, and saved in the same layout.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::config::ModelConfig;
use crate::model::{INIT_STD, Qwen2};
use crate::tokenizer::TextCodec;
use crate::{TrainError, st};

/// The model, its variables by name, and its tokenizer.
pub struct Policy {
    /// The trainable model (its weights are the variables of `vars`).
    pub model: Qwen2,
    /// The variables, by checkpoint name.
    pub vars: BTreeMap<String, Var>,
    /// The tokenizer.
    pub codec: TextCodec,
    /// The device everything lives on.
    pub device: Device,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("config", self.model.config())
            .field("parameters", &self.parameter_count())
            .finish()
    }
}

/// Build a model over `vars`: every weight the model needs must be there (a tied
/// `lm_head.weight` is dropped; other tensors the model does not read are kept and saved back).
fn build(
    config: &ModelConfig,
    mut vars: BTreeMap<String, Var>,
    device: &Device,
) -> Result<(Qwen2, BTreeMap<String, Var>), TrainError> {
    if config.tie_word_embeddings {
        vars.remove("lm_head.weight");
    }
    let varmap = VarMap::new();
    varmap
        .data()
        .lock()
        .expect("varmap lock")
        .extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    let model = Qwen2::new(config, VarBuilder::from_varmap(&varmap, DType::F32, device))
        .map_err(|e| TrainError::Checkpoint(format!("the weights do not fit the config: {e}")))?;
    let data = varmap.data().lock().expect("varmap lock");
    if let Some(missing) = data.keys().find(|k| !vars.contains_key(*k)) {
        return Err(TrainError::Checkpoint(format!(
            "tensor {missing} is missing from the checkpoint"
        )));
    }
    Ok((model, vars))
}

/// The names and shapes of a configuration's weights.
pub fn parameter_shapes(config: &ModelConfig) -> Result<Vec<(String, Vec<usize>)>, TrainError> {
    let varmap = VarMap::new();
    // Built on zeros: only the names and shapes are wanted.
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    Qwen2::new(config, vb)?;
    let data = varmap.data().lock().expect("varmap lock");
    let mut shapes: Vec<_> = data
        .iter()
        .map(|(k, v)| (k.clone(), v.dims().to_vec()))
        .collect();
    shapes.sort();
    Ok(shapes)
}

/// Deterministic initial values: ones for norms, zeros for biases, N(0, 0.02) elsewhere, each
/// tensor from its own ChaCha stream keyed by (seed, name).
fn initial_var(name: &str, shape: &[usize], seed: u64, device: &Device) -> Result<Var, TrainError> {
    let count: usize = shape.iter().product();
    if name.ends_with("norm.weight") {
        return Ok(Var::ones(shape, DType::F32, device)?);
    }
    if name.ends_with(".bias") {
        return Ok(Var::zeros(shape, DType::F32, device)?);
    }
    let digest = Sha256::digest(format!("triad-init\0{seed}\0{name}"));
    let mut rng = ChaCha8Rng::from_seed(digest.into());
    let values: Vec<f32> = (0..count)
        .map(|_| (normal(&mut rng) * INIT_STD) as f32)
        .collect();
    Ok(Var::from_vec(values, shape, device)?)
}

/// A standard normal draw (Box–Muller) from the raw stream, so values never depend on a
/// distribution crate's version.
pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
    use rand::Rng;
    let u1 = ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl Policy {
    /// A randomly initialised model of `config` (deterministic for `seed`).
    pub fn init(
        config: &ModelConfig,
        codec: TextCodec,
        seed: u64,
        device: &Device,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        let vars = parameter_shapes(config)?
            .into_iter()
            .map(|(name, shape)| {
                let var = initial_var(&name, &shape, seed, device)?;
                Ok((name, var))
            })
            .collect::<Result<_, TrainError>>()?;
        let (model, vars) = build(config, vars, device)?;
        Ok(Policy {
            model,
            vars,
            codec,
            device: device.clone(),
        })
    }

    /// Load a Hugging Face model directory (`config.json`, `model.safetensors` or a sharded
    /// index, `tokenizer.json`). Weights are trained in f32 whatever their stored dtype.
    ///
    /// Tensors are read one at a time straight into their variables, so loading holds the
    /// weights once (reading whole files first held them three times at the peak, and the
    /// allocator kept much of that after).
    pub fn load(dir: &Path, device: &Device) -> Result<Self, TrainError> {
        let config = ModelConfig::read(dir)?;
        let codec = TextCodec::load(dir)?;
        let (files, _) = st::model_files(dir)?;
        let mut vars = BTreeMap::new();
        for file in files {
            let mut reader = st::StReader::open(&file)?;
            let names: Vec<String> = reader.tensors.keys().cloned().collect();
            for name in names {
                if config.tie_word_embeddings && name == "lm_head.weight" {
                    continue;
                }
                let shape = reader.tensors[&name].shape.clone();
                let values = reader.read_f32(&name)?;
                vars.insert(name, Var::from_vec(values, shape, device)?);
            }
        }
        let (model, vars) = build(&config, vars, device)?;
        Ok(Policy {
            model,
            vars,
            codec,
            device: device.clone(),
        })
    }

    /// Write `config.json`, `model.safetensors` (f32), `tokenizer.json`,
    /// `tokenizer_config.json` and `generation_config.json` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), TrainError> {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
        let mut config = self.model.config().clone();
        config.torch_dtype = "float32".into();
        config.eos_token_id = Some(self.codec.eos);
        config.write(dir)?;
        let tensors: Vec<(String, Tensor)> = self
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), v.as_detached_tensor()))
            .collect();
        st::write_f32_tensors(&dir.join("model.safetensors"), &tensors)?;
        self.codec.save(dir, config.max_position_embeddings)?;
        let generation = serde_json::json!({
            "eos_token_id": self.codec.eos,
            "pad_token_id": self.codec.pad,
        });
        let path = dir.join("generation_config.json");
        std::fs::write(&path, generation.to_string()).map_err(|e| TrainError::io(&path, e))
    }

    /// A model sharing the live weights without gradient tracking (for sampling: a decoding
    /// loop on tracked weights would build a graph across every step).
    pub fn untracked(&self) -> Result<Qwen2, TrainError> {
        let tensors = self
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), v.as_detached_tensor()))
            .collect::<HashMap<_, _>>();
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &self.device);
        Ok(Qwen2::new(self.model.config(), vb)?)
    }

    /// Total number of weights.
    pub fn parameter_count(&self) -> usize {
        self.vars.values().map(|v| v.elem_count()).sum()
    }
}

/// Characters of a task's trace the tokenizer is trained on: enough to learn the trace's
/// vocabulary, without letting a few long deduction derivations dominate (or slow) training.
const TOKENIZER_TRACE_CHARS: usize = 2_000;

fn corpus_trace(trace: &str) -> &str {
    match trace.char_indices().nth(TOKENIZER_TRACE_CHARS) {
        Some((end, _)) => &trace[..end],
        None => trace,
    }
}

/// A fresh model of a named size for `tasks`: a byte-level BPE of `vocab_size` entries trained on
/// the tasks' prompts and SFT targets, and deterministic random weights.
pub fn init_for_tasks(
    size: &str,
    tasks: &[crate::data::Task],
    vocab_size: usize,
    max_positions: usize,
    seed: u64,
    device: &Device,
) -> Result<Policy, TrainError> {
    let corpus: Vec<String> = tasks
        .iter()
        .map(|t| {
            let prompt = t.prompt_text();
            let prefilled = triad::reward::prompt_prefills_think(&prompt);
            format!(
                "{prompt}{}",
                crate::tokenizer::sft_target(&t.answer, corpus_trace(&t.trace), prefilled)
            )
        })
        .collect();
    let codec = TextCodec::train(&corpus, vocab_size)?;
    let config = ModelConfig::named(size, codec.vocab_size(), max_positions)?;
    Policy::init(&config, codec, seed, device)
}
