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

use arrow::array::{Array, AsArray};
use serde::Serialize;
use sha2::{Digest, Sha256};
use triad_generators::Label;
use triad_generators::families::abduction::{AbductionInstance, Mode};
use triad_generators::families::deduction::DeductionInstance;
use triad_generators::families::induction::InductionInstance;

use super::DatasetError;
use super::manifest::Manifest;
use super::shard::{self, string_column};

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

/// Everything read from one row.
struct AuditRow {
    split: String,
    prompt_hash: [u8; 16],
    id: String,
    label: String,
    answer: String,
}

#[derive(Default)]
struct LevelRows {
    rows: Vec<AuditRow>,
}

fn most_common_share<'a>(values: impl Iterator<Item = &'a str>) -> (u64, u64) {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    let mut total = 0;
    for v in values {
        *counts.entry(v).or_default() += 1;
        total += 1;
    }
    (counts.values().copied().max().unwrap_or(0), total)
}

fn instance<T: serde::de::DeserializeOwned>(label: &str) -> Option<T> {
    match Label::parse(label).ok()? {
        Label::Triad { instance, .. } => serde_json::from_str(&instance).ok(),
        Label::Paper(_) => None,
    }
}

fn audit_deduction(rows: &[AuditRow], out: &mut LevelAudit) {
    let instances: Vec<DeductionInstance> =
        rows.iter().filter_map(|r| instance(&r.label)).collect();
    let n = instances.first().map_or(1, |i| i.variables.len());
    let total = instances.len() as u64;
    let solved: Vec<&Vec<bool>> = instances
        .iter()
        .filter_map(|i| i.solution.as_ref())
        .collect();
    let trues: usize = solved
        .iter()
        .map(|s| s.iter().filter(|v| **v).count())
        .sum();
    let values: usize = solved.iter().map(|s| s.len()).sum();
    out.distribution
        .insert("true_fraction".into(), trues as f64 / values.max(1) as f64);
    out.distribution.insert(
        "unsat_fraction".into(),
        (instances.len() - solved.len()) as f64 / total.max(1) as f64,
    );
    out.distribution.insert(
        "formulas_mean".into(),
        instances.iter().map(|i| i.formulas.len()).sum::<usize>() as f64 / total.max(1) as f64,
    );
    let chance = 0.5f64.powi(n as i32);
    let all_true = solved.iter().filter(|s| s.iter().all(|v| *v)).count() as u64;
    let all_false = solved.iter().filter(|s| s.iter().all(|v| !*v)).count() as u64;
    out.shortcuts
        .push(flag("all true", all_true, total, chance));
    out.shortcuts
        .push(flag("all false", all_false, total, chance));
    let (common, count) = most_common_share(rows.iter().map(|r| r.answer.as_str()));
    out.shortcuts
        .push(flag("constant answer", common, count, chance));
}

fn audit_induction(rows: &[AuditRow], out: &mut LevelAudit) {
    let instances: Vec<InductionInstance> =
        rows.iter().filter_map(|r| instance(&r.label)).collect();
    let total = instances.len() as u64;
    let answers: Vec<i64> = instances.iter().flat_map(|i| i.answers()).collect();
    out.distribution.insert(
        "answer_mean".into(),
        answers.iter().sum::<i64>() as f64 / answers.len().max(1) as f64,
    );
    out.distribution.insert(
        "answer_negative_fraction".into(),
        answers.iter().filter(|a| **a < 0).count() as f64 / answers.len().max(1) as f64,
    );
    out.distribution.insert(
        "length_mean".into(),
        instances.iter().map(|i| i.sequence.len()).sum::<usize>() as f64 / total.max(1) as f64,
    );
    let last_difference = instances
        .iter()
        .filter(|i| {
            let partial = i.partial();
            i.masked.iter().all(|&m| {
                m >= 2
                    && matches!((partial[m - 1], partial[m - 2]), (Some(a), Some(b)) if a + (a - b) == i.sequence[m])
            })
        })
        .count() as u64;
    let (common, count) = most_common_share(rows.iter().map(|r| r.answer.as_str()));
    // Chance for an open integer answer: the share of the most common answer is itself the
    // constant predictor, so the flag only fires when repeating the last difference dominates.
    out.shortcuts.push(flag(
        "repeat the last difference",
        last_difference,
        total,
        0.25,
    ));
    out.shortcuts
        .push(flag("constant answer", common, count, 0.05));
}

fn audit_abduction(rows: &[AuditRow], out: &mut LevelAudit) {
    let instances: Vec<AbductionInstance> =
        rows.iter().filter_map(|r| instance(&r.label)).collect();
    let reach: Vec<&AbductionInstance> = instances
        .iter()
        .filter(|i| i.mode == Mode::Reachability)
        .collect();
    let goals: Vec<(&AbductionInstance, &String, bool)> = reach
        .iter()
        .flat_map(|i| {
            i.goals
                .iter()
                .zip(&i.reachable)
                .map(move |(g, r)| (*i, g, *r))
        })
        .collect();
    let total = goals.len() as u64;
    let reachable = goals.iter().filter(|g| g.2).count() as u64;
    let share = reachable as f64 / total.max(1) as f64;
    out.distribution.insert("reachable_fraction".into(), share);
    out.distribution.insert(
        "explanation_items".into(),
        (instances.len() - reach.len()) as f64,
    );
    let majority = share.max(1.0 - share);
    let member = goals
        .iter()
        .filter(|(i, g, r)| i.known.contains(g) == *r)
        .count() as u64;
    let head = goals
        .iter()
        .filter(|(i, g, r)| i.premises.iter().any(|p| p.ends_with(&format!("=> {g}"))) == *r)
        .count() as u64;
    out.shortcuts
        .push(flag("reachable iff known", member, total, majority));
    out.shortcuts.push(flag(
        "reachable iff a premise's head",
        head,
        total,
        majority,
    ));
    out.shortcuts.push(flag(
        "majority label",
        reachable.max(total - reachable),
        total,
        majority,
    ));
}

fn hash16(text: &str) -> [u8; 16] {
    Sha256::digest(text.as_bytes())[..16]
        .try_into()
        .expect("16 bytes")
}

/// Audit the dataset in `dir`.
pub fn audit(dir: &Path) -> Result<AuditReport, DatasetError> {
    let manifest = Manifest::read(dir)?;
    let mut by_level: BTreeMap<(String, u8), LevelRows> = BTreeMap::new();
    for stream in &manifest.streams {
        for entry in &stream.shards {
            for batch in shard::read_batches(&dir.join(&entry.path))? {
                let (ids, labels, answers) = match (
                    string_column(&batch, "id"),
                    string_column(&batch, "label"),
                    string_column(&batch, "answer"),
                ) {
                    (Some(a), Some(b), Some(c)) => (a, b, c),
                    _ => {
                        return Err(DatasetError::Invalid(format!(
                            "{}: missing columns",
                            entry.path
                        )));
                    }
                };
                let prompts = batch
                    .column_by_name("prompt")
                    .and_then(|c| c.as_list_opt::<i32>())
                    .cloned();
                for i in 0..batch.num_rows() {
                    let prompt_text = prompts.as_ref().map_or(String::new(), |p| {
                        let messages = p.value(i);
                        messages
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
                    });
                    by_level
                        .entry((stream.family.clone(), stream.level))
                        .or_default()
                        .rows
                        .push(AuditRow {
                            split: stream.split.name().into(),
                            prompt_hash: hash16(&prompt_text),
                            id: ids.value(i).into(),
                            label: labels.value(i).into(),
                            answer: answers.value(i).into(),
                        });
                }
            }
        }
    }
    let mut report = AuditReport::default();
    for ((family, level), rows) in by_level {
        let mut audit = LevelAudit {
            family: family.clone(),
            level,
            ..LevelAudit::default()
        };
        let mut seen_prompt: HashSet<(String, [u8; 16])> = HashSet::new();
        let mut seen_id: HashSet<(String, String)> = HashSet::new();
        for row in &rows.rows {
            *audit.rows.entry(row.split.clone()).or_default() += 1;
            audit.exact_duplicates +=
                u64::from(!seen_prompt.insert((row.split.clone(), row.prompt_hash)));
            audit.near_duplicates +=
                u64::from(!seen_id.insert((row.split.clone(), row.id.clone())));
        }
        for row in rows.rows.iter().filter(|r| r.split == "test") {
            let in_train = seen_prompt.contains(&("train".to_string(), row.prompt_hash))
                || seen_id.contains(&("train".to_string(), row.id.clone()));
            audit.train_test_overlap += u64::from(in_train);
        }
        match family.as_str() {
            "deduction" => audit_deduction(&rows.rows, &mut audit),
            "induction" => audit_induction(&rows.rows, &mut audit),
            "abduction" => audit_abduction(&rows.rows, &mut audit),
            _ => {}
        }
        report.rows += rows.rows.len() as u64;
        report.levels.push(audit);
    }
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
