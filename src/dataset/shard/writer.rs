//! Encoding rows into a shard: zstd Parquet, row groups cut by text size, footer metadata, and the
//! streaming file that hashes as it writes and lands by rename.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use sha2::{Digest, Sha256};

use super::columns::{Row, record_batch};
use super::files::temporary_path;
use crate::dataset::DatasetError;
use crate::dataset::schema;

/// Footer metadata keys.
pub const META_CONFIG: &str = "triad.config";
/// Footer key: the next candidate index of the stream after this shard (for resuming).
pub const META_NEXT_CANDIDATE: &str = "triad.next_candidate";
/// Footer key: triad's version.
pub const META_VERSION: &str = "triad.version";

/// Raw text (prompt, label, answer) a row group holds before it is closed.
///
/// A row group is flushed to the file once its rows' text passes this, so a shard of any size is
/// written with at most one row group in memory (deduction level 10, ~27 KB of text a row: a
/// 6,000-row shard is written at a flat ~160 MB RSS, where the whole shard's Arrow data alone was
/// 330 MB). The cut depends only on the rows, so the bytes stay deterministic.
pub const ROW_GROUP_TEXT_BYTES: u64 = 32 << 20;

/// The text a row contributes to its row group's budget.
pub(super) fn text_bytes(row: &Row) -> u64 {
    let prompt: usize = row
        .item
        .prompt
        .messages
        .iter()
        .map(|m| m.content.len())
        .sum();
    (prompt + row.item.label.len() + row.item.answer.len()) as u64
}

fn writer_properties() -> Result<WriterProperties, DatasetError> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        // Row groups are cut by `ROW_GROUP_TEXT_BYTES` (explicit flushes), never by row count.
        .set_max_row_group_row_count(None)
        .set_created_by(format!("triad {}", env!("CARGO_PKG_VERSION")))
        .build())
}

/// Rows encoded into Parquet as they arrive: zstd, row groups cut by text size, footer metadata.
pub struct ShardEncoder<W: Write + Send> {
    writer: ArrowWriter<W>,
    group_text: u64,
    group_budget: u64,
    rows: u64,
}

impl<W: Write + Send> ShardEncoder<W> {
    /// Start a shard written into `sink`, with row groups of [`ROW_GROUP_TEXT_BYTES`].
    pub fn new(sink: W) -> Result<Self, DatasetError> {
        Self::with_row_group_text(sink, ROW_GROUP_TEXT_BYTES)
    }

    /// Start a shard whose row groups close once their text passes `budget` bytes.
    pub fn with_row_group_text(sink: W, budget: u64) -> Result<Self, DatasetError> {
        let writer = ArrowWriter::try_new(sink, schema::row_schema(), Some(writer_properties()?))?;
        Ok(ShardEncoder {
            writer,
            group_text: 0,
            group_budget: budget,
            rows: 0,
        })
    }

    /// Append rows (in order), closing the row group whenever it has reached its text budget.
    pub fn write(&mut self, rows: &[Row]) -> Result<(), DatasetError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.writer.write(&record_batch(rows)?)?;
        self.rows += rows.len() as u64;
        self.group_text += rows.iter().map(text_bytes).sum::<u64>();
        if self.group_text >= self.group_budget {
            self.writer.flush()?;
            self.group_text = 0;
        }
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Write the footer (with `metadata`) and hand back the sink.
    pub fn finish(mut self, metadata: &[(&str, String)]) -> Result<W, DatasetError> {
        for (key, value) in metadata {
            self.writer
                .append_key_value_metadata(KeyValue::new(key.to_string(), value.clone()));
        }
        Ok(self.writer.into_inner()?)
    }
}

/// Encode rows as Parquet bytes in memory (tests and benchmarks; generation streams to a file
/// with [`ShardFile`]).
pub fn encode(rows: &[Row], metadata: &[(&str, String)]) -> Result<Vec<u8>, DatasetError> {
    let mut encoder = ShardEncoder::new(Vec::new())?;
    for chunk in rows.chunks(WRITE_CHUNK_ROWS) {
        encoder.write(chunk)?;
    }
    encoder.finish(metadata)
}

/// Rows per record batch handed to the encoder.
pub const WRITE_CHUNK_ROWS: usize = 256;

/// A writer that hashes and counts what passes through it.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A finished shard file: its size and SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenShard {
    /// File size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
}

/// A shard being streamed to disk: written under a temporary name beside its final path, then
/// fsynced and renamed, so a crash never leaves a truncated file under the final name.
pub struct ShardFile {
    encoder: ShardEncoder<HashingWriter<BufWriter<fs::File>>>,
    tmp: PathBuf,
    path: PathBuf,
}

impl ShardFile {
    /// Start writing the shard that will end up at `path`.
    pub fn create(path: &Path) -> Result<Self, DatasetError> {
        let tmp = temporary_path(path)?;
        let file = fs::File::create(&tmp).map_err(|e| DatasetError::io(&tmp, e))?;
        let sink = HashingWriter {
            inner: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            bytes: 0,
        };
        Ok(ShardFile {
            encoder: ShardEncoder::new(sink)?,
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// Append rows.
    pub fn write(&mut self, rows: &[Row]) -> Result<(), DatasetError> {
        self.encoder.write(rows)
    }

    /// Write the footer, fsync and move the file to its final name.
    pub fn finish(self, metadata: &[(&str, String)]) -> Result<WrittenShard, DatasetError> {
        let sink = self.encoder.finish(metadata)?;
        let HashingWriter {
            inner,
            hasher,
            bytes,
        } = sink;
        let file = inner
            .into_inner()
            .map_err(|e| DatasetError::io(&self.tmp, e.into_error()))?;
        file.sync_all()
            .map_err(|e| DatasetError::io(&self.tmp, e))?;
        fs::rename(&self.tmp, &self.path).map_err(|e| DatasetError::io(&self.path, e))?;
        Ok(WrittenShard {
            bytes,
            sha256: hex::encode(hasher.finalize()),
        })
    }
}
