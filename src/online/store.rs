//! Sessions kept by one server: in memory, and in a directory when one is given (one small JSON
//! file per session, written atomically), so they survive a restart.
//!
//! Writes are behind: a scored reward marks its session dirty, and [`SessionStore::flush`]
//! (every [`DEFAULT_FLUSH_INTERVAL`] in `triad serve`, and at shutdown) writes the dirty ones. A
//! crash loses at most the last interval's records of a session, never a whole session, and
//! never leaves a half-written file. One directory belongs to one server: replicas behind a load
//! balancer must each have their own and route a session's requests to one replica (by session
//! id); two servers writing one directory would each overwrite the other's records.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::OnlineError;
use super::session::{AdaptiveOptions, Session, check_session_id};
use crate::dataset::shard::write_atomic;

/// Default cap on sessions one server keeps; creating one more is refused (409).
pub const DEFAULT_MAX_SESSIONS: usize = 1000;
/// Default interval between writes of changed sessions to the session directory.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// A session behind two locks. `state` is held only for moments (a score recorded, a report
/// copied), so the async handlers that take it never wait long. `generating` serialises the
/// task requests of one session (its cursors and draws must advance in one order) while they
/// generate, which may take seconds, on blocking threads only; generation works on a copy, so
/// scores and reports go on meanwhile.
pub struct SessionSlot {
    state: Mutex<Session>,
    generating: Mutex<()>,
}

/// A session as the store hands it out.
pub type SharedSession = Arc<SessionSlot>;

fn slot(session: Session) -> SharedSession {
    Arc::new(SessionSlot {
        state: Mutex::new(session),
        generating: Mutex::new(()),
    })
}

/// The sessions of one server.
pub struct SessionStore {
    dir: Option<PathBuf>,
    max_sessions: usize,
    defaults: AdaptiveOptions,
    sessions: Mutex<HashMap<String, SharedSession>>,
    dirty: Mutex<BTreeSet<String>>,
    created: AtomicU64,
}

/// A poisoned lock means a thread panicked while holding it; the data is still the last
/// consistent state the session was left in, so serving goes on.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SessionStore {
    /// A store, reading the sessions `dir` holds (created if missing). A file that does not
    /// read as a session is an error naming it: starting without it would lose it.
    pub fn open(
        dir: Option<PathBuf>,
        max_sessions: usize,
        defaults: AdaptiveOptions,
    ) -> Result<SessionStore, OnlineError> {
        defaults.validate()?;
        let mut sessions = HashMap::new();
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir).map_err(|e| OnlineError::io(dir, e))?;
            for session in read_sessions(dir)? {
                sessions.insert(session.id.clone(), slot(session));
            }
        }
        Ok(SessionStore {
            dir,
            max_sessions,
            defaults,
            sessions: Mutex::new(sessions),
            dirty: Mutex::new(BTreeSet::new()),
            created: AtomicU64::new(0),
        })
    }

    /// The schedule options a session gets when it names none.
    pub fn defaults(&self) -> AdaptiveOptions {
        self.defaults
    }

    /// Create a session (`id` chosen by the client, or made here) or return the existing one of
    /// that id; `true` when created. Asking for an existing id with other options is a conflict.
    pub fn create(
        &self,
        id: Option<String>,
        adaptive: Option<AdaptiveOptions>,
    ) -> Result<(Session, bool), OnlineError> {
        if let Some(options) = &adaptive {
            options.validate()?;
        }
        let id = match id {
            Some(id) => {
                check_session_id(&id)?;
                id
            }
            None => self.new_id(),
        };
        let mut sessions = lock(&self.sessions);
        if let Some(existing) = sessions.get(&id) {
            let existing = lock(&existing.state).clone();
            if adaptive.is_some_and(|a| a != existing.adaptive) {
                return Err(OnlineError::Conflict(format!(
                    "session {id} exists with other adaptive options"
                )));
            }
            return Ok((existing, false));
        }
        if sessions.len() >= self.max_sessions {
            return Err(OnlineError::Conflict(format!(
                "the server keeps at most {} sessions (--max-sessions)",
                self.max_sessions
            )));
        }
        let session = Session::new(id.clone(), adaptive.unwrap_or(self.defaults));
        sessions.insert(id.clone(), slot(session.clone()));
        drop(sessions);
        self.mark_dirty(&id);
        Ok((session, true))
    }

    /// A fresh id: 32 hex digits from the clock, the process and a counter. Ids name sessions;
    /// they are not secrets (the API key guards the server).
    fn new_id(&self) -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let count = self.created.fetch_add(1, Ordering::Relaxed);
        let digest = Sha256::new()
            .chain_update(nanos.to_le_bytes())
            .chain_update(std::process::id().to_le_bytes())
            .chain_update(count.to_le_bytes())
            .finalize();
        hex::encode(&digest[..16])
    }

    /// The session of `id`.
    pub fn get(&self, id: &str) -> Result<SharedSession, OnlineError> {
        lock(&self.sessions)
            .get(id)
            .cloned()
            .ok_or_else(|| OnlineError::NoSession(id.to_string()))
    }

    /// Run `f` on the session of `id`, leaving it as it is.
    pub fn read<T>(&self, id: &str, f: impl FnOnce(&Session) -> T) -> Result<T, OnlineError> {
        let shared = self.get(id)?;
        let out = f(&lock(&shared.state));
        Ok(out)
    }

    /// Run `f` on the session of `id` and mark it for the next flush.
    pub fn update<T>(&self, id: &str, f: impl FnOnce(&mut Session) -> T) -> Result<T, OnlineError> {
        let shared = self.get(id)?;
        let out = f(&mut lock(&shared.state));
        self.mark_dirty(id);
        Ok(out)
    }

    /// Make tasks for the session of `id`: `f` runs on a copy of it, with the session's other
    /// task requests waiting, and the copy's cursors, draws and new families are then written
    /// back (records scored meanwhile are kept). Call from a blocking thread: it may wait.
    pub fn generate<T>(
        &self,
        id: &str,
        f: impl FnOnce(&mut Session) -> T,
    ) -> Result<T, OnlineError> {
        let shared = self.get(id)?;
        let _turn = lock(&shared.generating);
        let mut working = lock(&shared.state).clone();
        let out = f(&mut working);
        let mut session = lock(&shared.state);
        session.cursors = working.cursors;
        session.draws = working.draws;
        for (family, progress) in working.families {
            session.families.entry(family).or_insert(progress);
        }
        drop(session);
        self.mark_dirty(id);
        Ok(out)
    }

    fn mark_dirty(&self, id: &str) {
        if self.dir.is_some() {
            lock(&self.dirty).insert(id.to_string());
        }
    }

    /// A copy of every session, by id.
    pub fn snapshot(&self) -> Vec<Session> {
        let shared: Vec<SharedSession> = lock(&self.sessions).values().cloned().collect();
        let mut out: Vec<Session> = shared.iter().map(|s| lock(&s.state).clone()).collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Write every changed session to the directory; returns how many were written.
    pub fn flush(&self) -> Result<usize, OnlineError> {
        let Some(dir) = &self.dir else {
            return Ok(0);
        };
        let ids = std::mem::take(&mut *lock(&self.dirty));
        for (written, id) in ids.iter().enumerate() {
            let Ok(shared) = self.get(id) else { continue };
            let json = serde_json::to_vec_pretty(&*lock(&shared.state))?;
            if let Err(error) = write_atomic(&session_path(dir, id), &json) {
                // Keep what is not written for the next flush.
                lock(&self.dirty).extend(ids.iter().skip(written).cloned());
                return Err(error.into());
            }
        }
        Ok(ids.len())
    }
}

fn session_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.json"))
}

fn read_sessions(dir: &Path) -> Result<Vec<Session>, OnlineError> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| OnlineError::io(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| OnlineError::io(dir, e))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read(&path).map_err(|e| OnlineError::io(&path, e))?;
        let session: Session = serde_json::from_slice(&text)
            .map_err(|e| OnlineError::Invalid(format!("{}: not a session: {e}", path.display())))?;
        let named = path.file_stem().and_then(|s| s.to_str()) == Some(session.id.as_str());
        if check_session_id(&session.id).is_err() || !named {
            return Err(OnlineError::Invalid(format!(
                "{}: holds session {:?}, not the one its name says",
                path.display(),
                session.id
            )));
        }
        session.adaptive.validate()?;
        out.push(session);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use triad_generators::registry;

    #[test]
    fn sessions_survive_a_reopen_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            SessionStore::open(Some(dir.path().into()), 10, AdaptiveOptions::default()).unwrap();
        let (made, created) = store.create(Some("run-1".into()), None).unwrap();
        assert!(created && made.id == "run-1");
        let (again, created) = store.create(Some("run-1".into()), None).unwrap();
        assert!(!created && again == made);
        let other = AdaptiveOptions {
            rise: 0.8,
            ..AdaptiveOptions::default()
        };
        assert!(matches!(
            store.create(Some("run-1".into()), Some(other)),
            Err(OnlineError::Conflict(_))
        ));
        let family = registry::family("induction").unwrap();
        store
            .update("run-1", |s| {
                for p in 0..9 {
                    s.record(family, 1, p, true);
                }
            })
            .unwrap();
        assert_eq!(store.flush().unwrap(), 1);
        assert_eq!(store.flush().unwrap(), 0);
        let reopened =
            SessionStore::open(Some(dir.path().into()), 10, AdaptiveOptions::default()).unwrap();
        let session = reopened.snapshot().remove(0);
        assert_eq!(session.frontier(family), 2);
        assert_eq!(session, store.snapshot().remove(0));

        std::fs::write(dir.path().join("junk.json"), b"{").unwrap();
        let error = SessionStore::open(Some(dir.path().into()), 10, AdaptiveOptions::default())
            .err()
            .unwrap();
        assert!(error.to_string().contains("junk.json"), "{error}");
    }

    /// Scores recorded while a task request generates are not blocked by it and not lost when
    /// its cursors are written back.
    #[test]
    fn generation_works_on_a_copy_and_keeps_records_made_meanwhile() {
        let store = SessionStore::open(None, 10, AdaptiveOptions::default()).unwrap();
        store.create(Some("g".into()), None).unwrap();
        let family = registry::family("deduction").unwrap();
        store
            .generate("g", |working| {
                working
                    .cursors
                    .insert("deduction/1/train/0/chat".into(), 42);
                working.draw_level(family);
                // Would deadlock if generation held the session's state lock.
                store.update("g", |s| s.record(family, 1, 7, true)).unwrap();
            })
            .unwrap();
        let session = store.snapshot().remove(0);
        assert_eq!(session.cursors["deduction/1/train/0/chat"], 42);
        assert_eq!(
            (
                session.draws,
                session.families["deduction"].levels[&1].scored
            ),
            (1, 1)
        );
    }

    #[test]
    fn the_session_cap_and_ids_are_enforced() {
        let store = SessionStore::open(None, 2, AdaptiveOptions::default()).unwrap();
        let (a, _) = store.create(None, None).unwrap();
        let (b, _) = store.create(None, None).unwrap();
        assert_ne!(a.id, b.id);
        assert_eq!(a.id.len(), 32);
        assert!(matches!(
            store.create(None, None),
            Err(OnlineError::Conflict(_))
        ));
        assert!(matches!(
            store.create(Some("../etc".into()), None),
            Err(OnlineError::Invalid(_))
        ));
        assert!(matches!(store.get("nope"), Err(OnlineError::NoSession(_))));
    }
}
