//! `manifest.json`: what a dataset holds, how it was made, and a checksum per shard.
//!
//! It carries no timestamps or host names, so the same command writes the same bytes.

use std::path::Path;

use serde::{Deserialize, Serialize};
use triad_generators::{OptionSet, PromptStyle, Split};

use super::{DatasetError, FORMAT_VERSION};

/// Largest manifest file read (256 MiB: a manifest lists ~200 bytes per shard, so this is over
/// a million shards).
pub const MAX_MANIFEST_BYTES: u64 = 256 << 20;

/// The manifest of a dataset directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StoredManifest")]
pub struct Manifest {
    /// Always `triad-dataset`.
    pub format: String,
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The triad version that wrote it.
    pub triad_version: String,
    /// The master seed.
    pub seed: u64,
    /// The prompt style.
    pub prompt_style: PromptStyle,
    /// Every family's generation options, `{family: {key: value}}`.
    pub options: OptionSet,
    /// Rows per shard.
    pub shard_rows: u64,
    /// One entry per (family, level, split).
    pub streams: Vec<StreamEntry>,
    /// Rows in all shards.
    pub total_rows: u64,
    /// The licence the dataset card declares (an SPDX-style Hub identifier); metadata only, no
    /// row depends on it. Manifests written before it existed read as [`DEFAULT_LICENSE`].
    pub license: String,
}

/// The licence a dataset card declares unless `--license` says otherwise: triad's own, under
/// which the code that wrote every row is published.
pub const DEFAULT_LICENSE: &str = "apache-2.0";

/// Longest licence identifier accepted (the Hub's are short: `apache-2.0`, `cc-by-nc-sa-4.0`).
pub const MAX_LICENSE_LEN: usize = 64;

/// A licence identifier the card can carry: 1 to [`MAX_LICENSE_LEN`] characters of ASCII
/// letters, digits, `.`, `-` and `+` (every Hub identifier, `openrail++` included), so it cannot
/// break the card's YAML front matter.
pub fn check_license(id: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+');
    if id.is_empty() || id.len() > MAX_LICENSE_LEN || !id.chars().all(allowed) {
        return Err(format!(
            "licence {id:?} is not a licence identifier (1 to {MAX_LICENSE_LEN} of A-Z a-z 0-9 . - +, e.g. {DEFAULT_LICENSE})"
        ));
    }
    Ok(())
}

fn default_license() -> String {
    DEFAULT_LICENSE.into()
}

/// A manifest as stored: the current layout, or the one before families owned their options,
/// which kept each option as a top-level field (`"unsat_ratio": 0.0`). Shards and configuration
/// hashes are the same under both, so such a dataset still verifies, audits and resumes.
#[derive(Deserialize)]
struct StoredManifest {
    format: String,
    format_version: u32,
    triad_version: String,
    seed: u64,
    prompt_style: PromptStyle,
    #[serde(default)]
    options: Option<OptionSet>,
    shard_rows: u64,
    streams: Vec<StreamEntry>,
    total_rows: u64,
    #[serde(default = "default_license")]
    license: String,
    /// Top-level fields of the earlier layout: option keys are read into `options`.
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

impl TryFrom<StoredManifest> for Manifest {
    type Error = String;

    fn try_from(stored: StoredManifest) -> Result<Manifest, String> {
        let options = match stored.options {
            Some(options) => options,
            None => {
                let mut options = OptionSet::default();
                for (key, value) in stored.other {
                    if options.has_key(&key) {
                        options
                            .set_json(None, &key, value)
                            .map_err(|e| e.to_string())?;
                    }
                }
                options
            }
        };
        Ok(Manifest {
            format: stored.format,
            format_version: stored.format_version,
            triad_version: stored.triad_version,
            seed: stored.seed,
            prompt_style: stored.prompt_style,
            options,
            shard_rows: stored.shard_rows,
            streams: stored.streams,
            total_rows: stored.total_rows,
            license: stored.license,
        })
    }
}

/// The shards of one (family, level, split).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamEntry {
    /// Family name.
    pub family: String,
    /// Level.
    pub level: u8,
    /// Split.
    pub split: Split,
    /// Rows asked for.
    pub requested: u64,
    /// Rows written.
    pub rows: u64,
    /// Candidates drawn from the seeded stream (rejections and duplicates included).
    pub candidates: u64,
    /// True when the family ran out of distinct items before `requested`.
    pub exhausted: bool,
    /// The configuration hash stamped in every shard's footer.
    pub config: String,
    /// The shards, in order.
    pub shards: Vec<ShardEntry>,
}

/// One shard file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// Path relative to the dataset directory, with `/` separators.
    pub path: String,
    /// Rows.
    pub rows: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file.
    pub sha256: String,
}

impl Manifest {
    /// A manifest with no streams yet.
    pub fn new(
        seed: u64,
        prompt_style: PromptStyle,
        options: &triad_generators::GenOptions,
        shard_rows: u64,
        license: &str,
    ) -> Manifest {
        Manifest {
            format: "triad-dataset".into(),
            format_version: FORMAT_VERSION,
            triad_version: env!("CARGO_PKG_VERSION").into(),
            seed,
            prompt_style,
            options: options.families.clone(),
            shard_rows,
            streams: Vec::new(),
            total_rows: 0,
            license: license.into(),
        }
    }

    /// Read `manifest.json` from a dataset directory.
    pub fn read(dir: &Path) -> Result<Manifest, DatasetError> {
        Manifest::read_file(&dir.join("manifest.json"))
    }

    /// Read a manifest file (the run's or a worker's). Files over [`MAX_MANIFEST_BYTES`] are
    /// refused before being read.
    pub fn read_file(path: &Path) -> Result<Manifest, DatasetError> {
        let size = std::fs::metadata(path)
            .map_err(|e| DatasetError::io(path, e))?
            .len();
        if size > MAX_MANIFEST_BYTES {
            return Err(DatasetError::invalid(
                path,
                format!("{size} bytes, more than a manifest can be ({MAX_MANIFEST_BYTES})"),
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| DatasetError::io(path, e))?;
        serde_json::from_str(&text).map_err(|source| DatasetError::Json {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Write `manifest.json` atomically.
    pub fn write(&self, dir: &Path) -> Result<(), DatasetError> {
        self.write_as(dir, "manifest.json")
    }

    /// Write the manifest under another name (a worker's partial manifest).
    pub fn write_as(&self, dir: &Path, name: &str) -> Result<(), DatasetError> {
        let mut text = serde_json::to_string_pretty(self).expect("manifest serializes");
        text.push('\n');
        super::shard::write_atomic(&dir.join(name), text.as_bytes())
    }

    /// Join the partial manifests of `count` workers into the manifest a single run writes.
    /// Worker `w` generated the (family, level)s `w, w + count, …` of the canonical order (each
    /// with its train and test streams), so interleaving their lists level by level restores it.
    pub fn merge(dir: &Path, count: u64) -> Result<Manifest, DatasetError> {
        let mut parts = Vec::new();
        for index in 0..count {
            let path = dir.join(worker_file(index, count));
            let text = std::fs::read_to_string(&path).map_err(|e| DatasetError::io(&path, e))?;
            let part: Manifest = serde_json::from_str(&text)
                .map_err(|source| DatasetError::Json { path, source })?;
            parts.push(part);
        }
        let first = parts
            .first()
            .ok_or_else(|| DatasetError::Config("no workers to merge".into()))?
            .clone();
        let same = |m: &Manifest| {
            (
                m.seed,
                m.prompt_style,
                &m.options,
                m.shard_rows,
                m.format_version,
            ) == (
                first.seed,
                first.prompt_style,
                &first.options,
                first.shard_rows,
                first.format_version,
            )
        };
        if let Some(odd) = parts.iter().position(|m| !same(m)) {
            return Err(DatasetError::invalid(
                &dir.join(worker_file(odd as u64, count)),
                format!("worker {odd} ran with another configuration than worker 0"),
            ));
        }
        let mut merged = Manifest {
            streams: Vec::new(),
            total_rows: 0,
            ..first
        };
        // A worker's unit is a (family, level): its train and test streams share candidates.
        let levels: Vec<Vec<&[StreamEntry]>> = parts
            .iter()
            .map(|p| {
                p.streams
                    .chunk_by(|a, b| (&a.family, a.level) == (&b.family, b.level))
                    .collect()
            })
            .collect();
        let longest = levels.iter().map(Vec::len).max().unwrap_or(0);
        for k in 0..longest {
            for part in &levels {
                for stream in part.get(k).copied().unwrap_or_default() {
                    merged.total_rows += stream.rows;
                    merged.streams.push(stream.clone());
                }
            }
        }
        Ok(merged)
    }
}

/// The partial manifest of worker `index` of `count`.
pub fn worker_file(index: u64, count: u64) -> String {
    format!("manifest.worker-{index:05}-of-{count:05}.json")
}

#[cfg(test)]
mod tests {
    use super::{DEFAULT_LICENSE, Manifest, check_license};

    #[test]
    fn licence_identifiers_cannot_break_the_card() {
        for good in [
            DEFAULT_LICENSE,
            "mit",
            "cc-by-nc-sa-4.0",
            "openrail++",
            "other",
        ] {
            assert!(check_license(good).is_ok(), "{good}");
        }
        let long = "a".repeat(65);
        for bad in ["", "mit\nconfigs: []", "mit # x", "\"mit\"", long.as_str()] {
            assert!(check_license(bad).is_err(), "{bad:?}");
        }
    }

    /// A manifest written before families owned their options kept them as top-level fields;
    /// it reads into the same options (its shards and hashes are unchanged).
    #[test]
    fn a_manifest_of_the_earlier_layout_reads_its_options() {
        let earlier = r#"{"format":"triad-dataset","format_version":1,"triad_version":"0.1.0",
            "seed":42,"prompt_style":"chat","unsat_ratio":0.3,"abduction_mode":"mixed",
            "shard_rows":10,"streams":[],"total_rows":0}"#;
        let manifest: Manifest = serde_json::from_str(earlier).unwrap();
        let mut expected = triad_generators::OptionSet::default();
        expected.set("unsat_ratio=0.3").unwrap();
        expected.set("abduction_mode=mixed").unwrap();
        assert_eq!(manifest.options, expected);
        // Written back in the current layout, it reads the same.
        let again: Manifest =
            serde_json::from_str(&serde_json::to_string(&manifest).unwrap()).unwrap();
        assert_eq!(again, manifest);
        let bad = earlier.replace("0.3", "3.0");
        assert!(serde_json::from_str::<Manifest>(&bad).is_err());
    }
}
