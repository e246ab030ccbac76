//! SFT and RL steps move the model the right way, micro-batches accumulate exactly, checkpoints
//! resume to the same next step.

use super::*;

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
                &triad_trainer::tokenizer::sft_target(&t.answer, "", false),
            )
        })
        .collect();
    let refs: Vec<&Sequence> = batch.iter().collect();
    let tokens: usize = batch.iter().map(|s| s.completion.len()).sum();
    let loss = |p: &Policy| nll(p, &refs) / tokens as f64;
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
        let seqs = counting_sequences(&policy);
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
    // The same seed: the reference starts equal to the policy.
    let reference = small_policy(true, 5);
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
            rl::UpdateBatch {
                sequences: &[good.clone(), bad.clone()],
                advantages: &advantages,
                temperature: 1.0,
            },
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

fn sft_options(steps: u64) -> SftOptions {
    SftOptions {
        steps,
        batch_size: 4,
        target: triad_trainer::sft::Target::Answer,
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

#[test]
fn sft_refuses_an_empty_batch() {
    // A batch of zero sequences has no loss: the run would "train" without changing a weight.
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::create(dir.path()).unwrap();
    let options = SftOptions {
        batch_size: 0,
        ..sft_options(2)
    };
    let Err(err) = sft::train(small_policy(true, 8), &tasks("induction"), &options, &run) else {
        panic!("an empty batch must be refused");
    };
    let err = err.to_string();
    assert!(err.contains("batch"), "{err}");
    assert!(!dir.path().join("model.safetensors").exists());
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

/// RL updates (two PPO epochs, KL to a reference, entropy bonus, two micro-batches) on the two
/// backends report the same statistics from the same start.
#[test]
fn native_and_candle_rl_updates_agree() {
    let run = |backend: Backend| {
        let policy = small_policy(false, 12);
        let reference = small_policy(false, 13);
        let prompt = "Given the following sequence of integers, 1, 2, 3, ?";
        let seqs = vec![
            sequence(&policy, prompt, "<answer>4</answer>"),
            sequence(&policy, prompt, "<answer>9</answer>"),
            sequence(&policy, "5, 6, ?", "<think>up</think><answer>7</answer>"),
        ];
        let advantages = [1.0, -0.5, 0.25];
        let loss = LossOptions {
            clip: 0.2,
            kl_coef: 0.05,
            entropy_coef: 0.01,
        };
        let mut optimizer = AdamW::new(AdamWConfig {
            lr: 3e-3,
            ..AdamWConfig::default()
        });
        // Rollouts sampled at 0.7: every log-probability of the update is taken at 0.7.
        let batch = rl::UpdateBatch {
            sequences: &seqs,
            advantages: &advantages,
            temperature: 0.7,
        };
        (0..2)
            .map(|_| {
                rl::policy_update_on(
                    backend,
                    &policy,
                    Some(&reference),
                    &mut optimizer,
                    batch,
                    &loss,
                    2,
                    2,
                    1.0,
                )
                .unwrap()
            })
            .collect::<Vec<_>>()
    };
    let (candle, native) = (run(Backend::Candle), run(Backend::Native));
    for (c, n) in candle.iter().zip(&native) {
        assert_eq!(c.tokens, n.tokens);
        for (what, x, y) in [
            ("loss", c.loss, n.loss),
            ("kl", c.kl, n.kl),
            ("entropy", c.entropy, n.entropy),
            ("grad norm", c.grad_norm, n.grad_norm),
        ] {
            assert!(
                (x - y).abs() < 1e-4 * x.abs().max(1e-2),
                "{what}: {x} vs {y}"
            );
        }
    }
}

/// `--target trace` trains on the row's checked trace inside the think block; `--target answer`
/// on an empty one.
#[test]
fn the_trace_target_puts_the_trace_in_the_think_block() {
    use triad_trainer::sft::{Target, examples};
    let data = tasks("induction");
    let policy = small_policy(true, 3);
    let task = &data[0];
    assert!(task.trace.starts_with("Steps: "), "{:?}", task.trace);
    let one = std::slice::from_ref(task);
    for (target, trace) in [(Target::Trace, task.trace.as_str()), (Target::Answer, "")] {
        let made = examples(one, &policy.codec, usize::MAX, target).unwrap();
        let text = policy.codec.decode(&made[0].completion).unwrap();
        let want = triad_trainer::tokenizer::sft_target(&task.answer, trace, false);
        // Decoding drops the special end-of-turn token.
        assert_eq!(text, want.trim_end_matches("<|im_end|>"), "{target:?}");
    }
    let traced = triad_trainer::tokenizer::sft_target(&task.answer, &task.trace, false);
    assert!(traced.starts_with(&format!("<think>\n{}\n</think>\n<answer>\n", task.trace)));
}

#[test]
fn target_losses_are_each_tasks_own_sft_loss_and_average_to_the_step_loss() {
    let policy = small_policy(true, 6);
    // More than one loss batch, so padding across tasks of different lengths is exercised.
    let tasks: Vec<Task> = tasks("induction")
        .into_iter()
        .take(triad_trainer::eval::LOSS_BATCH + 3)
        .collect();
    let losses = triad_trainer::eval::target_losses(&policy, &tasks, sft::Target::Answer).unwrap();
    assert_eq!(losses.len(), tasks.len());
    let sequences: Vec<Sequence> = tasks
        .iter()
        .map(|t| sft::example(t, &policy.codec, sft::Target::Answer).unwrap())
        .collect();
    for ((loss, task), seq) in losses.iter().zip(&tasks).zip(&sequences) {
        assert_eq!(loss.id, task.id);
        assert_eq!(loss.tokens, seq.completion.len());
        assert!(
            loss.target.ends_with("</answer><|im_end|>"),
            "{}",
            loss.target
        );
        let alone = nll(&policy, &[seq]) / seq.completion.len() as f64;
        assert!((loss.nll - alone).abs() < 1e-4, "{} vs {alone}", loss.nll);
    }
    let refs: Vec<&Sequence> = sequences.iter().collect();
    let mut optimizer = AdamW::new(AdamWConfig::default());
    let (step_loss, _) = sft::step(&policy, &mut optimizer, &refs, 1, 0.0).unwrap();
    let tokens: usize = losses.iter().map(|l| l.tokens).sum();
    let mean = losses.iter().map(|l| l.nll * l.tokens as f64).sum::<f64>() / tokens as f64;
    assert!((mean - step_loss).abs() < 1e-4, "{mean} vs {step_loss}");
}
