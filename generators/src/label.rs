//! Labels: the self-contained ground truth that travels with every row.
//!
//! A triad label is compact JSON, `{"v":1,"family":"deduction","level":3,"prefill":false,
//! "instance":{…}}`: the instance itself, so any scorer — CLI, server, trainer, a user's script —
//! needs only the label and the response. The paper's own labels (its `solution_text_format`
//! strings, bare or inside their `ground_truth` struct) are a second, recognised form.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::family::{DynFamily, TraceProgress, Verdict};
use crate::paper::PaperLabel;
use crate::registry;

/// The label format version written by this build; other versions are rejected with a reason.
pub const LABEL_VERSION: u32 = 1;

/// Why a label could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LabelError {
    /// Not JSON of a known shape, nor a paper label.
    #[error("not a triad label nor a paper label: {0}")]
    Unrecognised(String),
    /// A triad label of another format version.
    #[error("label version {0} is not supported (this build reads version {LABEL_VERSION})")]
    Version(u64),
    /// A triad label naming a family this build does not have.
    #[error("unknown family `{0}`")]
    UnknownFamily(String),
    /// The label text is longer than [`crate::limits::MAX_LABEL_BYTES`].
    #[error("label of {0} bytes, more than the limit of {limit}", limit = crate::limits::MAX_LABEL_BYTES)]
    TooLarge(usize),
    /// The instance inside the label does not deserialize, or breaks the family's rules.
    #[error("malformed {family} instance: {message}")]
    Instance {
        /// Family name.
        family: &'static str,
        /// The serde error.
        message: String,
    },
}

#[derive(Serialize)]
struct EncodedLabel<'a, T> {
    v: u32,
    family: &'a str,
    level: u8,
    prefill: bool,
    instance: &'a T,
}

#[derive(Deserialize)]
struct DecodedLabel<'a> {
    v: u64,
    family: &'a str,
    level: u8,
    #[serde(default)]
    prefill: bool,
    #[serde(borrow)]
    instance: &'a RawValue,
}

#[derive(Deserialize)]
struct PaperGroundTruth {
    solution_text_format: String,
}

/// A parsed label of either form.
pub enum Label {
    /// A triad label.
    Triad {
        /// The family that judges it.
        family: &'static dyn DynFamily,
        /// Level.
        level: u8,
        /// Whether the prompt pre-fills `<think>`.
        prefill: bool,
        /// The instance JSON.
        instance: String,
    },
    /// One of the paper's released labels.
    Paper(PaperLabel),
}

impl std::fmt::Debug for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Label::Triad { family, level, .. } => {
                write!(f, "Label::Triad({}, {level})", family.name())
            }
            Label::Paper(p) => write!(f, "Label::Paper({p:?})"),
        }
    }
}

impl Label {
    /// Encode a triad label.
    pub fn encode<T: Serialize>(family: &str, level: u8, prefill: bool, instance: &T) -> String {
        let label = EncodedLabel {
            v: LABEL_VERSION,
            family,
            level,
            prefill,
            instance,
        };
        serde_json::to_string(&label).expect("instances serialize")
    }

    /// Read a label of either form.
    pub fn parse(text: &str) -> Result<Label, LabelError> {
        if text.len() > crate::limits::MAX_LABEL_BYTES {
            return Err(LabelError::TooLarge(text.len()));
        }
        let trimmed = text.trim();
        if trimmed.starts_with('{') {
            return Label::parse_object(trimmed);
        }
        if trimmed.starts_with('"') {
            let inner: String = serde_json::from_str(trimmed)
                .map_err(|e| LabelError::Unrecognised(format!("bad JSON string: {e}")))?;
            return Label::parse(&inner);
        }
        PaperLabel::parse(text)
            .map(Label::Paper)
            .ok_or_else(|| LabelError::Unrecognised(preview(text)))
    }

    fn parse_object(text: &str) -> Result<Label, LabelError> {
        if let Ok(decoded) = serde_json::from_str::<DecodedLabel>(text) {
            if decoded.v != u64::from(LABEL_VERSION) {
                return Err(LabelError::Version(decoded.v));
            }
            let family = registry::family(decoded.family)
                .ok_or_else(|| LabelError::UnknownFamily(decoded.family.to_string()))?;
            return Ok(Label::Triad {
                family,
                level: decoded.level,
                prefill: decoded.prefill,
                instance: decoded.instance.get().to_string(),
            });
        }
        if let Ok(paper) = serde_json::from_str::<PaperGroundTruth>(text) {
            return PaperLabel::parse(&paper.solution_text_format)
                .map(Label::Paper)
                .ok_or_else(|| LabelError::Unrecognised(preview(&paper.solution_text_format)));
        }
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(value) if value.get("v").is_some() => Err(LabelError::Unrecognised(
                "triad label lacks family, level or instance".into(),
            )),
            Ok(_) => Err(LabelError::Unrecognised(
                "JSON object of unknown shape".into(),
            )),
            Err(e) => Err(LabelError::Unrecognised(format!("bad JSON: {e}"))),
        }
    }

    /// The family name (`deduction`, …), or the paper family the paper label implies.
    pub fn family_name(&self) -> &'static str {
        match self {
            Label::Triad { family, .. } => family.name(),
            Label::Paper(p) => p.family_name(),
        }
    }

    /// The level, when the label records it.
    pub fn level(&self) -> Option<u8> {
        match self {
            Label::Triad { level, .. } => Some(*level),
            Label::Paper(_) => None,
        }
    }

    /// Whether the prompt this label belongs to pre-fills `<think>` (always, for paper labels).
    pub fn prefill(&self) -> bool {
        match self {
            Label::Triad { prefill, .. } => *prefill,
            Label::Paper(_) => true,
        }
    }

    /// Judge an answer text (the inside of the answer block).
    pub fn judge(&self, answer: &str) -> Verdict {
        match self {
            Label::Triad {
                family, instance, ..
            } => family.judge_json(instance, answer).unwrap_or_else(|e| {
                Verdict::Unparseable(format!("label instance unreadable: {e}"))
            }),
            Label::Paper(p) => p.judge(answer),
        }
    }

    /// Judge an answer text, telling a label whose instance cannot be read apart from an answer
    /// that cannot be parsed (one deserialization: the scorer's hot path).
    pub fn try_judge(&self, answer: &str) -> Result<Verdict, LabelError> {
        match self {
            Label::Triad {
                family, instance, ..
            } => family
                .judge_json(instance, answer)
                .map_err(|e| LabelError::Instance {
                    family: family.name(),
                    message: e.to_string(),
                }),
            Label::Paper(p) => Ok(p.judge(answer)),
        }
    }

    /// How far a written trace checks against this label's instance (see
    /// [`TraceProgress`]); `None` for a paper label, which no trace checker reads.
    pub fn trace_progress(&self, trace: &str) -> Result<Option<TraceProgress>, LabelError> {
        match self {
            Label::Triad {
                family, instance, ..
            } => family
                .trace_progress_json(instance, trace)
                .map(Some)
                .map_err(|e| LabelError::Instance {
                    family: family.name(),
                    message: e.to_string(),
                }),
            Label::Paper(_) => Ok(None),
        }
    }

    /// Check that the instance deserializes, so a bad label is caught before judging.
    pub fn validate(&self) -> Result<(), LabelError> {
        match self {
            Label::Triad {
                family, instance, ..
            } => family
                .reference_json(instance)
                .map(|_| ())
                .map_err(|e| LabelError::Instance {
                    family: family.name(),
                    message: e.to_string(),
                }),
            Label::Paper(_) => Ok(()),
        }
    }
}

fn preview(text: &str) -> String {
    let mut preview: String = text.chars().take(60).collect();
    if preview.len() < text.len() {
        preview.push('…');
    }
    format!("{preview:?}")
}
