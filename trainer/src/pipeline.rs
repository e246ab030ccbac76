//! The paper's recipe end to end, as one command: a base model (fresh with SFT warm-up on all
//! three families, or a local Hugging Face model), one RL specialist per family with the level
//! curriculum, a weighted merge of the three, then "domain" RL from the merged model and, as the
//! control, from the base model, on a held-out task set; evaluation after every stage and a report
//! shaped like the paper's Tables 1 and 2.
//!
//! Every stage writes into its own directory under `out` and is skipped when its output is
//! already there (a re-run resumes an interrupted stage from its checkpoint and skips finished
//! ones). Stage seeds derive from the one seed in the configuration.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use candle_core::Device;
use serde::{Deserialize, Serialize};
use triad::generators::Split;
use triad::reward::Preset;

use crate::TrainError;
use crate::advantage::Estimator;
use crate::data::{Selection, Task, load_tasks};
use crate::eval::{EvalReport, evaluate};
use crate::metrics;
use crate::optim::AdamWConfig;
use crate::plot::{Panel, smooth};
use crate::policy::{Policy, init_for_tasks};
use crate::reward::RewardSource;
use crate::rl::{LossOptions, RlOptions};
use crate::run::RunDir;
use crate::sample::SampleOptions;
use crate::sft::SftOptions;

/// The families the pipeline trains specialists of: every family in the registry, in its order.
pub fn families() -> Vec<&'static str> {
    triad::generators::registry::names()
}

/// The data the pipeline generates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Train items per family and level.
    pub train: u64,
    /// Test items per family and level.
    pub test: u64,
}

/// The base model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseConfig {
    /// A local Hugging Face model directory; when absent, a fresh model of `init` size.
    #[serde(default)]
    pub model: Option<PathBuf>,
    /// Named size of a fresh model.
    #[serde(default = "default_init")]
    pub init: String,
    /// BPE vocabulary of a fresh model's tokenizer.
    #[serde(default = "default_vocab")]
    pub vocab_size: usize,
    /// Positions of a fresh model.
    #[serde(default = "default_positions")]
    pub max_positions: usize,
    /// SFT warm-up steps on a mix of all three families at the curriculum levels (0: none).
    pub sft_steps: u64,
    /// SFT batch size.
    #[serde(default = "default_batch")]
    pub sft_batch_size: usize,
    /// SFT learning rate.
    #[serde(default = "default_sft_lr")]
    pub sft_lr: f64,
}

fn default_init() -> String {
    "tiny".into()
}
fn default_vocab() -> usize {
    1024
}
fn default_positions() -> usize {
    1024
}
fn default_batch() -> usize {
    16
}
fn default_sft_lr() -> f64 {
    1e-3
}

/// One RL stage's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlStageConfig {
    /// Optimizer steps.
    pub steps: u64,
    /// Steps per curriculum level before advancing regardless of accuracy.
    #[serde(default)]
    pub max_steps_per_level: Option<u64>,
    /// Prompts per step.
    #[serde(default = "default_prompts")]
    pub prompts: usize,
    /// Rollouts per prompt.
    #[serde(default = "default_rollouts")]
    pub rollouts: usize,
    /// Advantage estimator.
    #[serde(default = "default_estimator")]
    pub estimator: Estimator,
    /// Learning rate.
    #[serde(default = "default_rl_lr")]
    pub lr: f64,
    /// Sampling temperature.
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// Longest response.
    #[serde(default = "default_new_tokens")]
    pub max_new_tokens: usize,
    /// KL coefficient.
    #[serde(default = "default_kl")]
    pub kl_coef: f64,
}

// A stage's defaults are `triad-train rl`'s (one set, in `rl`).
fn default_prompts() -> usize {
    crate::rl::DEFAULT_PROMPTS
}
fn default_rollouts() -> usize {
    crate::rl::DEFAULT_ROLLOUTS
}
fn default_estimator() -> Estimator {
    crate::rl::DEFAULT_ESTIMATOR
}
fn default_rl_lr() -> f64 {
    crate::rl::DEFAULT_LR
}
fn default_temperature() -> f64 {
    crate::rl::DEFAULT_TEMPERATURE
}
fn default_new_tokens() -> usize {
    crate::rl::DEFAULT_MAX_NEW_TOKENS
}
fn default_kl() -> f64 {
    crate::rl::DEFAULT_KL_COEF
}

/// The merge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeConfig {
    /// Weight per family.
    pub weights: BTreeMap<String, f64>,
    /// Divide by the sum (mergekit's default).
    #[serde(default)]
    pub normalize: bool,
}

/// The held-out domain set and its RL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// Families of the domain set.
    pub families: Vec<String>,
    /// Its levels (the specialists never see them).
    pub levels: Vec<u8>,
    /// The RL stage run on it.
    pub rl: RlStageConfig,
}

/// The whole pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// The one seed every stage's seed derives from.
    pub seed: u64,
    /// Curriculum levels of the specialists, in order (the paper: 1 then 2).
    pub levels: Vec<u8>,
    /// Data sizes.
    pub data: DataConfig,
    /// The base model.
    pub base: BaseConfig,
    /// The specialists' RL.
    pub specialist: RlStageConfig,
    /// The merge.
    pub merge: MergeConfig,
    /// The domain stage.
    pub domain: DomainConfig,
    /// Test tasks per family and level in every evaluation (all when absent).
    #[serde(default)]
    pub eval_limit: Option<usize>,
    /// Longest response in evaluations.
    #[serde(default = "default_new_tokens")]
    pub eval_max_new_tokens: usize,
    /// Reward preset.
    #[serde(default)]
    pub reward: Preset,
}

impl PipelineConfig {
    /// Read and check a TOML configuration.
    pub fn read(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        let config: PipelineConfig = toml::from_str(&text)
            .map_err(|e| TrainError::Invalid(format!("{}: {e}", path.display())))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), TrainError> {
        if self.levels.is_empty() || self.domain.levels.is_empty() {
            return Err(TrainError::Invalid(
                "levels and domain.levels must not be empty".into(),
            ));
        }
        let families = families();
        for family in &families {
            if !self.merge.weights.contains_key(*family) {
                return Err(TrainError::Invalid(format!(
                    "merge.weights has no weight for {family}"
                )));
            }
        }
        for family in self.merge.weights.keys().chain(&self.domain.families) {
            if !families.contains(&family.as_str()) {
                return Err(TrainError::Invalid(format!("unknown family {family:?}")));
            }
        }
        Ok(())
    }
}

/// One row of the final table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportRow {
    /// The model (`base`, `deduction specialist`, …).
    pub model: String,
    /// Test accuracy per family at the curriculum levels.
    pub families: BTreeMap<String, f64>,
    /// Mean of the family accuracies.
    pub family_average: f64,
    /// Accuracy on the held-out domain set.
    pub domain: f64,
    /// Mean of the three families and the domain set.
    pub overall: f64,
}

/// The pipeline's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PipelineReport {
    /// Rows in the paper's order.
    pub rows: Vec<ReportRow>,
    /// The configuration that produced it.
    pub config: PipelineConfig,
}

impl PipelineReport {
    /// A Markdown table shaped like the paper's Tables 1–2.
    pub fn markdown(&self) -> String {
        let families = families();
        let mut out = String::from("| model |");
        for family in &families {
            out.push_str(&format!(" {family} |"));
        }
        out.push_str(" family avg | domain (held out) | overall avg |\n|---|");
        out.push_str(&"---|".repeat(families.len() + 3));
        out.push('\n');
        for r in &self.rows {
            out.push_str(&format!("| {} |", r.model));
            for family in &families {
                let accuracy = r.families.get(*family).copied().unwrap_or(0.0);
                out.push_str(&format!(" {accuracy:.3} |"));
            }
            out.push_str(&format!(
                " {:.3} | {:.3} | {:.3} |\n",
                r.family_average, r.domain, r.overall
            ));
        }
        out
    }
}

/// Where the stages write.
struct Layout {
    root: PathBuf,
}

impl Layout {
    fn data(&self) -> PathBuf {
        self.root.join("data")
    }
    fn stage(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
    fn eval(&self, name: &str) -> PathBuf {
        self.root.join("eval").join(format!("{name}.json"))
    }
}

fn log(message: &str) {
    eprintln!("[pipeline] {message}");
}

/// Generate (or re-use) the dataset: every family at the curriculum and domain levels.
fn make_data(config: &PipelineConfig, layout: &Layout) -> Result<(), TrainError> {
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
        style: triad::generators::PromptStyle::Chat,
        shard_rows: 100_000,
        options: Default::default(),
        overwrite: false,
        worker: None,
    };
    // generate() re-uses finished shards of the same configuration, so a re-run costs a read.
    triad::dataset::generate(&generate)?;
    Ok(())
}

fn select(
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

fn rl_options(stage: &RlStageConfig, levels: Vec<u8>, seed: u64) -> RlOptions {
    RlOptions {
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
            lr: stage.lr,
            ..AdamWConfig::default()
        },
        levels,
        max_steps_per_level: stage.max_steps_per_level,
        seed,
        save_every: 10,
        log_every: 10,
        ..RlOptions::default()
    }
}

/// Train the base model (or take the given one) into `base/`.
fn make_base(
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
    let run = RunDir::create(&dir)?;
    let tasks = select(layout, Split::Train, &families(), &config.levels, None)?;
    let options = SftOptions {
        steps: config.base.sft_steps,
        batch_size: config.base.sft_batch_size,
        optim: AdamWConfig {
            lr: config.base.sft_lr,
            ..AdamWConfig::default()
        },
        seed: config.seed,
        log_every: 50,
        ..SftOptions::default()
    };
    if run.finished(&crate::sft::run_fingerprint(&options, &tasks))? {
        log("base: done");
        return Ok(dir);
    }
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

/// RL from `start` on `tasks` into `name/` (skipped when finished).
fn rl_stage(
    name: &str,
    start: &Path,
    tasks: &[Task],
    options: &RlOptions,
    rewards: &RewardSource,
    layout: &Layout,
    device: &Device,
) -> Result<PathBuf, TrainError> {
    let dir = layout.stage(name);
    // A stage's output depends on the model it starts from, too: when that changed (a new
    // merge, a retrained base), the old output is discarded and the stage runs again.
    let input = weights_digest(start)?;
    let input_file = dir.join("input.sha256");
    if dir.exists() && std::fs::read_to_string(&input_file).ok().as_deref() != Some(input.as_str())
    {
        log(&format!(
            "{name}: its starting model changed; running it again"
        ));
        std::fs::remove_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
    }
    let run = RunDir::create(&dir)?;
    std::fs::write(&input_file, &input).map_err(|e| TrainError::io(&input_file, e))?;
    if run.finished(&crate::rl::run_fingerprint(options, tasks))? {
        log(&format!("{name}: done"));
        return Ok(dir);
    }
    log(&format!("{name}: RL on {} tasks", tasks.len()));
    let policy = Policy::load(start, device)?;
    crate::rl::train(policy, tasks, options, rewards, &run)?;
    Ok(dir)
}

/// SHA-256 of a model directory's weight files (what a stage starting from it depends on).
fn weights_digest(model: &Path) -> Result<String, TrainError> {
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

/// Evaluate a model on every family's test split at the curriculum levels and on the domain
/// set (cached by stage name).
fn evaluate_stage(
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
    let sampler = policy.untracked()?;
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
        evaluate(&sampler, &policy.codec, &families, tokens, rewards)?,
        evaluate(&sampler, &policy.codec, &domain, tokens, rewards)?,
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

fn report_row(model: &str, families: &EvalReport, domain: &EvalReport) -> ReportRow {
    let names = self::families();
    let by_family: BTreeMap<String, f64> = names
        .iter()
        .map(|f| (f.to_string(), families.family_accuracy(f).unwrap_or(0.0)))
        .collect();
    let family_average = by_family.values().sum::<f64>() / names.len() as f64;
    let overall = (by_family.values().sum::<f64>() + domain.accuracy) / (names.len() + 1) as f64;
    ReportRow {
        model: model.into(),
        families: by_family,
        family_average,
        domain: domain.accuracy,
        overall,
    }
}

/// The training curves: SFT loss, each specialist's reward, both domain runs' reward.
fn curves(layout: &Layout) -> Vec<Panel> {
    let series = |stage: &str, pick: &dyn Fn(&metrics::StepMetrics) -> Option<f64>| {
        let log = metrics::read(&layout.stage(stage).join("metrics.jsonl")).unwrap_or_default();
        let points: Vec<(f64, f64)> = log
            .iter()
            .filter_map(|m| pick(m).map(|v| (m.step as f64, v)))
            .collect();
        smooth(&points, 5)
    };
    let mut panels = Vec::new();
    let sft = series("base", &|m| (m.phase == "sft").then_some(m.loss));
    if !sft.is_empty() {
        panels.push(Panel {
            title: "base: SFT loss".into(),
            series: vec![("loss".into(), sft)],
        });
    }
    panels.push(Panel {
        title: "specialists: RL reward".into(),
        series: families()
            .iter()
            .map(|f| {
                (
                    f.to_string(),
                    series(&format!("specialist-{f}"), &|m| m.reward_mean),
                )
            })
            .collect(),
    });
    panels.push(Panel {
        title: "domain RL: reward".into(),
        series: vec![
            (
                "from base".into(),
                series("domain-from-base", &|m| m.reward_mean),
            ),
            (
                "from merged".into(),
                series("domain-from-merged", &|m| m.reward_mean),
            ),
        ],
    });
    panels
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

/// Run (or finish) the pipeline into `out`.
pub fn run(
    config: &PipelineConfig,
    out: &Path,
    device: &Device,
) -> Result<PipelineReport, TrainError> {
    config.validate()?;
    let layout = Layout {
        root: out.to_path_buf(),
    };
    std::fs::create_dir_all(out).map_err(|e| TrainError::io(out, e))?;
    std::fs::write(
        out.join("pipeline.json"),
        serde_json::to_string_pretty(config).expect("json"),
    )
    .map_err(|e| TrainError::io(out, e))?;
    let rewards = RewardSource::InProcess(config.reward);
    log("data");
    make_data(config, &layout)?;
    let base = make_base(config, &layout, device)?;
    let mut rows = Vec::new();
    let (f, d) = evaluate_stage("base", &base, config, &layout, &rewards, device)?;
    rows.push(report_row("base", &f, &d));

    let mut specialists = Vec::new();
    for (i, family) in families().into_iter().enumerate() {
        let tasks = select(&layout, Split::Train, &[family], &config.levels, None)?;
        let options = rl_options(
            &config.specialist,
            config.levels.clone(),
            config.seed + 1 + i as u64,
        );
        let name = format!("specialist-{family}");
        let dir = rl_stage(&name, &base, &tasks, &options, &rewards, &layout, device)?;
        let (f, d) = evaluate_stage(&name, &dir, config, &layout, &rewards, device)?;
        rows.push(report_row(&format!("{family} specialist"), &f, &d));
        specialists.push(dir);
    }

    let merged = layout.stage("merged");
    let weights: Vec<f64> = families()
        .iter()
        .map(|f| config.merge.weights[*f])
        .collect();
    if !same_merge(&merged, &specialists, &weights, config.merge.normalize) {
        let summary = crate::merge::merge(&specialists, &weights, config.merge.normalize, &merged)?;
        log(&format!(
            "merged with weights {:?}",
            summary.effective_weights
        ));
    }
    let (f, d) = evaluate_stage("merged", &merged, config, &layout, &rewards, device)?;
    rows.push(report_row("merged", &f, &d));

    let domain_families: Vec<&str> = config.domain.families.iter().map(String::as_str).collect();
    let domain_tasks = select(
        &layout,
        Split::Train,
        &domain_families,
        &config.domain.levels,
        None,
    )?;
    for (name, start, label) in [
        ("domain-from-base", &base, "domain RL from base"),
        ("domain-from-merged", &merged, "domain RL from merged"),
    ] {
        // Both runs see the same prompts and draws: only the starting model differs.
        let options = rl_options(
            &config.domain.rl,
            config.domain.levels.clone(),
            config.seed + 10,
        );
        let dir = rl_stage(
            name,
            start,
            &domain_tasks,
            &options,
            &rewards,
            &layout,
            device,
        )?;
        let (f, d) = evaluate_stage(name, &dir, config, &layout, &rewards, device)?;
        rows.push(report_row(label, &f, &d));
    }

    let report = PipelineReport {
        rows,
        config: config.clone(),
    };
    std::fs::write(out.join("report.md"), report.markdown()).map_err(|e| TrainError::io(out, e))?;
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&report).expect("json"),
    )
    .map_err(|e| TrainError::io(out, e))?;
    crate::plot::draw(&out.join("curves.png"), &curves(&layout))?;
    Ok(report)
}
