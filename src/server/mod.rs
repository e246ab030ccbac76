//! `triad serve`: the HTTP reward server RL trainers call.
//!
//! - `POST /get_reward` — OpenRLHF's remote reward protocol: `{"query", "prompts"?, "labels"}` →
//!   `{"rewards", "scores", "extra_logs"}`; one item per request (current OpenRLHF) or batches
//!   (older versions).
//! - `POST /score` — the native batch form: `{"items": [{"response", "label", "prompt"?}],
//!   "reward"?}` → `{"results": [{"score", "format_ok", "correct", "reason", …}]}`.
//! - `GET /health`, `GET /metrics` (Prometheus text).
//!
//! Scoring never runs on the async runtime: each request's items go to the rayon pool and the
//! handler awaits them with a deadline, so the server answers `/health` while it scores a large
//! batch, and an item that overruns its time bound scores as a failure with reason `timeout`
//! (no Unix signals anywhere). Bad input never crashes the server or poisons other items:
//! malformed JSON is a 400 with a message, an oversized body a 413, a malformed label scores that
//! item the minimum with reason `bad_label`. `serve` shuts down gracefully on SIGINT/SIGTERM,
//! letting in-flight requests finish. `app` is testable without a socket.

mod metrics;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rayon::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};

pub use metrics::{Endpoint, Metrics};

use crate::reward::{self, Preset, Score};
use crate::score_file::{label_text, prompt_text};

/// Default body limit: 64 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 << 20;
/// Default per-item time bound.
pub const DEFAULT_ITEM_TIMEOUT: Duration = Duration::from_secs(5);

/// Server configuration.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The default reward preset (requests may override it).
    pub preset: Preset,
    /// Required bearer token, if any.
    pub api_key: Option<String>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Per-item time bound.
    pub item_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            preset: Preset::Paper,
            api_key: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            item_timeout: DEFAULT_ITEM_TIMEOUT,
        }
    }
}

/// Shared server state.
pub struct AppState {
    config: ServerConfig,
    metrics: Metrics,
}

/// A request refused before scoring: a status and a message, as JSON `{"error": …}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({"error": self.message}))).into_response()
    }
}

/// One item to score.
#[derive(Clone, Debug)]
struct Job {
    response: String,
    label: String,
    prompt: Option<String>,
}

fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

#[derive(Deserialize)]
struct GetRewardRequest {
    query: Vec<String>,
    #[serde(default)]
    prompts: Option<Vec<String>>,
    labels: Vec<Value>,
    #[serde(default)]
    reward: Option<Preset>,
}

#[derive(Deserialize)]
struct ScoreItem {
    response: String,
    label: Value,
    #[serde(default)]
    prompt: Option<Value>,
}

#[derive(Deserialize)]
struct ScoreRequest {
    items: Vec<ScoreItem>,
    #[serde(default)]
    reward: Option<Preset>,
}

#[derive(Deserialize, Default)]
struct RewardQuery {
    reward: Option<Preset>,
}

/// Split an OpenRLHF `query` (prompt + response, decoded with special tokens) into the response
/// and the prompt it followed. With the prompt given, the response is what follows it; otherwise
/// it is what follows the last `<|im_start|>assistant` line; otherwise the whole query.
fn split_query(query: &str, prompt: Option<&str>) -> (String, Option<String>) {
    if let Some(prompt) = prompt
        && let Some(rest) = query.strip_prefix(prompt)
    {
        return (rest.to_string(), Some(prompt.to_string()));
    }
    const MARKER: &str = "<|im_start|>assistant";
    if let Some(at) = query.rfind(MARKER) {
        let after = &query[at + MARKER.len()..];
        let response = after.strip_prefix('\n').unwrap_or(after);
        // The pre-filled `<think>`, if any, is part of the text after the marker: no prompt to
        // consult, and nothing pre-filled to add.
        return (response.to_string(), Some(String::new()));
    }
    (query.to_string(), prompt.map(str::to_string))
}

/// Score jobs on the rayon pool, each bounded in time; never blocks the async runtime.
async fn score_jobs(state: &AppState, jobs: Vec<Job>, preset: Preset) -> Vec<Score> {
    let count = jobs.len();
    let slots: Arc<Vec<OnceLock<Score>>> = Arc::new((0..count).map(|_| OnceLock::new()).collect());
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let worker_slots = Arc::clone(&slots);
    let item_timeout = state.config.item_timeout;
    rayon::spawn(move || {
        jobs.par_iter()
            .zip(worker_slots.par_iter())
            .for_each(|(job, slot)| {
                let started = Instant::now();
                let mut score =
                    reward::score(&job.response, &job.label, job.prompt.as_deref(), preset);
                if started.elapsed() > item_timeout {
                    score = Score::failure(
                        preset,
                        "timeout",
                        format!("scoring took longer than {item_timeout:?}"),
                    );
                }
                let _ = slot.set(score);
            });
        let _ = done_tx.send(());
    });
    // The batch gets one time bound per item for each round of the pool, plus one: an item still
    // unscored when that runs out scores as a timeout instead of holding the response.
    let rounds = count.div_ceil(rayon::current_num_threads().max(1)) as u32 + 1;
    let deadline = item_timeout.saturating_mul(rounds);
    let _ = tokio::time::timeout(deadline, done_rx).await;
    (0..count)
        .map(|i| {
            slots[i].get().cloned().unwrap_or_else(|| {
                Score::failure(preset, "timeout", format!("not scored within {deadline:?}"))
            })
        })
        .collect()
}

fn authorized(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = &state.config.api_key else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given == Some(key.as_str()) {
        Ok(())
    } else {
        Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: "missing or wrong `Authorization: Bearer <key>`".into(),
        })
    }
}

async fn get_reward(
    State(state): State<Arc<AppState>>,
    Query(query): Query<RewardQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let result = async {
        authorized(&state, &headers)?;
        let request: GetRewardRequest = parse_json(&body)?;
        let n = request.query.len();
        if request.labels.len() != n || request.prompts.as_ref().is_some_and(|p| p.len() != n) {
            return Err(ApiError::bad_request(format!(
                "query, prompts and labels must have equal lengths (query {n}, prompts {}, labels {})",
                request.prompts.as_ref().map_or("absent".to_string(), |p| p.len().to_string()),
                request.labels.len()
            )));
        }
        let preset = request.reward.or(query.reward).unwrap_or(state.config.preset);
        let jobs: Vec<Job> = (0..n)
            .map(|i| {
                let prompt = request.prompts.as_ref().map(|p| p[i].as_str());
                let (response, prompt) = split_query(&request.query[i], prompt);
                Job { response, label: label_text(&request.labels[i]), prompt }
            })
            .collect();
        let scores = score_jobs(&state, jobs, preset).await;
        state.metrics.scored(&scores);
        let rewards: Vec<f64> = scores.iter().map(|s| s.score).collect();
        let flag = |f: fn(&Score) -> bool| scores.iter().map(|s| f64::from(u8::from(f(s)))).collect::<Vec<f64>>();
        Ok(axum::Json(json!({
            "rewards": rewards,
            "scores": rewards,
            "extra_logs": {"format_ok": flag(|s| s.format_ok), "correct": flag(|s| s.correct)},
        }))
        .into_response())
    }
    .await;
    finish(&state, Endpoint::GetReward, started, result)
}

async fn score(
    State(state): State<Arc<AppState>>,
    Query(query): Query<RewardQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let result = async {
        authorized(&state, &headers)?;
        let request: ScoreRequest = parse_json(&body)?;
        let preset = request
            .reward
            .or(query.reward)
            .unwrap_or(state.config.preset);
        let jobs: Vec<Job> = request
            .items
            .into_iter()
            .map(|item| Job {
                response: item.response,
                label: label_text(&item.label),
                prompt: item
                    .prompt
                    .as_ref()
                    .and_then(prompt_text)
                    .map(str::to_string),
            })
            .collect();
        let scores = score_jobs(&state, jobs, preset).await;
        state.metrics.scored(&scores);
        Ok(axum::Json(json!({"results": scores})).into_response())
    }
    .await;
    finish(&state, Endpoint::Score, started, result)
}

fn finish(
    state: &AppState,
    endpoint: Endpoint,
    started: Instant,
    result: Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    if result.is_err() {
        state.metrics.client_error();
    }
    state.metrics.request(endpoint, started.elapsed());
    result
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let started = Instant::now();
    let body = axum::Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "families": triad_generators::registry::names(),
        "reward": state.config.preset,
    }));
    state.metrics.request(Endpoint::Health, started.elapsed());
    body.into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let started = Instant::now();
    let text = state.metrics.render();
    state.metrics.request(Endpoint::Metrics, started.elapsed());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// The router, with its state: testable without a socket.
pub fn app(config: ServerConfig) -> Router {
    let limit = config.max_body_bytes;
    let state = Arc::new(AppState {
        config,
        metrics: Metrics::default(),
    });
    Router::new()
        .route("/get_reward", post(get_reward))
        .route("/score", post(score))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Bind and serve until SIGINT/SIGTERM; in-flight requests finish. `on_bound` gets the actual
/// address (useful with port 0).
pub async fn serve(
    addr: SocketAddr,
    config: ServerConfig,
    on_bound: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    on_bound(listener.local_addr()?);
    axum::serve(listener, app(config))
        .with_graceful_shutdown(shutdown_signal())
        .await
}

#[cfg(test)]
mod tests {
    use super::split_query;

    #[test]
    fn splitting_openrlhf_queries() {
        let prompt = "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>";
        let (response, given) = split_query(&format!("{prompt}x</think>"), Some(prompt));
        assert_eq!(
            (response.as_str(), given.as_deref()),
            ("x</think>", Some(prompt))
        );
        // Without prompts: what follows the assistant marker, pre-filled <think> included.
        let (response, given) = split_query(&format!("{prompt}x</think>"), None);
        assert_eq!(
            (response.as_str(), given.as_deref()),
            ("<think>x</think>", Some(""))
        );
        // Neither: the whole query, and the label decides about pre-filling.
        assert_eq!(split_query("plain", None), ("plain".to_string(), None));
    }
}
