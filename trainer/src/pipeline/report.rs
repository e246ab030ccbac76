//! The pipeline's report: the paper-shaped table, its rows, and the training curves.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::config::{PipelineConfig, families};
use super::stages::Layout;
use crate::eval::EvalReport;
use crate::metrics;
use crate::plot::{Panel, smooth};

/// One row of the final table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportRow {
    /// The model (`base`, `deduction specialist`, …).
    pub model: String,
    /// Test accuracy per family at the curriculum levels.
    pub families: BTreeMap<String, f64>,
    /// Mean of the family accuracies.
    pub family_average: f64,
    /// Accuracy on the held-out domain set.
    pub domain: f64,
    /// Mean of the three families and the domain set.
    pub overall: f64,
}

/// The pipeline's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PipelineReport {
    /// Rows in the paper's order.
    pub rows: Vec<ReportRow>,
    /// The configuration that produced it.
    pub config: PipelineConfig,
}

impl PipelineReport {
    /// A Markdown table shaped like the paper's Tables 1–2.
    pub fn markdown(&self) -> String {
        let families = families();
        let mut out = String::from("| model |");
        for family in &families {
            out.push_str(&format!(" {family} |"));
        }
        out.push_str(" family avg | domain (held out) | overall avg |\n|---|");
        out.push_str(&"---|".repeat(families.len() + 3));
        out.push('\n');
        for r in &self.rows {
            out.push_str(&format!("| {} |", r.model));
            for family in &families {
                let accuracy = r.families.get(*family).copied().unwrap_or(0.0);
                out.push_str(&format!(" {accuracy:.3} |"));
            }
            out.push_str(&format!(
                " {:.3} | {:.3} | {:.3} |\n",
                r.family_average, r.domain, r.overall
            ));
        }
        out
    }
}

/// The report row of a model's two evaluations.
pub(super) fn report_row(model: &str, families: &EvalReport, domain: &EvalReport) -> ReportRow {
    let names = self::families();
    let by_family: BTreeMap<String, f64> = names
        .iter()
        .map(|f| (f.to_string(), families.family_accuracy(f).unwrap_or(0.0)))
        .collect();
    let family_average = by_family.values().sum::<f64>() / names.len() as f64;
    let overall = (by_family.values().sum::<f64>() + domain.accuracy) / (names.len() + 1) as f64;
    ReportRow {
        model: model.into(),
        families: by_family,
        family_average,
        domain: domain.accuracy,
        overall,
    }
}

/// The training curves: SFT loss, each specialist's reward, both domain runs' reward.
pub(super) fn curves(layout: &Layout) -> Vec<Panel> {
    let series = |stage: &str, pick: &dyn Fn(&metrics::StepMetrics) -> Option<f64>| {
        let log = metrics::read(&layout.stage(stage).join("metrics.jsonl")).unwrap_or_default();
        let points: Vec<(f64, f64)> = log
            .iter()
            .filter_map(|m| pick(m).map(|v| (m.step as f64, v)))
            .collect();
        smooth(&points, 5)
    };
    let mut panels = Vec::new();
    let sft = series("base", &|m| (m.phase == "sft").then_some(m.loss));
    if !sft.is_empty() {
        panels.push(Panel {
            title: "base: SFT loss".into(),
            series: vec![("loss".into(), sft)],
        });
    }
    panels.push(Panel {
        title: "specialists: RL reward".into(),
        series: families()
            .iter()
            .map(|f| {
                (
                    f.to_string(),
                    series(&format!("specialist-{f}"), &|m| m.reward_mean),
                )
            })
            .collect(),
    });
    panels.push(Panel {
        title: "domain RL: reward".into(),
        series: vec![
            (
                "from base".into(),
                series("domain-from-base", &|m| m.reward_mean),
            ),
            (
                "from merged".into(),
                series("domain-from-merged", &|m| m.reward_mean),
            ),
        ],
    });
    panels
}
