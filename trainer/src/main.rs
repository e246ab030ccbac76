//! `triad-train`: the command line of triad-trainer (a thin shell over the library).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use candle_core::Device;
use clap::{Args, Parser, Subcommand};
use triad::generators::Split;
use triad::reward::Preset;
use triad_trainer::advantage::Estimator;
use triad_trainer::data::{Selection, Task, load_tasks};
use triad_trainer::optim::AdamWConfig;
use triad_trainer::policy::{Policy, init_for_tasks};
use triad_trainer::reward::RewardSource;
use triad_trainer::rl::{LossOptions, RlOptions};
use triad_trainer::run::RunDir;
use triad_trainer::sample::SampleOptions;
use triad_trainer::sft::SftOptions;
use triad_trainer::{eval, merge, metrics, plot, rl, sft};

/// Training allocates and frees tensors of tens of megabytes every op; glibc's malloc hands those
/// to mmap/munmap each time (more system time than user time in a pipeline run). mimalloc keeps
/// them in its own pages.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Train language models on triad's tasks: SFT, RL with a curriculum, merge, evaluate.
#[derive(Parser)]
#[command(name = "triad-train", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a randomly initialised model of a named size with a tokenizer trained on the data.
    Init(InitArgs),
    /// Supervised warm-up on (prompt, reference answer) pairs; loss on answer tokens only.
    Sft(SftArgs),
    /// RL: sample rollouts, score them with triad, update the policy (REINFORCE++ or GRPO).
    Rl(RlArgs),
    /// Linear merge of checkpoints in parameter space, streaming tensor by tensor.
    Merge(MergeArgs),
    /// Greedy-decode a split and report accuracy and reward per family and level.
    Eval(EvalArgs),
    /// Draw a training log (metrics.jsonl) as PNG curves.
    Plot(PlotArgs),
    /// The paper's recipe end to end: base → specialists → merge → domain RL, with a report.
    Pipeline(PipelineArgs),
}

#[derive(Args)]
struct PipelineArgs {
    /// The pipeline configuration (TOML; see trainer/pipeline.toml).
    #[arg(long)]
    config: PathBuf,
    /// Output directory (each stage in a subdirectory; finished stages are skipped on a re-run).
    #[arg(long, default_value = "runs/pipeline")]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArgs,
}

#[derive(Args, Clone)]
struct DataArgs {
    /// A triad dataset directory (from `triad generate`); required, except by `rl --online`.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Families to use (comma-separated; default all).
    #[arg(long, value_delimiter = ',')]
    families: Vec<String>,
    /// Levels to use, as `triad generate --levels` writes them (`1-5`, `1,3,7`; default all).
    #[arg(long)]
    levels: Option<triad::levels::LevelSet>,
    /// At most this many tasks per family and level.
    #[arg(long)]
    limit: Option<usize>,
}

impl DataArgs {
    fn load(&self, split: Split) -> Result<Vec<Task>> {
        let selection = Selection {
            split,
            families: self.families.iter().cloned().collect::<BTreeSet<_>>(),
            levels: self
                .levels
                .iter()
                .flat_map(|l| l.0.iter().copied())
                .collect(),
            per_level: self.limit,
        };
        let Some(data) = &self.data else {
            bail!("--data DIR is required (a `triad generate` dataset)");
        };
        Ok(load_tasks(data, &selection)?)
    }
}

#[derive(Args, Clone)]
struct DeviceArgs {
    /// `cpu`, or `cuda` / `cuda:N` (needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
}

impl DeviceArgs {
    fn device(&self) -> Result<Device> {
        match self.device.as_str() {
            "cpu" => Ok(Device::Cpu),
            other => {
                let ordinal = match other.strip_prefix("cuda") {
                    Some("") => 0,
                    Some(rest) => rest
                        .trim_start_matches(':')
                        .parse()
                        .context("bad cuda ordinal")?,
                    None => bail!("unknown device {other:?}; use cpu or cuda[:N]"),
                };
                Ok(
                    Device::new_cuda(ordinal)
                        .context("cuda device (build with --features cuda)")?,
                )
            }
        }
    }
}

#[derive(Args, Clone)]
struct InitOptions {
    /// Vocabulary size of the BPE tokenizer trained on the task text.
    #[arg(long, default_value_t = 1024)]
    vocab_size: usize,
    /// Longest sequence (prompt + response) the model handles.
    #[arg(long, default_value_t = 1024)]
    max_positions: usize,
}

#[derive(Args)]
struct InitArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Size: micro (~0.1M parameters), tiny (~1M), small (~5M), base (~30M).
    #[arg(long, default_value = "tiny")]
    size: String,
    #[command(flatten)]
    init: InitOptions,
    /// Seed of the initial weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output model directory.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args, Clone)]
struct OptimArgs {
    /// Learning rate (default: SFT's fixed rate; RL's by model size, printed when chosen).
    #[arg(long)]
    lr: Option<f64>,
    /// AdamW weight decay.
    #[arg(long, default_value_t = triad_trainer::optim::DEFAULT_WEIGHT_DECAY)]
    weight_decay: f64,
    /// Clip the global gradient norm to this (0: off).
    #[arg(long, default_value_t = triad_trainer::optim::DEFAULT_MAX_GRAD_NORM)]
    max_grad_norm: f64,
    /// Micro-batches per optimizer step (gradient accumulation).
    #[arg(long, default_value_t = 1)]
    grad_accum: usize,
}

impl OptimArgs {
    fn adamw(&self, default_lr: f64) -> AdamWConfig {
        AdamWConfig {
            lr: self.lr.unwrap_or(default_lr),
            weight_decay: self.weight_decay,
            ..AdamWConfig::default()
        }
    }
}

#[derive(Args)]
struct SftArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Start from this Hugging Face model directory.
    #[arg(long, conflicts_with = "init", required_unless_present = "init")]
    model: Option<PathBuf>,
    /// Start from a fresh model of this size (see `init`).
    #[arg(long)]
    init: Option<String>,
    #[command(flatten)]
    init_options: InitOptions,
    /// Output directory (final model, checkpoint, metrics.jsonl).
    #[arg(long)]
    out: PathBuf,
    /// Optimizer steps.
    #[arg(long, default_value_t = 200)]
    steps: u64,
    /// Sequences per step.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// The completion trained: the answer only, or the solver's reasoning trace then the answer.
    #[arg(long, value_enum, default_value_t = sft::DEFAULT_TARGET)]
    target: sft::Target,
    #[command(flatten)]
    optim: OptimArgs,
    /// Seed (initial weights with --init, batch order).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Checkpoint every this many steps.
    #[arg(long, default_value_t = 50)]
    save_every: u64,
    #[command(flatten)]
    device: DeviceArgs,
}

#[derive(Args)]
struct RewardArgs {
    /// Reward preset.
    #[arg(long, value_enum, default_value_t = Preset::Paper)]
    reward: Preset,
    /// Score with a running `triad serve` (http://host:port) instead of in process.
    #[arg(long)]
    reward_url: Option<String>,
    /// Bearer token for the reward server.
    #[arg(long, env = "TRIAD_API_KEY")]
    api_key: Option<String>,
}

impl RewardArgs {
    fn source(&self) -> Result<RewardSource> {
        Ok(RewardSource::new(
            self.reward_url.as_deref(),
            self.reward,
            self.api_key.clone(),
        )?)
    }
}

/// `rl --online`: fresh tasks made in process instead of a dataset.
#[derive(Args)]
struct OnlineArgs {
    /// Draw every step's prompts fresh (no --data): the families of --families, at the levels an
    /// adaptive session earns (or --online-level), as `triad serve`'s /tasks and sessions do.
    #[arg(long)]
    online: bool,
    /// A fixed level instead of the adaptive schedule.
    #[arg(long, requires = "online")]
    online_level: Option<u8>,
    /// The online streams' seed.
    #[arg(long, default_value_t = triad::online::DEFAULT_TASK_SEED)]
    online_seed: u64,
    /// The online prompts' style (match the data the model was trained on).
    #[arg(long, value_enum, default_value = "chat")]
    online_prompt_style: triad::generators::PromptStyle,
    #[command(flatten)]
    adaptive: triad::online::session::AdaptiveFlags,
}

impl OnlineArgs {
    fn tasks(&self, families: &[String]) -> Result<triad_trainer::online::OnlineTasks> {
        Ok(triad_trainer::online::OnlineTasks::new(
            triad_trainer::online::OnlineConfig {
                families: families.to_vec(),
                level: self.online_level,
                seed: self.online_seed,
                style: self.online_prompt_style,
                adaptive: self.adaptive.options()?,
            },
        )?)
    }
}

#[derive(Args)]
struct RlArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    online: OnlineArgs,
    /// The starting model (a Hugging Face model directory, e.g. an SFT output).
    #[arg(long)]
    model: PathBuf,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Optimizer steps.
    #[arg(long, default_value_t = rl::DEFAULT_STEPS)]
    steps: u64,
    /// Prompts per step.
    #[arg(long, default_value_t = rl::DEFAULT_PROMPTS)]
    prompts: usize,
    /// Rollouts per prompt.
    #[arg(long, default_value_t = rl::DEFAULT_ROLLOUTS)]
    rollouts: usize,
    /// Advantage estimator.
    #[arg(long, value_enum, default_value_t = rl::DEFAULT_ESTIMATOR)]
    estimator: Estimator,
    /// Sampling temperature.
    #[arg(long, default_value_t = rl::DEFAULT_TEMPERATURE)]
    temperature: f64,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = rl::DEFAULT_TOP_P)]
    top_p: f64,
    /// Longest response in tokens.
    #[arg(long, default_value_t = rl::DEFAULT_MAX_NEW_TOKENS)]
    max_new_tokens: usize,
    /// KL-to-reference coefficient (added to the loss; 0 turns the reference off).
    #[arg(long, default_value_t = rl::DEFAULT_KL_COEF)]
    kl_coef: f64,
    /// Entropy bonus coefficient.
    #[arg(long, default_value_t = rl::DEFAULT_ENTROPY_COEF)]
    entropy_coef: f64,
    /// PPO clip range.
    #[arg(long, default_value_t = rl::DEFAULT_CLIP)]
    clip: f64,
    /// Optimizer passes over each step's rollouts.
    #[arg(long, default_value_t = 1)]
    ppo_epochs: usize,
    #[command(flatten)]
    optim: OptimArgs,
    /// Curriculum levels, in order (default: the data's levels, ascending).
    #[arg(long = "curriculum", value_delimiter = ',')]
    curriculum: Vec<u8>,
    /// Advance a level when rollout accuracy over the window reaches this.
    #[arg(long, default_value_t = rl::DEFAULT_ADVANCE_ACCURACY)]
    advance_accuracy: f64,
    /// Rollouts the advance rule looks at.
    #[arg(long, default_value_t = rl::DEFAULT_ADVANCE_WINDOW)]
    advance_window: usize,
    /// Advance after this many steps at a level regardless.
    #[arg(long)]
    max_steps_per_level: Option<u64>,
    /// Share of each step's prompts drawn from the levels already left behind, in [0, 1).
    #[arg(long, default_value_t = rl::DEFAULT_REPLAY)]
    replay: f64,
    #[command(flatten)]
    reward: RewardArgs,
    /// Seed of prompt choice and sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Checkpoint every this many steps.
    #[arg(long, default_value_t = 10)]
    save_every: u64,
    #[command(flatten)]
    device: DeviceArgs,
}

#[derive(Args)]
struct MergeArgs {
    /// Model directories to merge (comma-separated).
    #[arg(long, value_delimiter = ',', required = true)]
    inputs: Vec<PathBuf>,
    /// One weight per input (comma-separated); the paper's are 1.0,0.2,0.1.
    #[arg(
        long,
        value_delimiter = ',',
        required = true,
        allow_negative_numbers = true
    )]
    weights: Vec<f64>,
    /// Divide the weights by their sum (mergekit's `linear` does this by default).
    #[arg(long)]
    normalize: bool,
    /// Output model directory.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct EvalArgs {
    /// The model directory.
    #[arg(long)]
    model: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// The split to evaluate.
    #[arg(long, value_enum, default_value = "test")]
    split: Split,
    /// Longest response in tokens.
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    #[command(flatten)]
    reward: RewardArgs,
    /// Also write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write every task's response and score here, one JSON object per line.
    #[arg(long)]
    responses: Option<PathBuf>,
    /// Also write every task's teacher-forced loss on its SFT target (`--target`) here, one
    /// JSON object per line (id, target text, tokens, mean NLL), and print the mean.
    #[arg(long)]
    losses: Option<PathBuf>,
    /// The SFT target `--losses` scores.
    #[arg(long, value_enum, default_value_t = sft::DEFAULT_TARGET)]
    target: sft::Target,
    #[command(flatten)]
    device: DeviceArgs,
}

#[derive(Args)]
struct PlotArgs {
    /// A metrics.jsonl written by sft or rl; several give one curve per log in each panel, named
    /// by the directory that holds it.
    #[arg(required = true)]
    logs: Vec<PathBuf>,
    /// The PNG to write (default: next to the first log, curves.png).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn run_init(args: &InitArgs) -> Result<()> {
    let tasks = args.data.load(Split::Train)?;
    let policy = init_for_tasks(
        &args.size,
        &tasks,
        args.init.vocab_size,
        args.init.max_positions,
        args.seed,
        &Device::Cpu,
    )?;
    policy.save(&args.out)?;
    eprintln!(
        "wrote a {} model ({} parameters, vocabulary {}) to {}",
        args.size,
        policy.parameter_count(),
        policy.codec.vocab_size(),
        args.out.display()
    );
    Ok(())
}

fn start_policy(
    model: Option<&Path>,
    init: Option<&str>,
    options: &InitOptions,
    tasks: &[Task],
    seed: u64,
    device: &Device,
) -> Result<Policy> {
    match (model, init) {
        (Some(dir), _) => {
            Policy::load(dir, device).with_context(|| format!("loading {}", dir.display()))
        }
        (None, Some(size)) => Ok(init_for_tasks(
            size,
            tasks,
            options.vocab_size,
            options.max_positions,
            seed,
            device,
        )?),
        (None, None) => bail!("give --model DIR or --init SIZE"),
    }
}

fn run_sft(args: &SftArgs) -> Result<()> {
    let device = args.device.device()?;
    let tasks = args.data.load(Split::Train)?;
    let policy = start_policy(
        args.model.as_deref(),
        args.init.as_deref(),
        &args.init_options,
        &tasks,
        args.seed,
        &device,
    )?;
    eprintln!(
        "SFT on {} tasks, model of {} parameters",
        tasks.len(),
        policy.parameter_count()
    );
    let options = SftOptions {
        steps: args.steps,
        batch_size: args.batch_size,
        target: args.target,
        grad_accum: args.optim.grad_accum,
        optim: args.optim.adamw(1e-3),
        max_grad_norm: args.optim.max_grad_norm,
        seed: args.seed,
        save_every: args.save_every,
        log_every: 10,
    };
    let run = RunDir::create(&args.out)?;
    sft::train(policy, &tasks, &options, &run)?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

fn run_rl(args: &RlArgs) -> Result<()> {
    let device = args.device.device()?;
    if args.online.online && args.data.data.is_some() {
        bail!("--online makes its tasks: leave out --data");
    }
    let tasks = if args.online.online {
        Vec::new()
    } else {
        args.data.load(Split::Train)?
    };
    let policy = Policy::load(&args.model, &device)
        .with_context(|| format!("loading {}", args.model.display()))?;
    let levels = if args.curriculum.is_empty() {
        tasks
            .iter()
            .map(|t| t.level)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    } else {
        args.curriculum.clone()
    };
    let options = RlOptions {
        steps: args.steps,
        prompts: args.prompts,
        rollouts: args.rollouts,
        estimator: args.estimator,
        sample: SampleOptions {
            temperature: args.temperature,
            top_p: args.top_p,
            max_new_tokens: args.max_new_tokens,
        },
        loss: LossOptions {
            clip: args.clip,
            kl_coef: args.kl_coef,
            entropy_coef: args.entropy_coef,
        },
        ppo_epochs: args.ppo_epochs,
        grad_accum: args.optim.grad_accum,
        optim: AdamWConfig {
            lr: args.optim.lr.unwrap_or_else(|| rl_default_lr(&policy)),
            ..args.optim.adamw(rl::DEFAULT_LR)
        },
        max_grad_norm: args.optim.max_grad_norm,
        levels,
        advance_accuracy: args.advance_accuracy,
        advance_window: args.advance_window,
        max_steps_per_level: args.max_steps_per_level,
        replay: args.replay,
        seed: args.seed,
        save_every: args.save_every,
        log_every: 1,
    };
    let run = RunDir::create(&args.out)?;
    let rewards = args.reward.source()?;
    if args.online.online {
        let mut online = args.online.tasks(&args.data.families)?;
        rl::train_on(
            policy,
            rl::Prompts::Online(&mut online),
            &options,
            &rewards,
            &run,
        )?;
    } else {
        rl::train(policy, &tasks, &options, &rewards, &run)?;
    }
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

/// RL's learning rate when `--lr` is not given, by model size, said out loud: the rate that
/// suits a tiny model would wreck a pretrained one.
fn rl_default_lr(policy: &Policy) -> f64 {
    let parameters = policy.parameter_count();
    let lr = rl::default_lr(parameters);
    eprintln!(
        "rl: learning rate {lr:e} (the default for {:.1} M parameters; --lr overrides)",
        parameters as f64 / 1e6
    );
    lr
}

fn run_merge(args: &MergeArgs) -> Result<()> {
    let summary = merge::merge(&args.inputs, &args.weights, args.normalize, &args.out)?;
    let weights: Vec<String> = summary
        .effective_weights
        .iter()
        .map(|w| format!("{w:.4}"))
        .collect();
    eprintln!(
        "merged {} tensors of {} models with weights {} into {}",
        summary.tensors,
        summary.inputs.len(),
        weights.join(", "),
        args.out.display()
    );
    Ok(())
}

fn run_eval(args: &EvalArgs) -> Result<()> {
    let device = args.device.device()?;
    let tasks = args.data.load(args.split)?;
    let policy = Policy::load(&args.model, &device)
        .with_context(|| format!("loading {}", args.model.display()))?;
    let report = eval::evaluate(&policy, &tasks, args.max_new_tokens, &args.reward.source()?)?;
    print!("{}", report.markdown());
    eprintln!("{:.0} generated tokens/s", report.tokens_per_s);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.responses {
        let mut lines = String::new();
        for sample in &report.samples {
            lines.push_str(&serde_json::to_string(sample)?);
            lines.push('\n');
        }
        std::fs::write(path, lines).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.losses {
        write_target_losses(&policy, &tasks, args.target, path)?;
    }
    Ok(())
}

fn write_target_losses(
    policy: &Policy,
    tasks: &[Task],
    target: sft::Target,
    path: &Path,
) -> Result<()> {
    let losses = eval::target_losses(policy, tasks, target)?;
    let mut lines = String::new();
    for loss in &losses {
        lines.push_str(&serde_json::to_string(loss)?);
        lines.push('\n');
    }
    std::fs::write(path, lines).with_context(|| format!("writing {}", path.display()))?;
    let tokens: usize = losses.iter().map(|l| l.tokens).sum();
    let total: f64 = losses.iter().map(|l| l.nll * l.tokens as f64).sum();
    eprintln!(
        "SFT-target loss {:.6} per token over {} tasks ({tokens} tokens)",
        total / tokens.max(1) as f64,
        losses.len()
    );
    Ok(())
}

fn run_plot(args: &PlotArgs) -> Result<()> {
    // One curve per log, named by the run directory that holds it when there are several.
    let mut runs = Vec::new();
    for path in &args.logs {
        let name = match args.logs.len() {
            1 => String::new(),
            _ => path.parent().and_then(|d| d.file_name()).map_or_else(
                || path.display().to_string(),
                |d| d.to_string_lossy().into(),
            ),
        };
        runs.push((name, metrics::read(path)?));
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.logs[0].with_file_name("curves.png"));
    plot::draw(&out, &plot::runs_panels(&runs))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

fn run_pipeline(args: &PipelineArgs) -> Result<()> {
    let config = triad_trainer::pipeline::PipelineConfig::read(&args.config)?;
    let started = std::time::Instant::now();
    let report = triad_trainer::pipeline::run(&config, &args.out, &args.device.device()?)?;
    print!("{}", report.markdown());
    eprintln!(
        "wrote {}/report.md, report.json and curves.png in {:.0} s",
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// mimalloc's option that keeps freed memory mapped.
const PURGE_DELAY: &str = "MIMALLOC_PURGE_DELAY";

/// Re-execute this process once with mimalloc told never to return freed memory to the OS.
///
/// By default mimalloc gives freed pages back after 10 ms. Training frees and re-allocates tens
/// of MB per tensor op, so nearly every op faulted its pages in again and the kernel zeroed them:
/// 28% of an SFT step's time was `clear_page` (perf). Never purging made the same steps 1.3×
/// faster with identical losses (BENCHMARKS.md). mimalloc reads its options from the environment
/// when the process starts, hence the `exec` (same process id; the user's own setting is kept).
#[cfg(unix)]
fn retain_freed_memory() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(PURGE_DELAY).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let error = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(PURGE_DELAY, "-1")
        .exec();
    // `exec` returns only when it failed: carry on with mimalloc's defaults.
    eprintln!("note: could not re-execute with {PURGE_DELAY}=-1 ({error}); continuing");
}

#[cfg(not(unix))]
fn retain_freed_memory() {}

fn main() -> ExitCode {
    retain_freed_memory();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Init(a) => run_init(a),
        Command::Sft(a) => run_sft(a),
        Command::Rl(a) => run_rl(a),
        Command::Merge(a) => run_merge(a),
        Command::Eval(a) => run_eval(a),
        Command::Plot(a) => run_plot(a),
        Command::Pipeline(a) => run_pipeline(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
