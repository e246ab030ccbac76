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
pub(crate) mod expr;
pub(crate) mod solver;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::answer;
use crate::family::{CertifyError, Family, GenError, Prompt, PromptStyle, Verdict};
use crate::fields::{FieldKind, FieldSpec, FieldValue};
use crate::frame;
use crate::limits;
use crate::options::OptionDoc;
use crate::rng::Draw;
pub use audit::AbductionTally;
use expr::{Expr, Premise};

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

/// The shape of one level.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    depth: (i64, i64),
    distractors: (i64, i64),
    goals: usize,
    last_letter: u8,
    body_depth: u32,
}

/// The level table.
pub fn shape(level: u8) -> Option<Shape> {
    let s = |depth, distractors, goals, last_letter, body_depth| Shape {
        depth,
        distractors,
        goals,
        last_letter,
        body_depth,
    };
    Some(match level {
        1 => s((2, 3), (3, 5), 3, b'O', 2),
        2 => s((3, 4), (5, 7), 3, b'O', 2),
        3 => s((4, 5), (7, 9), 3, b'O', 2),
        4 => s((5, 6), (8, 10), 3, b'O', 2),
        5 => s((6, 7), (10, 12), 3, b'O', 2),
        6 => s((7, 8), (14, 16), 4, b'T', 2),
        7 => s((8, 9), (18, 20), 4, b'T', 2),
        8 => s((9, 10), (22, 25), 5, b'Z', 2),
        9 => s((10, 12), (28, 32), 5, b'Z', 2),
        10 => s((12, 14), (35, 40), 6, b'Z', 3),
        _ => return None,
    })
}

/// Building state: atom names and premises.
struct Builder<'a> {
    draw: &'a mut Draw,
    shape: Shape,
    names: Vec<String>,
    premises: Vec<Premise>,
    known: Vec<usize>,
    /// Atoms that must stay underivable (goals, the upper part of broken chains, missing links):
    /// no distractor may have them as head and none becomes known.
    protected: Vec<usize>,
}

impl Builder<'_> {
    /// A fresh atom: one letter (60%) or two, from the level's alphabet.
    fn fresh(&mut self) -> Option<usize> {
        let letters = u64::from(self.shape.last_letter - b'A' + 1);
        for _ in 0..1000 {
            let mut name = String::from((b'A' + self.draw.below(letters) as u8) as char);
            if !self.draw.chance(0.6) {
                name.push((b'A' + self.draw.below(letters) as u8) as char);
            }
            // Two-letter names may spell the operator `OR`.
            if !self.names.contains(&name) && name != "OR" {
                self.names.push(name);
                return Some(self.names.len() - 1);
            }
        }
        None
    }

    fn pick(&mut self, from: &[usize]) -> usize {
        from[self.draw.index(from.len())]
    }

    fn any_atom(&mut self) -> usize {
        self.draw.index(self.names.len())
    }

    /// A body that is entailed whenever `required` is (and the known atoms are), and only then
    /// when `x_protected`: its free atom `x` is fresh, and is kept underivable so that an `(r OR x)`
    /// above a broken link does not repair the chain.
    fn entailed_body(&mut self, required: usize, x_protected: bool) -> Option<Expr> {
        let r = Expr::Atom(required);
        let k = Expr::Atom(self.pick(&self.known.clone()));
        let x_atom = self.fresh()?;
        if x_protected {
            self.protected.push(x_atom);
        }
        let x = Expr::Atom(x_atom);
        Some(match self.draw.below(8) {
            0 => r,
            1 => Expr::and(r, k),
            2 => Expr::and(k, r),
            3 => Expr::or(r, x),
            4 => Expr::or(x, r),
            5 => Expr::or(Expr::negate(x), r),
            6 => Expr::and(r, Expr::or(k, x)),
            _ => Expr::and(Expr::or(r, x), k),
        })
    }

    /// A body that looks like [`Builder::entailed_body`] but needs something that does not hold:
    /// a missing link (an atom nothing derives) or a blocked branch (the negation of a known atom).
    fn broken_body(&mut self, required: usize) -> Option<Expr> {
        let r = Expr::Atom(required);
        let k = Expr::Atom(self.pick(&self.known.clone()));
        let missing_atom = self.fresh()?;
        self.protected.push(missing_atom);
        let missing = Expr::Atom(missing_atom);
        Some(match self.draw.below(5) {
            0 => Expr::and(r, missing),
            1 => Expr::and(missing, r),
            2 => Expr::and(r, Expr::negate(k)),
            3 => Expr::and(Expr::or(missing, Expr::negate(k)), r),
            _ => missing,
        })
    }

    /// A chain of `depth` premises from `top` down to the known atoms; broken at one link when
    /// `broken`.
    fn chain(&mut self, top: usize, depth: usize, broken: bool) -> Option<()> {
        let break_at = self.draw.index(depth);
        let mut head = top;
        for link in 0..depth {
            if broken && link <= break_at {
                self.protected.push(head);
            }
            let below = if link + 1 == depth {
                self.pick(&self.known.clone())
            } else {
                self.fresh()?
            };
            let body = if broken && link == break_at {
                self.broken_body(below)?
            } else {
                self.entailed_body(below, broken && link < break_at)?
            };
            self.premises.push(Premise { body, head });
            head = below;
        }
        Some(())
    }

    fn random_expr(&mut self, depth: u32) -> Expr {
        if depth == 0 || self.draw.chance(0.3) {
            let atom = Expr::Atom(self.any_atom());
            return if self.draw.chance(0.3) {
                Expr::negate(atom)
            } else {
                atom
            };
        }
        let (a, b) = (self.random_expr(depth - 1), self.random_expr(depth - 1));
        if self.draw.chance(0.5) {
            Expr::and(a, b)
        } else {
            Expr::or(a, b)
        }
    }

    /// Distractor premises: random bodies, heads that are not protected.
    fn distractors(&mut self) -> Option<()> {
        let count = self
            .draw
            .range(self.shape.distractors.0, self.shape.distractors.1);
        for _ in 0..count {
            let mut head = self.any_atom();
            if self.draw.chance(0.5) || self.protected.contains(&head) {
                head = self.fresh()?;
            }
            let body = self.random_expr(self.shape.body_depth);
            self.premises.push(Premise { body, head });
        }
        Some(())
    }
}

fn new_builder(shape: Shape, draw: &mut Draw) -> Option<Builder<'_>> {
    let mut b = Builder {
        draw,
        shape,
        names: Vec::new(),
        premises: Vec::new(),
        known: Vec::new(),
        protected: Vec::new(),
    };
    let base_known = b.draw.range(2, 4);
    for _ in 0..base_known {
        let k = b.fresh()?;
        b.known.push(k);
    }
    Some(b)
}

/// Add some atoms of the graph to the known set (never the protected ones), shuffle everything.
fn finish(b: &mut Builder<'_>) -> (Vec<String>, Vec<String>) {
    let extra = b.draw.range(0, 3);
    for _ in 0..extra {
        let atom = b.any_atom();
        if !b.protected.contains(&atom) && !b.known.contains(&atom) {
            b.known.push(atom);
        }
    }
    b.draw.shuffle(&mut b.premises);
    b.draw.shuffle(&mut b.known);
    let premises = b.premises.iter().map(|p| p.render(&b.names)).collect();
    let known = b.known.iter().map(|&k| b.names[k].clone()).collect();
    (premises, known)
}

fn reachability(shape: Shape, draw: &mut Draw) -> Option<AbductionInstance> {
    let mut b = new_builder(shape, draw)?;
    let mut goals = Vec::new();
    for _ in 0..shape.goals {
        let goal = b.fresh()?;
        b.protected.push(goal);
        let depth = b.draw.range(shape.depth.0, shape.depth.1) as usize;
        let broken = b.draw.chance(0.5);
        b.chain(goal, depth, broken)?;
        goals.push(goal);
    }
    b.distractors()?;
    let (premises, known) = finish(&mut b);
    let reachable = solver::with_theory(b.names.len(), &b.premises, &b.known, |theory| {
        if !theory.consistent(&[]).ok()? {
            return None;
        }
        goals
            .iter()
            .map(|&g| theory.entails(&[], g).ok())
            .collect::<Option<Vec<bool>>>()
    })?;
    Some(AbductionInstance {
        mode: Mode::Reachability,
        premises,
        known,
        goals: goals.iter().map(|&g| b.names[g].clone()).collect(),
        reachable,
        observation: None,
        hypotheses: Vec::new(),
        explanations: Vec::new(),
    })
}

/// Every minimal subset of `hypotheses` that entails `observation` (subsets in size order, so a
/// subset is minimal iff it contains no smaller one already found: entailment is monotone).
fn minimal_explanations(
    theory: &solver::Theory,
    hypotheses: &[usize],
    observation: usize,
) -> Option<Vec<Vec<usize>>> {
    let m = hypotheses.len();
    let mut masks: Vec<u32> = (0..1u32 << m).collect();
    masks.sort_by_key(|s| (s.count_ones(), *s));
    let mut minimal: Vec<u32> = Vec::new();
    for mask in masks {
        if minimal.iter().any(|&found| found & !mask == 0) {
            continue;
        }
        let facts: Vec<usize> = (0..m)
            .filter(|i| mask >> i & 1 == 1)
            .map(|i| hypotheses[i])
            .collect();
        if theory.entails(&facts, observation).ok()? {
            minimal.push(mask);
        }
    }
    Some(
        minimal
            .iter()
            .map(|&mask| {
                (0..m)
                    .filter(|i| mask >> i & 1 == 1)
                    .map(|i| hypotheses[i])
                    .collect()
            })
            .collect(),
    )
}

fn explanation(shape: Shape, draw: &mut Draw) -> Option<AbductionInstance> {
    let mut b = new_builder(shape, draw)?;
    let observation = b.fresh()?;
    let count = b.draw.range(3, 5) as usize;
    let hypotheses: Vec<usize> = (0..count).map(|_| b.fresh()).collect::<Option<_>>()?;
    // Two or three derivations of the observation, each needing one or two hypotheses at the
    // bottom of a chain; some hypotheses end up irrelevant.
    let routes = b.draw.range(1, 3);
    for _ in 0..routes {
        let depth = b.draw.range(shape.depth.0.min(3), shape.depth.0.max(2)) as usize;
        let mut head = observation;
        for _ in 0..depth.saturating_sub(1) {
            let below = b.fresh()?;
            let body = b.entailed_body(below, true)?;
            b.premises.push(Premise { body, head });
            head = below;
        }
        let h1 = Expr::Atom(b.pick(&hypotheses));
        let h2 = Expr::Atom(b.pick(&hypotheses));
        let k = Expr::Atom(b.pick(&b.known.clone()));
        let body = match b.draw.below(3) {
            0 => Expr::and(h1, k),
            1 => Expr::and(h1, h2),
            _ => Expr::or(h1, Expr::and(h2, k)),
        };
        b.premises.push(Premise { body, head });
    }
    b.protected.extend(&hypotheses);
    b.protected.push(observation);
    b.distractors()?;
    let (premises, known) = finish(&mut b);
    let explanations = solver::with_theory(b.names.len(), &b.premises, &b.known, |theory| {
        if !theory.consistent(&hypotheses).ok()? || theory.entails(&[], observation).ok()? {
            return None;
        }
        minimal_explanations(theory, &hypotheses, observation)
    })?;
    if explanations.is_empty() {
        return None;
    }
    let name_set = |set: &Vec<usize>| {
        let mut names: Vec<String> = set.iter().map(|&h| b.names[h].clone()).collect();
        names.sort();
        names
    };
    let mut explanations: Vec<Vec<String>> = explanations.iter().map(name_set).collect();
    explanations.sort();
    Some(AbductionInstance {
        mode: Mode::Explanation,
        premises,
        known,
        goals: Vec::new(),
        reachable: Vec::new(),
        observation: Some(b.names[observation].clone()),
        hypotheses: hypotheses.iter().map(|&h| b.names[h].clone()).collect(),
        explanations,
    })
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

const PAPER_INSTRUCTION: &str = "Now the user has a graph analysis problem. After thorough thinking, once you reach a conclusion, please list the reachable judgement of each goal within <answer>...</answer> to satisfy the formulas, for example:\n<answer>\n(1) A is reachable\n(2) B is unreachable\n...</answer>.";
const PAPER_TAIL: &str = "For each goal, first assume it is true and determine what conditions must be satisfied. Identify which premises directly lead to these goals, then trace back what must be established to satisfy those premises. Finally, check whether the known atoms can lead to these conditions";
const CHAT_INSTRUCTION: &str = "Now the user has a rule-graph problem. A goal is reachable when it must hold in every situation where the known atoms hold and every rule holds; otherwise it is unreachable. After thorough thinking, list the judgement of each goal, in order, within <answer> </answer>, for example:\n<answer>\n(1) A is reachable\n(2) B is unreachable\n</answer>";
const EXPLAIN_INSTRUCTION: &str = "Now the user has an abduction problem. Choose a smallest set of hypotheses that, added to the known atoms, makes the observation hold in every situation where every rule holds (no hypothesis in the set can be dropped). After thorough thinking, give the chosen hypotheses, separated by commas, within <answer> </answer>, for example:\n<answer>HA, HC</answer>";

fn python_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("'{i}'")).collect();
    format!("[{}]", quoted.join(", "))
}

fn numbered_rules(premises: &[String]) -> String {
    premises
        .iter()
        .enumerate()
        .map(|(i, p)| format!("  {}. {p}\n", i + 1))
        .collect()
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

impl Abduction {
    fn judge_reachability(instance: &AbductionInstance, text: &str) -> Verdict {
        const WORDS: &[(&str, bool)] = &[("reachable", true), ("unreachable", false)];
        let names: Vec<&str> = instance.goals.iter().map(String::as_str).collect();
        match answer::statements(text, &names, WORDS) {
            Err(e) => Verdict::Unparseable(e),
            Ok(values) => {
                let wrong: Vec<&str> = names
                    .iter()
                    .zip(values.iter().zip(&instance.reachable))
                    .filter(|(_, (got, want))| got != want)
                    .map(|(n, _)| *n)
                    .collect();
                if wrong.is_empty() {
                    Verdict::Correct
                } else {
                    Verdict::Wrong(format!("wrong judgement for {}", wrong.join(", ")))
                }
            }
        }
    }

    fn judge_explanation(instance: &AbductionInstance, text: &str) -> Verdict {
        // Hypotheses by lower-case name, so reading the answer is one hash per token.
        let candidates: HashMap<String, &str> = instance
            .hypotheses
            .iter()
            .map(|h| (h.to_ascii_lowercase(), h.as_str()))
            .collect();
        let mut chosen: BTreeSet<&str> = BTreeSet::new();
        for token in text.split(|c: char| c == ',' || c.is_whitespace() || "{}[]().`*".contains(c))
        {
            if token.is_empty() || token.eq_ignore_ascii_case("and") {
                continue;
            }
            let Some(&name) = candidates.get(&token.to_ascii_lowercase()) else {
                return Verdict::Unparseable(format!(
                    "`{}` is not a candidate hypothesis",
                    token.chars().take(40).collect::<String>()
                ));
            };
            if !chosen.insert(name) {
                return Verdict::Unparseable(format!("`{name}` named twice"));
            }
        }
        if chosen.is_empty() {
            return Verdict::Unparseable("no hypothesis named".into());
        }
        let is_chosen = |e: &Vec<String>| e.iter().all(|h| chosen.contains(h.as_str()));
        if instance
            .explanations
            .iter()
            .any(|e| e.len() == chosen.len() && is_chosen(e))
        {
            return Verdict::Correct;
        }
        Verdict::Wrong(if instance.explanations.iter().any(is_chosen) {
            "sufficient but not minimal".into()
        } else {
            "does not entail the observation".into()
        })
    }

    fn certify_reachability(
        instance: &AbductionInstance,
        atoms: &expr::Atoms,
        premises: &[Premise],
        known: &[usize],
    ) -> Result<(), CertifyError> {
        let names = atoms.names();
        let goals: Vec<usize> = instance
            .goals
            .iter()
            .map(|g| index_of(atoms, g))
            .collect::<Result<_, _>>()?;
        solver::with_theory(names.len(), premises, known, |theory| {
            if !theory.consistent(&[]).map_err(CertifyError::Unknown)? {
                return Err(CertifyError::Malformed(
                    "the premises and known atoms have no model".into(),
                ));
            }
            for ((&g, name), &claimed) in goals.iter().zip(&instance.goals).zip(&instance.reachable)
            {
                let actual = theory.entails(&[], g).map_err(CertifyError::Unknown)?;
                if actual != claimed {
                    return Err(CertifyError::NotASolution(format!(
                        "{name} is {}reachable",
                        if actual { "" } else { "un" }
                    )));
                }
            }
            Ok(())
        })
    }

    fn certify_explanation(
        instance: &AbductionInstance,
        atoms: &expr::Atoms,
        premises: &[Premise],
        known: &[usize],
    ) -> Result<(), CertifyError> {
        let names = atoms.names();
        let observation = index_of(atoms, instance.observation.as_deref().unwrap_or_default())?;
        let hypotheses: Vec<usize> = instance
            .hypotheses
            .iter()
            .map(|h| index_of(atoms, h))
            .collect::<Result<_, _>>()?;
        let found = solver::with_theory(names.len(), premises, known, |theory| {
            minimal_explanations(theory, &hypotheses, observation)
        })
        .ok_or_else(|| CertifyError::Unknown("Z3 gave up".into()))?;
        let mut found: Vec<Vec<String>> = found
            .iter()
            .map(|set| {
                let mut n: Vec<String> = set.iter().map(|&h| names[h].clone()).collect();
                n.sort();
                n
            })
            .collect();
        found.sort();
        if found == instance.explanations && !found.is_empty() {
            Ok(())
        } else {
            Err(CertifyError::NotASolution(format!(
                "minimal explanations are {found:?}"
            )))
        }
    }
}

/// The index of an atom that may appear in no premise (a known atom or hypothesis no rule uses):
/// such atoms get indices past the premises' atoms.
fn index_of(atoms: &expr::Atoms, name: &str) -> Result<usize, CertifyError> {
    atoms
        .get(name)
        .ok_or_else(|| CertifyError::Malformed(format!("atom {name} in no premise")))
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
                explanation(shape, draw)
            } else {
                reachability(shape, draw)
            };
            if made.is_some() {
                return Ok(made);
            }
        }
        Ok(None)
    }

    fn render(&self, instance: &AbductionInstance, style: PromptStyle) -> Prompt {
        match (instance.mode, style) {
            (Mode::Reachability, PromptStyle::Paper) => {
                let puzzle = format!(
                    "premises: {}\nknown_atoms: {}\ngoals: {}\n{PAPER_TAIL}",
                    python_list(&instance.premises),
                    python_list(&instance.known),
                    python_list(&instance.goals)
                );
                frame::prompt(style, PAPER_INSTRUCTION, &puzzle)
            }
            (Mode::Reachability, PromptStyle::Chat) => {
                let puzzle = format!(
                    "Rules (`(body) => head`: if the body holds, the head holds):\n{}Known atoms: {}\nGoals, in order: {}\nFor each goal, is it reachable?",
                    numbered_rules(&instance.premises),
                    instance.known.join(", "),
                    instance.goals.join(", ")
                );
                frame::prompt(style, CHAT_INSTRUCTION, &puzzle)
            }
            (Mode::Explanation, _) => {
                let puzzle = format!(
                    "Rules (`(body) => head`: if the body holds, the head holds):\n{}Known atoms: {}\nObservation: {}\nCandidate hypotheses: {}\nWhich hypotheses explain the observation?",
                    numbered_rules(&instance.premises),
                    instance.known.join(", "),
                    instance.observation.as_deref().unwrap_or_default(),
                    instance.hypotheses.join(", ")
                );
                frame::prompt(style, EXPLAIN_INSTRUCTION, &puzzle)
            }
        }
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
                    instance.hypotheses[1..].join(", ")
                }
            }
        }
    }

    fn judge(&self, instance: &AbductionInstance, text: &str) -> Verdict {
        match instance.mode {
            Mode::Reachability => Abduction::judge_reachability(instance, text),
            Mode::Explanation => Abduction::judge_explanation(instance, text),
        }
    }

    fn certify(&self, instance: &AbductionInstance) -> Result<(), CertifyError> {
        let (mut atoms, premises) = parse_instance(instance).map_err(CertifyError::Malformed)?;
        let known: Vec<usize> = instance.known.iter().map(|k| atoms.intern(k)).collect();
        for extra in instance
            .goals
            .iter()
            .chain(&instance.hypotheses)
            .chain(&instance.observation)
        {
            atoms.intern(extra);
        }
        match instance.mode {
            Mode::Reachability => {
                Abduction::certify_reachability(instance, &atoms, &premises, &known)
            }
            Mode::Explanation => {
                Abduction::certify_explanation(instance, &atoms, &premises, &known)
            }
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
