//! Online tasks: rows made on demand (the same rows a dataset holds), and sessions whose level
//! follows the learner's accuracy. `triad serve` exposes them as `POST /tasks`, `POST /sessions`
//! and `GET /sessions/{id}`; `triad-train rl --online` uses them in process, with the same logic.
//!
//! - [`tasks`]: candidate `j` of a stream as a row; JSON rows with the Parquet row's columns.
//! - [`session`]: per-(family, level) accuracy and the adaptive schedule.
//! - [`store`]: a server's sessions, persisted in a directory.
//!
//! [`make_tasks`] turns one request into rows: a family (or every family, round robin), a fixed
//! level or the session's adaptive window, a split, a seed and a prompt style; a session keeps
//! each stream's cursor so that successive requests get successive tasks.

pub mod session;
pub mod store;
pub mod tasks;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use triad_generators::{DynFamily, GenOptions, PromptStyle, Split, registry};

pub use session::{AdaptiveOptions, Session};
pub use store::SessionStore;
pub use tasks::{Stream, draw, rows_json};

use crate::dataset::shard::Row;

/// Default most tasks one request may ask for.
pub const DEFAULT_MAX_TASKS: usize = 1024;
/// Most streams (family, level, split, seed, style) one session keeps a cursor for: seeds are
/// the client's, so without a cap a session's memory would grow with every new seed.
pub const MAX_SESSION_STREAMS: usize = 1024;
/// Default seed of online streams (a request may name its own).
pub const DEFAULT_TASK_SEED: u64 = 0;

/// What can go wrong making tasks or keeping sessions.
#[derive(Debug, thiserror::Error)]
pub enum OnlineError {
    /// The request or an option is invalid (a 4xx).
    #[error("{0}")]
    Invalid(String),
    /// No session of that id.
    #[error("no session {0:?} (create it with POST /sessions)")]
    NoSession(String),
    /// The request conflicts with the server's state (an existing session, the session cap).
    #[error("{0}")]
    Conflict(String),
    /// A stream gave too few distinct-split candidates.
    #[error("stream exhausted: {0}")]
    Exhausted(String),
    /// Generation failed.
    #[error(transparent)]
    Generation(#[from] triad_generators::GenError),
    /// Building or encoding rows failed.
    #[error(transparent)]
    Dataset(#[from] crate::dataset::DatasetError),
    /// Arrow's JSON writer failed.
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    /// JSON (de)serialisation failed.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A file of the session directory.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl OnlineError {
    fn io(path: &Path, source: std::io::Error) -> OnlineError {
        OnlineError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The level a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LevelChoice {
    /// This level.
    Fixed(u8),
    /// Drawn from the session's window for each task.
    Adaptive,
}

impl<'de> Deserialize<'de> for LevelChoice {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Level(u8),
            Word(String),
        }
        match Wire::deserialize(deserializer)? {
            Wire::Level(level) => Ok(LevelChoice::Fixed(level)),
            Wire::Word(word) if word == "adaptive" => Ok(LevelChoice::Adaptive),
            Wire::Word(word) => Err(serde::de::Error::custom(format!(
                "level must be a number or \"adaptive\", not {word:?}"
            ))),
        }
    }
}

impl Serialize for LevelChoice {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            LevelChoice::Fixed(level) => serializer.serialize_u8(*level),
            LevelChoice::Adaptive => serializer.serialize_str("adaptive"),
        }
    }
}

fn default_split() -> Split {
    Split::Train
}

/// A request for tasks: the body of `POST /tasks`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    /// One family, or every family (round robin) when absent.
    #[serde(default)]
    pub family: Option<String>,
    /// A level, or `"adaptive"` (needs a session); absent: adaptive with a session, else each
    /// family's first level.
    #[serde(default)]
    pub level: Option<LevelChoice>,
    /// How many tasks.
    pub n: usize,
    /// The split (default `train`).
    #[serde(default = "default_split")]
    pub split: Split,
    /// The streams' seed (default: the server's).
    #[serde(default)]
    pub seed: Option<u64>,
    /// The prompt style (default: the server's).
    #[serde(default)]
    pub prompt_style: Option<PromptStyle>,
    /// The session whose cursors (and, adaptive, levels) to use.
    #[serde(default)]
    pub session: Option<String>,
    /// Without a session: the candidate index every stream starts at (default 0).
    #[serde(default)]
    pub start: Option<u64>,
}

/// What a server (or the trainer) makes tasks with when a request does not say.
#[derive(Clone, Debug)]
pub struct TaskDefaults {
    /// The streams' seed.
    pub seed: u64,
    /// The prompt style.
    pub style: PromptStyle,
    /// Generation options (each family's own, certification).
    pub options: GenOptions,
    /// Most tasks per request.
    pub max_tasks: usize,
}

impl Default for TaskDefaults {
    fn default() -> Self {
        TaskDefaults {
            seed: DEFAULT_TASK_SEED,
            style: PromptStyle::default(),
            options: GenOptions::default(),
            max_tasks: DEFAULT_MAX_TASKS,
        }
    }
}

/// The rows made for one request.
#[derive(Debug)]
pub struct TaskBatch {
    /// The rows, in request order (families round robin).
    pub rows: Vec<Row>,
    /// Fewer rows than asked for: the deadline passed first.
    pub truncated: bool,
}

fn families_of(request: &TaskRequest) -> Result<Vec<&'static dyn DynFamily>, OnlineError> {
    match &request.family {
        Some(name) => registry::family(name).map(|f| vec![f]).ok_or_else(|| {
            OnlineError::Invalid(format!(
                "unknown family {name:?} (known: {})",
                registry::names().join(", ")
            ))
        }),
        None => Ok(registry::FAMILIES.to_vec()),
    }
}

fn check_level(family: &dyn DynFamily, level: u8) -> Result<(), OnlineError> {
    if family.levels().contains(&level) {
        Ok(())
    } else {
        let levels = family.levels();
        Err(OnlineError::Invalid(format!(
            "{} has no level {level} (levels {}-{})",
            family.name(),
            levels.start(),
            levels.end()
        )))
    }
}

/// Make the tasks `request` asks for. With `session`, each stream continues from the session's
/// cursor (advanced past what is returned) and adaptive levels come from its window; without,
/// every stream starts at `request.start`. Generation runs on the current rayon pool and stops
/// at `deadline`, returning what it has (`truncated`).
pub fn make_tasks(
    request: &TaskRequest,
    mut session: Option<&mut Session>,
    defaults: &TaskDefaults,
    deadline: Option<Instant>,
) -> Result<TaskBatch, OnlineError> {
    if request.n > defaults.max_tasks {
        return Err(OnlineError::Invalid(format!(
            "n = {} is over the limit of {} tasks a request (--max-tasks)",
            request.n, defaults.max_tasks
        )));
    }
    if session.is_some() && request.start.is_some() {
        return Err(OnlineError::Invalid(
            "`start` is for requests without a session: a session keeps its own cursors".into(),
        ));
    }
    let families = families_of(request)?;
    let level = match (request.level, session.is_some()) {
        (Some(LevelChoice::Adaptive), false) => {
            return Err(OnlineError::Invalid(
                "level \"adaptive\" needs a session (POST /sessions)".into(),
            ));
        }
        (Some(choice), _) => Some(choice),
        (None, true) => Some(LevelChoice::Adaptive),
        (None, false) => None,
    };
    if let Some(LevelChoice::Fixed(level)) = level {
        for family in &families {
            check_level(*family, level)?;
        }
    }
    let stream_of = |family: &'static dyn DynFamily, level: u8| Stream {
        family,
        level,
        split: request.split,
        seed: request.seed.unwrap_or(defaults.seed),
        style: request.prompt_style.unwrap_or(defaults.style),
    };
    // Each slot's stream, in request order.
    let mut slots: Vec<(String, Stream)> = Vec::with_capacity(request.n);
    for i in 0..request.n {
        let family = families[i % families.len()];
        let level = match (level, session.as_deref_mut()) {
            (Some(LevelChoice::Fixed(level)), _) => level,
            (_, Some(session)) => session.draw_level(family),
            (_, None) => *family.levels().start(),
        };
        let stream = stream_of(family, level);
        slots.push((stream.cursor_key(), stream));
    }
    let mut wanted: BTreeMap<String, (Stream, usize)> = BTreeMap::new();
    for (key, stream) in &slots {
        wanted.entry(key.clone()).or_insert((*stream, 0)).1 += 1;
    }
    let mut drawn: BTreeMap<String, std::vec::IntoIter<Row>> = BTreeMap::new();
    let mut truncated = false;
    if let Some(session) = session.as_deref() {
        let new = wanted
            .keys()
            .filter(|k| !session.cursors.contains_key(*k))
            .count();
        if session.cursors.len() + new > MAX_SESSION_STREAMS {
            return Err(OnlineError::Invalid(format!(
                "session {} would keep more than {MAX_SESSION_STREAMS} streams (each seed, level and style is one)",
                session.id
            )));
        }
    }
    for (key, (stream, count)) in wanted {
        let start = match session.as_deref() {
            Some(session) => session.cursors.get(&key).copied().unwrap_or(0),
            None => request.start.unwrap_or(0),
        };
        let batch = draw(&stream, &defaults.options, start, count, deadline)?;
        truncated |= batch.rows.len() < count;
        if let Some(session) = session.as_deref_mut() {
            session.cursors.insert(key.clone(), batch.next);
        }
        drawn.insert(key, batch.rows.into_iter());
    }
    let rows = slots
        .iter()
        .filter_map(|(key, _)| drawn.get_mut(key).and_then(Iterator::next))
        .collect();
    Ok(TaskBatch { rows, truncated })
}

/// A cheap key grouping the rollouts of one prompt: a hash of its label text.
pub fn prompt_key(label: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    label.hash(&mut hasher);
    hasher.finish()
}

/// Record scored rollouts in `session`: each score whose label named a family and level counts
/// at that (family, level). Returns how many counted.
pub fn record_scores<'a>(
    session: &mut Session,
    scored: impl IntoIterator<Item = (&'a str, &'a crate::reward::Score)>,
) -> usize {
    let mut counted = 0;
    for (label, score) in scored {
        let (Some(name), Some(level)) = (score.family.as_deref(), score.level) else {
            continue;
        };
        let Some(family) = registry::family(name) else {
            continue;
        };
        session.record(family, level, prompt_key(label), score.correct);
        counted += 1;
    }
    counted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> TaskRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn requests_mix_families_round_robin_and_sessions_advance_their_cursors() {
        let defaults = TaskDefaults::default();
        let all = request(serde_json::json!({"n": 7, "level": 2}));
        let batch = make_tasks(&all, None, &defaults, None).unwrap();
        let families: Vec<&str> = batch.rows.iter().map(|r| r.item.family).collect();
        let names = registry::names();
        let expected: Vec<&str> = (0..7).map(|i| names[i % names.len()]).collect();
        assert_eq!(families, expected);
        assert!(batch.rows.iter().all(|r| r.item.level == 2) && !batch.truncated);

        let mut session = Session::new("s".into(), AdaptiveOptions::default());
        let one = request(serde_json::json!({"n": 4, "family": "induction", "level": 3}));
        let first = make_tasks(&one, Some(&mut session), &defaults, None).unwrap();
        let second = make_tasks(&one, Some(&mut session), &defaults, None).unwrap();
        let eight = request(serde_json::json!({"n": 8, "family": "induction", "level": 3}));
        let straight = make_tasks(&eight, None, &defaults, None).unwrap();
        let ids = |rows: &[Row]| rows.iter().map(|r| r.item.id()).collect::<Vec<_>>();
        assert_eq!(
            [ids(&first.rows), ids(&second.rows)].concat(),
            ids(&straight.rows)
        );
    }

    #[test]
    fn bad_requests_are_refused_with_a_reason() {
        let defaults = TaskDefaults::default();
        let mut session = Session::new("s".into(), AdaptiveOptions::default());
        for (json, with_session, needle) in [
            (
                serde_json::json!({"n": 1, "family": "nope"}),
                false,
                "unknown family",
            ),
            (
                serde_json::json!({"n": 1, "level": 99}),
                false,
                "no level 99",
            ),
            (serde_json::json!({"n": 5000}), false, "--max-tasks"),
            (
                serde_json::json!({"n": 1, "level": "adaptive"}),
                false,
                "needs a session",
            ),
            (
                serde_json::json!({"n": 1, "start": 3}),
                true,
                "without a session",
            ),
        ] {
            let error = make_tasks(
                &request(json),
                with_session.then_some(&mut session),
                &defaults,
                None,
            )
            .unwrap_err();
            assert!(error.to_string().contains(needle), "{error}");
        }
        assert!(
            serde_json::from_value::<TaskRequest>(serde_json::json!({"n": 1, "level": "hard"}))
                .is_err()
        );
        assert!(
            serde_json::from_value::<TaskRequest>(serde_json::json!({"n": 1, "colour": 1}))
                .is_err()
        );
    }
}
