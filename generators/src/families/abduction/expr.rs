//! Rule bodies: AND/OR/NOT trees over atoms, in the paper's syntax.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::limits::Depth;

/// A rule body.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Expr {
    /// An atom, by index into the instance's atom names.
    Atom(usize),
    /// `(NOT e)`
    Not(Box<Expr>),
    /// `(a AND b)`
    And(Box<Expr>, Box<Expr>),
    /// `(a OR b)`
    Or(Box<Expr>, Box<Expr>),
}

impl Expr {
    /// `(NOT e)`.
    pub fn negate(e: Expr) -> Expr {
        Expr::Not(Box::new(e))
    }

    /// `(a AND b)`.
    pub fn and(a: Expr, b: Expr) -> Expr {
        Expr::And(Box::new(a), Box::new(b))
    }

    /// `(a OR b)`.
    pub fn or(a: Expr, b: Expr) -> Expr {
        Expr::Or(Box::new(a), Box::new(b))
    }

    /// Render with atom names.
    pub fn render(&self, names: &[String]) -> String {
        let mut out = String::new();
        self.render_into(names, &mut out);
        out
    }

    fn render_into(&self, names: &[String], out: &mut String) {
        match self {
            Expr::Atom(a) => out.push_str(&names[*a]),
            Expr::Not(e) => {
                out.push_str("(NOT ");
                e.render_into(names, out);
                out.push(')');
            }
            Expr::And(a, b) | Expr::Or(a, b) => {
                let op = if matches!(self, Expr::And(..)) {
                    "AND"
                } else {
                    "OR"
                };
                out.push('(');
                a.render_into(names, out);
                let _ = write!(out, " {op} ");
                b.render_into(names, out);
                out.push(')');
            }
        }
    }
}

/// A premise `(body) => head`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Premise {
    /// The body.
    pub body: Expr,
    /// The head atom.
    pub head: usize,
}

impl Premise {
    /// Render as the paper does: `(<body>) => <head>`.
    pub fn render(&self, names: &[String]) -> String {
        format!("({}) => {}", self.body.render(names), names[self.head])
    }

    /// Parse `(<body>) => <head>`, adding unseen atom names to `atoms`. Nesting deeper than
    /// [`crate::limits::MAX_NESTING`] is an error, not a stack overflow.
    pub fn parse(text: &str, atoms: &mut Atoms) -> Result<Premise, String> {
        let (body, head) = text
            .rsplit_once("=>")
            .ok_or_else(|| format!("no `=>` in {text:?}"))?;
        let head = head.trim();
        if head.is_empty() || !head.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!("bad head {head:?}"));
        }
        let tokens = tokenize(body)?;
        let mut parser = Parser {
            tokens,
            pos: 0,
            atoms,
            depth: Depth::default(),
        };
        let body = parser.or_expr()?;
        if parser.pos != parser.tokens.len() {
            return Err(format!("trailing tokens in {text:?}"));
        }
        let head = parser.atoms.intern(head);
        Ok(Premise { body, head })
    }
}

/// Atom names and their indices, interned in constant time per lookup.
#[derive(Debug, Default)]
pub struct Atoms {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Atoms {
    /// The index of `name`, adding it if new.
    pub fn intern(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), self.names.len() - 1);
        self.names.len() - 1
    }

    /// The index of `name`, if it was interned.
    pub fn get(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The names, by index.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' || c == ')' {
            tokens.push(c.to_string());
            chars.next();
        } else if c.is_ascii_alphabetic() {
            let mut word = String::new();
            while let Some(&c) = chars.peek().filter(|c| c.is_ascii_alphabetic()) {
                word.push(c);
                chars.next();
            }
            tokens.push(word);
        } else {
            return Err(format!("unexpected {c:?}"));
        }
    }
    Ok(tokens)
}

/// The paper's grammar: OR of ANDs of (NOT* factor); factor = atom | ( expr ).
struct Parser<'a> {
    tokens: Vec<String>,
    pos: usize,
    atoms: &'a mut Atoms,
    depth: Depth,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.pos).map(String::as_str)
    }

    fn or_expr(&mut self) -> Result<Expr, String> {
        let mut left = self.and_expr()?;
        while self.peek() == Some("OR") {
            self.pos += 1;
            left = Expr::or(left, self.and_expr()?);
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, String> {
        let mut left = self.not_expr()?;
        while self.peek() == Some("AND") {
            self.pos += 1;
            left = Expr::and(left, self.not_expr()?);
        }
        Ok(left)
    }

    fn not_expr(&mut self) -> Result<Expr, String> {
        self.depth.enter()?;
        let expr = if self.peek() == Some("NOT") {
            self.pos += 1;
            Expr::negate(self.not_expr()?)
        } else {
            self.factor()?
        };
        self.depth.leave();
        Ok(expr)
    }

    fn factor(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some("(") => {
                self.pos += 1;
                let inner = self.or_expr()?;
                if self.peek() != Some(")") {
                    return Err("missing `)`".into());
                }
                self.pos += 1;
                Ok(inner)
            }
            Some(word)
                if word.bytes().all(|b| b.is_ascii_uppercase())
                    && !["AND", "OR", "NOT"].contains(&word) =>
            {
                let word = word.to_string();
                self.pos += 1;
                Ok(Expr::Atom(self.atoms.intern(&word)))
            }
            other => Err(format!("expected an atom or `(`, found {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut names = Atoms::default();
        for text in [
            "(C) => BA",
            "(((NOT C) OR (NOT B))) => BA",
            "((BA AND A)) => EN",
            "(((((NOT A) AND D) OR (L OR A)) OR (((NOT H) AND (NOT L)) OR (NOT A)))) => A",
        ] {
            let p = Premise::parse(text, &mut names).unwrap();
            assert_eq!(p.render(names.names()), text);
        }
        assert!(Premise::parse("(C) -> B", &mut names).is_err());
        assert!(Premise::parse("((C AND)) => B", &mut names).is_err());
    }

    #[test]
    fn deep_bodies_are_an_error_not_a_stack_overflow() {
        let mut atoms = Atoms::default();
        for depth in [300, 100_000] {
            let parens = format!("{}A{} => B", "(".repeat(depth), ")".repeat(depth));
            assert!(
                Premise::parse(&parens, &mut atoms)
                    .unwrap_err()
                    .contains("nested")
            );
            let nots = format!("({}A) => B", "NOT ".repeat(depth));
            assert!(
                Premise::parse(&nots, &mut atoms)
                    .unwrap_err()
                    .contains("nested")
            );
        }
        let fine = format!("({}A) => B", "NOT ".repeat(100));
        assert!(Premise::parse(&fine, &mut atoms).is_ok());
    }
}
