//! Scoring model rollouts: locate the answer, check the format, judge, apply a reward preset.
//!
//! The pipeline is a chain of plain functions: [`check_format`] (the paper's rule: each of
//! `<think>`, `</think>`, `<answer>`, `</answer>` exactly once and in that order, counting a
//! `<think>` pre-filled at the end of the prompt) → [`extract_answer`] (the last answer block) →
//! the family's strict parse-and-judge → [`Preset`]. Tags are found with `memchr`'s substring
//! search, so a multi-megabyte response costs one linear scan per tag and no per-byte allocation.

use memchr::memmem;
use serde::{Deserialize, Serialize};
use triad_generators::{Label, TraceProgress, Verdict};

/// A reward preset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// The paper's (Logic-RL's) reward: format ±1, answer +2 correct / −1.5 wrong / −2
    /// unparseable or unchecked; totals 3, −0.5, −1, −3.
    #[default]
    Paper,
    /// 1 when the format is right and the answer correct, else 0.
    Binary,
    /// Shaped, not the paper's: 1 when the format is right and the answer correct; otherwise,
    /// with the format right, 0.5 × the share of the family's own trace that the response's
    /// think block gets through before its first step that does not check; 0 when the format
    /// fails. Valid steps cannot be padded past the reference's length, and a wrong answer
    /// never reaches a right one (see `STEPS_PARTIAL` and `TraceProgress::credit`).
    Steps,
}

/// The most a wrong answer earns under [`Preset::Steps`], for a think block whose every step
/// checks.
pub const STEPS_PARTIAL: f64 = 0.5;

impl Preset {
    /// The lowest score the preset gives (bad input and bad labels get it).
    pub fn minimum(self) -> f64 {
        match self {
            Preset::Paper => -3.0,
            Preset::Binary | Preset::Steps => 0.0,
        }
    }

    fn score(self, format_ok: bool, verdict: Option<&Verdict>) -> f64 {
        match self {
            Preset::Paper => {
                let format = if format_ok { 1.0 } else { -1.0 };
                let answer = match verdict {
                    Some(Verdict::Correct) if format_ok => 2.0,
                    Some(Verdict::Wrong(_)) if format_ok => -1.5,
                    _ => -2.0,
                };
                format + answer
            }
            Preset::Binary | Preset::Steps => {
                f64::from(u8::from(format_ok && verdict == Some(&Verdict::Correct)))
            }
        }
    }
}

/// Why a rollout earned less than full marks: the first word of a [`Reason`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The think/answer tags break the format rule.
    Format,
    /// The answer could not be read as one committed answer.
    Unparseable,
    /// The answer was read and is not a solution.
    Wrong,
    /// The label could not be read or breaks its family's bounds.
    BadLabel,
    /// The input line or item was not a rollout at all.
    BadInput,
    /// Not scored within the time bound.
    Timeout,
}

impl FailureKind {
    const ALL: [FailureKind; 6] = [
        FailureKind::Format,
        FailureKind::Unparseable,
        FailureKind::Wrong,
        FailureKind::BadLabel,
        FailureKind::BadInput,
        FailureKind::Timeout,
    ];

    /// The word on the wire.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Format => "format",
            FailureKind::Unparseable => "unparseable",
            FailureKind::Wrong => "wrong",
            FailureKind::BadLabel => "bad_label",
            FailureKind::BadInput => "bad_input",
            FailureKind::Timeout => "timeout",
        }
    }

    /// Whether this is a failure of the input (label or line) rather than a judgement of the
    /// answer: a trainer should mask such items, not learn from their reward.
    pub fn is_input_error(self) -> bool {
        matches!(self, FailureKind::BadLabel | FailureKind::BadInput)
    }
}

/// Why a rollout failed: a kind and a human-readable detail. On the wire it is the one string
/// `"kind: detail"` (e.g. `"wrong: formula 4 `(D ⊕ C)` is false"`), as it always was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason {
    /// What kind of failure.
    pub kind: FailureKind,
    /// The detail.
    pub detail: String,
}

impl Reason {
    /// A reason of `kind`.
    pub fn new(kind: FailureKind, detail: impl std::fmt::Display) -> Reason {
        Reason {
            kind,
            detail: detail.to_string(),
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.detail)
    }
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Reason, D::Error> {
        let text = String::deserialize(deserializer)?;
        let (kind, detail) = text.split_once(": ").unwrap_or((text.as_str(), ""));
        let kind = FailureKind::ALL
            .into_iter()
            .find(|k| k.name() == kind)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown failure kind {kind:?}")))?;
        Ok(Reason::new(kind, detail))
    }
}

/// The outcome of scoring one rollout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// The reward under the chosen preset.
    pub score: f64,
    /// Whether the think/answer format rule holds.
    pub format_ok: bool,
    /// Whether the rollout earned the answer reward (format right and answer correct).
    pub correct: bool,
    /// Why it failed (on the wire `"kind: detail"`, the kind one of `format`, `unparseable`,
    /// `wrong`, `bad_label`, `bad_input`, `timeout`); `null` on success.
    pub reason: Option<Reason>,
    /// The label's family, when the label could be read.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub family: Option<String>,
    /// The label's level, when it records one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub level: Option<u8>,
}

impl Score {
    /// The kind of failure, if it failed.
    pub fn failure_kind(&self) -> Option<FailureKind> {
        self.reason.as_ref().map(|r| r.kind)
    }

    /// The minimum score with a reason, for input that could not be scored at all.
    pub fn failure(preset: Preset, kind: FailureKind, message: impl std::fmt::Display) -> Score {
        Score {
            score: preset.minimum(),
            format_ok: false,
            correct: false,
            reason: Some(Reason::new(kind, message)),
            family: None,
            level: None,
        }
    }
}

const TAGS: [&str; 4] = ["<think>", "</think>", "<answer>", "</answer>"];

/// Check the paper's format rule on a response. `prefilled` counts a `<think>` that the prompt
/// ended with. Returns why the format fails, or `Ok(())`.
pub fn check_format(response: &str, prefilled: bool) -> Result<(), String> {
    let bytes = response.as_bytes();
    let mut positions = [0isize; 4];
    for (slot, tag) in TAGS.iter().enumerate() {
        let mut hits = memmem::find_iter(bytes, tag.as_bytes());
        let first = hits.next();
        let count = usize::from(first.is_some()) + hits.take(2).count();
        let prefill = usize::from(prefilled && slot == 0);
        let total = count + prefill;
        if total != 1 {
            let shown = if total > 2 {
                "more than twice".to_string()
            } else {
                format!("{total} times")
            };
            let note = if prefill == 1 {
                " (counting the pre-filled one)"
            } else {
                ""
            };
            return Err(format!(
                "{tag} appears {shown}{note}; exactly once is required"
            ));
        }
        positions[slot] = first.map_or(-1, |p| p as isize);
    }
    if positions.windows(2).any(|w| w[0] >= w[1]) {
        return Err("tags out of order; required <think> … </think> … <answer> … </answer>".into());
    }
    Ok(())
}

/// The text of the last `<answer>…</answer>` block, trimmed.
pub fn extract_answer(response: &str) -> Option<&str> {
    let bytes = response.as_bytes();
    let open = memmem::rfind(bytes, b"<answer>")?;
    let start = open + "<answer>".len();
    let close = memmem::find(&bytes[start..], b"</answer>")?;
    Some(response[start..start + close].trim())
}

/// The reasoning of a response whose format holds: the text between `<think>` (or the start,
/// when the prompt pre-filled it) and `</think>`, without the newlines that frame it.
fn think_block(response: &str, prefilled: bool) -> &str {
    let bytes = response.as_bytes();
    let start = if prefilled {
        0
    } else {
        memmem::find(bytes, b"<think>").map_or(0, |at| at + "<think>".len())
    };
    let end = memmem::find(bytes, b"</think>").unwrap_or(response.len());
    response[start..end.max(start)].trim_matches(|c| c == '\n' || c == '\r')
}

/// Whether a prompt ends with a pre-filled `<think>`.
pub fn prompt_prefills_think(prompt: &str) -> bool {
    prompt.trim_end().ends_with("<think>")
}

/// Score one rollout against a label string (triad or paper form).
///
/// Never panics: labels come from clients, and a label that makes a family's judge fail in an
/// unforeseen way scores the minimum with reason `bad_label` instead of taking the caller (a rayon
/// worker of the server) down with it.
pub fn score(response: &str, label: &str, prompt: Option<&str>, preset: Preset) -> Score {
    let scored =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match Label::parse(label) {
            Ok(label) => score_with_label(response, &label, prompt, preset),
            Err(e) => Score::failure(preset, FailureKind::BadLabel, e),
        }));
    scored.unwrap_or_else(|_| {
        Score::failure(
            preset,
            FailureKind::BadLabel,
            "the label could not be judged",
        )
    })
}

/// Score one rollout against a parsed label.
pub fn score_with_label(
    response: &str,
    label: &Label,
    prompt: Option<&str>,
    preset: Preset,
) -> Score {
    let prefilled = prompt.map_or_else(|| label.prefill(), prompt_prefills_think);
    let format = check_format(response, prefilled);
    let format_ok = format.is_ok();
    // The label is read once: by the judge when there is an answer to judge, else by `validate`,
    // so a malformed label always scores as `bad_label`.
    let judged = match (format_ok, extract_answer(response)) {
        (true, Some(answer)) => label.try_judge(answer).map(Some),
        _ => label.validate().map(|()| None),
    };
    let verdict = match judged {
        Ok(verdict) => verdict,
        Err(e) => return Score::failure(preset, FailureKind::BadLabel, e),
    };
    let reason = match (&format, &verdict) {
        (Err(e), _) => Some(Reason::new(FailureKind::Format, e)),
        (Ok(()), Some(Verdict::Wrong(why))) => Some(Reason::new(FailureKind::Wrong, why)),
        (Ok(()), Some(Verdict::Unparseable(why))) => {
            Some(Reason::new(FailureKind::Unparseable, why))
        }
        (Ok(()), None) => Some(Reason::new(FailureKind::Unparseable, "no answer block")),
        (Ok(()), Some(Verdict::Correct)) => None,
    };
    let correct = format_ok && verdict == Some(Verdict::Correct);
    let mut score = preset.score(format_ok, verdict.as_ref());
    if preset == Preset::Steps && format_ok && !correct {
        match label.trace_progress(think_block(response, prefilled)) {
            Ok(progress) => {
                score = STEPS_PARTIAL * progress.as_ref().map_or(0.0, TraceProgress::credit)
            }
            Err(e) => return Score::failure(preset, FailureKind::BadLabel, e),
        }
    }
    Score {
        score,
        format_ok,
        correct,
        reason,
        family: Some(label.family_name().to_string()),
        level: label.level(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABEL: &str = "(1) A is False\n(2) B is True\n";

    #[test]
    fn format_rule() {
        assert!(check_format("<think>x</think><answer>y</answer>", false).is_ok());
        assert!(check_format("x</think><answer>y</answer>", true).is_ok());
        assert!(
            check_format("<think>x</think><answer>y</answer>", true)
                .unwrap_err()
                .contains("pre-filled")
        );
        assert!(check_format("<think>x</think><answer>y</answer></answer>", false).is_err());
        assert!(
            check_format("<answer>y</answer><think>x</think>", false)
                .unwrap_err()
                .contains("order")
        );
        assert!(check_format("", false).is_err());
        let many = format!("<think>x</think>{}", "<answer>".repeat(10_000));
        assert!(
            check_format(&many, false)
                .unwrap_err()
                .contains("more than twice")
        );
    }

    #[test]
    fn paper_totals() {
        let s = |r: &str| score(r, LABEL, None, Preset::Paper).score;
        assert_eq!(
            s("…</think><answer>(1) A is False\n(2) B is True</answer>"),
            3.0
        );
        assert_eq!(
            s("…</think><answer>(1) A is True\n(2) B is True</answer>"),
            -0.5
        );
        assert_eq!(s("…</think><answer>A is maybe</answer>"), -1.0);
        assert_eq!(
            s("<think>…</think><answer>(1) A is False\n(2) B is True</answer>"),
            -3.0
        );
        assert_eq!(s("…</think><answer></answer>"), -1.0);
    }

    #[test]
    fn binary_and_reasons() {
        let ok = score(
            "x</think><answer>A is false, B is true</answer>",
            LABEL,
            None,
            Preset::Binary,
        );
        assert_eq!(
            (ok.score, ok.correct, ok.reason.as_ref()),
            (1.0, true, None)
        );
        let hedge = score(
            "x</think><answer>A is false or true, B is true</answer>",
            LABEL,
            None,
            Preset::Binary,
        );
        assert_eq!(hedge.score, 0.0);
        assert_eq!(hedge.failure_kind(), Some(FailureKind::Unparseable));
        let bad = score(
            "x",
            "{\"v\": 9, \"family\": \"deduction\", \"level\": 1, \"instance\": {}}",
            None,
            Preset::Paper,
        );
        assert_eq!(bad.score, -3.0);
        assert!(
            bad.reason
                .unwrap()
                .to_string()
                .starts_with("bad_label: label version 9")
        );
    }

    /// A generated item of `family` at `level` (its label and reference trace).
    fn item(family: &str, level: u8) -> triad_generators::Item {
        let family = triad_generators::registry::family(family).unwrap();
        (0..)
            .find_map(|index| {
                let coords = triad_generators::ItemCoords {
                    seed: 5,
                    family: family.name(),
                    level,
                    index,
                };
                let options = triad_generators::GenOptions::default();
                family
                    .candidate(&coords, &options, triad_generators::PromptStyle::Chat)
                    .unwrap()
            })
            .unwrap()
    }

    /// `steps` pays a right answer 1, a wrong one half the share of the reference trace its
    /// think block gets through, and a broken format nothing; the paper's preset is unmoved.
    #[test]
    fn steps_credits_the_checked_part_of_the_trace() {
        for (family, level) in [("deduction", 3), ("induction", 2), ("abduction", 2)] {
            let item = item(family, level);
            let lines: Vec<&str> = item.trace.lines().collect();
            let steps = |think: &str, answer: &str| {
                let response = format!("<think>\n{think}\n</think>\n<answer>\n{answer}\n</answer>");
                score(&response, &item.label, None, Preset::Steps)
            };
            let Ok(Label::Triad {
                family: f,
                instance,
                ..
            }) = Label::parse(&item.label)
            else {
                panic!("{family}: not a triad label")
            };
            let wrong = f.near_miss_json(&instance).unwrap();
            let right = steps(&item.trace, &item.answer);
            assert_eq!((right.score, right.correct), (1.0, true), "{family}");
            assert_eq!(
                steps("", &item.answer).score,
                1.0,
                "{family}: the answer decides"
            );
            assert_eq!(steps(&item.trace, &wrong).score, STEPS_PARTIAL, "{family}");
            let half = lines[..lines.len() / 2].join("\n");
            let partial = steps(&half, &wrong).score;
            let expected = STEPS_PARTIAL * (lines.len() / 2) as f64 / lines.len() as f64;
            assert!(
                (partial - expected).abs() < 1e-12,
                "{family}: {partial} vs {expected}"
            );
            assert_eq!(steps("I guess.", &wrong).score, 0.0, "{family}");
            let broken = format!("{}</think><answer>{wrong}</answer>", item.trace);
            assert_eq!(score(&broken, &item.label, None, Preset::Steps).score, 0.0);
            assert_eq!(
                score(&broken, &item.label, None, Preset::Paper).score,
                -3.0,
                "{family}"
            );
        }
    }

    #[test]
    fn prompt_decides_prefill_when_given() {
        let r = "<think>x</think><answer>A is false, B is true</answer>";
        assert!(score(r, LABEL, Some("chat prompt"), Preset::Paper).correct);
        assert!(
            !score(
                r,
                LABEL,
                Some("…<|im_start|>assistant\n<think>"),
                Preset::Paper
            )
            .format_ok
        );
    }

    #[test]
    fn malformed_labels_never_panic() {
        let bad = [
            r#"{"v":1,"family":"induction","level":1,"instance":{"sequence":[1,2],"masked":[9],"rule":"","checked_level":1}}"#,
            r#"{"v":1,"family":"induction","level":1,"instance":{"sequence":[],"masked":[],"rule":"","checked_level":1}}"#,
            r#"{"v":1,"family":"deduction","level":1,"instance":{"variables":[],"formulas":["(A"],"solution":[true]}}"#,
            r#"{"v":1,"family":"abduction","level":1,"instance":{"mode":"reachability","premises":["x"],"known":[],"goals":["A"],"reachable":[]}}"#,
        ];
        for label in bad {
            let s = score("x</think><answer>3</answer>", label, None, Preset::Paper);
            assert!(!s.correct, "{label}");
        }
    }

    /// The typed reason is the same one string on the wire, and reads back.
    #[test]
    fn reasons_are_one_string_on_the_wire() {
        let wrong = score(
            "x</think><answer>A is true, B is true</answer>",
            LABEL,
            None,
            Preset::Paper,
        );
        let json = serde_json::to_value(&wrong).unwrap();
        let text = json["reason"].as_str().unwrap();
        assert!(text.starts_with("wrong: "), "{text}");
        let back: Score = serde_json::from_value(json).unwrap();
        assert_eq!(back, wrong);
        assert_eq!(back.failure_kind(), Some(FailureKind::Wrong));
        assert!(serde_json::from_value::<Reason>(serde_json::json!("nonsense: x")).is_err());
        let ok = score(
            "x</think><answer>A is false, B is true</answer>",
            LABEL,
            None,
            Preset::Paper,
        );
        assert_eq!(
            serde_json::to_value(&ok).unwrap()["reason"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn last_answer_block_wins() {
        assert_eq!(
            extract_answer("<answer>1</answer> <answer> 2 </answer>"),
            Some("2")
        );
        assert_eq!(extract_answer("<answer>1"), None);
    }
}
