//! The pipeline's stages: data, base model, RL stages, evaluations, and where each writes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use candle_core::Device;
use triad::generators::Split;

use super::config::{PipelineConfig, RlStageConfig, families};
use crate::ModelConfig;
use crate::TrainError;
use crate::data::{Selection, Task, load_tasks};
use crate::eval::{EvalReport, evaluate};
use crate::optim::AdamWConfig;
use crate::policy::{Policy, init_for_tasks};
use crate::reward::RewardSource;
use crate::rl::{LossOptions, RlOptions};
use crate::run::{RunDir, read_state};
use crate::sample::SampleOptions;
use crate::sft::{SftOptions, Target};

/// Where the stages write.
pub(super) struct Layout {
    pub(super) root: PathBuf,
}

impl Layout {
    pub(super) fn data(&self) -> PathBuf {
        self.root.join("data")
    }
    pub(super) fn stage(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
    pub(super) fn eval(&self, name: &str) -> PathBuf {
        self.root.join("eval").join(format!("{name}.json"))
    }
}

pub(super) fn log(message: &str) {
    eprintln!("[pipeline] {message}");
}

/// Generate (or re-use) the dataset: every family at the curriculum and domain levels.
pub(super) fn make_data(config: &PipelineConfig, layout: &Layout) -> Result<(), TrainError> {
    let mut levels: BTreeSet<u8> = config.levels.iter().copied().collect();
    levels.extend(&config.domain.levels);
    let families = triad::generators::registry::FAMILIES.to_vec();
    let generate = triad::dataset::GenerateConfig {
        out: layout.data(),
        families,
        levels: levels.into_iter().collect(),
        train: config.data.train,
        test: config.data.test,
        seed: config.seed,
        style: config.data.prompt_style,
        shard_rows: 100_000,
        options: Default::default(),
        overwrite: false,
        worker: None,
        license: triad::dataset::DEFAULT_LICENSE.into(),
    };
    // generate() re-uses finished shards of the same configuration, so a re-run costs a read.
    triad::dataset::generate(&generate)?;
    Ok(())
}

pub(super) fn select(
    layout: &Layout,
    split: Split,
    families: &[&str],
    levels: &[u8],
    limit: Option<usize>,
) -> Result<Vec<Task>, TrainError> {
    load_tasks(
        &layout.data(),
        &Selection {
            split,
            families: families.iter().map(|f| f.to_string()).collect(),
            levels: levels.iter().copied().collect(),
            per_level: limit,
        },
    )
}

/// A stage's RL options; `start` is the model it trains (its size picks the default learning
/// rate).
pub(super) fn rl_options(
    stage: &RlStageConfig,
    start: &Path,
    levels: Vec<u8>,
    seed: u64,
) -> Result<RlOptions, TrainError> {
    let lr = match stage.lr {
        Some(lr) => lr,
        None => crate::rl::default_lr(ModelConfig::read(start)?.parameter_count()),
    };
    Ok(RlOptions {
        steps: stage.steps,
        prompts: stage.prompts,
        rollouts: stage.rollouts,
        estimator: stage.estimator,
        sample: SampleOptions {
            temperature: stage.temperature,
            top_p: crate::rl::DEFAULT_TOP_P,
            max_new_tokens: stage.max_new_tokens,
        },
        loss: LossOptions {
            kl_coef: stage.kl_coef,
            ..LossOptions::default()
        },
        optim: AdamWConfig {
            lr,
            ..AdamWConfig::default()
        },
        levels,
        max_steps_per_level: stage.max_steps_per_level,
        replay: stage.replay,
        seed,
        save_every: 10,
        log_every: 10,
        ..RlOptions::default()
    })
}

/// Train the base model (or take the given one) into `base/`.
pub(super) fn make_base(
    config: &PipelineConfig,
    layout: &Layout,
    device: &Device,
) -> Result<PathBuf, TrainError> {
    if let Some(model) = &config.base.model
        && config.base.sft_steps == 0
    {
        return Ok(model.clone());
    }
    let dir = layout.stage("base");
    let tasks = select(layout, Split::Train, &families(), &config.levels, None)?;
    let base = &config.base;
    let options = sft_options(
        base.sft_steps,
        base.sft_batch_size,
        base.sft_target,
        base.sft_lr,
        config.seed,
    );
    let input = match &config.base.model {
        Some(model) => weights_digest(model)?,
        None => crate::run::fingerprint(&(
            &config.base.init,
            config.base.vocab_size,
            config.base.max_positions,
            config.seed,
        )),
    };
    let fingerprint = crate::sft::run_fingerprint(&options, &tasks);
    let Some(run) = stage_dir("base", &input, layout, &fingerprint, options.steps)? else {
        log("base: done");
        return Ok(dir);
    };
    let policy = match &config.base.model {
        Some(model) => Policy::load(model, device)?,
        None => init_for_tasks(
            &config.base.init,
            &tasks,
            config.base.vocab_size,
            config.base.max_positions,
            config.seed,
            device,
        )?,
    };
    log(&format!(
        "base: SFT of a {}-parameter model on {} tasks of all three families",
        policy.parameter_count(),
        tasks.len()
    ));
    crate::sft::train(policy, &tasks, &options, &run)?;
    Ok(dir)
}

/// SFT from `start` on `tasks` into `name/` (skipped when finished).
pub(super) fn sft_stage(
    name: &str,
    start: &Path,
    tasks: &[Task],
    options: &SftOptions,
    layout: &Layout,
    device: &Device,
) -> Result<PathBuf, TrainError> {
    let fingerprint = crate::sft::run_fingerprint(options, tasks);
    let what = format!("SFT on {} tasks", tasks.len());
    train_stage(
        name,
        start,
        &fingerprint,
        options.steps,
        &what,
        layout,
        device,
        |policy, run| crate::sft::train(policy, tasks, options, run),
    )
}

/// Train the model at `start` into `name/` with `train`, unless the stage's output is there.
#[allow(clippy::too_many_arguments)]
fn train_stage(
    name: &str,
    start: &Path,
    fingerprint: &str,
    steps: u64,
    what: &str,
    layout: &Layout,
    device: &Device,
    train: impl FnOnce(Policy, &RunDir) -> Result<Policy, TrainError>,
) -> Result<PathBuf, TrainError> {
    let input = weights_digest(start)?;
    if let Some(run) = stage_dir(name, &input, layout, fingerprint, steps)? {
        log(&format!("{name}: {what}"));
        train(Policy::load(start, device)?, &run)?;
    } else {
        log(&format!("{name}: done"));
    }
    Ok(layout.stage(name))
}

/// A stage's run directory to train in, or `None` when it already holds the stage's output: a
/// run of `fingerprint` from the starting model `input` (its weights' digest, or what a fresh
/// model is made from) that reached `steps`.
///
/// The pipeline owns its stage directories, so output that no longer matches the configuration
/// is stale and is removed (the stage runs again): output from another starting model (a new
/// merge, a retrained base), of other options, or of more steps than asked for. Output of the
/// same run that stopped short of `steps` (the configuration now asks for more) is kept and
/// continues from its checkpoint, to the same weights as a run of `steps` from the start.
fn stage_dir(
    name: &str,
    input: &str,
    layout: &Layout,
    fingerprint: &str,
    steps: u64,
) -> Result<Option<RunDir>, TrainError> {
    let dir = layout.stage(name);
    let input_file = dir.join("input.sha256");
    if dir.exists() {
        let same_input = std::fs::read_to_string(&input_file).ok().as_deref() == Some(input);
        let saved = saved_states(&dir);
        let stale = if !same_input {
            Some("its starting model changed")
        } else if saved.iter().any(|(f, _)| f != fingerprint) {
            Some("its options or data changed")
        } else if saved.iter().any(|&(_, step)| step > steps) {
            Some("it ran past the steps now asked for")
        } else {
            None
        };
        if let Some(why) = stale {
            log(&format!("{name}: {why}; running it again"));
            std::fs::remove_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
        }
    }
    let run = RunDir::create(&dir)?;
    std::fs::write(&input_file, input).map_err(|e| TrainError::io(&input_file, e))?;
    if run.finished(fingerprint)? && read_state(&dir)?.step == steps {
        return Ok(None);
    }
    Ok(Some(run))
}

/// The fingerprint and step of what `dir` holds: its final model and its checkpoints.
fn saved_states(dir: &Path) -> Vec<(String, u64)> {
    [
        dir.to_path_buf(),
        dir.join("checkpoint"),
        dir.join("checkpoint.old"),
    ]
    .iter()
    .filter(|d| d.join("trainer_state.json").exists())
    .filter_map(|d| read_state(d).ok().map(|s| (s.fingerprint, s.step)))
    .collect()
}

/// RL from `start` on `tasks` into `name/` (skipped when finished).
pub(super) fn rl_stage(
    name: &str,
    start: &Path,
    tasks: &[Task],
    options: &RlOptions,
    rewards: &RewardSource,
    layout: &Layout,
    device: &Device,
) -> Result<PathBuf, TrainError> {
    let fingerprint = crate::rl::run_fingerprint(options, tasks);
    let what = format!("RL on {} tasks", tasks.len());
    train_stage(
        name,
        start,
        &fingerprint,
        options.steps,
        &what,
        layout,
        device,
        |policy, run| crate::rl::train(policy, tasks, options, rewards, run),
    )
}

/// SHA-256 of a model directory's weight files (what a stage starting from it depends on).
pub(super) fn weights_digest(model: &Path) -> Result<String, TrainError> {
    use sha2::{Digest, Sha256};
    let (files, _) = crate::st::model_files(model)?;
    let mut hash = Sha256::new();
    for file in files {
        // Streamed: weight files can be gigabytes.
        let mut reader = std::fs::File::open(&file).map_err(|e| TrainError::io(&file, e))?;
        std::io::copy(&mut reader, &mut hash).map_err(|e| TrainError::io(&file, e))?;
    }
    Ok(hex::encode(hash.finalize()))
}

/// The SFT options of `family`'s specialist stage, when it has one.
pub(super) fn specialist_sft_options(
    config: &PipelineConfig,
    family: &str,
    seed: u64,
) -> Option<SftOptions> {
    let sft = config.specialist_sft.as_ref()?;
    let steps = sft.steps_of(family);
    (steps > 0).then(|| sft_options(steps, sft.batch_size, sft.target, sft.lr, seed))
}

/// A pipeline SFT stage's options (the base's and the specialists' differ only in these).
fn sft_options(steps: u64, batch_size: usize, target: Target, lr: f64, seed: u64) -> SftOptions {
    SftOptions {
        steps,
        batch_size,
        target,
        optim: AdamWConfig {
            lr,
            ..AdamWConfig::default()
        },
        seed,
        log_every: 50,
        ..SftOptions::default()
    }
}

/// Evaluate a model on every family's test split at the curriculum levels and on the domain
/// set (cached by stage name).
pub(super) fn evaluate_stage(
    name: &str,
    model: &Path,
    config: &PipelineConfig,
    layout: &Layout,
    rewards: &RewardSource,
    device: &Device,
) -> Result<(EvalReport, EvalReport), TrainError> {
    // Cached per stage, keyed by what decides the result: the evaluation settings and the
    // model's weights file.
    let weights = weights_digest(model)?;
    let key = crate::run::fingerprint(&(
        &config.levels,
        &config.domain,
        config.eval_limit,
        config.eval_max_new_tokens,
        config.reward,
        weights,
    ));
    let path = layout.eval(&format!("{name}-{key}"));
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(cached) = serde_json::from_str::<(EvalReport, EvalReport)>(&text)
    {
        return Ok(cached);
    }
    let policy = Policy::load(model, device)?;
    let families = select(
        layout,
        Split::Test,
        &families(),
        &config.levels,
        config.eval_limit,
    )?;
    let domain_families: Vec<&str> = config.domain.families.iter().map(String::as_str).collect();
    let domain = select(
        layout,
        Split::Test,
        &domain_families,
        &config.domain.levels,
        config.eval_limit,
    )?;
    let tokens = config.eval_max_new_tokens;
    let result = (
        evaluate(&policy, &families, tokens, rewards)?,
        evaluate(&policy, &domain, tokens, rewards)?,
    );
    std::fs::create_dir_all(path.parent().expect("eval dir"))
        .map_err(|e| TrainError::io(&path, e))?;
    std::fs::write(&path, serde_json::to_string_pretty(&result).expect("json"))
        .map_err(|e| TrainError::io(&path, e))?;
    log(&format!(
        "eval {name}: family accuracy {:.3}, domain {:.3}",
        result.0.accuracy, result.1.accuracy
    ));
    Ok(result)
}

/// Merge `inputs` with `weights` into `dir`, unless it already holds that merge of the models
/// they hold now (a specialist trained again makes the old merge stale).
pub(super) fn merge_stage(
    dir: &Path,
    inputs: &[PathBuf],
    weights: &[f64],
    normalize: bool,
) -> Result<(), TrainError> {
    let digests = inputs
        .iter()
        .map(|input| weights_digest(input))
        .collect::<Result<Vec<_>, _>>()?
        .join("\n");
    let input_file = dir.join("input.sha256");
    let same_inputs =
        std::fs::read_to_string(&input_file).ok().as_deref() == Some(digests.as_str());
    if same_inputs && same_merge(dir, inputs, weights, normalize) {
        return Ok(());
    }
    let summary = crate::merge::merge(inputs, weights, normalize, dir)?;
    std::fs::write(&input_file, &digests).map_err(|e| TrainError::io(&input_file, e))?;
    log(&format!(
        "merged with weights {:?}",
        summary.effective_weights
    ));
    Ok(())
}

/// Whether `dir` already holds the merge of `inputs` with these weights.
fn same_merge(dir: &Path, inputs: &[PathBuf], weights: &[f64], normalize: bool) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join("merge_config.json")) else {
        return false;
    };
    let Ok(done) = serde_json::from_str::<serde_json::Value>(&text) else {
        return false;
    };
    done["weights"] == serde_json::json!(weights)
        && done["normalize"] == serde_json::json!(normalize)
        && done["inputs"] == serde_json::json!(inputs)
}
