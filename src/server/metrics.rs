//! Prometheus metrics for the reward server, kept with atomics (no registry crate needed for a
//! handful of counters and one histogram family).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::reward::{FailureKind, Score};

/// Latency bucket upper bounds, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    total: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            if seconds <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.total.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }
}

#[derive(Default, Clone, Copy)]
struct FamilyTally {
    items: u64,
    correct: u64,
    format_failures: u64,
}

/// Everything `/metrics` reports.
#[derive(Default)]
pub struct Metrics {
    requests: [AtomicU64; ENDPOINTS],
    latency: [Histogram; ENDPOINTS],
    items: AtomicU64,
    tasks: AtomicU64,
    client_errors: AtomicU64,
    timeouts: AtomicU64,
    refused_connections: AtomicU64,
    dropped_connections: AtomicU64,
    open_connections: AtomicU64,
    families: Mutex<BTreeMap<String, FamilyTally>>,
}

/// The endpoints that are counted.
#[derive(Clone, Copy)]
pub enum Endpoint {
    /// `POST /get_reward`
    GetReward = 0,
    /// `POST /score`
    Score = 1,
    /// `GET /health`
    Health = 2,
    /// `GET /metrics`
    Metrics = 3,
    /// `POST /tasks`
    Tasks = 4,
    /// `POST /sessions`, `GET /sessions/{id}`
    Sessions = 5,
}

const ENDPOINTS: usize = 6;
const ENDPOINT_NAMES: [&str; ENDPOINTS] = [
    "get_reward",
    "score",
    "health",
    "metrics",
    "tasks",
    "sessions",
];

impl Metrics {
    /// Count tasks made.
    pub fn tasks(&self, count: usize) {
        self.tasks.fetch_add(count as u64, Ordering::Relaxed);
    }

    /// Count a finished request.
    pub fn request(&self, endpoint: Endpoint, elapsed: Duration) {
        self.requests[endpoint as usize].fetch_add(1, Ordering::Relaxed);
        self.latency[endpoint as usize].observe(elapsed);
    }

    /// Count a 4xx answer.
    pub fn client_error(&self) {
        self.client_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a connection closed at once because `--max-connections` were open.
    pub fn connection_refused(&self) {
        self.refused_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a connection dropped for a read timeout or at the end of the shutdown grace period.
    pub fn connection_dropped(&self) {
        self.dropped_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection opened (`true`) or closed (`false`).
    pub fn connection(&self, opened: bool) {
        if opened {
            self.open_connections.fetch_add(1, Ordering::Relaxed);
        } else {
            self.open_connections.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Count scored items.
    pub fn scored(&self, scores: &[Score]) {
        self.items.fetch_add(scores.len() as u64, Ordering::Relaxed);
        let timeouts = scores
            .iter()
            .filter(|s| s.failure_kind() == Some(FailureKind::Timeout))
            .count();
        self.timeouts.fetch_add(timeouts as u64, Ordering::Relaxed);
        let mut families = self.families.lock().expect("metrics lock");
        for score in scores {
            let tally = families
                .entry(score.family.clone().unwrap_or_else(|| "unknown".into()))
                .or_default();
            tally.items += 1;
            tally.correct += u64::from(score.correct);
            tally.format_failures += u64::from(!score.format_ok);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP triad_requests_total Requests answered, by endpoint.\n# TYPE triad_requests_total counter\n");
        for (name, count) in ENDPOINT_NAMES.iter().zip(&self.requests) {
            let _ = writeln!(
                out,
                "triad_requests_total{{endpoint=\"{name}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP triad_request_seconds Request latency, by endpoint.\n# TYPE triad_request_seconds histogram\n");
        for (name, histogram) in ENDPOINT_NAMES.iter().zip(&self.latency) {
            for (bound, count) in BUCKETS.iter().zip(&histogram.counts) {
                let _ = writeln!(
                    out,
                    "triad_request_seconds_bucket{{endpoint=\"{name}\",le=\"{bound}\"}} {}",
                    count.load(Ordering::Relaxed)
                );
            }
            let total = histogram.total.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "triad_request_seconds_bucket{{endpoint=\"{name}\",le=\"+Inf\"}} {total}"
            );
            let sum = histogram.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "triad_request_seconds_sum{{endpoint=\"{name}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "triad_request_seconds_count{{endpoint=\"{name}\"}} {total}"
            );
        }
        let counters = [
            ("triad_items_scored_total", "Rollouts scored.", &self.items),
            (
                "triad_tasks_generated_total",
                "Tasks made by POST /tasks.",
                &self.tasks,
            ),
            (
                "triad_client_errors_total",
                "Requests refused with a 4xx status.",
                &self.client_errors,
            ),
            (
                "triad_item_timeouts_total",
                "Items that exceeded the per-item time bound.",
                &self.timeouts,
            ),
            (
                "triad_connections_refused_total",
                "Connections closed at once because --max-connections were open.",
                &self.refused_connections,
            ),
            (
                "triad_connections_dropped_total",
                "Connections dropped for a header or body read timeout, or at shutdown.",
                &self.dropped_connections,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP triad_connections_open Connections open now.\n# TYPE triad_connections_open gauge\ntriad_connections_open {}",
            self.open_connections.load(Ordering::Relaxed)
        );
        let families = self.families.lock().expect("metrics lock").clone();
        type Series = (
            &'static str,
            &'static str,
            &'static str,
            fn(&FamilyTally) -> f64,
        );
        let series: [Series; 4] = [
            (
                "triad_family_items_total",
                "Items scored, by family.",
                "counter",
                |t| t.items as f64,
            ),
            (
                "triad_family_correct_total",
                "Correct items, by family.",
                "counter",
                |t| t.correct as f64,
            ),
            (
                "triad_family_accuracy",
                "Fraction of items scored correct, by family.",
                "gauge",
                |t| t.correct as f64 / t.items.max(1) as f64,
            ),
            (
                "triad_family_format_failures_total",
                "Format failures, by family.",
                "counter",
                |t| t.format_failures as f64,
            ),
        ];
        for (name, help, kind, value) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (family, tally) in &families {
                let _ = writeln!(out, "{name}{{family=\"{family}\"}} {}", value(tally));
            }
        }
        out
    }
}
