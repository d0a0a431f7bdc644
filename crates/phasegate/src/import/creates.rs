//! What an imported forward file creates (tables, indexes, views,
//! sequences, functions, procedures, types, domains), read with the
//! lexer, and the validation asserting it exists after the migration:
//! relations through `to_regclass`, routines through `pg_proc`, types
//! through `pg_type`. An object the same file drops or renames later, and a
//! temporary one, is not asserted.

use crate::lint::created::{created_object, qualified, words_at};
use crate::sqltext::{self, Token};

/// An object a forward file creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Object {
    /// `table`, `index`, `view`, `sequence`, `function`, `procedure`, `type`, `domain`.
    pub kind: &'static str,
    pub schema: Option<String>,
    pub name: String,
}

const KINDS: &[&str] = &["table", "index", "view", "sequence", "function", "procedure", "type", "domain"];

impl Object {
    /// `table app.users`, for descriptions and the check's rows.
    pub fn label(&self) -> String {
        match &self.schema {
            Some(s) => format!("{} {s}.{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }

    /// A boolean SQL expression: the object exists.
    fn exists(&self) -> String {
        let (lit, ident) = (crate::pg::quote_literal, crate::pg::quote_ident);
        let schema = |col: &str| match &self.schema {
            Some(s) => format!("{col} = {}", lit(s)),
            None => format!("{col} = ANY (current_schemas(false))"),
        };
        match self.kind {
            "function" | "procedure" => format!(
                "EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.proname = {} AND {})",
                lit(&self.name),
                schema("n.nspname")
            ),
            "type" | "domain" => format!(
                "EXISTS (SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typname = {} AND {})",
                lit(&self.name),
                schema("n.nspname")
            ),
            _ => {
                let qualified = match &self.schema {
                    Some(s) => format!("{}.{}", ident(s), ident(&self.name)),
                    None => ident(&self.name),
                };
                format!("to_regclass({}) IS NOT NULL", lit(&qualified))
            }
        }
    }
}

/// The objects `text` creates, in order, each once.
pub(crate) fn created(text: &str) -> Vec<Object> {
    let mut out: Vec<Object> = Vec::new();
    let mut gone: Vec<String> = Vec::new();
    for st in sqltext::statements(text) {
        let t = sqltext::tokens(&text[st.start..st.end]);
        match t.first() {
            Some(x) if x.is_word("create") => {
                if let Some(o) = object(&t[1..]) {
                    if !out.contains(&o) {
                        out.push(o);
                    }
                }
            }
            Some(x) if x.is_word("drop") => gone.extend(dropped(&t[1..])),
            Some(x) if x.is_word("alter") && t.iter().any(|w| w.is_word("rename")) => {
                // ALTER KIND name RENAME TO other: the old name is gone.
                let rest = &t[2.min(t.len())..];
                let rest = if words_at(rest, &["if", "exists"]) { &rest[2..] } else { rest };
                if !t.iter().any(|w| w.is_word("column") || w.is_word("constraint")) {
                    if let Some(n) = qualified(rest).0.pop() {
                        gone.push(n);
                    }
                }
            }
            _ => {}
        }
    }
    out.retain(|o| !gone.contains(&o.name));
    out
}

/// The object of `CREATE ...` (tokens after CREATE), if one of [`KINDS`].
fn object(t: &[Token]) -> Option<Object> {
    let c = created_object(t)?;
    let kind = *KINDS.iter().find(|k| **k == c.kind)?;
    if c.temporary {
        return None;
    }
    let (mut parts, rest) = qualified(c.name);
    let name = parts.pop()?;
    let mut schema = parts.pop();
    if kind == "index" && schema.is_none() {
        // An index lives in its table's schema: `ON [ONLY] s.t`.
        let mut on = rest.iter().position(|x| x.is_word("on")).map(|i| &rest[i + 1..]).unwrap_or(&[]);
        if on.first().is_some_and(|x| x.is_word("only")) {
            on = &on[1..];
        }
        let (mut table, _) = qualified(on);
        table.pop();
        schema = table.pop();
    }
    Some(Object { kind, schema, name })
}

/// The names a `DROP KIND [IF EXISTS] a, b` (tokens after DROP) drops.
fn dropped(t: &[Token]) -> Vec<String> {
    let mut i = 0;
    while t.get(i).is_some_and(|x| x.is_word("materialized") || x.is_word("concurrently")) || t.get(i).is_some_and(|x| KINDS.iter().any(|k| x.is_word(k))) {
        i += 1;
    }
    let mut rest = &t[i.min(t.len())..];
    if words_at(rest, &["if", "exists"]) {
        rest = &rest[2..];
    }
    let mut names = Vec::new();
    loop {
        let (mut parts, after) = qualified(rest);
        match parts.pop() {
            Some(n) => names.push(n),
            None => break,
        }
        // Skip a routine's argument list, then go on after a comma.
        let mut depth = 0;
        let mut j = 0;
        while let Some(x) = after.get(j) {
            match x {
                Token::Punct('(') => depth += 1,
                Token::Punct(')') => depth -= 1,
                Token::Punct(',') if depth == 0 => break,
                _ => {}
            }
            j += 1;
        }
        if j >= after.len() {
            break;
        }
        rest = &after[j + 1..];
    }
    names
}

/// The validation file of step `V{version}`: one critical check that
/// returns each created object missing after the migration, or, when the
/// file creates none of these, one check that always passes and says so.
pub(crate) fn validation(version: i32, forward: &str) -> String {
    let objects = created(forward);
    if objects.is_empty() {
        return format!(
            "-- check: imported_migration_ran\n\
             -- severity: critical\n\
             -- description: V{version} creates no table, index, view, sequence, function, procedure or type for import to assert; this check always passes (write checks of your own here)\n\
             SELECT 1 WHERE false;\n"
        );
    }
    let rows: Vec<String> = objects.iter().map(|o| format!("    ({}, {})", crate::pg::quote_literal(&o.label()), o.exists())).collect();
    let what: Vec<String> = objects.iter().map(Object::label).collect();
    format!(
        "-- check: created_objects_exist\n\
         -- severity: critical\n\
         -- description: what V{version} creates is there ({}); returns each one missing\n\
         SELECT missing FROM (VALUES\n{}\n) AS created(missing, present)\nWHERE NOT present;\n",
        what.join(", ").replace('\n', " "),
        rows.join(",\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(text: &str) -> Vec<String> {
        created(text).iter().map(Object::label).collect()
    }

    #[test]
    fn created_objects_are_read_with_their_schema() {
        let sql = "CREATE TABLE IF NOT EXISTS app.\"Users\" (id int);\n\
                   CREATE UNIQUE INDEX CONCURRENTLY users_email ON ONLY app.users (email);\n\
                   CREATE INDEX ON t (x);\n\
                   CREATE OR REPLACE FUNCTION f(a int) RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n\
                   CREATE TYPE mood AS ENUM ('a');\n\
                   CREATE MATERIALIZED VIEW mv AS SELECT 1;\n\
                   CREATE TEMP TABLE scratch (x int);\n\
                   CREATE EXTENSION IF NOT EXISTS pgcrypto;\n\
                   CREATE TRIGGER tr BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION f();\n";
        assert_eq!(labels(sql), ["table app.Users", "index app.users_email", "function f", "type mood", "view mv"]);
    }

    #[test]
    fn what_the_file_drops_or_renames_is_not_asserted() {
        let sql = "CREATE TABLE users_new (id int);\nCREATE TABLE tmp (x int);\nCREATE FUNCTION g(int) RETURNS int AS 'select 1' LANGUAGE sql;\n\
                   DROP TABLE IF EXISTS tmp, other;\nDROP FUNCTION g(int);\nALTER TABLE users_new RENAME TO users;\nALTER TABLE users_new RENAME COLUMN a TO b;\n";
        assert!(labels(sql).is_empty(), "{:?}", labels(sql));
    }

    #[test]
    fn a_file_creating_nothing_gets_a_check_that_says_so() {
        let v = validation(3, "ALTER TABLE t ADD COLUMN x int;");
        assert!(v.contains("creates no table") && v.contains("SELECT 1 WHERE false"), "{v}");
        let v = validation(4, "CREATE TABLE \"it's\" (x int);");
        assert!(v.contains("('table it''s', to_regclass('\"it''s\"') IS NOT NULL)"), "{v}");
    }
}
