//! `triad audit`: what a dataset would teach a model that looks for shortcuts.
//!
//! Per family and level: exact duplicates (the same rendered prompt), near duplicates (the same
//! canonical content, e.g. the same formulas in another order), train/test overlap by either, the
//! label and answer distributions, and the accuracy of trivial shortcut predictors against their
//! chance rate. The statistics and predictors that need to know what an instance means are the
//! family's own ([`triad_generators::audit`]); this module feeds them and adds what is generic. A
//! level whose shortcut beats chance by a wide margin is flagged. The report is printed, written as `audit.json`, and added to
//! the dataset card.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;
use triad_generators::audit::{AnswerSpread, DynTally};
use triad_generators::{Label, Split, registry};

use super::manifest::Manifest;
use super::shard::{self, StoredRow};
use super::{DatasetError, hash128};

pub use triad_generators::audit::Shortcut;

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
    /// The family's own statistics; none for a family this build does not have.
    family_tally: Option<Box<dyn DynTally>>,
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
            family_tally: registry::family(family).map(|f| f.tally()),
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
        if let (Some(tally), Ok(Label::Triad { instance, .. })) =
            (&mut self.family_tally, Label::parse(label))
        {
            // A label that is not a well-formed instance is left out of the family's statistics.
            tally.add_json(&instance);
        }
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
        if let Some(tally) = &self.family_tally {
            let findings = tally.finish(AnswerSpread {
                most_common,
                total: answered,
            });
            audit.distribution.extend(findings.distribution);
            audit.shortcuts = findings.shortcuts;
        }
        audit
    }
}

/// A row's prompt: its messages' contents joined by NUL.
fn prompt_text(row: &StoredRow) -> String {
    let contents: Vec<&str> = row.messages.iter().map(|m| m.content.as_str()).collect();
    contents.join("\u{0}")
}

/// Audit the dataset in `dir`, reading it one record batch at a time.
pub fn audit(dir: &Path) -> Result<AuditReport, DatasetError> {
    audit_with(dir, &mut super::progress::Silent)
}

/// [`audit`], reporting each shard done to `progress`.
pub fn audit_with(
    dir: &Path,
    progress: &mut dyn super::progress::Progress,
) -> Result<AuditReport, DatasetError> {
    let manifest = Manifest::read(dir)?;
    let shards = manifest.streams.iter().map(|s| s.shards.len() as u64).sum();
    progress.begin(manifest.total_rows, shards);
    let mut by_level: BTreeMap<(String, u8), LevelTally> = BTreeMap::new();
    let mut report = AuditReport::default();
    for stream in &manifest.streams {
        let tally = by_level
            .entry((stream.family.clone(), stream.level))
            .or_insert_with(|| LevelTally::new(&stream.family, stream.level));
        for entry in &stream.shards {
            for row in shard::read_rows(&dir.join(&entry.path))? {
                let row = row?;
                tally.add(
                    stream.split,
                    &prompt_text(&row),
                    &row.id,
                    &row.label,
                    &row.answer,
                );
                report.rows += 1;
            }
            progress.shard_done(entry.rows);
        }
    }
    progress.end();
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
