//! `triad serve`: the HTTP reward server RL trainers call.
//!
//! - `POST /get_reward` — OpenRLHF's remote reward protocol: `{"query", "prompts"?, "labels"}` →
//!   `{"rewards", "scores", "extra_logs"}`; one item per request (current OpenRLHF) or batches
//!   (older versions). `extra_logs` carries per-item `format_ok`, `correct`, `timeout` and
//!   `error` flags, so a trainer never mistakes a timeout or a bad label for a wrong answer.
//! - `POST /score` — the native batch form: `{"items": [{"response", "label", "prompt"?}],
//!   "reward"?}` → `{"results": [{"score", "format_ok", "correct", "reason", …}]}`.
//! - `GET /health` (always open), `GET /metrics` (Prometheus text; behind the API key when one
//!   is set, since it shows per-family accuracy).
//!
//! Scoring never runs on the async runtime: each request's items go to the rayon pool and the
//! handler awaits them with a deadline, so the server answers `/health` while it scores a large
//! batch; an item still unscored at the deadline scores as a failure with reason `timeout` and
//! is then skipped by the pool, so a timed-out batch stops consuming it. The work per item is
//! bounded (labels by `triad_generators::limits`, judging linear in the label and response), so
//! no item can hold a worker for long.
//!
//! Connections are bounded too (see [`serve_listener`]): a header read timeout (which also closes idle
//! keep-alive connections), a body read timeout, a cap on open connections, a declared
//! `Content-Length` over the body limit answered 413 before any of the body is read, and a
//! shutdown grace period after which stalled connections are dropped. Bad input never crashes
//! the server or poisons other items: malformed JSON is a 400 with a message, an oversized body
//! a 413, a malformed label scores that item the minimum with reason `bad_label`. `app` is
//! testable without a socket.

mod listener;
mod metrics;
mod online;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use rayon::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};

pub use listener::{serve, serve_listener, shutdown_signal};
pub use metrics::{Endpoint, Metrics};

use crate::online::{AdaptiveOptions, SessionStore, TaskDefaults};
use crate::reward::{self, FailureKind, Preset, Score};
use crate::score_file::{label_text, prompt_text};

/// Default body limit: 64 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 << 20;
/// Default per-item time bound.
pub const DEFAULT_ITEM_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time a client has to send a request's headers — counted from the end of the previous
/// response on a keep-alive connection, so it is also how long an idle connection stays open.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a client has to send a request's body once its headers are in.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on open connections; one more is closed at once. Kept well under the usual
/// 1,024 file descriptors a process may hold.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Default time one `POST /tasks` may generate for; past it the tasks made so far are returned.
pub const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(30);

/// Default time in-flight requests get to finish after SIGINT/SIGTERM before the remaining
/// connections are dropped.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Server configuration.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The default reward preset (requests may override it).
    pub preset: Preset,
    /// Required bearer token, if any (for scoring and `/metrics`).
    pub api_key: Option<String>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Per-item time bound.
    pub item_timeout: Duration,
    /// See [`DEFAULT_HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// See [`DEFAULT_BODY_READ_TIMEOUT`].
    pub body_read_timeout: Duration,
    /// See [`DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// See [`DEFAULT_SHUTDOWN_GRACE`].
    pub shutdown_grace: Duration,
    /// Scoring threads (0: one per core). The server scores on a pool of its own.
    pub scoring_threads: usize,
    /// What `POST /tasks` makes tasks with when a request does not say.
    pub tasks: TaskDefaults,
    /// See [`DEFAULT_TASK_TIMEOUT`].
    pub task_timeout: Duration,
    /// Where sessions are kept across restarts (none: in memory only).
    pub sessions_dir: Option<std::path::PathBuf>,
    /// See [`crate::online::store::DEFAULT_MAX_SESSIONS`].
    pub max_sessions: usize,
    /// The adaptive schedule of sessions that name none.
    pub adaptive: AdaptiveOptions,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            preset: Preset::Paper,
            api_key: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            item_timeout: DEFAULT_ITEM_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            scoring_threads: 0,
            tasks: TaskDefaults::default(),
            task_timeout: DEFAULT_TASK_TIMEOUT,
            sessions_dir: None,
            max_sessions: crate::online::store::DEFAULT_MAX_SESSIONS,
            adaptive: AdaptiveOptions::default(),
        }
    }
}

/// Shared server state.
pub struct AppState {
    config: ServerConfig,
    metrics: Metrics,
    pool: Arc<rayon::ThreadPool>,
    sessions: SessionStore,
}

impl AppState {
    fn new(config: ServerConfig) -> std::io::Result<AppState> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.scoring_threads)
            .thread_name(|i| format!("triad-score-{i}"))
            .build()
            .map_err(std::io::Error::other)?;
        let sessions = SessionStore::open(
            config.sessions_dir.clone(),
            config.max_sessions,
            config.adaptive,
        )
        .map_err(std::io::Error::other)?;
        Ok(AppState {
            config,
            metrics: Metrics::default(),
            pool: Arc::new(pool),
            sessions,
        })
    }
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
        let mut response =
            (self.status, axum::Json(json!({"error": self.message}))).into_response();
        if matches!(
            self.status,
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
        ) {
            // The body was not read to its end: the connection cannot carry another request.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// Read a request body within the body limit and the body read timeout. A declared
/// `Content-Length` over the limit is refused before a byte of the body is read.
async fn read_body(
    config: &ServerConfig,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, ApiError> {
    let limit = config.max_body_bytes;
    let too_large = |size: String| ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        message: format!(
            "request body of {size} bytes is over the limit of {limit} (--max-body-bytes)"
        ),
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(declared) = declared.filter(|&d| d > limit as u64) {
        return Err(too_large(declared.to_string()));
    }
    let reading = http_body_util::Limited::new(body, limit).collect();
    match tokio::time::timeout(config.body_read_timeout, reading).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            Err(too_large(format!("more than {limit}")))
        }
        Ok(Err(e)) => Err(ApiError::bad_request(format!(
            "could not read the request body: {e}"
        ))),
        Err(_) => Err(ApiError {
            status: StatusCode::REQUEST_TIMEOUT,
            message: format!(
                "request body not received within {:?} (--body-timeout-ms)",
                config.body_read_timeout
            ),
        }),
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

/// A JSON request body, once the caller is authorised, read within the body bounds. An empty
/// body reads as `T::default()` where `empty` gives one.
async fn read_request<T: for<'de> Deserialize<'de>>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    empty: Option<fn() -> T>,
) -> Result<T, ApiError> {
    authorized(state, headers)?;
    let body = read_body(&state.config, headers, body).await?;
    match empty {
        Some(default) if body.iter().all(u8::is_ascii_whitespace) => Ok(default()),
        _ => parse_json(&body),
    }
}

#[derive(Deserialize)]
struct GetRewardRequest {
    query: Vec<String>,
    #[serde(default)]
    prompts: Option<Vec<String>>,
    labels: Vec<Value>,
    #[serde(default)]
    reward: Option<Preset>,
    #[serde(default)]
    session: Option<String>,
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
    #[serde(default)]
    session: Option<String>,
}

/// Query parameters of the scoring endpoints (for clients, such as OpenRLHF, whose request body
/// is fixed: `--reward.remote_url http://host/get_reward?session=run-1`).
#[derive(Deserialize, Default)]
struct RewardQuery {
    reward: Option<Preset>,
    session: Option<String>,
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
///
/// The batch gets one item time bound for each round of the pool, plus one. An item still
/// unscored when that runs out scores as a timeout, and the pool skips every item it has not
/// started by then: the response has gone without them, so they must not hold workers that the
/// next requests need.
async fn score_jobs(state: &AppState, jobs: Vec<Job>, preset: Preset) -> Vec<Score> {
    score_jobs_with(state, jobs, preset, score_job).await
}

fn score_job(job: &Job, preset: Preset) -> Score {
    reward::score(&job.response, &job.label, job.prompt.as_deref(), preset)
}

/// [`score_jobs`] with the scoring function given (tests use a slow one).
async fn score_jobs_with(
    state: &AppState,
    jobs: Vec<Job>,
    preset: Preset,
    score: fn(&Job, Preset) -> Score,
) -> Vec<Score> {
    let count = jobs.len();
    let slots: Arc<Vec<OnceLock<Score>>> = Arc::new((0..count).map(|_| OnceLock::new()).collect());
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let worker_slots = Arc::clone(&slots);
    let item_timeout = state.config.item_timeout;
    let rounds = count.div_ceil(state.pool.current_num_threads().max(1)) as u32 + 1;
    let deadline = item_timeout.saturating_mul(rounds);
    let give_up_at = Instant::now() + deadline;
    state.pool.spawn(move || {
        jobs.par_iter()
            .zip(worker_slots.par_iter())
            .for_each(|(job, slot)| {
                let started = Instant::now();
                if started >= give_up_at {
                    return;
                }
                let mut scored = score(job, preset);
                if started.elapsed() > item_timeout {
                    scored = Score::failure(
                        preset,
                        FailureKind::Timeout,
                        format!("scoring took longer than {item_timeout:?}"),
                    );
                }
                let _ = slot.set(scored);
            });
        let _ = done_tx.send(());
    });
    let _ = tokio::time::timeout(deadline, done_rx).await;
    (0..count)
        .map(|i| {
            slots[i].get().cloned().unwrap_or_else(|| {
                Score::failure(
                    preset,
                    FailureKind::Timeout,
                    format!("not scored within {deadline:?}"),
                )
            })
        })
        .collect()
}

/// Compare two secrets in time that does not depend on where they differ: both are hashed first,
/// so neither the position of the first difference nor the key's length shows in the timing.
fn same_secret(given: &str, expected: &str) -> bool {
    use sha2::{Digest, Sha256};
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn authorized(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = &state.config.api_key else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|given| same_secret(given, key)) {
        Ok(())
    } else {
        Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: "missing or wrong `Authorization: Bearer <key>`".into(),
        })
    }
}

/// Whether a score is a failure of the input rather than of the answer.
fn is_error(score: &Score) -> bool {
    score
        .failure_kind()
        .is_some_and(FailureKind::is_input_error)
}

fn is_timeout(score: &Score) -> bool {
    score.failure_kind() == Some(FailureKind::Timeout)
}

async fn get_reward(
    State(state): State<Arc<AppState>>,
    Query(query): Query<RewardQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let result = async {
        let request: GetRewardRequest = read_request(&state, &headers, body, None).await?;
        let n = request.query.len();
        if request.labels.len() != n || request.prompts.as_ref().is_some_and(|p| p.len() != n) {
            return Err(ApiError::bad_request(format!(
                "query, prompts and labels must have equal lengths (query {n}, prompts {}, labels {})",
                request.prompts.as_ref().map_or("absent".to_string(), |p| p.len().to_string()),
                request.labels.len()
            )));
        }
        let preset = request.reward.or(query.reward).unwrap_or(state.config.preset);
        let session = request.session.or(query.session);
        online::check_session(&state, session.as_deref())?;
        let jobs: Vec<Job> = (0..n)
            .map(|i| {
                let prompt = request.prompts.as_ref().map(|p| p[i].as_str());
                let (response, prompt) = split_query(&request.query[i], prompt);
                Job { response, label: label_text(&request.labels[i]), prompt }
            })
            .collect();
        let labels: Vec<String> = jobs.iter().map(|j| j.label.clone()).collect();
        let scores = score_jobs(&state, jobs, preset).await;
        state.metrics.scored(&scores);
        online::record(&state, session.as_deref(), &labels, &scores)?;
        let rewards: Vec<f64> = scores.iter().map(|s| s.score).collect();
        let flag = |f: fn(&Score) -> bool| scores.iter().map(|s| f64::from(u8::from(f(s)))).collect::<Vec<f64>>();
        Ok(axum::Json(json!({
            "rewards": rewards,
            "scores": rewards,
            "extra_logs": {
                "format_ok": flag(|s| s.format_ok),
                "correct": flag(|s| s.correct),
                "timeout": flag(is_timeout),
                "error": flag(is_error),
            },
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
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let result = async {
        let request: ScoreRequest = read_request(&state, &headers, body, None).await?;
        let preset = request
            .reward
            .or(query.reward)
            .unwrap_or(state.config.preset);
        let session = request.session.or(query.session);
        online::check_session(&state, session.as_deref())?;
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
        let labels: Vec<String> = jobs.iter().map(|j| j.label.clone()).collect();
        let scores = score_jobs(&state, jobs, preset).await;
        state.metrics.scored(&scores);
        online::record(&state, session.as_deref(), &labels, &scores)?;
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

async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let started = Instant::now();
    let response = match authorized(&state, &headers) {
        Ok(()) => {
            let mut text = state.metrics.render();
            text.push_str(&online::render_sessions(&state.sessions));
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
        }
        Err(e) => {
            state.metrics.client_error();
            e.into_response()
        }
    };
    state.metrics.request(Endpoint::Metrics, started.elapsed());
    response
}

/// The router, with its state: testable without a socket.
pub fn app(config: ServerConfig) -> std::io::Result<Router> {
    Ok(router(Arc::new(AppState::new(config)?)))
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/get_reward", post(get_reward))
        .route("/score", post(score))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/tasks", post(online::tasks))
        .route("/sessions", post(online::create_session))
        .route("/sessions/{id}", get(online::get_session))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow_when_asked(job: &Job, preset: Preset) -> Score {
        if job.response == "slow" {
            std::thread::sleep(Duration::from_millis(200));
        }
        score_job(job, preset)
    }

    fn job(response: &str) -> Job {
        Job {
            response: response.into(),
            label: "(1) A is False\n(2) B is True".into(),
            prompt: None,
        }
    }

    /// A batch that runs past its deadline stops taking the pool: the items it had not started
    /// are skipped, and the next request's correct answer is scored, not timed out.
    #[test]
    fn a_timed_out_batch_frees_the_pool() {
        let state = AppState::new(ServerConfig {
            item_timeout: Duration::from_millis(50),
            scoring_threads: 1,
            ..ServerConfig::default()
        })
        .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            // 20 items of 200 ms on one thread: 4 s of work against a deadline of 21 × 50 ms.
            let slow: Vec<Job> = (0..20).map(|_| job("slow")).collect();
            let started = Instant::now();
            let scores = score_jobs_with(&state, slow, Preset::Paper, slow_when_asked).await;
            assert!(started.elapsed() < Duration::from_secs(2));
            assert!(
                scores
                    .iter()
                    .all(|s| s.failure_kind() == Some(FailureKind::Timeout))
            );
            // The item in progress at the deadline finishes (≤ 200 ms); nothing after it runs.
            tokio::time::sleep(Duration::from_millis(400)).await;
            let right = "x</think><answer>A is false, B is true</answer>";
            for _ in 0..3 {
                let scores =
                    score_jobs_with(&state, vec![job(right)], Preset::Paper, slow_when_asked).await;
                assert!(scores[0].correct, "{:?}", scores[0]);
            }
        });
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("s3cret", "s3cret"));
        assert!(!same_secret("s3cre", "s3cret"));
        assert!(!same_secret("s3cretX", "s3cret"));
        assert!(!same_secret("", "s3cret"));
    }

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
