//! What a forward file brings into being (objects, NOT NULLs, defaults),
//! read from its tokens, so a rollback that removes only that is not
//! flagged as destructive.

use std::collections::BTreeSet;

use squawk_linter::Rule;

use crate::sqltext::{self, Token};

/// What a forward file brings into being, so its rollback may take it away.
#[derive(Debug, Default)]
pub(super) struct Created {
    /// Tables, columns, constraints, indexes, types, functions, triggers, ...
    pub(super) objects: BTreeSet<String>,
    /// Columns the file sets NOT NULL on.
    not_null: BTreeSet<String>,
    /// Columns the file sets a default on.
    defaults: BTreeSet<String>,
}

impl Created {
    pub(super) fn of(text: &str) -> Created {
        let mut c = Created::default();
        for st in sqltext::statements(text) {
            let t = sqltext::tokens(&text[st.start..st.end]);
            if t.first().is_some_and(|x| x.is_word("create")) {
                if let Some(name) = created_name(&t[1..]) {
                    c.objects.insert(name);
                }
            }
            for (i, tok) in t.iter().enumerate() {
                let rest = &t[i + 1..];
                if tok.is_word("add") {
                    if let Some(name) = added_name(rest) {
                        c.objects.insert(name);
                    }
                }
                // A migration that only VALIDATEs a constraint is undone by
                // dropping it and adding it back NOT VALID: PostgreSQL has no
                // other way to mark it unvalidated again.
                if tok.is_word("validate") && rest.first().is_some_and(|x| x.is_word("constraint")) {
                    if let Some(name) = rest.get(1).and_then(Token::ident) {
                        c.objects.insert(name);
                    }
                }
                if tok.is_word("alter") && rest.first().is_some_and(|x| x.is_word("column")) {
                    if let Some(col) = rest.get(1).and_then(Token::ident) {
                        if words_at(&rest[2..], &["set", "not", "null"]) {
                            c.not_null.insert(col.clone());
                        }
                        if words_at(&rest[2..], &["set", "default"]) {
                            c.defaults.insert(col);
                        }
                    }
                }
            }
        }
        c
    }

    /// Whether undoing what a `rule` finding targets (the identifiers in
    /// `target`) takes away only what this file created.
    pub(super) fn covers(&self, rule: Rule, target: &[Token]) -> bool {
        let extra = match rule {
            Rule::BanDropNotNull => Some(&self.not_null),
            Rule::BanDropDefault => Some(&self.defaults),
            _ => None,
        };
        target.iter().filter_map(Token::ident).any(|n| self.objects.contains(&n) || extra.is_some_and(|e| e.contains(&n)))
    }
}

const CREATE_MODIFIERS: &[&str] = &["or", "replace", "unique", "temp", "temporary", "unlogged", "materialized", "recursive", "constraint", "global", "local"];
const CREATE_KINDS: &[&str] = &[
    "table", "index", "type", "function", "procedure", "trigger", "view", "sequence", "domain", "schema", "extension", "aggregate", "policy", "rule",
];

/// The name after `CREATE [modifiers] KIND [CONCURRENTLY] [IF NOT EXISTS]`.
fn created_name(t: &[Token]) -> Option<String> {
    created_object(t).and_then(|o| qualified_last(o.name))
}

/// What a `CREATE` statement (its tokens after `CREATE`) creates: its
/// kind, whether it is temporary, and the tokens from its name on.
pub(crate) struct CreatedObject<'a> {
    pub kind: &'a str,
    pub temporary: bool,
    pub name: &'a [Token],
}

/// Reads `[modifiers] KIND [CONCURRENTLY] [IF NOT EXISTS] name`; `None` for
/// another kind or an unnamed index.
pub(crate) fn created_object(t: &[Token]) -> Option<CreatedObject<'_>> {
    let mut i = 0;
    let mut temporary = false;
    while let Some(m) = t.get(i).and_then(|x| CREATE_MODIFIERS.iter().find(|m| x.is_word(m))) {
        temporary |= *m == "temp" || *m == "temporary";
        i += 1;
    }
    let kind = t.get(i).and_then(|x| CREATE_KINDS.iter().find(|k| x.is_word(k)))?;
    i += 1;
    if t.get(i).is_some_and(|x| x.is_word("concurrently")) {
        i += 1;
    }
    if words_at(&t[i.min(t.len())..], &["if", "not", "exists"]) {
        i += 3;
    }
    if t.get(i).is_some_and(|x| x.is_word("on")) {
        return None; // an unnamed index
    }
    Some(CreatedObject { kind, temporary, name: &t[i.min(t.len())..] })
}

/// The column or constraint name after `ADD [COLUMN [IF NOT EXISTS]]` or `ADD CONSTRAINT`.
fn added_name(t: &[Token]) -> Option<String> {
    let mut i = 0;
    if t.first().is_some_and(|x| x.is_word("column") || x.is_word("constraint")) {
        i = 1;
    } else if t.first().is_some_and(|x| ["primary", "unique", "check", "foreign", "exclude", "value", "attribute"].iter().any(|k| x.is_word(k))) {
        return None;
    }
    if words_at(&t[i.min(t.len())..], &["if", "not", "exists"]) {
        i += 3;
    }
    t.get(i).and_then(Token::ident)
}

/// The last segment of `a.b.c`.
pub(super) fn qualified_last(t: &[Token]) -> Option<String> {
    qualified(t).0.pop()
}

/// The segments of `a.b.c` at the start of `t`, and the tokens after it.
pub(crate) fn qualified(t: &[Token]) -> (Vec<String>, &[Token]) {
    let mut parts = Vec::new();
    let Some(first) = t.first().and_then(Token::ident) else { return (parts, t) };
    parts.push(first);
    let mut i = 1;
    while t.get(i) == Some(&Token::Punct('.')) {
        match t.get(i + 1).and_then(Token::ident) {
            Some(n) => parts.push(n),
            None => return (Vec::new(), t),
        }
        i += 2;
    }
    (parts, &t[i..])
}

pub(crate) fn words_at(t: &[Token], words: &[&str]) -> bool {
    words.len() <= t.len() && words.iter().zip(t).all(|(w, x)| x.is_word(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_names_are_read_like_postgresql_folds_them() {
        let c = Created::of(
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"Idx\" ON t (a);\nCREATE OR REPLACE FUNCTION s.f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\nALTER TABLE t ADD COLUMN IF NOT EXISTS Col int, ADD CONSTRAINT \"C\" CHECK (a > 0), ALTER COLUMN b SET NOT NULL;\n",
        );
        assert_eq!(c.objects.iter().map(String::as_str).collect::<Vec<_>>(), vec!["C", "Idx", "col", "f"]);
        assert_eq!(c.not_null.iter().map(String::as_str).collect::<Vec<_>>(), vec!["b"]);
    }
}
