//! Weights on disk: save/load bit-exact, bad tensors refused, merge is the weighted sum, sharded
//! checkpoints load, and Python's `safetensors` / `tokenizers` read what is written.

use super::*;

fn bits(tensor: &Tensor) -> Vec<u32> {
    let values = tensor.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    values.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn save_then_load_is_bit_exact() {
    let policy = small_policy(false, 6);
    let dir = tempfile::tempdir().unwrap();
    policy.save(dir.path()).unwrap();
    let loaded = Policy::load(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(loaded.model.config(), &{
        let mut c = policy.model.config().clone();
        c.eos_token_id = Some(policy.codec.eos);
        c
    });
    assert_eq!(
        policy.vars.keys().collect::<Vec<_>>(),
        loaded.vars.keys().collect::<Vec<_>>()
    );
    for (name, var) in &policy.vars {
        assert_eq!(bits(var), bits(&loaded.vars[name]), "{name}");
    }
    let text = "Given the following sequence";
    assert_eq!(
        policy.codec.encode(text).unwrap(),
        loaded.codec.encode(text).unwrap()
    );
}

#[test]
fn loading_rejects_missing_and_misshapen_tensors() {
    let policy = small_policy(true, 7);
    let dir = tempfile::tempdir().unwrap();
    policy.save(dir.path()).unwrap();
    let path = dir.path().join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    tensors.remove("model.norm.weight");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let err = Policy::load(dir.path(), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.norm.weight"), "{err}");
    tensors.insert(
        "model.norm.weight".into(),
        Tensor::ones(3, DType::F32, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let err = Policy::load(dir.path(), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("do not fit"), "{err}");
}

/// Write `tensors` (name → (dtype, shape, values)) as a safetensors file.
fn write_st(path: &Path, tensors: &[(&str, &str, Vec<usize>, Vec<f32>)]) {
    let layout: Vec<(String, String, Vec<usize>)> = tensors
        .iter()
        .map(|(n, d, s, _)| (n.to_string(), d.to_string(), s.clone()))
        .collect();
    let mut writer = StWriter::create(path, &layout, &BTreeMap::new()).unwrap();
    for (name, dtype, _, values) in tensors {
        writer
            .write(name, &triad_trainer::st::from_f32(dtype, values).unwrap())
            .unwrap();
    }
    writer.finish().unwrap();
}

fn model_dir(values: f32, sharded: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let a = (
        "a.weight",
        "F32",
        vec![2, 3],
        (0..6).map(|i| values * i as f32).collect::<Vec<_>>(),
    );
    let b = (
        "b.bias",
        "BF16",
        vec![4],
        vec![values, -values, 2.0 * values, 0.5],
    );
    if sharded {
        write_st(&dir.path().join("model-00001-of-00002.safetensors"), &[a]);
        write_st(&dir.path().join("model-00002-of-00002.safetensors"), &[b]);
        let index = serde_json::json!({"metadata": {}, "weight_map": {
            "a.weight": "model-00001-of-00002.safetensors",
            "b.bias": "model-00002-of-00002.safetensors"}});
        std::fs::write(
            dir.path().join("model.safetensors.index.json"),
            index.to_string(),
        )
        .unwrap();
    } else {
        write_st(&dir.path().join("model.safetensors"), &[a, b]);
    }
    std::fs::write(dir.path().join("config.json"), "{}").unwrap();
    dir
}

#[test]
fn merge_is_the_weighted_sum_tensor_by_tensor() {
    for sharded in [false, true] {
        let inputs = [
            model_dir(1.0, sharded),
            model_dir(2.0, sharded),
            model_dir(-4.0, sharded),
        ];
        let paths: Vec<PathBuf> = inputs.iter().map(|d| d.path().to_path_buf()).collect();
        let out = tempfile::tempdir().unwrap();
        let weights = [1.0, 0.5, 0.25];
        let summary = merge::merge(&paths, &weights, false, out.path()).unwrap();
        assert_eq!(summary.tensors, 2);
        // 1·x + 0.5·2x + 0.25·(−4x) = x: exact in binary floating point.
        let (files, _) = triad_trainer::st::model_files(out.path()).unwrap();
        assert_eq!(files.len(), if sharded { 2 } else { 1 });
        let mut found = BTreeMap::new();
        for file in files {
            let mut reader = StReader::open(&file).unwrap();
            for name in reader.tensors.keys().cloned().collect::<Vec<_>>() {
                let dtype = reader.tensors[&name].dtype.clone();
                found.insert(name.clone(), (dtype, reader.read_f32(&name).unwrap()));
            }
        }
        assert_eq!(
            found["a.weight"],
            ("F32".to_string(), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
        );
        assert_eq!(
            found["b.bias"],
            ("BF16".to_string(), vec![1.0, -1.0, 2.0, 0.5 * 1.75])
        );
        assert!(out.path().join("config.json").exists());
        assert_eq!(
            out.path().join("model.safetensors.index.json").exists(),
            sharded
        );

        // Normalised: weights 1, 0.5, 0.25 → 4/7, 2/7, 1/7.
        let out = tempfile::tempdir().unwrap();
        let summary = merge::merge(&paths, &weights, true, out.path()).unwrap();
        let expected = [4.0 / 7.0, 2.0 / 7.0, 1.0 / 7.0];
        for (w, e) in summary.effective_weights.iter().zip(expected) {
            assert!((w - e).abs() < 1e-12);
        }
    }
}

#[test]
fn merge_matches_weighted_sum_of_real_checkpoints_and_rejects_mismatches() {
    let a = small_policy(true, 20);
    let b = small_policy(true, 21);
    let (da, db, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    a.save(da.path()).unwrap();
    b.save(db.path()).unwrap();
    let inputs = vec![da.path().to_path_buf(), db.path().to_path_buf()];
    merge::merge(&inputs, &[1.0, 0.2], false, out.path()).unwrap();
    let merged = Policy::load(out.path(), &Device::Cpu).unwrap();
    for (name, var) in &merged.vars {
        let x = a.vars[name]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let y = b.vars[name]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let m = var.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for i in 0..m.len() {
            let expected = 0.0f32 + 1.0f32 * x[i] + 0.2f32 * y[i];
            assert_eq!(m[i].to_bits(), expected.to_bits(), "{name}[{i}]");
        }
    }
    // A model of another shape.
    let mut other = small_policy(true, 22).model.config().clone();
    other.intermediate_size = 48;
    let c = Policy::init(&other, a.codec.clone(), 1, &Device::Cpu).unwrap();
    let dc = tempfile::tempdir().unwrap();
    c.save(dc.path()).unwrap();
    let err = merge::merge(
        &[da.path().to_path_buf(), dc.path().to_path_buf()],
        &[0.5, 0.5],
        false,
        tempfile::tempdir().unwrap().path(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("shape"), "{err}");
    // A model missing a tensor.
    let dd = model_dir(1.0, false);
    let err = merge::merge(
        &[da.path().to_path_buf(), dd.path().to_path_buf()],
        &[1.0, 1.0],
        false,
        out.path(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("not in"), "{err}");
    let err = merge::merge(&inputs, &[1.0], false, out.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("2 inputs but 1 weights"), "{err}");
}

#[test]
fn checkpoints_load_in_python_safetensors_and_tokenizers() {
    let policy = small_policy(false, 30);
    let dir = tempfile::tempdir().unwrap();
    policy.save(dir.path()).unwrap();
    let text = "Given the following sequence of integers,\n1, 2, 3, ?<|im_end|>";
    let ids: Vec<String> = policy
        .codec
        .encode(text)
        .unwrap()
        .iter()
        .map(|i| i.to_string())
        .collect();
    run_check(
        "check_checkpoint.py",
        &[
            dir.path().as_os_str(),
            text.as_ref(),
            ids.join(",").as_ref(),
        ],
    );
}

/// Run `tests/python/SCRIPT ARGS…` and fail with its output unless it succeeds.
fn run_check(script: &str, args: &[&std::ffi::OsStr]) {
    // A local directory needs no network; offline, a lookup that tried would fail here.
    let output = Command::new(python())
        .arg(repo().join("tests/python").join(script))
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn sharded_checkpoints_load_like_single_files() {
    let policy = small_policy(false, 40);
    let dir = tempfile::tempdir().unwrap();
    policy.save(dir.path()).unwrap();
    // Re-lay the weights out as two shards with an index, as large Hugging Face models ship.
    let single = dir.path().join("model.safetensors");
    let mut reader = StReader::open(&single).unwrap();
    let names: Vec<String> = reader.tensors.keys().cloned().collect();
    let (first, second) = names.split_at(names.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (file, part) in [
        ("model-00001-of-00002.safetensors", first),
        ("model-00002-of-00002.safetensors", second),
    ] {
        let layout: Vec<(String, String, Vec<usize>)> = part
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    reader.tensors[n].dtype.clone(),
                    reader.tensors[n].shape.clone(),
                )
            })
            .collect();
        let mut writer =
            StWriter::create(&dir.path().join(file), &layout, &BTreeMap::new()).unwrap();
        for name in part {
            writer
                .write(name, &reader.read_bytes(name).unwrap())
                .unwrap();
            weight_map.insert(name.clone(), file.into());
        }
        writer.finish().unwrap();
    }
    drop(reader);
    std::fs::remove_file(&single).unwrap();
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    let loaded = Policy::load(dir.path(), &Device::Cpu).unwrap();
    for (name, var) in &policy.vars {
        assert_eq!(bits(var), bits(&loaded.vars[name]), "{name}");
    }
}

/// Every family's prompts and SFT targets at `levels`, in `style`.
fn texts_of_every_family(style: triad::generators::PromptStyle, levels: Vec<u8>) -> Vec<Task> {
    let dir = tempfile::tempdir().unwrap();
    let families = triad::generators::registry::FAMILIES.to_vec();
    generate_into(dir.path(), families, levels, (2, 1), style);
    let selection = Selection {
        split: triad::generators::Split::Train,
        families: Default::default(),
        levels: Default::default(),
        per_level: None,
    };
    load_tasks(dir.path(), &selection).unwrap()
}

#[test]
fn transformers_auto_tokenizer_gives_triad_trains_ids_on_every_family_and_level() {
    use triad::generators::PromptStyle;
    // Every level in the chat style; the other styles frame the same puzzles differently, so
    // levels 1-4 cover what they add (the deduction levels 9-10 cost most of the generation).
    let chat = texts_of_every_family(PromptStyle::Chat, (1..=10).collect());
    let policy = init_for_tasks("micro", &chat, 1024, 2048, 0, &Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    policy.save(dir.path()).unwrap();
    let mut cases = Vec::new();
    for style in [PromptStyle::Chat, PromptStyle::Paper, PromptStyle::Compact] {
        let tasks = if style == PromptStyle::Chat {
            chat.clone()
        } else {
            texts_of_every_family(style, (1..=4).collect())
        };
        for task in &tasks {
            let prompt = task.prompt_text();
            let prefilled = triad::reward::prompt_prefills_think(&prompt);
            let target = triad_trainer::tokenizer::sft_target(&task.answer, &task.trace, prefilled);
            let what = format!("{} {} level {}", style.name(), task.family, task.level);
            // The paper style's one message is already a rendered chat string: no template.
            let messages = (style != PromptStyle::Paper).then(|| {
                task.messages
                    .iter()
                    .map(|m| serde_json::json!({"role": m.role, "content": m.content}))
                    .collect::<Vec<_>>()
            });
            for text in [prompt.clone(), format!("{prompt}{target}")] {
                let ids = policy.codec.encode(&text).unwrap();
                cases.push(serde_json::json!({
                    "what": what, "text": text, "ids": ids, "messages": messages,
                }));
            }
        }
    }
    assert!(
        cases.len() >= 3 * 2 * (10 + 4 + 4) * 2,
        "{} cases",
        cases.len()
    );
    let file = dir.path().join("cases.json");
    std::fs::write(&file, serde_json::to_string(&cases).unwrap()).unwrap();
    run_check(
        "check_auto_tokenizer.py",
        &[dir.path().as_os_str(), file.as_os_str()],
    );
}
