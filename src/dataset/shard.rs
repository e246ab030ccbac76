//! Writing and reading one shard: a zstd Parquet file written atomically (temporary file, fsync,
//! rename), stamped with the dataset's configuration hash so a resumed run can tell its own
//! finished shards from strangers.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, Int64Array, ListArray, ListBuilder, RecordBatch,
    StringArray, StringBuilder, StructArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::DataType;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use sha2::{Digest, Sha256};
use triad_generators::fields::{FieldKind, FieldValue};
use triad_generators::{Item, Split, registry};

use super::DatasetError;
use super::schema;

/// One row to write: an item and where it sits.
#[derive(Clone, Debug)]
pub struct Row {
    /// The generated item.
    pub item: Item,
    /// Its split.
    pub split: Split,
    /// Its position in the split's stream for its family and level.
    pub index: u64,
    /// The candidate index it was generated from (its seed coordinate).
    pub candidate: u64,
}

/// Footer metadata keys.
pub const META_CONFIG: &str = "triad.config";
/// Footer key: the next candidate index of the stream after this shard (for resuming).
pub const META_NEXT_CANDIDATE: &str = "triad.next_candidate";
/// Footer key: triad's version.
pub const META_VERSION: &str = "triad.version";

fn strings<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn prompts(rows: &[Row]) -> ArrayRef {
    let messages = rows.iter().flat_map(|r| &r.item.prompt.messages);
    let roles = strings(messages.clone().map(|m| m.role.as_str()));
    let contents = strings(messages.map(|m| m.content.as_str()));
    let values = StructArray::new(schema::message_fields(), vec![roles, contents], None);
    let offsets = OffsetBuffer::from_lengths(rows.iter().map(|r| r.item.prompt.messages.len()));
    Arc::new(ListArray::new(
        schema::list_item(DataType::Struct(schema::message_fields()), false),
        offsets,
        Arc::new(values),
        None,
    ))
}

fn reward_models(rows: &[Row]) -> ArrayRef {
    let style = strings(rows.iter().map(|_| "rule"));
    let truth = strings(rows.iter().map(|r| r.item.label.as_str()));
    Arc::new(StructArray::new(
        schema::reward_model_fields(),
        vec![style, truth],
        None,
    ))
}

fn extra_infos(rows: &[Row], ids: &[String]) -> ArrayRef {
    let columns: Vec<ArrayRef> = vec![
        strings(rows.iter().map(|r| r.split.name())),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.index as i64),
        )),
        strings(rows.iter().map(|r| r.item.family)),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| i64::from(r.item.level)),
        )),
        strings(ids.iter().map(String::as_str)),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.candidate as i64),
        )),
    ];
    Arc::new(StructArray::new(schema::extra_info_fields(), columns, None))
}

/// One structured field across rows; rows of other families (`None`) get a placeholder value
/// under the struct's null.
fn field_column(kind: FieldKind, values: &[Option<&FieldValue>]) -> ArrayRef {
    match kind {
        FieldKind::Int => Arc::new(Int64Array::from_iter(values.iter().map(|v| match v {
            Some(FieldValue::Int(i)) => Some(*i),
            Some(FieldValue::Null) => None,
            _ => Some(0),
        }))),
        FieldKind::Bool => Arc::new(BooleanArray::from_iter(values.iter().map(|v| match v {
            Some(FieldValue::Bool(b)) => Some(*b),
            Some(FieldValue::Null) => None,
            _ => Some(false),
        }))),
        FieldKind::Str => Arc::new(StringArray::from_iter(values.iter().map(|v| match v {
            Some(FieldValue::Str(s)) => Some(s.as_str()),
            Some(FieldValue::Null) => None,
            _ => Some(""),
        }))),
        FieldKind::IntList => {
            let mut builder = ListBuilder::new(arrow::array::Int64Builder::new())
                .with_field(schema::list_item(DataType::Int64, false));
            for v in values {
                match v {
                    Some(FieldValue::IntList(list)) => {
                        builder.values().append_slice(list);
                        builder.append(true);
                    }
                    Some(FieldValue::Null) => builder.append(false),
                    _ => builder.append(true),
                }
            }
            Arc::new(builder.finish())
        }
        FieldKind::BoolList => {
            let mut builder = ListBuilder::new(BooleanBuilder::new())
                .with_field(schema::list_item(DataType::Boolean, false));
            for v in values {
                match v {
                    Some(FieldValue::BoolList(list)) => {
                        list.iter().for_each(|b| builder.values().append_value(*b));
                        builder.append(true);
                    }
                    Some(FieldValue::Null) => builder.append(false),
                    _ => builder.append(true),
                }
            }
            Arc::new(builder.finish())
        }
        FieldKind::StrList => {
            let mut builder = ListBuilder::new(StringBuilder::new())
                .with_field(schema::list_item(DataType::Utf8, false));
            for v in values {
                match v {
                    Some(FieldValue::StrList(list)) => {
                        list.iter().for_each(|s| builder.values().append_value(s));
                        builder.append(true);
                    }
                    Some(FieldValue::Null) => builder.append(false),
                    _ => builder.append(true),
                }
            }
            Arc::new(builder.finish())
        }
    }
}

fn family_column(family: &dyn triad_generators::DynFamily, rows: &[Row]) -> ArrayRef {
    let specs = family.fields();
    let mine: Vec<bool> = rows
        .iter()
        .map(|r| r.item.family == family.name())
        .collect();
    let children: Vec<ArrayRef> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let values: Vec<Option<&FieldValue>> = rows
                .iter()
                .zip(&mine)
                .map(|(r, m)| m.then(|| &r.item.fields[i]))
                .collect();
            field_column(spec.kind, &values)
        })
        .collect();
    let nulls = NullBuffer::from(mine);
    Arc::new(StructArray::new(
        schema::family_fields(specs),
        children,
        Some(nulls),
    ))
}

/// Build the record batch of a shard.
pub fn record_batch(rows: &[Row]) -> Result<RecordBatch, DatasetError> {
    let ids: Vec<String> = rows.iter().map(|r| r.item.id()).collect();
    let mut columns: Vec<ArrayRef> = vec![
        strings(
            rows.iter()
                .map(|r| format!("triad/{}", r.item.family))
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
        ),
        prompts(rows),
        strings(rows.iter().map(|r| r.item.family)),
        reward_models(rows),
        extra_infos(rows, &ids),
        strings(rows.iter().map(|r| r.item.label.as_str())),
        strings(ids.iter().map(String::as_str)),
        strings(rows.iter().map(|r| r.item.family)),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| i64::from(r.item.level)),
        )),
        strings(rows.iter().map(|r| r.item.answer.as_str())),
    ];
    for family in registry::FAMILIES {
        columns.push(family_column(*family, rows));
    }
    Ok(RecordBatch::try_new(schema::row_schema(), columns)?)
}

/// Raw text (prompt, label, answer) a row group holds before it is closed.
///
/// A row group is flushed to the file once its rows' text passes this, so a shard of any size is
/// written with at most one row group in memory (deduction level 10, ~27 KB of text a row: a
/// 6,000-row shard is written at a flat ~160 MB RSS, where the whole shard's Arrow data alone was
/// 330 MB). The cut depends only on the rows, so the bytes stay deterministic.
pub const ROW_GROUP_TEXT_BYTES: u64 = 32 << 20;

/// The text a row contributes to its row group's budget.
fn text_bytes(row: &Row) -> u64 {
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

/// `DIR/.NAME.tmp-PID` beside `path`, creating `DIR` if needed. Interrupted writes are recognised
/// (and removed on resume) by this pattern.
fn temporary_path(path: &Path) -> Result<PathBuf, DatasetError> {
    let dir = path.parent().ok_or_else(|| DatasetError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other("no parent directory"),
    })?;
    fs::create_dir_all(dir).map_err(|e| DatasetError::io(dir, e))?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("shard");
    Ok(dir.join(format!(".{file_name}.tmp-{}", std::process::id())))
}

/// Write bytes to `path` atomically: a temporary file beside it, fsync, rename. A crash leaves
/// either the old state or the complete file, never a truncated one under the final name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DatasetError> {
    let tmp = temporary_path(path)?;
    let mut file = fs::File::create(&tmp).map_err(|e| DatasetError::io(&tmp, e))?;
    file.write_all(bytes)
        .map_err(|e| DatasetError::io(&tmp, e))?;
    file.sync_all().map_err(|e| DatasetError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| DatasetError::io(path, e))?;
    Ok(())
}

/// SHA-256 of bytes, as hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// SHA-256 (hex) and size of a file, read in pieces.
pub fn sha256_file(path: &Path) -> Result<(String, u64), DatasetError> {
    let mut file = fs::File::open(path).map_err(|e| DatasetError::io(path, e))?;
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut file, &mut hasher).map_err(|e| DatasetError::io(path, e))?;
    Ok((hex::encode(hasher.finalize()), size))
}

/// What a finished shard on disk says about itself.
#[derive(Debug)]
pub struct ExistingShard {
    /// The configuration hash in its footer.
    pub config: Option<String>,
    /// The stream's next candidate after it.
    pub next_candidate: Option<u64>,
    /// Its row ids.
    pub ids: Vec<u128>,
    /// SHA-256 of the file.
    pub sha256: String,
    /// File size.
    pub bytes: u64,
}

/// Read a finished shard's footer and id column (what resuming needs). `sha256` and `size` are
/// the file's, hashed by the caller before it trusted the file enough to parse it.
pub fn read_existing(
    path: &Path,
    sha256: String,
    size: u64,
) -> Result<ExistingShard, DatasetError> {
    let file = fs::File::open(path).map_err(|e| DatasetError::io(path, e))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| DatasetError::Parquet {
            path: path.to_path_buf(),
            source: e,
        })?;
    let kv = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .cloned()
        .unwrap_or_default();
    let lookup = |key: &str| {
        kv.iter()
            .find(|k| k.key == key)
            .and_then(|k| k.value.clone())
    };
    let config = lookup(META_CONFIG);
    let next_candidate = lookup(META_NEXT_CANDIDATE).and_then(|v| v.parse().ok());
    let mask = parquet::arrow::ProjectionMask::columns(builder.parquet_schema(), ["id"]);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| DatasetError::Parquet {
            path: path.to_path_buf(),
            source: e,
        })?;
    let mut ids = Vec::new();
    for batch in reader {
        let batch = batch?;
        let column = batch
            .column_by_name("id")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| DatasetError::Invalid(format!("{}: no id column", path.display())))?;
        for id in column.iter().flatten() {
            ids.push(
                u128::from_str_radix(id, 16).map_err(|_| {
                    DatasetError::Invalid(format!("{}: bad id {id}", path.display()))
                })?,
            );
        }
    }
    Ok(ExistingShard {
        config,
        next_candidate,
        ids,
        sha256,
        bytes: size,
    })
}

/// Read every row of a shard back, all at once (tests; `verify` and `audit` stream with
/// [`batch_reader`]).
pub fn read_batches(path: &Path) -> Result<Vec<RecordBatch>, DatasetError> {
    Ok(batch_reader(path)?.collect::<Result<Vec<_>, _>>()?)
}

/// The rows of a shard as a stream of record batches (up to 1,024 rows each), so a reader holds
/// one batch, not the shard.
pub fn batch_reader(path: &Path) -> Result<ParquetRecordBatchReader, DatasetError> {
    let file = fs::File::open(path).map_err(|e| DatasetError::io(path, e))?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| DatasetError::Parquet {
            path: path.to_path_buf(),
            source: e,
        })
}

/// What a shard's footer says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Footer {
    /// The configuration hash of the stream that wrote it.
    pub config: Option<String>,
    /// Rows, by the file's metadata.
    pub rows: i64,
}

/// A shard's footer and a streaming reader over its rows.
pub fn open_shard(path: &Path) -> Result<(Footer, ParquetRecordBatchReader), DatasetError> {
    let parquet_error = |source| DatasetError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(|e| DatasetError::io(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error)?;
    let metadata = builder.metadata().file_metadata();
    let config = metadata
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == META_CONFIG))
        .and_then(|k| k.value.clone());
    let footer = Footer {
        config,
        rows: metadata.num_rows(),
    };
    Ok((footer, builder.build().map_err(parquet_error)?))
}

/// The string column `name` of a batch.
pub fn string_column<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a StringArray> {
    batch
        .column_by_name(name)?
        .as_any()
        .downcast_ref::<StringArray>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use triad_generators::{GenOptions, ItemCoords, PromptStyle};

    fn rows(count: u64) -> Vec<Row> {
        let family = registry::family("deduction").unwrap();
        (0..)
            .filter_map(|index| {
                let coords = ItemCoords {
                    seed: 7,
                    family: "deduction",
                    level: 2,
                    split: Split::Train,
                    index,
                };
                let item = family
                    .candidate(&coords, &GenOptions::default(), PromptStyle::Chat)
                    .unwrap()?;
                Some(Row {
                    item,
                    split: Split::Train,
                    index,
                    candidate: index,
                })
            })
            .take(count as usize)
            .collect()
    }

    fn ids(bytes: Vec<u8>) -> (usize, Vec<String>) {
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
        let groups = builder.metadata().num_row_groups();
        let mut ids = Vec::new();
        for batch in builder.build().unwrap() {
            let batch = batch.unwrap();
            ids.extend(
                string_column(&batch, "id")
                    .unwrap()
                    .iter()
                    .flatten()
                    .map(String::from),
            );
        }
        (groups, ids)
    }

    #[test]
    fn row_groups_close_at_the_text_budget_and_keep_every_row() {
        let rows = rows(600);
        let text: u64 = rows.iter().map(text_bytes).sum();
        let encode_with = |budget: u64| {
            let mut encoder = ShardEncoder::with_row_group_text(Vec::new(), budget).unwrap();
            for chunk in rows.chunks(100) {
                encoder.write(chunk).unwrap();
            }
            assert_eq!(encoder.rows(), 600);
            encoder.finish(&[]).unwrap()
        };
        let (one_group, all_ids) = ids(encode_with(u64::MAX));
        // A budget of a third of the text: the group closes on the first chunk past it.
        let (some_groups, same_ids) = ids(encode_with(text / 3));
        assert_eq!(one_group, 1);
        assert!((3..=4).contains(&some_groups), "{some_groups} row groups");
        assert_eq!(all_ids, same_ids);
        assert_eq!(all_ids.len(), 600);
        assert_eq!(
            encode_with(text / 3),
            encode_with(text / 3),
            "deterministic"
        );
    }

    #[test]
    fn a_streamed_shard_file_matches_the_in_memory_encoding() {
        let rows = rows(300);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/train-00000-of-00001.parquet");
        let metadata = [(META_CONFIG, "abc".to_string())];
        let mut file = ShardFile::create(&path).unwrap();
        for chunk in rows.chunks(WRITE_CHUNK_ROWS) {
            file.write(chunk).unwrap();
        }
        let written = file.finish(&metadata).unwrap();
        let on_disk = fs::read(&path).unwrap();
        assert_eq!(on_disk, encode(&rows, &metadata).unwrap());
        assert_eq!(written.bytes, on_disk.len() as u64);
        assert_eq!(written.sha256, sha256_hex(&on_disk));
        assert_eq!(sha256_file(&path).unwrap(), (written.sha256, written.bytes));
        // Nothing but the finished file is left in the directory.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
