//! Synthetic rollouts for the scoring figures, made deterministically from items: correct
//! answers, the family's near misses, hedges, missing tags, very long thinking.

use triad_generators::{Item, Label};

/// A deterministic "reasoning" text of about `bytes` bytes.
pub fn thinking(bytes: usize) -> String {
    let sentence = "Assume the first statement holds; then the second forces the third, which contradicts the fourth. ";
    sentence.repeat(bytes / sentence.len() + 1)
}

/// The family's near miss for an item (its reference answer with one judgement flipped or one
/// number changed: parseable, and wrong).
pub fn near_miss(item: &Item) -> String {
    match Label::parse(&item.label) {
        Ok(Label::Triad {
            family, instance, ..
        }) => family
            .near_miss_json(&instance)
            .unwrap_or_else(|e| format!("(no near miss: {e})")),
        _ => format!("(no near miss: {} is not a triad label)", item.id()),
    }
}

/// The synthetic responses for an item: (kind, response).
pub fn responses(item: &Item) -> Vec<(&'static str, String)> {
    let think = thinking(3072);
    let answer = &item.answer;
    let wrong = near_miss(item);
    vec![
        (
            "correct",
            format!("<think>{think}</think>\n<answer>\n{answer}\n</answer>"),
        ),
        (
            "near-miss",
            format!("<think>{think}</think>\n<answer>\n{wrong}\n</answer>"),
        ),
        (
            "hedge",
            format!("<think>{think}</think>\n<answer>\n{answer}\n{wrong}\n</answer>"),
        ),
        ("no-tags", format!("{think}{answer}")),
        (
            "long-64KB",
            format!(
                "<think>{}</think>\n<answer>\n{answer}\n</answer>",
                thinking(65536)
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::reward::{Preset, score};
    use triad_generators::registry;

    #[test]
    fn synthetic_responses_score_as_their_kind() {
        for family in registry::FAMILIES {
            for level in [1, 5] {
                let item =
                    super::super::sample_items(*family, level, 3, 1, Duration::ZERO).remove(0);
                for (kind, response) in responses(&item) {
                    let s = score(&response, &item.label, None, Preset::Paper);
                    let expected = matches!(kind, "correct" | "long-64KB");
                    assert_eq!(
                        s.correct,
                        expected,
                        "{} {level} {kind}: {s:?}",
                        family.name()
                    );
                    if kind == "no-tags" {
                        assert!(!s.format_ok);
                    }
                    if kind == "near-miss" {
                        assert!(
                            s.failure_kind() == Some(crate::reward::FailureKind::Wrong),
                            "{s:?}"
                        );
                    }
                    if kind == "hedge" {
                        assert!(
                            s.failure_kind() == Some(crate::reward::FailureKind::Unparseable),
                            "{s:?}"
                        );
                    }
                }
            }
        }
    }
}
