//! Encoding rows as a zstd Parquet shard.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group};
use triad::dataset::shard::{Row, encode};
use triad::generators::{Split, registry};

fn encoding(c: &mut Criterion) {
    let family = registry::family("deduction").unwrap();
    let rows: Vec<Row> = super::items(family, 3, 4)
        .take(1000)
        .enumerate()
        .map(|(i, (candidate, item))| Row {
            item,
            split: Split::Train,
            index: i as u64,
            candidate,
        })
        .collect();
    let mut group = c.benchmark_group("shard");
    group.throughput(Throughput::Elements(rows.len() as u64));
    group.bench_function("encode-1000-rows-level-3", |b| {
        b.iter(|| black_box(encode(&rows, &[]).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, encoding);
