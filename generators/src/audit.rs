//! What a family's items would teach a model that looks for shortcuts: each family's own
//! statistics and shortcut predictors ([`Tally`]), fed one instance at a time, for `triad audit`.
//!
//! The audit itself (duplicates, train/test overlap, the constant-answer count, the report) is
//! generic and lives in `triad`; everything that needs to know what an instance means lives here,
//! behind [`crate::Family::Tally`].

use serde::Serialize;

/// One shortcut predictor's accuracy at a level.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Shortcut {
    /// What it predicts.
    pub name: String,
    /// Its accuracy (over items, or over the unit the family counts, e.g. abduction goals).
    pub accuracy: f64,
    /// The accuracy of guessing (or of the majority label).
    pub chance: f64,
    /// Far above chance.
    pub flagged: bool,
}

impl Shortcut {
    /// A predictor right `hits` times of `total`, against `chance`. "Far above chance": above it
    /// by its own size (capped at 25 points) and by at least ten.
    pub fn measure(name: &str, hits: u64, total: u64, chance: f64) -> Shortcut {
        let accuracy = hits as f64 / total.max(1) as f64;
        let flagged = total > 0 && accuracy > chance + chance.clamp(0.10, 0.25);
        Shortcut {
            name: name.into(),
            accuracy,
            chance,
            flagged,
        }
    }
}

/// How concentrated a level's reference answers are, measured by the generic audit for every
/// family: the constant-answer predictor's hits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnswerSpread {
    /// Rows whose answer is the most common one.
    pub most_common: u64,
    /// Rows counted.
    pub total: u64,
}

/// What a family reports of one level.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Findings {
    /// Named statistics of labels and answers (`true_fraction`, …).
    pub distribution: Vec<(String, f64)>,
    /// Shortcut predictors, in the order the report lists them.
    pub shortcuts: Vec<Shortcut>,
}

impl Findings {
    /// Record a statistic.
    pub fn stat(&mut self, name: &str, value: f64) {
        self.distribution.push((name.to_string(), value));
    }

    /// Record a shortcut predictor (see [`Shortcut::measure`]).
    pub fn shortcut(&mut self, name: &str, hits: u64, total: u64, chance: f64) {
        self.shortcuts
            .push(Shortcut::measure(name, hits, total, chance));
    }
}

/// A family's audit statistics of one level, fed one instance at a time: it should keep counts,
/// not instances, so an audit of millions of rows stays small.
pub trait Tally: Default + Send {
    /// The family's instance.
    type Instance;
    /// Count one instance.
    fn add(&mut self, instance: &Self::Instance);
    /// The level's statistics and shortcut predictors.
    fn finish(&self, answers: AnswerSpread) -> Findings;
}

/// A [`Tally`] behind the object-safe face of [`crate::DynFamily::tally`]: fed label instance
/// JSON.
pub trait DynTally: Send {
    /// Count a label's instance; false (and nothing counted) when it is not a well-formed
    /// instance of the family.
    fn add_json(&mut self, instance: &str) -> bool;
    /// See [`Tally::finish`].
    fn finish(&self, answers: AnswerSpread) -> Findings;
}

/// `x / whole`, 0 for an empty whole.
pub fn ratio(part: f64, whole: u64) -> f64 {
    part / whole.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::Shortcut;

    #[test]
    fn far_above_chance() {
        let flagged = |hits, total, chance| Shortcut::measure("x", hits, total, chance).flagged;
        assert!(!flagged(50, 100, 0.5));
        assert!(flagged(100, 100, 0.5));
        assert!(!flagged(8, 100, 0.06));
        assert!(flagged(30, 100, 0.06));
        assert!(!flagged(0, 0, 0.06));
    }
}
