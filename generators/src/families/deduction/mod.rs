//! Deduction: rules + hypothesis → observation, as propositional satisfiability.
//!
//! The task lists nested formulas over variables `A, B, C, …`; the answer is the truth value of
//! every variable such that all formulas hold. Levels 1–5 reproduce the paper's generator in
//! distribution (rejection sampling over its node rule until exactly one model remains); levels
//! 6–10 go where brute force cannot, planting an assignment and adding formulas that it satisfies
//! until the SAT core (`crate::sat`; Z3 certifies) proves it the only model.
//!
//! | level | variables | depth | formulas | how uniqueness is decided |
//! |---|---|---|---|---|
//! | 1 | 4 | 1 | 3–6 | truth table (paper) |
//! | 2 | 6 | 2 | 3–6 | truth table (paper) |
//! | 3 | 8 | 3 | 3–6 | truth table (paper) |
//! | 4 | 10 | 4 | 3–6 | truth table (paper) |
//! | 5 | 12 | 5 | 3–6 | truth table (paper) |
//! | 6 | 16 | 3 | until unique (≤ 64) | truth table, planted |
//! | 7 | 24 | 3 | until unique (≤ 96) | SAT core, planted |
//! | 8 | 32 | 3 | until unique (≤ 128) | SAT core, planted |
//! | 9 | 48 | 4 | until unique (≤ 192) | SAT core, planted |
//! | 10 | 64 | 4 | until unique (≤ 256) | SAT core, planted |
//!
//! With `unsat_ratio > 0`, that fraction of items (drawn per item) gets one more formula that is
//! false under the unique model, so the set has no model at all; the correct answer is then
//! "No satisfying assignment exists." and Z3 proves the unsatisfiability.

mod audit;
mod cnf;
pub(crate) mod formula;
pub(crate) mod solver;
pub(crate) mod table;
mod trace;

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::answer;
use crate::family::{CertifyError, Family, GenError, Prompt, PromptStyle, Verdict};
use crate::fields::{FieldKind, FieldSpec, FieldValue};
use crate::frame;
use crate::limits;
use crate::options::OptionDoc;
use crate::rng::Draw;
pub use audit::DeductionTally;
pub use formula::variable_names;
use formula::{Formula, NameIndex};

/// The deduction family.
pub struct Deduction;

/// A deduction instance, as stored in the label.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeductionInstance {
    /// Variable names, in answer order.
    pub variables: Vec<String>,
    /// The formulas, in the paper's syntax.
    pub formulas: Vec<String>,
    /// The unique model, or `None` when the formulas are unsatisfiable.
    pub solution: Option<Vec<bool>>,
    /// Whether the prompt tells the model that "no satisfying assignment" is a possible answer.
    #[serde(default)]
    pub unsat_possible: bool,
}

/// The shape of one level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Number of variables.
    pub vars: usize,
    /// Formula depth (the paper's `max_depth`).
    pub depth: u32,
    /// Paper levels draw 3–6 formulas and reject; extended levels plant a model and add formulas
    /// until it is unique, up to this many.
    pub max_formulas: Option<usize>,
}

/// The level table (see the module docs).
pub fn shape(level: u8) -> Option<Shape> {
    let paper = |vars, depth| Shape {
        vars,
        depth,
        max_formulas: None,
    };
    let planted = |vars: usize, depth| Shape {
        vars,
        depth,
        max_formulas: Some(4 * vars),
    };
    Some(match level {
        1 => paper(4, 1),
        2 => paper(6, 2),
        3 => paper(8, 3),
        4 => paper(10, 4),
        5 => paper(12, 5),
        6 => planted(16, 3),
        7 => planted(24, 3),
        8 => planted(32, 3),
        9 => planted(48, 4),
        10 => planted(64, 4),
        _ => return None,
    })
}

/// Attempts of rejection sampling before a candidate is given up (then the stream moves on).
const PAPER_ATTEMPTS: usize = 100_000;
/// Draws of a formula with a required truth value under the planted model before giving up.
const CONDITIONED_ATTEMPTS: usize = 1_000;

const PAPER_INSTRUCTION: &str = "Now the user has a logical formula problem. After thorough thinking, once you reach a conclusion, please list the truth value of each variable within <answer>...</answer> to satisfy the formulas, for example:\n<answer>\n(1) A is true\n(2) B is false\n...</answer>.";
const CHAT_INSTRUCTION: &str = "Now the user has a logical formula problem. After thorough thinking, once you reach a conclusion, list the truth value of every variable within <answer> </answer>, one per line, so that all the formulas hold, for example:\n<answer>\n(1) A is true\n(2) B is false\n</answer>";
const UNSAT_INSTRUCTION: &str = " If no assignment satisfies all the formulas, answer <answer>No satisfying assignment exists.</answer>";
const COMPACT_UNSAT_NOTE: &str =
    " If none satisfies them all, say: No satisfying assignment exists.";
/// The reference answer of an unsatisfiable instance.
pub const UNSAT_ANSWER: &str = "No satisfying assignment exists.";
/// The sentences that claim unsatisfiability, as [`normalise_claim`] leaves them: the reference
/// answer and a few plain rewordings. The claim must be the whole answer — a sentence that only
/// contains one (`It is not unsatisfiable.`) negates or questions it.
const UNSAT_CLAIMS: &[&str] = &[
    "no satisfying assignment exists",
    "no satisfying assignment",
    "there is no satisfying assignment",
    "no assignment satisfies all the formulas",
    "unsatisfiable",
    "the formulas are unsatisfiable",
    "no solution",
    "no solution exists",
    "there is no solution",
];
/// Words that talk about unsatisfiability: an answer using them that is not one of
/// [`UNSAT_CLAIMS`] is unparseable rather than read as a claim or as an assignment.
const UNSAT_WORDS: &[&str] = &[
    "unsatisf",
    "no satisfying",
    "not satisfiable",
    "no solution",
    "no model",
    "no assignment",
];
const TRUTH: &[(&str, bool)] = &[("true", true), ("false", false)];

static FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "variables",
        kind: FieldKind::StrList,
        nullable: false,
        doc: "variable names, in answer order",
    },
    FieldSpec {
        name: "formulas",
        kind: FieldKind::StrList,
        nullable: false,
        doc: "the formulas, in the paper's syntax",
    },
    FieldSpec {
        name: "solution",
        kind: FieldKind::BoolList,
        nullable: true,
        doc: "the unique model; null when unsatisfiable",
    },
    FieldSpec {
        name: "satisfiable",
        kind: FieldKind::Bool,
        nullable: false,
        doc: "whether any model exists",
    },
    FieldSpec {
        name: "depth",
        kind: FieldKind::Int,
        nullable: false,
        doc: "formula depth of the level",
    },
];

impl Deduction {
    fn parse_formulas(instance: &DeductionInstance) -> Result<Vec<Formula>, String> {
        let index = NameIndex::new(&instance.variables);
        instance
            .formulas
            .iter()
            .map(|f| Formula::parse(f, &index))
            .collect()
    }

    /// The paper's generator: draw 3–6 formulas, keep them when exactly one model exists.
    fn paper_instance(shape: Shape, draw: &mut Draw) -> Option<(Vec<Formula>, Vec<bool>)> {
        for _ in 0..PAPER_ATTEMPTS {
            let count = draw.range(3, 6) as usize;
            let formulas: Vec<Formula> = (0..count)
                .map(|_| Formula::random(draw, shape.vars, shape.depth))
                .collect();
            if let (1, Some(model)) = table::solve(&formulas, shape.vars) {
                return Some((formulas, model));
            }
        }
        None
    }

    /// Extended levels: plant a model, add formulas it satisfies until it is the only one.
    fn planted_instance(
        shape: Shape,
        max: usize,
        draw: &mut Draw,
    ) -> Option<(Vec<Formula>, Vec<bool>)> {
        let planted: Vec<bool> = (0..shape.vars).map(|_| draw.chance(0.5)).collect();
        if shape.vars <= table::MAX_VARS {
            let mut conj = table::Table::all_true(shape.vars);
            return Deduction::add_until_unique(shape, max, draw, &planted, |f| {
                conj.and_assign(&table::Table::of(f, shape.vars));
                Some(conj.count() == 1)
            });
        }
        // Checking after every formula is cheap (incremental) and keeps the count minimal.
        let mut oracle = solver::SatOracle::new(&planted);
        Deduction::add_until_unique(shape, max, draw, &planted, |f| {
            oracle.add(f);
            oracle.unique()
        })
    }

    /// Add formulas true under `planted` until `unique` says it is the only model.
    fn add_until_unique(
        shape: Shape,
        max: usize,
        draw: &mut Draw,
        planted: &[bool],
        mut unique: impl FnMut(&Formula) -> Option<bool>,
    ) -> Option<(Vec<Formula>, Vec<bool>)> {
        let mut formulas = Vec::new();
        while formulas.len() < max {
            let f = conditioned(draw, shape, planted, true)?;
            let done = unique(&f)?;
            formulas.push(f);
            if done {
                return Some((formulas, planted.to_vec()));
            }
        }
        None
    }
}

/// Draw a formula by the node rule, conditioned on its value under `model`.
fn conditioned(draw: &mut Draw, shape: Shape, model: &[bool], want: bool) -> Option<Formula> {
    (0..CONDITIONED_ATTEMPTS)
        .map(|_| Formula::random(draw, shape.vars, shape.depth))
        .find(|f| f.eval(model) == want)
}

fn render_assignment(names: &[String], values: &[bool]) -> String {
    let lines: Vec<String> = names
        .iter()
        .zip(values)
        .enumerate()
        .map(|(i, (name, value))| {
            format!(
                "({}) {name} is {}",
                i + 1,
                if *value { "True" } else { "False" }
            )
        })
        .collect();
    lines.join("\n")
}

/// Lower case, markdown and punctuation gone, words separated by one space.
fn normalise_claim(answer: &str) -> String {
    answer
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What an answer says about satisfiability.
#[derive(Debug, PartialEq, Eq)]
enum Claim {
    /// Exactly one of [`UNSAT_CLAIMS`].
    Unsat,
    /// Talks about unsatisfiability without being the claim.
    Mentions,
    /// Says nothing of it.
    Nothing,
}

fn unsat_claim(answer: &str) -> Claim {
    let normal = normalise_claim(answer);
    if UNSAT_CLAIMS.contains(&normal.as_str()) {
        Claim::Unsat
    } else if UNSAT_WORDS.iter().any(|w| normal.contains(w)) {
        Claim::Mentions
    } else {
        Claim::Nothing
    }
}

fn list_names(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The deduction family's generation options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeductionOptions {
    /// Fraction of items made unsatisfiable (answer: no satisfying assignment), within 0..=1.
    #[serde(default)]
    pub unsat_ratio: f64,
}

impl Family for Deduction {
    type Instance = DeductionInstance;
    type Options = DeductionOptions;
    type Tally = DeductionTally;

    fn name(&self) -> &'static str {
        "deduction"
    }

    fn levels(&self) -> RangeInclusive<u8> {
        1..=10
    }

    fn paper_format(&self) -> Option<crate::paper::PaperFormat> {
        Some(crate::paper::PaperFormat::Assignment)
    }

    fn describe_level(&self, level: u8) -> String {
        match shape(level) {
            Some(Shape {
                vars,
                depth,
                max_formulas: None,
            }) => {
                format!("{vars} variables, depth {depth}, 3–6 formulas, unique model (paper)")
            }
            Some(Shape {
                vars,
                depth,
                max_formulas: Some(max),
            }) => {
                format!(
                    "{vars} variables, depth {depth}, formulas added until the planted model is unique (≤ {max})"
                )
            }
            None => "no such level".into(),
        }
    }

    fn option_docs(&self) -> &'static [OptionDoc] {
        &[OptionDoc {
            key: "unsat_ratio",
            help: "Fraction of deduction items that are unsatisfiable (answer: no satisfying \
                   assignment), within 0..=1",
        }]
    }

    fn validate_options(&self, options: &DeductionOptions) -> Result<(), String> {
        if (0.0..=1.0).contains(&options.unsat_ratio) {
            Ok(())
        } else {
            Err(format!(
                "unsat_ratio {} is outside 0..=1",
                options.unsat_ratio
            ))
        }
    }

    fn generate(
        &self,
        level: u8,
        options: &DeductionOptions,
        draw: &mut Draw,
    ) -> Result<Option<DeductionInstance>, GenError> {
        let shape = shape(level).ok_or(GenError::NoSuchLevel {
            family: "deduction",
            level,
            min: 1,
            max: 10,
        })?;
        let unsat = options.unsat_ratio > 0.0 && draw.chance(options.unsat_ratio);
        let made = match shape.max_formulas {
            None => Deduction::paper_instance(shape, draw),
            Some(max) => Deduction::planted_instance(shape, max, draw),
        };
        let Some((mut formulas, model)) = made else {
            return Ok(None);
        };
        let solution = if unsat {
            let Some(killer) = conditioned(draw, shape, &model, false) else {
                return Ok(None);
            };
            let at = draw.index(formulas.len() + 1);
            formulas.insert(at, killer);
            None
        } else {
            Some(model)
        };
        let variables = variable_names(shape.vars);
        Ok(Some(DeductionInstance {
            formulas: formulas.iter().map(|f| f.render(&variables)).collect(),
            variables,
            solution,
            unsat_possible: options.unsat_ratio > 0.0,
        }))
    }

    fn render(&self, instance: &DeductionInstance, style: PromptStyle) -> Prompt {
        let (unsat_note, compact_unsat_note) = if instance.unsat_possible {
            (UNSAT_INSTRUCTION, COMPACT_UNSAT_NOTE)
        } else {
            ("", "")
        };
        match style {
            PromptStyle::Paper => {
                let list: String = instance
                    .formulas
                    .iter()
                    .map(|f| format!("  - {f}\n"))
                    .collect();
                let puzzle = format!(
                    "Below are some nested formulas:\n{list}Please list the truth value of each variable\n"
                );
                frame::prompt(style, &format!("{PAPER_INSTRUCTION}{unsat_note}"), &puzzle)
            }
            PromptStyle::Chat | PromptStyle::Compact => {
                // Numbered as the trace cites them ("since otherwise formula 3 would be false"):
                // a reader, and a small model most of all, looks a number up rather than count
                // bullets (the paper's style keeps its bullets).
                let list: String = (instance.formulas.iter().enumerate())
                    .map(|(i, f)| format!("  {}. {f}\n", i + 1))
                    .collect();
                let mut puzzle = format!(
                    "Below are some nested formulas over the variables {} (¬ not, ∧ and, ∨ or, → implies, ↔ if and only if, ⊕ exclusive or):\n{list}List the truth value of each variable.",
                    list_names(&instance.variables)
                );
                if style == PromptStyle::Compact {
                    // The compact style drops the instruction, but not what an unsat answer is.
                    puzzle.push_str(compact_unsat_note);
                }
                frame::prompt(style, &format!("{CHAT_INSTRUCTION}{unsat_note}"), &puzzle)
            }
        }
    }

    fn check(&self, instance: &DeductionInstance) -> Result<(), String> {
        limits::check_nonempty_list("variables", &instance.variables)?;
        limits::check_nonempty_list("formulas", &instance.formulas)?;
        if let Some(name) = instance
            .variables
            .iter()
            .find(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(format!("variable name {name:?} is not upper-case letters"));
        }
        limits::check_distinct("variable", instance.variables.iter().map(String::as_str))?;
        if let Some(i) = instance
            .formulas
            .iter()
            .position(|f| formula::paren_depth(f) > limits::MAX_NESTING)
        {
            return Err(format!(
                "formula {} is nested more than {} deep",
                i + 1,
                limits::MAX_NESTING
            ));
        }
        match &instance.solution {
            Some(values) if values.len() != instance.variables.len() => Err(format!(
                "{} values in the solution for {} variables",
                values.len(),
                instance.variables.len()
            )),
            _ => Ok(()),
        }
    }

    fn reference_answer(&self, instance: &DeductionInstance) -> String {
        match &instance.solution {
            Some(values) => render_assignment(&instance.variables, values),
            None => UNSAT_ANSWER.to_string(),
        }
    }

    /// A DPLL derivation: forced values (three-valued evaluation of one formula), and cases
    /// supposed and refuted (see `trace.rs`).
    fn trace(&self, instance: &DeductionInstance) -> String {
        match Deduction::parse_formulas(instance) {
            Ok(formulas) => {
                trace::trace(&formulas, &instance.variables, instance.solution.as_deref())
            }
            Err(_) => String::new(),
        }
    }

    fn check_trace(&self, instance: &DeductionInstance, text: &str) -> Result<(), String> {
        let formulas = Deduction::parse_formulas(instance)?;
        match (
            trace::check(&formulas, &instance.variables, text)?,
            &instance.solution,
        ) {
            (trace::Conclusion::Model(model), Some(solution)) if &model == solution => Ok(()),
            (trace::Conclusion::Unsat, None) => Ok(()),
            _ => Err(format!(
                "line {}: the trace concludes something other than the reference answer",
                text.lines().count()
            )),
        }
    }

    /// The unique model with its first value flipped; for an unsatisfiable item, every variable
    /// false (no assignment is a model).
    fn near_miss(&self, instance: &DeductionInstance) -> String {
        let mut values = instance
            .solution
            .clone()
            .unwrap_or_else(|| vec![false; instance.variables.len()]);
        if instance.solution.is_some()
            && let Some(first) = values.first_mut()
        {
            *first = !*first;
        }
        render_assignment(&instance.variables, &values)
    }

    fn judge(&self, instance: &DeductionInstance, text: &str) -> Verdict {
        match unsat_claim(text) {
            Claim::Unsat => {
                return match instance.solution {
                    None => Verdict::Correct,
                    Some(_) => Verdict::Wrong("a satisfying assignment exists".into()),
                };
            }
            Claim::Mentions if answer::has_statement(text, &["true", "false"]) => {
                return Verdict::Unparseable(
                    "both an assignment and words about there being none".into(),
                );
            }
            Claim::Mentions => {
                return Verdict::Unparseable(format!(
                    "speaks of unsatisfiability without the claim itself (answer `{UNSAT_ANSWER}`)"
                ));
            }
            Claim::Nothing => {}
        }
        let names: Vec<&str> = instance.variables.iter().map(String::as_str).collect();
        let values = match answer::statements(text, &names, TRUTH) {
            Ok(values) => values,
            Err(e) => return Verdict::Unparseable(e),
        };
        if instance.solution.is_none() {
            return Verdict::Wrong("the formulas have no model".into());
        }
        let index = NameIndex::new(&instance.variables);
        for (i, text) in instance.formulas.iter().enumerate() {
            match formula::eval_text(text, &index, &values) {
                Ok(true) => {}
                Ok(false) => return Verdict::Wrong(format!("formula {} `{text}` is false", i + 1)),
                Err(e) => return Verdict::Unparseable(format!("label formula unreadable: {e}")),
            }
        }
        Verdict::Correct
    }

    fn certify(&self, instance: &DeductionInstance) -> Result<(), CertifyError> {
        let formulas = Deduction::parse_formulas(instance).map_err(CertifyError::Malformed)?;
        let n = instance.variables.len();
        let found = solver::models(&formulas, n, 2).map_err(CertifyError::Unknown)?;
        let render = |m: &Vec<bool>| render_assignment(&instance.variables, m).replace('\n', ", ");
        match (&instance.solution, found.as_slice()) {
            (None, []) => Ok(()),
            (None, [model, ..]) => Err(CertifyError::Satisfiable(render(model))),
            (Some(values), _) if values.len() != n => Err(CertifyError::Malformed(
                "solution length differs from variable count".into(),
            )),
            (Some(values), _) if !formulas.iter().all(|f| f.eval(values)) => {
                Err(CertifyError::NotASolution(render(values)))
            }
            (Some(values), [only]) if only == values => Ok(()),
            (Some(values), models) => {
                let other = models
                    .iter()
                    .find(|m| *m != values)
                    .map(render)
                    .unwrap_or_default();
                Err(CertifyError::NotUnique(other))
            }
        }
    }

    fn canonical(&self, instance: &DeductionInstance) -> String {
        let mut formulas = instance.formulas.clone();
        formulas.sort_unstable();
        format!("{}\n{}", instance.variables.len(), formulas.join("\n"))
    }

    fn fields(&self) -> &'static [FieldSpec] {
        FIELDS
    }

    fn instance_schema(&self) -> serde_json::Value {
        instance_schema()
    }

    fn field_values(&self, instance: &DeductionInstance) -> Vec<FieldValue> {
        let depth = instance
            .formulas
            .first()
            .and_then(|_| shape_for_vars(instance.variables.len()))
            .map_or(0, |s| i64::from(s.depth));
        vec![
            FieldValue::StrList(instance.variables.clone()),
            FieldValue::StrList(instance.formulas.clone()),
            instance
                .solution
                .clone()
                .map_or(FieldValue::Null, FieldValue::BoolList),
            FieldValue::Bool(instance.solution.is_some()),
            FieldValue::Int(depth),
        ]
    }
}

fn instance_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "required": ["variables", "formulas", "solution"],
        "additionalProperties": false,
        "properties": {
            "variables": {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": "^[A-Z]+$"}, "description": "variable names, in answer order"},
            "formulas": {"type": "array", "minItems": 1, "items": {"type": "string"}, "description": "formulas in the paper's syntax: A, ¬A, ¬(…), (… op …) with op in → ∧ ∨ ↔ ⊕"},
            "solution": {"oneOf": [{"type": "null"}, {"type": "array", "items": {"type": "boolean"}}], "description": "the unique model (one value per variable), or null when unsatisfiable"},
            "unsat_possible": {"type": "boolean", "description": "whether the prompt allows the answer 'No satisfying assignment exists.'"}
        }
    })
}

fn shape_for_vars(vars: usize) -> Option<Shape> {
    (1..=10).filter_map(shape).find(|s| s.vars == vars)
}

#[cfg(test)]
mod tests;
