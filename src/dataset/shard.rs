//! Writing and reading one shard: a zstd Parquet file written atomically (temporary file, fsync,
//! rename), stamped with the dataset's configuration hash so a resumed run can tell its own
//! finished shards from strangers.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, Int64Array, ListArray, ListBuilder, RecordBatch,
    StringArray, StringBuilder, StructArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::DataType;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
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

/// Encode rows as Parquet bytes (zstd, one row group, footer metadata).
pub fn encode(rows: &[Row], metadata: &[(&str, String)]) -> Result<Vec<u8>, DatasetError> {
    let batch = record_batch(rows)?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_max_row_group_row_count(Some(rows.len().max(1)))
        .set_created_by(format!("triad {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), Some(properties))?;
    writer.write(&batch)?;
    for (key, value) in metadata {
        writer.append_key_value_metadata(KeyValue::new(key.to_string(), value.clone()));
    }
    writer.close()?;
    Ok(bytes)
}

/// Write bytes to `path` atomically: a temporary file beside it, fsync, rename. A crash leaves
/// either the old state or the complete file, never a truncated one under the final name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DatasetError> {
    let dir = path.parent().ok_or_else(|| DatasetError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other("no parent directory"),
    })?;
    fs::create_dir_all(dir).map_err(|e| DatasetError::io(dir, e))?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("shard");
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
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

/// Read a finished shard's footer and id column (what resuming needs).
pub fn read_existing(path: &Path) -> Result<ExistingShard, DatasetError> {
    let bytes = fs::read(path).map_err(|e| DatasetError::io(path, e))?;
    let sha256 = sha256_hex(&bytes);
    let size = bytes.len() as u64;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).map_err(|e| {
            DatasetError::Parquet {
                path: path.to_path_buf(),
                source: e,
            }
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

/// Read every row of a shard back as one record batch per row group (tests, verify, audits).
pub fn read_batches(path: &Path) -> Result<Vec<RecordBatch>, DatasetError> {
    let file = fs::File::open(path).map_err(|e| DatasetError::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| DatasetError::Parquet {
            path: path.to_path_buf(),
            source: e,
        })?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

/// The string column `name` of a batch.
pub fn string_column<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a StringArray> {
    batch
        .column_by_name(name)?
        .as_any()
        .downcast_ref::<StringArray>()
}
