//! The paper's recipe end to end, as one command: a base model (fresh with SFT warm-up on all
//! three families, or a local Hugging Face model), one specialist per family (optionally SFT on
//! its family, [`SpecialistSftConfig`], then RL with the level curriculum), a weighted merge of the three, then "domain" RL from the merged model and, as the
//! control, from the base model, on a held-out task set; evaluation after every stage and a report
//! shaped like the paper's Tables 1 and 2, with each cell's 95% interval.
//!
//! Every stage writes into its own directory under `out` and is skipped when its output is
//! already there (a re-run resumes an interrupted stage from its checkpoint and skips finished
//! ones). Stage seeds derive from the one seed in the configuration.

mod config;
mod report;
mod stages;

use std::path::Path;

use candle_core::Device;
use triad::generators::Split;

use crate::TrainError;
use crate::reward::RewardSource;

pub use config::{
    BaseConfig, DataConfig, DomainConfig, MergeConfig, PipelineConfig, RlStageConfig,
    SpecialistSftConfig, families,
};
pub use report::{Cell, PipelineReport, ReportRow};
use report::{curves, report_row};
use stages::{
    Layout, evaluate_stage, log, make_base, make_data, merge_stage, rl_options, rl_stage, select,
    sft_stage, specialist_sft_options,
};

/// Run (or finish) the pipeline into `out`.
pub fn run(
    config: &PipelineConfig,
    out: &Path,
    device: &Device,
) -> Result<PipelineReport, TrainError> {
    config.validate()?;
    let layout = Layout {
        root: out.to_path_buf(),
    };
    std::fs::create_dir_all(out).map_err(|e| TrainError::io(out, e))?;
    std::fs::write(
        out.join("pipeline.json"),
        serde_json::to_string_pretty(config).expect("json"),
    )
    .map_err(|e| TrainError::io(out, e))?;
    let rewards = RewardSource::InProcess(config.reward);
    log("data");
    make_data(config, &layout)?;
    let base = make_base(config, &layout, device)?;
    let mut rows = Vec::new();
    let (f, d) = evaluate_stage("base", &base, config, &layout, &rewards, device)?;
    rows.push(report_row("base", &f, &d));

    let mut specialists = Vec::new();
    for (i, family) in families().into_iter().enumerate() {
        let tasks = select(&layout, Split::Train, &[family], &config.levels, None)?;
        let name = format!("specialist-{family}");
        let seed = config.seed + 1 + i as u64;
        // The family's supervised stage, where configured, then its RL from that model.
        let start = match specialist_sft_options(config, family, seed) {
            Some(options) => {
                let sft_name = format!("{name}-sft");
                let dir = sft_stage(&sft_name, &base, &tasks, &options, &layout, device)?;
                let (f, d) = evaluate_stage(&sft_name, &dir, config, &layout, &rewards, device)?;
                rows.push(report_row(
                    &format!("{family} specialist, SFT only"),
                    &f,
                    &d,
                ));
                dir
            }
            None => base.clone(),
        };
        let options = rl_options(&config.specialist, &start, config.levels.clone(), seed)?;
        let dir = rl_stage(&name, &start, &tasks, &options, &rewards, &layout, device)?;
        let (f, d) = evaluate_stage(&name, &dir, config, &layout, &rewards, device)?;
        rows.push(report_row(&format!("{family} specialist"), &f, &d));
        specialists.push(dir);
    }

    let merged = layout.stage("merged");
    let weights: Vec<f64> = families()
        .iter()
        .map(|f| config.merge.weights[*f])
        .collect();
    merge_stage(&merged, &specialists, &weights, config.merge.normalize)?;
    let (f, d) = evaluate_stage("merged", &merged, config, &layout, &rewards, device)?;
    rows.push(report_row("merged", &f, &d));

    let domain_families: Vec<&str> = config.domain.families.iter().map(String::as_str).collect();
    let domain_tasks = select(
        &layout,
        Split::Train,
        &domain_families,
        &config.domain.levels,
        None,
    )?;
    for (name, start, label) in [
        ("domain-from-base", &base, "domain RL from base"),
        ("domain-from-merged", &merged, "domain RL from merged"),
    ] {
        // Both runs see the same prompts and draws: only the starting model differs.
        let options = rl_options(
            &config.domain.rl,
            start,
            config.domain.levels.clone(),
            config.seed + 10,
        )?;
        let dir = rl_stage(
            name,
            start,
            &domain_tasks,
            &options,
            &rewards,
            &layout,
            device,
        )?;
        let (f, d) = evaluate_stage(name, &dir, config, &layout, &rewards, device)?;
        rows.push(report_row(label, &f, &d));
    }

    let report = PipelineReport {
        rows,
        config: config.clone(),
    };
    std::fs::write(out.join("report.md"), report.markdown()).map_err(|e| TrainError::io(out, e))?;
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&report).expect("json"),
    )
    .map_err(|e| TrainError::io(out, e))?;
    crate::plot::draw(&out.join("curves.png"), &curves(&layout))?;
    Ok(report)
}
