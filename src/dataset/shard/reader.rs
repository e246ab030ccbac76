//! Reading shards back: the footer, the ids (resume), and record batches one at a time.

use std::fs;
use std::path::Path;

use arrow::array::{Array, RecordBatch, StringArray};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::writer::{META_CONFIG, META_NEXT_CANDIDATE};
use crate::dataset::DatasetError;

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
    let bad = |row: Option<u64>, message: String| DatasetError::Row {
        path: path.to_path_buf(),
        row,
        column: "id",
        message,
    };
    for batch in reader {
        let batch = batch?;
        let column = batch
            .column_by_name("id")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| bad(None, "missing, or not a string column".into()))?;
        for id in column.iter().flatten() {
            let row = ids.len() as u64;
            ids.push(
                u128::from_str_radix(id, 16)
                    .map_err(|_| bad(Some(row), format!("{id:?} is not 32 hex digits")))?,
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
