//! `triad bench`: standalone throughput figures for generation, certification, scoring and
//! end-to-end dataset writing, per family and level, on one thread and on all of them.
//!
//! Every measurement is a time window: workers take candidate indices (or items, or responses)
//! round-robin until the window closes, each finishing the unit it started, and the figure is
//! units over the wall time until the last worker stopped. Responses for the scoring figures are
//! synthesised deterministically from the items (correct answers, near misses, hedges, missing
//! tags, very long thinking), so figures compare across runs and machines.

mod harness;
mod report;
mod synthetic;

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use triad_generators::{
    DynFamily, GenOptions, Item, ItemCoords, PromptStyle, certify_item, registry,
};

use crate::dataset::{self, GenerateConfig};
use crate::reward::{Preset, score};

pub use harness::timed;
pub use report::human;
pub use synthetic::{near_miss, responses, thinking};

/// What to measure.
#[derive(Clone)]
pub struct BenchConfig {
    /// Families, in order.
    pub families: Vec<&'static dyn DynFamily>,
    /// Levels (those a family lacks are skipped); empty means every level of each family.
    pub levels: Vec<u8>,
    /// Length of each measurement window.
    pub window: Duration,
    /// Threads for the all-threads figures.
    pub threads: usize,
    /// Master seed.
    pub seed: u64,
    /// Items written per end-to-end measurement are the all-threads generation rate times this
    /// many windows (at least 10).
    pub e2e_windows: f64,
}

impl BenchConfig {
    /// The `--quick` settings: every family and level in well under a minute.
    pub fn quick(threads: usize) -> Self {
        BenchConfig {
            families: registry::FAMILIES.to_vec(),
            levels: Vec::new(),
            window: Duration::from_millis(40),
            threads,
            seed: 1,
            e2e_windows: 2.0,
        }
    }

    /// The default settings (about a second per figure).
    pub fn full(threads: usize) -> Self {
        BenchConfig {
            window: Duration::from_millis(700),
            e2e_windows: 3.0,
            ..BenchConfig::quick(threads)
        }
    }
}

/// The machine the figures were taken on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// CPU model name (from `/proc/cpuinfo` where there is one).
    pub cpu: String,
    /// Logical cores available to this process.
    pub cores: usize,
    /// `linux-x86_64`, …
    pub os: String,
}

impl Machine {
    /// Describe this machine.
    pub fn detect() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

/// The figures of one family and level.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LevelFigures {
    /// Family.
    pub family: String,
    /// Level.
    pub level: u8,
    /// Items/s generated (candidates drawn, rejections included in the cost; an item of either
    /// split counts, since one candidate stream feeds both), one thread.
    pub generate_1t: f64,
    /// Same, all threads.
    pub generate_nt: f64,
    /// Items/s generated and certified by Z3, all threads.
    pub generate_certify_nt: f64,
    /// Z3 certifications/s of generated items, one thread.
    pub z3_checks_1t: f64,
    /// Rollouts/s scored, one thread, by kind of response.
    pub score_1t: Vec<(String, f64)>,
    /// Correct rollouts/s scored, all threads.
    pub score_correct_nt: f64,
    /// Rows/s written end to end into Parquet (generate, dedup, encode, write), one thread.
    pub end_to_end_1t: f64,
    /// Same, all threads.
    pub end_to_end_nt: f64,
    /// True when the level has fewer distinct items than the end-to-end run asked for (its
    /// figures then include the search for items that do not exist).
    pub end_to_end_exhausted: bool,
    /// Rows the end-to-end run asked for (the all-threads generation rate times the window, so
    /// it depends on the machine and its load).
    pub end_to_end_rows: u64,
}

/// A whole run.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// triad's version.
    pub triad_version: String,
    /// The machine.
    pub machine: Machine,
    /// Threads used for the all-threads figures.
    pub threads: usize,
    /// Measurement window in seconds.
    pub window_s: f64,
    /// One entry per family and level.
    pub levels: Vec<LevelFigures>,
    /// Wall time of the whole run.
    pub seconds: f64,
}

fn coords(family: &'static dyn DynFamily, level: u8, seed: u64, index: u64) -> ItemCoords {
    ItemCoords {
        seed,
        family: family.name(),
        level,
        index,
    }
}

fn candidate(family: &'static dyn DynFamily, level: u8, seed: u64, index: u64) -> Option<Item> {
    family
        .candidate(
            &coords(family, level, seed, index),
            &GenOptions::default(),
            PromptStyle::Chat,
        )
        .ok()
        .flatten()
}

/// Generated items of a level (at least one, up to `count`, within about `window`).
pub(crate) fn sample_items(
    family: &'static dyn DynFamily,
    level: u8,
    seed: u64,
    count: usize,
    window: Duration,
) -> Vec<Item> {
    let started = Instant::now();
    let mut items = Vec::new();
    for index in 0.. {
        if let Some(item) = candidate(family, level, seed, index) {
            items.push(item);
        }
        let enough = items.len() >= count || (started.elapsed() > window && !items.is_empty());
        if enough || index > 1_000_000 {
            break;
        }
    }
    items
}

fn end_to_end(
    family: &'static dyn DynFamily,
    level: u8,
    config: &BenchConfig,
    rows: u64,
    threads: usize,
    scratch: &Path,
) -> Result<(f64, bool), dataset::DatasetError> {
    let out = scratch.join(format!("{}-{level}-{threads}", family.name()));
    let generate = GenerateConfig {
        out: out.clone(),
        families: vec![family],
        levels: vec![level],
        // Both splits in the proportion the content hash routes them (one test bucket of
        // `TEST_BUCKETS`), so a build that drops the other split's candidates pays for them.
        train: rows - rows / triad_generators::rng::TEST_BUCKETS,
        test: rows / triad_generators::rng::TEST_BUCKETS,
        seed: config.seed,
        style: PromptStyle::Chat,
        shard_rows: 10_000,
        options: GenOptions::default(),
        overwrite: true,
        worker: None,
        license: crate::dataset::DEFAULT_LICENSE.into(),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool");
    let started = Instant::now();
    let manifest = pool.install(|| dataset::generate(&generate))?;
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&out);
    let exhausted = manifest.streams.iter().any(|s| s.exhausted);
    Ok((manifest.total_rows as f64 / seconds, exhausted))
}

fn measure_level(
    family: &'static dyn DynFamily,
    level: u8,
    config: &BenchConfig,
    scratch: &Path,
) -> Result<LevelFigures, dataset::DatasetError> {
    let (seed, window, n) = (config.seed, config.window, config.threads);
    let generated = |i: u64| u64::from(candidate(family, level, seed, i).is_some());
    let generate_1t = timed(1, window, generated);
    let generate_nt = timed(n, window, generated);
    let generate_certify_nt = timed(n, window, |i| {
        candidate(family, level, seed, i).map_or(0, |item| u64::from(certify_item(&item).is_ok()))
    });
    let items = sample_items(family, level, seed + 1, 64, window);
    let z3_checks_1t = timed(1, window, |i| {
        let item = &items[i as usize % items.len()];
        u64::from(certify_item(item).is_ok())
    });
    let item = &items[0];
    let cases = responses(item);
    let score_window = window / 2;
    let score_1t = cases
        .iter()
        .map(|(kind, response)| {
            let rate = timed(1, score_window, |_| {
                std::hint::black_box(score(response, &item.label, None, Preset::Paper));
                1
            });
            (kind.to_string(), rate)
        })
        .collect();
    let correct = &cases[0].1;
    let score_correct_nt = timed(n, score_window, |_| {
        std::hint::black_box(score(correct, &item.label, None, Preset::Paper));
        1
    });
    let rows = ((generate_nt * window.as_secs_f64() * config.e2e_windows) as u64).max(10);
    let (end_to_end_1t, exhausted_1t) = end_to_end(family, level, config, rows, 1, scratch)?;
    let (end_to_end_nt, exhausted_nt) = end_to_end(family, level, config, rows, n, scratch)?;
    Ok(LevelFigures {
        family: family.name().to_string(),
        level,
        generate_1t,
        generate_nt,
        generate_certify_nt,
        z3_checks_1t,
        score_1t,
        score_correct_nt,
        end_to_end_1t,
        end_to_end_nt,
        end_to_end_exhausted: exhausted_1t || exhausted_nt,
        end_to_end_rows: rows,
    })
}

/// Run every measurement; `progress` is told each (family, level) as it starts.
pub fn run(
    config: &BenchConfig,
    scratch: &Path,
    mut progress: impl FnMut(&str, u8),
) -> Result<BenchReport, dataset::DatasetError> {
    let started = Instant::now();
    let mut levels = Vec::new();
    for &family in &config.families {
        for level in family.levels() {
            if !config.levels.is_empty() && !config.levels.contains(&level) {
                continue;
            }
            progress(family.name(), level);
            levels.push(measure_level(family, level, config, scratch)?);
        }
    }
    Ok(BenchReport {
        triad_version: env!("CARGO_PKG_VERSION").into(),
        machine: Machine::detect(),
        threads: config.threads,
        window_s: config.window.as_secs_f64(),
        levels,
        seconds: started.elapsed().as_secs_f64(),
    })
}
