//! `triad bench`: standalone throughput figures for generation, certification, scoring and
//! end-to-end dataset writing, per family and level, on one thread and on all of them.
//!
//! Every measurement is a time window: workers take candidate indices (or items, or responses)
//! round-robin until the window closes, each finishing the unit it started, and the figure is
//! units over the wall time until the last worker stopped. Responses for the scoring figures are
//! synthesised deterministically from the items (correct answers, near misses, hedges, missing
//! tags, very long thinking), so figures compare across runs and machines.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use triad_generators::{
    DynFamily, GenOptions, Item, ItemCoords, Label, PromptStyle, Split, certify_item, registry,
};

use crate::dataset::{self, GenerateConfig};
use crate::reward::{Preset, score};

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
    /// Items/s generated (candidates drawn, rejections and the other split's items included
    /// in the cost), one thread.
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

/// Run `work(i)` for i = 0, 1, 2, … on `threads` threads (round-robin) until `window` has
/// passed; returns units per second (`work` returns the units it completed).
///
/// Each thread first runs one unit off the clock: the families keep warm Z3 solvers per thread,
/// and a fresh thread's first unit pays for creating them, which a long-running generator or
/// server pays once.
pub fn timed(threads: usize, window: Duration, work: impl Fn(u64) -> u64 + Sync) -> f64 {
    let count = threads.max(1);
    let step = count as u64;
    let units = AtomicU64::new(0);
    let ready = std::sync::Barrier::new(count + 1);
    let started = std::thread::scope(|scope| {
        for t in 0..step {
            let (units, work, ready) = (&units, &work, &ready);
            scope.spawn(move || {
                work(t + step * 1_000_000);
                ready.wait();
                let deadline = Instant::now() + window;
                let mut i = t;
                let mut done = 0;
                // At least one unit each, so slow levels still give a figure.
                loop {
                    done += work(i);
                    i += step;
                    if Instant::now() >= deadline {
                        break;
                    }
                }
                units.fetch_add(done, Ordering::Relaxed);
            });
        }
        ready.wait();
        Instant::now()
    });
    units.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn coords(family: &'static dyn DynFamily, level: u8, seed: u64, index: u64) -> ItemCoords {
    ItemCoords {
        seed,
        family: family.name(),
        level,
        split: Split::Train,
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

/// A deterministic "reasoning" text of about `bytes` bytes.
pub fn thinking(bytes: usize) -> String {
    let sentence = "Assume the first statement holds; then the second forces the third, which contradicts the fourth. ";
    sentence.repeat(bytes / sentence.len() + 1)
}

/// The family's near miss for an item (its reference answer with one judgement flipped or one
/// number changed: parseable, and wrong).
pub fn near_miss(item: &Item) -> String {
    match Label::parse(&item.label) {
        Ok(Label::Triad {
            family, instance, ..
        }) => family
            .near_miss_json(&instance)
            .unwrap_or_else(|e| format!("(no near miss: {e})")),
        _ => format!("(no near miss: {} is not a triad label)", item.id()),
    }
}

/// The synthetic responses for an item: (kind, response).
pub fn responses(item: &Item) -> Vec<(&'static str, String)> {
    let think = thinking(3072);
    let answer = &item.answer;
    let wrong = near_miss(item);
    vec![
        (
            "correct",
            format!("<think>{think}</think>\n<answer>\n{answer}\n</answer>"),
        ),
        (
            "near-miss",
            format!("<think>{think}</think>\n<answer>\n{wrong}\n</answer>"),
        ),
        (
            "hedge",
            format!("<think>{think}</think>\n<answer>\n{answer}\n{wrong}\n</answer>"),
        ),
        ("no-tags", format!("{think}{answer}")),
        (
            "long-64KB",
            format!(
                "<think>{}</think>\n<answer>\n{answer}\n</answer>",
                thinking(65536)
            ),
        ),
    ]
}

/// Generated items of a level (at least one, up to `count`, within about `window`).
fn sample_items(
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
        train: rows,
        test: 0,
        seed: config.seed,
        style: PromptStyle::Chat,
        shard_rows: 10_000,
        options: GenOptions::default(),
        overwrite: true,
        worker: None,
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

/// A figure with three significant digits and thousands separators.
pub fn human(rate: f64) -> String {
    if rate >= 1000.0 {
        let rounded = rate.round() as u64;
        let digits = rounded.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if rate >= 10.0 {
        format!("{rate:.0}")
    } else {
        format!("{rate:.1}")
    }
}

impl BenchReport {
    /// The two tables (generation, scoring) as Markdown.
    pub fn markdown(&self) -> String {
        let n = self.threads;
        let mut out = format!(
            "triad {} on {} ({} cores, {}); window {:.2} s; {n} threads for the all-threads columns\n\n",
            self.triad_version,
            self.machine.cpu,
            self.machine.cores,
            self.machine.os,
            self.window_s
        );
        out.push_str(&format!(
            "Generation (items/s)\n\n| family | level | generate 1t | generate {n}t | generate + Z3 {n}t | Z3 checks 1t | into Parquet 1t | into Parquet {n}t |\n|---|---|---|---|---|---|---|---|\n"
        ));
        for l in &self.levels {
            let mark = if l.end_to_end_exhausted {
                " (exh.)"
            } else {
                ""
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {}{mark} | {}{mark} |\n",
                l.family,
                l.level,
                human(l.generate_1t),
                human(l.generate_nt),
                human(l.generate_certify_nt),
                human(l.z3_checks_1t),
                human(l.end_to_end_1t),
                human(l.end_to_end_nt)
            ));
        }
        let kinds: Vec<&str> = self
            .levels
            .first()
            .map(|l| l.score_1t.iter().map(|(k, _)| k.as_str()).collect())
            .unwrap_or_default();
        out.push_str(
            "\nScoring (rollouts/s; ~3 KB of thinking unless noted)\n\n| family | level |",
        );
        for k in &kinds {
            out.push_str(&format!(" {k} 1t |"));
        }
        out.push_str(&format!(" correct {n}t |\n|---|---|"));
        for _ in 0..=kinds.len() {
            out.push_str("---|");
        }
        out.push('\n');
        for l in &self.levels {
            out.push_str(&format!("| {} | {} |", l.family, l.level));
            for (_, rate) in &l.score_1t {
                out.push_str(&format!(" {} |", human(*rate)));
            }
            out.push_str(&format!(" {} |\n", human(l.score_correct_nt)));
        }
        if self.levels.iter().any(|l| l.end_to_end_exhausted) {
            out.push_str("\n(exh.): the level has fewer distinct items than the run asked for; the figure includes the search for the rest.\n");
        }
        out.push_str(&format!("\n{:.1} s in all\n", self.seconds));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_responses_score_as_their_kind() {
        for family in registry::FAMILIES {
            for level in [1, 5] {
                let item = sample_items(*family, level, 3, 1, Duration::ZERO).remove(0);
                for (kind, response) in responses(&item) {
                    let s = score(&response, &item.label, None, Preset::Paper);
                    let expected = matches!(kind, "correct" | "long-64KB");
                    assert_eq!(
                        s.correct,
                        expected,
                        "{} {level} {kind}: {s:?}",
                        family.name()
                    );
                    if kind == "no-tags" {
                        assert!(!s.format_ok);
                    }
                    if kind == "near-miss" {
                        assert!(
                            s.failure_kind() == Some(crate::reward::FailureKind::Wrong),
                            "{s:?}"
                        );
                    }
                    if kind == "hedge" {
                        assert!(
                            s.failure_kind() == Some(crate::reward::FailureKind::Unparseable),
                            "{s:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn human_figures() {
        assert_eq!(human(1234567.8), "1,234,568");
        assert_eq!(human(123.4), "123");
        assert_eq!(human(3.21), "3.2");
    }
}
