//! Atomic file writes and hashing.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::dataset::DatasetError;

/// `DIR/.NAME.tmp-PID` beside `path`, creating `DIR` if needed. Interrupted writes are recognised
/// (and removed on resume) by this pattern.
pub(crate) fn temporary_path(path: &Path) -> Result<PathBuf, DatasetError> {
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
