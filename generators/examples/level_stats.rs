//! Print, per deduction level, how long generation and the reasoning trace take and how large
//! instances and traces are.
//!
//! `cargo run --release -p triad-generators --example level_stats [ITEMS] [FIRST-LEVEL]`
//!
//! `items` hashes the items without their traces, `fingerprint` the items and their traces: a
//! change meant to make generation faster must leave both as they were, one meant to change only
//! the traces must leave `items` as it was.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Instant;

use triad_generators::families::deduction::{Deduction, DeductionInstance};
use triad_generators::rng::Draw;
use triad_generators::{Family, ItemCoords};

fn main() {
    let items: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let first_level: u8 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    println!(
        "level  items  ms/item  formulas(mean)  prompt-chars(mean)  trace-ms/item  no-trace  of which ms  trace-lines(mean)  items             fingerprint"
    );
    for level in first_level..=10 {
        let start = Instant::now();
        let mut made: Vec<DeductionInstance> = Vec::new();
        for index in 0..items {
            let coords = ItemCoords {
                seed: 1,
                family: "deduction",
                level,
                index,
            };
            let mut draw = Draw::for_item(&coords);
            if let Some(inst) = Deduction
                .generate(level, &Default::default(), &mut draw)
                .unwrap()
            {
                made.push(inst);
            }
        }
        let ms = start.elapsed().as_secs_f64() * 1000.0 / items as f64;
        let n = made.len().max(1) as f64;
        let traced = Instant::now();
        let mut untraced_ms = 0.0;
        let traces: Vec<String> = made
            .iter()
            .map(|i| {
                let start = Instant::now();
                let trace = Deduction.trace(i);
                if trace.is_empty() {
                    untraced_ms += start.elapsed().as_secs_f64() * 1000.0 / n;
                }
                trace
            })
            .collect();
        let trace_ms = traced.elapsed().as_secs_f64() * 1000.0 / n;
        let mut items_hasher = DefaultHasher::new();
        for instance in &made {
            (&instance.formulas, &instance.solution).hash(&mut items_hasher);
        }
        let mut hasher = DefaultHasher::new();
        for (instance, trace) in made.iter().zip(&traces) {
            (&instance.formulas, &instance.solution, trace).hash(&mut hasher);
        }
        let untraced = traces.iter().filter(|t| t.is_empty()).count();
        let lines = traces.iter().map(|t| t.lines().count()).sum::<usize>() as f64 / n;
        let formulas = made.iter().map(|i| i.formulas.len()).sum::<usize>() as f64 / n;
        let chars = made
            .iter()
            .map(|i| {
                i.formulas
                    .iter()
                    .map(|f| f.chars().count() + 5)
                    .sum::<usize>()
            })
            .sum::<usize>() as f64
            / n;
        println!(
            "{level:>5}  {:>5}  {ms:>7.2}  {formulas:>14.1}  {chars:>18.0}  {trace_ms:>13.2}  {untraced:>8}  {untraced_ms:>11.2}  {lines:>17.0}  {:016x}  {:016x}",
            made.len(),
            items_hasher.finish(),
            hasher.finish()
        );
    }
}
