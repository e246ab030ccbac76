//! Abduction's audit, per goal of the reachability items: the reachable share, and the
//! reachable-iff-known, reachable-iff-a-premise's-head and majority-label shortcuts.

use super::{AbductionInstance, Mode};
use crate::audit::{AnswerSpread, Findings, Tally, ratio};

/// Abduction statistics of one level.
#[derive(Default)]
pub struct AbductionTally {
    items: u64,
    reachability_items: u64,
    goals: u64,
    reachable: u64,
    membership_right: u64,
    head_right: u64,
}

impl Tally for AbductionTally {
    type Instance = AbductionInstance;

    fn add(&mut self, item: &AbductionInstance) {
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

    /// The constant-answer count is not used: answers list every goal, so they rarely repeat.
    fn finish(&self, _: AnswerSpread) -> Findings {
        let mut out = Findings::default();
        let share = ratio(self.reachable as f64, self.goals);
        out.stat("reachable_fraction", share);
        out.stat(
            "explanation_items",
            (self.items - self.reachability_items) as f64,
        );
        let majority = share.max(1.0 - share);
        let total = self.goals;
        out.shortcut(
            "reachable iff known",
            self.membership_right,
            total,
            majority,
        );
        out.shortcut(
            "reachable iff a premise's head",
            self.head_right,
            total,
            majority,
        );
        out.shortcut(
            "majority label",
            self.reachable.max(total - self.reachable),
            total,
            majority,
        );
        out
    }
}
