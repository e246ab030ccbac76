//! The one trait every task family implements, and its type-erased face.

use std::fmt;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::audit::{AnswerSpread, DynTally, Findings, Tally};
use crate::fields::{FieldSpec, FieldValue};
use crate::label::{LABEL_VERSION, Label};
use crate::options::{FamilyOptions, OptionDoc, OptionSet};
use crate::rng::{Draw, content_key, split_of_key};

/// How a prompt is rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum PromptStyle {
    /// System and user messages with no template tokens, so any model's chat template applies.
    #[default]
    Chat,
    /// The paper's single pre-rendered Qwen string, `<|im_start|>` tokens and pre-filled `<think>`.
    Paper,
    /// One user message: the chat style's puzzle text and a one-line answer-format hint, no
    /// system text. For small models trained from scratch, where every prompt token is paid for in
    /// each training step (a third of the chat style's tokens at level 1); the answer format itself
    /// is learnt from the SFT targets, not read from an example.
    Compact,
}

impl PromptStyle {
    /// The style's name on the command line and in manifests.
    pub fn name(self) -> &'static str {
        match self {
            PromptStyle::Chat => "chat",
            PromptStyle::Paper => "paper",
            PromptStyle::Compact => "compact",
        }
    }
}

/// A dataset split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training items.
    Train,
    /// Held-out items; by construction never equal to a training item.
    Test,
}

impl Split {
    /// The split's name in paths, labels and `extra_info`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One chat message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The message text.
    pub content: String,
}

/// A rendered prompt: the list of messages of the verl `prompt` column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// The messages, in order.
    pub messages: Vec<Message>,
    /// Whether the prompt ends with a pre-filled `<think>` that the response continues.
    pub prefills_think: bool,
}

/// Options that change what is generated (beyond family, level and coordinates).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct GenOptions {
    /// Cross-check every instance with Z3 even where a fast exact path decided it (done by the
    /// dataset pipeline on each distinct item; see [`certify_item`]).
    pub certify: bool,
    /// Each family's own options (see [`Family::Options`]).
    #[serde(default)]
    pub families: OptionSet,
}

/// The coordinates of one candidate item; its RNG is a hash of all of them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ItemCoords {
    /// The dataset's master seed.
    pub seed: u64,
    /// The family name.
    pub family: &'static str,
    /// The level (1–5 paper-compatible, 6–10 extended).
    pub level: u8,
    /// The candidate's index in its (seed, family, level) stream. The stream serves both splits:
    /// a candidate belongs to the split its content hash picks ([`Item::split`]).
    pub index: u64,
}

/// A model's answer, judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The answer is a valid solution.
    Correct,
    /// The answer parsed but is not a solution; the string says why.
    Wrong(String),
    /// The answer could not be read as one committed answer (hedges land here); the string says why.
    Unparseable(String),
}

/// How far a written trace gets before its first step that does not follow: what a shaped
/// reward credits (see [`DynFamily::trace_progress_json`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceProgress {
    /// Lines before the first one [`Family::check_trace`] refuses; every line when none is
    /// refused (the trace may still fail to conclude the reference answer).
    pub checked_lines: usize,
    /// Whether the whole trace checks and concludes the reference answer.
    pub complete: bool,
    /// Lines of the family's own trace of the instance (0 where it has none).
    pub reference_lines: usize,
}

impl TraceProgress {
    /// Read a [`Family::check_trace`] outcome: its errors name the first refused step as
    /// `line N: …` (the trait's contract); an error naming no line (an instance that no step
    /// could be checked against) credits none.
    pub fn of(outcome: &Result<(), String>, trace: &str, reference: &str) -> TraceProgress {
        let lines = trace.lines().count();
        let checked_lines = match outcome {
            Ok(()) => lines,
            Err(e) => failing_line(e).map_or(0, |n| n.saturating_sub(1).min(lines)),
        };
        TraceProgress {
            checked_lines,
            complete: outcome.is_ok(),
            reference_lines: reference.lines().count(),
        }
    }

    /// The credit in [0, 1]: 1 for a complete trace, else the checked lines as a share of the
    /// reference trace's length (capped, so padding with valid but idle steps earns no more
    /// than the reference's length); 0 where the family has no reference trace.
    pub fn credit(&self) -> f64 {
        if self.complete {
            1.0
        } else if self.reference_lines == 0 {
            0.0
        } else {
            self.checked_lines.min(self.reference_lines) as f64 / self.reference_lines as f64
        }
    }
}

/// The line number a trace checker's error starts with (`line 3: …`).
fn failing_line(error: &str) -> Option<usize> {
    let (number, _) = error.strip_prefix("line ")?.split_once(": ")?;
    number.parse().ok()
}

/// Generation failed for a reason other than rejection sampling.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// The level is outside the family's range.
    #[error("{family} has no level {level} (levels {min}–{max})")]
    NoSuchLevel {
        /// Family name.
        family: &'static str,
        /// The level asked for.
        level: u8,
        /// Lowest level.
        min: u8,
        /// Highest level.
        max: u8,
    },
    /// Z3 certification disagreed with the generator: a bug, never a rejection.
    #[error("certification failed for {family} level {level}: {error}")]
    Certify {
        /// Family name.
        family: &'static str,
        /// Level.
        level: u8,
        /// What Z3 found.
        error: CertifyError,
    },
}

/// Z3 did not confirm what an instance claims.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertifyError {
    /// The stored answer is not a solution.
    #[error("stored solution is not a solution: {0}")]
    NotASolution(String),
    /// Another solution exists where the instance claims uniqueness.
    #[error("solution is not unique: another is {0}")]
    NotUnique(String),
    /// The instance claims to be unsatisfiable but Z3 found a model.
    #[error("claimed unsatisfiable, but Z3 found a model: {0}")]
    Satisfiable(String),
    /// Z3 gave up (resource limit).
    #[error("Z3 returned unknown: {0}")]
    Unknown(String),
    /// The stored instance is malformed.
    #[error("malformed instance: {0}")]
    Malformed(String),
}

/// A label's instance could not be used: it does not deserialize, or it breaks the family's
/// structural rules (empty lists, lengths that disagree, sizes past [`crate::limits`]).
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// Not JSON of the family's instance shape.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// Deserialized, but not a well-formed instance.
    #[error("{0}")]
    Invalid(String),
}

/// A task family: everything else in triad is generic over these few functions.
///
/// Implement this for a new family, add one line to [`crate::registry`], and generation, shards,
/// labels, scoring and benches pick it up.
pub trait Family: Send + Sync + 'static {
    /// The stored instance: what the label carries, so a stateless scorer needs nothing else.
    type Instance: Serialize + DeserializeOwned + Send + Sync;
    /// The family's generation options ([`crate::NoOptions`] for none): a serde struct whose
    /// `Default` is the default run, stored whole in manifests and hashed whole. Its keys must be
    /// unique across families (the registry tests check).
    type Options: Serialize + DeserializeOwned + Default + Send + Sync + 'static;
    /// The family's audit statistics and shortcut predictors (see [`crate::audit`]).
    type Tally: Tally<Instance = Self::Instance>;

    /// The family's name (`deduction`), used in paths, labels and `data_source`.
    fn name(&self) -> &'static str;
    /// Levels this family generates; 1–5 are paper-compatible, above that extended.
    fn levels(&self) -> RangeInclusive<u8>;
    /// One line describing a level's shape, for dataset cards and `--help`.
    fn describe_level(&self, level: u8) -> String;
    /// What each key of [`Family::Options`] does, for `--help` and the dataset card (one entry per
    /// key; the registry tests check they agree).
    fn option_docs(&self) -> &'static [OptionDoc] {
        &[]
    }
    /// The shape of the paper's released labels for this task, if the family is one of the
    /// paper's (so a paper label is attributed to it).
    fn paper_format(&self) -> Option<crate::paper::PaperFormat> {
        None
    }
    /// Refuse options out of range; the message names the key.
    fn validate_options(&self, options: &Self::Options) -> Result<(), String> {
        let _ = options;
        Ok(())
    }
    /// Make an instance. `Ok(None)` means the draws were rejected; the caller moves to the next
    /// candidate. Must use `draw` as its only source of randomness.
    fn generate(
        &self,
        level: u8,
        options: &Self::Options,
        draw: &mut Draw,
    ) -> Result<Option<Self::Instance>, GenError>;
    /// Check an instance read from a label before it is judged, rendered or certified: lists
    /// non-empty where the family needs them, lengths consistent, names distinct, sizes and
    /// nesting within [`crate::limits`]. Everything else assumes this passed, so it must reject
    /// whatever could make them panic, recurse without bound or do more than linear work.
    fn check(&self, instance: &Self::Instance) -> Result<(), String>;
    /// Render the prompt.
    fn render(&self, instance: &Self::Instance, style: PromptStyle) -> Prompt;
    /// The reference answer text (what goes between `<answer>` tags).
    fn reference_answer(&self, instance: &Self::Instance) -> String;
    /// A step-by-step reasoning trace of the reference answer, made by the family's solver: each
    /// step follows from the prompt and the steps before it, in a fixed form that
    /// [`Family::check_trace`] reads back. Empty when the instance admits none (a label the
    /// generator did not make).
    fn trace(&self, instance: &Self::Instance) -> String;
    /// Check every step of `trace` against the instance and that it concludes the reference
    /// answer; the error names the first step that does not follow, starting `line N: ` (N from
    /// 1; one past the last line when the trace stops before its conclusion), which
    /// [`TraceProgress`] reads. Linear in the trace and the instance, whatever the text.
    fn check_trace(&self, instance: &Self::Instance, trace: &str) -> Result<(), String>;
    /// Parse and judge a model's answer text. Any valid answer is correct, not only the stored one.
    fn judge(&self, instance: &Self::Instance, answer: &str) -> Verdict;
    /// A wrong answer that parses: the reference with one judgement flipped or one number
    /// changed, for benchmarks' near-miss responses (it must judge [`Verdict::Wrong`]).
    fn near_miss(&self, instance: &Self::Instance) -> String;
    /// Prove with Z3 that the stored answer is right (and unique where the family promises it).
    fn certify(&self, instance: &Self::Instance) -> Result<(), CertifyError>;
    /// Canonical text of the instance's content: equal for items that are the same task.
    fn canonical(&self, instance: &Self::Instance) -> String;
    /// The family's structured Parquet columns.
    fn fields(&self) -> &'static [FieldSpec];
    /// The values of [`Family::fields`] for one instance, in the same order.
    fn field_values(&self, instance: &Self::Instance) -> Vec<FieldValue>;
    /// JSON Schema of [`Family::Instance`] (published in `schemas/label.schema.json`).
    fn instance_schema(&self) -> serde_json::Value;
}

/// A generated item, ready to be written as a row.
#[derive(Clone, Debug)]
pub struct Item {
    /// Family name.
    pub family: &'static str,
    /// Level.
    pub level: u8,
    /// Content hash: the row id and the dedup key.
    pub key: u128,
    /// Self-contained label JSON (see [`Label`]).
    pub label: String,
    /// The rendered prompt.
    pub prompt: Prompt,
    /// The reference answer text.
    pub answer: String,
    /// The solver's reasoning trace of the answer (see [`Family::trace`]).
    pub trace: String,
    /// The family's structured columns.
    pub fields: Vec<FieldValue>,
}

impl Item {
    /// The id as 32 lowercase hex digits.
    pub fn id(&self) -> String {
        format!("{:032x}", self.key)
    }

    /// The split that owns this content ([`crate::rng::split_of_key`] of the id): train and test
    /// never share an item.
    pub fn split(&self) -> Split {
        split_of_key(self.key)
    }
}

/// Prove an item's label with its family's Z3 certification.
pub fn certify_item(item: &Item) -> Result<(), GenError> {
    let failed = |error| GenError::Certify {
        family: item.family,
        level: item.level,
        error,
    };
    match Label::parse(&item.label) {
        Ok(Label::Triad {
            family, instance, ..
        }) => family
            .certify_json(&instance)
            .map_err(|e| failed(CertifyError::Malformed(e.to_string())))?
            .map_err(failed),
        Ok(Label::Paper(_)) => Err(failed(CertifyError::Malformed("not a triad label".into()))),
        Err(e) => Err(failed(CertifyError::Malformed(e.to_string()))),
    }
}

/// The object-safe face of a [`Family`], used by registries, pipelines and servers.
pub trait DynFamily: Send + Sync {
    /// See [`Family::name`].
    fn name(&self) -> &'static str;
    /// See [`Family::levels`].
    fn levels(&self) -> RangeInclusive<u8>;
    /// See [`Family::describe_level`].
    fn describe_level(&self, level: u8) -> String;
    /// See [`Family::fields`].
    fn fields(&self) -> &'static [FieldSpec];
    /// See [`Family::option_docs`].
    fn option_docs(&self) -> &'static [OptionDoc];
    /// See [`Family::paper_format`].
    fn paper_format(&self) -> Option<crate::paper::PaperFormat>;
    /// The family's default options.
    fn default_options(&self) -> FamilyOptions;
    /// Read and validate the family's options from a JSON object (keys it does not know refused,
    /// keys left out defaulted where the struct allows).
    fn options_from_json(&self, json: &serde_json::Value) -> Result<FamilyOptions, String>;
    /// Make the candidate at `coords`: `Ok(None)` when rejected. It belongs to the split its
    /// content picks ([`Item::split`]; the content space is partitioned between splits by hash),
    /// so one stream of candidates feeds both splits and none is made only to be dropped.
    fn candidate(
        &self,
        coords: &ItemCoords,
        options: &GenOptions,
        style: PromptStyle,
    ) -> Result<Option<Item>, GenError> {
        self.candidate_in(coords, options, style, None)
    }
    /// [`DynFamily::candidate`] for a caller that wants one split only (`Some(split)`): a
    /// candidate of the other split comes back `Ok(None)` as soon as its content is known, before
    /// its prompt, label and trace are made.
    fn candidate_in(
        &self,
        coords: &ItemCoords,
        options: &GenOptions,
        style: PromptStyle,
        split: Option<Split>,
    ) -> Result<Option<Item>, GenError>;
    /// Judge an answer against a label's instance JSON.
    fn judge_json(&self, instance: &str, answer: &str) -> Result<Verdict, InstanceError>;
    /// Re-certify a label's instance with Z3.
    fn certify_json(&self, instance: &str) -> Result<Result<(), CertifyError>, InstanceError>;
    /// The reference answer of a label's instance.
    fn reference_json(&self, instance: &str) -> Result<String, InstanceError>;
    /// See [`Family::trace`], for a label's instance.
    fn trace_json(&self, instance: &str) -> Result<String, InstanceError>;
    /// See [`Family::check_trace`], for a label's instance.
    fn check_trace_json(
        &self,
        instance: &str,
        trace: &str,
    ) -> Result<Result<(), String>, InstanceError>;
    /// How far `trace` checks for a label's instance, against the length of the family's own
    /// trace of it (see [`TraceProgress`]). Bounded as [`Family::check_trace`] and
    /// [`Family::trace`] are.
    fn trace_progress_json(
        &self,
        instance: &str,
        trace: &str,
    ) -> Result<TraceProgress, InstanceError>;
    /// The item a label describes, every field rebuilt from its instance in `style` (the label
    /// text kept as given): what `verify` compares each row with, made as `candidate` makes it.
    fn rebuild_json(
        &self,
        level: u8,
        label: &str,
        instance: &str,
        style: PromptStyle,
    ) -> Result<Item, InstanceError>;
    /// See [`Family::instance_schema`].
    fn instance_schema(&self) -> serde_json::Value;
    /// A fresh audit tally for one level (see [`Family::Tally`]).
    fn tally(&self) -> Box<dyn DynTally + '_>;
    /// See [`Family::near_miss`], for a label's instance.
    fn near_miss_json(&self, instance: &str) -> Result<String, InstanceError>;
    /// The content hash (row id) of a label's instance.
    fn content_key_json(&self, instance: &str) -> Result<u128, InstanceError>;
}

/// The row-ready item of an instance, given its content key, label text and rendered prompt.
fn item_of<F: Family>(
    family: &F,
    level: u8,
    instance: &F::Instance,
    key: u128,
    label: String,
    prompt: Prompt,
) -> Item {
    Item {
        family: Family::name(family),
        level,
        key,
        answer: family.reference_answer(instance),
        trace: family.trace(instance),
        fields: family.field_values(instance),
        label,
        prompt,
    }
}

/// Read a label's instance JSON and check it (see [`Family::check`]).
fn read_instance<F: Family>(family: &F, instance: &str) -> Result<F::Instance, InstanceError> {
    let instance: F::Instance = serde_json::from_str(instance)?;
    family.check(&instance).map_err(InstanceError::Invalid)?;
    Ok(instance)
}

/// A family's [`Tally`], fed label instance JSON.
struct TallyOf<'a, F: Family> {
    family: &'a F,
    tally: F::Tally,
}

impl<F: Family> DynTally for TallyOf<'_, F> {
    fn add_json(&mut self, instance: &str) -> bool {
        match read_instance(self.family, instance) {
            Ok(instance) => {
                self.tally.add(&instance);
                true
            }
            Err(_) => false,
        }
    }

    fn finish(&self, answers: AnswerSpread) -> Findings {
        self.tally.finish(answers)
    }
}

impl<F: Family> DynFamily for F {
    fn name(&self) -> &'static str {
        Family::name(self)
    }

    fn levels(&self) -> RangeInclusive<u8> {
        Family::levels(self)
    }

    fn describe_level(&self, level: u8) -> String {
        Family::describe_level(self, level)
    }

    fn fields(&self) -> &'static [FieldSpec] {
        Family::fields(self)
    }

    fn option_docs(&self) -> &'static [OptionDoc] {
        Family::option_docs(self)
    }

    fn paper_format(&self) -> Option<crate::paper::PaperFormat> {
        Family::paper_format(self)
    }

    fn default_options(&self) -> FamilyOptions {
        // Options structs serialize as objects (the registry tests check every family's).
        FamilyOptions::new(Family::name(self), F::Options::default())
            .expect("a family's default options serialize as a JSON object")
    }

    fn options_from_json(&self, json: &serde_json::Value) -> Result<FamilyOptions, String> {
        let typed: F::Options = serde_json::from_value(json.clone()).map_err(|e| e.to_string())?;
        self.validate_options(&typed)?;
        FamilyOptions::new(Family::name(self), typed)
    }

    fn candidate_in(
        &self,
        coords: &ItemCoords,
        options: &GenOptions,
        style: PromptStyle,
        split: Option<Split>,
    ) -> Result<Option<Item>, GenError> {
        let levels = Family::levels(self);
        if !levels.contains(&coords.level) {
            return Err(GenError::NoSuchLevel {
                family: Family::name(self),
                level: coords.level,
                min: *levels.start(),
                max: *levels.end(),
            });
        }
        let mut draw = Draw::for_item(coords);
        let default;
        let typed = match options
            .families
            .of(Family::name(self))
            .and_then(|o| o.typed())
        {
            Some(typed) => typed,
            None => {
                default = F::Options::default();
                &default
            }
        };
        let Some(instance) = self.generate(coords.level, typed, &mut draw)? else {
            return Ok(None);
        };
        let key = content_key(Family::name(self), &self.canonical(&instance));
        if split.is_some_and(|wanted| split_of_key(key) != wanted) {
            return Ok(None);
        }
        let prompt = self.render(&instance, style);
        let label = Label::encode(
            Family::name(self),
            coords.level,
            prompt.prefills_think,
            &instance,
        );
        debug_assert!(label.contains(&format!("\"v\":{LABEL_VERSION}")));
        Ok(Some(item_of(
            self,
            coords.level,
            &instance,
            key,
            label,
            prompt,
        )))
    }

    fn judge_json(&self, instance: &str, answer: &str) -> Result<Verdict, InstanceError> {
        Ok(self.judge(&read_instance(self, instance)?, answer))
    }

    fn certify_json(&self, instance: &str) -> Result<Result<(), CertifyError>, InstanceError> {
        Ok(self.certify(&read_instance(self, instance)?))
    }

    fn reference_json(&self, instance: &str) -> Result<String, InstanceError> {
        Ok(self.reference_answer(&read_instance(self, instance)?))
    }

    fn trace_json(&self, instance: &str) -> Result<String, InstanceError> {
        Ok(self.trace(&read_instance(self, instance)?))
    }

    fn check_trace_json(
        &self,
        instance: &str,
        trace: &str,
    ) -> Result<Result<(), String>, InstanceError> {
        Ok(self.check_trace(&read_instance(self, instance)?, trace))
    }

    fn trace_progress_json(
        &self,
        instance: &str,
        trace: &str,
    ) -> Result<TraceProgress, InstanceError> {
        let instance = read_instance(self, instance)?;
        let outcome = self.check_trace(&instance, trace);
        Ok(TraceProgress::of(&outcome, trace, &self.trace(&instance)))
    }

    fn rebuild_json(
        &self,
        level: u8,
        label: &str,
        instance: &str,
        style: PromptStyle,
    ) -> Result<Item, InstanceError> {
        let instance = read_instance(self, instance)?;
        let key = content_key(Family::name(self), &self.canonical(&instance));
        let prompt = self.render(&instance, style);
        Ok(item_of(
            self,
            level,
            &instance,
            key,
            label.to_string(),
            prompt,
        ))
    }

    fn instance_schema(&self) -> serde_json::Value {
        Family::instance_schema(self)
    }

    fn tally(&self) -> Box<dyn DynTally + '_> {
        Box::new(TallyOf {
            family: self,
            tally: F::Tally::default(),
        })
    }

    fn near_miss_json(&self, instance: &str) -> Result<String, InstanceError> {
        Ok(self.near_miss(&read_instance(self, instance)?))
    }

    fn content_key_json(&self, instance: &str) -> Result<u128, InstanceError> {
        let instance = read_instance(self, instance)?;
        Ok(content_key(Family::name(self), &self.canonical(&instance)))
    }
}

#[cfg(test)]
mod tests {
    use super::{TraceProgress, failing_line};

    #[test]
    fn failing_lines_are_read_from_the_checkers_errors() {
        assert_eq!(failing_line("line 3: expected \"So A is True.\""), Some(3));
        assert_eq!(
            failing_line("line 12: does not start with \"Rule: \""),
            Some(12)
        );
        assert_eq!(failing_line("line 12 does not start"), None);
        assert_eq!(failing_line("the trace concludes something else"), None);
        assert_eq!(failing_line("line x"), None);
        let trace = "a\nb\nc\nd";
        let at = |e: &str| TraceProgress::of(&Err(e.into()), trace, "1\n2\n3\n4\n5\n6\n7\n8");
        assert_eq!(at("line 3: no").checked_lines, 2);
        assert_eq!(at("line 3: no").credit(), 0.25);
        // A line number past the trace (a missing line) counts the lines there are.
        assert_eq!(at("line 9: missing").checked_lines, 4);
        assert_eq!(at("line 5: ends without a conclusion").checked_lines, 4);
        assert_eq!(at("a formula has too many variables").checked_lines, 0);
        let long = "x\n".repeat(20);
        let padded = TraceProgress::of(&Err("line 21: no conclusion".into()), &long, "1\n2");
        assert_eq!(padded.credit(), 1.0);
        assert!(!padded.complete);
        assert_eq!(TraceProgress::of(&Ok(()), "", "").credit(), 1.0);
        assert_eq!(TraceProgress::of(&Err("x".into()), "a", "").credit(), 0.0);
    }
}
