//! Evaluation: greedy decoding on a split, scored by triad's scorer; accuracy and mean reward per
//! family and level.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::batch::Sequence;
use crate::data::Task;
use crate::objective::{self, Backend};
use crate::policy::Policy;
use crate::reward::{RewardSource, Rollout};
use crate::sample::greedy_batch;
use crate::sft::{self, Target};

/// Sequences per teacher-forced pass in [`target_losses`].
pub const LOSS_BATCH: usize = 8;

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
    /// 95% Wilson score interval of `accuracy` (reports written before it read as `[0, 1]`).
    #[serde(default = "unknown_interval")]
    pub accuracy_ci95: [f64; 2],
}

impl EvalRow {
    /// Correct answers (accuracy × tasks: the JSON keeps the fraction, whose product with the
    /// count is within rounding of a whole number).
    pub fn correct(&self) -> usize {
        (self.accuracy * self.tasks as f64).round() as usize
    }
}

fn unknown_interval() -> [f64; 2] {
    [0.0, 1.0]
}

/// The 95% Wilson score interval of `correct` successes in `n` trials (`[0, 1]` when `n` is 0):
/// unlike the normal approximation it stays inside `[0, 1]` and is honest near 0% and 100%.
pub fn wilson_ci95(correct: usize, n: usize) -> [f64; 2] {
    if n == 0 {
        return [0.0, 1.0];
    }
    const Z: f64 = 1.959_963_984_540_054;
    let (k, n) = (correct as f64, n as f64);
    let p = k / n;
    let centre = (p + Z * Z / (2.0 * n)) / (1.0 + Z * Z / n);
    let half = Z / (1.0 + Z * Z / n) * (p * (1.0 - p) / n + Z * Z / (4.0 * n * n)).sqrt();
    [(centre - half).max(0.0), (centre + half).min(1.0)]
}

/// One evaluated task: what the model answered and how it scored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalSample {
    /// Row id.
    pub id: String,
    /// Family.
    pub family: String,
    /// Level.
    pub level: u8,
    /// The greedy response.
    pub response: String,
    /// Its reward.
    pub score: f64,
    /// Whether it was correct.
    pub correct: bool,
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
    /// Every task's response and score, in task order (not in the JSON report: `eval
    /// --responses FILE` writes them as JSON lines).
    #[serde(skip)]
    pub samples: Vec<EvalSample>,
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

    /// Correct answers and tasks of one family (all its levels).
    pub fn family_counts(&self, family: &str) -> (usize, usize) {
        self.rows
            .iter()
            .filter(|r| r.family == family)
            .fold((0, 0), |(correct, tasks), r| {
                (correct + r.correct(), tasks + r.tasks)
            })
    }

    /// Correct answers over all tasks.
    pub fn correct(&self) -> usize {
        self.rows.iter().map(EvalRow::correct).sum()
    }

    /// A Markdown table.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| family | level | tasks | accuracy | 95% CI | mean reward | format failures |\n|---|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            out.push_str(&format!(
                "| {} | {} | {} | {:.3} | [{:.3}, {:.3}] | {:.3} | {:.3} |\n",
                r.family,
                r.level,
                r.tasks,
                r.accuracy,
                r.accuracy_ci95[0],
                r.accuracy_ci95[1],
                r.mean_reward,
                r.format_failure_rate
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
            let correct = s.iter().filter(|x| x.correct).count();
            EvalRow {
                family,
                level,
                tasks: s.len(),
                accuracy: correct as f64 / n,
                accuracy_ci95: wilson_ci95(correct, s.len()),
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
        samples: tasks
            .iter()
            .zip(texts)
            .zip(&scores)
            .map(|((task, response), score)| EvalSample {
                id: task.id.clone(),
                family: task.family.clone(),
                level: task.level,
                response,
                score: score.score,
                correct: score.correct,
            })
            .collect(),
    })
}

/// One task's teacher-forced loss on its SFT target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetLoss {
    /// Row id.
    pub id: String,
    /// Family.
    pub family: String,
    /// Level.
    pub level: u8,
    /// The target text (what `triad-train sft --target` trains on, end-of-turn token included).
    pub target: String,
    /// Its length in tokens.
    pub tokens: usize,
    /// Mean negative log-likelihood per target token given the prompt, at temperature 1.
    pub nll: f64,
}

/// The SFT loss of every task that fits the model, task by task: what another framework
/// loading the checkpoint must reproduce (`integrations/ecosystem/check.py` compares it with
/// transformers). Tasks longer than the model's positions are left out.
pub fn target_losses(
    policy: &Policy,
    tasks: &[Task],
    target: Target,
) -> Result<Vec<TargetLoss>, TrainError> {
    let max_positions = policy.model.config().max_position_embeddings;
    let mut fitting: Vec<(&Task, Sequence)> = Vec::with_capacity(tasks.len());
    for task in tasks {
        let sequence = sft::example(task, &policy.codec, target)?;
        if sequence.prompt.len() + sequence.completion.len() <= max_positions {
            fitting.push((task, sequence));
        }
    }
    let mut out = Vec::with_capacity(fitting.len());
    for chunk in fitting.chunks(LOSS_BATCH) {
        let batch: Vec<&Sequence> = chunk.iter().map(|(_, s)| s).collect();
        let log_probs = objective::log_probs(policy, &batch, 1.0, Backend::for_policy(policy))?;
        let mut offset = 0;
        for (task, sequence) in chunk {
            let n = sequence.completion.len();
            let sum: f64 = log_probs[offset..offset + n]
                .iter()
                .map(|&l| f64::from(l))
                .sum();
            offset += n;
            out.push(TargetLoss {
                id: task.id.clone(),
                family: task.family.clone(),
                level: task.level,
                target: sft::target_text(task, target),
                tokens: n,
                nll: -sum / n.max(1) as f64,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::wilson_ci95;

    #[test]
    fn wilson_intervals_match_the_textbook_values() {
        let close =
            |a: [f64; 2], b: [f64; 2]| (a[0] - b[0]).abs() < 1e-4 && (a[1] - b[1]).abs() < 1e-4;
        // Reference values: Wilson (1927) score interval, z = 1.96.
        assert!(
            close(wilson_ci95(5, 10), [0.2366, 0.7634]),
            "{:?}",
            wilson_ci95(5, 10)
        );
        assert!(
            close(wilson_ci95(0, 10), [0.0, 0.2775]),
            "{:?}",
            wilson_ci95(0, 10)
        );
        assert!(
            close(wilson_ci95(10, 10), [0.7225, 1.0]),
            "{:?}",
            wilson_ci95(10, 10)
        );
        assert!(
            close(wilson_ci95(51, 475), [0.0826, 0.1384]),
            "{:?}",
            wilson_ci95(51, 475)
        );
        assert_eq!(wilson_ci95(0, 0), [0.0, 1.0]);
    }
}
