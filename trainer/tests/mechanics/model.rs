//! The model itself: gradients reach every weight, the KV cache matches the full forward, Hugging
//! Face configs read, the tokenizer trains deterministically, entropy is right.

use super::*;

#[test]
fn every_parameter_receives_a_nonzero_gradient() {
    for (tie, backend) in [true, false]
        .into_iter()
        .flat_map(|t| [(t, Backend::Candle), (t, Backend::Native)])
    {
        let policy = small_policy(tie, 1);
        let seq = sequence(&policy, "1, 2, 3, 4, ?", "<answer>5</answer>");
        let pass = objective::forward(&policy, &[&seq, &seq], 1.0, false, backend).unwrap();
        let dlogp = vec![-1.0; pass.stats.log_probs.len()];
        let grads = pass.backward(&policy, &dlogp, &[]).unwrap();
        let expected = if tie { 2 * 12 + 2 } else { 2 * 12 + 3 };
        assert_eq!(policy.vars.len(), expected, "tie={tie}");
        // The count from the shape alone (what RL's learning-rate default reads) is the loaded one.
        assert_eq!(
            policy.model.config().parameter_count(),
            policy.parameter_count(),
            "tie={tie}"
        );
        // Greedy decoding's temperature 0 has no log-probabilities to train on.
        assert!(objective::forward(&policy, &[&seq], 0.0, false, backend).is_err());
        for name in policy.vars.keys() {
            let grad = grads
                .get(name)
                .unwrap_or_else(|| panic!("{name} got no gradient (tie={tie}, {backend:?})"));
            let norm = grad
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(
                norm > 0.0 && norm.is_finite(),
                "{name}: gradient norm {norm} ({backend:?})"
            );
        }
    }
}

/// The losses read the LM head at the completion positions only (`logits_at`) and prefill reads
/// the last position only (`forward_last`); both equal the full forward's rows there.
#[test]
fn position_subsets_of_the_head_match_the_full_forward() {
    for tie in [true, false] {
        let policy = small_policy(tie, 3);
        let a = sequence(&policy, "1, 2, 3, 4, ?", "<answer>5</answer>");
        let b = sequence(&policy, "9, 7, ?", "<answer>5</answer>");
        let packed = pack(&[&a, &b], policy.codec.pad, &Device::Cpu).unwrap();
        let full = policy.model.forward_full(&packed.inputs).unwrap();
        let (rows, width, vocab) = full.dims3().unwrap();
        let gathered = full
            .reshape((rows * width, vocab))
            .unwrap()
            .index_select(&packed.positions, 0)
            .unwrap();
        let subset = policy
            .model
            .logits_at(&packed.inputs, &packed.positions)
            .unwrap();
        let max_diff = |x: &Tensor, y: &Tensor| {
            (x - y)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        assert!(max_diff(&gathered, &subset) < 1e-5, "tie={tie}");
        // The SFT loss over the subset is the masked loss over every position.
        let masked = (token_log_probs(&full, &packed.targets).unwrap() * &packed.mask)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let loss = nll(&policy, &[&a, &b]);
        assert!(
            (loss + f64::from(masked)).abs() < 1e-4,
            "{loss} vs {masked}"
        );
        let ids = Tensor::new(a.prompt.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let last = policy
            .model
            .forward_last(&ids, &mut policy.model.new_cache())
            .unwrap();
        let whole = policy.model.forward_full(&ids).unwrap();
        let expected = whole
            .narrow(1, a.prompt.len() - 1, 1)
            .unwrap()
            .squeeze(1)
            .unwrap();
        assert!(max_diff(&last, &expected) < 1e-5, "tie={tie}");
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
    a.save(dir_a.path(), 1024).unwrap();
    b.save(dir_b.path(), 1024).unwrap();
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

/// The native CPU pass computes what candle's graph computes: the same per-position
/// log-probabilities and entropies, and — for an arbitrary loss over them — the same gradient of
/// every weight, tied head or not, over sequences of different lengths (packed without padding
/// there, right-padded here), at temperature 1 and at a sampling temperature (logits divided
/// before the log-softmax: candle differentiates the division, the native pass scales the
/// gradient by hand).
#[test]
fn native_pass_matches_candle_autograd() {
    for (tie, temperature) in [(true, 1.0), (false, 1.0), (true, 0.7), (false, 1.3)] {
        let policy = small_policy(tie, 6);
        let seqs = [
            sequence(&policy, "1, 2, 3, 4, ?", "<answer>5</answer>"),
            sequence(&policy, "9, 7, ?", "<answer>5</answer>"),
            sequence(
                &policy,
                "Given the following sequence of integers, 2, 4, 8, 16, ?",
                "<think>doubling</think><answer>32</answer>",
            ),
        ];
        let refs: Vec<&Sequence> = seqs.iter().collect();
        let candle =
            objective::forward(&policy, &refs, temperature, true, Backend::Candle).unwrap();
        let native =
            objective::forward(&policy, &refs, temperature, true, Backend::Native).unwrap();
        assert_eq!(candle.stats.sequence_of, native.stats.sequence_of);
        let close = |a: &[f32], b: &[f32], what: &str| {
            assert_eq!(a.len(), b.len(), "{what}");
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() < 1e-4, "{what}: {x} vs {y} (tie={tie})");
            }
        };
        close(
            &candle.stats.log_probs,
            &native.stats.log_probs,
            "log-probs",
        );
        close(
            &candle.stats.entropies,
            &native.stats.entropies,
            "entropies",
        );
        // An arbitrary objective: mixed-sign weights on both values.
        let n = candle.stats.log_probs.len();
        let dlogp: Vec<f32> = (0..n).map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0).collect();
        let dentropy: Vec<f32> = (0..n).map(|i| ((i * 3 % 5) as f32 - 2.0) / 4.0).collect();
        let want = candle.backward(&policy, &dlogp, &dentropy).unwrap();
        let got = native.backward(&policy, &dlogp, &dentropy).unwrap();
        assert_eq!(
            want.keys().collect::<Vec<_>>(),
            got.keys().collect::<Vec<_>>()
        );
        for (name, w) in &want {
            let g = &got[name];
            let norm = |t: &Tensor| {
                f64::from(
                    t.sqr()
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .to_scalar::<f32>()
                        .unwrap(),
                )
                .sqrt()
            };
            let error = norm(&(g - w).unwrap()) / norm(w).max(1e-12);
            assert!(error < 1e-4, "{name}: relative error {error:e} (tie={tie})");
        }
    }
}

/// SFT steps on the two backends follow the same loss curve from the same start.
#[test]
fn native_and_candle_sft_steps_agree() {
    let run = |backend: Backend| {
        let policy = small_policy(true, 9);
        let seqs = counting_sequences(&policy);
        let refs: Vec<&Sequence> = seqs.iter().collect();
        let mut optimizer = AdamW::new(AdamWConfig::default());
        (0..4)
            .map(|_| sft::step_on(&policy, &mut optimizer, &refs, 2, 1.0, backend).unwrap())
            .collect::<Vec<_>>()
    };
    let (candle, native) = (run(Backend::Candle), run(Backend::Native));
    for ((lc, nc), (ln, nn)) in candle.iter().zip(&native) {
        assert!(
            (lc - ln).abs() < 1e-4 * lc.abs().max(1.0),
            "loss {lc} vs {ln}"
        );
        assert!((nc - nn).abs() < 1e-3 * nc, "grad norm {nc} vs {nn}");
    }
}

/// The native decoder continues prompts as candle's does: the same greedy tokens for prompts of
/// different lengths decoded together, and the same sampled rollouts from the same generator.
#[test]
fn native_decoding_matches_candle() {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use triad_trainer::sample::{SampleOptions, greedy_batch, sample_on};
    let policy = small_policy(false, 2);
    let prompts: Vec<Vec<u32>> = [
        "Given the following sequence of integers, 3, 4",
        "1, 2",
        "Given the following sequence of integers, 3, 4, 5, 6, 7, 8, 9, 10, ?",
    ]
    .iter()
    .map(|p| policy.codec.encode(p).unwrap())
    .collect();
    // A token the model never emits, so every continuation runs its whole budget.
    let eos = policy.codec.vocab_size() as u32 + 1;
    let batched = greedy_batch(&policy, &prompts, eos, 12).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for (prompt, got) in prompts.iter().zip(&batched) {
        let want = sample_on(
            Backend::Candle,
            &policy,
            prompt,
            1,
            eos,
            &SampleOptions::greedy(12),
            &mut rng,
        )
        .unwrap();
        assert_eq!(got.len(), 12);
        assert_eq!(got, &want[0]);
    }
    let options = SampleOptions {
        temperature: 1.0,
        top_p: 0.9,
        max_new_tokens: 10,
    };
    let draw = |backend| {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        sample_on(backend, &policy, &prompts[0], 4, eos, &options, &mut rng).unwrap()
    };
    assert_eq!(draw(Backend::Candle), draw(Backend::Native));
}

/// A token id past the vocabulary is an error on the native paths, not an out-of-bounds panic.
#[test]
fn native_paths_refuse_tokens_outside_the_vocabulary() {
    use rand::SeedableRng;
    let policy = small_policy(true, 1);
    let bad = policy.model.config().vocab_size as u32;
    let seq = Sequence {
        prompt: vec![1, bad],
        completion: vec![2],
    };
    let err = objective::forward(&policy, &[&seq], 1.0, false, Backend::Native).err();
    assert!(
        format!("{err:?}").contains("outside the vocabulary"),
        "{err:?}"
    );
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let options = triad_trainer::sample::SampleOptions::greedy(3);
    let err = triad_trainer::sample::sample_on(
        Backend::Native,
        &policy,
        &[1, bad],
        1,
        0,
        &options,
        &mut rng,
    )
    .err();
    assert!(
        format!("{err:?}").contains("outside the vocabulary"),
        "{err:?}"
    );
}
