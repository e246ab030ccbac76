//! `triad-train` as a command: every subcommand, remote rewards from a real `triad serve`, and the
//! whole pipeline.

use super::*;

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
                "--losses",
                &p("losses.jsonl"),
                "--target",
                "trace",
            ],
            &common[..],
        ]
        .concat(),
    );
    assert!(table.contains("| induction | 1 | 10 |"), "{table}");
    let report: triad_trainer::eval::EvalReport =
        serde_json::from_str(&std::fs::read_to_string(p("eval.json")).unwrap()).unwrap();
    assert_eq!(report.tasks, 10);
    let losses: Vec<triad_trainer::eval::TargetLoss> = std::fs::read_to_string(p("losses.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(losses.len(), 10);
    assert!(
        losses.iter().all(|l| l.nll.is_finite()
            && l.nll > 0.0
            && !l.target.starts_with("<think>\n</think>")),
        "--target trace scores the reasoning trace too"
    );
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
prompt_style = "compact"
[base]
init = "micro"
vocab_size = 500
max_positions = 1024
sft_steps = 2
sft_batch_size = 4
sft_target = "trace"
[specialist_sft]
steps = { induction = 2 }
batch_size = 4
target = "trace"
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
            "induction specialist, SFT only",
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
        "specialist-induction-sft",
        "specialist-induction",
        "merged",
        "domain-from-merged",
    ] {
        assert!(a.join(stage).join("model.safetensors").exists(), "{stage}");
    }
    // Only the family given SFT steps has a supervised stage; the others are RL from the base.
    assert!(!a.join("specialist-deduction-sft").exists());
    let sft_log =
        std::fs::read_to_string(a.join("specialist-induction-sft/metrics.jsonl")).unwrap();
    assert_eq!(sft_log.lines().filter(|l| l.contains("\"sft\"")).count(), 2);
    // The induction specialist's RL starts from its SFT stage, the deduction one's from the base.
    let input = |stage: &str| std::fs::read_to_string(a.join(stage).join("input.sha256")).unwrap();
    assert_eq!(
        input("specialist-deduction"),
        input("specialist-induction-sft")
    );
    assert_ne!(input("specialist-induction"), input("specialist-deduction"));
    // Every cell of the report carries its size and 95% interval.
    for row in &report.rows {
        for family in ["deduction", "induction", "abduction"] {
            let cell = row.family_cells[family];
            assert_eq!(cell.tasks, 2, "{} {family}", row.model);
            assert!(cell.ci95[0] <= row.families[family] && row.families[family] <= cell.ci95[1]);
        }
        assert_eq!(row.domain_cell.tasks, 6);
    }
    let markdown = std::fs::read_to_string(a.join("report.md")).unwrap();
    assert!(markdown.contains("95% Wilson interval"), "{markdown}");
    assert!(
        markdown.contains("- induction specialist on induction: "),
        "{markdown}"
    );
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

    // More steps asked of a finished stage: it continues from its checkpoint, to the weights a
    // fresh run of that many steps writes, and the stages after it run again.
    let weights = |dir: &std::path::Path, stage: &str| {
        std::fs::read(dir.join(stage).join("model.safetensors")).unwrap()
    };
    let mut longer = config.clone();
    longer.base.sft_steps = 3;
    triad_trainer::pipeline::run(&longer, &a, &Device::Cpu).unwrap();
    let c = work.path().join("c");
    triad_trainer::pipeline::run(&longer, &c, &Device::Cpu).unwrap();
    for stage in [
        "base",
        "specialist-induction-sft",
        "merged",
        "domain-from-base",
    ] {
        assert!(weights(&a, stage) == weights(&c, stage), "{stage}");
        assert!(weights(&a, stage) != weights(&b, stage), "{stage}");
    }
    // Fewer steps than the output holds, or other options: the stage runs again rather than
    // keeping output the configuration would not make (or refusing the directory).
    triad_trainer::pipeline::run(&config, &a, &Device::Cpu).unwrap();
    assert!(weights(&a, "base") == weights(&b, "base"));
    let mut other = config.clone();
    other.specialist.lr = Some(1e-3);
    triad_trainer::pipeline::run(&other, &a, &Device::Cpu).unwrap();
    assert!(weights(&a, "specialist-deduction") != weights(&b, "specialist-deduction"));
    assert!(weights(&a, "specialist-induction-sft") == weights(&b, "specialist-induction-sft"));
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
    // A specialist SFT stage for a family that does not exist is refused, not ignored.
    std::fs::write(
        bad.path(),
        SMALL_PIPELINE.replace("steps = { induction = 2 }", "steps = { indukshun = 2 }"),
    )
    .unwrap();
    let err = triad_trainer::pipeline::PipelineConfig::read(bad.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("indukshun"), "{err}");
    // The checked-in run trains every specialist on its family before its RL, on compact prompts.
    let sft = config.specialist_sft.as_ref().unwrap();
    for family in triad_trainer::pipeline::families() {
        assert!(sft.steps_of(family) > 0, "{family}");
    }
    assert_eq!(
        config.data.prompt_style,
        triad::generators::PromptStyle::Compact
    );
}

/// `rl --online`: fresh tasks each step, the session saved beside the checkpoints, and a run
/// resumed from its checkpoint continues the same session (its cursors move on from where they
/// were, so no task repeats).
#[test]
fn online_rl_draws_fresh_tasks_and_resumes_its_session() {
    let data = dataset().to_str().unwrap();
    let work = tempfile::tempdir().unwrap();
    let p = |name: &str| work.path().join(name).to_str().unwrap().to_string();
    train_cli(&[
        "init",
        "--size",
        "tiny",
        "--out",
        &p("base"),
        "--data",
        data,
    ]);
    let rl = |steps: &str| {
        train_cli(&[
            "rl",
            "--online",
            "--families",
            "deduction,induction",
            "--model",
            &p("base"),
            "--out",
            &p("rl"),
            "--steps",
            steps,
            "--prompts",
            "4",
            "--rollouts",
            "2",
            "--max-new-tokens",
            "8",
            "--save-every",
            "1",
        ])
    };
    let session = |text: &str| -> serde_json::Value { serde_json::from_str(text).unwrap() };
    let log = rl("2");
    assert!(log.contains("frontier deduction 1, induction 1"), "{log}");
    let first = session(&std::fs::read_to_string(work.path().join("rl/session.json")).unwrap());
    let cursors = |s: &serde_json::Value, key: &str| s["cursors"][key].as_u64().unwrap();
    let key = "deduction/1/train/0/chat";
    assert!(cursors(&first, key) >= 4, "{first}");
    let log = rl("3");
    assert!(log.contains("resuming RL from step 2"), "{log}");
    let second = session(&std::fs::read_to_string(work.path().join("rl/session.json")).unwrap());
    assert!(cursors(&second, key) > cursors(&first, key), "{second}");
    let scored = |s: &serde_json::Value| {
        s["families"]["deduction"]["levels"]["1"]["scored"]
            .as_u64()
            .unwrap()
    };
    // 2 prompts of deduction a step, 2 rollouts each: 8 scored after 2 steps, 12 after 3.
    assert_eq!((scored(&first), scored(&second)), (8, 12));
    let metrics = std::fs::read_to_string(work.path().join("rl/metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 3);
    // Bad combinations are refused with a reason.
    let output = Command::new(env!("CARGO_BIN_EXE_triad-train"))
        .args([
            "rl",
            "--online",
            "--data",
            data,
            "--model",
            &p("base"),
            "--out",
            &p("x"),
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("leave out --data"));
}
