//! Progress of the passes that read every shard of a dataset (`verify`, `audit`), reported to
//! whoever displays it: the CLI draws a bar; a library caller may log, or ignore it.

/// What a pass over a dataset's shards reports as it goes. Every method defaults to nothing.
pub trait Progress {
    /// The pass starts over `rows` rows in `shards` shards (the manifest's counts).
    fn begin(&mut self, _rows: u64, _shards: u64) {}
    /// One more shard, of `rows` rows (the manifest's count), is done.
    fn shard_done(&mut self, _rows: u64) {}
    /// The pass is over.
    fn end(&mut self) {}
}

/// Reports nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Progress for Silent {}
