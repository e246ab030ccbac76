//! Scoring JSONL files of rollouts: one result line per input line, in order, in parallel.
//!
//! Input lines are `{"response": "...", "label": <label>, "prompt": ...?}` where the label is a
//! string (triad label JSON or a paper label) or the paper's `ground_truth` object, and the prompt
//! is a string or a list of chat messages. A line that is not such JSON scores the preset's
//! minimum with reason `bad_input`; nothing aborts the run.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, Write};

use rayon::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use crate::reward::{self, Preset, Score};

/// Lines scored per parallel chunk (bounds memory on huge files).
const CHUNK_LINES: usize = 16_384;

#[derive(Deserialize)]
struct Rollout {
    response: String,
    label: Value,
    #[serde(default)]
    prompt: Option<Value>,
}

/// A label field as the text `reward::score` takes: strings as they are, objects (the paper's
/// `ground_truth` struct, a triad label as JSON) re-serialized.
pub(crate) fn label_text(label: &Value) -> String {
    match label {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The text a prompt ends with: a string as is, or the content of the last chat message.
pub(crate) fn prompt_text(prompt: &Value) -> Option<&str> {
    match prompt {
        Value::String(s) => Some(s),
        Value::Array(messages) => messages.last()?.get("content")?.as_str(),
        _ => None,
    }
}

/// Score one JSONL line.
pub fn score_line(line: &str, preset: Preset) -> Score {
    match serde_json::from_str::<Rollout>(line) {
        Ok(rollout) => {
            let prompt = rollout.prompt.as_ref().and_then(prompt_text);
            reward::score(
                &rollout.response,
                &label_text(&rollout.label),
                prompt,
                preset,
            )
        }
        Err(e) => Score::failure(preset, "bad_input", e),
    }
}

/// Per family and level tallies.
#[derive(Default, Debug, Clone, PartialEq)]
pub struct Tally {
    /// Rollouts.
    pub count: u64,
    /// Correct ones.
    pub correct: u64,
    /// Sum of scores.
    pub score_sum: f64,
    /// Format failures.
    pub format_failures: u64,
}

/// What a scoring run saw.
#[derive(Default, Debug, Clone, PartialEq)]
pub struct Summary {
    /// Tallies keyed by (family, level); bad input and bad labels under ("-", None).
    pub groups: BTreeMap<(String, Option<u8>), Tally>,
}

impl Summary {
    fn add(&mut self, score: &Score) {
        let key = (
            score.family.clone().unwrap_or_else(|| "-".into()),
            score.level,
        );
        let tally = self.groups.entry(key).or_default();
        tally.count += 1;
        tally.correct += u64::from(score.correct);
        tally.score_sum += score.score;
        tally.format_failures += u64::from(
            score
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with("format")),
        );
    }

    /// Rollouts scored in all.
    pub fn total(&self) -> u64 {
        self.groups.values().map(|t| t.count).sum()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<12} {:>5} {:>9} {:>9} {:>11} {:>12}",
            "family", "level", "rollouts", "accuracy", "mean reward", "format fail"
        )?;
        for ((family, level), t) in &self.groups {
            let n = t.count.max(1) as f64;
            let level = level.map_or("-".to_string(), |l| l.to_string());
            writeln!(
                f,
                "{family:<12} {level:>5} {:>9} {:>8.1}% {:>11.3} {:>11.1}%",
                t.count,
                100.0 * t.correct as f64 / n,
                t.score_sum / n,
                100.0 * t.format_failures as f64 / n
            )?;
        }
        Ok(())
    }
}

/// Score every line of `input` to `output`, in order; returns the summary.
pub fn score_stream(
    input: impl BufRead,
    mut output: impl Write,
    preset: Preset,
) -> std::io::Result<Summary> {
    let mut summary = Summary::default();
    let mut lines = input.lines();
    loop {
        let chunk: Vec<String> = lines.by_ref().take(CHUNK_LINES).collect::<Result<_, _>>()?;
        if chunk.is_empty() {
            break;
        }
        let scores: Vec<Score> = chunk
            .par_iter()
            .map(|line| score_line(line, preset))
            .collect();
        for score in &scores {
            serde_json::to_writer(&mut output, score)?;
            output.write_all(b"\n")?;
            summary.add(score);
        }
    }
    output.flush()?;
    Ok(summary)
}
