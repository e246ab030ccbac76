//! A training run's output directory: the resumable checkpoint (model, optimizer state, trainer
//! state), the metrics log, and the final model.
//!
//! Layout of `OUT/`: `checkpoint/` (a Hugging Face model directory plus `optimizer.safetensors`,
//! `optimizer.json` and `trainer_state.json`), `metrics.jsonl`, and, once the run finishes, the
//! final model's files at the top level. A checkpoint is written to `checkpoint.tmp/` and renamed
//! into place, so an interruption leaves the previous one whole.

use std::path::{Path, PathBuf};

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::optim::AdamW;
use crate::policy::Policy;

/// Where the trainer is in its run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// `sft` or `rl`.
    pub phase: String,
    /// Steps finished.
    pub step: u64,
    /// Index of the current curriculum level.
    #[serde(default)]
    pub level_index: usize,
    /// Steps taken at the current level.
    #[serde(default)]
    pub steps_at_level: u64,
    /// Correct/incorrect of recent rollouts at the current level (the advance window).
    #[serde(default)]
    pub recent: Vec<bool>,
    /// Hash of the options that shape the run; a checkpoint of other options is not resumed.
    pub fingerprint: String,
}

/// A run's output directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    /// The directory.
    pub root: PathBuf,
}

impl RunDir {
    /// Use (and create) `root`.
    pub fn create(root: &Path) -> Result<Self, TrainError> {
        std::fs::create_dir_all(root).map_err(|e| TrainError::io(root, e))?;
        Ok(RunDir {
            root: root.to_path_buf(),
        })
    }

    /// The metrics log.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    /// The checkpoint directory.
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint")
    }

    /// Whether the final model of a run with `fingerprint` has been written; an error when a
    /// finished run with other options is there (it must not be taken for this one).
    pub fn finished(&self, fingerprint: &str) -> Result<bool, TrainError> {
        if !(self.root.join("trainer_state.json").exists()
            && self.root.join("config.json").exists())
        {
            return Ok(false);
        }
        let state = read_state(&self.root)?;
        if state.fingerprint != fingerprint {
            return Err(TrainError::Invalid(format!(
                "{} holds a finished run with other options or data; use another --out or delete it",
                self.root.display()
            )));
        }
        Ok(true)
    }

    /// Save the resumable state.
    pub fn save_checkpoint(
        &self,
        policy: &Policy,
        optimizer: &AdamW,
        state: &TrainerState,
    ) -> Result<(), TrainError> {
        let tmp = self.root.join("checkpoint.tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
        }
        write_state(&tmp, policy, Some(optimizer), state)?;
        let dest = self.checkpoint();
        let old = self.root.join("checkpoint.old");
        if dest.exists() {
            std::fs::rename(&dest, &old).map_err(|e| TrainError::io(&dest, e))?;
        }
        std::fs::rename(&tmp, &dest).map_err(|e| TrainError::io(&tmp, e))?;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
        }
        Ok(())
    }

    /// The saved checkpoint, if there is one for a run with `fingerprint`.
    pub fn load_checkpoint(
        &self,
        fingerprint: &str,
        device: &Device,
    ) -> Result<Option<(Policy, AdamW, TrainerState)>, TrainError> {
        let mut dir = self.checkpoint();
        if !dir.exists() {
            // Interrupted between the two renames: the previous checkpoint is intact.
            dir = self.root.join("checkpoint.old");
            if !dir.exists() {
                return Ok(None);
            }
        }
        let state = read_state(&dir)?;
        if state.fingerprint != fingerprint {
            return Err(TrainError::Invalid(format!(
                "{} holds a checkpoint of a run with other options; use another --out or delete it",
                self.root.display()
            )));
        }
        let policy = Policy::load(&dir, device)?;
        let optimizer = AdamW::load(&dir.join("optimizer.safetensors"), device)?;
        Ok(Some((policy, optimizer, state)))
    }

    /// Continue from the checkpoint when there is one (dropping log lines after it), else start
    /// `policy` with a fresh optimizer. The flag says whether it resumed.
    pub fn resume_or_start(
        &self,
        policy: Policy,
        phase: &str,
        fingerprint: &str,
        optim: crate::optim::AdamWConfig,
    ) -> Result<(Policy, AdamW, TrainerState, bool), TrainError> {
        if let Some((p, o, s)) = self.load_checkpoint(fingerprint, &policy.device)? {
            crate::metrics::truncate_after(&self.metrics(), phase, s.step)?;
            return Ok((p, o, s, true));
        }
        crate::metrics::truncate_after(&self.metrics(), phase, 0)?;
        let state = TrainerState {
            phase: phase.into(),
            fingerprint: fingerprint.into(),
            ..TrainerState::default()
        };
        Ok((policy, AdamW::new(optim), state, false))
    }

    /// Write the final model (and its trainer state) at the top of the directory.
    pub fn save_final(&self, policy: &Policy, state: &TrainerState) -> Result<(), TrainError> {
        write_state(&self.root, policy, None, state)
    }
}

fn write_state(
    dir: &Path,
    policy: &Policy,
    optimizer: Option<&AdamW>,
    state: &TrainerState,
) -> Result<(), TrainError> {
    policy.save(dir)?;
    if let Some(optimizer) = optimizer {
        optimizer.save(&dir.join("optimizer.safetensors"))?;
    }
    let path = dir.join("trainer_state.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(state).expect("state serializes"),
    )
    .map_err(|e| TrainError::io(&path, e))
}

/// Read `trainer_state.json` from a directory.
pub fn read_state(dir: &Path) -> Result<TrainerState, TrainError> {
    let path = dir.join("trainer_state.json");
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", path.display())))
}

/// A short stable hash of anything serializable (run fingerprints, per-step seeds).
pub fn fingerprint<T: Serialize>(value: &T) -> String {
    use sha2::{Digest, Sha256};
    let json = serde_json::to_vec(value).expect("serializable");
    hex::encode(&Sha256::digest(json)[..8])
}

/// The fingerprint of a training run of `kind` ("sft", "rl"): its options and its tasks' ids. A
/// checkpoint or finished run with another fingerprint is not taken for this one.
pub fn run_fingerprint<T: Serialize>(
    kind: &str,
    options: &T,
    tasks: &[crate::data::Task],
) -> String {
    let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    fingerprint(&(kind, options, ids))
}

/// A ChaCha stream for (seed, purpose, step): every step's draws are a function of its
/// coordinates, so a resumed run draws what an uninterrupted one would.
pub fn step_rng(seed: u64, purpose: &str, step: u64) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("triad-train\0{seed}\0{purpose}\0{step}"));
    rand_chacha::ChaCha8Rng::from_seed(digest.into())
}

/// A uniform index below `n` from the raw stream (independent of `rand`'s range algorithms,
/// which may change between versions; the modulo bias at n ≪ 2⁶⁴ is negligible).
pub fn pick_index(rng: &mut rand_chacha::ChaCha8Rng, n: usize) -> usize {
    use rand::Rng;
    (rng.next_u64() % n as u64) as usize
}
