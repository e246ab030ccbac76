//! Nested propositional formulas: the paper's syntax, its random node rule, and evaluation.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::limits::Depth;
use crate::rng::Draw;

/// A binary connective.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `→`
    Implies,
    /// `∧`
    And,
    /// `∨`
    Or,
    /// `↔`
    Iff,
    /// `⊕`
    Xor,
}

/// The connectives in the paper's order, drawn uniformly.
pub const OPS: [Op; 5] = [Op::Implies, Op::And, Op::Or, Op::Iff, Op::Xor];

impl Op {
    /// The connective's symbol.
    pub fn symbol(self) -> char {
        match self {
            Op::Implies => '→',
            Op::And => '∧',
            Op::Or => '∨',
            Op::Iff => '↔',
            Op::Xor => '⊕',
        }
    }

    fn from_symbol(c: char) -> Option<Op> {
        OPS.into_iter().find(|op| op.symbol() == c)
    }

    /// Apply to two booleans (or, bitwise, to 64 assignments at once).
    pub fn apply(self, l: u64, r: u64) -> u64 {
        match self {
            Op::Implies => !l | r,
            Op::And => l & r,
            Op::Or => l | r,
            Op::Iff => !(l ^ r),
            Op::Xor => l ^ r,
        }
    }
}

/// A formula. `Lit` is a leaf (`A`, `¬A`); `Not` is the interior negation `¬(…)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Formula {
    /// A variable, possibly negated: rendered `A` or `¬A`.
    Lit {
        /// Variable index.
        var: usize,
        /// Negated.
        neg: bool,
    },
    /// Interior negation: rendered `¬(…)`.
    Not(Box<Formula>),
    /// A binary connective: rendered `(l op r)`.
    Bin(Op, Box<Formula>, Box<Formula>),
}

impl Formula {
    /// The distinct variables of the formula, in order of first appearance.
    pub(crate) fn variables(&self) -> Vec<usize> {
        fn collect(f: &Formula, out: &mut Vec<usize>) {
            match f {
                Formula::Lit { var, .. } => {
                    if !out.contains(var) {
                        out.push(*var);
                    }
                }
                Formula::Not(inner) => collect(inner, out),
                Formula::Bin(_, l, r) => {
                    collect(l, out);
                    collect(r, out);
                }
            }
        }
        let mut out = Vec::new();
        collect(self, &mut out);
        out
    }

    /// The formula with variable `vars[j]` renamed to `j` (`vars` holds all of its variables).
    pub(crate) fn relabelled(&self, vars: &[usize]) -> Formula {
        match self {
            Formula::Lit { var, neg } => Formula::Lit {
                var: vars
                    .iter()
                    .position(|v| v == var)
                    .expect("a variable of the formula"),
                neg: *neg,
            },
            Formula::Not(inner) => Formula::Not(Box::new(inner.relabelled(vars))),
            Formula::Bin(op, l, r) => Formula::Bin(
                *op,
                Box::new(l.relabelled(vars)),
                Box::new(r.relabelled(vars)),
            ),
        }
    }

    /// Draw a formula by the paper's node rule: at `max_depth` a literal (negated with p = 0.4);
    /// above it `¬(…)` with p = 0.2, else a binary connective drawn uniformly.
    pub fn random(draw: &mut Draw, num_vars: usize, max_depth: u32) -> Formula {
        Formula::random_at(draw, num_vars, max_depth, 0)
    }

    fn random_at(draw: &mut Draw, n: usize, max_depth: u32, depth: u32) -> Formula {
        if depth >= max_depth {
            let var = draw.index(n);
            return Formula::Lit {
                var,
                neg: draw.chance(0.4),
            };
        }
        if draw.chance(0.2) {
            return Formula::Not(Box::new(Formula::random_at(draw, n, max_depth, depth + 1)));
        }
        let op = OPS[draw.index(OPS.len())];
        let left = Formula::random_at(draw, n, max_depth, depth + 1);
        let right = Formula::random_at(draw, n, max_depth, depth + 1);
        Formula::Bin(op, Box::new(left), Box::new(right))
    }

    /// Evaluate under an assignment.
    pub fn eval(&self, assignment: &[bool]) -> bool {
        match self {
            Formula::Lit { var, neg } => assignment[*var] != *neg,
            Formula::Not(inner) => !inner.eval(assignment),
            Formula::Bin(op, l, r) => {
                op.apply(u64::from(l.eval(assignment)), u64::from(r.eval(assignment))) & 1 == 1
            }
        }
    }

    /// Render in the paper's syntax with the given variable names.
    pub fn render(&self, names: &[String]) -> String {
        let mut out = String::new();
        self.render_into(names, &mut out);
        out
    }

    fn render_into(&self, names: &[String], out: &mut String) {
        match self {
            Formula::Lit { var, neg } => {
                if *neg {
                    out.push('¬');
                }
                out.push_str(&names[*var]);
            }
            Formula::Not(inner) => {
                out.push_str("¬(");
                inner.render_into(names, out);
                out.push(')');
            }
            Formula::Bin(op, l, r) => {
                out.push('(');
                l.render_into(names, out);
                let _ = write!(out, " {} ", op.symbol());
                r.render_into(names, out);
                out.push(')');
            }
        }
    }

    /// Every variable index the formula mentions.
    #[cfg(test)]
    pub fn visit_vars(&self, seen: &mut [bool]) {
        match self {
            Formula::Lit { var, .. } => seen[*var] = true,
            Formula::Not(inner) => inner.visit_vars(seen),
            Formula::Bin(_, l, r) => {
                l.visit_vars(seen);
                r.visit_vars(seen);
            }
        }
    }

    /// Parse the paper's syntax (what [`Formula::render`] writes, and the released data holds).
    /// Nesting deeper than [`crate::limits::MAX_NESTING`] is an error, not a stack overflow.
    pub fn parse(text: &str, names: &NameIndex<'_>) -> Result<Formula, String> {
        let mut parser = Parser {
            text,
            pos: 0,
            names,
            depth: Depth::default(),
        };
        let formula = parser.expr()?;
        parser.skip_spaces();
        if parser.pos != text.len() {
            return Err(format!(
                "trailing text at {} in {}",
                parser.pos,
                preview(text)
            ));
        }
        Ok(formula)
    }
}

/// Variable names resolved to indices in constant time: by the spreadsheet rule when the names
/// are `A, B, …` in order (every triad label), else through a hash map built once per instance.
pub enum NameIndex<'a> {
    /// `names[i]` is the `i`-th spreadsheet column name.
    Canonical(usize),
    /// Any other distinct names.
    Map(HashMap<&'a str, usize>),
}

impl<'a> NameIndex<'a> {
    /// Index `names` (assumed distinct; [`crate::limits::check_distinct`] checks that).
    pub fn new(names: &'a [String]) -> NameIndex<'a> {
        let canonical = names
            .iter()
            .enumerate()
            .all(|(i, n)| name_index(n) == Some(i));
        if canonical {
            return NameIndex::Canonical(names.len());
        }
        NameIndex::Map(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), i))
                .collect(),
        )
    }

    /// The index of `name`, if it is one of the names.
    pub fn get(&self, name: &str) -> Option<usize> {
        match self {
            NameIndex::Canonical(n) => name_index(name).filter(|i| i < n),
            NameIndex::Map(map) => map.get(name).copied(),
        }
    }
}

fn preview(text: &str) -> String {
    let shown: String = text.chars().take(60).collect();
    if shown.len() < text.len() {
        format!("{shown:?}…")
    } else {
        format!("{shown:?}")
    }
}

/// The grammar, shared by the tree parser and the evaluator:
/// expr := '¬' ident | '¬' '(' expr ')' | ident | '(' expr [op expr] ')'.
/// Both walk the text byte-wise (no `Vec<char>`), resolve names through a [`NameIndex`], and
/// count nesting with a [`Depth`] guard.
struct Parser<'a, 'n> {
    text: &'a str,
    pos: usize,
    names: &'a NameIndex<'n>,
    depth: Depth,
}

impl Parser<'_, '_> {
    fn skip_spaces(&mut self) {
        while let Some(c) = self.text[self.pos..]
            .chars()
            .next()
            .filter(|c| c.is_whitespace())
        {
            self.pos += c.len_utf8();
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_spaces();
        self.text[self.pos..].chars().next()
    }

    fn expect(&mut self, want: char) -> Result<(), String> {
        match self.peek() {
            Some(c) if c == want => {
                self.pos += c.len_utf8();
                Ok(())
            }
            other => Err(format!(
                "expected {want:?} at {}, found {other:?}",
                self.pos
            )),
        }
    }

    fn expr(&mut self) -> Result<Formula, String> {
        self.depth.enter()?;
        let formula = match self.peek() {
            Some('¬') => {
                self.pos += '¬'.len_utf8();
                if self.peek() == Some('(') {
                    Formula::Not(Box::new(self.group()?))
                } else {
                    Formula::Lit {
                        var: self.ident()?,
                        neg: true,
                    }
                }
            }
            Some('(') => self.group()?,
            _ => Formula::Lit {
                var: self.ident()?,
                neg: false,
            },
        };
        self.depth.leave();
        Ok(formula)
    }

    fn group(&mut self) -> Result<Formula, String> {
        self.expect('(')?;
        let left = self.expr()?;
        if self.peek() == Some(')') {
            self.pos += 1;
            return Ok(left);
        }
        let op = self
            .peek()
            .and_then(|c| Op::from_symbol(c).map(|op| (op, c)))
            .ok_or_else(|| format!("expected a connective at {}", self.pos))?;
        self.pos += op.1.len_utf8();
        let right = self.expr()?;
        self.expect(')')?;
        Ok(Formula::Bin(op.0, Box::new(left), Box::new(right)))
    }

    fn ident(&mut self) -> Result<usize, String> {
        self.skip_spaces();
        let start = self.pos;
        while self
            .text
            .as_bytes()
            .get(self.pos)
            .is_some_and(u8::is_ascii_alphabetic)
        {
            self.pos += 1;
        }
        let name = &self.text[start..self.pos];
        if name.is_empty() {
            return Err(format!("expected a variable at {start}"));
        }
        self.names
            .get(name)
            .ok_or_else(|| format!("unknown variable {}", preview(name)))
    }
}

/// The deepest parenthesis nesting in a formula's text: one linear scan, so a label can be
/// refused for depth before anything recursive reads it.
pub fn paren_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for b in text.bytes() {
        match b {
            b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The inverse of [`variable_names`]: `A` → 0, `Z` → 25, `AA` → 26.
fn name_index(name: &str) -> Option<usize> {
    let mut index = 0usize;
    for b in name.bytes() {
        if !b.is_ascii_uppercase() {
            return None;
        }
        index = index
            .checked_mul(26)?
            .checked_add(usize::from(b - b'A') + 1)?;
    }
    index.checked_sub(1)
}

/// The names of `n` variables: `A`…`Z`, then `AA`, `AB`, … (spreadsheet columns).
pub fn variable_names(n: usize) -> Vec<String> {
    (0..n)
        .map(|mut i| {
            let mut name = Vec::new();
            loop {
                name.push(b'A' + (i % 26) as u8);
                if i < 26 {
                    break;
                }
                i = i / 26 - 1;
            }
            name.reverse();
            String::from_utf8(name).expect("ASCII")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let names = variable_names(64);
        assert_eq!(names[0], "A");
        assert_eq!(names[25], "Z");
        assert_eq!(names[26], "AA");
        assert_eq!(names[52], "BA");
        assert_eq!(names[63], "BL");
        for (i, name) in names.iter().enumerate() {
            assert_eq!(name_index(name), Some(i));
        }
    }

    #[test]
    fn parse_render_round_trip() {
        let names = variable_names(4);
        for text in [
            "(A → D)",
            "¬(¬A)",
            "¬(C)",
            "(A ↔ ¬B)",
            "((A ∧ B) ⊕ ¬((C ∨ ¬D)))",
        ] {
            let f = Formula::parse(text, &NameIndex::new(&names)).unwrap();
            assert_eq!(f.render(&names), text);
        }
        let mut draw = Draw::from_seed_bytes([9; 32]);
        for _ in 0..500 {
            let f = Formula::random(&mut draw, 4, 4);
            assert_eq!(
                Formula::parse(&f.render(&names), &NameIndex::new(&names)).unwrap(),
                f
            );
        }
    }

    #[test]
    fn parse_errors() {
        let names = variable_names(2);
        let names = NameIndex::new(&names);
        assert!(Formula::parse("(A → Q)", &names).is_err());
        assert!(Formula::parse("(A → B", &names).is_err());
        assert!(Formula::parse("(A B)", &names).is_err());
        assert!(Formula::parse("A B", &names).is_err());
    }

    #[test]
    fn connectives() {
        let names = variable_names(2);
        let names = NameIndex::new(&names);
        let truth =
            |text: &str, a: bool, b: bool| Formula::parse(text, &names).unwrap().eval(&[a, b]);
        assert!(!truth("(A → B)", true, false));
        assert!(truth("(A → B)", false, false));
        assert!(truth("(A ↔ B)", false, false));
        assert!(!truth("(A ⊕ B)", true, true));
        assert!(truth("(A ∨ ¬B)", false, false));
        assert!(!truth("¬((A ∧ B))", true, true));
    }
}

/// Evaluate a formula straight from its text under an assignment, without building a tree: the
/// scorer's hot path (a level-10 item has ~110 formulas, and allocating their trees dominated the
/// cost of judging an answer). Accepts exactly what [`Formula::parse`] accepts, with the same
/// nesting limit.
pub fn eval_text(text: &str, names: &NameIndex<'_>, values: &[bool]) -> Result<bool, String> {
    let mut eval = TextEval {
        parser: Parser {
            text,
            pos: 0,
            names,
            depth: Depth::default(),
        },
        values,
    };
    let value = eval.expr()?;
    eval.parser.skip_spaces();
    if eval.parser.pos != text.len() {
        return Err(format!(
            "trailing text at {} in {}",
            eval.parser.pos,
            preview(text)
        ));
    }
    Ok(value)
}

struct TextEval<'a, 'n> {
    parser: Parser<'a, 'n>,
    values: &'a [bool],
}

impl TextEval<'_, '_> {
    fn expr(&mut self) -> Result<bool, String> {
        self.parser.depth.enter()?;
        let value = match self.parser.peek() {
            Some('¬') => {
                self.parser.pos += '¬'.len_utf8();
                if self.parser.peek() == Some('(') {
                    !self.group()?
                } else {
                    !self.ident()?
                }
            }
            Some('(') => self.group()?,
            _ => self.ident()?,
        };
        self.parser.depth.leave();
        Ok(value)
    }

    fn group(&mut self) -> Result<bool, String> {
        self.parser.expect('(')?;
        let left = self.expr()?;
        match self.parser.peek() {
            Some(')') => {
                self.parser.pos += 1;
                Ok(left)
            }
            Some(c) => {
                let op = Op::from_symbol(c)
                    .ok_or_else(|| format!("expected a connective at {}", self.parser.pos))?;
                self.parser.pos += c.len_utf8();
                let right = self.expr()?;
                self.parser.expect(')')?;
                Ok(op.apply(u64::from(left), u64::from(right)) & 1 == 1)
            }
            None => Err("unexpected end".into()),
        }
    }

    fn ident(&mut self) -> Result<bool, String> {
        let index = self.parser.ident()?;
        self.values
            .get(index)
            .copied()
            .ok_or_else(|| "assignment shorter than the variables".into())
    }
}

#[cfg(test)]
mod eval_text_tests {
    use super::*;

    #[test]
    fn agrees_with_the_tree() {
        let mut draw = Draw::from_seed_bytes([4; 32]);
        let names = variable_names(30);
        for _ in 0..2000 {
            let f = Formula::random(&mut draw, 30, 4);
            let values: Vec<bool> = (0..30).map(|_| draw.chance(0.5)).collect();
            assert_eq!(
                eval_text(&f.render(&names), &NameIndex::new(&names), &values),
                Ok(f.eval(&values))
            );
        }
        let index = NameIndex::new(&names);
        for bad in ["(A → ZZ)", "(A → B", "(A B)", "A B", ""] {
            assert!(eval_text(bad, &index, &[true; 30]).is_err(), "{bad}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let names = variable_names(2);
        let index = NameIndex::new(&names);
        for depth in [300, 100_000] {
            let text = format!("{}A{}", "(".repeat(depth), ")".repeat(depth));
            assert!(
                eval_text(&text, &index, &[true, true])
                    .unwrap_err()
                    .contains("nested")
            );
            assert!(
                Formula::parse(&text, &index)
                    .unwrap_err()
                    .contains("nested")
            );
            let negated = "¬(".repeat(depth) + "A" + &")".repeat(depth);
            assert!(eval_text(&negated, &index, &[true, true]).is_err());
        }
        // Within the limit, deep formulas still evaluate.
        let text = format!("{}A{}", "(".repeat(200), ")".repeat(200));
        assert_eq!(eval_text(&text, &index, &[true, false]), Ok(true));
    }

    #[test]
    fn names_in_any_order_resolve() {
        let names: Vec<String> = ["B", "A", "ZZ"].map(String::from).to_vec();
        let index = NameIndex::new(&names);
        assert_eq!(
            eval_text("(A ∧ ¬ZZ)", &index, &[false, true, false]),
            Ok(true)
        );
        assert!(eval_text("C", &index, &[true; 3]).is_err());
    }
}
