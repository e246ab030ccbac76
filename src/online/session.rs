//! A learner's session: accuracy per (family, level) from the rewards scored for it, and the
//! adaptive schedule that moves each family's level with that accuracy.
//!
//! The schedule follows RLVE (arXiv 2511.07317): each family has a *frontier* level; tasks are
//! drawn uniformly from the window of the [`AdaptiveOptions::window`] levels ending at the
//! frontier; once the accuracy over the frontier's last [`AdaptiveOptions::prompts`] scored
//! prompts reaches [`AdaptiveOptions::rise`], the frontier moves up one level, and once it falls
//! to [`AdaptiveOptions::fall`] or below, it moves back down one. The level moved to starts with
//! no history, so a move is always judged on prompts scored at the new frontier. Only complete
//! prompts are judged: a prompt's rollouts arrive one after another (or in one batch), and a
//! prompt counts as complete once a rollout of the next prompt at that level is scored, so a
//! half-scored group never tips the decision.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use triad_generators::DynFamily;

use super::OnlineError;

/// Default accuracy at which a family's frontier rises (RLVE's 0.9).
pub const DEFAULT_RISE_ACCURACY: f64 = 0.9;
/// Default accuracy at or below which the frontier falls back: a collapse, not a hard level.
pub const DEFAULT_FALL_ACCURACY: f64 = 0.1;
/// Default number of scored prompts at the frontier a move is judged on (RLVE's 8).
pub const DEFAULT_JUDGED_PROMPTS: usize = 8;
/// Default width of the window of levels tasks are drawn from (RLVE's 4).
pub const DEFAULT_LEVEL_WINDOW: u8 = 4;
/// Longest session id: ids name files, so they are short and of `A-Z a-z 0-9 _ -` only.
pub const MAX_SESSION_ID_LEN: usize = 64;
/// Most prompts a move may be judged on (a session's memory is bounded by it).
pub const MAX_JUDGED_PROMPTS: usize = 1024;

/// The adaptive schedule's knobs (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdaptiveOptions {
    /// Frontier accuracy at which the frontier rises.
    pub rise: f64,
    /// Frontier accuracy at or below which it falls back.
    pub fall: f64,
    /// Scored prompts at the frontier a move is judged on.
    pub prompts: usize,
    /// Levels in the window tasks are drawn from, ending at the frontier.
    pub window: u8,
}

impl Default for AdaptiveOptions {
    fn default() -> Self {
        AdaptiveOptions {
            rise: DEFAULT_RISE_ACCURACY,
            fall: DEFAULT_FALL_ACCURACY,
            prompts: DEFAULT_JUDGED_PROMPTS,
            window: DEFAULT_LEVEL_WINDOW,
        }
    }
}

impl AdaptiveOptions {
    /// Refuse options the schedule cannot run with.
    pub fn validate(&self) -> Result<(), OnlineError> {
        let bad = |m: String| Err(OnlineError::Invalid(m));
        if !(0.0..=1.0).contains(&self.rise) || !(0.0..=1.0).contains(&self.fall) {
            return bad(format!(
                "rise ({}) and fall ({}) are accuracies in [0, 1]",
                self.rise, self.fall
            ));
        }
        if self.fall >= self.rise {
            return bad(format!(
                "fall ({}) must be below rise ({})",
                self.fall, self.rise
            ));
        }
        if !(1..=MAX_JUDGED_PROMPTS).contains(&self.prompts) {
            return bad(format!(
                "prompts ({}) must be 1-{MAX_JUDGED_PROMPTS}",
                self.prompts
            ));
        }
        if self.window == 0 {
            return bad("window must be at least 1 level".into());
        }
        Ok(())
    }
}

/// The adaptive schedule's command-line flags (`triad serve`, `triad-train rl --online`).
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct AdaptiveFlags {
    /// Adaptive schedule: frontier accuracy at which a family's level rises.
    #[arg(long, default_value_t = DEFAULT_RISE_ACCURACY)]
    pub adaptive_rise: f64,
    /// Adaptive schedule: frontier accuracy at or below which the level falls back.
    #[arg(long, default_value_t = DEFAULT_FALL_ACCURACY)]
    pub adaptive_fall: f64,
    /// Adaptive schedule: complete prompts at the frontier a move is judged on.
    #[arg(long, default_value_t = DEFAULT_JUDGED_PROMPTS)]
    pub adaptive_prompts: usize,
    /// Adaptive schedule: levels tasks are drawn from, ending at the frontier.
    #[arg(long, default_value_t = DEFAULT_LEVEL_WINDOW)]
    pub adaptive_window: u8,
}

impl AdaptiveFlags {
    /// The options the flags say, checked.
    pub fn options(&self) -> Result<AdaptiveOptions, OnlineError> {
        let options = AdaptiveOptions {
            rise: self.adaptive_rise,
            fall: self.adaptive_fall,
            prompts: self.adaptive_prompts,
            window: self.adaptive_window,
        };
        options.validate()?;
        Ok(options)
    }
}

/// Check a session id: 1-64 of `A-Z a-z 0-9 _ -`.
pub fn check_session_id(id: &str) -> Result<(), OnlineError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_SESSION_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(OnlineError::Invalid(format!(
            "session id must be 1-{MAX_SESSION_ID_LEN} of A-Z a-z 0-9 _ -, not {:?}",
            truncated(id)
        )))
    }
}

fn truncated(text: &str) -> String {
    text.chars().take(80).collect()
}

/// One prompt's scored rollouts at one level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct PromptOutcome {
    /// A hash of the prompt's label: the rollouts of one prompt, scored together, share it.
    key: u64,
    correct: u32,
    scored: u32,
}

/// What a session has seen at one level.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LevelRecord {
    /// Rollouts scored at this level, ever.
    pub scored: u64,
    /// Of them, correct.
    pub correct: u64,
    /// The last prompts scored here, oldest first (at most [`AdaptiveOptions::prompts`]).
    recent: VecDeque<PromptOutcome>,
}

impl LevelRecord {
    /// The complete prompts of the recent window: all but the newest, whose rollouts may still
    /// be coming.
    fn complete(&self) -> impl Iterator<Item = &PromptOutcome> {
        self.recent.iter().take(self.recent.len().saturating_sub(1))
    }

    /// Accuracy over the recent complete prompts' rollouts (`None` before any).
    pub fn recent_accuracy(&self) -> Option<f64> {
        let scored: u32 = self.complete().map(|p| p.scored).sum();
        let correct: u32 = self.complete().map(|p| p.correct).sum();
        (scored > 0).then(|| f64::from(correct) / f64::from(scored))
    }

    /// Complete prompts in the recent window.
    pub fn recent_prompts(&self) -> usize {
        self.recent.len().saturating_sub(1)
    }

    /// Record a rollout; true when it began a new prompt (completing the one before).
    fn record(&mut self, key: u64, correct: bool, keep: usize) -> bool {
        self.scored += 1;
        self.correct += u64::from(correct);
        match self.recent.back_mut() {
            Some(last) if last.key == key => {
                last.scored += 1;
                last.correct += u32::from(correct);
                false
            }
            _ => {
                self.recent.push_back(PromptOutcome {
                    key,
                    correct: u32::from(correct),
                    scored: 1,
                });
                // `keep` complete prompts and the one in progress.
                while self.recent.len() > keep + 1 {
                    self.recent.pop_front();
                }
                true
            }
        }
    }
}

/// One family's place in the schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FamilyProgress {
    /// The frontier level.
    pub frontier: u8,
    /// Each level's record.
    pub levels: BTreeMap<u8, LevelRecord>,
    /// Frontier moves so far (up and down).
    pub moves: u64,
}

/// A learner's session (what `GET /sessions/{id}` reports, and what is persisted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The id.
    pub id: String,
    /// The schedule's knobs.
    pub adaptive: AdaptiveOptions,
    /// Per family, created on first use.
    pub families: BTreeMap<String, FamilyProgress>,
    /// Where each stream continues: `family/level/split/seed/style` → next candidate index.
    pub cursors: BTreeMap<String, u64>,
    /// Adaptive level draws so far (the draws' random numbers are a hash of the id and this).
    pub draws: u64,
}

/// The level range a family's frontier lives in.
fn level_range(family: &dyn DynFamily) -> (u8, u8) {
    let levels = family.levels();
    (*levels.start(), *levels.end())
}

impl Session {
    /// A fresh session.
    pub fn new(id: String, adaptive: AdaptiveOptions) -> Session {
        Session {
            id,
            adaptive,
            families: BTreeMap::new(),
            cursors: BTreeMap::new(),
            draws: 0,
        }
    }

    fn progress(&mut self, family: &dyn DynFamily) -> &mut FamilyProgress {
        self.families
            .entry(family.name().to_string())
            .or_insert_with(|| FamilyProgress {
                frontier: level_range(family).0,
                levels: BTreeMap::new(),
                moves: 0,
            })
    }

    /// The window of levels a family's tasks are drawn from: `[low, frontier]`.
    pub fn window(&self, family: &dyn DynFamily) -> (u8, u8) {
        let (min, _) = level_range(family);
        let frontier = self.families.get(family.name()).map_or(min, |p| p.frontier);
        let low = frontier.saturating_sub(self.adaptive.window - 1).max(min);
        (low, frontier)
    }

    /// Draw the level of one adaptive task of `family`: uniform over its window, from a hash
    /// of the session id and the draw count (so a session replays the same levels).
    pub fn draw_level(&mut self, family: &dyn DynFamily) -> u8 {
        let (low, high) = self.window(family);
        self.progress(family);
        let digest = Sha256::new()
            .chain_update(self.id.as_bytes())
            .chain_update(self.draws.to_le_bytes())
            .finalize();
        self.draws += 1;
        let mut word = [0u8; 8];
        word.copy_from_slice(&digest[..8]);
        let span = u64::from(high - low) + 1;
        low + (u64::from_le_bytes(word) % span) as u8
    }

    /// Record one scored rollout of a task at (`family`, `level`); `prompt_key` groups the
    /// rollouts of one prompt. Moves the frontier when the rule says so; returns the new
    /// frontier when it moved.
    pub fn record(
        &mut self,
        family: &dyn DynFamily,
        level: u8,
        prompt_key: u64,
        correct: bool,
    ) -> Option<u8> {
        let options = self.adaptive;
        let (min, max) = level_range(family);
        let progress = self.progress(family);
        let record = progress.levels.entry(level).or_default();
        let completed_one = record.record(prompt_key, correct, options.prompts);
        if !completed_one || level != progress.frontier || record.recent_prompts() < options.prompts
        {
            return None;
        }
        let accuracy = record.recent_accuracy()?;
        let next = if accuracy >= options.rise && progress.frontier < max {
            progress.frontier + 1
        } else if accuracy <= options.fall && progress.frontier > min {
            progress.frontier - 1
        } else {
            return None;
        };
        progress.frontier = next;
        progress.moves += 1;
        // Judge the new frontier on prompts scored there from now on.
        progress.levels.entry(next).or_default().recent.clear();
        Some(next)
    }

    /// The frontier of a family (its first level before any task).
    pub fn frontier(&self, family: &dyn DynFamily) -> u8 {
        self.families
            .get(family.name())
            .map_or(level_range(family).0, |p| p.frontier)
    }
}

/// One level as `GET /sessions/{id}` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LevelReport {
    /// Rollouts scored here, ever.
    pub scored: u64,
    /// Of them, correct.
    pub correct: u64,
    /// `correct / scored`.
    pub accuracy: f64,
    /// Complete prompts in the recent window.
    pub recent_prompts: usize,
    /// Accuracy over them (null before any).
    pub recent_accuracy: Option<f64>,
}

/// One family as `GET /sessions/{id}` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FamilyReport {
    /// The frontier level.
    pub frontier: u8,
    /// The levels adaptive tasks are drawn from, `[low, frontier]`.
    pub window: [u8; 2],
    /// Frontier moves so far.
    pub moves: u64,
    /// Each level seen.
    pub levels: BTreeMap<u8, LevelReport>,
}

/// A session as `GET /sessions/{id}` (and `POST /sessions`) shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SessionReport {
    /// The id.
    pub id: String,
    /// The schedule's knobs.
    pub adaptive: AdaptiveOptions,
    /// Each family used so far.
    pub families: BTreeMap<String, FamilyReport>,
    /// Where each stream continues.
    pub cursors: BTreeMap<String, u64>,
}

impl Session {
    /// The report of this session.
    pub fn report(&self) -> SessionReport {
        let families = self
            .families
            .iter()
            .filter_map(|(name, progress)| {
                let family = triad_generators::registry::family(name)?;
                let (low, high) = self.window(family);
                let levels = progress
                    .levels
                    .iter()
                    .map(|(level, record)| {
                        let report = LevelReport {
                            scored: record.scored,
                            correct: record.correct,
                            accuracy: record.correct as f64 / record.scored.max(1) as f64,
                            recent_prompts: record.recent_prompts(),
                            recent_accuracy: record.recent_accuracy(),
                        };
                        (*level, report)
                    })
                    .collect();
                let report = FamilyReport {
                    frontier: progress.frontier,
                    window: [low, high],
                    moves: progress.moves,
                    levels,
                };
                Some((name.clone(), report))
            })
            .collect();
        SessionReport {
            id: self.id.clone(),
            adaptive: self.adaptive,
            families,
            cursors: self.cursors.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use triad_generators::registry;

    fn deduction() -> &'static dyn DynFamily {
        registry::family("deduction").unwrap()
    }

    /// Score `prompts` prompts of `rollouts` each at the frontier, a fraction `rate` correct.
    fn score(session: &mut Session, prompts: u64, rollouts: u32, rate: f64) {
        let family = deduction();
        for p in 0..prompts {
            let level = session.frontier(family);
            for r in 0..rollouts {
                let correct = f64::from(r) < rate * f64::from(rollouts);
                session.record(family, level, p * 7919 + u64::from(level), correct);
            }
        }
    }

    #[test]
    fn the_frontier_rises_on_mastery_falls_on_collapse_and_holds_between() {
        let mut session = Session::new("s".into(), AdaptiveOptions::default());
        let family = deduction();
        assert_eq!(session.frontier(family), 1);
        // 8 prompts at 100%: the 8th is complete only once the 9th begins.
        score(&mut session, 8, 4, 1.0);
        assert_eq!(session.frontier(family), 1);
        score(&mut session, 1, 4, 1.0);
        assert_eq!(session.frontier(family), 2);
        // Level 2 starts with no history (the prompt that moved it was scored at level 1).
        assert_eq!(session.families["deduction"].levels[&2].recent_prompts(), 0);
        score(&mut session, 8, 4, 1.0);
        assert_eq!(session.frontier(family), 2);
        score(&mut session, 1, 4, 1.0);
        assert_eq!(session.frontier(family), 3);
        // Half right: neither mastered nor collapsed.
        score(&mut session, 40, 4, 0.5);
        assert_eq!(session.frontier(family), 3);
        // Collapse: 7 wrong prompts and one half right (2/32) is at most 0.1; back to 2.
        score(&mut session, 7, 4, 0.0);
        assert_eq!(session.frontier(family), 3);
        score(&mut session, 1, 4, 0.0);
        assert_eq!(session.frontier(family), 2);
        assert_eq!(session.families["deduction"].levels[&2].recent_prompts(), 0);
        assert_eq!(session.families["deduction"].moves, 3);
        // The first level is a floor, the last a ceiling.
        score(&mut session, 100, 4, 0.0);
        assert_eq!(session.frontier(family), 1);
        score(&mut session, 1000, 2, 1.0);
        assert_eq!(session.frontier(family), *family.levels().end());
    }

    #[test]
    fn rollouts_of_one_prompt_count_as_one_prompt() {
        let mut session = Session::new("s".into(), AdaptiveOptions::default());
        let family = deduction();
        for _ in 0..64 {
            session.record(family, 1, 42, true);
        }
        session.record(family, 1, 43, true);
        assert_eq!(session.frontier(family), 1);
        let record = &session.families["deduction"].levels[&1];
        assert_eq!((record.recent_prompts(), record.scored), (1, 65));
    }

    #[test]
    fn levels_are_drawn_from_the_window_below_the_frontier_and_replay() {
        let mut session = Session::new("abc".into(), AdaptiveOptions::default());
        let family = deduction();
        score(&mut session, 9 * 5, 1, 1.0);
        assert_eq!(session.frontier(family), 6);
        assert_eq!(session.window(family), (3, 6));
        let draw = |s: &mut Session| (0..400).map(|_| s.draw_level(family)).collect::<Vec<_>>();
        let mut replay = session.clone();
        let levels = draw(&mut session);
        assert_eq!(levels, draw(&mut replay));
        for level in 3..=6 {
            let n = levels.iter().filter(|&&l| l == level).count();
            assert!(
                (60..=140).contains(&n),
                "level {level} drawn {n} times of 400"
            );
        }
    }

    #[test]
    fn options_and_ids_are_checked() {
        assert!(AdaptiveOptions::default().validate().is_ok());
        for bad in [
            AdaptiveOptions {
                rise: 1.5,
                ..AdaptiveOptions::default()
            },
            AdaptiveOptions {
                fall: 0.95,
                ..AdaptiveOptions::default()
            },
            AdaptiveOptions {
                prompts: 0,
                ..AdaptiveOptions::default()
            },
            AdaptiveOptions {
                window: 0,
                ..AdaptiveOptions::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert!(check_session_id("run-42_a").is_ok());
        for bad in ["", "../x", "a b", &"x".repeat(65)] {
            assert!(check_session_id(bad).is_err(), "{bad}");
        }
    }
}
