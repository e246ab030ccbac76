//! The trainer's mechanics on small models: gradients reach every weight, SFT and RL steps move
//! the model the right way, save/load and merge are exact, checkpoints resume to the same next
//! step, and the files written load in Python's `safetensors` / `tokenizers`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{D, DType, Device, Tensor};
use triad_trainer::advantage::grpo;
use triad_trainer::batch::{Sequence, pack};
use triad_trainer::config::ModelConfig;
use triad_trainer::data::{Selection, Task, load_tasks};
use triad_trainer::optim::{AdamW, AdamWConfig};
use triad_trainer::policy::{Policy, init_for_tasks};
use triad_trainer::rl::{LossOptions, RlOptions, policy_update};
use triad_trainer::run::RunDir;
use triad_trainer::sample::{SampleOptions, token_log_probs};
use triad_trainer::sft::{SftOptions, nll};
use triad_trainer::st::{StReader, StWriter};
use triad_trainer::tokenizer::TextCodec;
use triad_trainer::{merge, metrics, rl, sft};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("TRIAD_PYTHON") {
        return p.into();
    }
    let venv = repo().join(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        "python3".into()
    }
}

/// A small induction + deduction level-1 dataset, generated once per test binary.
fn dataset() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let config = triad::dataset::GenerateConfig {
            out: dir.path().to_path_buf(),
            families: ["induction", "deduction"]
                .iter()
                .map(|n| triad::generators::registry::family(n).unwrap())
                .collect(),
            levels: vec![1],
            train: 40,
            test: 10,
            seed: 7,
            style: triad::generators::PromptStyle::Chat,
            shard_rows: 1000,
            options: Default::default(),
            overwrite: false,
            worker: None,
        };
        triad::dataset::generate(&config).unwrap();
        dir
    })
    .path()
}

fn tasks(family: &str) -> Vec<Task> {
    let mut selection = Selection::split("train");
    selection.families.insert(family.to_string());
    load_tasks(dataset(), &selection).unwrap()
}

/// A tiny policy (hidden 32, 2 layers, GQA 4/2) with a tokenizer trained on the tasks.
fn small_policy(tie: bool, seed: u64) -> Policy {
    let tasks = tasks("induction");
    let base = init_for_tasks("tiny", &tasks, 400, 512, seed, &Device::Cpu).unwrap();
    let mut config = base.model.config().clone();
    config.hidden_size = 32;
    config.intermediate_size = 64;
    config.num_hidden_layers = 2;
    config.num_attention_heads = 4;
    config.num_key_value_heads = 2;
    config.tie_word_embeddings = tie;
    Policy::init(&config, base.codec.clone(), seed, &Device::Cpu).unwrap()
}

fn sequence(policy: &Policy, prompt: &str, completion: &str) -> Sequence {
    Sequence {
        prompt: policy.codec.encode(prompt).unwrap(),
        completion: policy.codec.encode(completion).unwrap(),
    }
}

fn completion_log_prob(policy: &Policy, seq: &Sequence) -> f32 {
    let packed = pack(&[seq], policy.codec.pad, &Device::Cpu).unwrap();
    let logits = policy.model.forward_full(&packed.inputs).unwrap();
    let lp = token_log_probs(&logits, &packed.targets).unwrap();
    (lp * &packed.mask)
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn every_parameter_receives_a_nonzero_gradient() {
    for tie in [true, false] {
        let policy = small_policy(tie, 1);
        let seq = sequence(&policy, "1, 2, 3, 4, ?", "<answer>5</answer>");
        let loss = nll(&policy.model, &[&seq, &seq], policy.codec.pad, 1.0).unwrap();
        let grads = loss.backward().unwrap();
        let expected = if tie { 2 * 12 + 2 } else { 2 * 12 + 3 };
        assert_eq!(policy.vars.len(), expected, "tie={tie}");
        for (name, var) in &policy.vars {
            let grad = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{name} got no gradient (tie={tie})"));
            let norm = grad
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(
                norm > 0.0 && norm.is_finite(),
                "{name}: gradient norm {norm}"
            );
        }
    }
}

#[test]
fn kv_cache_decoding_matches_the_full_forward() {
    let policy = small_policy(true, 2);
    let ids = policy
        .codec
        .encode("Given the following sequence of integers, 3, 4")
        .unwrap();
    let full = policy
        .model
        .forward_full(
            &Tensor::new(ids.as_slice(), &Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap(),
        )
        .unwrap();
    let mut cache = policy.model.new_cache();
    let split = ids.len() / 2;
    let first = Tensor::new(&ids[..split], &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    policy.model.forward(&first, &mut cache).unwrap();
    for (i, id) in ids[split..].iter().enumerate() {
        let step = Tensor::new(&[*id], &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits = policy.model.forward(&step, &mut cache).unwrap();
        let expected = full.narrow(1, split + i, 1).unwrap();
        let diff = (logits - expected)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            diff < 1e-4,
            "position {}: cached logits differ by {diff}",
            split + i
        );
    }
}

#[test]
fn sft_steps_lower_the_loss_on_a_fixed_batch() {
    let policy = small_policy(true, 3);
    let batch: Vec<Sequence> = tasks("induction")
        .iter()
        .take(4)
        .map(|t| {
            sequence(
                &policy,
                &t.prompt_text(),
                &triad_trainer::tokenizer::sft_target(&t.answer, false),
            )
        })
        .collect();
    let refs: Vec<&Sequence> = batch.iter().collect();
    let tokens: usize = batch.iter().map(|s| s.completion.len()).sum();
    let loss = |p: &Policy| {
        nll(&p.model, &refs, p.codec.pad, tokens as f64)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    let before = loss(&policy);
    let mut optimizer = AdamW::new(AdamWConfig {
        lr: 3e-3,
        ..AdamWConfig::default()
    });
    // Two micro-batches: accumulation must give the same objective as one batch.
    for _ in 0..5 {
        sft::step(&policy, &mut optimizer, &refs, 2, 1.0).unwrap();
    }
    let after = loss(&policy);
    assert!(after < before * 0.9, "loss {before} → {after}");
}

#[test]
fn micro_batches_accumulate_to_the_full_batch_gradient() {
    let run = |micro: usize| {
        let policy = small_policy(true, 4);
        let seqs = [
            sequence(&policy, "1, 2, ?", "<answer>3</answer>"),
            sequence(&policy, "5, 6, 7, ?", "<answer>8</answer>"),
            sequence(&policy, "2, 4, ?", "<answer>6</answer>"),
        ];
        let refs: Vec<&Sequence> = seqs.iter().collect();
        let mut optimizer = AdamW::new(AdamWConfig::default());
        sft::step(&policy, &mut optimizer, &refs, micro, 0.0).unwrap()
    };
    let (loss1, norm1) = run(1);
    let (loss3, norm3) = run(3);
    assert!((loss1 - loss3).abs() < 1e-5, "{loss1} vs {loss3}");
    assert!((norm1 - norm3).abs() < 1e-4 * norm1, "{norm1} vs {norm3}");
}

#[test]
fn rl_update_raises_the_probability_of_the_rewarded_completion() {
    let policy = small_policy(true, 5);
    let reference = policy.frozen_copy().unwrap();
    let prompt = "Given the following sequence of integers, 1, 2, 3, ?";
    let good = sequence(&policy, prompt, "<answer>4</answer>");
    let bad = sequence(&policy, prompt, "<answer>9</answer>");
    let (good_before, bad_before) = (
        completion_log_prob(&policy, &good),
        completion_log_prob(&policy, &bad),
    );
    // Synthetic reward: 1 for the good completion, 0 for the bad; a GRPO group of two.
    let advantages = grpo(&[1.0, 0.0], 2);
    let mut optimizer = AdamW::new(AdamWConfig {
        lr: 1e-3,
        ..AdamWConfig::default()
    });
    for _ in 0..3 {
        policy_update(
            &policy,
            Some(&reference),
            &mut optimizer,
            &[good.clone(), bad.clone()],
            &advantages,
            &LossOptions::default(),
            1,
            1,
            1.0,
        )
        .unwrap();
    }
    let (good_after, bad_after) = (
        completion_log_prob(&policy, &good),
        completion_log_prob(&policy, &bad),
    );
    assert!(
        good_after > good_before,
        "rewarded: {good_before} → {good_after}"
    );
    // The completions share their tags, whose pushes cancel; what must move is the margin.
    assert!(
        good_after - bad_after > good_before - bad_before,
        "margin: {} → {}",
        good_before - bad_before,
        good_after - bad_after
    );
}

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

fn sft_options(steps: u64) -> SftOptions {
    SftOptions {
        steps,
        batch_size: 4,
        grad_accum: 2,
        optim: AdamWConfig {
            lr: 2e-3,
            ..AdamWConfig::default()
        },
        max_grad_norm: 1.0,
        seed: 11,
        save_every: 1,
        log_every: 0,
    }
}

fn last_loss(run: &RunDir, phase: &str) -> (u64, f64) {
    let log = metrics::read(&run.metrics()).unwrap();
    let last = log.iter().rev().find(|m| m.phase == phase).unwrap();
    (last.step, last.loss)
}

#[test]
fn sft_checkpoint_resumes_to_the_same_next_step() {
    let data = tasks("induction");
    let straight = tempfile::tempdir().unwrap();
    let straight_run = RunDir::create(straight.path()).unwrap();
    sft::train(small_policy(true, 8), &data, &sft_options(3), &straight_run).unwrap();

    let resumed = tempfile::tempdir().unwrap();
    let resumed_run = RunDir::create(resumed.path()).unwrap();
    sft::train(small_policy(true, 8), &data, &sft_options(2), &resumed_run).unwrap();
    // A different starting model must be ignored: the checkpoint is what resumes.
    sft::train(small_policy(true, 99), &data, &sft_options(3), &resumed_run).unwrap();

    assert_eq!(
        last_loss(&straight_run, "sft"),
        last_loss(&resumed_run, "sft")
    );
    assert_eq!(metrics::read(&resumed_run.metrics()).unwrap().len(), 3);
    let a = std::fs::read(straight.path().join("model.safetensors")).unwrap();
    let b = std::fs::read(resumed.path().join("model.safetensors")).unwrap();
    assert!(a == b, "final weights differ after resuming");
}

fn rl_options(steps: u64) -> RlOptions {
    RlOptions {
        steps,
        prompts: 2,
        rollouts: 3,
        sample: SampleOptions {
            temperature: 1.0,
            top_p: 0.95,
            max_new_tokens: 8,
        },
        levels: vec![1],
        seed: 3,
        save_every: 1,
        log_every: 0,
        ..RlOptions::default()
    }
}

#[test]
fn rl_checkpoint_resumes_to_the_same_next_step() {
    let data = tasks("induction");
    let rewards = triad_trainer::reward::RewardSource::InProcess(triad::reward::Preset::Paper);
    let straight = tempfile::tempdir().unwrap();
    let straight_run = RunDir::create(straight.path()).unwrap();
    rl::train(
        small_policy(true, 9),
        &data,
        &rl_options(2),
        &rewards,
        &straight_run,
    )
    .unwrap();
    let resumed = tempfile::tempdir().unwrap();
    let resumed_run = RunDir::create(resumed.path()).unwrap();
    rl::train(
        small_policy(true, 9),
        &data,
        &rl_options(1),
        &rewards,
        &resumed_run,
    )
    .unwrap();
    rl::train(
        small_policy(true, 9),
        &data,
        &rl_options(2),
        &rewards,
        &resumed_run,
    )
    .unwrap();
    let a = metrics::read(&straight_run.metrics()).unwrap();
    let b = metrics::read(&resumed_run.metrics()).unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(b.len(), 2);
    assert_eq!(
        (a[1].loss, a[1].reward_mean, a[1].kl),
        (b[1].loss, b[1].reward_mean, b[1].kl)
    );
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
    let output = Command::new(python())
        .arg(repo().join("tests/python/check_checkpoint.py"))
        .arg(dir.path())
        .arg(text)
        .arg(ids.join(","))
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
fn model_config_reads_a_hugging_face_qwen2_config() {
    // The fields of Qwen2.5-0.5B-Instruct's config.json.
    let text = r#"{"architectures":["Qwen2ForCausalLM"],"attention_dropout":0.0,"bos_token_id":151643,
      "eos_token_id":151645,"hidden_act":"silu","hidden_size":896,"initializer_range":0.02,
      "intermediate_size":4864,"max_position_embeddings":32768,"max_window_layers":21,
      "model_type":"qwen2","num_attention_heads":14,"num_hidden_layers":24,"num_key_value_heads":2,
      "rms_norm_eps":1e-06,"rope_theta":1000000.0,"sliding_window":32768,"tie_word_embeddings":true,
      "torch_dtype":"bfloat16","transformers_version":"4.43.1","use_cache":true,
      "use_sliding_window":false,"vocab_size":151936}"#;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), text).unwrap();
    let config = ModelConfig::read(dir.path()).unwrap();
    assert_eq!(
        (
            config.hidden_size,
            config.num_key_value_heads,
            config.head_dim()
        ),
        (896, 2, 64)
    );
    assert!(config.tie_word_embeddings);
    // Written back, unknown fields survive.
    config.write(dir.path()).unwrap();
    let back: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(back["sliding_window"], 32768);
    let shapes = triad_trainer::policy::parameter_shapes(&ModelConfig {
        num_hidden_layers: 1,
        vocab_size: 10,
        ..config
    })
    .unwrap();
    let find = |n: &str| shapes.iter().find(|s| s.0 == n).unwrap().1.clone();
    assert_eq!(
        find("model.layers.0.self_attn.k_proj.weight"),
        vec![128, 896]
    );
    assert_eq!(find("model.layers.0.self_attn.q_proj.bias"), vec![896]);
    assert_eq!(find("model.layers.0.mlp.gate_proj.weight"), vec![4864, 896]);
}

#[test]
fn tokenizer_training_is_deterministic_and_round_trips() {
    let texts: Vec<String> = tasks("deduction").iter().map(|t| t.prompt_text()).collect();
    let a = TextCodec::train(&texts, 300).unwrap();
    let b = TextCodec::train(&texts, 300).unwrap();
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    a.save(dir_a.path()).unwrap();
    b.save(dir_b.path()).unwrap();
    assert_eq!(
        std::fs::read(dir_a.path().join("tokenizer.json")).unwrap(),
        std::fs::read(dir_b.path().join("tokenizer.json")).unwrap()
    );
    let sample = "(¬D ↔ A)\n<answer>\n(1) A is True\n</answer><|im_end|>";
    let ids = a.encode(sample).unwrap();
    assert_eq!(ids.last(), Some(&a.eos));
    assert_eq!(
        a.decode(&ids).unwrap(),
        sample.trim_end_matches("<|im_end|>")
    );
}

#[test]
fn entropy_of_uniform_logits_is_log_vocab() {
    let logits = Tensor::zeros((1, 2, 8), DType::F32, &Device::Cpu).unwrap();
    let h = triad_trainer::sample::entropy(&logits)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    assert!((h[0][0] - 8f32.ln()).abs() < 1e-6);
    let _ = D::Minus1;
}

fn train_cli(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_triad-train"))
        .args(args)
        .output()
        .expect("run triad-train");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "triad-train {args:?} failed:\n{text}"
    );
    text
}

#[test]
fn cli_runs_init_sft_rl_merge_eval_and_plot() {
    let data = dataset().to_str().unwrap();
    let work = tempfile::tempdir().unwrap();
    let p = |name: &str| work.path().join(name).to_str().unwrap().to_string();
    let common = ["--data", data, "--families", "induction", "--levels", "1"];
    train_cli(
        &[
            &["init", "--size", "tiny", "--out", &p("base")],
            &common[..],
        ]
        .concat(),
    );
    train_cli(
        &[
            &[
                "sft",
                "--model",
                &p("base"),
                "--out",
                &p("sft"),
                "--steps",
                "3",
                "--batch-size",
                "4",
            ],
            &common[..],
        ]
        .concat(),
    );
    for (out, estimator) in [("rl-a", "reinforce++"), ("rl-b", "grpo")] {
        train_cli(
            &[
                &[
                    "rl",
                    "--model",
                    &p("sft"),
                    "--out",
                    &p(out),
                    "--steps",
                    "2",
                    "--prompts",
                    "2",
                    "--rollouts",
                    "2",
                    "--max-new-tokens",
                    "6",
                    "--estimator",
                    estimator,
                ],
                &common[..],
            ]
            .concat(),
        );
    }
    let log = metrics::read(&work.path().join("rl-a/metrics.jsonl")).unwrap();
    assert_eq!(log.len(), 2);
    assert!(
        log.iter()
            .all(|m| m.reward_mean.is_some() && m.kl.is_some() && m.entropy.is_some())
    );
    let merged = train_cli(&[
        "merge",
        "--inputs",
        &format!("{},{},{}", p("sft"), p("rl-a"), p("rl-b")),
        "--weights",
        "1.0,0.2,0.1",
        "--normalize",
        "--out",
        &p("merged"),
    ]);
    assert!(merged.contains("0.7692, 0.1538, 0.0769"), "{merged}");
    let table = train_cli(
        &[
            &[
                "eval",
                "--model",
                &p("merged"),
                "--max-new-tokens",
                "6",
                "--json",
                &p("eval.json"),
            ],
            &common[..],
        ]
        .concat(),
    );
    assert!(table.contains("| induction | 1 | 10 |"), "{table}");
    let report: triad_trainer::eval::EvalReport =
        serde_json::from_str(&std::fs::read_to_string(p("eval.json")).unwrap()).unwrap();
    assert_eq!(report.tasks, 10);
    train_cli(&[
        "plot",
        &p("sft/metrics.jsonl"),
        &p("rl-a/metrics.jsonl"),
        "--out",
        &p("curves.png"),
    ]);
    let png = std::fs::read(p("curves.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // Bad input: a clear error, exit 2.
    let output = Command::new(env!("CARGO_BIN_EXE_triad-train"))
        .args([
            "merge",
            "--inputs",
            &p("sft"),
            "--weights",
            "1,2",
            "--out",
            &p("x"),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("1 inputs but 2 weights"));
}

#[test]
fn remote_reward_server_scores_like_in_process() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let config = triad::server::ServerConfig {
            api_key: Some("k".into()),
            ..Default::default()
        };
        runtime
            .block_on(triad::server::serve(
                "127.0.0.1:0".parse().unwrap(),
                config,
                move |addr| tx.send(addr).unwrap(),
            ))
            .unwrap();
    });
    let addr = rx.recv().unwrap();
    let task = &tasks("induction")[0];
    let prompt = task.prompt_text();
    let right = format!("<think>\n</think>\n<answer>\n{}\n</answer>", task.answer);
    let responses = [right.as_str(), "<answer>-1</answer>", "no tags at all"];
    let rollouts: Vec<triad_trainer::reward::Rollout> = responses
        .iter()
        .map(|r| triad_trainer::reward::Rollout {
            response: r,
            label: &task.label,
            prompt: &prompt,
        })
        .collect();
    let url = format!("http://{addr}");
    let preset = triad::reward::Preset::Paper;
    let remote =
        triad_trainer::reward::RewardSource::new(Some(&url), preset, Some("k".into())).unwrap();
    let local = triad_trainer::reward::RewardSource::InProcess(preset);
    let (a, b) = (
        remote.score(&rollouts).unwrap(),
        local.score(&rollouts).unwrap(),
    );
    assert_eq!(a, b);
    assert_eq!(a[0].score, 3.0);
    assert!(!a[2].format_ok);
    let wrong_key =
        triad_trainer::reward::RewardSource::new(Some(&url), preset, Some("x".into())).unwrap();
    let err = wrong_key.score(&rollouts).unwrap_err().to_string();
    assert!(err.contains("401"), "{err}");
}

const SMALL_PIPELINE: &str = r#"
seed = 5
levels = [1]
eval_limit = 2
eval_max_new_tokens = 6
[data]
train = 12
test = 4
[base]
init = "micro"
vocab_size = 500
max_positions = 1024
sft_steps = 2
sft_batch_size = 4
[specialist]
steps = 2
max_steps_per_level = 1
prompts = 2
rollouts = 2
max_new_tokens = 6
[merge]
weights = { deduction = 1.0, induction = 0.2, abduction = 0.1 }
[domain]
families = ["deduction", "induction", "abduction"]
levels = [2]
[domain.rl]
steps = 1
prompts = 2
rollouts = 2
estimator = "grpo"
max_new_tokens = 6
"#;

#[test]
fn pipeline_runs_every_stage_deterministically_and_skips_finished_ones() {
    let work = tempfile::tempdir().unwrap();
    let config_path = work.path().join("pipeline.toml");
    std::fs::write(&config_path, SMALL_PIPELINE).unwrap();
    let config = triad_trainer::pipeline::PipelineConfig::read(&config_path).unwrap();
    let (a, b) = (work.path().join("a"), work.path().join("b"));
    let report = triad_trainer::pipeline::run(&config, &a, &Device::Cpu).unwrap();
    let models: Vec<&str> = report.rows.iter().map(|r| r.model.as_str()).collect();
    assert_eq!(
        models,
        [
            "base",
            "deduction specialist",
            "induction specialist",
            "abduction specialist",
            "merged",
            "domain RL from base",
            "domain RL from merged"
        ]
    );
    for stage in [
        "base",
        "specialist-deduction",
        "merged",
        "domain-from-merged",
    ] {
        assert!(a.join(stage).join("model.safetensors").exists(), "{stage}");
    }
    let merge: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("merged/merge_config.json")).unwrap())
            .unwrap();
    assert_eq!(
        merge["effective_weights"],
        serde_json::json!([1.0, 0.2, 0.1])
    );
    assert!(
        std::fs::read_to_string(a.join("report.md"))
            .unwrap()
            .contains("| merged |")
    );
    assert_eq!(
        &std::fs::read(a.join("curves.png")).unwrap()[..4],
        b"\x89PNG"
    );

    // A re-run skips every finished stage: nothing is retrained, the report is the same.
    let weights = std::fs::metadata(a.join("merged/model.safetensors"))
        .unwrap()
        .modified()
        .unwrap();
    let again = triad_trainer::pipeline::run(&config, &a, &Device::Cpu).unwrap();
    assert_eq!(again, report);
    assert_eq!(
        std::fs::metadata(a.join("merged/model.safetensors"))
            .unwrap()
            .modified()
            .unwrap(),
        weights
    );
    // Changing the merge re-merges and re-runs what starts from the merge, and only that.
    let mut normalized = config.clone();
    normalized.merge.normalize = true;
    let base_weights = std::fs::read(a.join("domain-from-base/model.safetensors")).unwrap();
    let from_merged = std::fs::read(a.join("domain-from-merged/model.safetensors")).unwrap();
    triad_trainer::pipeline::run(&normalized, &a, &Device::Cpu).unwrap();
    let merge: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("merged/merge_config.json")).unwrap())
            .unwrap();
    assert_eq!(merge["normalize"], true);
    assert_eq!(
        std::fs::read(a.join("domain-from-base/model.safetensors")).unwrap(),
        base_weights
    );
    assert_ne!(
        std::fs::read(a.join("domain-from-merged/model.safetensors")).unwrap(),
        from_merged
    );
    // And back: the same output as the first run.
    triad_trainer::pipeline::run(&config, &a, &Device::Cpu).unwrap();
    assert_eq!(
        std::fs::read(a.join("domain-from-merged/model.safetensors")).unwrap(),
        from_merged
    );

    // Same seed, fresh directory: the same weights at every stage.
    triad_trainer::pipeline::run(&config, &b, &Device::Cpu).unwrap();
    for stage in ["base", "specialist-abduction", "merged", "domain-from-base"] {
        let x = std::fs::read(a.join(stage).join("model.safetensors")).unwrap();
        let y = std::fs::read(b.join(stage).join("model.safetensors")).unwrap();
        assert!(
            x == y,
            "{stage} differs between two runs of the same configuration"
        );
    }
    assert_eq!(
        std::fs::read(a.join("report.json")).unwrap(),
        std::fs::read(b.join("report.json")).unwrap()
    );
}

#[test]
fn checked_in_pipeline_config_parses() {
    let config =
        triad_trainer::pipeline::PipelineConfig::read(&repo().join("trainer/pipeline.toml"))
            .unwrap();
    assert_eq!(config.levels, vec![1, 2]);
    assert_eq!(config.merge.weights["deduction"], 1.0);
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        bad.path(),
        SMALL_PIPELINE.replace("abduction = 0.1", "abduktion = 0.1"),
    )
    .unwrap();
    let err = triad_trainer::pipeline::PipelineConfig::read(bad.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("abduction") || err.contains("abduktion"),
        "{err}"
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
