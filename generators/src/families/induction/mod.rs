//! Induction: observations → rule, as masked-sequence completion whose answer is provably
//! determined by what is shown.
//!
//! Levels 1–5 reproduce the paper's legacy generator (arithmetic / geometric / alternating ±;
//! two-step add / alternating ×÷ / missing middle term; cyclic k-step rules over {+r, −r, ×r} with
//! k = 3, 4, 5). Levels 6–10 use richer hidden rules. Unlike the paper's data, every item is kept
//! only if **every** rule that the dataset itself teaches in the item's band (levels 1–5, or
//! 6–10) and that reproduces the visible terms predicts the same hidden values, for any constants
//! (the paper's items include `2, 4, ?` style prefixes that +2 and ×2 both explain, k-step rules
//! whose masked step was never shown, and level-1 items that level 2's ÷ explains otherwise). See
//! `determinacy::fit_determinacy`.
//!
//! | level | hidden rule | determinacy checked against |
//! |---|---|---|
//! | 1 | arithmetic, geometric, alternating ± (mask last) | cyclic, period ≤ 2, {+, −, ×, ÷} |
//! | 2 | two-step add, alternating ×÷, missing middle term | cyclic, period ≤ 2, {+, −, ×, ÷} |
//! | 3–5 | cyclic k-step over {+, −, ×}, k = 3, 4, 5 | cyclic, period ≤ k, {+, −, ×, ÷} |
//! | 6 | polynomial of degree 2–3 in n | all of levels 6–10's classes |
//! | 7 | x\[n\] = a·x\[n−1\] + b·x\[n−2\] | all of levels 6–10's classes |
//! | 8 | two interleaved arithmetic/geometric sequences | all of levels 6–10's classes |
//! | 9 | (a·n + b) mod m, one hidden term anywhere after the first period | all of levels 6–10's classes |
//! | 10 | a level 6–9 rule with two hidden terms | all of levels 6–10's classes |
//!
//! Levels 6–10's classes: cycles of ≤ 3 steps over {+, −, ×}, polynomials of degree ≤ 3, integer
//! order-2 recurrences, interleaved pairs, modular patterns, repetitions.
//!
//! A level never ships a rule that is really a lower level's: two-step adds with equal steps
//! (arithmetic) and k-step rules whose steps repeat with a shorter period are redrawn, so the same
//! sequence cannot appear at two levels.
//!
//! Every value is bounded (|x| ≤ 10⁹ at levels 1–5, 10⁶ above) and every check is a bounded
//! enumeration, so the worst case per item is bounded too.

mod audit;
mod determinacy;
mod levels;
pub(crate) mod rules;
mod trace;

pub use audit::InductionTally;
pub use determinacy::determined;
use determinacy::{class_sentence, max_cycle};

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::answer;
use crate::family::{CertifyError, Family, GenError, Prompt, PromptStyle, Verdict};
use crate::fields::{FieldKind, FieldSpec, FieldValue};
use crate::frame;
use crate::limits;
use crate::options::NoOptions;
use crate::rng::Draw;
use rules::partial_of;

/// The induction family.
pub struct Induction;

/// An induction instance, as stored in the label.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InductionInstance {
    /// The complete sequence.
    pub sequence: Vec<i64>,
    /// Hidden positions, ascending.
    pub masked: Vec<usize>,
    /// The generating rule, in words.
    pub rule: String,
    /// Use the paper's "with a missing term" header (its level-2 missing-term items).
    #[serde(default)]
    pub missing_term_header: bool,
    /// The level whose hypothesis classes proved the hidden values determined.
    pub checked_level: u8,
}

impl InductionInstance {
    /// The visible sequence, `None` at hidden positions.
    pub fn partial(&self) -> Vec<Option<i64>> {
        partial_of(&self.sequence, &self.masked)
    }

    /// The hidden values, in order.
    pub fn answers(&self) -> Vec<i64> {
        // Positions past the end (a malformed label) are skipped; `judge` refuses such labels.
        self.masked
            .iter()
            .filter_map(|&i| self.sequence.get(i).copied())
            .collect()
    }

    /// Whether the hidden positions are inside the sequence, ascending and distinct.
    pub fn well_formed(&self) -> bool {
        !self.masked.is_empty()
            && self.masked.windows(2).all(|w| w[0] < w[1])
            && self.masked.iter().all(|&m| m < self.sequence.len())
    }
}

const ATTEMPTS: usize = 10_000;

const PAPER_INSTRUCTION: &str = "Now the user has a numerical pattern recognition question. After thorough thinking, once you reach a conclusion, please give the value at the question mark within <answer>...</answer> to meet the pattern of squence, for example:\n<answer>10</answer>.";
const PAPER_INSTRUCTION_MANY: &str = "Now the user has a numerical pattern recognition question. After thorough thinking, once you reach a conclusion, please give the values at the question marks, in order and separated by commas, within <answer>...</answer> to meet the pattern of squence, for example:\n<answer>10, 12</answer>.";
const CHAT_INSTRUCTION: &str = "Now the user has a numerical pattern recognition question. After thorough thinking, once you reach a conclusion, give the integer at the question mark within <answer> </answer>, for example <answer>10</answer>. If several terms are hidden, give their values in order, separated by commas, for example <answer>10, 12</answer>.";

/// Python's `str()` of the paper's puzzle list: quoted strings, or, for missing-term items, bare
/// integers with a quoted `'?'`.
fn python_list(instance: &InductionInstance) -> String {
    let items: Vec<String> = instance
        .partial()
        .iter()
        .map(|v| match (v, instance.missing_term_header) {
            (None, _) => "'?'".to_string(),
            (Some(x), true) => x.to_string(),
            (Some(x), false) => format!("'{x}'"),
        })
        .collect();
    format!("[{}]", items.join(", "))
}

static FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "sequence",
        kind: FieldKind::IntList,
        nullable: false,
        doc: "the complete sequence",
    },
    FieldSpec {
        name: "masked",
        kind: FieldKind::IntList,
        nullable: false,
        doc: "hidden positions (0-based), ascending",
    },
    FieldSpec {
        name: "visible",
        kind: FieldKind::StrList,
        nullable: false,
        doc: "the sequence as shown, `?` at hidden positions",
    },
    FieldSpec {
        name: "answers",
        kind: FieldKind::IntList,
        nullable: false,
        doc: "the hidden values, in order",
    },
    FieldSpec {
        name: "rule",
        kind: FieldKind::Str,
        nullable: false,
        doc: "the generating rule, in words",
    },
];

impl Family for Induction {
    type Instance = InductionInstance;
    type Options = NoOptions;
    type Tally = InductionTally;

    fn name(&self) -> &'static str {
        "induction"
    }

    fn levels(&self) -> RangeInclusive<u8> {
        1..=10
    }

    fn paper_format(&self) -> Option<crate::paper::PaperFormat> {
        Some(crate::paper::PaperFormat::Integer)
    }

    fn describe_level(&self, level: u8) -> String {
        match level {
            1 => "arithmetic, geometric or alternating ± sequence, last term hidden (paper)",
            2 => "two-step add, alternating ×÷, or a missing middle term (paper)",
            3 => "cyclic 3-step rule over {+r, −r, ×r} (paper)",
            4 => "cyclic 4-step rule over {+r, −r, ×r} (paper)",
            5 => "cyclic 5-step rule over {+r, −r, ×r} (paper)",
            6 => "polynomial of degree 2–3 in the index",
            7 => "order-2 linear recurrence x[n] = a·x[n−1] + b·x[n−2]",
            8 => "two interleaved arithmetic/geometric sequences",
            9 => "periodic modular pattern (a·n + b) mod m, one hidden term",
            10 => "a level 6–9 rule with two hidden terms",
            _ => "no such level",
        }
        .into()
    }

    fn generate(
        &self,
        level: u8,
        _: &NoOptions,
        draw: &mut Draw,
    ) -> Result<Option<InductionInstance>, GenError> {
        if !(1..=10).contains(&level) {
            return Err(GenError::NoSuchLevel {
                family: "induction",
                level,
                min: 1,
                max: 10,
            });
        }
        for _ in 0..ATTEMPTS {
            let Some(made) = levels::make(level, draw) else {
                continue;
            };
            let instance = InductionInstance {
                sequence: made.sequence,
                masked: made.masked,
                rule: made.rule,
                missing_term_header: made.missing_term_header,
                checked_level: level,
            };
            if determined(level, &instance).is_ok_and(|v| v == instance.answers()) {
                return Ok(Some(instance));
            }
        }
        Ok(None)
    }

    fn render(&self, instance: &InductionInstance, style: PromptStyle) -> Prompt {
        let many = instance.masked.len() > 1;
        match style {
            PromptStyle::Paper => {
                let header = if instance.missing_term_header {
                    "Given the following sequence with a missing term,"
                } else {
                    "Given the following sequence,"
                };
                let question = if many {
                    "What are the values at the question marks?"
                } else {
                    "What is the value at the question mark?"
                };
                let puzzle = format!("{header}\n{}\n{question}", python_list(instance));
                let instruction = if many {
                    PAPER_INSTRUCTION_MANY
                } else {
                    PAPER_INSTRUCTION
                };
                frame::prompt(style, instruction, &puzzle)
            }
            PromptStyle::Chat | PromptStyle::Compact => {
                let shown: Vec<String> = instance
                    .partial()
                    .iter()
                    .map(|v| v.map_or("?".to_string(), |x| x.to_string()))
                    .collect();
                let question = if many {
                    "What are the values at the question marks, in order?"
                } else {
                    "What is the value at the question mark?"
                };
                let puzzle = format!(
                    "Given the following sequence of integers,\n{}\n{} {question}",
                    shown.join(", "),
                    class_sentence(instance.checked_level)
                );
                frame::prompt(style, CHAT_INSTRUCTION, &puzzle)
            }
        }
    }

    fn check(&self, instance: &InductionInstance) -> Result<(), String> {
        limits::check_nonempty_list("sequence terms", &instance.sequence)?;
        limits::check_nonempty_list("hidden positions", &instance.masked)?;
        if !instance.well_formed() {
            return Err("hidden positions outside the sequence or not ascending".into());
        }
        Ok(())
    }

    fn reference_answer(&self, instance: &InductionInstance) -> String {
        let values: Vec<String> = instance.answers().iter().map(i64::to_string).collect();
        values.join(", ")
    }

    /// The rule fitted to the sequence, then every term derived from it (see `trace.rs`).
    fn trace(&self, instance: &InductionInstance) -> String {
        trace::trace(instance)
    }

    fn check_trace(&self, instance: &InductionInstance, text: &str) -> Result<(), String> {
        trace::check(instance, text)
    }

    /// The first hidden value off by one (the item is determined, so this is wrong).
    fn near_miss(&self, instance: &InductionInstance) -> String {
        let mut values = instance.answers();
        if let Some(first) = values.first_mut() {
            *first = if *first == i64::MAX {
                *first - 1
            } else {
                *first + 1
            };
        }
        let values: Vec<String> = values.iter().map(i64::to_string).collect();
        values.join(", ")
    }

    fn judge(&self, instance: &InductionInstance, text: &str) -> Verdict {
        if !instance.well_formed() {
            return Verdict::Unparseable("label: hidden positions outside the sequence".into());
        }
        let parts: Vec<&str> = if instance.masked.len() > 1 {
            text.split(',').collect()
        } else {
            vec![text]
        };
        if parts.len() != instance.masked.len() {
            return Verdict::Unparseable(format!(
                "{} values given, {} expected",
                parts.len(),
                instance.masked.len()
            ));
        }
        let mut values = Vec::new();
        for part in parts {
            match answer::integer(part) {
                Ok(v) => values.push(v),
                Err(e) => return Verdict::Unparseable(e),
            }
        }
        if values == instance.answers() {
            Verdict::Correct
        } else {
            Verdict::Wrong(format!("{values:?} does not continue the rule"))
        }
    }

    fn certify(&self, instance: &InductionInstance) -> Result<(), CertifyError> {
        if !instance.well_formed() {
            return Err(CertifyError::Malformed(
                "hidden positions out of range".into(),
            ));
        }
        let level = instance.checked_level;
        if !(1..=10).contains(&level) {
            return Err(CertifyError::Malformed(format!("checked_level {level}")));
        }
        match determined(level, instance) {
            Ok(values) if values == instance.answers() => {}
            Ok(values) => {
                return Err(CertifyError::NotASolution(format!(
                    "the rules predict {values:?}"
                )));
            }
            Err(why) => return Err(CertifyError::NotUnique(why)),
        }
        solver::certify_cyclic(instance, level)
    }

    fn canonical(&self, instance: &InductionInstance) -> String {
        let shown: Vec<String> = instance
            .partial()
            .iter()
            .map(|v| v.map_or("?".to_string(), |x| x.to_string()))
            .collect();
        shown.join(",")
    }

    fn fields(&self) -> &'static [FieldSpec] {
        FIELDS
    }

    fn field_values(&self, instance: &InductionInstance) -> Vec<FieldValue> {
        let visible = instance
            .partial()
            .iter()
            .map(|v| v.map_or("?".to_string(), |x| x.to_string()))
            .collect();
        vec![
            FieldValue::IntList(instance.sequence.clone()),
            FieldValue::IntList(instance.masked.iter().map(|&m| m as i64).collect()),
            FieldValue::StrList(visible),
            FieldValue::IntList(instance.answers()),
            FieldValue::Str(instance.rule.clone()),
        ]
    }

    fn instance_schema(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "required": ["sequence", "masked", "rule", "checked_level"],
            "additionalProperties": false,
            "properties": {
                "sequence": {"type": "array", "minItems": 2, "items": {"type": "integer"}, "description": "the complete sequence"},
                "masked": {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}, "description": "hidden positions, ascending"},
                "rule": {"type": "string", "description": "the generating rule, in words"},
                "missing_term_header": {"type": "boolean", "description": "render the paper's 'with a missing term' header"},
                "checked_level": {"type": "integer", "minimum": 1, "maximum": 10, "description": "the level whose hypothesis classes proved the hidden values determined"}
            }
        })
    }
}

mod solver;

#[cfg(test)]
mod tests;
