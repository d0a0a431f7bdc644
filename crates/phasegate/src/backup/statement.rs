//! The statement reader `targets` (what a rollback changes) and `destroys`
//! (what an irreversible migration destroys) share: a cursor over a
//! statement's tokens and the actions of an `ALTER TABLE`.

use crate::pg::quote_ident;
use crate::sqltext::Token;

/// A cursor over a statement's tokens.
pub(super) struct Parser<'a> {
    pub(super) t: &'a [Token],
    pub(super) i: usize,
}

impl Parser<'_> {
    pub(super) fn word(&self, k: usize) -> Option<&str> {
        match self.t.get(self.i + k) {
            Some(Token::Word(w)) => Some(w),
            _ => None,
        }
    }
    pub(super) fn eat(&mut self, w: &str) -> bool {
        if self.word(0) == Some(w) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    pub(super) fn sym(&mut self, c: char) -> bool {
        if self.t.get(self.i) == Some(&Token::Punct(c)) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    /// A name as PostgreSQL resolves it: cut to 63 bytes like the server
    /// cuts every identifier (a 70-character column is stored as its
    /// first 63 bytes, and that is the column a statement naming the 70
    /// characters drops).
    pub(super) fn ident(&mut self) -> Option<String> {
        let s = self.t.get(self.i)?.ident()?;
        self.i += 1;
        Some(crate::pg::clip_ident(&s))
    }
    /// `name` or `schema.name`, in quoted form for `to_regclass`.
    pub(super) fn qualified(&mut self) -> Option<String> {
        let first = self.ident()?;
        if self.sym('.') {
            let second = self.ident()?;
            return Some(format!("{}.{}", quote_ident(&first), quote_ident(&second)));
        }
        Some(quote_ident(&first))
    }
}

/// `IF EXISTS`, skipped.
pub(super) fn if_exists(p: &mut Parser) {
    if p.word(0) == Some("if") && p.word(1) == Some("exists") {
        p.i += 2;
    }
}

/// One action of an ALTER TABLE statement that destroys something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AlterAction {
    DropColumn(String),
    DropConstraint(String),
    DropNotNull(String),
    DropDefault(String),
    TypeChange,
}

/// The table of an `ALTER TABLE` statement and its destructive actions
/// (actions are separated by commas at parenthesis depth 0). Dropped
/// columns of one statement are merged by the caller.
pub(super) fn alter_table(toks: &[Token]) -> Option<(String, Vec<AlterAction>)> {
    let mut p = Parser { t: toks, i: 2 };
    if_exists(&mut p);
    p.eat("only");
    let table = p.qualified()?;
    p.sym('*');
    let mut actions = Vec::new();
    let mut depth = 0i32;
    let mut action_start = true;
    while p.i < toks.len() {
        if action_start {
            action_start = false;
            if p.eat("drop") {
                if p.eat("constraint") {
                    if_exists(&mut p);
                    if let Some(c) = p.ident() {
                        actions.push(AlterAction::DropConstraint(c));
                    }
                    continue;
                }
                p.eat("column");
                if_exists(&mut p);
                if let Some(c) = p.ident() {
                    actions.push(AlterAction::DropColumn(c));
                }
                continue;
            }
            if p.eat("alter") {
                p.eat("column");
                if let Some(c) = p.ident() {
                    if p.word(0) == Some("drop") && p.word(1) == Some("not") && p.word(2) == Some("null") {
                        actions.push(AlterAction::DropNotNull(c));
                    } else if p.word(0) == Some("drop") && p.word(1) == Some("default") {
                        actions.push(AlterAction::DropDefault(c));
                    } else if p.word(0) == Some("type") || (p.word(0) == Some("set") && p.word(1) == Some("data")) {
                        actions.push(AlterAction::TypeChange);
                    }
                }
                continue;
            }
        }
        match &toks[p.i] {
            Token::Punct('(') => depth += 1,
            Token::Punct(')') => depth -= 1,
            Token::Punct(',') if depth == 0 => action_start = true,
            _ => {}
        }
        p.i += 1;
    }
    Some((table, actions))
}
