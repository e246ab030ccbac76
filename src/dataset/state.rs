//! A dataset directory's own bookkeeping, under `OUT/.triad/` (a hidden directory, so neither
//! Hugging Face `datasets` nor a `*.parquet` glob ever reads it):
//!
//! - **`lock`** — one writer per directory. A run takes an exclusive lock on it (and writes its
//!   pid there); a fan-out worker takes a shared lock on it plus an exclusive lock on
//!   `lock.worker-I-of-N`, so workers of one fan-out run side by side while a second run or a
//!   second copy of a worker fails at once. The operating system releases the locks when the
//!   process ends, however it ends.
//! - **`finished-WRITER.jsonl`** — the journal: one line per shard, appended (and fsynced) the
//!   moment the shard is renamed to its final name, with its SHA-256. Resuming reuses a shard
//!   only if its bytes hash to a value recorded for it, here or in a manifest; anything else —
//!   a corrupted shard, one whose record was never written — is regenerated. Once the run's
//!   manifest is written, its journal is no longer needed and is removed.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::DatasetError;
use super::manifest::Manifest;

/// The bookkeeping directory inside a dataset directory.
pub const STATE_DIR: &str = ".triad";

/// Who is writing: a whole run, or one fan-out worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer {
    /// A run that writes every stream and the manifest.
    Run,
    /// Fan-out worker `index` of `count`.
    Worker {
        /// This worker.
        index: u64,
        /// Workers in all.
        count: u64,
    },
}

impl Writer {
    /// From the generation config's fan-out setting.
    pub fn of(worker: Option<(u64, u64)>) -> Writer {
        match worker {
            Some((index, count)) => Writer::Worker { index, count },
            None => Writer::Run,
        }
    }

    fn tag(self) -> String {
        match self {
            Writer::Run => "run".into(),
            Writer::Worker { index, count } => format!("worker-{index:05}-of-{count:05}"),
        }
    }
}

/// The locks a writer holds on a dataset directory; released when dropped (or when the process
/// ends).
#[derive(Debug)]
pub struct DirLock {
    _files: Vec<File>,
}

fn open_lock_file(path: &Path) -> Result<File, DatasetError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| DatasetError::io(path, e))
}

fn lock_failed(path: &Path, error: fs::TryLockError) -> DatasetError {
    match error {
        fs::TryLockError::WouldBlock => {
            // A pid is a few bytes; read no more than that from a file anyone could have filled.
            let mut head = Vec::new();
            if let Ok(file) = File::open(path) {
                let _ = std::io::Read::read_to_end(&mut std::io::Read::take(file, 32), &mut head);
            }
            let holder = String::from_utf8_lossy(&head);
            let holder = holder.trim();
            DatasetError::Locked {
                path: path.to_path_buf(),
                holder: if holder.is_empty() {
                    "another triad process".into()
                } else {
                    format!("process {holder}")
                },
            }
        }
        fs::TryLockError::Error(e) => DatasetError::io(path, e),
    }
}

fn exclusive(path: &Path) -> Result<File, DatasetError> {
    let mut file = open_lock_file(path)?;
    file.try_lock().map_err(|e| lock_failed(path, e))?;
    // The pid is for the message a second writer gets; the lock itself is the OS's.
    file.set_len(0).map_err(|e| DatasetError::io(path, e))?;
    writeln!(file, "{}", std::process::id()).map_err(|e| DatasetError::io(path, e))?;
    Ok(file)
}

impl DirLock {
    /// Take the directory for `writer`, or fail at once naming the process that holds it.
    pub fn acquire(dir: &Path, writer: Writer) -> Result<DirLock, DatasetError> {
        let state = dir.join(STATE_DIR);
        fs::create_dir_all(&state).map_err(|e| DatasetError::io(&state, e))?;
        let main = state.join("lock");
        let files = match writer {
            Writer::Run => vec![exclusive(&main)?],
            Writer::Worker { .. } => {
                let shared = open_lock_file(&main)?;
                shared
                    .try_lock_shared()
                    .map_err(|e| lock_failed(&main, e))?;
                let own = exclusive(&state.join(format!("lock.{}", writer.tag())))?;
                vec![shared, own]
            }
        };
        Ok(DirLock { _files: files })
    }
}

/// Remove a finished worker's lock file (the caller holds the directory exclusively).
pub fn remove_worker_lock(dir: &Path, index: u64, count: u64) -> Result<(), DatasetError> {
    let path = dir
        .join(STATE_DIR)
        .join(format!("lock.{}", Writer::Worker { index, count }.tag()));
    match fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DatasetError::io(&path, e)),
        _ => Ok(()),
    }
}

/// One journal line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishedShard {
    /// Path relative to the dataset directory.
    pub path: String,
    /// SHA-256 of the finished file.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
}

/// The hashes triad recorded for each shard path when it finished writing it.
#[derive(Debug, Default)]
pub struct Records(HashMap<String, HashSet<String>>);

impl Records {
    /// Everything recorded in `dir`: the journals and the manifests (the run's and workers').
    pub fn load(dir: &Path) -> Records {
        let mut records = Records::default();
        let mut manifests = vec![dir.join("manifest.json")];
        manifests.extend(files_named(dir, "manifest.worker-", ".json"));
        let journals = files_named(&dir.join(STATE_DIR), "finished-", ".jsonl");
        for path in manifests {
            // An unreadable manifest records nothing: its shards are then regenerated.
            let Ok(manifest) = Manifest::read_file(&path) else {
                continue;
            };
            for shard in manifest.streams.iter().flat_map(|s| &s.shards) {
                records.add(&shard.path, &shard.sha256);
            }
        }
        for path in journals {
            let Ok(file) = File::open(&path) else {
                continue;
            };
            // A torn last line (a crash mid-append) is skipped like any unreadable line; a journal
            // is read no further than a manifest could be long.
            let bounded = std::io::Read::take(file, super::manifest::MAX_MANIFEST_BYTES);
            for line in BufReader::new(bounded).lines().map_while(Result::ok) {
                if let Ok(shard) = serde_json::from_str::<FinishedShard>(&line) {
                    records.add(&shard.path, &shard.sha256);
                }
            }
        }
        records
    }

    fn add(&mut self, path: &str, sha256: &str) {
        self.0
            .entry(path.to_string())
            .or_default()
            .insert(sha256.to_string());
    }

    /// Whether `sha256` is a hash recorded for the shard at `path`.
    pub fn vouches_for(&self, path: &str, sha256: &str) -> bool {
        self.0
            .get(path)
            .is_some_and(|hashes| hashes.contains(sha256))
    }
}

/// The files in `folder` whose names start with `prefix` and end with `suffix`, sorted.
fn files_named(folder: &Path, prefix: &str, suffix: &str) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(prefix) && name.ends_with(suffix)
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// The journal a writer appends to.
pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Open (creating) `writer`'s journal in `dir`.
    pub fn open(dir: &Path, writer: Writer) -> Result<Journal, DatasetError> {
        let path = dir
            .join(STATE_DIR)
            .join(format!("finished-{}.jsonl", writer.tag()));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| DatasetError::io(&path, e))?;
        Ok(Journal { path, file })
    }

    /// Record a finished shard, durably.
    pub fn record(&mut self, shard: &FinishedShard) -> Result<(), DatasetError> {
        let mut line = serde_json::to_string(shard).expect("a record serializes");
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| DatasetError::io(&self.path, e))
    }

    /// The manifest now records every shard: the journal is no longer needed.
    pub fn retire(self) -> Result<(), DatasetError> {
        drop(self.file);
        fs::remove_file(&self.path).map_err(|e| DatasetError::io(&self.path, e))
    }
}
