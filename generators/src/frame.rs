//! The prompt frame shared by every family: the paper's system text and chat template.

use crate::family::{Message, Prompt, PromptStyle};

/// The system text that opens every prompt (the paper's, verbatim).
pub const SYSTEM: &str = "You are a helpful assistant. The assistant first thinks about the reasoning process in the mind and then provides the user with the final answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e. <think> reasoning process </think><answer> final answer </answer>.";

/// The line the compact style ends its user message with: where the reasoning and the answer go.
pub const COMPACT_HINT: &str =
    "Reason inside <think> </think>, then answer inside <answer> </answer>.";

/// Build a prompt from a family's instruction and its puzzle text.
///
/// `paper` renders the paper's single Qwen string, byte for byte:
/// `<|im_start|>system\n{SYSTEM}\n{instruction}\n<|im_end|>\n<|im_start|>user\n{puzzle}\n<|im_end|>\n<|im_start|>assistant\n<think>`,
/// as one `user` message (that is how the released data stores it). `chat` gives a system and a
/// user message with no template tokens. `compact` gives one user message, `{puzzle}\n{COMPACT_HINT}`
/// (the instruction is left out: its example is what a trained specialist no longer needs).
pub fn prompt(style: PromptStyle, instruction: &str, puzzle: &str) -> Prompt {
    match style {
        PromptStyle::Paper => Prompt {
            messages: vec![Message {
                role: "user".into(),
                content: format!(
                    "<|im_start|>system\n{SYSTEM}\n{instruction}\n<|im_end|>\n<|im_start|>user\n{puzzle}\n<|im_end|>\n<|im_start|>assistant\n<think>"
                ),
            }],
            prefills_think: true,
        },
        PromptStyle::Chat => Prompt {
            messages: vec![
                Message {
                    role: "system".into(),
                    content: format!("{SYSTEM}\n{instruction}"),
                },
                Message {
                    role: "user".into(),
                    content: puzzle.to_string(),
                },
            ],
            prefills_think: false,
        },
        PromptStyle::Compact => Prompt {
            messages: vec![Message {
                role: "user".into(),
                content: format!("{puzzle}\n{COMPACT_HINT}"),
            }],
            prefills_think: false,
        },
    }
}
