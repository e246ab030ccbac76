//! `triad audit`: what a dataset would teach a model that looks for shortcuts.
//!
//! Per family and level: exact duplicates (the same rendered prompt), near duplicates (the same
//! canonical content, e.g. the same formulas in another order), train/test overlap by either, the
//! label and answer distributions, and the accuracy of trivial shortcut predictors against their
//! chance rate — constant answer, majority label, all-true / all-false (deduction), "repeat the last
//! difference" (induction), membership and is-a-head (abduction). A level whose shortcut beats
//! chance by a wide margin is flagged. The report is printed, written as `audit.json`, and added to
//! the dataset card.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use arrow::array::{Array, AsArray, ListArray};
use serde::Serialize;
use triad_generators::families::abduction::{AbductionInstance, Mode};
use triad_generators::families::deduction::DeductionInstance;
use triad_generators::families::induction::InductionInstance;
use triad_generators::{Label, Split};

use super::manifest::Manifest;
use super::shard::{self, string_column};
use super::{DatasetError, hash128};

/// One shortcut predictor's accuracy at a level.
#[derive(Clone, Debug, Serialize)]
pub struct Shortcut {
    /// What it predicts.
    pub name: String,
    /// Its accuracy (items, or goals for abduction).
    pub accuracy: f64,
    /// The accuracy of guessing (or of the majority label).
    pub chance: f64,
    /// Far above chance.
    pub flagged: bool,
}

/// The audit of one family and level.
#[derive(Clone, Debug, Serialize, Default)]
pub struct LevelAudit {
    /// Family.
    pub family: String,
    /// Level.
    pub level: u8,
    /// Rows per split.
    pub rows: BTreeMap<String, u64>,
    /// Rows whose rendered prompt repeats an earlier row's (same split).
    pub exact_duplicates: u64,
    /// Rows whose canonical content repeats an earlier row's (same split).
    pub near_duplicates: u64,
    /// Test rows whose prompt or content also appears in train.
    pub train_test_overlap: u64,
    /// Named statistics of labels and answers.
    pub distribution: BTreeMap<String, f64>,
    /// Shortcut predictors.
    pub shortcuts: Vec<Shortcut>,
}

/// The whole audit.
#[derive(Clone, Debug, Serialize, Default)]
pub struct AuditReport {
    /// Rows audited.
    pub rows: u64,
    /// Per family and level.
    pub levels: Vec<LevelAudit>,
}

impl AuditReport {
    /// Levels with a flagged shortcut, duplicates or overlap.
    pub fn flagged(&self) -> Vec<String> {
        let mut out = Vec::new();
        for l in &self.levels {
            for s in l.shortcuts.iter().filter(|s| s.flagged) {
                out.push(format!(
                    "{} level {}: `{}` scores {:.2} (chance {:.2})",
                    l.family, l.level, s.name, s.accuracy, s.chance
                ));
            }
            if l.exact_duplicates + l.near_duplicates + l.train_test_overlap > 0 {
                out.push(format!(
                    "{} level {}: {} exact and {} near duplicates, {} test rows overlapping train",
                    l.family, l.level, l.exact_duplicates, l.near_duplicates, l.train_test_overlap
                ));
            }
        }
        out
    }

    /// A Markdown table of the report.
    pub fn markdown(&self) -> String {
        let mut text = String::from(
            "| family | level | train | test | dup (exact/near) | train∩test | shortcut: accuracy (chance) |\n|---|---|---|---|---|---|---|\n",
        );
        for l in &self.levels {
            let shortcuts: Vec<String> = l
                .shortcuts
                .iter()
                .map(|s| {
                    format!(
                        "{}{}: {:.2} ({:.2})",
                        if s.flagged { "⚠ " } else { "" },
                        s.name,
                        s.accuracy,
                        s.chance
                    )
                })
                .collect();
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} | {}/{} | {} | {} |",
                l.family,
                l.level,
                l.rows.get("train").copied().unwrap_or(0),
                l.rows.get("test").copied().unwrap_or(0),
                l.exact_duplicates,
                l.near_duplicates,
                l.train_test_overlap,
                shortcuts.join("; ")
            );
        }
        text
    }
}

fn flag(name: &str, hits: u64, total: u64, chance: f64) -> Shortcut {
    let accuracy = hits as f64 / total.max(1) as f64;
    // "Far above chance": above chance by its own size (capped at 25 points) and by at least ten.
    let flagged = total > 0 && accuracy > chance + chance.clamp(0.10, 0.25);
    Shortcut {
        name: name.into(),
        accuracy,
        chance,
        flagged,
    }
}

fn instance<T: serde::de::DeserializeOwned>(label: &str) -> Option<T> {
    match Label::parse(label).ok()? {
        Label::Triad { instance, .. } => serde_json::from_str(&instance).ok(),
        Label::Paper(_) => None,
    }
}

fn ratio(part: f64, whole: u64) -> f64 {
    part / whole.max(1) as f64
}

/// Deduction statistics, one instance at a time.
#[derive(Default)]
struct DeductionTally {
    /// Variables of the first instance (chance of guessing an assignment is 2⁻ⁿ).
    variables: Option<usize>,
    items: u64,
    solved: u64,
    true_values: u64,
    values: u64,
    formulas: u64,
    all_true: u64,
    all_false: u64,
}

impl DeductionTally {
    fn add(&mut self, item: DeductionInstance) {
        self.variables.get_or_insert(item.variables.len());
        self.items += 1;
        self.formulas += item.formulas.len() as u64;
        if let Some(solution) = &item.solution {
            self.solved += 1;
            self.true_values += solution.iter().filter(|v| **v).count() as u64;
            self.values += solution.len() as u64;
            self.all_true += u64::from(solution.iter().all(|v| *v));
            self.all_false += u64::from(solution.iter().all(|v| !*v));
        }
    }

    fn finish(&self, answers: (u64, u64), out: &mut LevelAudit) {
        let total = self.items;
        out.distribution.insert(
            "true_fraction".into(),
            self.true_values as f64 / self.values.max(1) as f64,
        );
        out.distribution.insert(
            "unsat_fraction".into(),
            ratio((total - self.solved) as f64, total),
        );
        out.distribution
            .insert("formulas_mean".into(), ratio(self.formulas as f64, total));
        let chance = 0.5f64.powi(self.variables.unwrap_or(1) as i32);
        out.shortcuts
            .push(flag("all true", self.all_true, total, chance));
        out.shortcuts
            .push(flag("all false", self.all_false, total, chance));
        out.shortcuts
            .push(flag("constant answer", answers.0, answers.1, chance));
    }
}

/// Induction statistics, one instance at a time.
#[derive(Default)]
struct InductionTally {
    items: u64,
    answer_sum: i128,
    answers: u64,
    negative_answers: u64,
    length_sum: u64,
    last_difference: u64,
    /// Items with a second answer under every class of every level at once.
    ambiguous_wider: u64,
}

impl InductionTally {
    fn add(&mut self, item: InductionInstance) {
        self.items += 1;
        for answer in item.answers() {
            self.answer_sum += i128::from(answer);
            self.answers += 1;
            self.negative_answers += u64::from(answer < 0);
        }
        self.length_sum += item.sequence.len() as u64;
        let partial = item.partial();
        let repeats_last_difference = item.masked.iter().all(|&m| {
            m >= 2
                && matches!(
                    (partial.get(m - 1), partial.get(m - 2), item.sequence.get(m)),
                    (Some(Some(a)), Some(Some(b)), Some(&hidden)) if a + (a - b) == hidden
                )
        });
        self.last_difference += u64::from(repeats_last_difference);
        self.ambiguous_wider +=
            u64::from(triad_generators::families::induction::ambiguous_under_every_class(&item));
    }

    fn finish(&self, answers: (u64, u64), out: &mut LevelAudit) {
        out.distribution.insert(
            "answer_mean".into(),
            self.answer_sum as f64 / self.answers.max(1) as f64,
        );
        out.distribution.insert(
            "answer_negative_fraction".into(),
            ratio(self.negative_answers as f64, self.answers),
        );
        // Items are determined under the classes of their band (levels 1–5, or 6–10); this is
        // how many a reader allowing every class of every level at once would find open.
        out.distribution.insert(
            "ambiguous_under_every_class_fraction".into(),
            ratio(self.ambiguous_wider as f64, self.items),
        );
        out.distribution.insert(
            "length_mean".into(),
            ratio(self.length_sum as f64, self.items),
        );
        // Chance for an open integer answer: the share of the most common answer is itself the
        // constant predictor, so the flag only fires when repeating the last difference dominates.
        out.shortcuts.push(flag(
            "repeat the last difference",
            self.last_difference,
            self.items,
            0.25,
        ));
        out.shortcuts
            .push(flag("constant answer", answers.0, answers.1, 0.05));
    }
}

/// Abduction statistics (per goal, reachability items only), one instance at a time.
#[derive(Default)]
struct AbductionTally {
    items: u64,
    reachability_items: u64,
    goals: u64,
    reachable: u64,
    membership_right: u64,
    head_right: u64,
}

impl AbductionTally {
    fn add(&mut self, item: AbductionInstance) {
        self.items += 1;
        if item.mode != Mode::Reachability {
            return;
        }
        self.reachability_items += 1;
        for (goal, &reachable) in item.goals.iter().zip(&item.reachable) {
            self.goals += 1;
            self.reachable += u64::from(reachable);
            self.membership_right += u64::from(item.known.contains(goal) == reachable);
            let is_head = item
                .premises
                .iter()
                .any(|p| p.ends_with(&format!("=> {goal}")));
            self.head_right += u64::from(is_head == reachable);
        }
    }

    fn finish(&self, out: &mut LevelAudit) {
        let share = ratio(self.reachable as f64, self.goals);
        out.distribution.insert("reachable_fraction".into(), share);
        out.distribution.insert(
            "explanation_items".into(),
            (self.items - self.reachability_items) as f64,
        );
        let majority = share.max(1.0 - share);
        let total = self.goals;
        out.shortcuts.push(flag(
            "reachable iff known",
            self.membership_right,
            total,
            majority,
        ));
        out.shortcuts.push(flag(
            "reachable iff a premise's head",
            self.head_right,
            total,
            majority,
        ));
        out.shortcuts.push(flag(
            "majority label",
            self.reachable.max(total - self.reachable),
            total,
            majority,
        ));
    }
}

/// A family's statistics.
enum FamilyTally {
    Deduction(DeductionTally),
    Induction(InductionTally),
    Abduction(AbductionTally),
    Unknown,
}

impl FamilyTally {
    fn new(family: &str) -> Self {
        match family {
            "deduction" => FamilyTally::Deduction(DeductionTally::default()),
            "induction" => FamilyTally::Induction(InductionTally::default()),
            "abduction" => FamilyTally::Abduction(AbductionTally::default()),
            _ => FamilyTally::Unknown,
        }
    }

    /// Count a row's instance; rows whose label does not parse as this family's are skipped.
    fn add(&mut self, label: &str) {
        match self {
            FamilyTally::Deduction(t) => instance(label).into_iter().for_each(|i| t.add(i)),
            FamilyTally::Induction(t) => instance(label).into_iter().for_each(|i| t.add(i)),
            FamilyTally::Abduction(t) => instance(label).into_iter().for_each(|i| t.add(i)),
            FamilyTally::Unknown => {}
        }
    }

    fn finish(&self, answers: (u64, u64), out: &mut LevelAudit) {
        match self {
            FamilyTally::Deduction(t) => t.finish(answers, out),
            FamilyTally::Induction(t) => t.finish(answers, out),
            FamilyTally::Abduction(t) => t.finish(out),
            FamilyTally::Unknown => {}
        }
    }
}

/// One family and level, fed row by row: what it keeps per row is a few 16-byte hashes, so an
/// audit of millions of rows needs tens of MB, not the rows.
struct LevelTally {
    family: String,
    level: u8,
    rows: BTreeMap<String, u64>,
    /// Prompt hashes and content ids seen, per split.
    prompts: HashMap<Split, HashSet<u128>>,
    ids: HashMap<Split, HashSet<u128>>,
    exact_duplicates: u64,
    near_duplicates: u64,
    /// (prompt hash, id hash) of every test row, checked against train once all rows are in.
    test_rows: Vec<(u128, u128)>,
    /// How often each answer (by hash) occurs: the constant-answer predictor.
    answer_counts: HashMap<u128, u64>,
    family_tally: FamilyTally,
}

impl LevelTally {
    fn new(family: &str, level: u8) -> Self {
        LevelTally {
            family: family.to_string(),
            level,
            rows: BTreeMap::new(),
            prompts: HashMap::new(),
            ids: HashMap::new(),
            exact_duplicates: 0,
            near_duplicates: 0,
            test_rows: Vec::new(),
            answer_counts: HashMap::new(),
            family_tally: FamilyTally::new(family),
        }
    }

    fn add(&mut self, split: Split, prompt: &str, id: &str, label: &str, answer: &str) {
        *self.rows.entry(split.name().to_string()).or_default() += 1;
        let (prompt, id) = (hash128(prompt), hash128(id));
        let new_prompt = self.prompts.entry(split).or_default().insert(prompt);
        let new_id = self.ids.entry(split).or_default().insert(id);
        self.exact_duplicates += u64::from(!new_prompt);
        self.near_duplicates += u64::from(!new_id);
        if split == Split::Test {
            self.test_rows.push((prompt, id));
        }
        *self.answer_counts.entry(hash128(answer)).or_default() += 1;
        self.family_tally.add(label);
    }

    fn finish(self) -> LevelAudit {
        let mut audit = LevelAudit {
            family: self.family,
            level: self.level,
            rows: self.rows,
            exact_duplicates: self.exact_duplicates,
            near_duplicates: self.near_duplicates,
            ..LevelAudit::default()
        };
        let empty = HashSet::new();
        let train_prompts = self.prompts.get(&Split::Train).unwrap_or(&empty);
        let train_ids = self.ids.get(&Split::Train).unwrap_or(&empty);
        audit.train_test_overlap = self
            .test_rows
            .iter()
            .filter(|(prompt, id)| train_prompts.contains(prompt) || train_ids.contains(id))
            .count() as u64;
        let most_common = self.answer_counts.values().copied().max().unwrap_or(0);
        let answered: u64 = self.answer_counts.values().sum();
        self.family_tally
            .finish((most_common, answered), &mut audit);
        audit
    }
}

/// A row's prompt: its messages' contents joined by NUL.
fn prompt_text(prompts: Option<&ListArray>, row: usize) -> String {
    prompts.map_or(String::new(), |p| {
        p.value(row)
            .as_struct_opt()
            .and_then(|s| s.column_by_name("content"))
            .and_then(|c| c.as_string_opt::<i32>())
            .map(|c| {
                (0..c.len())
                    .map(|k| c.value(k))
                    .collect::<Vec<_>>()
                    .join("\u{0}")
            })
            .unwrap_or_default()
    })
}

/// Audit the dataset in `dir`, reading it one record batch at a time.
pub fn audit(dir: &Path) -> Result<AuditReport, DatasetError> {
    let manifest = Manifest::read(dir)?;
    let mut by_level: BTreeMap<(String, u8), LevelTally> = BTreeMap::new();
    let mut report = AuditReport::default();
    for stream in &manifest.streams {
        let tally = by_level
            .entry((stream.family.clone(), stream.level))
            .or_insert_with(|| LevelTally::new(&stream.family, stream.level));
        for entry in &stream.shards {
            for batch in shard::batch_reader(&dir.join(&entry.path))? {
                let batch = batch?;
                let (Some(ids), Some(labels), Some(answers)) = (
                    string_column(&batch, "id"),
                    string_column(&batch, "label"),
                    string_column(&batch, "answer"),
                ) else {
                    return Err(DatasetError::Invalid(format!(
                        "{}: missing columns",
                        entry.path
                    )));
                };
                let prompts = batch
                    .column_by_name("prompt")
                    .and_then(|c| c.as_list_opt::<i32>());
                for i in 0..batch.num_rows() {
                    tally.add(
                        stream.split,
                        &prompt_text(prompts, i),
                        ids.value(i),
                        labels.value(i),
                        answers.value(i),
                    );
                }
                report.rows += batch.num_rows() as u64;
            }
        }
    }
    report.levels = by_level.into_values().map(LevelTally::finish).collect();
    Ok(report)
}

/// Write `audit.json` and the card's audit section.
pub fn write(dir: &Path, report: &AuditReport) -> Result<(), DatasetError> {
    let json = serde_json::to_string_pretty(report).expect("report serializes") + "\n";
    shard::write_atomic(&dir.join("audit.json"), json.as_bytes())?;
    let card_path = dir.join("README.md");
    let card = std::fs::read_to_string(&card_path).unwrap_or_default();
    const START: &str = "<!-- audit:start -->";
    const END: &str = "<!-- audit:end -->";
    let flagged = report.flagged();
    let mut section = format!(
        "{START}\n## Audit\n\nWritten by `triad audit` ({} rows; details in `audit.json`).\n\n",
        report.rows
    );
    section.push_str(&report.markdown());
    if flagged.is_empty() {
        section.push_str("\nNo level is flagged.\n");
    } else {
        section.push_str("\nFlagged:\n\n");
        for f in &flagged {
            let _ = writeln!(section, "- {f}");
        }
    }
    section.push_str(END);
    let updated = match (card.find(START), card.find(END)) {
        (Some(a), Some(b)) if a < b => format!("{}{section}{}", &card[..a], &card[b + END.len()..]),
        _ => format!("{}\n{section}\n", card.trim_end()),
    };
    shard::write_atomic(&card_path, updated.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::flag;

    #[test]
    fn far_above_chance() {
        assert!(!flag("x", 50, 100, 0.5).flagged);
        assert!(flag("x", 100, 100, 0.5).flagged);
        assert!(!flag("x", 8, 100, 0.06).flagged);
        assert!(flag("x", 30, 100, 0.06).flagged);
        assert!(!flag("x", 0, 0, 0.06).flagged);
    }
}
