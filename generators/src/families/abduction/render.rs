//! Prompts: the paper's pre-rendered string for reachability, chat messages for both questions.

use super::{AbductionInstance, Mode};
use crate::family::{Prompt, PromptStyle};
use crate::frame;

const PAPER_INSTRUCTION: &str = "Now the user has a graph analysis problem. After thorough thinking, once you reach a conclusion, please list the reachable judgement of each goal within <answer>...</answer> to satisfy the formulas, for example:\n<answer>\n(1) A is reachable\n(2) B is unreachable\n...</answer>.";
const PAPER_TAIL: &str = "For each goal, first assume it is true and determine what conditions must be satisfied. Identify which premises directly lead to these goals, then trace back what must be established to satisfy those premises. Finally, check whether the known atoms can lead to these conditions";
const CHAT_INSTRUCTION: &str = "Now the user has a rule-graph problem. A goal is reachable when it must hold in every situation where the known atoms hold and every rule holds; otherwise it is unreachable. After thorough thinking, list the judgement of each goal, in order, within <answer> </answer>, for example:\n<answer>\n(1) A is reachable\n(2) B is unreachable\n</answer>";
const EXPLAIN_INSTRUCTION: &str = "Now the user has an abduction problem. Choose a smallest set of hypotheses that, added to the known atoms, makes the observation hold in every situation where every rule holds (no hypothesis in the set can be dropped). After thorough thinking, give the chosen hypotheses, separated by commas, within <answer> </answer>, for example:\n<answer>HA, HC</answer>";

fn python_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("'{i}'")).collect();
    format!("[{}]", quoted.join(", "))
}

fn numbered_rules(premises: &[String]) -> String {
    premises
        .iter()
        .enumerate()
        .map(|(i, p)| format!("  {}. {p}\n", i + 1))
        .collect()
}

/// The prompt of an instance in a style.
pub(super) fn prompt(instance: &AbductionInstance, style: PromptStyle) -> Prompt {
    match (instance.mode, style) {
        (Mode::Reachability, PromptStyle::Paper) => {
            let puzzle = format!(
                "premises: {}\nknown_atoms: {}\ngoals: {}\n{PAPER_TAIL}",
                python_list(&instance.premises),
                python_list(&instance.known),
                python_list(&instance.goals)
            );
            frame::prompt(style, PAPER_INSTRUCTION, &puzzle)
        }
        (Mode::Reachability, PromptStyle::Chat | PromptStyle::Compact) => {
            let puzzle = format!(
                "Rules (`(body) => head`: if the body holds, the head holds):\n{}Known atoms: {}\nGoals, in order: {}\nFor each goal, is it reachable?",
                numbered_rules(&instance.premises),
                instance.known.join(", "),
                instance.goals.join(", ")
            );
            frame::prompt(style, CHAT_INSTRUCTION, &puzzle)
        }
        (Mode::Explanation, _) => {
            let puzzle = format!(
                "Rules (`(body) => head`: if the body holds, the head holds):\n{}Known atoms: {}\nObservation: {}\nCandidate hypotheses: {}\nWhich hypotheses explain the observation?",
                numbered_rules(&instance.premises),
                instance.known.join(", "),
                instance.observation.as_deref().unwrap_or_default(),
                instance.hypotheses.join(", ")
            );
            frame::prompt(style, EXPLAIN_INSTRUCTION, &puzzle)
        }
    }
}
