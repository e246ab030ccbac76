//! Strict readers for answer texts, shared by families and by paper labels.
//!
//! Tolerant of presentation (case, whitespace, numbering, markdown emphasis, `is`/`=`/`:`),
//! strict about commitment: every expected name exactly once, no unknown names, so a hedge such as
//! `A is true, A is false` is unparseable rather than half right.

use std::collections::HashMap;

/// Split an answer into word and sign tokens: runs of ASCII letters and digits, and the single
/// characters `=` and `:`. Everything else (brackets, markdown, punctuation) separates tokens.
fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c.is_ascii_alphanumeric() {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            out.push(&text[s..i]);
        }
        if c == '=' || c == ':' {
            out.push(&text[i..i + 1]);
        }
    }
    if let Some(s) = start {
        out.push(&text[s..]);
    }
    out
}

fn is_name(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphabetic())
}

/// Read statements `NAME is VALUE` (or `NAME = VALUE`, `NAME: VALUE`) from an answer.
///
/// `names` are the expected names (matched case-insensitively) and `values` the words a value may
/// be, each with what it means. Returns the value of each name, in the order of `names`, or why
/// the answer cannot be read as exactly one statement per name.
pub fn statements<V: Copy>(
    answer: &str,
    names: &[&str],
    values: &[(&str, V)],
) -> Result<Vec<V>, String> {
    let stated = all_statements(answer, names, values)?;
    let mut out = Vec::with_capacity(names.len());
    let mut missing = Vec::new();
    for (name, found) in names.iter().zip(stated) {
        match found.as_slice() {
            [one] => out.push(*one),
            [] => missing.push(*name),
            _ => return Err(format!("states `{name}` more than once")),
        }
    }
    if !missing.is_empty() {
        return Err(format!("no value for {}", missing.join(", ")));
    }
    Ok(out)
}

/// Every value stated for each name, in the order of `names` (for labels that repeat a name, as
/// some of the paper's do). Unknown names and value words outside a statement are errors.
pub fn all_statements<V: Copy>(
    answer: &str,
    names: &[&str],
    values: &[(&str, V)],
) -> Result<Vec<Vec<V>>, String> {
    let tokens = tokens(answer);
    // Names are looked up by their lower-case form: one hash per statement, so judging is linear
    // in the answer and the label however many names there are.
    let mut slots: HashMap<String, usize> = HashMap::with_capacity(names.len());
    for (slot, name) in names.iter().enumerate() {
        slots.entry(name.to_ascii_lowercase()).or_insert(slot);
    }
    let mut found: Vec<Vec<V>> = vec![Vec::new(); names.len()];
    let mut consumed = vec![false; tokens.len()];
    for (at, window) in tokens.windows(3).enumerate() {
        let [name, sep, value] = window else {
            unreachable!()
        };
        let is_sep = sep.eq_ignore_ascii_case("is") || *sep == "=" || *sep == ":";
        if !is_sep || !is_name(name) {
            continue;
        }
        let Some(&(_, meaning)) = values.iter().find(|(w, _)| w.eq_ignore_ascii_case(value)) else {
            continue;
        };
        let Some(&slot) = slots.get(&name.to_ascii_lowercase()) else {
            return Err(format!("names unknown `{name}`"));
        };
        found[slot].push(meaning);
        consumed[at + 2] = true;
    }
    // A value word that is not the value of a statement is a hedge: `A is false or true`.
    let stray = tokens
        .iter()
        .zip(&consumed)
        .find(|(t, used)| !**used && values.iter().any(|(w, _)| w.eq_ignore_ascii_case(t)));
    if let Some((word, _)) = stray {
        return Err(format!("`{word}` outside a statement (a hedge?)"));
    }
    Ok(found)
}

/// Whether any `NAME is VALUE` statement appears at all (used to spot hedges between an
/// assignment and a claim of unsatisfiability).
pub fn has_statement(answer: &str, values: &[&str]) -> bool {
    tokens(answer).windows(3).any(|w| {
        let is_sep = w[1].eq_ignore_ascii_case("is") || w[1] == "=" || w[1] == ":";
        is_sep && is_name(w[0]) && values.iter().any(|v| v.eq_ignore_ascii_case(w[2]))
    })
}

/// Read one integer: surrounding whitespace, a leading `+`, the Unicode minus `−` and a trailing
/// period are accepted; anything else (`3 or 4`, `x = 3`, `3.5`) is not.
pub fn integer(answer: &str) -> Result<i64, String> {
    let mut text = answer.trim();
    if let Some(stripped) = text.strip_suffix('.') {
        text = stripped.trim_end();
    }
    let (negative, digits) = if let Some(rest) = text.strip_prefix('-') {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix('−') {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix('+') {
        (false, rest)
    } else {
        (false, text)
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("not one integer: {:?}", truncate(answer, 40)));
    }
    let magnitude: i64 = digits
        .parse()
        .map_err(|_| "integer out of range".to_string())?;
    Ok(if negative { -magnitude } else { magnitude })
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TF: &[(&str, bool)] = &[("true", true), ("false", false)];

    #[test]
    fn reads_numbered_lines_with_noise() {
        let answer = "\n(1) **A** is true\n- (2) B is FALSE\n3. `C` = True\n";
        assert_eq!(
            statements(answer, &["A", "B", "C"], TF),
            Ok(vec![true, false, true])
        );
    }

    #[test]
    fn hedges_and_gaps_are_unparseable() {
        assert!(
            statements("A is true, A is false", &["A"], TF)
                .unwrap_err()
                .contains("more than once")
        );
        assert!(
            statements("A is true", &["A", "B"], TF)
                .unwrap_err()
                .contains("no value for B")
        );
        assert!(
            statements("A is true, Z is false", &["A"], TF)
                .unwrap_err()
                .contains("unknown")
        );
        assert!(statements("A is not true", &["A"], TF).is_err());
        assert!(
            statements("A is false or true", &["A"], TF)
                .unwrap_err()
                .contains("hedge")
        );
        assert!(statements("A is false/true", &["A"], TF).is_err());
    }

    #[test]
    fn integers() {
        assert_eq!(integer(" +12. "), Ok(12));
        assert_eq!(integer("−7"), Ok(-7));
        assert_eq!(integer("-7"), Ok(-7));
        for bad in ["3 or 4", "x = 3", "3.5", "", "--3", "99999999999999999999"] {
            assert!(integer(bad).is_err(), "{bad}");
        }
    }
}
