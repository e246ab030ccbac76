//! Reasoning traces for deduction: a derivation of the unique model (or of a contradiction), each
//! step a consequence of the formulas and the steps before it, and the checker that proves it.
//!
//! A step is one of
//! - `B is True, since otherwise formula 3 would be false.` — with the values fixed so far and
//!   `B` false, formula 3 is false whatever values its open variables take (decided exactly, on
//!   the formula's truth table over its own at most 16 variables);
//! - `Suppose B is True.` opening a case, indented by two spaces, that ends with
//!   `Then formula 3 is false: a contradiction.`, followed (one level out) by `So B is False.`
//!
//! The top level ends with `All N formulas hold under this assignment, and every variable was
//! forced, so it is the only one.` or, for an unsatisfiable set, with a contradiction and
//! `So no assignment satisfies all the formulas.` The derivation is a DPLL search whose
//! propagation is the single-formula rule above, with failed-literal probing (a value refuted by
//! propagation alone is supposed first) and, where no value fails, a lookahead solver's case
//! split: on the variable whose two probes fixed the most variables (the product), or on the
//! main line the other value whose probe fixed the most — the smallest cases left to refute,
//! which keeps more level 9–10 derivations within [`MAX_TRACE_LINES`]. Every step is checked on
//! one formula's table (at most 2^16 rows; the checker stops past [`MAX_CHECK_WORK`] rows in
//! all).

use super::formula::{Formula, Op};
use super::table::Table;

/// Most truth-table rows one trace may look at before the search gives up (an instance the
/// generator never makes; a hostile label gets an empty trace rather than an unbounded search).
const MAX_WORK: usize = 200_000_000;
/// Longest derivation written, in lines: past it an item has no trace (some level 9–10 items
/// need tens of thousands of case lines — a proof, but no SFT target — see BENCHMARKS.md for
/// how many).
pub(super) const MAX_TRACE_LINES: usize = 3_000;
/// Most truth-table rows the checker looks at in one trace (a hostile trace gets an error, not
/// an unbounded check).
const MAX_CHECK_WORK: usize = 50_000_000;
/// Indentation of one case.
const INDENT: &str = "  ";

/// Most distinct variables a formula may have for its steps to be checked (its truth table has
/// 2^this rows; the generator's formulas have at most 16 leaves).
pub(super) const MAX_FORMULA_VARS: usize = 16;

/// Three-valued (Kleene: unknown stays unknown) evaluation of one formula under many partial
/// assignments at once, one per bit *lane*: a value is the pair (lanes where it is true, lanes
/// where it is false); a lane in neither is unknown. Sound but weaker than the truth table; cheap
/// whatever the number of open variables, and one pass over the formula answers every lane.
type Lanes = (u64, u64);

/// Every lane.
const ALL_LANES: u64 = u64::MAX;

fn kleene(f: &Formula, leaves: &[Lanes]) -> Lanes {
    match f {
        Formula::Lit { var, neg } => {
            let (t, f) = leaves[*var];
            if *neg { (f, t) } else { (t, f) }
        }
        Formula::Not(inner) => {
            let (t, f) = kleene(inner, leaves);
            (f, t)
        }
        Formula::Bin(op, l, r) => {
            let ((xt, xf), (yt, yf)) = (kleene(l, leaves), kleene(r, leaves));
            match op {
                Op::And => (xt & yt, xf | yf),
                Op::Or => (xt | yt, xf & yf),
                Op::Implies => (xf | yt, xt & yf),
                Op::Iff => ((xt & yt) | (xf & yf), (xt & yf) | (xf & yt)),
                Op::Xor => ((xt & yf) | (xf & yt), (xt & yt) | (xf & yf)),
            }
        }
    }
}

/// The lane of the partial assignment itself.
const BASE_LANE: u64 = 1;

/// The lane where local variable `j`, open in the base assignment, is set to `value`.
fn probe_lane(j: usize, value: bool) -> u64 {
    1 << (1 + 2 * j + usize::from(value))
}

/// Open variables up to which the search decides a formula on its truth table (2^this rows);
/// above it, three-valued evaluation (cheaper, and enough while many variables are open).
const EXACT_OPEN: u32 = 8;

/// One formula as a truth table over its own variables: what a step about it is decided by.
/// A step is exact — "with these values, formula k is false whatever the open variables are" —
/// not three-valued evaluation, which misses what `(B ⊕ C) ∨ (B ↔ C)` forces.
struct Local {
    /// The formula over its own variables (`vars[j]` renamed to `j`).
    formula: Formula,
    vars: Vec<usize>,
    table: Table,
    /// What [`Local::rows`] found for recent local assignments: a search revisits the same few
    /// states of a formula over and over (every probe re-propagates it), and reading the table
    /// costs up to 2^[`EXACT_OPEN`] lookups.
    memo: std::cell::RefCell<RowsMemo>,
}

/// Slots of a formula's [`Local::memo`] (a power of two; direct-mapped, so bounded whatever the
/// search does). 256 (3 KB a formula) searches as fast as 1,024 within noise and faster than
/// 4,096, whose ~100 tables a level-10 search no longer keeps in cache (`level_stats`).
const MEMO_SLOTS: usize = 1 << 8;

/// A direct-mapped cache from a local assignment (fixed-true bits, open bits) to its [`Rows`],
/// packed to 12 bytes a slot (a search touches every formula's memo, and they must stay in cache).
struct RowsMemo {
    slots: Vec<MemoSlot>,
}

/// One [`RowsMemo`] slot: the key ([`RowsMemo::key`], [`EMPTY_SLOT`] when unused) and the
/// [`Rows`] with `satisfiable` implied (a true row puts each of its variables, at least one, in
/// `ones` or `zeros`).
#[derive(Clone, Copy)]
struct MemoSlot {
    key: u32,
    ones: u16,
    zeros: u16,
    visited: u32,
}

/// No assignment has this key: it would need a variable both fixed and open.
const EMPTY_SLOT: u32 = u32::MAX;

impl RowsMemo {
    fn new() -> RowsMemo {
        RowsMemo { slots: Vec::new() }
    }

    fn key(fixed: u32, open: u32) -> u32 {
        fixed | open << MAX_FORMULA_VARS
    }

    fn slot(key: u32) -> usize {
        (key.wrapping_mul(0x9E37_79B1) >> (32 - MEMO_SLOTS.trailing_zeros())) as usize
    }

    fn get(&self, fixed: u32, open: u32) -> Option<Rows> {
        let key = Self::key(fixed, open);
        let slot = self.slots.get(Self::slot(key))?;
        (slot.key == key).then(|| Rows {
            satisfiable: slot.ones | slot.zeros != 0,
            ones: u32::from(slot.ones),
            zeros: u32::from(slot.zeros),
            visited: slot.visited as usize,
        })
    }

    fn put(&mut self, fixed: u32, open: u32, rows: Rows) {
        if self.slots.is_empty() {
            let empty = MemoSlot {
                key: EMPTY_SLOT,
                ones: 0,
                zeros: 0,
                visited: 0,
            };
            self.slots = vec![empty; MEMO_SLOTS];
        }
        let key = Self::key(fixed, open);
        // Local variables number at most 16 (`MAX_FORMULA_VARS`): the low halves are all of
        // `ones` and `zeros` that any caller reads, and a table has at most 2^16 rows.
        self.slots[Self::slot(key)] = MemoSlot {
            key,
            ones: rows.ones as u16,
            zeros: rows.zeros as u16,
            visited: rows.visited as u32,
        };
    }
}

/// What the rows of a formula consistent with a partial assignment say.
#[derive(Clone, Copy)]
struct Rows {
    /// Some consistent row is true.
    satisfiable: bool,
    /// Local variables that are 1 in some consistent true row.
    ones: u32,
    /// Local variables that are 0 in some consistent true row.
    zeros: u32,
    /// Rows looked at.
    visited: usize,
}

impl Local {
    fn new(f: &Formula) -> Option<Local> {
        let vars = f.variables();
        // A table costs one pass over its 2^m/64 words per node: bound that product, so a hostile
        // label's huge formula gets no trace rather than a billion-word build.
        let words = (1usize << vars.len()).div_ceil(64);
        if vars.len() > MAX_FORMULA_VARS || nodes(f).saturating_mul(words) > MAX_TABLE_WORK {
            return None;
        }
        let formula = f.relabelled(&vars);
        Some(Local {
            table: Table::of(&formula, vars.len()),
            formula,
            vars,
            memo: std::cell::RefCell::new(RowsMemo::new()),
        })
    }

    /// The formula's Kleene value under `values` (lane [`BASE_LANE`]) and under `values` with
    /// each open variable set one way ([`probe_lane`]), all in one pass.
    fn lanes(&self, values: &[Option<bool>]) -> Lanes {
        let mut leaves = [(0, 0); MAX_FORMULA_VARS];
        for (j, &v) in self.vars.iter().enumerate() {
            leaves[j] = match values[v] {
                Some(true) => (ALL_LANES, 0),
                Some(false) => (0, ALL_LANES),
                None => (probe_lane(j, true), probe_lane(j, false)),
            };
        }
        kleene(&self.formula, &leaves[..self.vars.len()])
    }

    /// Whether the formula is false under `values` whatever its open variables are: by
    /// three-valued evaluation when that decides it, else on the truth table. `work` counts rows.
    fn falsified(&self, values: &[Option<bool>], work: &mut usize) -> bool {
        if self.lanes(values).1 & BASE_LANE != 0 {
            return true;
        }
        let rows = self.rows(values);
        *work += rows.visited;
        !rows.satisfiable
    }

    /// The local assignment under `values`: (local variables fixed true, local variables open).
    fn masks(&self, values: &[Option<bool>]) -> (u32, u32) {
        let (mut fixed, mut open) = (0u32, 0u32);
        // Branch-free: which of three values a variable has is what the branch predictor
        // cannot guess, and this runs on every visit of a formula.
        for (j, &v) in self.vars.iter().enumerate() {
            let value = values[v];
            fixed |= u32::from(value == Some(true)) << j;
            open |= u32::from(value.is_none()) << j;
        }
        (fixed, open)
    }

    fn rows(&self, values: &[Option<bool>]) -> Rows {
        let (fixed, open) = self.masks(values);
        self.rows_of(fixed, open)
    }

    /// [`Local::rows`] for a local assignment, memoised.
    fn rows_of(&self, fixed: u32, open: u32) -> Rows {
        if let Some(rows) = self.memo.borrow().get(fixed, open) {
            return rows;
        }
        let rows = self.read_words(fixed, open);
        self.memo.borrow_mut().put(fixed, open, rows);
        rows
    }

    /// What reading every consistent row says (`read_rows`, kept as the tests' reference), a
    /// table word at a time: the six lowest local variables index the bits of a word, the others
    /// the word, so one mask per word picks the rows agreeing with `fixed` and a few masks more
    /// say which values they take (up to 64 times fewer steps).
    fn read_words(&self, fixed: u32, open: u32) -> Rows {
        use super::table::LOW_PATTERNS as POSITIONS;
        let k = self.vars.len();
        // Positions agreeing with `fixed` on the low variables that are not open (and naming a
        // real row when the formula has fewer than six variables).
        let mut agree = u64::MAX;
        for (j, &positions) in POSITIONS.iter().enumerate() {
            if j >= k {
                agree &= !positions;
            } else if open >> j & 1 == 0 {
                agree &= if fixed >> j & 1 == 1 {
                    positions
                } else {
                    !positions
                };
            }
        }
        let high = !0b11_1111u32;
        let (fixed_high, open_high) = ((fixed & high) >> 6, (open & high) >> 6);
        let mut out = Rows {
            satisfiable: false,
            ones: 0,
            zeros: 0,
            visited: 1 << open.count_ones(),
        };
        let mut subset = open_high;
        loop {
            let word_index = fixed_high | subset;
            let rows = self.table.word(word_index as usize) & agree;
            if rows != 0 {
                out.satisfiable = true;
                let word_bits = word_index << 6;
                out.ones |= word_bits;
                out.zeros |= !word_bits & high;
                for (j, &positions) in POSITIONS.iter().enumerate().take(k.min(6)) {
                    if rows & positions != 0 {
                        out.ones |= 1 << j;
                    }
                    if rows & !positions != 0 {
                        out.zeros |= 1 << j;
                    }
                }
            }
            if subset == 0 {
                break;
            }
            subset = (subset - 1) & open_high;
        }
        out.ones &= (1 << k) - 1;
        out.zeros &= (1 << k) - 1;
        out
    }

    /// [`Local::rows`] read off the table: every row agreeing with `fixed` outside `open`.
    #[cfg(test)]
    fn read_rows(&self, fixed: u32, open: u32) -> Rows {
        let mut out = Rows {
            satisfiable: false,
            ones: 0,
            zeros: 0,
            visited: 0,
        };
        // Every subset of the open variables, from all of them down to none.
        let mut subset = open;
        loop {
            let row = fixed | subset;
            out.visited += 1;
            if self.table.get(row as usize) {
                out.satisfiable = true;
                out.ones |= row;
                out.zeros |= !row;
            }
            if subset == 0 {
                break;
            }
            subset = (subset - 1) & open;
        }
        // Only the formula's own variables (`!row` set the bits above them too).
        out.zeros &= (1 << self.vars.len()) - 1;
        out
    }
}

/// The open local variables (bit `j` of `open`) whose one value makes the formula false by
/// three-valued evaluation, one at a time (each on the values before any of them), read off the
/// lanes where it is false ([`Local::lanes`]): (forced true, forced false).
fn kleene_forced(open: u32, falsified: u64) -> (u32, u32) {
    let (mut to_true, mut to_false) = (0, 0);
    let mut rest = open;
    while rest != 0 {
        let j = rest.trailing_zeros() as usize;
        rest &= rest - 1;
        if falsified & probe_lane(j, false) != 0 {
            to_true |= 1 << j;
        } else if falsified & probe_lane(j, true) != 0 {
            to_false |= 1 << j;
        }
    }
    (to_true, to_false)
}

/// Word operations one formula's truth table may cost to build (the generator's largest, 31 nodes
/// over 16 variables, cost ~32,000).
const MAX_TABLE_WORK: usize = 1 << 22;

fn nodes(f: &Formula) -> usize {
    match f {
        Formula::Lit { .. } => 1,
        Formula::Not(inner) => 1 + nodes(inner),
        Formula::Bin(_, l, r) => 1 + nodes(l) + nodes(r),
    }
}

/// One derivation step.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    /// `var` takes `value`: with the opposite, formula `formula` is false.
    Force {
        var: usize,
        value: bool,
        formula: usize,
    },
    /// Supposing `var = value` leads, by `steps`, to formula `contradiction` being false; so
    /// `var = !value`.
    Refute {
        var: usize,
        value: bool,
        steps: Vec<Step>,
        contradiction: usize,
    },
}

/// A refuted supposition: the variable, the value supposed, the steps, the formula found false.
type Refutation = (usize, bool, Vec<Step>, usize);

struct Search {
    locals: Vec<Local>,
    /// The formulas mentioning each variable.
    formulas_of: Vec<Vec<usize>>,
    /// Truth-table rows looked at so far (the budget's unit).
    work: usize,
    /// Lines of derivation written so far, refuted branches included.
    lines: usize,
    /// [`Search::propagate`]'s buffers: which formulas are queued, and the queue.
    queued: Vec<bool>,
    queue: std::collections::VecDeque<usize>,
    /// [`Search::failed_literal`]'s buffers: the probe's values, and which values survived.
    branch: Vec<Option<bool>>,
    survives: Vec<[bool; 2]>,
    /// What each probe of the last [`Search::failed_literal`] round reached: how many variables
    /// its propagation fixed, by (variable, value); 0 for a probe skipped or not run. The
    /// lookahead score that picks a case split when no probe fails.
    reach: Vec<[u32; 2]>,
    /// Every variable, most mentioned first (ties by index): the probing order.
    order: Vec<usize>,
}

/// What propagation ended in.
enum Propagated {
    /// This formula is false.
    Conflict(usize),
    /// Nothing more is forced.
    Stable,
}

impl Search {
    /// Propagate to a fixpoint. `changed`: the variable just fixed in an otherwise propagated
    /// state (only its formulas can have changed), or `None` to examine every formula.
    fn propagate(
        &mut self,
        values: &mut [Option<bool>],
        steps: &mut Vec<Step>,
        changed: Option<usize>,
    ) -> Option<Propagated> {
        // The queue's buffers are reused across calls (a search propagates millions of times).
        let mut queued = std::mem::take(&mut self.queued);
        let mut queue = std::mem::take(&mut self.queue);
        queued.clear();
        queued.resize(self.locals.len(), false);
        queue.clear();
        match changed {
            Some(var) => queue.extend(self.formulas_of[var].iter().copied()),
            None => queue.extend(0..self.locals.len()),
        }
        for &k in &queue {
            queued[k] = true;
        }
        let result = self.propagate_queue(values, steps, &mut queued, &mut queue);
        self.queued = queued;
        self.queue = queue;
        result
    }

    fn propagate_queue(
        &mut self,
        values: &mut [Option<bool>],
        steps: &mut Vec<Step>,
        queued: &mut [bool],
        queue: &mut std::collections::VecDeque<usize>,
    ) -> Option<Propagated> {
        while let Some(k) = queue.pop_front() {
            queued[k] = false;
            let local = &self.locals[k];
            let (fixed, open) = local.masks(values);
            // Local variables forced true and forced false.
            let (to_true, to_false) = if open.count_ones() <= EXACT_OPEN {
                // The table decides alone; three-valued evaluation only says whether its rows
                // count as work (a conflict it sees costs none), so it runs only on a conflict.
                let rows = local.rows_of(fixed, open);
                if !rows.satisfiable {
                    if local.lanes(values).1 & BASE_LANE == 0 {
                        self.work += rows.visited;
                    }
                    return Some(Propagated::Conflict(k));
                }
                self.work += rows.visited;
                (
                    open & rows.ones & !rows.zeros,
                    open & rows.zeros & !rows.ones,
                )
            } else {
                let lanes = local.lanes(values);
                if lanes.1 & BASE_LANE != 0 {
                    return Some(Propagated::Conflict(k));
                }
                self.work += local.vars.len();
                kleene_forced(open, lanes.1)
            };
            if self.work > MAX_WORK {
                return None;
            }
            let mut forced = to_true | to_false;
            while forced != 0 {
                let j = forced.trailing_zeros() as usize;
                forced &= forced - 1;
                let var = self.locals[k].vars[j];
                if values[var].is_some() {
                    continue;
                }
                values[var] = Some(to_true >> j & 1 == 1);
                self.lines += 1;
                if self.lines > MAX_TRACE_LINES {
                    return None;
                }
                steps.push(Step::Force {
                    var,
                    value: to_true >> j & 1 == 1,
                    formula: k,
                });
                for &other in &self.formulas_of[var] {
                    if !queued[other] {
                        queued[other] = true;
                        queue.push_back(other);
                    }
                }
            }
        }
        Some(Propagated::Stable)
    }

    /// A value of an open variable that propagation alone refutes (a failed literal), among
    /// `candidates` `(var, value)`: the supposition's steps and the formula found false.
    fn failed_literal(
        &mut self,
        values: &[Option<bool>],
        candidates: impl Iterator<Item = (usize, bool)>,
    ) -> Option<Option<Refutation>> {
        // Values that a probe of this round reached without a conflict. Propagation is monotone
        // (more fixed values never force less), so a value implied by a probe that survived
        // cannot fail either: its own probe would reach a subset of that fixpoint. Skipping it
        // leaves the first failing candidate — the only thing this returns — unchanged.
        let mut survives = std::mem::take(&mut self.survives);
        survives.clear();
        survives.resize(values.len(), [false; 2]);
        self.reach.clear();
        self.reach.resize(values.len(), [0; 2]);
        let mut branch = std::mem::take(&mut self.branch);
        let mut steps = Vec::new();
        // `Some(None)`: no candidate failed; `None`: the budget ran out.
        let mut found = Some(None);
        for (var, value) in candidates {
            if survives[var][usize::from(value)] {
                continue;
            }
            branch.clear();
            branch.extend_from_slice(values);
            branch[var] = Some(value);
            steps.clear();
            let lines = self.lines;
            match self.propagate(&mut branch, &mut steps, Some(var)) {
                None => {
                    found = None;
                    break;
                }
                Some(Propagated::Conflict(k)) => {
                    found = Some(Some((var, value, std::mem::take(&mut steps), k)));
                    break;
                }
                Some(Propagated::Stable) => {}
            }
            // A probe that fails to refute writes nothing.
            self.lines = lines;
            let mut fixed = 0;
            for (u, reached) in branch.iter().enumerate() {
                if let (None, Some(v)) = (values[u], reached) {
                    survives[u][usize::from(*v)] = true;
                    fixed += 1;
                }
            }
            self.reach[var][usize::from(value)] = fixed;
        }
        self.survives = survives;
        self.branch = branch;
        found
    }

    /// Open variables, most mentioned first (the likeliest to fail fast; ties by index).
    fn open_vars(&self, values: &[Option<bool>]) -> Vec<usize> {
        self.order
            .iter()
            .copied()
            .filter(|&v| values[v].is_none())
            .collect()
    }

    /// A refutation of `values` (steps and the formula found false), `Some(None)` when `values`
    /// extends to a model, `None` when the budget ran out.
    /// `changed` as for [`Search::propagate`].
    fn refute(
        &mut self,
        values: &mut [Option<bool>],
        mut changed: Option<usize>,
    ) -> Option<Option<(Vec<Step>, usize)>> {
        let mut steps = Vec::new();
        loop {
            if let Propagated::Conflict(k) = self.propagate(values, &mut steps, changed)? {
                return Some(Some((steps, k)));
            }
            let open = self.open_vars(values);
            if open.is_empty() {
                return Some(None);
            }
            let probes = open.iter().flat_map(|&v| [(v, true), (v, false)]);
            let (var, value, sub, k) = match self.failed_literal(values, probes)? {
                Some(found) => found,
                None => {
                    // Split where both values propagate most (a lookahead solver's rule: the
                    // two cases are the smallest left to refute).
                    let split = self.best_split(&open, |_, [f, t]| u64::from(f) * u64::from(t));
                    // `values` has no model, so neither has `values + split = true`.
                    let mut branch = values.to_vec();
                    branch[split] = Some(true);
                    let Some((sub, k)) = self.refute(&mut branch, Some(split))? else {
                        return Some(None);
                    };
                    (split, true, sub, k)
                }
            };
            changed = Some(self.conclude(&mut steps, values, (var, value, sub, k)));
        }
    }

    /// The open variable whose last probes score highest (`open`'s order breaks ties).
    fn best_split(&self, open: &[usize], score: impl Fn(usize, [u32; 2]) -> u64) -> usize {
        let mut best = (open[0], 0);
        for &v in open {
            let s = score(v, self.reach[v]);
            if s > best.1 {
                best = (v, s);
            }
        }
        best.0
    }

    /// Record a refuted supposition and fix its variable the other way; returns the variable.
    fn conclude(
        &mut self,
        steps: &mut Vec<Step>,
        values: &mut [Option<bool>],
        (var, value, sub, contradiction): Refutation,
    ) -> usize {
        self.lines += 3;
        steps.push(Step::Refute {
            var,
            value,
            steps: sub,
            contradiction,
        });
        values[var] = Some(!value);
        var
    }

    /// The main line: force every variable of a model believed unique (`model`), refuting the
    /// other value of each one propagation leaves open. `None` when a refutation fails (the
    /// model is not unique) or the budget runs out.
    fn derive(&mut self, model: &[bool]) -> Option<Vec<Step>> {
        let mut values = vec![None; model.len()];
        let mut steps = Vec::new();
        let mut changed = None;
        loop {
            match self.propagate(&mut values, &mut steps, changed)? {
                Propagated::Conflict(_) => return None,
                Propagated::Stable => {}
            }
            let open = self.open_vars(&values);
            if open.is_empty() {
                return Some(steps);
            }
            let probes = open.iter().map(|&v| (v, !model[v]));
            let (var, value, sub, k) = match self.failed_literal(&values, probes)? {
                Some(found) => found,
                None => {
                    // Refute the other value that propagates most: the smallest case left.
                    let split =
                        self.best_split(&open, |v, reach| u64::from(reach[usize::from(!model[v])]));
                    let mut branch = values.clone();
                    branch[split] = Some(!model[split]);
                    let (sub, k) = self.refute(&mut branch, Some(split))??;
                    (split, !model[split], sub, k)
                }
            };
            changed = Some(self.conclude(&mut steps, &mut values, (var, value, sub, k)));
        }
    }
}

fn truth(value: bool) -> &'static str {
    if value { "True" } else { "False" }
}

fn render_steps(steps: &[Step], names: &[String], depth: usize, out: &mut Vec<String>) {
    let pad = INDENT.repeat(depth);
    for step in steps {
        match step {
            Step::Force {
                var,
                value,
                formula,
            } => out.push(format!(
                "{pad}{} is {}, since otherwise formula {} would be false.",
                names[*var],
                truth(*value),
                formula + 1
            )),
            Step::Refute {
                var,
                value,
                steps,
                contradiction,
            } => {
                out.push(format!(
                    "{pad}Suppose {} is {}.",
                    names[*var],
                    truth(*value)
                ));
                render_steps(steps, names, depth + 1, out);
                out.push(contradiction_line(depth + 1, *contradiction));
                out.push(format!("{pad}So {} is {}.", names[*var], truth(!*value)));
            }
        }
    }
}

fn contradiction_line(depth: usize, formula: usize) -> String {
    format!(
        "{}Then formula {} is false: a contradiction.",
        INDENT.repeat(depth),
        formula + 1
    )
}

fn sat_conclusion(formulas: usize) -> String {
    format!(
        "All {formulas} formulas hold under this assignment, and every variable was forced, so it is the only one."
    )
}

const UNSAT_CONCLUSION: &str = "So no assignment satisfies all the formulas.";

fn locals_of(formulas: &[Formula]) -> Option<Vec<Local>> {
    formulas.iter().map(Local::new).collect()
}

/// The trace of `formulas` over `names` with the stored `solution` (`None`: unsatisfiable);
/// empty when no derivation is found within the budget (not an instance the generator makes).
pub(super) fn trace(formulas: &[Formula], names: &[String], solution: Option<&[bool]>) -> String {
    let Some(locals) = locals_of(formulas) else {
        return String::new();
    };
    let mut formulas_of = vec![Vec::new(); names.len()];
    for (k, local) in locals.iter().enumerate() {
        for &v in &local.vars {
            formulas_of[v].push(k);
        }
    }
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by_key(|&v| std::cmp::Reverse(formulas_of[v].len()));
    let mut search = Search {
        locals,
        formulas_of,
        work: 0,
        lines: 0,
        queued: Vec::new(),
        queue: std::collections::VecDeque::new(),
        branch: Vec::new(),
        survives: Vec::new(),
        reach: Vec::new(),
        order,
    };
    let mut lines = Vec::new();
    match solution {
        Some(model) => {
            let Some(steps) = search.derive(model) else {
                return String::new();
            };
            render_steps(&steps, names, 0, &mut lines);
            lines.push(sat_conclusion(formulas.len()));
        }
        None => {
            let mut values = vec![None; names.len()];
            let Some(Some((steps, k))) = search.refute(&mut values, None) else {
                return String::new();
            };
            render_steps(&steps, names, 0, &mut lines);
            lines.push(contradiction_line(0, k));
            lines.push(UNSAT_CONCLUSION.to_string());
        }
    }
    lines.join("\n")
}

/// What a checked trace concludes.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Conclusion {
    /// This assignment, proved to be the only model.
    Model(Vec<bool>),
    /// No model exists.
    Unsat,
}

/// One open case of the checker: the values inside it, and the supposition that opened it.
struct Case {
    values: Vec<Option<bool>>,
    supposed: Option<(usize, bool)>,
}

/// Check every step of `trace` against `formulas`; the error names the first line that does not
/// follow.
pub(super) fn check(
    formulas: &[Formula],
    names: &[String],
    trace: &str,
) -> Result<Conclusion, String> {
    let var = |name: &str| {
        names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| format!("unknown variable {name:?}"))
    };
    let formula = |text: &str| -> Result<usize, String> {
        let k: usize = text
            .parse()
            .map_err(|_| format!("{text:?} is not a formula number"))?;
        (1..=formulas.len())
            .contains(&k)
            .then_some(k - 1)
            .ok_or_else(|| format!("there is no formula {k}"))
    };
    let locals = locals_of(formulas).ok_or_else(|| {
        format!("a formula has more than {MAX_FORMULA_VARS} variables: its steps cannot be checked")
    })?;
    let mut work = 0usize;
    // Whether formula `k` is false under `values` whatever its open variables are.
    let mut falsified = |k: usize, values: &[Option<bool>]| -> Result<bool, String> {
        let falsified = locals[k].falsified(values, &mut work);
        if work > MAX_CHECK_WORK {
            return Err(format!(
                "checking needs more than {MAX_CHECK_WORK} truth-table rows"
            ));
        }
        Ok(falsified)
    };
    let mut cases = vec![Case {
        values: vec![None; names.len()],
        supposed: None,
    }];
    // A case just closed by a contradiction, whose `So …` line must come next.
    let mut refuted: Option<(usize, bool)> = None;
    let mut lines = trace.lines().enumerate().peekable();
    while let Some((number, line)) = lines.next() {
        let at = |e: String| format!("line {}: {e}", number + 1);
        let body = line.trim_start_matches(' ');
        let depth = (line.len() - body.len()) / INDENT.len();
        if let Some((name, value)) = refuted.take() {
            let want = format!("So {} is {}.", names[name], truth(!value));
            if body != want || depth != cases.len() - 1 {
                return Err(at(format!("expected {want:?} after the contradiction")));
            }
            assign(&mut cases, name, !value).map_err(at)?;
            continue;
        }
        if depth != cases.len() - 1 {
            return Err(at(format!(
                "indented {depth} cases deep inside {} open cases",
                cases.len() - 1
            )));
        }
        let values = &cases.last().expect("the top case stays").values;
        if let Some(rest) = body.strip_prefix("Suppose ") {
            let (name, value) = parse_is(rest).map_err(at)?;
            let v = var(name).map_err(at)?;
            if values[v].is_some() {
                return Err(at(format!("{name} is already fixed")));
            }
            let mut inner = values.clone();
            inner[v] = Some(value);
            cases.push(Case {
                values: inner,
                supposed: Some((v, value)),
            });
        } else if let Some(rest) = body.strip_prefix("Then formula ") {
            let k = rest
                .strip_suffix(" is false: a contradiction.")
                .ok_or_else(|| at("malformed contradiction".into()))
                .and_then(|n| formula(n).map_err(at))?;
            if !falsified(k, values).map_err(at)? {
                return Err(at(format!("formula {} is not false here", k + 1)));
            }
            let case = cases.pop().expect("the top case stays");
            match case.supposed {
                Some(s) => refuted = Some(s),
                None => {
                    // The contradiction line itself checked; what is wrong is the next line.
                    let next = number + 2;
                    return match (lines.next(), lines.peek()) {
                        (Some((_, UNSAT_CONCLUSION)), None) => Ok(Conclusion::Unsat),
                        (Some((_, UNSAT_CONCLUSION)), Some(_)) => {
                            Err(format!("line {}: a line after the conclusion", next + 1))
                        }
                        _ => Err(format!(
                            "line {next}: a contradiction at the top level must end the trace with {UNSAT_CONCLUSION:?}"
                        )),
                    };
                }
            }
        } else if let Some((lhs, rest)) = body.split_once(", since otherwise formula ") {
            let claim = format!("{lhs}.");
            let (name, value) = parse_is(&claim).map_err(at)?;
            let v = var(name).map_err(at)?;
            let k = rest
                .strip_suffix(" would be false.")
                .ok_or_else(|| at("malformed step".into()))
                .and_then(|n| formula(n).map_err(at))?;
            let mut other = values.clone();
            other[v] = Some(!value);
            if !falsified(k, &other).map_err(at)? {
                return Err(at(format!(
                    "formula {} is not false with {name} {}",
                    k + 1,
                    truth(!value)
                )));
            }
            assign(&mut cases, v, value).map_err(at)?;
        } else if body == sat_conclusion(formulas.len()) {
            if cases.len() != 1 || lines.peek().is_some() {
                return Err(at(
                    "the conclusion must be the last line, outside every case".into(),
                ));
            }
            let model: Option<Vec<bool>> = values.iter().copied().collect();
            let model = model.ok_or_else(|| at("some variable is not fixed".into()))?;
            if let Some(k) = formulas.iter().position(|f| !f.eval(&model)) {
                return Err(at(format!(
                    "formula {} is false under the assignment",
                    k + 1
                )));
            }
            return Ok(Conclusion::Model(model));
        } else {
            return Err(at(format!("not a step: {body:?}")));
        }
    }
    Err(format!(
        "line {}: the trace ends without a conclusion",
        trace.lines().count() + 1
    ))
}

/// Fix `var` in the innermost case; it must not be fixed to the other value already.
fn assign(cases: &mut [Case], var: usize, value: bool) -> Result<(), String> {
    let values = &mut cases.last_mut().expect("the top case stays").values;
    match values[var] {
        Some(v) if v != value => Err("a variable fixed both ways".into()),
        _ => {
            values[var] = Some(value);
            Ok(())
        }
    }
}

/// `NAME is True.` / `NAME is False.`
fn parse_is(text: &str) -> Result<(&str, bool), String> {
    let (name, value) = text
        .split_once(" is ")
        .ok_or_else(|| format!("expected \"NAME is True/False.\", got {text:?}"))?;
    match value {
        "True." => Ok((name, true)),
        "False." => Ok((name, false)),
        _ => Err(format!("{value:?} is not True. or False.")),
    }
}

#[cfg(test)]
mod lanes_tests {
    use super::*;
    use crate::rng::Draw;

    /// Kleene's three-valued value of `f`, one assignment at a time: the reference the lanes are
    /// held to.
    fn eval3(f: &Formula, values: &[Option<bool>]) -> Option<bool> {
        match f {
            Formula::Lit { var, neg } => values[*var].map(|v| v != *neg),
            Formula::Not(inner) => eval3(inner, values).map(|v| !v),
            Formula::Bin(op, l, r) => {
                let (x, y) = (eval3(l, values), eval3(r, values));
                match op {
                    Op::And if x == Some(false) || y == Some(false) => Some(false),
                    Op::And => Some(x? && y?),
                    Op::Or if x == Some(true) || y == Some(true) => Some(true),
                    Op::Or => Some(x? || y?),
                    Op::Implies if x == Some(false) || y == Some(true) => Some(true),
                    Op::Implies => Some(!x? || y?),
                    Op::Iff => Some(x? == y?),
                    Op::Xor => Some(x? != y?),
                }
            }
        }
    }

    fn lane(lanes: Lanes, bit: u64) -> Option<bool> {
        match (lanes.0 & bit != 0, lanes.1 & bit != 0) {
            (true, false) => Some(true),
            (false, true) => Some(false),
            (false, false) => None,
            (true, true) => panic!("a lane both true and false"),
        }
    }

    /// Every lane of one pass equals the scalar evaluation of its own assignment, on random
    /// formulas of the generator's shapes under random partial assignments.
    #[test]
    fn each_lane_is_kleenes_value_of_its_assignment() {
        let mut draw = Draw::from_seed_bytes([7; 32]);
        for round in 0..3_000 {
            let vars = [4, 8, 16, 64][round % 4];
            let f = Formula::random(&mut draw, vars, 1 + (round % 4) as u32);
            let Some(local) = Local::new(&f) else {
                continue;
            };
            let values = random_values(&mut draw, vars);
            let lanes = local.lanes(&values);
            assert_eq!(lane(lanes, BASE_LANE), eval3(&f, &values), "{f:?}");
            for (j, &var) in local.vars.iter().enumerate() {
                if values[var].is_some() {
                    continue;
                }
                for value in [false, true] {
                    let mut probe = values.clone();
                    probe[var] = Some(value);
                    assert_eq!(lane(lanes, probe_lane(j, value)), eval3(&f, &probe));
                }
            }
        }
    }

    /// A partial assignment of `n` variables: each open, true or false with chance 1/3.
    fn random_values(draw: &mut Draw, n: usize) -> Vec<Option<bool>> {
        (0..n)
            .map(|_| match draw.index(3) {
                0 => None,
                1 => Some(true),
                _ => Some(false),
            })
            .collect()
    }

    /// A memoised answer is the table's: the same local assignment asked twice, and many
    /// assignments colliding in the direct-mapped memo, all read what the table says.
    #[test]
    fn memoised_rows_are_the_tables() {
        let mut draw = Draw::from_seed_bytes([9; 32]);
        // Formulas over fewer and more than a word's six variables.
        for (n, depth) in [(2, 1), (4, 2), (6, 3), (9, 3), (12, 4), (24, 4)] {
            for _ in 0..8 {
                let f = Formula::random(&mut draw, n, depth);
                let local = Local::new(&f).expect("a small formula");
                for _ in 0..2_000 {
                    let values = random_values(&mut draw, n);
                    let (fixed, open) = local.masks(&values);
                    let (memo, direct) = (local.rows(&values), local.read_rows(fixed, open));
                    assert_eq!(
                        (memo.satisfiable, memo.ones, memo.zeros, memo.visited),
                        (
                            direct.satisfiable,
                            direct.ones,
                            direct.zeros,
                            direct.visited
                        )
                    );
                }
            }
        }
    }
}
