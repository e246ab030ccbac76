//! Rule bodies: AND/OR/NOT trees over atoms, in the paper's syntax.

use std::fmt::Write as _;

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

    /// Evaluate under a truth assignment of the atoms.
    pub fn eval(&self, truth: &[bool]) -> bool {
        match self {
            Expr::Atom(a) => truth[*a],
            Expr::Not(e) => !e.eval(truth),
            Expr::And(a, b) => a.eval(truth) && b.eval(truth),
            Expr::Or(a, b) => a.eval(truth) || b.eval(truth),
        }
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

    /// Every atom the expression mentions.
    pub fn atoms(&self, out: &mut Vec<usize>) {
        match self {
            Expr::Atom(a) => out.push(*a),
            Expr::Not(e) => e.atoms(out),
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.atoms(out);
                b.atoms(out);
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

    /// Parse `(<body>) => <head>`, adding unseen atom names to `names`.
    pub fn parse(text: &str, names: &mut Vec<String>) -> Result<Premise, String> {
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
            names,
        };
        let body = parser.or_expr()?;
        if parser.pos != parser.tokens.len() {
            return Err(format!("trailing tokens in {text:?}"));
        }
        let head = intern(names, head);
        Ok(Premise { body, head })
    }
}

/// The index of `name`, adding it if new.
pub fn intern(names: &mut Vec<String>, name: &str) -> usize {
    names.iter().position(|n| n == name).unwrap_or_else(|| {
        names.push(name.to_string());
        names.len() - 1
    })
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
    names: &'a mut Vec<String>,
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
        if self.peek() == Some("NOT") {
            self.pos += 1;
            return Ok(Expr::negate(self.not_expr()?));
        }
        self.factor()
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
                Ok(Expr::Atom(intern(self.names, &word)))
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
        let mut names = Vec::new();
        for text in [
            "(C) => BA",
            "(((NOT C) OR (NOT B))) => BA",
            "((BA AND A)) => EN",
            "(((((NOT A) AND D) OR (L OR A)) OR (((NOT H) AND (NOT L)) OR (NOT A)))) => A",
        ] {
            let p = Premise::parse(text, &mut names).unwrap();
            assert_eq!(p.render(&names), text);
        }
        assert!(Premise::parse("(C) -> B", &mut names).is_err());
        assert!(Premise::parse("((C AND)) => B", &mut names).is_err());
    }
}
