//! Reasoning traces for abduction, and their checker.
//!
//! Reachability: the forward chain from the known atoms — `By premise 4, (A AND B) => C: C
//! holds.`, each step a premise whose body is true given the atoms derived so far (three-valued:
//! an atom not derived is unknown, so a `NOT` never fires on a guess) — then one line per goal:
//! reachable (derived above), or unreachable with a countermodel (an assignment in which every
//! premise and known atom holds and the goal is false), which also shows where its chain breaks.
//!
//! Explanation: the chosen hypotheses supposed, the chain to the observation, and for each chosen
//! hypothesis a countermodel without it — why the set is minimal.

use super::expr::{Atoms, Expr, Premise};
use super::{AbductionInstance, Mode, parse_all, solver};

/// Three-valued truth of a body given the derived atoms (true) and nothing else (unknown).
fn holds(e: &Expr, derived: &[bool]) -> Option<bool> {
    match e {
        Expr::Atom(a) => derived[*a].then_some(true),
        Expr::Not(inner) => holds(inner, derived).map(|v| !v),
        Expr::And(a, b) => match (holds(a, derived), holds(b, derived)) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        },
        Expr::Or(a, b) => match (holds(a, derived), holds(b, derived)) {
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

fn explanation(instance: &AbductionInstance, p: &Parsed) -> Option<Vec<String>> {
    let chosen = instance.explanations.first()?;
    let observation = instance.observation.as_deref()?;
    let o = p.atom(observation).ok()?;
    let facts: Vec<usize> = chosen
        .iter()
        .map(|h| p.atom(h).ok())
        .collect::<Option<_>>()?;
    let (fired, derived) = p.chain(&facts);
    if !derived[o] {
        return None;
    }
    let mut lines = vec![format!("Suppose {}.", chosen.join(", "))];
    lines.extend(fired.iter().map(|&k| p.premise_line(instance, k)));
    lines.push(format!("{observation} holds, so they explain it."));
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

/// Check a `By premise …` line against the atoms derived so far; returns the head it derives.
fn check_step(
    instance: &AbductionInstance,
    p: &Parsed,
    line: &str,
    derived: &[bool],
) -> Result<usize, String> {
    let rest = line.strip_prefix("By premise ").ok_or("not a step")?;
    let (number, _) = rest.split_once(", ").ok_or("malformed step")?;
    let k: usize = number
        .parse()
        .map_err(|_| format!("{number:?} is not a premise number"))?;
    if !(1..=p.premises.len()).contains(&k) {
        return Err(format!("there is no premise {k}"));
    }
    if line != p.premise_line(instance, k - 1) {
        return Err(format!("expected {:?}", p.premise_line(instance, k - 1)));
    }
    if holds(&p.premises[k - 1].body, derived) != Some(true) {
        return Err(format!("the body of premise {k} does not hold yet"));
    }
    Ok(p.premises[k - 1].head)
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
                let head = check_step(instance, &p, lines[i], &derived).map_err(at(i))?;
                derived[head] = true;
                i += 1;
            }
            if lines.len() - i != instance.goals.len() {
                return Err(format!(
                    "{} goal lines after the chain, {} goals",
                    lines.len() - i,
                    instance.goals.len()
                ));
            }
            for ((j, goal), &reachable) in
                instance.goals.iter().enumerate().zip(&instance.reachable)
            {
                let line = lines[i + j];
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
        .ok_or("the trace does not start with the supposed hypotheses")?
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
        let head = check_step(instance, p, lines[i], &derived).map_err(at(i))?;
        derived[head] = true;
        i += 1;
    }
    if lines.get(i) != Some(&format!("{observation} holds, so they explain it.").as_str())
        || !derived[o]
    {
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
