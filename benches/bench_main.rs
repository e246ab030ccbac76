//! Criterion benchmarks of triad's hot paths (regression tracking; figures in BENCHMARKS.md).
//!
//! `cargo bench --bench bench_main` (add `-- --quick` for a fast pass, or a filter such as
//! `-- score`).

mod benchmarks;

criterion::criterion_main!(
    benchmarks::generate::benches,
    benchmarks::score::benches,
    benchmarks::shards::benches
);
