//! A test-only fourth family, registered in [`crate::registry::FAMILIES`] the way a real one is
//! (one module, one line), to show — and test — that a family needs nothing outside its module:
//! options, generation, rendering, judging, certification, audit and near misses all come from
//! its [`Family`] impl.
//!
//! The task: is the sum of a few numbers even or odd?

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::audit::{AnswerSpread, Findings, Tally};
use crate::family::{CertifyError, Family, GenError, Prompt, PromptStyle, Verdict};
use crate::fields::{FieldKind, FieldSpec, FieldValue};
use crate::frame;
use crate::options::OptionDoc;
use crate::rng::Draw;

/// The parity family.
pub struct Parity;

/// A parity instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParityInstance {
    /// The numbers to add.
    pub numbers: Vec<u32>,
}

impl ParityInstance {
    fn even(&self) -> bool {
        self.numbers.iter().map(|&n| u64::from(n)).sum::<u64>() % 2 == 0
    }
}

/// The parity family's options.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParityOptions {
    /// How many numbers each item adds (1..=16).
    pub parity_terms: u32,
}

impl Default for ParityOptions {
    fn default() -> Self {
        ParityOptions { parity_terms: 3 }
    }
}

/// Parity statistics of one level.
#[derive(Default)]
pub struct ParityTally {
    items: u64,
    even: u64,
}

impl Tally for ParityTally {
    type Instance = ParityInstance;

    fn add(&mut self, instance: &ParityInstance) {
        self.items += 1;
        self.even += u64::from(instance.even());
    }

    fn finish(&self, answers: AnswerSpread) -> Findings {
        let mut out = Findings::default();
        out.stat("even_fraction", self.even as f64 / self.items.max(1) as f64);
        out.shortcut("always even", self.even, self.items, 0.5);
        out.shortcut("constant answer", answers.most_common, answers.total, 0.5);
        out
    }
}

fn answer_word(even: bool) -> &'static str {
    if even { "even" } else { "odd" }
}

impl Family for Parity {
    type Instance = ParityInstance;
    type Options = ParityOptions;
    type Tally = ParityTally;

    fn name(&self) -> &'static str {
        "parity"
    }

    fn levels(&self) -> RangeInclusive<u8> {
        1..=2
    }

    fn describe_level(&self, level: u8) -> String {
        format!("numbers below {}", 10u32.pow(u32::from(level)))
    }

    fn option_docs(&self) -> &'static [OptionDoc] {
        &[OptionDoc {
            key: "parity_terms",
            help: "How many numbers each parity item adds, 1..=16",
        }]
    }

    fn validate_options(&self, options: &ParityOptions) -> Result<(), String> {
        if (1..=16).contains(&options.parity_terms) {
            Ok(())
        } else {
            Err(format!(
                "parity_terms {} is outside 1..=16",
                options.parity_terms
            ))
        }
    }

    fn generate(
        &self,
        level: u8,
        options: &ParityOptions,
        draw: &mut Draw,
    ) -> Result<Option<ParityInstance>, GenError> {
        if !Family::levels(self).contains(&level) {
            return Err(GenError::NoSuchLevel {
                family: "parity",
                level,
                min: 1,
                max: 2,
            });
        }
        let bound = 10u64.pow(u32::from(level));
        let numbers = (0..options.parity_terms)
            .map(|_| draw.below(bound) as u32)
            .collect();
        Ok(Some(ParityInstance { numbers }))
    }

    fn check(&self, instance: &ParityInstance) -> Result<(), String> {
        match instance.numbers.len() {
            1..=16 => Ok(()),
            n => Err(format!("{n} numbers (1 to 16 allowed)")),
        }
    }

    fn render(&self, instance: &ParityInstance, style: PromptStyle) -> Prompt {
        let numbers: Vec<String> = instance.numbers.iter().map(u32::to_string).collect();
        frame::prompt(
            style,
            "Answer `even` or `odd`.",
            &format!("Is {} even or odd?", numbers.join(" + ")),
        )
    }

    fn reference_answer(&self, instance: &ParityInstance) -> String {
        answer_word(instance.even()).into()
    }

    /// Running sums, one line per number, then the last sum's parity.
    fn trace(&self, instance: &ParityInstance) -> String {
        let mut sum = 0u64;
        let mut lines: Vec<String> = instance
            .numbers
            .iter()
            .map(|&n| {
                sum += u64::from(n);
                format!("+ {n} = {sum}")
            })
            .collect();
        lines.push(format!("{sum} is {}.", answer_word(sum.is_multiple_of(2))));
        lines.join("\n")
    }

    fn check_trace(&self, instance: &ParityInstance, trace: &str) -> Result<(), String> {
        let lines: Vec<&str> = trace.lines().collect();
        let mut sum = 0u64;
        for (i, &n) in instance.numbers.iter().enumerate() {
            sum += u64::from(n);
            if lines.get(i).copied() != Some(format!("+ {n} = {sum}").as_str()) {
                return Err(format!("line {}: the running sum is {sum}", i + 1));
            }
        }
        let last = instance.numbers.len();
        let conclusion = format!("{sum} is {}.", answer_word(instance.even()));
        if lines.get(last).copied() != Some(conclusion.as_str()) || lines.len() != last + 1 {
            return Err(format!(
                "line {}: expected {conclusion:?}, the last line",
                last + 1
            ));
        }
        Ok(())
    }

    fn near_miss(&self, instance: &ParityInstance) -> String {
        answer_word(!instance.even()).into()
    }

    fn judge(&self, instance: &ParityInstance, answer: &str) -> Verdict {
        match answer.trim().to_ascii_lowercase().as_str() {
            "even" | "odd"
                if answer
                    .trim()
                    .eq_ignore_ascii_case(answer_word(instance.even())) =>
            {
                Verdict::Correct
            }
            "even" | "odd" => Verdict::Wrong("the other parity".into()),
            _ => Verdict::Unparseable("neither `even` nor `odd`".into()),
        }
    }

    fn certify(&self, instance: &ParityInstance) -> Result<(), CertifyError> {
        // Summing is its own proof; a real family asks Z3 here.
        let odd_terms = instance.numbers.iter().filter(|&&n| n % 2 == 1).count();
        if (odd_terms % 2 == 0) == instance.even() {
            Ok(())
        } else {
            Err(CertifyError::NotASolution("parity disagrees".into()))
        }
    }

    fn canonical(&self, instance: &ParityInstance) -> String {
        let mut numbers = instance.numbers.clone();
        numbers.sort_unstable();
        format!("{numbers:?}")
    }

    fn fields(&self) -> &'static [FieldSpec] {
        &[FieldSpec {
            name: "numbers",
            kind: FieldKind::IntList,
            nullable: false,
            doc: "the numbers to add",
        }]
    }

    fn field_values(&self, instance: &ParityInstance) -> Vec<FieldValue> {
        vec![FieldValue::IntList(
            instance.numbers.iter().map(|&n| i64::from(n)).collect(),
        )]
    }

    fn instance_schema(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "required": ["numbers"],
            "additionalProperties": false,
            "properties": {"numbers": {"type": "array", "minItems": 1, "maxItems": 16, "items": {"type": "integer", "minimum": 0}}}
        })
    }
}
