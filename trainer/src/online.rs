//! RL prompts made in process, at the levels an adaptive session earns: the logic of `triad
//! serve`'s `/tasks` and sessions ([`triad::online`]), without HTTP. `triad-train rl --online`
//! draws each step's prompts here and feeds the step's scores back, so the level of each family
//! follows the policy's accuracy (rise at 0.9 over 8 complete prompts, fall at 0.1, tasks from
//! the 4 levels ending at the frontier, by default). The session is saved with every checkpoint
//! (`session.json` in the run directory), so a resumed run continues the same schedule.

use std::path::Path;

use serde::Serialize;
use triad::generators::{GenOptions, PromptStyle, Split, registry};
use triad::online::{AdaptiveOptions, LevelChoice, Session, TaskDefaults, TaskRequest, make_tasks};
use triad::reward::Score;

use crate::TrainError;
use crate::data::Task;

/// The session id of an in-process run (it only seeds the level draws).
pub const SESSION_ID: &str = "triad-train";

/// What an online run draws.
#[derive(Clone, Debug, Serialize)]
pub struct OnlineConfig {
    /// Families, each an equal share of every step's prompts (empty: every family).
    pub families: Vec<String>,
    /// A fixed level, or `None` for the adaptive schedule.
    pub level: Option<u8>,
    /// The streams' seed.
    pub seed: u64,
    /// The prompt style.
    pub style: PromptStyle,
    /// The adaptive schedule.
    pub adaptive: AdaptiveOptions,
}

/// A run's source of fresh prompts.
pub struct OnlineTasks {
    /// The configuration.
    pub config: OnlineConfig,
    session: Session,
    defaults: TaskDefaults,
}

fn task_of(row: triad::dataset::shard::Row) -> Task {
    let item = row.item;
    Task {
        id: item.id(),
        family: item.family.to_string(),
        level: item.level,
        split: row.split,
        messages: item.prompt.messages,
        label: item.label,
        answer: item.answer,
        trace: item.trace,
    }
}

impl OnlineTasks {
    /// A fresh source; families are checked against the registry.
    pub fn new(mut config: OnlineConfig) -> Result<OnlineTasks, TrainError> {
        config.adaptive.validate().map_err(invalid)?;
        if config.families.is_empty() {
            config.families = registry::names().iter().map(|s| s.to_string()).collect();
        }
        for name in &config.families {
            let family = registry::family(name)
                .ok_or_else(|| TrainError::Invalid(format!("unknown family {name:?}")))?;
            if let Some(level) = config.level
                && !family.levels().contains(&level)
            {
                return Err(TrainError::Invalid(format!("{name} has no level {level}")));
            }
        }
        let session = Session::new(SESSION_ID.into(), config.adaptive);
        let defaults = TaskDefaults {
            seed: config.seed,
            style: config.style,
            options: GenOptions::default(),
            max_tasks: usize::MAX,
        };
        Ok(OnlineTasks {
            config,
            session,
            defaults,
        })
    }

    /// `n` fresh train tasks, the families in turn.
    pub fn draw(&mut self, n: usize) -> Result<Vec<Task>, TrainError> {
        let families = self.config.families.len();
        let mut tasks = Vec::with_capacity(n);
        for (i, family) in self.config.families.iter().enumerate() {
            let share = n / families + usize::from(i < n % families);
            if share == 0 {
                continue;
            }
            let request = TaskRequest {
                family: Some(family.clone()),
                level: Some(
                    self.config
                        .level
                        .map_or(LevelChoice::Adaptive, LevelChoice::Fixed),
                ),
                n: share,
                split: Split::Train,
                seed: None,
                prompt_style: None,
                session: Some(SESSION_ID.into()),
                start: None,
            };
            let batch = make_tasks(&request, Some(&mut self.session), &self.defaults, None)
                .map_err(invalid)?;
            tasks.extend(batch.rows.into_iter().map(task_of));
        }
        Ok(tasks)
    }

    /// Feed a step's scores back: `labels[i]` was scored `scores[i]`.
    pub fn observe(&mut self, labels: &[&str], scores: &[Score]) {
        triad::online::record_scores(&mut self.session, labels.iter().copied().zip(scores));
    }

    /// Each family's frontier level, in configuration order.
    pub fn frontiers(&self) -> Vec<(String, u8)> {
        self.config
            .families
            .iter()
            .filter_map(|name| {
                let family = registry::family(name)?;
                Some((name.clone(), self.session.frontier(family)))
            })
            .collect()
    }

    /// The session (levels, accuracies, cursors).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Save the session as JSON.
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        let json = serde_json::to_vec_pretty(&self.session)
            .map_err(|e| TrainError::Invalid(e.to_string()))?;
        triad::dataset::shard::write_atomic(path, &json)
            .map_err(|e| TrainError::Invalid(e.to_string()))
    }

    /// Continue from a saved session.
    pub fn restore(&mut self, path: &Path) -> Result<(), TrainError> {
        let text = std::fs::read(path)
            .map_err(|e| TrainError::Invalid(format!("{}: {e}", path.display())))?;
        self.session = serde_json::from_slice(&text)
            .map_err(|e| TrainError::Invalid(format!("{}: not a session: {e}", path.display())))?;
        Ok(())
    }
}

fn invalid(error: triad::online::OnlineError) -> TrainError {
    TrainError::Invalid(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_share_the_families_and_follow_the_scores() {
        let mut online = OnlineTasks::new(OnlineConfig {
            families: vec!["deduction".into(), "induction".into()],
            level: None,
            seed: 3,
            style: PromptStyle::Compact,
            adaptive: AdaptiveOptions::default(),
        })
        .unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..12 {
            let tasks = online.draw(6).unwrap();
            assert_eq!(tasks.len(), 6);
            assert_eq!(tasks.iter().filter(|t| t.family == "deduction").count(), 3);
            // A perfect learner: every answer right.
            let scores: Vec<Score> = tasks
                .iter()
                .map(|t| {
                    let response = format!("<think>\n</think>\n<answer>\n{}\n</answer>", t.answer);
                    triad::reward::score(&response, &t.label, None, triad::reward::Preset::Paper)
                })
                .collect();
            assert!(scores.iter().all(|s| s.correct));
            let labels: Vec<&str> = tasks.iter().map(|t| t.label.as_str()).collect();
            online.observe(&labels, &scores);
            seen.extend(tasks.iter().map(|t| t.id.clone()));
        }
        assert!(
            online.frontiers().iter().all(|(_, level)| *level >= 3),
            "{:?}",
            online.frontiers()
        );
        assert!(
            seen.len() > 40,
            "fresh tasks: {} distinct of 72",
            seen.len()
        );
        let dir = tempfile::tempdir().unwrap();
        online.save(&dir.path().join("s.json")).unwrap();
        let mut again = OnlineTasks::new(online.config.clone()).unwrap();
        again.restore(&dir.path().join("s.json")).unwrap();
        assert_eq!(again.session(), online.session());
        assert_eq!(
            again
                .draw(4)
                .unwrap()
                .iter()
                .map(|t| &t.id)
                .collect::<Vec<_>>(),
            online
                .draw(4)
                .unwrap()
                .iter()
                .map(|t| &t.id)
                .collect::<Vec<_>>()
        );
    }
}
