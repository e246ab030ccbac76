//! Scoring JSONL files of rollouts: one result line per input line, in order, in parallel.
//!
//! Input lines are `{"response": "...", "label": <label>, "prompt": ...?}` where the label is a
//! string (triad label JSON or a paper label) or the paper's `ground_truth` object, and the prompt
//! is a string or a list of chat messages. A line that is not such JSON — random bytes, invalid
//! UTF-8, a line longer than the line limit — scores the preset's minimum with reason
//! `bad_input`; every other line is scored, in order, and nothing aborts the run. Lines are read
//! as bytes, and a line over the limit is skipped without being held in memory.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, Write};

use rayon::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use crate::reward::{self, FailureKind, Preset, Score};

/// Lines scored per parallel chunk (bounds memory on huge files).
const CHUNK_LINES: usize = 16_384;

/// Default longest input line, in bytes (64 MiB, the reward server's body limit): longer lines
/// score as `bad_input` and are skipped without being buffered.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 << 20;

/// One line of input as read: its bytes, or how long it was when it exceeded the limit.
enum Line {
    Bytes(Vec<u8>),
    TooLong(u64),
}

/// Read one line (without its `\n` or `\r\n`), keeping at most `max` bytes of it; `None` at the
/// end of input.
fn read_line(input: &mut impl BufRead, max: usize) -> std::io::Result<Option<Line>> {
    let mut kept = Vec::new();
    let mut length = 0u64;
    let mut any = false;
    loop {
        let buffer = match input.fill_buf() {
            Ok(buffer) => buffer,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buffer.is_empty() {
            break;
        }
        any = true;
        let (piece, done) = match memchr::memchr(b'\n', buffer) {
            Some(at) => (&buffer[..at], Some(at + 1)),
            None => (buffer, None),
        };
        length += piece.len() as u64;
        if length <= max as u64 {
            kept.extend_from_slice(piece);
        }
        let used = done.unwrap_or(buffer.len());
        input.consume(used);
        if done.is_some() {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if length > max as u64 {
        return Ok(Some(Line::TooLong(length)));
    }
    if kept.last() == Some(&b'\r') {
        kept.pop();
    }
    Ok(Some(Line::Bytes(kept)))
}

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

/// Score one JSONL line given as bytes: invalid UTF-8 is `bad_input`.
pub fn score_line_bytes(line: &[u8], preset: Preset) -> Score {
    match std::str::from_utf8(line) {
        Ok(text) => score_line(text, preset),
        Err(e) => Score::failure(
            preset,
            FailureKind::BadInput,
            format!("line is not UTF-8: {e}"),
        ),
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
        Err(e) => Score::failure(preset, FailureKind::BadInput, e),
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
        tally.format_failures += u64::from(score.failure_kind() == Some(FailureKind::Format));
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

/// Score every line of `input` to `output`, in order, with the default line limit; returns the
/// summary.
pub fn score_stream(
    input: impl BufRead,
    output: impl Write,
    preset: Preset,
) -> std::io::Result<Summary> {
    score_stream_with_limit(input, output, preset, DEFAULT_MAX_LINE_BYTES)
}

/// Score every line of `input` to `output`, in order; a line longer than `max_line_bytes` scores
/// as `bad_input`. Returns the summary. Only reading or writing failures are errors.
pub fn score_stream_with_limit(
    mut input: impl BufRead,
    mut output: impl Write,
    preset: Preset,
    max_line_bytes: usize,
) -> std::io::Result<Summary> {
    let mut summary = Summary::default();
    loop {
        let mut chunk = Vec::new();
        while chunk.len() < CHUNK_LINES {
            match read_line(&mut input, max_line_bytes)? {
                Some(line) => chunk.push(line),
                None => break,
            }
        }
        if chunk.is_empty() {
            break;
        }
        let scores: Vec<Score> = chunk
            .par_iter()
            .map(|line| match line {
                Line::Bytes(bytes) => score_line_bytes(bytes, preset),
                Line::TooLong(length) => Score::failure(
                    preset,
                    FailureKind::BadInput,
                    format!("line of {length} bytes, over the limit of {max_line_bytes}"),
                ),
            })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<String> {
        let mut reader = std::io::BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        while let Some(line) = read_line(&mut reader, max).unwrap() {
            out.push(match line {
                Line::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                Line::TooLong(n) => format!("<{n}>"),
            });
        }
        out
    }

    #[test]
    fn lines_are_bytes_bounded_and_end_like_lines() {
        assert_eq!(lines(b"a\nbb\r\n\nccc", 8), ["a", "bb", "", "ccc"]);
        assert_eq!(
            lines(b"short\nmuch too long\nok\n", 6),
            ["short", "<13>", "ok"]
        );
        assert_eq!(lines(b"", 8), Vec::<String>::new());
        assert_eq!(lines(b"\xff\xfe\n", 8).len(), 1);
    }
}
