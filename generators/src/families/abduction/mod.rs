//! Abduction: observation + rules → hypothesis, as reverse rule-graph search.
//!
//! **Reachability mode** (the paper's task, fixed): premises `(<body>) => <head>` with AND/OR/NOT
//! bodies, known atoms, goals; a goal is *reachable* iff it is true in every model in which the
//! known atoms are true and every premise holds. Z3 decides every label. Unlike the paper's data —
//! where the one reachable goal is always a known atom and unreachable goals mostly appear in no
//! premise, so membership alone scores 100% — goals here are never known atoms, every goal is the
//! head of a premise chain of the level's depth, unreachable goals' chains break somewhere (a
//! missing link, a blocked branch), and the number of reachable goals varies.
//!
//! **Explanation mode** (abduction proper): given the rules, known facts, an observation and
//! candidate hypotheses, name a minimal set of hypotheses that, added to the known facts, entails
//! the observation. Every minimal explanation is enumerated (Z3) and stored, and any of them is
//! correct.
//!
//! | level | chain depth | distractor premises | goals | atom names |
//! |---|---|---|---|---|
//! | 1 | 2–3 | 3–5 | 3 | 1–2 letters from A–O (paper) |
//! | 2 | 3–4 | 5–7 | 3 | (paper) |
//! | 3 | 4–5 | 7–9 | 3 | (paper) |
//! | 4 | 5–6 | 8–10 | 3 | (paper) |
//! | 5 | 6–7 | 10–12 | 3 | (paper) |
//! | 6 | 7–8 | 14–16 | 4 | 1–2 letters from A–T |
//! | 7 | 8–9 | 18–20 | 4 | A–T |
//! | 8 | 9–10 | 22–25 | 5 | A–Z |
//! | 9 | 10–12 | 28–32 | 5 | A–Z |
//! | 10 | 12–14 | 35–40 | 6 | A–Z, deeper bodies |

mod audit;
mod build;
mod explanation;
pub(crate) mod expr;
mod reachability;
mod render;
pub(crate) mod solver;
mod trace;

use std::collections::HashSet;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::family::{CertifyError, Family, GenError, Prompt, PromptStyle, Verdict};
use crate::fields::{FieldKind, FieldSpec, FieldValue};
use crate::limits;
use crate::options::OptionDoc;
use crate::rng::Draw;
pub use audit::AbductionTally;
use build::shape;
use expr::Premise;

/// The abduction family.
pub struct Abduction;

/// Which question an instance asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Per goal: reachable or unreachable.
    Reachability,
    /// A minimal set of hypotheses that entails the observation.
    Explanation,
}

/// Which abduction question to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AbductionMode {
    /// Per-goal reachability (the paper's task).
    #[default]
    Reachability,
    /// Minimal explanations (abduction proper).
    Explanation,
    /// Half and half, drawn per item.
    Mixed,
}

/// The abduction family's generation options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbductionOptions {
    /// The question asked.
    #[serde(default)]
    pub abduction_mode: AbductionMode,
}

/// An abduction instance, as stored in the label.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbductionInstance {
    /// The question.
    pub mode: Mode,
    /// Premises, in the paper's syntax, in display order.
    pub premises: Vec<String>,
    /// Known atoms, in display order.
    pub known: Vec<String>,
    /// Reachability: the goals, in order.
    #[serde(default)]
    pub goals: Vec<String>,
    /// Reachability: whether each goal is reachable (Z3).
    #[serde(default)]
    pub reachable: Vec<bool>,
    /// Explanation: the observation to explain.
    #[serde(default)]
    pub observation: Option<String>,
    /// Explanation: the candidate hypotheses, in display order.
    #[serde(default)]
    pub hypotheses: Vec<String>,
    /// Explanation: every minimal explanation, each sorted, sorted (Z3).
    #[serde(default)]
    pub explanations: Vec<Vec<String>>,
}

/// Parse the premises back into the index space (atom names in first-seen order).
fn parse_instance(instance: &AbductionInstance) -> Result<(expr::Atoms, Vec<Premise>), String> {
    let mut atoms = expr::Atoms::default();
    let premises = instance
        .premises
        .iter()
        .map(|p| Premise::parse(p, &mut atoms))
        .collect::<Result<_, _>>()?;
    Ok((atoms, premises))
}

/// [`parse_instance`], plus the known atoms' indices, with every name the instance mentions
/// (goals, hypotheses, observation) interned.
fn parse_all(
    instance: &AbductionInstance,
) -> Result<(expr::Atoms, Vec<Premise>, Vec<usize>), String> {
    let (mut atoms, premises) = parse_instance(instance)?;
    let known = instance.known.iter().map(|k| atoms.intern(k)).collect();
    for extra in instance
        .goals
        .iter()
        .chain(&instance.hypotheses)
        .chain(&instance.observation)
    {
        atoms.intern(extra);
    }
    Ok((atoms, premises, known))
}

static FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "mode",
        kind: FieldKind::Str,
        nullable: false,
        doc: "reachability | explanation",
    },
    FieldSpec {
        name: "premises",
        kind: FieldKind::StrList,
        nullable: false,
        doc: "premises `(<body>) => <head>`, in display order",
    },
    FieldSpec {
        name: "known",
        kind: FieldKind::StrList,
        nullable: false,
        doc: "known atoms",
    },
    FieldSpec {
        name: "goals",
        kind: FieldKind::StrList,
        nullable: false,
        doc: "reachability: goals in order (empty in explanation mode)",
    },
    FieldSpec {
        name: "reachable",
        kind: FieldKind::BoolList,
        nullable: false,
        doc: "reachability: each goal's label, proven by Z3",
    },
    FieldSpec {
        name: "observation",
        kind: FieldKind::Str,
        nullable: true,
        doc: "explanation: the observation",
    },
    FieldSpec {
        name: "hypotheses",
        kind: FieldKind::StrList,
        nullable: false,
        doc: "explanation: candidate hypotheses",
    },
    FieldSpec {
        name: "explanations",
        kind: FieldKind::StrList,
        nullable: false,
        doc: "explanation: every minimal explanation, names joined by `,`",
    },
];

/// The index of an atom that may appear in no premise (a known atom or hypothesis no rule uses):
/// such atoms get indices past the premises' atoms.
fn index_of(atoms: &expr::Atoms, name: &str) -> Result<usize, CertifyError> {
    atoms
        .get(name)
        .ok_or_else(|| CertifyError::Malformed(format!("atom {name} in no premise")))
}

/// [`index_of`] of every name.
fn indices_of(atoms: &expr::Atoms, names: &[String]) -> Result<Vec<usize>, CertifyError> {
    names.iter().map(|n| index_of(atoms, n)).collect()
}

impl Family for Abduction {
    type Instance = AbductionInstance;
    type Options = AbductionOptions;
    type Tally = AbductionTally;

    fn name(&self) -> &'static str {
        "abduction"
    }

    fn levels(&self) -> RangeInclusive<u8> {
        1..=10
    }

    fn paper_format(&self) -> Option<crate::paper::PaperFormat> {
        Some(crate::paper::PaperFormat::Reachability)
    }

    fn describe_level(&self, level: u8) -> String {
        match shape(level) {
            Some(s) => format!(
                "chains of depth {}–{}, {}–{} distractor premises, {} goals{}",
                s.depth.0,
                s.depth.1,
                s.distractors.0,
                s.distractors.1,
                s.goals,
                if level <= 5 { " (paper sizes)" } else { "" }
            ),
            None => "no such level".into(),
        }
    }

    fn option_docs(&self) -> &'static [OptionDoc] {
        &[OptionDoc {
            key: "abduction_mode",
            help: "The abduction question: `reachability` (the paper's task), `explanation` (minimal \
                   explanations) or `mixed` (half each)",
        }]
    }

    fn generate(
        &self,
        level: u8,
        options: &AbductionOptions,
        draw: &mut Draw,
    ) -> Result<Option<AbductionInstance>, GenError> {
        let shape = shape(level).ok_or(GenError::NoSuchLevel {
            family: "abduction",
            level,
            min: 1,
            max: 10,
        })?;
        let explain = match options.abduction_mode {
            AbductionMode::Reachability => false,
            AbductionMode::Explanation => true,
            AbductionMode::Mixed => draw.chance(0.5),
        };
        for _ in 0..100 {
            let made = if explain {
                explanation::generate(shape, draw)
            } else {
                reachability::generate(shape, draw)
            };
            if made.is_some() {
                return Ok(made);
            }
        }
        Ok(None)
    }

    fn render(&self, instance: &AbductionInstance, style: PromptStyle) -> Prompt {
        render::prompt(instance, style)
    }

    fn check(&self, instance: &AbductionInstance) -> Result<(), String> {
        limits::check_nonempty_list("premises", &instance.premises)?;
        limits::check_list("known atoms", &instance.known)?;
        match instance.mode {
            Mode::Reachability => {
                limits::check_nonempty_list("goals", &instance.goals)?;
                if instance.goals.len() != instance.reachable.len() {
                    return Err(format!(
                        "{} goals but {} reachability labels",
                        instance.goals.len(),
                        instance.reachable.len()
                    ));
                }
                limits::check_distinct("goal", instance.goals.iter().map(String::as_str))
            }
            Mode::Explanation => {
                if instance.observation.as_deref().is_none_or(str::is_empty) {
                    return Err("no observation".into());
                }
                limits::check_nonempty_list("hypotheses", &instance.hypotheses)?;
                limits::check_distinct(
                    "hypothesis",
                    instance.hypotheses.iter().map(String::as_str),
                )?;
                limits::check_nonempty_list("explanations", &instance.explanations)?;
                let known: HashSet<&str> = instance.hypotheses.iter().map(String::as_str).collect();
                for explanation in &instance.explanations {
                    limits::check_nonempty_list("hypotheses in an explanation", explanation)?;
                    limits::check_distinct(
                        "explanation hypothesis",
                        explanation.iter().map(String::as_str),
                    )?;
                    if let Some(odd) = explanation.iter().find(|h| !known.contains(h.as_str())) {
                        return Err(format!("explanation names `{odd}`, not a candidate"));
                    }
                }
                Ok(())
            }
        }
    }

    fn reference_answer(&self, instance: &AbductionInstance) -> String {
        match instance.mode {
            Mode::Reachability => {
                let lines: Vec<String> = instance
                    .goals
                    .iter()
                    .zip(&instance.reachable)
                    .enumerate()
                    .map(|(i, (g, r))| {
                        format!("({}) {g} is {}reachable", i + 1, if *r { "" } else { "un" })
                    })
                    .collect();
                lines.join("\n")
            }
            Mode::Explanation => instance
                .explanations
                .first()
                .map(|e| e.join(", "))
                .unwrap_or_default(),
        }
    }

    /// The forward chain, then a derivation or a countermodel per goal (reachability), or the
    /// chain to the observation and a countermodel per dropped hypothesis (explanation); see
    /// `trace.rs`.
    fn trace(&self, instance: &AbductionInstance) -> String {
        trace::trace(instance)
    }

    fn check_trace(&self, instance: &AbductionInstance, text: &str) -> Result<(), String> {
        trace::check(instance, text)
    }

    /// Reachability: the first goal's answer flipped. Explanation: every hypothesis (sufficient,
    /// not minimal) or, where that is the one explanation, all but the first (not sufficient).
    fn near_miss(&self, instance: &AbductionInstance) -> String {
        match instance.mode {
            Mode::Reachability => {
                let mut reachable = instance.reachable.clone();
                if let Some(first) = reachable.first_mut() {
                    *first = !*first;
                }
                let flipped = AbductionInstance {
                    reachable,
                    ..instance.clone()
                };
                self.reference_answer(&flipped)
            }
            Mode::Explanation => {
                let all = instance.hypotheses.join(", ");
                if matches!(self.judge(instance, &all), Verdict::Wrong(_)) {
                    all
                } else {
                    instance.hypotheses.get(1..).unwrap_or_default().join(", ")
                }
            }
        }
    }

    fn judge(&self, instance: &AbductionInstance, text: &str) -> Verdict {
        match instance.mode {
            Mode::Reachability => reachability::judge(instance, text),
            Mode::Explanation => explanation::judge(instance, text),
        }
    }

    fn certify(&self, instance: &AbductionInstance) -> Result<(), CertifyError> {
        let (atoms, premises, known) = parse_all(instance).map_err(CertifyError::Malformed)?;
        match instance.mode {
            Mode::Reachability => reachability::certify(instance, &atoms, &premises, &known),
            Mode::Explanation => explanation::certify(instance, &atoms, &premises, &known),
        }
    }

    fn canonical(&self, instance: &AbductionInstance) -> String {
        let mut premises = instance.premises.clone();
        premises.sort();
        let mut known = instance.known.clone();
        known.sort();
        let question = match instance.mode {
            Mode::Reachability => format!("goals {}", instance.goals.join(",")),
            Mode::Explanation => format!(
                "explain {} by {}",
                instance.observation.as_deref().unwrap_or_default(),
                instance.hypotheses.join(",")
            ),
        };
        format!("{}\n{}\n{question}", premises.join("\n"), known.join(","))
    }

    fn fields(&self) -> &'static [FieldSpec] {
        FIELDS
    }

    fn field_values(&self, instance: &AbductionInstance) -> Vec<FieldValue> {
        vec![
            FieldValue::Str(match instance.mode {
                Mode::Reachability => "reachability".into(),
                Mode::Explanation => "explanation".into(),
            }),
            FieldValue::StrList(instance.premises.clone()),
            FieldValue::StrList(instance.known.clone()),
            FieldValue::StrList(instance.goals.clone()),
            FieldValue::BoolList(instance.reachable.clone()),
            instance
                .observation
                .clone()
                .map_or(FieldValue::Null, FieldValue::Str),
            FieldValue::StrList(instance.hypotheses.clone()),
            FieldValue::StrList(instance.explanations.iter().map(|e| e.join(",")).collect()),
        ]
    }

    fn instance_schema(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "required": ["mode", "premises", "known"],
            "additionalProperties": false,
            "properties": {
                "mode": {"enum": ["reachability", "explanation"]},
                "premises": {"type": "array", "items": {"type": "string"}, "description": "premises `(<body>) => <head>`, bodies over AND, OR, NOT"},
                "known": {"type": "array", "items": {"type": "string"}},
                "goals": {"type": "array", "items": {"type": "string"}},
                "reachable": {"type": "array", "items": {"type": "boolean"}},
                "observation": {"type": ["string", "null"]},
                "hypotheses": {"type": "array", "items": {"type": "string"}},
                "explanations": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}}
            }
        })
    }
}

#[cfg(test)]
mod tests;
