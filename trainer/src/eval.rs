//! Evaluation: greedy decoding on a split, scored by triad's scorer; accuracy and mean reward per
//! family and level.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::data::Task;
use crate::policy::Policy;
use crate::reward::{RewardSource, Rollout};
use crate::sample::greedy_batch;

/// One (family, level) cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRow {
    /// Family.
    pub family: String,
    /// Level.
    pub level: u8,
    /// Tasks evaluated.
    pub tasks: usize,
    /// Fraction answered correctly in the right format.
    pub accuracy: f64,
    /// Mean reward.
    pub mean_reward: f64,
    /// Fraction failing the format rule.
    pub format_failure_rate: f64,
}

/// An evaluation's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// One row per (family, level), sorted.
    pub rows: Vec<EvalRow>,
    /// Accuracy over all tasks.
    pub accuracy: f64,
    /// Mean reward over all tasks.
    pub mean_reward: f64,
    /// Tasks evaluated.
    pub tasks: usize,
    /// Generated tokens per second.
    pub tokens_per_s: f64,
}

impl EvalReport {
    /// Accuracy of one family (all its levels), if evaluated.
    pub fn family_accuracy(&self, family: &str) -> Option<f64> {
        let rows: Vec<_> = self.rows.iter().filter(|r| r.family == family).collect();
        let tasks: usize = rows.iter().map(|r| r.tasks).sum();
        (tasks > 0).then(|| {
            rows.iter()
                .map(|r| r.accuracy * r.tasks as f64)
                .sum::<f64>()
                / tasks as f64
        })
    }

    /// A Markdown table.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| family | level | tasks | accuracy | mean reward | format failures |\n|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            out.push_str(&format!(
                "| {} | {} | {} | {:.3} | {:.3} | {:.3} |\n",
                r.family, r.level, r.tasks, r.accuracy, r.mean_reward, r.format_failure_rate
            ));
        }
        out.push_str(&format!(
            "| all | | {} | {:.3} | {:.3} | |\n",
            self.tasks, self.accuracy, self.mean_reward
        ));
        out
    }
}

/// Greedy-decode every task and score it.
pub fn evaluate(
    policy: &Policy,
    tasks: &[Task],
    max_new_tokens: usize,
    rewards: &RewardSource,
) -> Result<EvalReport, TrainError> {
    let codec = &policy.codec;
    let started = Instant::now();
    let prompts: Vec<String> = tasks.iter().map(Task::prompt_text).collect();
    let ids = prompts
        .iter()
        .map(|p| codec.encode(p))
        .collect::<Result<Vec<_>, _>>()?;
    let completions = greedy_batch(policy, &ids, codec.eos, max_new_tokens)?;
    let generated: usize = completions.iter().map(Vec::len).sum();
    let texts = completions
        .iter()
        .map(|c| codec.decode(c))
        .collect::<Result<Vec<_>, _>>()?;
    let seconds = started.elapsed().as_secs_f64();
    let rollouts: Vec<Rollout> = tasks
        .iter()
        .zip(&texts)
        .zip(&prompts)
        .map(|((task, text), prompt)| Rollout {
            response: text,
            label: &task.label,
            prompt,
        })
        .collect();
    let scores = rewards.score(&rollouts)?;
    let mut cells: BTreeMap<(String, u8), Vec<&triad::reward::Score>> = BTreeMap::new();
    for (task, score) in tasks.iter().zip(&scores) {
        cells
            .entry((task.family.clone(), task.level))
            .or_default()
            .push(score);
    }
    let rows = cells
        .into_iter()
        .map(|((family, level), s)| {
            let n = s.len() as f64;
            EvalRow {
                family,
                level,
                tasks: s.len(),
                accuracy: s.iter().filter(|x| x.correct).count() as f64 / n,
                mean_reward: s.iter().map(|x| x.score).sum::<f64>() / n,
                format_failure_rate: s.iter().filter(|x| !x.format_ok).count() as f64 / n,
            }
        })
        .collect();
    let n = scores.len().max(1) as f64;
    Ok(EvalReport {
        rows,
        accuracy: scores.iter().filter(|s| s.correct).count() as f64 / n,
        mean_reward: scores.iter().map(|s| s.score).sum::<f64>() / n,
        tasks: scores.len(),
        tokens_per_s: generated as f64 / seconds.max(1e-9),
    })
}
