//! `triad`: generate datasets and score rollouts. A thin shell over the `triad` library.

use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use triad::dataset::{self, GenerateConfig};
use triad::generators::{DynFamily, GenOptions, OptionSet, PromptStyle, registry};
use triad::reward::Preset;

/// Generation makes and drops millions of small strings and vectors (rendered formulas, parsed
/// premises, rows): under glibc's allocator malloc and free were a third of an abduction level-1
/// run into Parquet; mimalloc's thread-local free lists make them cheap (BENCHMARKS.md, issue 21).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Self-verifiable reasoning tasks (every family in the registry) and their rewards.
#[derive(Parser)]
#[command(name = "triad", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a dataset of Parquet shards (defaults: every family, levels 1–5, into ./data).
    Generate(GenerateArgs),
    /// Score JSONL rollouts ({"response", "label", "prompt"?} per line) to JSONL results.
    Score(ScoreArgs),
    /// Serve rewards over HTTP (OpenRLHF `/get_reward`, batch `/score`, `/health`, `/metrics`).
    Serve(ServeArgs),
    /// Re-read a dataset: checksums, ids, splits, Z3 re-certification, reference answers re-scored.
    /// Exits 1 and names the rows on any problem.
    Verify {
        /// The dataset directory (with manifest.json).
        dir: PathBuf,
        /// Skip the Z3 re-certification (faster; everything else is still checked).
        #[arg(long)]
        no_certify: bool,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// No progress bar (it is drawn only when stderr is a terminal).
        #[arg(long)]
        quiet: bool,
    },
    /// Audit a dataset: duplicates, train/test overlap, label distributions, shortcut predictors.
    /// Writes audit.json and the dataset card's audit section; exits 1 if a level is flagged.
    Audit {
        /// The dataset directory (with manifest.json).
        dir: PathBuf,
        /// No progress bar (it is drawn only when stderr is a terminal).
        #[arg(long)]
        quiet: bool,
    },
    /// Manifest tools: `merge` joins fan-out workers' partial manifests.
    Manifest {
        #[command(subcommand)]
        action: ManifestAction,
    },
    /// Throughput per family and level: generation (with and without Z3), Z3 checks, scoring of
    /// synthetic rollouts, end-to-end rows into Parquet; one thread and all threads.
    Bench(BenchArgs),
    /// Print a published schema: `row` (Parquet columns) or `label` (label JSON schema).
    Schema {
        /// `row` or `label`.
        which: String,
    },
}

#[derive(clap::Args)]
struct BenchArgs {
    /// A run of well under a minute (short windows); the default takes a few minutes.
    #[arg(long)]
    quick: bool,
    /// Comma-separated families (default: all).
    #[arg(long, value_delimiter = ',')]
    families: Option<Vec<String>>,
    /// Levels: `1-10`, `1,3,7` (default: every level of each family).
    #[arg(long)]
    levels: Option<String>,
    /// Threads for the all-threads figures (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Measurement window per figure in milliseconds (overrides --quick's and the default).
    #[arg(long)]
    window_ms: Option<u64>,
    /// Also write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// Output directory.
    #[arg(long, default_value = "data")]
    out: PathBuf,
    /// Comma-separated families (default: all).
    #[arg(long, value_delimiter = ',')]
    families: Option<Vec<String>>,
    /// Levels: a range `1-5`, a list `1,3,7`, or both `1-3,7`.
    #[arg(long, default_value = "1-5")]
    levels: String,
    /// Train items per family and level.
    #[arg(long, default_value_t = 200)]
    train: u64,
    /// Test items per family and level.
    #[arg(long, default_value_t = 50)]
    test: u64,
    /// Master seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Prompt style: `chat` (messages, no template tokens), `paper` (the paper's exact string) or
    /// `compact` (one user message, the puzzle and a format hint: for small models trained here).
    #[arg(long, value_enum, default_value = "chat")]
    prompt_style: PromptStyle,
    /// Rows per shard.
    #[arg(long, default_value_t = 10_000)]
    shard_rows: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Cross-check every instance with Z3, even where the fast exact path decided it.
    #[arg(long)]
    certify: bool,
    /// Set a family's generation option (repeatable; after the per-option flags below, which
    /// are the same options under their own names). FAMILY may be left out: keys are unique.
    #[arg(long = "option", value_name = "[FAMILY.]KEY=VALUE")]
    options: Vec<String>,
    /// Replace shards written with another configuration instead of refusing.
    #[arg(long)]
    overwrite: bool,
    /// The licence the dataset card declares (a Hugging Face Hub licence identifier).
    #[arg(long, default_value = dataset::DEFAULT_LICENSE)]
    license: String,
    /// Fan out over this many workers (Slurm array, Kubernetes indexed job, Ray tasks): each
    /// generates its round-robin share of the (family, level)s (train and test together) into the same --out,
    /// byte-identical to a single run; then `triad manifest merge --num-shards N`.
    #[arg(long)]
    num_shards: Option<u64>,
    /// This worker's index, 0-based (default: $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX).
    #[arg(long, requires = "num_shards")]
    shard_index: Option<u64>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Subcommand)]
enum ManifestAction {
    /// Join the partial manifests of `--num-shards` workers into manifest.json and the card.
    Merge {
        /// The dataset directory the workers wrote into.
        dir: PathBuf,
        /// How many workers there were.
        #[arg(long)]
        num_shards: u64,
    },
}

#[derive(clap::Args)]
struct ScoreArgs {
    /// Input JSONL (default: stdin).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Output JSONL (default: stdout).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Reward preset.
    #[arg(long, value_enum, default_value = "paper")]
    reward: Preset,
    /// Longest input line in bytes; a longer line scores as `bad_input` and is skipped unread.
    #[arg(long, default_value_t = triad::score_file::DEFAULT_MAX_LINE_BYTES)]
    max_line_bytes: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to bind (use 0.0.0.0 to accept connections from other hosts).
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Port (0 picks a free one; the address is printed on stderr).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Default reward preset (a request may override it with "reward").
    #[arg(long, value_enum, default_value = "paper")]
    reward: Preset,
    /// Require `Authorization: Bearer KEY` on scoring requests.
    #[arg(long, env = "TRIAD_API_KEY")]
    api_key: Option<String>,
    /// Largest request body in bytes (larger ones get 413).
    #[arg(long, default_value_t = triad::server::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Per-item time bound in milliseconds (an item over it scores as `timeout`).
    #[arg(long, default_value_t = ms(triad::server::DEFAULT_ITEM_TIMEOUT))]
    item_timeout_ms: u64,
    /// Time a client has to send a request's headers, in milliseconds; also how long an idle
    /// keep-alive connection stays open.
    #[arg(long, default_value_t = ms(triad::server::DEFAULT_HEADER_READ_TIMEOUT))]
    header_timeout_ms: u64,
    /// Time a client has to send a request's body, in milliseconds (then 408).
    #[arg(long, default_value_t = ms(triad::server::DEFAULT_BODY_READ_TIMEOUT))]
    body_timeout_ms: u64,
    /// Most open connections; one more is closed at once.
    #[arg(long, default_value_t = triad::server::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// After SIGINT/SIGTERM, how long in-flight requests get to finish, in milliseconds, before
    /// the remaining connections are dropped.
    #[arg(long, default_value_t = ms(triad::server::DEFAULT_SHUTDOWN_GRACE))]
    shutdown_grace_ms: u64,
    /// Scoring threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// `POST /tasks`: the seed of streams whose request names none.
    #[arg(long, default_value_t = triad::online::DEFAULT_TASK_SEED)]
    task_seed: u64,
    /// `POST /tasks`: the prompt style of requests that name none.
    #[arg(long, value_enum, default_value = "chat")]
    task_prompt_style: PromptStyle,
    /// `POST /tasks`: set a family's generation option, as `triad generate --option` does
    /// (repeatable; a dataset made with the same options holds the same rows).
    #[arg(long = "task-option", value_name = "[FAMILY.]KEY=VALUE")]
    task_options: Vec<String>,
    /// `POST /tasks`: most tasks one request may ask for.
    #[arg(long, default_value_t = triad::online::DEFAULT_MAX_TASKS)]
    max_tasks: usize,
    /// `POST /tasks`: how long one request may generate for, in milliseconds; past it the tasks
    /// made so far are returned with `"truncated": true`.
    #[arg(long, default_value_t = ms(triad::server::DEFAULT_TASK_TIMEOUT))]
    task_timeout_ms: u64,
    /// Keep sessions in this directory (one JSON file each), so they survive a restart; without
    /// it they live in memory only. One directory per server: see the README on replicas.
    #[arg(long)]
    sessions_dir: Option<std::path::PathBuf>,
    /// Most sessions kept; creating one more is refused (409).
    #[arg(long, default_value_t = triad::online::store::DEFAULT_MAX_SESSIONS)]
    max_sessions: usize,
    #[command(flatten)]
    adaptive: triad::online::session::AdaptiveFlags,
}

/// A duration as whole milliseconds, for flag defaults.
const fn ms(duration: Duration) -> u64 {
    duration.as_millis() as u64
}

fn serve(args: ServeArgs) -> Result<()> {
    let tasks = task_defaults(&args)?;
    let config = triad::server::ServerConfig {
        preset: args.reward,
        api_key: args.api_key,
        max_body_bytes: args.max_body_bytes,
        item_timeout: Duration::from_millis(args.item_timeout_ms),
        header_read_timeout: Duration::from_millis(args.header_timeout_ms),
        body_read_timeout: Duration::from_millis(args.body_timeout_ms),
        max_connections: args.max_connections,
        shutdown_grace: Duration::from_millis(args.shutdown_grace_ms),
        scoring_threads: args.threads.unwrap_or(0),
        tasks,
        task_timeout: Duration::from_millis(args.task_timeout_ms),
        sessions_dir: args.sessions_dir.clone(),
        max_sessions: args.max_sessions,
        adaptive: args.adaptive.options().context("--adaptive-* flags")?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let addr = std::net::SocketAddr::new(args.host, args.port);
    runtime
        .block_on(triad::server::serve(addr, config, |bound| {
            eprintln!("triad serve listening on http://{bound}");
        }))
        .with_context(|| format!("serve on {addr}"))?;
    eprintln!("triad serve: shut down");
    Ok(())
}

fn task_defaults(args: &ServeArgs) -> Result<triad::online::TaskDefaults> {
    let mut families = OptionSet::default();
    for assignment in &args.task_options {
        families
            .set(assignment)
            .with_context(|| format!("--task-option {assignment}"))?;
    }
    Ok(triad::online::TaskDefaults {
        seed: args.task_seed,
        style: args.task_prompt_style,
        options: GenOptions {
            certify: false,
            families,
        },
        max_tasks: args.max_tasks,
    })
}

/// The fan-out worker, if any: `--shard-index`, else the scheduler's index variable.
fn worker(count: Option<u64>, index: Option<u64>) -> Result<Option<(u64, u64)>> {
    let Some(count) = count else { return Ok(None) };
    let index = match index {
        Some(i) => i,
        None => ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"]
            .iter()
            .find_map(|var| std::env::var(var).ok())
            .context(
                "--num-shards needs --shard-index, $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX",
            )?
            .parse()
            .context("the worker index must be a non-negative integer")?,
    };
    if count == 0 || index >= count {
        bail!("worker index {index} is not below --num-shards {count}");
    }
    Ok(Some((index, count)))
}

/// Parse `1-5`, `1,3,7` or `1-3,7` into sorted distinct levels.
fn parse_levels(text: &str) -> Result<Vec<u8>> {
    Ok(text.parse::<triad::levels::LevelSet>()?.0)
}

fn resolve_families(names: Option<&[String]>) -> Result<Vec<&'static dyn DynFamily>> {
    let Some(names) = names else {
        return Ok(registry::FAMILIES.to_vec());
    };
    names
        .iter()
        .map(|n| {
            registry::family(n.trim()).with_context(|| {
                format!(
                    "unknown family {n:?}; this build has {}",
                    registry::names().join(", ")
                )
            })
        })
        .collect()
}

fn set_threads(threads: Option<usize>) -> Result<()> {
    if let Some(n) = threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("thread pool")?;
    }
    Ok(())
}

/// The id under which a family option's own flag is parsed.
fn option_flag_id(family: &str, key: &str) -> String {
    format!("option:{family}.{key}")
}

/// One flag per option of every family in the registry (`--unsat-ratio`), documented by the
/// family: the command line names no family itself.
fn with_family_option_flags(command: clap::Command) -> clap::Command {
    command.mut_subcommand("generate", |mut generate| {
        for family in registry::FAMILIES {
            let defaults = family.default_options();
            for doc in family.option_docs() {
                let default = defaults
                    .json()
                    .get(doc.key)
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .unwrap_or_default();
                generate = generate.arg(
                    clap::Arg::new(option_flag_id(family.name(), doc.key))
                        .long(doc.key.replace('_', "-"))
                        .value_name("VALUE")
                        .help(format!("{} [default: {default}]", doc.help))
                        .help_heading("Family options"),
                );
            }
        }
        generate
    })
}

/// The family options of a `generate` command line: the per-option flags, then `--option`s.
fn family_options(matches: &clap::ArgMatches, args: &GenerateArgs) -> Result<OptionSet> {
    let mut options = OptionSet::default();
    for family in registry::FAMILIES {
        for doc in family.option_docs() {
            let id = option_flag_id(family.name(), doc.key);
            if let Some(value) = matches.get_one::<String>(&id) {
                options
                    .set(&format!("{}.{}={value}", family.name(), doc.key))
                    .with_context(|| format!("--{}", doc.key.replace('_', "-")))?;
            }
        }
    }
    for assignment in &args.options {
        options
            .set(assignment)
            .with_context(|| format!("--option {assignment}"))?;
    }
    Ok(options)
}

fn generate(args: GenerateArgs, family_options: OptionSet) -> Result<()> {
    set_threads(args.threads)?;
    let families = resolve_families(args.families.as_deref())?;
    let levels = parse_levels(&args.levels)?;
    for family in &families {
        if let Some(level) = levels.iter().find(|l| !family.levels().contains(l)) {
            bail!(
                "{} has no level {level} (it has {:?})",
                family.name(),
                family.levels()
            );
        }
    }
    if args.shard_rows == 0 {
        bail!("--shard-rows must be positive");
    }
    let config = GenerateConfig {
        out: args.out,
        families,
        levels,
        train: args.train,
        test: args.test,
        seed: args.seed,
        style: args.prompt_style,
        shard_rows: args.shard_rows,
        options: GenOptions {
            certify: args.certify,
            families: family_options,
        },
        overwrite: args.overwrite,
        worker: worker(args.num_shards, args.shard_index)?,
        license: args.license,
    };
    let mut bar = ProgressObserver::new(!args.quiet);
    let manifest = dataset::generate::generate_with(&config, &mut bar)?;
    for entry in manifest.streams.iter().filter(|e| e.exhausted) {
        eprintln!(
            "warning: {} level {} {}: only {} distinct items exist ({} asked)",
            entry.family, entry.level, entry.split, entry.rows, entry.requested
        );
    }
    let shards: usize = manifest.streams.iter().map(|s| s.shards.len()).sum();
    eprintln!(
        "wrote {} rows in {shards} shards to {}",
        manifest.total_rows,
        config.out.display()
    );
    Ok(())
}

/// A bar on stderr drawn with `template`, or a hidden one when not `shown`.
fn styled_bar(shown: bool, template: &str) -> indicatif::ProgressBar {
    let bar = if shown {
        indicatif::ProgressBar::new(0)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// The bar of `verify` and `audit` on stderr: rows and shards done, rate, ETA. indicatif draws
/// nothing when stderr is not a terminal; `--quiet` hides it there too.
struct ShardBar {
    bar: indicatif::ProgressBar,
    shards: u64,
    done: u64,
}

impl ShardBar {
    fn new(shown: bool) -> ShardBar {
        ShardBar {
            bar: styled_bar(
                shown,
                "{elapsed_precise} [{bar:30}] {pos}/{len} rows, {msg} ({per_sec}, eta {eta})",
            ),
            shards: 0,
            done: 0,
        }
    }
}

impl triad::dataset::progress::Progress for ShardBar {
    fn begin(&mut self, rows: u64, shards: u64) {
        self.shards = shards;
        self.bar.set_length(rows);
        self.bar.set_message(format!("0/{shards} shards"));
    }

    fn shard_done(&mut self, rows: u64) {
        self.done += 1;
        self.bar.inc(rows);
        self.bar
            .set_message(format!("{}/{} shards", self.done, self.shards));
    }

    fn end(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// The generation progress bar on stderr (hidden with `--quiet`), and notices as `note:` lines.
struct ProgressObserver {
    bar: indicatif::ProgressBar,
}

impl ProgressObserver {
    fn new(shown: bool) -> ProgressObserver {
        ProgressObserver {
            bar: styled_bar(
                shown,
                "{elapsed_precise} [{bar:30}] {pos}/{len} items ({per_sec}, eta {eta}) {msg}",
            ),
        }
    }
}

impl dataset::generate::Observer for ProgressObserver {
    fn begin(&mut self, rows: u64) {
        self.bar.set_length(rows);
    }

    fn stream(&mut self, family: &str, level: u8, split: triad::generators::Split) {
        self.bar
            .set_message(format!("{family} level {level} {split}"));
    }

    fn rows(&mut self, rows: u64) {
        self.bar.inc(rows);
    }

    fn notice(&mut self, notice: dataset::generate::Notice) {
        self.bar.suspend(|| eprintln!("note: {notice}"));
    }

    fn end(&mut self) {
        self.bar.finish_and_clear();
    }
}

fn score(args: ScoreArgs) -> Result<()> {
    set_threads(args.threads)?;
    let input: Box<dyn io::BufRead> = match &args.input {
        Some(path) => Box::new(BufReader::new(
            File::open(path).with_context(|| format!("open {}", path.display()))?,
        )),
        None => Box::new(io::stdin().lock()),
    };
    let output: Box<dyn io::Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("create {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };
    let summary = triad::score_file::score_stream_with_limit(
        input,
        output,
        args.reward,
        args.max_line_bytes,
    )?;
    eprint!("{summary}");
    Ok(())
}

/// Returns whether no level is flagged.
fn audit(dir: &std::path::Path, quiet: bool) -> Result<bool> {
    let report = triad::dataset::audit::audit_with(dir, &mut ShardBar::new(!quiet))?;
    triad::dataset::audit::write(dir, &report)?;
    print!("{}", report.markdown());
    let flagged = report.flagged();
    for f in &flagged {
        println!("flagged: {f}");
    }
    eprintln!(
        "audited {} rows; {} flag(s); wrote audit.json and the card's audit section",
        report.rows,
        flagged.len()
    );
    Ok(flagged.is_empty())
}

/// Returns whether the dataset is clean.
fn verify(
    dir: &std::path::Path,
    certify: bool,
    threads: Option<usize>,
    quiet: bool,
) -> Result<bool> {
    set_threads(threads)?;
    let report = triad::dataset::verify::verify_with(dir, certify, &mut ShardBar::new(!quiet))?;
    const SHOWN: usize = 50;
    for problem in report.problems.iter().take(SHOWN) {
        println!("{problem}");
    }
    if report.problems.len() > SHOWN {
        println!("… and {} more", report.problems.len() - SHOWN);
    }
    eprintln!(
        "verified {} rows in {} shards{}: {} problem(s)",
        report.rows,
        report.shards,
        if certify { " (Z3 re-certified)" } else { "" },
        report.problems.len()
    );
    Ok(report.problems.is_empty())
}

fn schema(which: &str) -> Result<()> {
    let text = match which {
        "row" => serde_json::to_string_pretty(&dataset::schema::describe())?,
        "label" => serde_json::to_string_pretty(&triad::label_schema())?,
        other => bail!("unknown schema {other:?}: use `row` or `label`"),
    };
    println!("{text}");
    Ok(())
}

fn bench(args: BenchArgs) -> Result<()> {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut config = if args.quick {
        triad::bench::BenchConfig::quick(threads)
    } else {
        triad::bench::BenchConfig::full(threads)
    };
    config.families = resolve_families(args.families.as_deref())?;
    if let Some(levels) = &args.levels {
        config.levels = parse_levels(levels)?;
    }
    if let Some(ms) = args.window_ms {
        config.window = std::time::Duration::from_millis(ms);
    }
    let scratch = tempfile::tempdir().context("a scratch directory for the end-to-end runs")?;
    let report = triad::bench::run(&config, scratch.path(), |family, level| {
        eprint!("\rmeasuring {family} level {level}   ");
    })?;
    eprintln!();
    print!("{}", report.markdown());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let matches = with_family_option_flags(Cli::command()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Generate(args) => matches
            .subcommand_matches("generate")
            .context("generate's arguments")
            .and_then(|m| family_options(m, &args))
            .and_then(|options| generate(args, options)),
        Command::Score(args) => score(args),
        Command::Serve(args) => serve(args),
        Command::Manifest {
            action: ManifestAction::Merge { dir, num_shards },
        } => triad::dataset::merge_workers(&dir, num_shards)
            .map(|m| {
                eprintln!(
                    "merged {num_shards} workers: {} rows in {} streams",
                    m.total_rows,
                    m.streams.len()
                )
            })
            .map_err(Into::into),
        Command::Audit { dir, quiet } => {
            return match audit(&dir, quiet) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            };
        }
        Command::Verify {
            dir,
            no_certify,
            threads,
            quiet,
        } => {
            return match verify(&dir, !no_certify, threads, quiet) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            };
        }
        Command::Bench(args) => bench(args),
        Command::Schema { which } => schema(&which),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e)
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
