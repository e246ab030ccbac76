//! Bounds on what a label may hold, so that no label — however hostile — can overflow the stack,
//! exhaust memory or make judging take more than linear time.
//!
//! Labels arrive from clients (the reward server, `triad score`, a user's script), so every
//! recursive structure is parsed with a depth limit and every list is bounded. The defaults sit
//! far above anything triad generates (its largest items: 64 variables and ≤ 256 formulas of
//! depth 4 at deduction level 10, a few dozen premises in abduction), and a label beyond any of
//! them is refused as a bad label rather than judged.

/// Largest label text accepted, in bytes (1 MiB; triad's largest labels are ~30 KB).
pub const MAX_LABEL_BYTES: usize = 1 << 20;

/// Deepest nesting of a formula or rule body (parentheses or negations), counted per level of
/// recursion. triad's deepest formulas have depth 5 (deduction level 5); the limit keeps a
/// recursive parser far from the smallest thread stacks it runs on.
pub const MAX_NESTING: usize = 256;

/// Most entries in any list of a label: variables, formulas, premises, goals, hypotheses,
/// explanations, sequence terms.
pub const MAX_LIST_ITEMS: usize = 4_096;

/// Check a list against [`MAX_LIST_ITEMS`], naming it in the error.
pub fn check_list<T>(what: &str, items: &[T]) -> Result<(), String> {
    if items.len() > MAX_LIST_ITEMS {
        return Err(format!(
            "{} {what}, more than the limit of {MAX_LIST_ITEMS}",
            items.len()
        ));
    }
    Ok(())
}

/// Check that a list is non-empty and within [`MAX_LIST_ITEMS`].
pub fn check_nonempty_list<T>(what: &str, items: &[T]) -> Result<(), String> {
    if items.is_empty() {
        return Err(format!("no {what}"));
    }
    check_list(what, items)
}

/// Check that names are distinct (so each answer statement refers to one of them).
pub fn check_distinct<'a>(
    what: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for name in names {
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(format!("{what} `{name}` appears twice"));
        }
    }
    Ok(())
}

/// A recursion guard: call [`Depth::enter`] on the way down, [`Depth::leave`] on the way up.
#[derive(Debug, Default)]
pub struct Depth(usize);

impl Depth {
    /// Go one level deeper; an error past [`MAX_NESTING`].
    pub fn enter(&mut self) -> Result<(), String> {
        self.0 += 1;
        if self.0 > MAX_NESTING {
            return Err(format!("nested more than {MAX_NESTING} deep"));
        }
        Ok(())
    }

    /// Come back up one level.
    pub fn leave(&mut self) {
        self.0 = self.0.saturating_sub(1);
    }
}
