//! Generating a dataset: deterministic, parallel, deduplicated, resumable.
//!
//! Each (family, level) has one candidate stream: candidate `j` is a pure function of
//! (seed, family, level, j) — its RNG is a hash of those coordinates — and belongs to the split
//! its content hash picks (`triad_generators::rng::split_of_key`), so train and test never share
//! content and no candidate is made only to be dropped. Each (family, level, split) *stream* keeps,
//! in candidate order, every candidate of its split whose content is new; shards cut that sequence
//! into pieces of `--shard-rows`. So the rows depend on nothing but the configuration: candidates
//! are computed in parallel batches with rayon, but accepted strictly in order, and the thread
//! count, batch size, shard boundaries and the other split's size cannot change a byte.
//!
//! Resuming: a finished shard carries the configuration hash and the stream position after it in
//! its footer. Running the same command again re-reads finished shards (their ids rebuild the
//! dedup set) and continues from the next candidate, so an interrupted run ends byte-identical
//! to an uninterrupted one. A shard is reused only if its bytes hash to the SHA-256 recorded
//! when it was finished (see [`super::state`]); a corrupted or unrecorded one is regenerated, and
//! the caller is told. One writer at a time: the directory is locked for the whole run.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::{Digest, Sha256};
use triad_generators::{
    DynFamily, GenOptions, Item, ItemCoords, OptionSet, PromptStyle, Split, certify_item,
};

use super::manifest::{Manifest, ShardEntry, StreamEntry};
use super::shard::{self, Row};
use super::state::{DirLock, FinishedShard, Journal, Records, Writer};
use super::{DatasetError, FORMAT_VERSION, card};

/// Consecutive candidates without a new item after which a stream counts as exhausted (the
/// family has fewer distinct items at that level than were asked for).
pub const EXHAUSTION_STREAK: u64 = 20_000;

/// What to generate.
#[derive(Clone)]
pub struct GenerateConfig {
    /// Output directory.
    pub out: PathBuf,
    /// Families, in order.
    pub families: Vec<&'static dyn DynFamily>,
    /// Levels.
    pub levels: Vec<u8>,
    /// Train items per family and level.
    pub train: u64,
    /// Test items per family and level.
    pub test: u64,
    /// Master seed.
    pub seed: u64,
    /// Prompt style.
    pub style: PromptStyle,
    /// Rows per shard.
    pub shard_rows: u64,
    /// Generation options: certification, and each family's own (validated when they are set).
    pub options: GenOptions,
    /// Replace shards of another configuration instead of refusing.
    pub overwrite: bool,
    /// Fan-out: `(index, count)` — this worker generates every `count`-th (family, level) starting at
    /// `index` and writes a partial manifest; `triad manifest merge` joins the workers' manifests.
    pub worker: Option<(u64, u64)>,
    /// The licence the dataset card declares ([`DEFAULT_LICENSE`](super::manifest::DEFAULT_LICENSE)
    /// when unsure).
    pub license: String,
}

impl GenerateConfig {
    /// Check the configuration before anything is written: a library caller gets the same errors
    /// the CLI gives, never a panic deep in generation.
    pub fn validate(&self) -> Result<(), DatasetError> {
        let invalid = |message: String| Err(DatasetError::Config(message));
        if self.shard_rows == 0 {
            return invalid("shard_rows must be positive".into());
        }
        if self.families.is_empty() {
            return invalid("no families to generate".into());
        }
        if self.levels.is_empty() {
            return invalid("no levels to generate".into());
        }
        for family in &self.families {
            let range = family.levels();
            if let Some(level) = self.levels.iter().find(|l| !range.contains(l)) {
                return invalid(format!(
                    "{} has no level {level} (levels {}–{})",
                    family.name(),
                    range.start(),
                    range.end()
                ));
            }
        }
        if let Some((index, count)) = self.worker
            && (count == 0 || index >= count)
        {
            return invalid(format!(
                "worker index {index} is not below the worker count {count}"
            ));
        }
        super::manifest::check_license(&self.license).map_err(DatasetError::Config)
    }
}

struct StreamSpec<'a> {
    config: &'a GenerateConfig,
    family: &'static dyn DynFamily,
    level: u8,
    split: Split,
    requested: u64,
}

impl StreamSpec<'_> {
    fn dir(&self) -> PathBuf {
        self.config
            .out
            .join(self.family.name())
            .join(format!("level-{}", self.level))
    }

    fn num_shards(&self) -> u64 {
        self.requested.div_ceil(self.config.shard_rows)
    }

    fn shard_name(&self, index: u64) -> String {
        shard_file_name(self.split, index, self.requested, self.config.shard_rows)
    }

    /// Hash of everything that decides this stream's bytes.
    fn config_hash(&self) -> String {
        let config = self.config;
        stream_config_hash(
            &StreamKey {
                seed: config.seed,
                style: config.style,
                options: config.options.families.clone(),
                shard_rows: config.shard_rows,
            },
            self.family.name(),
            self.level,
            self.split,
            self.requested,
        )
    }
}

/// The dataset-wide settings that decide a stream's bytes (what the manifest records of them).
pub(crate) struct StreamKey {
    pub seed: u64,
    pub style: PromptStyle,
    pub options: OptionSet,
    pub shard_rows: u64,
}

impl StreamKey {
    /// The settings a manifest records.
    pub fn of_manifest(manifest: &Manifest) -> StreamKey {
        StreamKey {
            seed: manifest.seed,
            style: manifest.prompt_style,
            options: manifest.options.clone(),
            shard_rows: manifest.shard_rows,
        }
    }
}

/// The configuration hash stamped in a stream's shard footers and its manifest entry: `verify`
/// recomputes it from the manifest to tell whether the shards were made with what it says.
pub(crate) fn stream_config_hash(
    key: &StreamKey,
    family: &str,
    level: u8,
    split: Split,
    requested: u64,
) -> String {
    let stream = (family, level, split, requested);
    stream_config_hash_at(key, stream, triad_generators::OUTPUT_REVISION)
}

/// [`stream_config_hash`] as generators of `revision` stamp it.
fn stream_config_hash_at(
    key: &StreamKey,
    (family, level, split, requested): (&str, u8, Split, u64),
    revision: u32,
) -> String {
    let mut description = serde_json::json!({
        "format_version": FORMAT_VERSION,
        "generators": revision,
        "seed": key.seed,
        "style": key.style,
        "shard_rows": key.shard_rows,
        "family": family,
        "level": level,
        "split": split,
        "requested": requested,
    });
    // Every option of every family, each under its own key (keys are unique across families and
    // never one of the keys above: the registry tests and `option_keys_leave_the_hash_keys_alone`
    // hold it). Listing them flat keeps the hash of a dataset made before options moved into
    // the families what it was.
    if let serde_json::Value::Object(map) = &mut description {
        for (option, value) in key.options.flat() {
            map.insert(option.to_string(), value.clone());
        }
    }
    hex::encode(&Sha256::digest(description.to_string().as_bytes())[..16])
}

/// The file name of shard `index` of a stream of `requested` rows in shards of `shard_rows`.
pub(crate) fn shard_file_name(split: Split, index: u64, requested: u64, shard_rows: u64) -> String {
    format!(
        "{split}-{index:05}-of-{:05}.parquet",
        requested.div_ceil(shard_rows.max(1))
    )
}

/// The content a stream has accepted so far: the one part of generation's memory that grows with
/// the stream rather than the shard.
///
/// It holds 64-bit fingerprints (the top half of the 128-bit content key, itself a SHA-256 prefix)
/// in a set that uses them as their own hash: 9 bytes a slot, a 150 MB table for a single
/// 10-million-item stream (~225 MB while it doubles), against twice that for the full keys under
/// SipHash. Two distinct items sharing a fingerprint (probability ~n²/2⁶⁵, 3·10⁻⁶ at 10 million)
/// would only make the later one count as a duplicate, the same way on every run — never a
/// duplicate row.
#[derive(Default)]
struct SeenSet(HashSet<u64, BuildHasherDefault<Fingerprint>>);

impl SeenSet {
    fn fingerprint(key: u128) -> u64 {
        (key >> 64) as u64
    }

    /// Record `key`; false when it was already there.
    fn insert(&mut self, key: u128) -> bool {
        self.0.insert(Self::fingerprint(key))
    }

    fn remove(&mut self, key: u128) {
        self.0.remove(&Self::fingerprint(key));
    }
}

/// A `Hasher` that passes a `u64` fingerprint (already uniformly distributed) through.
#[derive(Default)]
struct Fingerprint(u64);

impl Hasher for Fingerprint {
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64`s are hashed here; fold anything else rather than panic.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// One stream of a level being written: its candidates (taken from the level's shared candidate
/// stream, in order, keeping those of its split with new content), its shard being filled, and
/// the shards it has finished or reused.
struct Stream<'a> {
    spec: &'a StreamSpec<'a>,
    config_hash: String,
    seen: SeenSet,
    /// The next candidate of the level's stream this one has not looked at.
    next: u64,
    /// The candidate after the last one handed to a shard: where a shard ending here resumes.
    accepted_up_to: u64,
    /// Accepted, not yet written.
    pending: VecDeque<(u64, Item)>,
    misses: u64,
    exhausted: bool,
    /// The shard being filled (`None` before its first chunk: an empty shard is never written).
    file: Option<shard::ShardFile>,
    shard_index: u64,
    rows_in_shard: u64,
    /// Rows in finished shards.
    rows_written: u64,
    shards: Vec<ShardEntry>,
    /// Every shard is finished (or the stream ended short).
    done: bool,
}

impl<'a> Stream<'a> {
    fn new(spec: &'a StreamSpec<'a>) -> Stream<'a> {
        Stream {
            spec,
            config_hash: spec.config_hash(),
            seen: SeenSet::default(),
            next: 0,
            accepted_up_to: 0,
            pending: VecDeque::new(),
            misses: 0,
            exhausted: false,
            file: None,
            shard_index: 0,
            rows_in_shard: 0,
            rows_written: 0,
            shards: Vec::new(),
            done: false,
        }
    }

    /// Rows the shard being filled is to hold.
    fn shard_want(&self) -> u64 {
        self.spec
            .config
            .shard_rows
            .min(self.spec.requested - self.rows_written)
    }

    /// Whether the stream still takes candidates.
    fn wants_candidates(&self) -> bool {
        !self.done
            && !self.exhausted
            && self.rows_written + self.rows_in_shard + (self.pending.len() as u64)
                < self.spec.requested
    }

    fn path(&self) -> PathBuf {
        self.spec.dir().join(self.spec.shard_name(self.shard_index))
    }

    /// Move on to the next shard to write, adopting every finished shard on disk on the way (a
    /// reused shard moves the stream to where it ended: anything computed ahead is dropped and
    /// its content forgotten, so it counts as new when the stream reaches it again).
    fn next_shard(&mut self, books: &mut Bookkeeping<'_>) -> Result<(), DatasetError> {
        while self.shard_index < self.spec.num_shards() {
            let path = self.path();
            let relative_path = relative(&self.spec.config.out, &path);
            let want = self.shard_want();
            let Some(existing) = reuse_existing(
                &path,
                &relative_path,
                &self.config_hash,
                want,
                self.spec.config.overwrite,
                books,
            )?
            else {
                return Ok(());
            };
            let rows = existing.ids.len() as u64;
            let next = existing.next_candidate.unwrap_or_default();
            for (_, item) in self.pending.drain(..) {
                self.seen.remove(item.key);
            }
            for &id in &existing.ids {
                self.seen.insert(id);
            }
            self.next = next;
            self.accepted_up_to = next;
            self.misses = 0;
            self.exhausted = false;
            self.rows_written += rows;
            self.shard_index += 1;
            books.observer.rows(rows);
            self.shards.push(ShardEntry {
                path: relative_path,
                rows,
                bytes: existing.bytes,
                sha256: existing.sha256,
            });
            if rows < want {
                // The stream ended short when that shard was made.
                self.done = true;
                return Ok(());
            }
        }
        self.done = true;
        Ok(())
    }

    /// Look at candidates `from..` (index, candidate) in order, accepting those of this stream's
    /// split with new content; returns the newly accepted count.
    /// An accepted item is moved out of `candidates` (each belongs to one split only).
    fn accept(&mut self, from: u64, candidates: &mut [Option<Item>]) -> usize {
        let before = self.pending.len();
        let skip = self.next.saturating_sub(from) as usize;
        let split = self.spec.split;
        for (j, candidate) in (from..).zip(candidates.iter_mut()).skip(skip) {
            if !self.wants_candidates() {
                break;
            }
            self.next = j + 1;
            let seen = &mut self.seen;
            match candidate.take_if(|item| item.split() == split && seen.insert(item.key)) {
                Some(item) => {
                    self.pending.push_back((j, item));
                    self.misses = 0;
                }
                None => self.misses += 1,
            }
            if self.misses >= EXHAUSTION_STREAK {
                // Decided at this exact candidate, so the outcome cannot depend on batch size.
                self.exhausted = true;
            }
        }
        self.pending.len() - before
    }

    /// Write what is pending, a chunk of [`shard::WRITE_CHUNK_ROWS`] (or the rest of the shard) at
    /// a time, as the stream alone would: the chunks, hence the bytes, do not depend on how the
    /// level's candidates were batched. A shard that fills is finished and recorded.
    fn write_pending(&mut self, books: &mut Bookkeeping<'_>) -> Result<(), DatasetError> {
        while !self.done {
            let want = self.shard_want();
            let chunk = (want - self.rows_in_shard).min(shard::WRITE_CHUNK_ROWS as u64);
            let ending = self.exhausted && (self.pending.len() as u64) < chunk;
            if (self.pending.len() as u64) < chunk && !ending {
                return Ok(());
            }
            let taken: Vec<(u64, Item)> = self
                .pending
                .drain(..chunk.min(self.pending.len() as u64) as usize)
                .collect();
            self.write_rows(taken, books)?;
            if ending {
                self.finish_shard(books)?;
                self.done = true;
            } else if self.rows_in_shard == want {
                self.finish_shard(books)?;
                self.next_shard(books)?;
            }
        }
        Ok(())
    }

    fn write_rows(
        &mut self,
        taken: Vec<(u64, Item)>,
        books: &mut Bookkeeping<'_>,
    ) -> Result<(), DatasetError> {
        if taken.is_empty() {
            return Ok(());
        }
        let first = self.rows_written + self.rows_in_shard;
        if let Some(&(last, _)) = taken.last() {
            self.accepted_up_to = last + 1;
        }
        let rows: Vec<Row> = taken
            .into_iter()
            .enumerate()
            .map(|(i, (candidate, item))| Row {
                item,
                split: self.spec.split,
                index: first + i as u64,
                candidate,
            })
            .collect();
        let path = self.path();
        let writer = match &mut self.file {
            Some(writer) => writer,
            None => self.file.insert(shard::ShardFile::create(&path)?),
        };
        writer.write(&rows)?;
        self.rows_in_shard += rows.len() as u64;
        books.observer.rows(rows.len() as u64);
        Ok(())
    }

    /// Finish the shard being filled (if it has rows) and record it.
    fn finish_shard(&mut self, books: &mut Bookkeeping<'_>) -> Result<(), DatasetError> {
        let Some(file) = self.file.take() else {
            return Ok(());
        };
        let metadata = [
            (shard::META_CONFIG, self.config_hash.clone()),
            (shard::META_NEXT_CANDIDATE, self.accepted_up_to.to_string()),
            (shard::META_VERSION, env!("CARGO_PKG_VERSION").to_string()),
        ];
        let written = file.finish(&metadata)?;
        let relative_path = relative(&self.spec.config.out, &self.path());
        books.journal.record(&FinishedShard {
            path: relative_path.clone(),
            sha256: written.sha256.clone(),
            bytes: written.bytes,
        })?;
        self.shards.push(ShardEntry {
            path: relative_path,
            rows: self.rows_in_shard,
            bytes: written.bytes,
            sha256: written.sha256,
        });
        self.rows_written += self.rows_in_shard;
        self.rows_in_shard = 0;
        self.shard_index += 1;
        Ok(())
    }

    fn entry(self) -> StreamEntry {
        StreamEntry {
            family: self.spec.family.name().to_string(),
            level: self.spec.level,
            split: self.spec.split,
            requested: self.spec.requested,
            rows: self.rows_written,
            candidates: self.accepted_up_to,
            exhausted: self.rows_written < self.spec.requested,
            config: self.config_hash,
            shards: self.shards,
        }
    }
}

/// Generate (or finish) the streams of one (family, level) — train, test or both — from one
/// candidate stream: each candidate goes to the stream of the split its content picks, so none is
/// made only to be dropped (a test stream alone used to make four candidates per item). Each
/// stream's rows are what it would get alone, whatever the other asks for.
fn generate_level(
    streams: &[StreamSpec<'_>],
    books: &mut Bookkeeping<'_>,
) -> Result<Vec<StreamEntry>, DatasetError> {
    let mut states = Vec::with_capacity(streams.len());
    for spec in streams {
        clear_foreign(spec)?;
        let mut stream = Stream::new(spec);
        stream.next_shard(books)?;
        states.push(stream);
    }
    let batch = (16 * rayon::current_num_threads() as u64).max(64);
    loop {
        let taking: Vec<usize> = (0..states.len())
            .filter(|&s| states[s].wants_candidates())
            .collect();
        if taking.is_empty() {
            break;
        }
        let start = taking.iter().map(|&s| states[s].next).min().unwrap_or(0);
        // One stream left: the other split's candidates stop before their prompt and trace.
        let only = match taking.as_slice() {
            [s] => Some(states[*s].spec.split),
            _ => None,
        };
        let spec = states[taking[0]].spec;
        let config = spec.config;
        let mut candidates: Vec<Option<Item>> = (start..start + batch)
            .into_par_iter()
            .map(|index| {
                let coords = ItemCoords {
                    seed: config.seed,
                    family: spec.family.name(),
                    level: spec.level,
                    index,
                };
                spec.family
                    .candidate_in(&coords, &config.options, config.style, only)
            })
            .collect::<Result<_, _>>()?;
        for &s in &taking {
            let fresh = states[s].accept(start, &mut candidates);
            if config.options.certify {
                // Only accepted items are certified: duplicates, the other split's content and
                // what no stream takes never reach Z3.
                let stream = &states[s];
                let skip = stream.pending.len() - fresh;
                let new: Vec<&Item> = stream.pending.iter().skip(skip).map(|(_, i)| i).collect();
                new.par_iter().try_for_each(|item| certify_item(item))?;
            }
            states[s].write_pending(books)?;
        }
    }
    for stream in states.iter_mut().filter(|s| !s.done) {
        // Every stream has written all it took; one not done has run out of candidates.
        stream.exhausted = true;
        stream.write_pending(books)?;
    }
    Ok(states.into_iter().map(Stream::entry).collect())
}

/// Something a run did that its user should hear about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A shard on disk was not reused but written again.
    Regenerated {
        /// The shard, relative to the dataset directory.
        path: String,
        /// Why it could not be reused.
        reason: String,
    },
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Regenerated { path, reason } => write!(f, "{path}: {reason}; regenerated"),
        }
    }
}

/// What a run tells its caller as it goes: progress for a bar, and notices. The library prints
/// nothing itself; the CLI draws the bar.
pub trait Observer {
    /// Generation starts: `rows` are asked for in all (this worker's share, with fan-out).
    fn begin(&mut self, rows: u64) {
        let _ = rows;
    }
    /// A stream starts.
    fn stream(&mut self, family: &str, level: u8, split: Split) {
        let _ = (family, level, split);
    }
    /// `rows` more rows are written (or found finished).
    fn rows(&mut self, rows: u64) {
        let _ = rows;
    }
    /// Something the user should hear about.
    fn notice(&mut self, notice: Notice) {
        let _ = notice;
    }
    /// Generation is over.
    fn end(&mut self) {}
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {}

/// What a resuming run knows about the shards already on disk, and where it records new ones.
struct Bookkeeping<'a> {
    records: Records,
    journal: Journal,
    observer: &'a mut dyn Observer,
}

/// Generate (or finish generating) a dataset; returns its manifest.
pub fn generate(config: &GenerateConfig) -> Result<Manifest, DatasetError> {
    generate_with(config, &mut Quiet)
}

/// [`generate`], telling `observer` how it goes and of every shard it could not reuse.
pub fn generate_with(
    config: &GenerateConfig,
    observer: &mut dyn Observer,
) -> Result<Manifest, DatasetError> {
    config.validate()?;
    std::fs::create_dir_all(&config.out).map_err(|e| DatasetError::io(&config.out, e))?;
    let writer = Writer::of(config.worker);
    let _lock = DirLock::acquire(&config.out, writer)?;
    let mut books = Bookkeeping {
        records: Records::load(&config.out),
        journal: Journal::open(&config.out, writer)?,
        observer,
    };
    let levels = level_streams(config);
    let total: u64 = levels.iter().flatten().map(|s| s.requested).sum();
    books.observer.begin(total);
    let mut manifest = Manifest::new(
        config.seed,
        config.style,
        &config.options,
        config.shard_rows,
        &config.license,
    );
    for level in &levels {
        for spec in level {
            books
                .observer
                .stream(spec.family.name(), spec.level, spec.split);
        }
        // An exhausted stream is marked in the manifest; the CLI warns about it.
        for entry in generate_level(level, &mut books)? {
            manifest.total_rows += entry.rows;
            manifest.streams.push(entry);
        }
    }
    books.observer.end();
    if let Some((index, count)) = config.worker {
        manifest.write_as(&config.out, &super::manifest::worker_file(index, count))?;
    } else {
        manifest.write(&config.out)?;
        card::write(&config.out, &manifest, &config.families)?;
    }
    // The manifest now records every shard's hash.
    books.journal.retire()?;
    Ok(manifest)
}

/// The streams to generate, grouped by (family, level) — the unit that shares a candidate
/// stream — in canonical order (families as given, levels, train then test); with a worker set,
/// only that worker's round-robin share of the levels.
fn level_streams(config: &GenerateConfig) -> Vec<Vec<StreamSpec<'_>>> {
    let mut levels = Vec::new();
    let mut position = 0u64;
    for &family in &config.families {
        for &level in &config.levels {
            let streams: Vec<StreamSpec<'_>> =
                [(Split::Train, config.train), (Split::Test, config.test)]
                    .into_iter()
                    .filter(|&(_, requested)| requested > 0)
                    .map(|(split, requested)| StreamSpec {
                        config,
                        family,
                        level,
                        split,
                        requested,
                    })
                    .collect();
            if streams.is_empty() {
                continue;
            }
            let mine = config
                .worker
                .is_none_or(|(index, count)| position % count == index);
            position += 1;
            if mine {
                levels.push(streams);
            }
        }
    }
    levels
}

fn relative(out: &Path, path: &Path) -> String {
    path.strip_prefix(out)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Remove (with `--overwrite`) or refuse shard files of this split that this configuration would
/// not write: leftovers of another `--train`/`--test`/`--shard-rows`.
fn clear_foreign(spec: &StreamSpec<'_>) -> Result<(), DatasetError> {
    let dir = spec.dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let planned: HashSet<String> = (0..spec.num_shards()).map(|i| spec.shard_name(i)).collect();
    let prefix = format!("{}-", spec.split);
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // Only this split's: the other split's stream of this level is being written alongside.
        if name.starts_with(&format!(".{}-", spec.split)) && name.contains(".parquet.tmp-") {
            // A write interrupted by a crash: never a finished shard, safe to drop.
            std::fs::remove_file(entry.path()).map_err(|e| DatasetError::io(&entry.path(), e))?;
            continue;
        }
        if name.starts_with(&prefix) && name.ends_with(".parquet") && !planned.contains(&name) {
            if !spec.config.overwrite {
                return Err(DatasetError::Foreign { path: entry.path() });
            }
            std::fs::remove_file(entry.path()).map_err(|e| DatasetError::io(&entry.path(), e))?;
        }
    }
    Ok(())
}

/// A finished shard of this configuration is re-used; one of another configuration is refused
/// (or regenerated with `--overwrite`). A shard whose bytes do not hash to a value recorded when
/// it was finished — corrupted since, or never recorded because the run died between its rename
/// and its record — is regenerated, and said so: it is hashed before anything parses it, so a
/// corrupted file is never read as Parquet, let alone adopted.
fn reuse_existing(
    path: &Path,
    relative_path: &str,
    config_hash: &str,
    want: u64,
    overwrite: bool,
    books: &mut Bookkeeping<'_>,
) -> Result<Option<shard::ExistingShard>, DatasetError> {
    if !path.exists() {
        return Ok(None);
    }
    let (sha256, bytes) = shard::sha256_file(path)?;
    if !books.records.vouches_for(relative_path, &sha256) {
        books.observer.notice(Notice::Regenerated {
            path: relative_path.to_string(),
            reason: format!(
                "its SHA-256 {sha256} is not one recorded when it was finished (corrupted, or its run died before recording it)"
            ),
        });
        return Ok(None);
    }
    match shard::read_existing(path, sha256, bytes) {
        Ok(existing)
            if existing.config.as_deref() == Some(config_hash)
                && existing.next_candidate.is_some()
                && existing.ids.len() as u64 <= want =>
        {
            Ok(Some(existing))
        }
        _ if overwrite => Ok(None),
        _ => Err(DatasetError::Foreign {
            path: path.to_path_buf(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::{GenerateConfig, SeenSet};

    fn config() -> GenerateConfig {
        GenerateConfig {
            out: std::env::temp_dir().join("triad-never-written"),
            families: triad_generators::registry::FAMILIES.to_vec(),
            levels: vec![1],
            train: 1,
            test: 1,
            seed: 1,
            style: triad_generators::PromptStyle::Chat,
            shard_rows: 1,
            options: triad_generators::GenOptions::default(),
            overwrite: false,
            worker: None,
            license: crate::dataset::DEFAULT_LICENSE.into(),
        }
    }

    /// A library caller with a bad configuration gets an error, not a panic in generation.
    #[test]
    fn bad_configurations_are_refused_before_anything_is_written() {
        assert!(config().validate().is_ok());
        let bad: [fn(&mut GenerateConfig); 7] = [
            |c| c.license = "mit\nconfigs: []".into(),
            |c| c.license = String::new(),
            |c| c.shard_rows = 0,
            |c| c.families.clear(),
            |c| c.levels = vec![11],
            |c| c.worker = Some((3, 3)),
            |c| c.worker = Some((0, 0)),
        ];
        for (i, spoil) in bad.into_iter().enumerate() {
            let mut c = config();
            spoil(&mut c);
            assert!(
                matches!(super::generate(&c), Err(super::DatasetError::Config(_))),
                "case {i}"
            );
            assert!(!c.out.exists(), "case {i} wrote {}", c.out.display());
        }
    }

    /// An option named like one of the hash's own keys would overwrite it.
    #[test]
    fn option_keys_leave_the_hash_keys_alone() {
        let key = super::StreamKey {
            seed: 1,
            style: triad_generators::PromptStyle::Chat,
            options: triad_generators::OptionSet::default(),
            shard_rows: 1,
        };
        let own = [
            "format_version",
            "generators",
            "seed",
            "style",
            "shard_rows",
            "family",
            "level",
            "split",
            "requested",
        ];
        for (option, _) in key.options.flat() {
            assert!(!own.contains(&option), "{option}");
        }
    }

    /// The hash of the default configuration is the one datasets were stamped with before each
    /// family owned its options (`unsat_ratio` and `abduction_mode` were fields of their own).
    #[test]
    fn the_configuration_hash_is_unchanged_by_the_options_redesign() {
        // `triad generate --levels 1-10 --train 40 --test 10 --shard-rows 25` before the change.
        let mut key = super::StreamKey {
            seed: 42,
            style: triad_generators::PromptStyle::Chat,
            options: triad_generators::OptionSet::default(),
            shard_rows: 25,
        };
        // Stamped by generators revision 3, the one of the redesign.
        let stream = |requested| ("deduction", 1, triad_generators::Split::Train, requested);
        let hash = |key: &super::StreamKey, requested| {
            super::stream_config_hash_at(key, stream(requested), 3)
        };
        assert_eq!(hash(&key, 40), "a20c0df627ec4dcfdf10bfa7e9a32849");
        // A revision bump changes every stream's hash, so a resume never adopts older shards.
        let (family, level, split, requested) = stream(40);
        assert_ne!(
            super::stream_config_hash(&key, family, level, split, requested),
            hash(&key, 40)
        );
        // `… --train 60 --test 20 --unsat-ratio 0.3 --abduction-mode mixed --prompt-style paper`.
        key.style = triad_generators::PromptStyle::Paper;
        key.shard_rows = 10_000;
        key.options.set("unsat_ratio=0.3").unwrap();
        key.options.set("abduction_mode=mixed").unwrap();
        assert_eq!(hash(&key, 60), "f4a86727aee50a745b8cfde0b7aab941");
    }

    #[test]
    fn the_seen_set_answers_by_fingerprint() {
        let mut seen = SeenSet::default();
        let key = 0x0123_4567_89ab_cdef_0000_0000_0000_0001_u128;
        assert!(seen.insert(key));
        assert!(!seen.insert(key));
        // Same top half: the same fingerprint, so the later key counts as seen (by design).
        assert!(!seen.insert(key + 1));
        assert!(seen.insert(key + (1 << 64)));
        seen.remove(key);
        assert!(seen.insert(key));
    }
}
