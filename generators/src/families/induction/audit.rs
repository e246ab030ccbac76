//! Induction's audit: the answers' spread and sign, how many items a reader allowing every rule
//! class of every level would find open, and the repeat-the-last-difference shortcut.

use super::InductionInstance;
use super::determinacy::ambiguous_under_every_class;
use crate::audit::{AnswerSpread, Findings, Tally, ratio};

/// Induction statistics of one level.
#[derive(Default)]
pub struct InductionTally {
    items: u64,
    answer_sum: i128,
    answers: u64,
    negative_answers: u64,
    length_sum: u64,
    last_difference: u64,
    /// Items with a second answer under every class of every level at once.
    ambiguous_wider: u64,
}

impl Tally for InductionTally {
    type Instance = InductionInstance;

    fn add(&mut self, item: &InductionInstance) {
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
        self.ambiguous_wider += u64::from(ambiguous_under_every_class(item));
    }

    fn finish(&self, answers: AnswerSpread) -> Findings {
        let mut out = Findings::default();
        out.stat(
            "answer_mean",
            self.answer_sum as f64 / self.answers.max(1) as f64,
        );
        out.stat(
            "answer_negative_fraction",
            ratio(self.negative_answers as f64, self.answers),
        );
        // Items are determined under the classes of their band (levels 1–5, or 6–10); this is
        // how many a reader allowing every class of every level at once would find open.
        out.stat(
            "ambiguous_under_every_class_fraction",
            ratio(self.ambiguous_wider as f64, self.items),
        );
        out.stat("length_mean", ratio(self.length_sum as f64, self.items));
        // Chance for an open integer answer: the share of the most common answer is itself the
        // constant predictor, so the flag only fires when repeating the last difference dominates.
        out.shortcut(
            "repeat the last difference",
            self.last_difference,
            self.items,
            0.25,
        );
        out.shortcut("constant answer", answers.most_common, answers.total, 0.05);
        out
    }
}
