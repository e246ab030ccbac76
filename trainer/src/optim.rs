//! AdamW (decoupled weight decay, as in PyTorch) with state that saves and resumes, gradients
//! keyed by parameter name (so micro-batches accumulate), and global-norm clipping.
//!
//! candle-nn has an AdamW, but its moment estimates are private, so a checkpoint could not carry
//! them and a resumed run would restart the optimizer cold.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// Gradients by parameter name.
pub type Grads = BTreeMap<String, Tensor>;

/// Pull the gradients of `vars` out of a backward pass; parameters the loss does not reach are
/// absent.
pub fn collect_grads(vars: &BTreeMap<String, Var>, store: &GradStore) -> Grads {
    vars.iter()
        .filter_map(|(name, var)| {
            store
                .get(var.as_tensor())
                .map(|g| (name.clone(), g.clone()))
        })
        .collect()
}

/// Add `more` into `sum` (gradient accumulation across micro-batches).
pub fn accumulate(sum: &mut Grads, more: Grads) -> Result<(), TrainError> {
    for (name, grad) in more {
        let total = match sum.remove(&name) {
            Some(previous) => (previous + grad)?,
            None => grad,
        };
        sum.insert(name, total);
    }
    Ok(())
}

/// The global L2 norm of `grads`.
pub fn global_norm(grads: &Grads) -> Result<f64, TrainError> {
    let mut total = 0f64;
    for g in grads.values() {
        total += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
    }
    Ok(total.sqrt())
}

/// Scale `grads` so their global norm is at most `max_norm`; returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut Grads, max_norm: f64) -> Result<f64, TrainError> {
    let norm = global_norm(grads)?;
    if max_norm > 0.0 && norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for g in grads.values_mut() {
            *g = (&*g * scale)?;
        }
    }
    Ok(norm)
}

/// AdamW hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

/// AdamW weight decay (the paper's).
pub const DEFAULT_WEIGHT_DECAY: f64 = 0.01;
/// The global gradient norm is clipped to this (SFT and RL).
pub const DEFAULT_MAX_GRAD_NORM: f64 = 1.0;

impl Default for AdamWConfig {
    fn default() -> Self {
        // The paper's: AdamW (0.9, 0.999), weight decay 0.01.
        AdamWConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: DEFAULT_WEIGHT_DECAY,
        }
    }
}

/// AdamW over named parameters.
#[derive(Debug)]
pub struct AdamW {
    /// Hyper-parameters.
    pub config: AdamWConfig,
    /// Updates taken.
    pub steps: u64,
    exp_avg: BTreeMap<String, Tensor>,
    exp_avg_sq: BTreeMap<String, Tensor>,
}

impl AdamW {
    /// A fresh optimizer.
    pub fn new(config: AdamWConfig) -> Self {
        AdamW {
            config,
            steps: 0,
            exp_avg: BTreeMap::new(),
            exp_avg_sq: BTreeMap::new(),
        }
    }

    /// One update of `vars` with `grads`; parameters without a gradient are left alone.
    pub fn step(&mut self, vars: &BTreeMap<String, Var>, grads: &Grads) -> Result<(), TrainError> {
        self.steps += 1;
        let c = self.config;
        let t = self.steps as i32;
        let correction1 = 1.0 - c.beta1.powi(t);
        let correction2 = 1.0 - c.beta2.powi(t);
        for (name, var) in vars {
            let Some(grad) = grads.get(name) else {
                continue;
            };
            let m = match self.exp_avg.get(name) {
                Some(m) => ((m * c.beta1)? + (grad * (1.0 - c.beta1))?)?,
                None => (grad * (1.0 - c.beta1))?,
            };
            let v = match self.exp_avg_sq.get(name) {
                Some(v) => ((v * c.beta2)? + (grad.sqr()? * (1.0 - c.beta2))?)?,
                None => (grad.sqr()? * (1.0 - c.beta2))?,
            };
            let m_hat = (&m / correction1)?;
            let v_hat = (&v / correction2)?;
            let update = (m_hat / (v_hat.sqrt()? + c.eps)?)?;
            let theta = var.as_detached_tensor();
            let decayed = (theta * (1.0 - c.lr * c.weight_decay))?;
            var.set(&(decayed - (update * c.lr)?)?)?;
            // Detached, so no step's graph hangs on to the next.
            self.exp_avg.insert(name.clone(), m.detach());
            self.exp_avg_sq.insert(name.clone(), v.detach());
        }
        Ok(())
    }

    /// Write the moment estimates to `path` (safetensors; the step count goes in its metadata).
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        for (name, m) in &self.exp_avg {
            tensors.insert(format!("exp_avg.{name}"), m.clone());
        }
        for (name, v) in &self.exp_avg_sq {
            tensors.insert(format!("exp_avg_sq.{name}"), v.clone());
        }
        let state = serde_json::json!({"steps": self.steps, "config": self.config});
        let state_path = path.with_extension("json");
        std::fs::write(&state_path, state.to_string())
            .map_err(|e| TrainError::io(&state_path, e))?;
        candle_core::safetensors::save(&tensors, path)?;
        Ok(())
    }

    /// Read state written by [`AdamW::save`].
    pub fn load(path: &Path, device: &Device) -> Result<Self, TrainError> {
        #[derive(Deserialize)]
        struct State {
            steps: u64,
            config: AdamWConfig,
        }
        let state_path = path.with_extension("json");
        let text =
            std::fs::read_to_string(&state_path).map_err(|e| TrainError::io(&state_path, e))?;
        let state: State = serde_json::from_str(&text)
            .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", state_path.display())))?;
        let tensors = candle_core::safetensors::load(path, device)?;
        let mut optimizer = AdamW::new(state.config);
        optimizer.steps = state.steps;
        for (key, tensor) in tensors {
            if let Some(name) = key.strip_prefix("exp_avg_sq.") {
                optimizer.exp_avg_sq.insert(name.to_string(), tensor);
            } else if let Some(name) = key.strip_prefix("exp_avg.") {
                optimizer.exp_avg.insert(name.to_string(), tensor);
            }
        }
        Ok(optimizer)
    }
}
