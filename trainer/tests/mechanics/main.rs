//! The trainer's mechanics on small models: gradients reach every weight, SFT and RL steps move
//! the model the right way, save/load and merge are exact, checkpoints resume to the same next
//! step, and the files written load in Python's `safetensors` / `tokenizers`. One test binary, a
//! module per concern; the shared fixtures live here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{D, DType, Device, Tensor};
use triad_trainer::advantage::grpo;
use triad_trainer::batch::{Sequence, pack};
use triad_trainer::config::ModelConfig;
use triad_trainer::data::{Selection, Task, load_tasks};
use triad_trainer::objective::{self, Backend};
use triad_trainer::optim::{AdamW, AdamWConfig};
use triad_trainer::policy::{Policy, init_for_tasks};
use triad_trainer::rl::{LossOptions, RlOptions, policy_update};
use triad_trainer::run::RunDir;
use triad_trainer::sample::{SampleOptions, token_log_probs};
use triad_trainer::sft::SftOptions;
use triad_trainer::st::{StReader, StWriter};
use triad_trainer::tokenizer::TextCodec;
use triad_trainer::{merge, metrics, rl, sft};

mod cli;
mod model;
mod training;
mod weights;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("TRIAD_PYTHON") {
        return p.into();
    }
    let venv = repo().join(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        "python3".into()
    }
}

/// Generate `families` at `levels`, (train, test) items each, seed 7, into `out`.
fn generate_into(
    out: &Path,
    families: Vec<&'static dyn triad::generators::DynFamily>,
    levels: Vec<u8>,
    (train, test): (u64, u64),
    style: triad::generators::PromptStyle,
) {
    let config = triad::dataset::GenerateConfig {
        out: out.to_path_buf(),
        families,
        levels,
        train,
        test,
        seed: 7,
        style,
        shard_rows: 1000,
        options: Default::default(),
        overwrite: false,
        worker: None,
        license: triad::dataset::DEFAULT_LICENSE.into(),
    };
    triad::dataset::generate(&config).unwrap();
}

/// A small induction + deduction level-1 dataset, generated once per test binary.
fn dataset() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let families = ["induction", "deduction"]
            .iter()
            .map(|n| triad::generators::registry::family(n).unwrap())
            .collect();
        generate_into(
            dir.path(),
            families,
            vec![1],
            (40, 10),
            triad::generators::PromptStyle::Chat,
        );
        dir
    })
    .path()
}

/// −Σ log p of the completion tokens of `batch` (candle's forward, the reference).
fn nll(policy: &Policy, batch: &[&Sequence]) -> f64 {
    let pass = objective::forward(policy, batch, 1.0, false, Backend::Candle).unwrap();
    -pass
        .stats
        .log_probs
        .iter()
        .map(|&l| f64::from(l))
        .sum::<f64>()
}

/// Three short (prompt, answer) sequences of different lengths.
fn counting_sequences(policy: &Policy) -> [Sequence; 3] {
    [
        sequence(policy, "1, 2, ?", "<answer>3</answer>"),
        sequence(policy, "5, 6, 7, ?", "<answer>8</answer>"),
        sequence(policy, "2, 4, ?", "<answer>6</answer>"),
    ]
}

fn tasks(family: &str) -> Vec<Task> {
    let mut selection = Selection::split(triad::generators::Split::Train);
    selection.families.insert(family.to_string());
    load_tasks(dataset(), &selection).unwrap()
}

/// A tiny policy (hidden 32, 2 layers, GQA 4/2) with a tokenizer trained on the tasks.
fn small_policy(tie: bool, seed: u64) -> Policy {
    let tasks = tasks("induction");
    let base = init_for_tasks("tiny", &tasks, 400, 512, seed, &Device::Cpu).unwrap();
    let mut config = base.model.config().clone();
    config.hidden_size = 32;
    config.intermediate_size = 64;
    config.num_hidden_layers = 2;
    config.num_attention_heads = 4;
    config.num_key_value_heads = 2;
    config.tie_word_embeddings = tie;
    Policy::init(&config, base.codec.clone(), seed, &Device::Cpu).unwrap()
}

fn sequence(policy: &Policy, prompt: &str, completion: &str) -> Sequence {
    Sequence {
        prompt: policy.codec.encode(prompt).unwrap(),
        completion: policy.codec.encode(completion).unwrap(),
    }
}

fn completion_log_prob(policy: &Policy, seq: &Sequence) -> f32 {
    let packed = pack(&[seq], policy.codec.pad, &Device::Cpu).unwrap();
    let logits = policy.model.forward_full(&packed.inputs).unwrap();
    let lp = token_log_probs(&logits, &packed.targets).unwrap();
    (lp * &packed.mask)
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}
