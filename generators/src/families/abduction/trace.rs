//! Reasoning traces for abduction, and their checker.
//!
//! Reachability: the forward chain from the known atoms — `By premise 4, (A AND B) => C: C
//! holds.`, each step a premise whose body is true given the atoms derived so far (three-valued:
//! an atom not derived is unknown, so a `NOT` never fires on a guess) — then one line per goal:
//! reachable (derived above), or unreachable with a countermodel (an assignment in which every
//! premise and known atom holds and the goal is false), which also shows where its chain breaks.
//!
//! Explanation: the chosen hypotheses supposed, the chain to the observation, and for each chosen
//! hypothesis a countermodel without it — why the set is minimal. Where the observation follows
//! only by cases (a body negates an atom the chain leaves open), a proof by cases follows the
//! chain: `Case K is true:` and `Case K is false:`, each indented block a chain under that
//! supposition ending where it derives the observation or refutes the case (`… K holds, but this
//! case has K false.`), or a further split; at most [`MAX_CASE_DEPTH`] cases deep.

use super::expr::{Atoms, Expr, Premise};
use super::{AbductionInstance, Mode, parse_all, solver};

/// Three-valued truth of a body given the derived atoms (true) and nothing else (unknown).
fn holds(e: &Expr, derived: &[bool]) -> Option<bool> {
    holds_in(e, &|a| derived[a].then_some(true))
}

/// Three-valued (Kleene) truth of a body given each atom's value: `None` is unknown.
fn holds_in(e: &Expr, value: &impl Fn(usize) -> Option<bool>) -> Option<bool> {
    match e {
        Expr::Atom(a) => value(*a),
        Expr::Not(inner) => holds_in(inner, value).map(|v| !v),
        Expr::And(a, b) => match (holds_in(a, value), holds_in(b, value)) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        },
        Expr::Or(a, b) => match (holds_in(a, value), holds_in(b, value)) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
    }
}

/// Two-valued truth under a complete assignment.
fn eval(e: &Expr, truth: &[bool]) -> bool {
    match e {
        Expr::Atom(a) => truth[*a],
        Expr::Not(inner) => !eval(inner, truth),
        Expr::And(a, b) => eval(a, truth) && eval(b, truth),
        Expr::Or(a, b) => eval(a, truth) || eval(b, truth),
    }
}

/// The instance parsed into indices: atoms (every name the instance mentions), premises, known.
struct Parsed {
    atoms: Atoms,
    premises: Vec<Premise>,
    known: Vec<usize>,
}

fn parse(instance: &AbductionInstance) -> Result<Parsed, String> {
    let (atoms, premises, known) = parse_all(instance)?;
    Ok(Parsed {
        atoms,
        premises,
        known,
    })
}

impl Parsed {
    fn atom(&self, name: &str) -> Result<usize, String> {
        self.atoms
            .get(name)
            .ok_or_else(|| format!("{name:?} is not an atom of the problem"))
    }

    fn with_facts(&self, facts: &[usize]) -> Vec<bool> {
        let mut derived = vec![false; self.atoms.names().len()];
        for &f in self.known.iter().chain(facts) {
            derived[f] = true;
        }
        derived
    }

    /// The forward chain from the known atoms and `facts`: the premises that fire, in order.
    fn chain(&self, facts: &[usize]) -> (Vec<usize>, Vec<bool>) {
        let mut derived = self.with_facts(facts);
        let mut fired = Vec::new();
        loop {
            let next = self
                .premises
                .iter()
                .position(|p| !derived[p.head] && holds(&p.body, &derived) == Some(true));
            let Some(k) = next else {
                return (fired, derived);
            };
            derived[self.premises[k].head] = true;
            fired.push(k);
        }
    }

    /// For each `(facts, goal)`, a model of the premises, the known atoms and `facts` in which
    /// `goal` is false: the fixpoint from the chain when it leaves `goal` false, else Z3's
    /// canonical smallest one ([`solver::Theory::countermodel`]). `None` when one has none.
    fn countermodels(&self, asked: &[(Vec<usize>, usize)]) -> Option<Vec<Vec<bool>>> {
        let mut found: Vec<Option<Vec<bool>>> = asked
            .iter()
            .map(|(facts, goal)| self.fixpoint_countermodel(facts, *goal))
            .collect();
        if found.iter().any(Option::is_none) {
            // One theory for every question the fixpoint left open: loading it is the cost.
            solver::with_theory(self.atoms.names().len(), &self.premises, &self.known, |t| {
                for (slot, (facts, goal)) in found.iter_mut().zip(asked) {
                    if slot.is_none() {
                        *slot = t.countermodel(facts, *goal).ok().flatten();
                    }
                }
            });
        }
        found.into_iter().collect()
    }

    /// Start from what the chain derives and add each head whose premise would otherwise fail,
    /// until every premise holds; `None` when that makes `goal` true.
    fn fixpoint_countermodel(&self, facts: &[usize], goal: usize) -> Option<Vec<bool>> {
        let (_, mut truth) = self.chain(facts);
        loop {
            let broken = self
                .premises
                .iter()
                .find(|p| !truth[p.head] && eval(&p.body, &truth));
            match broken {
                None => break,
                Some(p) if p.head == goal => return None,
                Some(p) => truth[p.head] = true,
            }
        }
        (!truth[goal]).then_some(truth)
    }

    fn premise_line(&self, instance: &AbductionInstance, k: usize) -> String {
        let head = &self.atoms.names()[self.premises[k].head];
        format!(
            "By premise {}, {}: {head} holds.",
            k + 1,
            instance.premises[k]
        )
    }

    fn true_atoms(&self, truth: &[bool]) -> String {
        let names: Vec<&str> = truth
            .iter()
            .enumerate()
            .filter(|(_, t)| **t)
            .map(|(i, _)| self.atoms.names()[i].as_str())
            .collect();
        if names.is_empty() {
            "no atom true".into()
        } else {
            format!("exactly {} true", names.join(", "))
        }
    }

    /// Check a countermodel stated as [`Parsed::true_atoms`] writes it: every premise holds,
    /// `facts` and the known atoms are true, `goal` is false.
    fn check_countermodel(&self, stated: &str, facts: &[usize], goal: usize) -> Result<(), String> {
        let mut truth = vec![false; self.atoms.names().len()];
        if stated != "no atom true" {
            let list = stated
                .strip_prefix("exactly ")
                .and_then(|s| s.strip_suffix(" true"))
                .ok_or_else(|| format!("not an assignment: {stated:?}"))?;
            for name in list.split(", ") {
                truth[self.atom(name)?] = true;
            }
        }
        if let Some(&k) = self.known.iter().chain(facts).find(|&&k| !truth[k]) {
            return Err(format!("{} must be true", self.atoms.names()[k]));
        }
        if let Some(k) = self
            .premises
            .iter()
            .position(|p| !truth[p.head] && eval(&p.body, &truth))
        {
            return Err(format!("premise {} fails under the assignment", k + 1));
        }
        if truth[goal] {
            return Err(format!(
                "{} is true under the assignment",
                self.atoms.names()[goal]
            ));
        }
        Ok(())
    }
}

fn unreachable_line(goal: &str, model: &str) -> String {
    format!(
        "{goal} is unreachable: with {model} and every other atom false, every premise holds and the known atoms are true, but {goal} is false."
    )
}

fn reachable_line(goal: &str) -> String {
    format!("{goal} is reachable: it holds by the steps above.")
}

fn without_line(h: &str, model: &str, observation: &str) -> String {
    format!(
        "Without {h}: with {model} and every other atom false, every premise holds and the known atoms and the other chosen hypotheses are true, but {observation} is false; so {h} is needed."
    )
}

/// The trace of `instance`; empty when its answer has no derivation of this shape (a label the
/// generator did not make, or a case the chain and the fixpoint do not settle).
pub(super) fn trace(instance: &AbductionInstance) -> String {
    let Ok(p) = parse(instance) else {
        return String::new();
    };
    let lines = match instance.mode {
        Mode::Reachability => reachability(instance, &p),
        Mode::Explanation => explanation(instance, &p),
    };
    lines.map(|l| l.join("\n")).unwrap_or_default()
}

fn reachability(instance: &AbductionInstance, p: &Parsed) -> Option<Vec<String>> {
    let (fired, derived) = p.chain(&[]);
    let mut lines: Vec<String> = fired.iter().map(|&k| p.premise_line(instance, k)).collect();
    let goals: Vec<usize> = instance
        .goals
        .iter()
        .map(|g| p.atom(g).ok())
        .collect::<Option<_>>()?;
    let asked: Vec<(Vec<usize>, usize)> = goals
        .iter()
        .zip(&instance.reachable)
        .filter(|(_, r)| !**r)
        .map(|(&g, _)| (Vec::new(), g))
        .collect();
    let mut models = p.countermodels(&asked)?.into_iter();
    for ((goal, &g), &reachable) in instance.goals.iter().zip(&goals).zip(&instance.reachable) {
        if reachable {
            derived[g].then(|| lines.push(reachable_line(goal)))?;
        } else {
            let model = models.next()?;
            lines.push(unreachable_line(goal, &p.true_atoms(&model)));
        }
    }
    Some(lines)
}

/// An explanation item's first explanation and observation as atoms: (hypotheses, observation).
fn explanation_atoms(instance: &AbductionInstance, p: &Parsed) -> Option<(Vec<usize>, usize)> {
    let facts = instance
        .explanations
        .first()?
        .iter()
        .map(|h| p.atom(h).ok())
        .collect::<Option<_>>()?;
    Some((facts, p.atom(instance.observation.as_deref()?).ok()?))
}

fn explanation(instance: &AbductionInstance, p: &Parsed) -> Option<Vec<String>> {
    let chosen = instance.explanations.first()?;
    let observation = instance.observation.as_deref()?;
    let (facts, o) = explanation_atoms(instance, p)?;
    let (fired, derived) = p.chain(&facts);
    let mut lines = vec![format!("Suppose {}.", chosen.join(", "))];
    lines.extend(fired.iter().map(|&k| p.premise_line(instance, k)));
    if derived[o] {
        lines.push(explained_line(observation));
    } else {
        // The observation follows only by cases (through a negated atom the chain leaves open).
        lines.extend(proof_by_cases(instance, p, &derived, o).ok()?);
        lines.push(explained_by_cases_line(observation));
    }
    let asked: Vec<(Vec<usize>, usize)> =
        (0..chosen.len()).map(|i| (without(&facts, i), o)).collect();
    let models = p.countermodels(&asked)?;
    for (h, model) in chosen.iter().zip(&models) {
        lines.push(without_line(h, &p.true_atoms(model), observation));
    }
    lines.push(format!(
        "So {} is a minimal explanation.",
        chosen.join(", ")
    ));
    Some(lines)
}

/// `facts` without its `i`-th.
fn without(facts: &[usize], i: usize) -> Vec<usize> {
    facts
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != i)
        .map(|(_, f)| *f)
        .collect()
}

/// The premise a `By premise …` line names, as an index.
fn premise_number(p: &Parsed, line: &str) -> Result<usize, String> {
    let rest = line.strip_prefix("By premise ").ok_or("not a step")?;
    let (number, _) = rest.split_once(", ").ok_or("malformed step")?;
    let k: usize = number
        .parse()
        .map_err(|_| format!("{number:?} is not a premise number"))?;
    if !(1..=p.premises.len()).contains(&k) {
        return Err(format!("there is no premise {k}"));
    }
    Ok(k - 1)
}

/// Check a `By premise …` line against each atom's value so far (derived true, supposed by a
/// case, or unknown): the premise's body holds, and the line is the premise's step, or its
/// refutation where the case supposes the head false. Returns the head.
fn check_step(
    instance: &AbductionInstance,
    p: &Parsed,
    line: &str,
    value: &impl Fn(usize) -> Option<bool>,
) -> Result<usize, String> {
    let k = premise_number(p, line)?;
    let head = p.premises[k].head;
    let expected = if value(head) == Some(false) {
        refuted_line(p, instance, k)
    } else {
        p.premise_line(instance, k)
    };
    if line != expected {
        return Err(format!("expected {expected:?}"));
    }
    if holds_in(&p.premises[k].body, value) != Some(true) {
        return Err(format!("the body of premise {} does not hold yet", k + 1));
    }
    Ok(head)
}

/// Check every line of `text` against the instance; the error names the first that does not
/// follow.
pub(super) fn check(instance: &AbductionInstance, text: &str) -> Result<(), String> {
    let p = parse(instance)?;
    let lines: Vec<&str> = text.lines().collect();
    let at = |i: usize| move |e: String| format!("line {}: {e}", i + 1);
    match instance.mode {
        Mode::Reachability => {
            let mut derived = p.with_facts(&[]);
            let mut i = 0;
            while i < lines.len() && lines[i].starts_with("By premise ") {
                let head = check_step(instance, &p, lines[i], &|a| derived[a].then_some(true))
                    .map_err(at(i))?;
                derived[head] = true;
                i += 1;
            }
            for ((j, goal), &reachable) in
                instance.goals.iter().enumerate().zip(&instance.reachable)
            {
                let line = lines.get(i + j).copied().unwrap_or_default();
                let g = p.atom(goal)?;
                if reachable {
                    if line != reachable_line(goal) || !derived[g] {
                        return Err(at(i + j)(format!(
                            "{goal} is reachable and must be derived"
                        )));
                    }
                    continue;
                }
                let model = line
                    .strip_prefix(&format!("{goal} is unreachable: with "))
                    .and_then(|r| r.split_once(" and every other atom false"))
                    .map(|(m, _)| m)
                    .filter(|m| line == unreachable_line(goal, m))
                    .ok_or_else(|| at(i + j)(format!("expected {goal}'s countermodel")))?;
                p.check_countermodel(model, &[], g).map_err(at(i + j))?;
            }
            let end = i + instance.goals.len();
            if lines.len() > end {
                return Err(at(end)("a line after the last goal's".into()));
            }
            Ok(())
        }
        Mode::Explanation => check_explanation(instance, &p, &lines),
    }
}

fn check_explanation(
    instance: &AbductionInstance,
    p: &Parsed,
    lines: &[&str],
) -> Result<(), String> {
    let at = |i: usize| move |e: String| format!("line {}: {e}", i + 1);
    let observation = instance.observation.as_deref().unwrap_or_default();
    let o = p.atom(observation)?;
    let chosen: Vec<&str> = lines
        .first()
        .and_then(|l| l.strip_prefix("Suppose "))
        .and_then(|l| l.strip_suffix('.'))
        .ok_or("line 1: the trace does not start with the supposed hypotheses")?
        .split(", ")
        .collect();
    let mut sorted = chosen.clone();
    sorted.sort_unstable();
    if !instance.explanations.iter().any(|e| *e == sorted) {
        return Err("line 1: not one of the minimal explanations".into());
    }
    let facts: Vec<usize> = chosen.iter().map(|h| p.atom(h)).collect::<Result<_, _>>()?;
    let mut derived = p.with_facts(&facts);
    let mut i = 1;
    while i < lines.len() && lines[i].starts_with("By premise ") {
        let head =
            check_step(instance, p, lines[i], &|a| derived[a].then_some(true)).map_err(at(i))?;
        derived[head] = true;
        i += 1;
    }
    if lines.get(i).is_some_and(|l| l.starts_with("Case ")) {
        check_cases(instance, p, lines, &mut i, open_state(&derived), o, 0)?;
        if lines.get(i) != Some(&explained_by_cases_line(observation).as_str()) {
            return Err(at(i)(format!(
                "expected {observation} to hold in every case here"
            )));
        }
    } else if lines.get(i) != Some(&explained_line(observation).as_str()) || !derived[o] {
        return Err(at(i)(format!("{observation} must be derived here")));
    }
    for (j, h) in chosen.iter().enumerate() {
        let n = i + 1 + j;
        let line = lines.get(n).copied().unwrap_or_default();
        let model = line
            .strip_prefix(&format!("Without {h}: with "))
            .and_then(|r| r.split_once(" and every other atom false"))
            .map(|(m, _)| m)
            .filter(|m| line == without_line(h, m, observation))
            .ok_or_else(|| at(n)(format!("expected the countermodel without {h}")))?;
        p.check_countermodel(model, &without(&facts, j), o)
            .map_err(at(n))?;
    }
    let last = i + 1 + chosen.len();
    if lines.get(last)
        != Some(&format!("So {} is a minimal explanation.", chosen.join(", ")).as_str())
        || lines.len() != last + 1
    {
        return Err(at(last)("expected the conclusion as the last line".into()));
    }
    Ok(())
}

/// How deep a proof by cases may nest (each level supposes one more atom true, then false).
const MAX_CASE_DEPTH: usize = 12;
/// The most lines a proof by cases may take; an item that needs more has no trace.
const MAX_CASE_LINES: usize = 400;
/// The most premise bodies the search for a proof by cases evaluates: a bound on its time for
/// any label (thousands of premises, many negated atoms), far above what generated items use.
const MAX_CASE_WORK: usize = 4_000_000;

fn explained_line(observation: &str) -> String {
    format!("{observation} holds, so they explain it.")
}

fn explained_by_cases_line(observation: &str) -> String {
    format!("{observation} holds in every case, so they explain it.")
}

/// The case that supposes the goal true.
fn supposed_line(goal: &str) -> String {
    format!("{goal} holds in this case.")
}

fn case_line(atom: &str, value: bool) -> String {
    format!("Case {atom} is {value}:")
}

/// A premise firing on an atom the case supposes false: the case cannot happen.
fn refuted_line(p: &Parsed, instance: &AbductionInstance, k: usize) -> String {
    let head = &p.atoms.names()[p.premises[k].head];
    format!(
        "By premise {}, {}: {head} holds, but this case has {head} false.",
        k + 1,
        instance.premises[k]
    )
}

/// Each atom's value for a proof by cases: derived true, or unknown.
fn open_state(derived: &[bool]) -> Vec<Option<bool>> {
    derived.iter().map(|&d| d.then_some(true)).collect()
}

/// Marks the atoms of `e` (in `atoms`) and those under a `NOT` (in `negated`).
fn mark_atoms(e: &Expr, under_not: bool, atoms: &mut [bool], negated: &mut [bool]) {
    match e {
        Expr::Atom(a) => {
            atoms[*a] = true;
            negated[*a] |= under_not;
        }
        Expr::Not(inner) => mark_atoms(inner, true, atoms, negated),
        Expr::And(a, b) | Expr::Or(a, b) => {
            mark_atoms(a, under_not, atoms, negated);
            mark_atoms(b, under_not, atoms, negated);
        }
    }
}

/// Why the search found no proof by cases (the item gets no trace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NoCaseProof {
    /// Cases would nest deeper than [`MAX_CASE_DEPTH`].
    Depth,
    /// The proof would take more than [`MAX_CASE_LINES`] lines.
    Lines,
    /// The search evaluated [`MAX_CASE_WORK`] premise bodies.
    Work,
    /// A case stays open with every candidate decided: the goal does not follow.
    NotEntailed,
}

/// The proof by cases that `goal` follows from the atoms `derived` by the forward chain (the
/// lines between the chain and the conclusion), or the bound that stopped the search.
fn proof_by_cases(
    instance: &AbductionInstance,
    p: &Parsed,
    derived: &[bool],
    goal: usize,
) -> Result<Vec<String>, NoCaseProof> {
    Cases::new(instance, p, goal).prove(open_state(derived), 0)
}

/// The proof by cases of an explanation item's observation from its first explanation, as
/// [`trace`] would write it (tests reach the search's bounds through it).
#[cfg(test)]
pub(super) fn explanation_case_proof(
    instance: &AbductionInstance,
) -> Result<Vec<String>, NoCaseProof> {
    let p = parse(instance).expect("a well-formed instance");
    let (facts, o) = explanation_atoms(instance, &p).expect("an explanation item");
    proof_by_cases(instance, &p, &p.chain(&facts).1, o)
}

/// How a case's forward chain ended.
enum Chain {
    /// It derived the goal or refuted the case: the case is closed.
    Closed,
    /// It stopped with the goal open, in this state.
    Open(Vec<Option<bool>>),
    /// The search's work bound ran out.
    Exhausted,
}

/// The search for a proof by cases that `goal` holds: the forward chain under the case's
/// suppositions until it derives the goal or contradicts a supposition; where it stops short, a
/// split on an open atom that a relevant body negates. The split candidates are complete: once
/// every negated atom of the premises the goal depends on is decided, those bodies are monotone
/// in the atoms left open, so a chain that then stops short leaves a countermodel (the open atoms
/// false) — the goal would not be entailed. So any order of splits finds a proof; the order only
/// changes its length, and each split takes the candidate whose two cases close soonest.
struct Cases<'a> {
    instance: &'a AbductionInstance,
    p: &'a Parsed,
    goal: usize,
    candidates: Vec<usize>,
    lines_left: usize,
    work_left: std::cell::Cell<usize>,
}

impl<'a> Cases<'a> {
    fn new(instance: &'a AbductionInstance, p: &'a Parsed, goal: usize) -> Self {
        let n = p.atoms.names().len();
        // The goal's premises, their bodies' atoms' premises, …, and the premises that could
        // refute a supposition (those of the negated atoms): what the proof can use.
        let mut relevant = vec![false; n];
        let mut negated = vec![false; n];
        relevant[goal] = true;
        let mut used = vec![false; p.premises.len()];
        loop {
            let mut grew = false;
            for (k, premise) in p.premises.iter().enumerate() {
                if used[k] || !(relevant[premise.head] || negated[premise.head]) {
                    continue;
                }
                used[k] = true;
                grew = true;
                mark_atoms(&premise.body, false, &mut relevant, &mut negated);
            }
            if !grew {
                break;
            }
        }
        // The goal itself is a candidate: supposing it false may refute itself (by contradiction).
        let candidates = (0..n).filter(|&a| negated[a]).collect();
        Cases {
            instance,
            p,
            goal,
            candidates,
            lines_left: MAX_CASE_LINES,
            work_left: std::cell::Cell::new(MAX_CASE_WORK),
        }
    }

    /// The forward chain from `state`, its lines (indented by `indent`) into `lines`.
    fn chain(&self, mut state: Vec<Option<bool>>, indent: &str, lines: &mut Vec<String>) -> Chain {
        if state[self.goal] == Some(true) {
            let goal = &self.p.atoms.names()[self.goal];
            lines.push(format!("{indent}{}", supposed_line(goal)));
            return Chain::Closed;
        }
        loop {
            let work = self.work_left.get();
            if work < self.p.premises.len() {
                return Chain::Exhausted;
            }
            self.work_left.set(work - self.p.premises.len());
            let Some(k) = self.p.premises.iter().position(|premise| {
                state[premise.head] != Some(true)
                    && holds_in(&premise.body, &|a| state[a]) == Some(true)
            }) else {
                return Chain::Open(state);
            };
            let head = self.p.premises[k].head;
            if state[head] == Some(false) {
                lines.push(format!(
                    "{indent}{}",
                    refuted_line(self.p, self.instance, k)
                ));
                return Chain::Closed;
            }
            state[head] = Some(true);
            lines.push(format!("{indent}{}", self.p.premise_line(self.instance, k)));
            if head == self.goal {
                return Chain::Closed;
            }
        }
    }

    /// The open candidate whose cases the chain alone closes most often (ties: the first).
    fn split_atom(&self, state: &[Option<bool>]) -> Result<Option<usize>, NoCaseProof> {
        let closes = |atom: usize| -> Result<usize, NoCaseProof> {
            let mut closed = 0;
            for value in [true, false] {
                let mut case = state.to_vec();
                case[atom] = Some(value);
                match self.chain(case, "", &mut Vec::new()) {
                    Chain::Closed => closed += 1,
                    Chain::Open(_) => {}
                    Chain::Exhausted => return Err(NoCaseProof::Work),
                }
            }
            Ok(closed)
        };
        let open = self
            .candidates
            .iter()
            .copied()
            .filter(|&a| state[a].is_none());
        let mut best: Option<(usize, usize)> = None;
        for atom in open {
            let score = closes(atom)?;
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((atom, score));
            }
            if score == 2 {
                break;
            }
        }
        Ok(best.map(|(atom, _)| atom))
    }

    /// The lines that close the case `state`, `depth` cases deep (indented two spaces a level),
    /// or the bound no proof fits.
    fn prove(
        &mut self,
        state: Vec<Option<bool>>,
        depth: usize,
    ) -> Result<Vec<String>, NoCaseProof> {
        let indent = "  ".repeat(depth);
        let mut lines = Vec::new();
        let end = self.chain(state, &indent, &mut lines);
        self.take_lines(lines.len())?;
        let state = match end {
            Chain::Closed => return Ok(lines),
            Chain::Exhausted => return Err(NoCaseProof::Work),
            Chain::Open(state) => state,
        };
        if depth == MAX_CASE_DEPTH {
            return Err(NoCaseProof::Depth);
        }
        let atom = self.split_atom(&state)?.ok_or(NoCaseProof::NotEntailed)?;
        let name = &self.p.atoms.names()[atom];
        for value in [true, false] {
            self.take_lines(1)?;
            lines.push(format!("{indent}{}", case_line(name, value)));
            let mut case = state.clone();
            case[atom] = Some(value);
            lines.extend(self.prove(case, depth + 1)?);
        }
        Ok(lines)
    }

    fn take_lines(&mut self, n: usize) -> Result<(), NoCaseProof> {
        self.lines_left = self.lines_left.checked_sub(n).ok_or(NoCaseProof::Lines)?;
        Ok(())
    }
}

/// Check the proof by cases that starts at `lines[*i]`, `depth` cases deep, under `state`: steps
/// that follow under the case's suppositions until one derives `goal` or refutes the case, or a
/// split into both values of an open atom whose two cases are closed in turn. On success `*i` is
/// the line after it.
fn check_cases(
    instance: &AbductionInstance,
    p: &Parsed,
    lines: &[&str],
    i: &mut usize,
    mut state: Vec<Option<bool>>,
    goal: usize,
    depth: usize,
) -> Result<(), String> {
    let indent = "  ".repeat(depth);
    loop {
        let n = *i;
        let at = |e: String| format!("line {}: {e}", n + 1);
        let line = lines
            .get(n)
            .and_then(|l| l.strip_prefix(indent.as_str()))
            .filter(|l| !l.starts_with(' '))
            .ok_or_else(|| at("the case is not closed".into()))?;
        *i += 1;
        if state[goal] == Some(true) {
            let name = &p.atoms.names()[goal];
            return if line == supposed_line(name) {
                Ok(())
            } else {
                Err(at(format!("expected {:?}", supposed_line(name))))
            };
        }
        if line.starts_with("By premise ") {
            let head = check_step(instance, p, line, &|a| state[a]).map_err(at)?;
            // A refutation, or the goal derived, closes the case.
            if state[head] == Some(false) || head == goal {
                return Ok(());
            }
            state[head] = Some(true);
            continue;
        }
        let name = line
            .strip_prefix("Case ")
            .and_then(|l| l.strip_suffix(" is true:"))
            .ok_or_else(|| at("expected a step or a case".into()))?;
        let atom = p.atom(name).map_err(at)?;
        if state[atom].is_some() {
            return Err(at(format!("{name} is not open here")));
        }
        if depth == MAX_CASE_DEPTH {
            return Err(at(format!("cases nest deeper than {MAX_CASE_DEPTH}")));
        }
        let mut case = state.clone();
        case[atom] = Some(true);
        check_cases(instance, p, lines, i, case, goal, depth + 1)?;
        let other = format!("{indent}{}", case_line(name, false));
        if lines.get(*i) != Some(&other.as_str()) {
            return Err(format!("line {}: expected {other:?}", *i + 1));
        }
        *i += 1;
        state[atom] = Some(false);
        return check_cases(instance, p, lines, i, state, goal, depth + 1);
    }
}
