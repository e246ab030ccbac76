//! Generation per family and level (one candidate = one call; rejections included), and Z3
//! certification of a generated instance.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group};
use triad::generators::{GenOptions, ItemCoords, PromptStyle, registry};

fn generation(c: &mut Criterion) {
    for family in registry::FAMILIES {
        let mut group = c.benchmark_group(format!("generate/{}", family.name()));
        group.throughput(Throughput::Elements(1));
        for level in family.levels() {
            if level >= 7 {
                group
                    .sample_size(10)
                    .measurement_time(Duration::from_secs(8));
            }
            let mut index = 0u64;
            group.bench_function(format!("level-{level}"), |b| {
                b.iter(|| {
                    index += 1;
                    let coords = ItemCoords {
                        seed: 1,
                        family: family.name(),
                        level,
                        index,
                    };
                    black_box(
                        family
                            .candidate(&coords, &GenOptions::default(), PromptStyle::Chat)
                            .unwrap(),
                    )
                })
            });
        }
        group.finish();
    }
}

fn certification(c: &mut Criterion) {
    for family in registry::FAMILIES {
        let mut group = c.benchmark_group(format!("certify/{}", family.name()));
        group.throughput(Throughput::Elements(1));
        for level in family.levels() {
            let labels: Vec<String> = super::items(*family, level, 2)
                .take(if level >= 7 { 4 } else { 32 })
                .map(|(_, item)| item.label)
                .collect();
            let instances: Vec<String> = labels
                .iter()
                .map(|l| match triad::generators::Label::parse(l).unwrap() {
                    triad::generators::Label::Triad { instance, .. } => instance,
                    triad::generators::Label::Paper(_) => unreachable!(),
                })
                .collect();
            let mut i = 0;
            group.bench_function(format!("level-{level}"), |b| {
                b.iter(|| {
                    i = (i + 1) % instances.len();
                    family
                        .certify_json(black_box(&instances[i]))
                        .unwrap()
                        .unwrap();
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, generation, certification);
