//! Scoring rollouts: correct, wrong, hedged and malformed responses of realistic length (a few KB
//! of reasoning before the answer), against triad labels and paper labels.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group};
use triad::bench::thinking;
use triad::generators::registry;
use triad::reward::{Preset, score};

fn scoring(c: &mut Criterion) {
    let family = registry::family("deduction").unwrap();
    let (_, item) = super::items(family, 3, 3).next().unwrap();
    let think = thinking(4096);
    let wrong_answer = item
        .answer
        .replacen("True", "False", 1)
        .replacen("False", "True", 1);
    let cases = [
        (
            "correct",
            format!(
                "<think>{think}</think>\n<answer>\n{}\n</answer>",
                item.answer
            ),
        ),
        (
            "wrong",
            format!("<think>{think}</think>\n<answer>\n{wrong_answer}\n</answer>"),
        ),
        (
            "hedge",
            format!("<think>{think}</think>\n<answer>A is true or false</answer>"),
        ),
        ("no-tags", think.clone()),
        (
            "long-64KB",
            format!(
                "<think>{}</think><answer>{}</answer>",
                thinking(65536),
                item.answer
            ),
        ),
    ];
    let paper_label = "(1) A is False\n(2) B is True\n(3) C is False\n(4) D is True\n";
    let mut group = c.benchmark_group("score/deduction-level-3");
    group.throughput(Throughput::Elements(1));
    for (name, response) in &cases {
        group.bench_function(*name, |b| {
            b.iter(|| black_box(score(response, &item.label, None, Preset::Paper)))
        });
    }
    let paper_response = format!("{think}</think><answer>{paper_label}</answer>");
    group.bench_function("paper-label", |b| {
        b.iter(|| black_box(score(&paper_response, paper_label, None, Preset::Paper)))
    });
    group.finish();
}

/// A correct response of realistic length for one item of every family and level.
fn scoring_per_level(c: &mut Criterion) {
    let think = thinking(3072);
    for family in registry::FAMILIES {
        let mut group = c.benchmark_group(format!("score/{}", family.name()));
        group.throughput(Throughput::Elements(1));
        for level in family.levels() {
            let (_, item) = super::items(*family, level, 5).next().unwrap();
            let response = format!(
                "<think>{think}</think>\n<answer>\n{}\n</answer>",
                item.answer
            );
            group.bench_function(format!("level-{level}"), |b| {
                b.iter(|| black_box(score(&response, &item.label, None, Preset::Paper)))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, scoring, scoring_per_level);
