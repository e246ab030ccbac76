//! Training curves as PNG (plotters, bitmap backend): SFT loss, RL reward and accuracy per step.
//!
//! Text needs a TrueType font: the first of `$TRIAD_PLOT_FONT` and the usual DejaVu / Liberation
//! paths that exists is used; with none, the curves are drawn without labels rather than failing.

use std::path::Path;

use plotters::prelude::*;

use crate::TrainError;
use crate::metrics::StepMetrics;

/// One panel: a title and named series of (x, y) points.
#[derive(Clone, Debug)]
pub struct Panel {
    /// Title.
    pub title: String,
    /// (name, points).
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
];

/// Register a font for plotters once; false when none was found.
fn font_available() -> bool {
    static FOUND: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FOUND.get_or_init(|| {
        let candidates = std::env::var("TRIAD_PLOT_FONT")
            .ok()
            .into_iter()
            .chain(FONT_PATHS.iter().map(|s| s.to_string()));
        for path in candidates {
            if let Ok(bytes) = std::fs::read(&path) {
                // plotters keeps fonts for the life of the process.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn plot_err(e: impl std::fmt::Display) -> TrainError {
    TrainError::Invalid(format!("plot: {e}"))
}

/// Draw `panels` side by side into a PNG at `path`.
pub fn draw(path: &Path, panels: &[Panel]) -> Result<(), TrainError> {
    if panels.is_empty() {
        return Err(TrainError::Invalid("plot: nothing to draw".into()));
    }
    let labelled = font_available();
    let width = 520 * panels.len() as u32;
    let root = BitMapBackend::new(path, (width, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let areas = root.split_evenly((1, panels.len()));
    for (panel, area) in panels.iter().zip(areas.iter()) {
        let points = panel.series.iter().flat_map(|s| s.1.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for (x, y) in points {
            x0 = x0.min(*x);
            x1 = x1.max(*x);
            y0 = y0.min(*y);
            y1 = y1.max(*y);
        }
        if x0 > x1 {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        if (x1 - x0).abs() < 1e-9 {
            x1 = x0 + 1.0;
        }
        let pad = ((y1 - y0).abs() * 0.05).max(1e-3);
        let mut builder = ChartBuilder::on(area);
        builder.margin(12);
        if labelled {
            builder
                .caption(&panel.title, ("sans-serif", 18))
                .x_label_area_size(30)
                .y_label_area_size(50);
        }
        let mut chart = builder
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
            .map_err(plot_err)?;
        let mut mesh = chart.configure_mesh();
        if labelled {
            mesh.x_desc("step");
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(plot_err)?;
        for (i, (name, data)) in panel.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let series = chart
                .draw_series(LineSeries::new(data.iter().copied(), color.stroke_width(2)))
                .map_err(plot_err)?;
            if labelled {
                series
                    .label(name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
            }
        }
        if labelled && panel.series.len() > 1 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(plot_err)?;
        }
    }
    root.present().map_err(plot_err)
}

/// The standard panels of a training log: SFT loss, RL reward, RL accuracy (those present).
pub fn training_panels(log: &[StepMetrics]) -> Vec<Panel> {
    runs_panels(&[(String::new(), log.to_vec())])
}

/// The standard panels of several runs' logs, one curve per run in each panel, each named by
/// its run (an SFT log and the RL log that continued it, or RL runs from the same start to
/// compare); runs without a panel's metric leave it out.
pub fn runs_panels(runs: &[(String, Vec<StepMetrics>)]) -> Vec<Panel> {
    let named = |run: &str, what: &str| {
        if run.is_empty() {
            what.to_string()
        } else {
            format!("{run}: {what}")
        }
    };
    let series = |log: &[StepMetrics], phase: &str, f: &dyn Fn(&StepMetrics) -> Option<f64>| {
        log.iter()
            .filter(|m| m.phase == phase)
            .filter_map(|m| f(m).map(|v| (m.step as f64, v)))
            .collect::<Vec<_>>()
    };
    let (mut loss, mut reward, mut accuracy) = (Vec::new(), Vec::new(), Vec::new());
    for (run, log) in runs {
        let sft = series(log, "sft", &|m| Some(m.loss));
        if !sft.is_empty() {
            loss.push((named(run, "loss"), sft));
        }
        let rl = series(log, "rl", &|m| m.reward_mean);
        if rl.is_empty() {
            continue;
        }
        reward.push((named(run, "reward"), smooth(&rl, 5)));
        let rate = |f: &dyn Fn(&StepMetrics) -> Option<f64>| smooth(&series(log, "rl", f), 5);
        accuracy.push((named(run, "accuracy"), rate(&|m| m.accuracy)));
        accuracy.push((
            named(run, "format failures"),
            rate(&|m| m.format_failure_rate),
        ));
    }
    [
        ("SFT loss", loss),
        ("RL reward (mean per step)", reward),
        ("RL accuracy / format failures", accuracy),
    ]
    .into_iter()
    .filter(|(_, series)| !series.is_empty())
    .map(|(title, series)| Panel {
        title: title.into(),
        series,
    })
    .collect()
}

/// Trailing moving average over `window` points.
pub fn smooth(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    points
        .iter()
        .enumerate()
        .map(|(i, (x, _))| {
            let from = (i + 1).saturating_sub(window.max(1));
            let slice = &points[from..=i];
            (
                *x,
                slice.iter().map(|p| p.1).sum::<f64>() / slice.len() as f64,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(phase: &str, step: u64, reward: Option<f64>) -> StepMetrics {
        StepMetrics {
            phase: phase.into(),
            step,
            loss: 1.0 / (step as f64 + 1.0),
            reward_mean: reward,
            accuracy: reward,
            format_failure_rate: reward.map(|_| 0.0),
            ..Default::default()
        }
    }

    /// Several logs give one curve per run in each panel (not one curve that jumps back to step
    /// 1 where the next log starts), named by run; a run without RL steps is left out of the RL
    /// panels.
    #[test]
    fn several_runs_give_one_named_curve_each() {
        let sft: Vec<_> = (1..=3).map(|i| step("sft", i, None)).collect();
        let rl = |r: f64| (1..=4).map(|i| step("rl", i, Some(r))).collect::<Vec<_>>();
        let runs = [
            ("sft3".to_string(), sft),
            ("rl-a".to_string(), rl(0.5)),
            ("rl-b".to_string(), rl(0.25)),
        ];
        let panels = runs_panels(&runs);
        let names =
            |k: usize| -> Vec<&str> { panels[k].series.iter().map(|(n, _)| n.as_str()).collect() };
        assert_eq!(panels.len(), 3);
        assert_eq!(names(0), ["sft3: loss"]);
        assert_eq!(names(1), ["rl-a: reward", "rl-b: reward"]);
        assert_eq!(
            names(2),
            [
                "rl-a: accuracy",
                "rl-a: format failures",
                "rl-b: accuracy",
                "rl-b: format failures"
            ]
        );
        assert!(panels[1].series.iter().all(|(_, s)| s.len() == 4));
        assert_eq!(panels[1].series[1].1[3], (4.0, 0.25));
        let single = training_panels(&runs[1].1);
        assert_eq!(single[0].series[0].0, "reward");
    }
}
