//! What the statements of an irreversible phase destroy, read lexically on
//! the shared tokenizer: dropped tables, truncated rows, dropped columns,
//! constraints, NOT NULLs and defaults, types (enums, domains, composites),
//! functions, triggers and indexes. Before such a migration runs, `keep`
//! records each one's definition (and copies the data it holds) so
//! `recover` can bring it back. Statements that destroy something `recover`
//! cannot bring back (an UPDATE, a column's type change, a dropped view or
//! schema) are listed as [`Destroys::Unkept`], so `plan` and `migrate` say so.

use serde::{Deserialize, Serialize};

use super::statement::{alter_table, if_exists, AlterAction, Parser};
use crate::pg::quote_ident;
use crate::sqltext::{self, Token};

/// One thing a statement destroys. Names are in `quote_ident` form
/// (`"public"."reservations"`), as `to_regclass` / `to_regtype` read them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Destroys {
    /// DROP TABLE: the table, its rows and its definition.
    Table { table: String },
    /// TRUNCATE: the table's rows.
    Rows { table: String },
    /// ALTER TABLE ... DROP COLUMN: the columns and every row's values.
    Columns { table: String, columns: Vec<String> },
    /// ALTER TABLE ... DROP CONSTRAINT.
    Constraint { table: String, constraint: String },
    /// ALTER TABLE ... ALTER COLUMN ... DROP NOT NULL.
    NotNull { table: String, column: String },
    /// ALTER TABLE ... ALTER COLUMN ... DROP DEFAULT.
    Default { table: String, column: String },
    /// DROP TYPE / DROP DOMAIN: an enum's labels, a domain's or composite's
    /// definition, and the columns that use it.
    Type { name: String },
    /// DROP FUNCTION / DROP PROCEDURE: the definition. `args` as written
    /// (argument types), `None` when the statement gives no list.
    Function { name: String, args: Option<Vec<String>> },
    /// DROP TRIGGER ... ON table (the trigger's name as PostgreSQL stores it).
    Trigger { trigger: String, table: String },
    /// DROP INDEX.
    Index { index: String },
    /// Something `recover` cannot bring back.
    Unkept { statement: String, why: Unkept },
}

/// Why a statement's effect is not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unkept {
    /// UPDATE, DELETE, MERGE, data-modifying WITH: old values are not copied.
    DataChange,
    /// ALTER COLUMN ... TYPE: the old representation is not copied.
    TypeChange,
    /// A DO block or a CALL: what it changes is not seen.
    Opaque,
    /// A DROP of a kind recover does not re-create (view, schema, sequence, ...).
    ObjectKind,
}

impl Unkept {
    pub fn as_str(self) -> &'static str {
        match self {
            Unkept::DataChange => "changed rows are not copied",
            Unkept::TypeChange => "a column's old type and values are not copied",
            Unkept::Opaque => "what it changes is not seen",
            Unkept::ObjectKind => "recover does not re-create this kind of object",
        }
    }
}

impl Destroys {
    /// One line for people: what is kept of it.
    pub fn describe(&self) -> String {
        match self {
            Destroys::Table { table } => format!("table {table}: definition and every row"),
            Destroys::Rows { table } => format!("rows of {table} (TRUNCATE): every row"),
            Destroys::Columns { table, columns } => format!("{table} columns {}: definitions, every row's key and values", columns.join(", ")),
            Destroys::Constraint { table, constraint } => format!("constraint {constraint} on {table}: definition"),
            Destroys::NotNull { table, column } => format!("NOT NULL of {table}.{column}"),
            Destroys::Default { table, column } => format!("default of {table}.{column}"),
            Destroys::Type { name } => format!("type {name}: labels or definition, and the columns using it"),
            Destroys::Function { name, args } => format!("function {name}({}): definition", args.as_deref().map(|a| a.join(", ")).unwrap_or_default()),
            Destroys::Trigger { trigger, table } => format!("trigger {trigger} on {table}: definition"),
            Destroys::Index { index } => format!("index {index}: definition"),
            Destroys::Unkept { statement, why } => format!("NOT KEPT: {statement} ({})", why.as_str()),
        }
    }
}

/// A thing destroyed and the line of its statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Destroy {
    /// 1-based line of the statement.
    pub line: usize,
    #[serde(flatten)]
    pub what: Destroys,
    /// The statement says CASCADE: dependent objects go too (the columns of
    /// a dropped type are kept; other dependents are not).
    pub cascade: bool,
}

/// What the statements of a SQL text destroy, in statement order.
pub fn destroys(sql: &str) -> Vec<Destroy> {
    let mut out = Vec::new();
    for st in sqltext::statements(sql) {
        let text = &sql[st.start..st.end];
        let toks = sqltext::tokens(text);
        let cascade = toks.iter().any(|t| t.is_word("cascade"));
        let mut push = |what: Destroys| out.push(Destroy { line: st.line, what, cascade });
        for what in statement(&toks, text) {
            push(what);
        }
    }
    merge_columns(out)
}

/// The first words of a statement, for `Unkept` entries.
fn head(text: &str) -> String {
    let s = sqltext::strip_comments(text);
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 60 {
        format!("{}...", one.chars().take(60).collect::<String>())
    } else {
        one
    }
}

fn statement(toks: &[Token], text: &str) -> Vec<Destroys> {
    let mut p = Parser { t: toks, i: 0 };
    let unkept = |why| vec![Destroys::Unkept { statement: head(text), why }];
    match p.word(0) {
        Some("update" | "delete" | "merge") => unkept(Unkept::DataChange),
        Some("with") if toks.iter().any(|t| t.is_word("update") || t.is_word("delete")) => unkept(Unkept::DataChange),
        Some("do" | "call") => unkept(Unkept::Opaque),
        Some("truncate") => {
            p.i = 1;
            p.eat("table");
            let mut out = Vec::new();
            loop {
                p.eat("only");
                let Some(table) = p.qualified() else { break };
                out.push(Destroys::Rows { table });
                p.sym('*');
                if !p.sym(',') {
                    break;
                }
            }
            out
        }
        Some("alter") if p.word(1) == Some("table") => alter_table(toks).map(|(table, actions)| actions.into_iter().filter_map(|a| a.destroys(&table, text)).collect()).unwrap_or_default(),
        Some("drop") => drop(&mut p, text),
        _ => Vec::new(),
    }
}

/// A comma-separated list of (qualified) names.
fn names(p: &mut Parser) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(n) = p.qualified() {
        out.push(n);
        if !p.sym(',') {
            break;
        }
    }
    out
}

fn drop(p: &mut Parser, text: &str) -> Vec<Destroys> {
    p.i = 1;
    match p.word(0) {
        Some("table") => {
            p.i += 1;
            if_exists(p);
            names(p).into_iter().map(|table| Destroys::Table { table }).collect()
        }
        Some("type" | "domain") => {
            p.i += 1;
            if_exists(p);
            names(p).into_iter().map(|name| Destroys::Type { name }).collect()
        }
        Some("index") => {
            p.i += 1;
            p.eat("concurrently");
            if_exists(p);
            names(p).into_iter().map(|index| Destroys::Index { index }).collect()
        }
        Some("function" | "procedure") => {
            p.i += 1;
            if_exists(p);
            let mut out = Vec::new();
            while let Some(name) = p.qualified() {
                let args = if p.t.get(p.i) == Some(&Token::Punct('(')) { Some(arg_types(p)) } else { None };
                out.push(Destroys::Function { name, args });
                if !p.sym(',') {
                    break;
                }
            }
            out
        }
        Some("trigger") => {
            p.i += 1;
            if_exists(p);
            let Some(trigger) = p.ident() else { return Vec::new() };
            if !p.eat("on") {
                return Vec::new();
            }
            p.qualified().map(|table| vec![Destroys::Trigger { trigger, table }]).unwrap_or_default()
        }
        _ => vec![Destroys::Unkept { statement: head(text), why: Unkept::ObjectKind }],
    }
}

/// The argument types of `( ... )` at the cursor, as written (names and
/// modes included; `keep` matches by name and count when they do not
/// resolve). Type modifiers are left out, as function signatures ignore them.
fn arg_types(p: &mut Parser) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    while let Some(t) = p.t.get(p.i) {
        p.i += 1;
        match t {
            Token::Punct('(') => {
                depth += 1;
                if depth > 1 {
                    // a type modifier: skip to its end
                    let mut d = 1;
                    while d > 0 {
                        match p.t.get(p.i) {
                            Some(Token::Punct('(')) => d += 1,
                            Some(Token::Punct(')')) => d -= 1,
                            None => break,
                            _ => {}
                        }
                        p.i += 1;
                    }
                    depth -= 1;
                }
            }
            Token::Punct(')') => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                return out;
            }
            Token::Punct(',') => out.push(std::mem::take(&mut cur).trim().to_string()),
            Token::Word(w) => {
                if !cur.is_empty() && !cur.ends_with('.') {
                    cur.push(' ');
                }
                cur.push_str(w);
            }
            Token::Quoted(q) => {
                if !cur.is_empty() && !cur.ends_with('.') {
                    cur.push(' ');
                }
                cur.push_str(&quote_ident(q));
            }
            Token::Punct(c @ ('.' | '[' | ']')) => cur.push(*c),
            _ => {}
        }
    }
    out
}

impl AlterAction {
    fn destroys(self, table: &str, text: &str) -> Option<Destroys> {
        let table = table.to_string();
        Some(match self {
            AlterAction::DropColumn(c) => Destroys::Columns { table, columns: vec![c] },
            AlterAction::DropConstraint(c) => Destroys::Constraint { table, constraint: c },
            AlterAction::DropNotNull(column) => Destroys::NotNull { table, column },
            AlterAction::DropDefault(column) => Destroys::Default { table, column },
            AlterAction::TypeChange => Destroys::Unkept { statement: head(text), why: Unkept::TypeChange },
        })
    }
}

/// The destroyed columns of one ALTER TABLE, merged per table.
fn merge_columns(items: Vec<Destroy>) -> Vec<Destroy> {
    let mut out: Vec<Destroy> = Vec::new();
    for d in items {
        if let Destroys::Columns { table, columns } = &d.what {
            if let Some(Destroy { what: Destroys::Columns { table: t, columns: cs }, line, .. }) = out.last_mut() {
                if t == table && *line == d.line {
                    cs.extend(columns.iter().cloned());
                    continue;
                }
            }
        }
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<Destroys> {
        destroys(sql).into_iter().map(|d| d.what).collect()
    }

    #[test]
    fn reads_what_the_clinic_cleanup_drops() {
        let sql = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/V16__drop_old_columns.sql")).unwrap();
        assert_eq!(
            kinds(&sql),
            vec![
                Destroys::Trigger { trigger: "reservations_10_sync_columns".into(), table: "\"reservations\"".into() },
                Destroys::Function { name: "\"phasegate_sync_reservation_columns\"".into(), args: Some(vec![]) },
                Destroys::Function { name: "\"phasegate_parse_period\"".into(), args: Some(vec!["text".into(), "timestamptz".into()]) },
                Destroys::Function { name: "\"phasegate_parse_period_strict\"".into(), args: Some(vec!["text".into()]) },
                Destroys::Columns { table: "\"reservations\"".into(), columns: vec!["service".into(), "preferredTime".into()] },
                Destroys::Type { name: "\"ServiceType\"".into() },
            ]
        );
    }

    #[test]
    fn reads_every_kind_and_names_what_it_cannot_keep() {
        let sql = "DROP TABLE IF EXISTS a, s.b CASCADE; TRUNCATE ONLY c;\n\
                   ALTER TABLE t DROP CONSTRAINT IF EXISTS t_chk, ALTER COLUMN x DROP NOT NULL, ALTER y DROP DEFAULT, ALTER COLUMN z TYPE bigint;\n\
                   DROP DOMAIN d; DROP INDEX CONCURRENTLY IF EXISTS i; DROP PROCEDURE p; DROP FUNCTION f(IN a numeric(10,2), text[]);\n\
                   UPDATE t SET x = 1; DROP VIEW v; SELECT 1";
        assert_eq!(
            kinds(sql),
            vec![
                Destroys::Table { table: "\"a\"".into() },
                Destroys::Table { table: "\"s\".\"b\"".into() },
                Destroys::Rows { table: "\"c\"".into() },
                Destroys::Constraint { table: "\"t\"".into(), constraint: "t_chk".into() },
                Destroys::NotNull { table: "\"t\"".into(), column: "x".into() },
                Destroys::Default { table: "\"t\"".into(), column: "y".into() },
                Destroys::Unkept { statement: "ALTER TABLE t DROP CONSTRAINT IF EXISTS t_chk, ALTER COLUMN ...".into(), why: Unkept::TypeChange },
                Destroys::Type { name: "\"d\"".into() },
                Destroys::Index { index: "\"i\"".into() },
                Destroys::Function { name: "\"p\"".into(), args: None },
                Destroys::Function { name: "\"f\"".into(), args: Some(vec!["in a numeric".into(), "text[]".into()]) },
                Destroys::Unkept { statement: "UPDATE t SET x = 1".into(), why: Unkept::DataChange },
                Destroys::Unkept { statement: "DROP VIEW v".into(), why: Unkept::ObjectKind },
            ]
        );
        assert!(destroys("DROP TABLE a CASCADE")[0].cascade);
    }
}
