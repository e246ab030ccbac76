//! The pipeline's report: the paper-shaped table, its rows, and the training curves.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::config::{PipelineConfig, families};
use super::stages::Layout;
use crate::eval::{EvalReport, wilson_ci95};
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
    /// Each family's evaluated tasks and the 95% Wilson interval of its accuracy.
    #[serde(default)]
    pub family_cells: BTreeMap<String, Cell>,
    /// The domain set's.
    #[serde(default)]
    pub domain_cell: Cell,
}

/// The size and 95% interval of one accuracy in the table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Tasks evaluated.
    pub tasks: usize,
    /// Of which correct.
    pub correct: usize,
    /// 95% Wilson score interval of the accuracy.
    pub ci95: [f64; 2],
}

impl Cell {
    fn new(correct: usize, tasks: usize) -> Cell {
        Cell {
            tasks,
            correct,
            ci95: wilson_ci95(correct, tasks),
        }
    }

    /// Whether this accuracy's interval lies wholly above `other`'s.
    pub fn above(&self, other: &Cell) -> bool {
        self.tasks > 0 && other.tasks > 0 && self.ci95[0] > other.ci95[1]
    }
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
    /// A Markdown table shaped like the paper's Tables 1–2, then the same accuracies with their
    /// 95% intervals and item counts, and whether each specialist's interval clears the base's
    /// on its own family.
    pub fn markdown(&self) -> String {
        let mut out = self.accuracy_table();
        out.push_str(&self.interval_table());
        out.push_str(&self.specialist_verdicts());
        out
    }

    fn accuracy_table(&self) -> String {
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

    fn interval_table(&self) -> String {
        let families = families();
        let mut out =
            String::from("\nAccuracy, correct / tasks and 95% Wilson interval:\n\n| model |");
        for family in &families {
            out.push_str(&format!(" {family} |"));
        }
        out.push_str(" domain (held out) |\n|---|");
        out.push_str(&"---|".repeat(families.len() + 1));
        out.push('\n');
        let show = |c: &Cell| {
            format!(
                " {}/{} [{:.1}, {:.1}] |",
                c.correct,
                c.tasks,
                100.0 * c.ci95[0],
                100.0 * c.ci95[1]
            )
        };
        for r in &self.rows {
            out.push_str(&format!("| {} |", r.model));
            for family in &families {
                out.push_str(&show(
                    &r.family_cells.get(*family).copied().unwrap_or_default(),
                ));
            }
            out.push_str(&show(&r.domain_cell));
            out.push('\n');
        }
        out
    }

    fn specialist_verdicts(&self) -> String {
        let Some(base) = self.rows.iter().find(|r| r.model == "base") else {
            return String::new();
        };
        let mut out = String::from("\n");
        for family in families() {
            let name = format!("{family} specialist");
            let Some(specialist) = self.rows.iter().find(|r| r.model == name) else {
                continue;
            };
            let cell = |r: &ReportRow| r.family_cells.get(family).copied().unwrap_or_default();
            let verdict = if cell(specialist).above(&cell(base)) {
                "beats the base (intervals disjoint)"
            } else {
                "does not clear the base (intervals overlap)"
            };
            out.push_str(&format!("- {name} on {family}: {verdict}\n"));
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
    let family_cells = names
        .iter()
        .map(|f| {
            let (correct, tasks) = families.family_counts(f);
            (f.to_string(), Cell::new(correct, tasks))
        })
        .collect();
    let family_average = by_family.values().sum::<f64>() / names.len() as f64;
    let overall = (by_family.values().sum::<f64>() + domain.accuracy) / (names.len() + 1) as f64;
    ReportRow {
        model: model.into(),
        families: by_family,
        family_average,
        domain: domain.accuracy,
        overall,
        family_cells,
        domain_cell: Cell::new(domain.correct(), domain.tasks),
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
    let specialist_sft: Vec<(String, Vec<(f64, f64)>)> = families()
        .iter()
        .map(|f| {
            let stage = format!("specialist-{f}-sft");
            (
                f.to_string(),
                series(&stage, &|m| (m.phase == "sft").then_some(m.loss)),
            )
        })
        .filter(|(_, points)| !points.is_empty())
        .collect();
    if !specialist_sft.is_empty() {
        panels.push(Panel {
            title: "specialists: SFT loss".into(),
            series: specialist_sft,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(model: &str, deduction: (usize, usize)) -> ReportRow {
        let mut family_cells = BTreeMap::new();
        let mut families = BTreeMap::new();
        for family in self::families() {
            let (correct, tasks) = if family == "deduction" {
                deduction
            } else {
                (0, 10)
            };
            family_cells.insert(family.to_string(), Cell::new(correct, tasks));
            families.insert(family.to_string(), correct as f64 / tasks as f64);
        }
        ReportRow {
            model: model.into(),
            families,
            family_average: 0.0,
            domain: 0.0,
            overall: 0.0,
            family_cells,
            domain_cell: Cell::new(1, 10),
        }
    }

    #[test]
    fn a_specialist_beats_the_base_only_when_the_intervals_are_disjoint() {
        // 30/300 against 60/300: [7.1, 13.9]% and [15.9, 24.9]%, disjoint.
        assert!(Cell::new(60, 300).above(&Cell::new(30, 300)));
        // 30/100 against 20/100: [21.9, 39.6]% and [13.3, 28.9]%, overlapping, though higher.
        assert!(!Cell::new(30, 100).above(&Cell::new(20, 100)));
        // Nothing evaluated clears nothing.
        assert!(!Cell::new(0, 0).above(&Cell::new(0, 10)));
    }

    #[test]
    fn the_report_shows_each_cells_count_interval_and_the_verdicts() {
        let config: PipelineConfig =
            toml::from_str(include_str!("../../pipeline.toml")).expect("checked-in config");
        let report = PipelineReport {
            rows: vec![
                row("base", (30, 300)),
                row("deduction specialist", (60, 300)),
                row("induction specialist", (0, 10)),
            ],
            config,
        };
        let text = report.markdown();
        assert!(text.contains("| base | 30/300 [7.1, 13.9] |"), "{text}");
        assert!(
            text.contains("| deduction specialist | 60/300 [15.9, 24.9] |"),
            "{text}"
        );
        assert!(
            text.contains("- deduction specialist on deduction: beats the base"),
            "{text}"
        );
        assert!(
            text.contains("- induction specialist on induction: does not clear"),
            "{text}"
        );
        // No abduction specialist row, no verdict about one.
        assert!(!text.contains("abduction specialist on"), "{text}");
    }
}
