//! Linear merge of checkpoints in parameter space: `Σ wᵢ · θᵢ`, tensor by tensor.
//!
//! Streaming: each output tensor is accumulated in f32 from one input tensor at a time and
//! written before the next is read, so memory is bounded by the largest tensor, not the model.
//! The output keeps the inputs' dtype and the first input's file layout (single file or shards
//! with an index).
//!
//! **Normalisation is explicit.** mergekit's `linear` method divides by the sum of the weights by
//! default, so the paper's weights 1.0 / 0.2 / 0.1 were effectively 0.769 / 0.154 / 0.077. Here
//! the weights are used as given unless `normalize` is set; `merge_config.json` records both the
//! given and the effective weights.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::TrainError;
use crate::st::{self, StReader, StWriter};

/// Files copied from the first input (the tokenizer and configuration).
const SIDE_FILES: &[&str] = &[
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
];

/// What a merge did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MergeSummary {
    /// The input directories.
    pub inputs: Vec<PathBuf>,
    /// The weights as given.
    pub weights: Vec<f64>,
    /// Whether they were divided by their sum.
    pub normalize: bool,
    /// The weights applied.
    pub effective_weights: Vec<f64>,
    /// Tensors merged.
    pub tensors: usize,
    /// Elements in the largest tensor (what bounds memory).
    pub largest_tensor: usize,
}

/// One input model: its readers and which reader holds each tensor.
struct Input {
    dir: PathBuf,
    readers: Vec<StReader>,
    location: BTreeMap<String, usize>,
}

impl Input {
    fn open(dir: &Path) -> Result<Self, TrainError> {
        let (files, _) = st::model_files(dir)?;
        let mut readers = Vec::new();
        let mut location = BTreeMap::new();
        for (i, file) in files.iter().enumerate() {
            let reader = StReader::open(file)?;
            for name in reader.tensors.keys() {
                if location.insert(name.clone(), i).is_some() {
                    return Err(TrainError::Merge(format!(
                        "{}: tensor {name} appears in two shards",
                        dir.display()
                    )));
                }
            }
            readers.push(reader);
        }
        Ok(Input {
            dir: dir.to_path_buf(),
            readers,
            location,
        })
    }

    fn info(&self, name: &str) -> &st::TensorInfo {
        &self.readers[self.location[name]].tensors[name]
    }
}

/// The weights to apply.
pub fn effective_weights(weights: &[f64], normalize: bool) -> Result<Vec<f64>, TrainError> {
    if weights.iter().any(|w| !w.is_finite()) {
        return Err(TrainError::Merge("weights must be finite numbers".into()));
    }
    if !normalize {
        return Ok(weights.to_vec());
    }
    let sum: f64 = weights.iter().sum();
    if sum.abs() < 1e-12 {
        return Err(TrainError::Merge(
            "--normalize needs weights with a non-zero sum".into(),
        ));
    }
    Ok(weights.iter().map(|w| w / sum).collect())
}

/// Check that every input has the same tensors with the same shapes and dtypes.
fn check_compatible(inputs: &[Input]) -> Result<(), TrainError> {
    let first = &inputs[0];
    for other in &inputs[1..] {
        let missing = |a: &Input, b: &Input| {
            a.location
                .keys()
                .find(|k| !b.location.contains_key(*k))
                .map(|k| {
                    TrainError::Merge(format!(
                        "tensor {k} is in {} but not in {}",
                        a.dir.display(),
                        b.dir.display()
                    ))
                })
        };
        if let Some(e) = missing(first, other).or_else(|| missing(other, first)) {
            return Err(e);
        }
        for name in first.location.keys() {
            let (a, b) = (first.info(name), other.info(name));
            if a.shape != b.shape {
                return Err(TrainError::Merge(format!(
                    "tensor {name}: shape {:?} in {} but {:?} in {}",
                    a.shape,
                    first.dir.display(),
                    b.shape,
                    other.dir.display()
                )));
            }
            if a.dtype != b.dtype {
                return Err(TrainError::Merge(format!(
                    "tensor {name}: dtype {} in {} but {} in {}",
                    a.dtype,
                    first.dir.display(),
                    b.dtype,
                    other.dir.display()
                )));
            }
        }
    }
    Ok(())
}

/// Merge `inputs` with `weights` into `out`.
pub fn merge(
    inputs: &[PathBuf],
    weights: &[f64],
    normalize: bool,
    out: &Path,
) -> Result<MergeSummary, TrainError> {
    if inputs.is_empty() {
        return Err(TrainError::Merge("no inputs".into()));
    }
    if inputs.len() != weights.len() {
        return Err(TrainError::Merge(format!(
            "{} inputs but {} weights",
            inputs.len(),
            weights.len()
        )));
    }
    let effective = effective_weights(weights, normalize)?;
    let mut models = inputs
        .iter()
        .map(|d| Input::open(d))
        .collect::<Result<Vec<_>, _>>()?;
    check_compatible(&models)?;
    std::fs::create_dir_all(out).map_err(|e| TrainError::io(out, e))?;

    let (first_files, index) = st::model_files(&inputs[0])?;
    let mut largest = 0;
    let mut count = 0;
    for (file_index, file) in first_files.iter().enumerate() {
        let names: Vec<String> = models[0]
            .location
            .iter()
            .filter(|(_, f)| **f == file_index)
            .map(|(n, _)| n.clone())
            .collect();
        let layout: Vec<(String, String, Vec<usize>)> = names
            .iter()
            .map(|n| {
                let info = models[0].info(n);
                (n.clone(), info.dtype.clone(), info.shape.clone())
            })
            .collect();
        let file_name = file.file_name().expect("a file name");
        let metadata = models[0].readers[file_index].metadata.clone();
        let mut writer = StWriter::create(&out.join(file_name), &layout, &metadata)?;
        for (name, dtype, _) in &layout {
            let mut sum: Vec<f32> = Vec::new();
            for (model, w) in models.iter_mut().zip(&effective) {
                let reader = model.location[name];
                let values = model.readers[reader].read_f32(name)?;
                if sum.is_empty() {
                    sum = vec![0.0; values.len()];
                }
                let w = *w as f32;
                for (s, v) in sum.iter_mut().zip(values) {
                    *s += w * v;
                }
            }
            largest = largest.max(sum.len());
            let bytes = st::from_f32(dtype, &sum).map_err(TrainError::Merge)?;
            writer.write(name, &bytes)?;
            count += 1;
        }
        writer.finish()?;
    }
    if let Some(weight_map) = index {
        let total: u64 = models[0]
            .location
            .keys()
            .map(|n| {
                let i = models[0].info(n);
                i.data_offsets[1] - i.data_offsets[0]
            })
            .sum();
        let index =
            serde_json::json!({"metadata": {"total_size": total}, "weight_map": weight_map});
        let path = out.join("model.safetensors.index.json");
        std::fs::write(&path, serde_json::to_string_pretty(&index).expect("json"))
            .map_err(|e| TrainError::io(&path, e))?;
    }
    for side in SIDE_FILES {
        let from = inputs[0].join(side);
        if from.exists() {
            let to = out.join(side);
            std::fs::copy(&from, &to).map_err(|e| TrainError::io(&to, e))?;
        }
    }
    let summary = MergeSummary {
        inputs: inputs.to_vec(),
        weights: weights.to_vec(),
        normalize,
        effective_weights: effective,
        tensors: count,
        largest_tensor: largest,
    };
    let path = out.join("merge_config.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary).expect("json"))
        .map_err(|e| TrainError::io(&path, e))?;
    Ok(summary)
}
