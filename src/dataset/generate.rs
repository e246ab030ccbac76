//! Generating a dataset: deterministic, parallel, deduplicated, resumable.
//!
//! Each (family, level, split) is a *stream*: candidate `j` is a pure function of
//! (seed, family, level, split, j) — its RNG is a hash of those coordinates. The stream keeps, in
//! candidate order, every candidate whose content is new; shards cut that sequence into pieces of
//! `--shard-rows`. So the rows depend on nothing but the configuration: candidates are computed in
//! parallel batches with rayon, but accepted strictly in order, and the thread count, batch size
//! and shard boundaries cannot change a byte. Train and test never share content because the
//! content space is partitioned between them by hash (see `triad_generators::rng::split_of_key`).
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
    /// Fan-out: `(index, count)` — this worker generates every `count`-th stream starting at
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
    let mut description = serde_json::json!({
        "format_version": FORMAT_VERSION,
        "generators": triad_generators::OUTPUT_REVISION,
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

/// The candidate stream of one (family, level, split), accepting new content in order.
struct Cursor<'a> {
    spec: &'a StreamSpec<'a>,
    next_candidate: u64,
    /// The candidate after the last one handed out: where a shard ending here resumes.
    accepted_up_to: u64,
    pending: VecDeque<(u64, Item)>,
    misses: u64,
    exhausted: bool,
    batch: u64,
}

impl<'a> Cursor<'a> {
    fn new(spec: &'a StreamSpec<'a>) -> Cursor<'a> {
        let batch = (16 * rayon::current_num_threads() as u64).max(64);
        Cursor {
            spec,
            next_candidate: 0,
            accepted_up_to: 0,
            pending: VecDeque::new(),
            misses: 0,
            exhausted: false,
            batch,
        }
    }

    /// Continue from a finished shard: drop anything computed ahead of it, and forget the dropped
    /// items' content so they count as new when the stream reaches them again.
    fn reset(&mut self, next_candidate: u64, seen: &mut SeenSet) {
        self.next_candidate = next_candidate;
        self.accepted_up_to = next_candidate;
        for (_, item) in self.pending.drain(..) {
            seen.remove(item.key);
        }
        self.misses = 0;
        self.exhausted = false;
    }

    fn coords(&self, index: u64) -> ItemCoords {
        ItemCoords {
            seed: self.spec.config.seed,
            family: self.spec.family.name(),
            level: self.spec.level,
            split: self.spec.split,
            index,
        }
    }

    /// Compute one batch of candidates in parallel and accept, in order, those with new content.
    fn refill(&mut self, seen: &mut SeenSet) -> Result<(), DatasetError> {
        let start = self.next_candidate;
        let config = self.spec.config;
        let before = self.pending.len();
        let candidates: Vec<Option<Item>> = (start..start + self.batch)
            .into_par_iter()
            .map(|j| {
                self.spec
                    .family
                    .candidate(&self.coords(j), &config.options, config.style)
            })
            .collect::<Result<_, _>>()?;
        self.next_candidate = start + self.batch;
        for (j, candidate) in (start..).zip(candidates) {
            match candidate {
                Some(item) if seen.insert(item.key) => {
                    self.pending.push_back((j, item));
                    self.misses = 0;
                }
                _ => self.misses += 1,
            }
            if self.misses >= EXHAUSTION_STREAK {
                // Decided at this exact candidate, so the outcome cannot depend on batch size.
                self.exhausted = true;
                self.next_candidate = j + 1;
                break;
            }
        }
        if config.options.certify {
            // Only distinct items are certified: duplicates and the other split's content never
            // reach Z3.
            let fresh: Vec<&Item> = self
                .pending
                .iter()
                .skip(before)
                .map(|(_, item)| item)
                .collect();
            fresh.par_iter().try_for_each(|item| certify_item(item))?;
        }
        Ok(())
    }

    fn take(&mut self, want: u64, seen: &mut SeenSet) -> Result<Vec<(u64, Item)>, DatasetError> {
        let mut out = Vec::with_capacity(want as usize);
        while (out.len() as u64) < want {
            if let Some(next) = self.pending.pop_front() {
                self.accepted_up_to = next.0 + 1;
                out.push(next);
            } else if self.exhausted {
                break;
            } else {
                self.refill(seen)?;
            }
        }
        Ok(out)
    }
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
    let specs = stream_specs(config);
    let total: u64 = specs.iter().map(|s| s.requested).sum();
    books.observer.begin(total);
    let mut manifest = Manifest::new(
        config.seed,
        config.style,
        &config.options,
        config.shard_rows,
        &config.license,
    );
    for spec in &specs {
        books
            .observer
            .stream(spec.family.name(), spec.level, spec.split);
        // An exhausted stream is marked in the manifest; the CLI warns about it.
        let entry = generate_stream(spec, &mut books)?;
        manifest.total_rows += entry.rows;
        manifest.streams.push(entry);
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

/// The streams to generate, in canonical order (families as given, levels, train then test);
/// with a worker set, only that worker's round-robin share of them.
fn stream_specs(config: &GenerateConfig) -> Vec<StreamSpec<'_>> {
    let mut specs = Vec::new();
    let mut skipped = 0u64;
    for &family in &config.families {
        for &level in &config.levels {
            for (split, requested) in [(Split::Train, config.train), (Split::Test, config.test)] {
                let position = specs.len() as u64 + skipped;
                let mine = config
                    .worker
                    .is_none_or(|(index, count)| position % count == index);
                if requested > 0 && !mine {
                    skipped += 1;
                } else if requested > 0 {
                    specs.push(StreamSpec {
                        config,
                        family,
                        level,
                        split,
                        requested,
                    });
                }
            }
        }
    }
    specs
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
        // Only this split's: another worker may be writing the other split of this level.
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

fn generate_stream(
    spec: &StreamSpec<'_>,
    books: &mut Bookkeeping<'_>,
) -> Result<StreamEntry, DatasetError> {
    clear_foreign(spec)?;
    let config_hash = spec.config_hash();
    let mut seen = SeenSet::default();
    let mut cursor = Cursor::new(spec);
    let mut shards = Vec::new();
    let mut rows_written = 0;
    let mut stream_next = 0;
    for shard_index in 0..spec.num_shards() {
        let path = spec.dir().join(spec.shard_name(shard_index));
        let want = spec.config.shard_rows.min(spec.requested - rows_written);
        let relative_path = relative(&spec.config.out, &path);
        if let Some(existing) = reuse_existing(
            &path,
            &relative_path,
            &config_hash,
            want,
            spec.config.overwrite,
            books,
        )? {
            let rows = existing.ids.len() as u64;
            stream_next = existing.next_candidate.unwrap_or_default();
            cursor.reset(stream_next, &mut seen);
            for &id in &existing.ids {
                seen.insert(id);
            }
            rows_written += rows;
            books.observer.rows(rows);
            shards.push(ShardEntry {
                path: relative_path,
                rows,
                bytes: existing.bytes,
                sha256: existing.sha256,
            });
            if rows < want {
                break;
            }
            continue;
        }
        let Some((written, rows)) = write_shard(
            &path,
            &mut cursor,
            &mut seen,
            want,
            rows_written,
            &config_hash,
        )?
        else {
            break;
        };
        books.journal.record(&FinishedShard {
            path: relative_path.clone(),
            sha256: written.sha256.clone(),
            bytes: written.bytes,
        })?;
        stream_next = cursor.accepted_up_to;
        rows_written += rows;
        books.observer.rows(rows);
        shards.push(ShardEntry {
            path: relative_path,
            rows,
            bytes: written.bytes,
            sha256: written.sha256,
        });
        if rows < want {
            break;
        }
    }
    Ok(StreamEntry {
        family: spec.family.name().to_string(),
        level: spec.level,
        split: spec.split,
        requested: spec.requested,
        rows: rows_written,
        candidates: stream_next,
        exhausted: rows_written < spec.requested,
        config: config_hash,
        shards,
    })
}

/// Stream up to `want` rows of the cursor into the shard at `path`, a chunk at a time, so memory
/// holds one chunk and one row group, never the whole shard. `None` when the stream had nothing
/// left (no file is written).
fn write_shard(
    path: &Path,
    cursor: &mut Cursor<'_>,
    seen: &mut SeenSet,
    want: u64,
    first_index: u64,
    config_hash: &str,
) -> Result<Option<(shard::WrittenShard, u64)>, DatasetError> {
    let mut file: Option<shard::ShardFile> = None;
    let mut rows_in_shard = 0u64;
    while rows_in_shard < want {
        let chunk = (want - rows_in_shard).min(shard::WRITE_CHUNK_ROWS as u64);
        let taken = cursor.take(chunk, seen)?;
        if taken.is_empty() {
            break;
        }
        let rows: Vec<Row> = taken
            .into_iter()
            .enumerate()
            .map(|(i, (candidate, item))| Row {
                item,
                split: cursor.spec.split,
                index: first_index + rows_in_shard + i as u64,
                candidate,
            })
            .collect();
        let writer = match &mut file {
            Some(writer) => writer,
            None => file.insert(shard::ShardFile::create(path)?),
        };
        writer.write(&rows)?;
        rows_in_shard += rows.len() as u64;
        if (rows.len() as u64) < chunk {
            break;
        }
    }
    let Some(file) = file else {
        return Ok(None);
    };
    let metadata = [
        (shard::META_CONFIG, config_hash.to_string()),
        (
            shard::META_NEXT_CANDIDATE,
            cursor.accepted_up_to.to_string(),
        ),
        (shard::META_VERSION, env!("CARGO_PKG_VERSION").to_string()),
    ];
    Ok(Some((file.finish(&metadata)?, rows_in_shard)))
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
        let hash = |key: &super::StreamKey, requested| {
            super::stream_config_hash(
                key,
                "deduction",
                1,
                triad_generators::Split::Train,
                requested,
            )
        };
        assert_eq!(hash(&key, 40), "a20c0df627ec4dcfdf10bfa7e9a32849");
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
