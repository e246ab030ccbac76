//! Writing and reading one shard: a zstd Parquet file written atomically (temporary file, fsync,
//! rename), stamped with the dataset's configuration hash so a resumed run can tell its own
//! finished shards from strangers.

mod columns;
mod files;
mod reader;
mod rows;
mod writer;

pub use columns::{Batch, FIXED_COLUMNS, FixedColumn, Row, record_batch};
pub use files::{sha256_file, sha256_hex, write_atomic};
pub use reader::{
    ExistingShard, Footer, batch_reader, open_shard, read_batches, read_existing, string_column,
};
pub use rows::{RowBatch, RowError, ShardRows, StoredRow, decode, read_rows};
pub use writer::{
    META_CONFIG, META_NEXT_CANDIDATE, META_VERSION, ROW_GROUP_TEXT_BYTES, ShardEncoder, ShardFile,
    WRITE_CHUNK_ROWS, WrittenShard, encode,
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use triad_generators::{Split, registry};

    use super::writer::text_bytes;
    use triad_generators::{GenOptions, ItemCoords, PromptStyle};

    fn rows(count: u64) -> Vec<Row> {
        let family = registry::family("deduction").unwrap();
        (0..)
            .filter_map(|index| {
                let coords = ItemCoords {
                    seed: 7,
                    family: "deduction",
                    level: 2,
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
