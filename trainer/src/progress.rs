//! The step bar of `sft` and `rl` on a terminal: steps done of all, the last loss or reward and
//! tokens/s, elapsed time and ETA. Where stderr is not a terminal (a log file, CI) nothing is
//! drawn and the periodic progress lines are printed as plain lines instead, so logs stay
//! readable.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over a stage's optimizer steps, or plain lines when there is no terminal.
pub struct StepBar {
    bar: Option<ProgressBar>,
}

impl StepBar {
    /// A bar for `phase` from step `done` to `steps`; `shown` false (a quiet stage) prints and
    /// draws nothing.
    pub fn new(phase: &str, done: u64, steps: u64, shown: bool) -> StepBar {
        let bar = (shown && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(steps).with_position(done);
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{phase} {{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} steps (eta {{eta}}) {{msg}}"
                ))
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar
        });
        StepBar { bar }
    }

    /// Step `step` is done; `message` is its figures (loss or reward, tokens/s).
    pub fn step(&self, step: u64, message: String) {
        if let Some(bar) = &self.bar {
            bar.set_position(step);
            bar.set_message(message);
        }
    }

    /// A progress line: above the bar on a terminal, a plain stderr line elsewhere.
    pub fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// The stage is over: the bar goes.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
