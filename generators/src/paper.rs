//! The paper's own labels (`solution_text_format` of its released data), judged as the paper did:
//! by equality with the stored answer, but with triad's strict answer reader.

use std::collections::HashMap;

use crate::Verdict;
use crate::answer;
use crate::limits;
use crate::registry;

/// The three shapes of the paper's `solution_text_format`; a family says which one its
/// paper-compatible levels answer in ([`crate::Family::paper_format`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaperFormat {
    /// `(1) A is False\n(2) B is True`.
    Assignment,
    /// `(1) FI is unreachable\n(2) NO is reachable`.
    Reachability,
    /// A bare integer.
    Integer,
}

/// A label from the paper's released data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaperLabel {
    /// Deduction: `(1) A is False\n(2) B is True\n`.
    Assignment(Vec<(String, bool)>),
    /// Abduction: `(1) FI is unreachable\n(2) NO is reachable`.
    Reachability(Vec<(String, bool)>),
    /// Induction: a bare integer.
    Integer(i64),
}

const TRUTH: &[(&str, bool)] = &[("true", true), ("false", false)];
const REACH: &[(&str, bool)] = &[("reachable", true), ("unreachable", false)];

impl PaperLabel {
    /// Recognise a paper label, or `None`.
    pub fn parse(text: &str) -> Option<PaperLabel> {
        if text.len() > limits::MAX_LABEL_BYTES {
            return None;
        }
        if let Ok(value) = answer::integer(text) {
            return Some(PaperLabel::Integer(value));
        }
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() {
            return None;
        }
        if lines.len() > limits::MAX_LIST_ITEMS {
            return None;
        }
        let truth: Option<Vec<_>> = lines.iter().map(|l| numbered_statement(l, TRUTH)).collect();
        if let Some(pairs) = truth {
            return Some(PaperLabel::Assignment(pairs));
        }
        let reach: Option<Vec<_>> = lines.iter().map(|l| numbered_statement(l, REACH)).collect();
        reach.map(PaperLabel::Reachability)
    }

    /// The label's shape.
    pub fn format(&self) -> PaperFormat {
        match self {
            PaperLabel::Assignment(_) => PaperFormat::Assignment,
            PaperLabel::Reachability(_) => PaperFormat::Reachability,
            PaperLabel::Integer(_) => PaperFormat::Integer,
        }
    }

    /// The family whose paper format this label has (`paper` if no registered family has it).
    pub fn family_name(&self) -> &'static str {
        registry::FAMILIES
            .iter()
            .find(|f| f.paper_format() == Some(self.format()))
            .map_or("paper", |f| f.name())
    }

    /// Judge an answer text against the stored answer.
    pub fn judge(&self, text: &str) -> Verdict {
        match self {
            PaperLabel::Assignment(pairs) => judge_pairs(pairs, text, TRUTH),
            PaperLabel::Reachability(pairs) => judge_pairs(pairs, text, REACH),
            PaperLabel::Integer(expected) => match answer::integer(text) {
                Ok(v) if v == *expected => Verdict::Correct,
                Ok(v) => Verdict::Wrong(format!("{v} is not the masked value")),
                Err(e) => Verdict::Unparseable(e),
            },
        }
    }
}

/// `(1) NAME is WORD`, the paper's line shape.
fn numbered_statement(line: &str, words: &[(&str, bool)]) -> Option<(String, bool)> {
    let rest = line.strip_prefix('(')?;
    let (number, rest) = rest.split_once(')')?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut parts = rest.split_whitespace();
    let (name, is, word) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || is != "is" || !name.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let &(_, value) = words.iter().find(|(w, _)| w.eq_ignore_ascii_case(word))?;
    Some((name.to_string(), value))
}

/// The paper's labels can name a goal twice (about 2% of its abduction rows); such a name must
/// then be stated as many times as the label states it, with the label's value each time.
fn judge_pairs(pairs: &[(String, bool)], text: &str, words: &[(&str, bool)]) -> Verdict {
    let mut names: Vec<&str> = Vec::new();
    let mut expected: Vec<Vec<bool>> = Vec::new();
    let mut slot_of: HashMap<&str, usize> = HashMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        let slot = *slot_of.entry(name).or_insert_with(|| {
            names.push(name);
            expected.push(Vec::new());
            names.len() - 1
        });
        expected[slot].push(*value);
    }
    let stated = match answer::all_statements(text, &names, words) {
        Ok(stated) => stated,
        Err(e) => return Verdict::Unparseable(e),
    };
    let mut wrong = Vec::new();
    for ((name, want), got) in names.iter().zip(&expected).zip(&stated) {
        if got.is_empty() {
            return Verdict::Unparseable(format!("no value for {name}"));
        }
        if got.len() != want.len() {
            return Verdict::Unparseable(format!(
                "states `{name}` {} times, expected {}",
                got.len(),
                want.len()
            ));
        }
        if got != want {
            wrong.push(*name);
        }
    }
    if wrong.is_empty() {
        Verdict::Correct
    } else {
        Verdict::Wrong(format!(
            "differs from the stored answer at {}",
            wrong.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Family;

    #[test]
    fn recognises_the_three_forms() {
        assert_eq!(PaperLabel::parse("9"), Some(PaperLabel::Integer(9)));
        let ded = PaperLabel::parse("(1) A is False\n(2) B is True\n").unwrap();
        assert_eq!(ded.format(), PaperFormat::Assignment);
        assert_eq!(
            ded.family_name(),
            crate::families::deduction::Deduction.name()
        );
        let abd = PaperLabel::parse("(1) M is unreachable\n(2) BA is reachable").unwrap();
        assert_eq!(
            abd,
            PaperLabel::Reachability(vec![("M".into(), false), ("BA".into(), true)])
        );
        assert_eq!(PaperLabel::parse("hello"), None);
    }

    #[test]
    fn judges_against_stored_answer() {
        let label = PaperLabel::parse("(1) A is False\n(2) B is True\n").unwrap();
        assert_eq!(
            label.judge("(1) A is false\n(2) B is true"),
            Verdict::Correct
        );
        assert!(matches!(
            label.judge("(1) A is true\n(2) B is true"),
            Verdict::Wrong(_)
        ));
        assert!(matches!(
            label.judge("A is false or true"),
            Verdict::Unparseable(_)
        ));
    }
}
