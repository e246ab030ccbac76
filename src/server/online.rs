//! `POST /tasks`, `POST /sessions`, `GET /sessions/{id}`: tasks made on demand and the
//! sessions whose adaptive level follows the rewards scored for them (see [`crate::online`]).
//!
//! Generation runs on the server's rayon pool from a blocking task, never on the async runtime,
//! bounded by `--max-tasks` per request and by `--task-timeout-ms` (past it the request
//! returns the tasks made so far, with `"truncated": true`).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::metrics::Endpoint;
use super::{ApiError, AppState, authorized, finish, read_request};
use crate::online::{
    self, AdaptiveOptions, OnlineError, SessionStore, TaskRequest, make_tasks, rows_json,
};

impl From<OnlineError> for ApiError {
    fn from(error: OnlineError) -> ApiError {
        let status = match &error {
            OnlineError::Invalid(_) => StatusCode::BAD_REQUEST,
            OnlineError::NoSession(_) => StatusCode::NOT_FOUND,
            OnlineError::Conflict(_) => StatusCode::CONFLICT,
            OnlineError::Exhausted(_) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            message: error.to_string(),
        }
    }
}

/// The body of `POST /sessions`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CreateSession {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    adaptive: Option<AdaptiveOptions>,
}

/// Make the tasks of `request` on the scoring pool, under the session's lock when it has one.
fn tasks_blocking(state: &AppState, request: &TaskRequest) -> Result<Response, ApiError> {
    let deadline = Some(Instant::now() + state.config.task_timeout);
    let defaults = &state.config.tasks;
    let batch = match &request.session {
        Some(id) => state.sessions.generate(id, |session| {
            state
                .pool
                .install(|| make_tasks(request, Some(session), defaults, deadline))
        })??,
        None => state
            .pool
            .install(|| make_tasks(request, None, defaults, deadline))?,
    };
    state.metrics.tasks(batch.rows.len());
    let tasks = rows_json(&batch.rows)?;
    let mut body = json!({"tasks": tasks, "truncated": batch.truncated});
    if let Some(id) = &request.session {
        let report = state.sessions.read(id, |s| s.report())?;
        body["session"] = serde_json::to_value(report).map_err(OnlineError::from)?;
    }
    Ok(axum::Json(body).into_response())
}

pub(super) async fn tasks(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let result = async {
        let request: TaskRequest = read_request(&state, &headers, body, None).await?;
        let worker = Arc::clone(&state);
        tokio::task::spawn_blocking(move || tasks_blocking(&worker, &request))
            .await
            .map_err(|e| ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: format!("task generation failed: {e}"),
            })?
    }
    .await;
    finish(&state, Endpoint::Tasks, started, result)
}

pub(super) async fn create_session(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let result = async {
        let request: CreateSession =
            read_request(&state, &headers, body, Some(CreateSession::default)).await?;
        let (session, created) = state.sessions.create(request.id, request.adaptive)?;
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok((status, axum::Json(session.report())).into_response())
    }
    .await;
    finish(&state, Endpoint::Sessions, started, result)
}

pub(super) async fn get_session(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let result = authorized(&state, &headers).and_then(|()| {
        let report = state.sessions.read(&id, |s| s.report())?;
        Ok(axum::Json(report).into_response())
    });
    finish(&state, Endpoint::Sessions, started, result)
}

/// Record scored rollouts in the named session (a no-op without one).
pub(super) fn record(
    state: &AppState,
    session: Option<&str>,
    labels: &[String],
    scores: &[crate::reward::Score],
) -> Result<(), ApiError> {
    if let Some(id) = session {
        state.sessions.update(id, |s| {
            online::record_scores(s, labels.iter().map(String::as_str).zip(scores))
        })?;
    }
    Ok(())
}

/// Refuse a scoring request naming a session the server does not have, before scoring it.
pub(super) fn check_session(state: &AppState, session: Option<&str>) -> Result<(), ApiError> {
    match session {
        Some(id) => state.sessions.get(id).map(|_| ()).map_err(ApiError::from),
        None => Ok(()),
    }
}

/// The sessions' gauges for `/metrics`: each family's frontier and recent accuracy per level.
pub(super) fn render_sessions(store: &SessionStore) -> String {
    let mut out = String::from(
        "# HELP triad_session_frontier A session's frontier level, by family.\n# TYPE triad_session_frontier gauge\n",
    );
    let sessions = store.snapshot();
    for session in &sessions {
        for (family, progress) in &session.families {
            let _ = writeln!(
                out,
                "triad_session_frontier{{session=\"{}\",family=\"{family}\"}} {}",
                session.id, progress.frontier
            );
        }
    }
    out.push_str("# HELP triad_session_recent_accuracy Accuracy over a session's last judged prompts, by family and level.\n# TYPE triad_session_recent_accuracy gauge\n");
    for session in &sessions {
        for (family, progress) in &session.families {
            for (level, record) in &progress.levels {
                if let Some(accuracy) = record.recent_accuracy() {
                    let _ = writeln!(
                        out,
                        "triad_session_recent_accuracy{{session=\"{}\",family=\"{family}\",level=\"{level}\"}} {accuracy}",
                        session.id
                    );
                }
            }
        }
    }
    out
}
