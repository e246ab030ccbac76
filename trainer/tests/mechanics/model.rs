//! The model itself: gradients reach every weight, the KV cache matches the full forward, Hugging
//! Face configs read, the tokenizer trains deterministically, entropy is right.

use super::*;

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
        let loss = nll(&policy.model, &[&a, &b], policy.codec.pad, 1.0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((loss + masked).abs() < 1e-4, "{loss} vs {masked}");
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
