//! Streaming access to safetensors files: read the header, read one tensor's bytes with a seek,
//! and write a file tensor by tensor — so a merge holds one tensor at a time, not a model.
//!
//! The format: 8 bytes little-endian header length, a JSON header mapping each name to
//! `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the end of the header, plus
//! an optional `__metadata__` map of strings), then the data.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use candle_core::{DType, Storage, Tensor};
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// One tensor's entry in a header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorInfo {
    /// `F32`, `F16`, `BF16`, …
    pub dtype: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Byte range within the data section.
    pub data_offsets: [u64; 2],
}

impl TensorInfo {
    /// Number of elements.
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A safetensors file opened for reading tensors one by one.
#[derive(Debug)]
pub struct StReader {
    path: PathBuf,
    file: File,
    data_start: u64,
    /// Tensors by name.
    pub tensors: BTreeMap<String, TensorInfo>,
    /// The `__metadata__` map.
    pub metadata: BTreeMap<String, String>,
}

fn bad(path: &Path, what: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint(format!("{}: {what}", path.display()))
}

impl StReader {
    /// Open `path` and read its header.
    pub fn open(path: &Path) -> Result<Self, TrainError> {
        let mut file = File::open(path).map_err(|e| TrainError::io(path, e))?;
        let mut len = [0u8; 8];
        file.read_exact(&mut len)
            .map_err(|_| bad(path, "too short to be a safetensors file"))?;
        let len = u64::from_le_bytes(len);
        let size = file.metadata().map_err(|e| TrainError::io(path, e))?.len();
        if len > size.saturating_sub(8) || len > 100 << 20 {
            return Err(bad(
                path,
                format!("header length {len} does not fit the file"),
            ));
        }
        let mut header = vec![0u8; len as usize];
        file.read_exact(&mut header)
            .map_err(|e| TrainError::io(path, e))?;
        let raw: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&header)
            .map_err(|e| bad(path, format!("header is not JSON: {e}")))?;
        let mut tensors = BTreeMap::new();
        let mut metadata = BTreeMap::new();
        for (name, value) in raw {
            if name == "__metadata__" {
                metadata = serde_json::from_value(value)
                    .map_err(|e| bad(path, format!("__metadata__: {e}")))?;
            } else {
                let info: TensorInfo = serde_json::from_value(value)
                    .map_err(|e| bad(path, format!("tensor {name}: {e}")))?;
                let bytes = info.data_offsets[1].checked_sub(info.data_offsets[0]);
                let expected = dtype_size(&info.dtype).map(|s| (s * info.elements()) as u64);
                if bytes != expected || 8 + len + info.data_offsets[1] > size {
                    return Err(bad(path, format!("tensor {name}: bad offsets or dtype")));
                }
                tensors.insert(name, info);
            }
        }
        Ok(StReader {
            path: path.to_path_buf(),
            file,
            data_start: 8 + len,
            tensors,
            metadata,
        })
    }

    /// The raw bytes of tensor `name`.
    pub fn read_bytes(&mut self, name: &str) -> Result<Vec<u8>, TrainError> {
        let info = self
            .tensors
            .get(name)
            .ok_or_else(|| bad(&self.path, format!("no tensor {name}")))?;
        let [begin, end] = info.data_offsets;
        let mut bytes = vec![0u8; (end - begin) as usize];
        self.file
            .seek(SeekFrom::Start(self.data_start + begin))
            .and_then(|_| self.file.read_exact(&mut bytes))
            .map_err(|e| TrainError::io(&self.path, e))?;
        Ok(bytes)
    }

    /// Tensor `name` as f32 values, whatever its stored float dtype.
    pub fn read_f32(&mut self, name: &str) -> Result<Vec<f32>, TrainError> {
        let dtype = self.tensors[name].dtype.clone();
        let bytes = self.read_bytes(name)?;
        to_f32(&dtype, &bytes).map_err(|e| bad(&self.path, format!("tensor {name}: {e}")))
    }
}

/// Bytes per element of a float dtype this module converts.
pub fn dtype_size(dtype: &str) -> Option<usize> {
    match dtype {
        "F64" => Some(8),
        "F32" => Some(4),
        "F16" | "BF16" => Some(2),
        _ => None,
    }
}

/// Decode little-endian float bytes to f32.
pub fn to_f32(dtype: &str, bytes: &[u8]) -> Result<Vec<f32>, String> {
    Ok(match dtype {
        "F32" => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect(),
        "F64" => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        "F16" => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        "BF16" => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => {
            return Err(format!(
                "dtype {other} is not a float dtype this tool reads"
            ));
        }
    })
}

/// Encode f32 values in `dtype` (round to nearest even for the half types).
pub fn from_f32(dtype: &str, values: &[f32]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(values.len() * dtype_size(dtype).unwrap_or(4));
    match dtype {
        "F32" => values
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        "F64" => values
            .iter()
            .for_each(|v| out.extend_from_slice(&f64::from(*v).to_le_bytes())),
        "F16" => values
            .iter()
            .for_each(|v| out.extend_from_slice(&half::f16::from_f32(*v).to_le_bytes())),
        "BF16" => values
            .iter()
            .for_each(|v| out.extend_from_slice(&half::bf16::from_f32(*v).to_le_bytes())),
        other => {
            return Err(format!(
                "dtype {other} is not a float dtype this tool writes"
            ));
        }
    }
    Ok(out)
}

/// Writes a safetensors file whose header is known up front, one tensor at a time in header
/// order.
#[derive(Debug)]
pub struct StWriter {
    path: PathBuf,
    out: BufWriter<File>,
    order: Vec<(String, TensorInfo)>,
    next: usize,
}

impl StWriter {
    /// Create `path` for `tensors` (name, dtype, shape) written in this order.
    pub fn create(
        path: &Path,
        tensors: &[(String, String, Vec<usize>)],
        metadata: &BTreeMap<String, String>,
    ) -> Result<Self, TrainError> {
        let mut header = serde_json::Map::new();
        if !metadata.is_empty() {
            header.insert("__metadata__".into(), serde_json::json!(metadata));
        }
        let mut offset = 0u64;
        let mut order = Vec::new();
        for (name, dtype, shape) in tensors {
            let size = dtype_size(dtype)
                .ok_or_else(|| TrainError::Merge(format!("{name}: unsupported dtype {dtype}")))?;
            let bytes = (size * shape.iter().product::<usize>()) as u64;
            let info = TensorInfo {
                dtype: dtype.clone(),
                shape: shape.clone(),
                data_offsets: [offset, offset + bytes],
            };
            header.insert(name.clone(), serde_json::to_value(&info).expect("json"));
            order.push((name.clone(), info));
            offset += bytes;
        }
        let mut header = serde_json::to_vec(&header).expect("json");
        // Pad the header with spaces to an 8-byte boundary, as the reference writer does.
        while !header.len().is_multiple_of(8) {
            header.push(b' ');
        }
        let file = File::create(path).map_err(|e| TrainError::io(path, e))?;
        let mut out = BufWriter::new(file);
        out.write_all(&(header.len() as u64).to_le_bytes())
            .and_then(|_| out.write_all(&header))
            .map_err(|e| TrainError::io(path, e))?;
        Ok(StWriter {
            path: path.to_path_buf(),
            out,
            order,
            next: 0,
        })
    }

    /// Write the next tensor's bytes; `name` must be the next in the declared order.
    pub fn write(&mut self, name: &str, bytes: &[u8]) -> Result<(), TrainError> {
        let (expected, info) = self
            .order
            .get(self.next)
            .ok_or_else(|| TrainError::Merge(format!("{name}: more tensors than declared")))?;
        let size = (info.data_offsets[1] - info.data_offsets[0]) as usize;
        if expected != name || size != bytes.len() {
            return Err(TrainError::Merge(format!(
                "{name}: written out of order or with the wrong size (expected {expected}, {size} bytes)"
            )));
        }
        self.out
            .write_all(bytes)
            .map_err(|e| TrainError::io(&self.path, e))?;
        self.next += 1;
        Ok(())
    }

    /// Write the next tensor from f32 values (declared `F32`), encoding a block at a time so no
    /// second copy of the tensor is made.
    pub fn write_f32(&mut self, name: &str, values: &[f32]) -> Result<(), TrainError> {
        let (expected, info) = self
            .order
            .get(self.next)
            .ok_or_else(|| TrainError::Merge(format!("{name}: more tensors than declared")))?;
        if expected != name || info.dtype != "F32" || info.elements() != values.len() {
            return Err(TrainError::Merge(format!(
                "{name}: written out of order or with the wrong size (expected {expected}, {} F32 values)",
                info.elements()
            )));
        }
        let mut block = Vec::with_capacity(WRITE_BLOCK * 4);
        for chunk in values.chunks(WRITE_BLOCK) {
            block.clear();
            chunk
                .iter()
                .for_each(|v| block.extend_from_slice(&v.to_le_bytes()));
            self.out
                .write_all(&block)
                .map_err(|e| TrainError::io(&self.path, e))?;
        }
        self.next += 1;
        Ok(())
    }

    /// Flush and close; every declared tensor must have been written.
    pub fn finish(mut self) -> Result<(), TrainError> {
        if self.next != self.order.len() {
            return Err(TrainError::Merge(format!(
                "{}: {} of {} tensors written",
                self.path.display(),
                self.next,
                self.order.len()
            )));
        }
        self.out
            .flush()
            .and_then(|_| self.out.get_ref().sync_all())
            .map_err(|e| TrainError::io(&self.path, e))
    }
}

/// Values encoded per write by [`StWriter::write_f32`].
const WRITE_BLOCK: usize = 1 << 16;

/// Write `tensors` as an f32 safetensors file (`format: pt` metadata, as transformers writes),
/// one tensor at a time: a CPU tensor's values are encoded from its storage in place, others
/// are copied to the host one by one.
pub fn write_f32_tensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<(), TrainError> {
    let layout: Vec<(String, String, Vec<usize>)> = tensors
        .iter()
        .map(|(name, t)| (name.clone(), "F32".to_string(), t.dims().to_vec()))
        .collect();
    let metadata = BTreeMap::from([("format".to_string(), "pt".to_string())]);
    let mut writer = StWriter::create(path, &layout, &metadata)?;
    for (name, tensor) in tensors {
        with_host_f32(tensor, |values| writer.write_f32(name, values))?;
    }
    writer.finish()
}

/// Call `f` on a tensor's values as f32: borrowed from a contiguous f32 CPU tensor's storage,
/// copied otherwise.
pub fn with_host_f32<R>(
    tensor: &Tensor,
    f: impl FnOnce(&[f32]) -> Result<R, TrainError>,
) -> Result<R, TrainError> {
    if tensor.dtype() == DType::F32 {
        let (storage, layout) = tensor.storage_and_layout();
        if let (Storage::Cpu(cpu), Some((start, end))) = (&*storage, layout.contiguous_offsets()) {
            return f(&cpu.as_slice::<f32>()?[start..end]);
        }
    }
    let values = tensor
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    f(&values)
}

/// Tensor name → shard file name, from `model.safetensors.index.json`.
pub type WeightMap = BTreeMap<String, String>;

/// The safetensors files of a model directory: `model.safetensors`, or the shards listed in
/// `model.safetensors.index.json` (with the name → file map).
pub fn model_files(dir: &Path) -> Result<(Vec<PathBuf>, Option<WeightMap>), TrainError> {
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok((vec![single], None));
    }
    let index_path = dir.join("model.safetensors.index.json");
    let text = std::fs::read_to_string(&index_path).map_err(|_| {
        TrainError::Checkpoint(format!(
            "{}: neither model.safetensors nor model.safetensors.index.json",
            dir.display()
        ))
    })?;
    #[derive(Deserialize)]
    struct Index {
        weight_map: BTreeMap<String, String>,
    }
    let index: Index = serde_json::from_str(&text)
        .map_err(|e| bad(&index_path, format!("not a safetensors index: {e}")))?;
    let mut files: Vec<String> = index.weight_map.values().cloned().collect();
    files.sort();
    files.dedup();
    Ok((
        files.iter().map(|f| dir.join(f)).collect(),
        Some(index.weight_map),
    ))
}
