//! Building an instance's rule graph: the level table, atom naming, premise chains that hold
//! or break, distractors.

use super::expr::{Expr, Premise};
use crate::rng::Draw;

/// The shape of one level.
#[derive(Clone, Copy, Debug)]
pub(super) struct Shape {
    pub(super) depth: (i64, i64),
    pub(super) distractors: (i64, i64),
    pub(super) goals: usize,
    pub(super) last_letter: u8,
    pub(super) body_depth: u32,
}

/// The level table.
pub(super) fn shape(level: u8) -> Option<Shape> {
    let s = |depth, distractors, goals, last_letter, body_depth| Shape {
        depth,
        distractors,
        goals,
        last_letter,
        body_depth,
    };
    Some(match level {
        1 => s((2, 3), (3, 5), 3, b'O', 2),
        2 => s((3, 4), (5, 7), 3, b'O', 2),
        3 => s((4, 5), (7, 9), 3, b'O', 2),
        4 => s((5, 6), (8, 10), 3, b'O', 2),
        5 => s((6, 7), (10, 12), 3, b'O', 2),
        6 => s((7, 8), (14, 16), 4, b'T', 2),
        7 => s((8, 9), (18, 20), 4, b'T', 2),
        8 => s((9, 10), (22, 25), 5, b'Z', 2),
        9 => s((10, 12), (28, 32), 5, b'Z', 2),
        10 => s((12, 14), (35, 40), 6, b'Z', 3),
        _ => return None,
    })
}

/// Building state: atom names and premises.
pub(super) struct Builder<'a> {
    pub(super) draw: &'a mut Draw,
    pub(super) shape: Shape,
    pub(super) names: Vec<String>,
    pub(super) premises: Vec<Premise>,
    pub(super) known: Vec<usize>,
    /// Atoms that must stay underivable (goals, the upper part of broken chains, missing links):
    /// no distractor may have them as head and none becomes known.
    pub(super) protected: Vec<usize>,
}

impl Builder<'_> {
    /// A fresh atom: one letter (60%) or two, from the level's alphabet.
    pub(super) fn fresh(&mut self) -> Option<usize> {
        let letters = u64::from(self.shape.last_letter - b'A' + 1);
        for _ in 0..1000 {
            let mut name = String::from((b'A' + self.draw.below(letters) as u8) as char);
            if !self.draw.chance(0.6) {
                name.push((b'A' + self.draw.below(letters) as u8) as char);
            }
            // Two-letter names may spell the operator `OR`.
            if !self.names.contains(&name) && name != "OR" {
                self.names.push(name);
                return Some(self.names.len() - 1);
            }
        }
        None
    }

    pub(super) fn pick(&mut self, from: &[usize]) -> usize {
        from[self.draw.index(from.len())]
    }

    pub(super) fn any_atom(&mut self) -> usize {
        self.draw.index(self.names.len())
    }

    /// A body that is entailed whenever `required` is (and the known atoms are), and only then
    /// when `x_protected`: its free atom `x` is fresh, and is kept underivable so that an `(r OR x)`
    /// above a broken link does not repair the chain.
    pub(super) fn entailed_body(&mut self, required: usize, x_protected: bool) -> Option<Expr> {
        let r = Expr::Atom(required);
        let k = Expr::Atom(self.pick(&self.known.clone()));
        let x_atom = self.fresh()?;
        if x_protected {
            self.protected.push(x_atom);
        }
        let x = Expr::Atom(x_atom);
        Some(match self.draw.below(8) {
            0 => r,
            1 => Expr::and(r, k),
            2 => Expr::and(k, r),
            3 => Expr::or(r, x),
            4 => Expr::or(x, r),
            5 => Expr::or(Expr::negate(x), r),
            6 => Expr::and(r, Expr::or(k, x)),
            _ => Expr::and(Expr::or(r, x), k),
        })
    }

    /// A body that looks like [`Builder::entailed_body`] but needs something that does not hold:
    /// a missing link (an atom nothing derives) or a blocked branch (the negation of a known atom).
    pub(super) fn broken_body(&mut self, required: usize) -> Option<Expr> {
        let r = Expr::Atom(required);
        let k = Expr::Atom(self.pick(&self.known.clone()));
        let missing_atom = self.fresh()?;
        self.protected.push(missing_atom);
        let missing = Expr::Atom(missing_atom);
        Some(match self.draw.below(5) {
            0 => Expr::and(r, missing),
            1 => Expr::and(missing, r),
            2 => Expr::and(r, Expr::negate(k)),
            3 => Expr::and(Expr::or(missing, Expr::negate(k)), r),
            _ => missing,
        })
    }

    /// A chain of `depth` premises from `top` down to the known atoms; broken at one link when
    /// `broken`.
    pub(super) fn chain(&mut self, top: usize, depth: usize, broken: bool) -> Option<()> {
        let break_at = self.draw.index(depth);
        let mut head = top;
        for link in 0..depth {
            if broken && link <= break_at {
                self.protected.push(head);
            }
            let below = if link + 1 == depth {
                self.pick(&self.known.clone())
            } else {
                self.fresh()?
            };
            let body = if broken && link == break_at {
                self.broken_body(below)?
            } else {
                self.entailed_body(below, broken && link < break_at)?
            };
            self.premises.push(Premise { body, head });
            head = below;
        }
        Some(())
    }

    pub(super) fn random_expr(&mut self, depth: u32) -> Expr {
        if depth == 0 || self.draw.chance(0.3) {
            let atom = Expr::Atom(self.any_atom());
            return if self.draw.chance(0.3) {
                Expr::negate(atom)
            } else {
                atom
            };
        }
        let (a, b) = (self.random_expr(depth - 1), self.random_expr(depth - 1));
        if self.draw.chance(0.5) {
            Expr::and(a, b)
        } else {
            Expr::or(a, b)
        }
    }

    /// Distractor premises: random bodies, heads that are not protected.
    pub(super) fn distractors(&mut self) -> Option<()> {
        let count = self
            .draw
            .range(self.shape.distractors.0, self.shape.distractors.1);
        for _ in 0..count {
            let mut head = self.any_atom();
            if self.draw.chance(0.5) || self.protected.contains(&head) {
                head = self.fresh()?;
            }
            let body = self.random_expr(self.shape.body_depth);
            self.premises.push(Premise { body, head });
        }
        Some(())
    }
}

pub(super) fn new_builder(shape: Shape, draw: &mut Draw) -> Option<Builder<'_>> {
    let mut b = Builder {
        draw,
        shape,
        names: Vec::new(),
        premises: Vec::new(),
        known: Vec::new(),
        protected: Vec::new(),
    };
    let base_known = b.draw.range(2, 4);
    for _ in 0..base_known {
        let k = b.fresh()?;
        b.known.push(k);
    }
    Some(b)
}

/// Add some atoms of the graph to the known set (never the protected ones), shuffle everything.
pub(super) fn finish(b: &mut Builder<'_>) -> (Vec<String>, Vec<String>) {
    let extra = b.draw.range(0, 3);
    for _ in 0..extra {
        let atom = b.any_atom();
        if !b.protected.contains(&atom) && !b.known.contains(&atom) {
            b.known.push(atom);
        }
    }
    b.draw.shuffle(&mut b.premises);
    b.draw.shuffle(&mut b.known);
    let premises = b.premises.iter().map(|p| p.render(&b.names)).collect();
    let known = b.known.iter().map(|&k| b.names[k].clone()).collect();
    (premises, known)
}
