//! `change` (docs/changes.md): a whole zero-downtime change written into
//! the set as plain SQL files, from one operation (`rename-column
//! accounts.full_name display_name`). The change learns the schema it is
//! written against by applying the set to a disposable database (or from a
//! live database that applied all of it), refuses bad input with one line
//! (an unknown name with the closest existing one, a name taken, an
//! operation that makes no sense, an expression that fails on a row,
//! naming the row), and appends phases named after the change, numbered
//! after the set's last phase and version: the additive phase with its
//! two-way sync trigger, the batched backfill, the switch (constraints NOT
//! VALID then validated, unique indexes built CONCURRENTLY and attached,
//! NOT NULL through a validated CHECK) and the irreversible cleanup, each
//! migration with its rollback and validations, only the phases the
//! operation needs; and the probe files of the old and new application
//! versions with the phases each must work in (docs/probes.md).
//!
//! Files: `model` reads the schema, `learn` gets the database and asks it
//! questions, `sql` and `checks` write SQL and validations, `shapes` holds
//! the building blocks, `ops` one file per group of operations, `probes`
//! the application statements, `plan` the phases being built, `write` puts
//! them into the set.

mod checks;
/// The change's errors live beside the engine's (`error/change.rs`), which wraps them.
mod error {
    pub use crate::error::change::*;
}
mod learn;
mod model;
mod ops;
mod plan;
mod probes;
mod shapes;
mod sql;
mod write;

use std::collections::HashSet;

use postgres::Client;

pub use error::ChangeError;
pub use learn::Source;
pub use plan::{Change, NewMigration, NewPhase, NewProbe};
pub use write::{files, render, write, Written};

use crate::error::Result;
use crate::set::MigrationSet;
use model::{Column, Schema, Table};
use plan::Builder;

/// A column as the operator names it: `table.column` or `schema.table.column`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnRef {
    pub schema: Option<String>,
    pub table: String,
    pub column: String,
}

impl ColumnRef {
    /// Parses `T.C` or `S.T.C` (a part may be double-quoted: `"Odd.Name".c`).
    pub fn parse(s: &str) -> Result<ColumnRef> {
        let parts = split_dotted(s);
        let bad = || ChangeError::BadArgument(format!("`{s}` is not TABLE.COLUMN (or SCHEMA.TABLE.COLUMN)"));
        match parts.as_slice() {
            [t, c] if !t.is_empty() && !c.is_empty() => Ok(ColumnRef { schema: None, table: t.clone(), column: c.clone() }),
            [sc, t, c] if !sc.is_empty() && !t.is_empty() && !c.is_empty() => Ok(ColumnRef { schema: Some(sc.clone()), table: t.clone(), column: c.clone() }),
            _ => Err(bad().into()),
        }
    }
}

/// A table as the operator names it: `table` or `schema.table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    pub schema: Option<String>,
    pub table: String,
}

impl TableRef {
    /// Parses `T` or `S.T` (a part may be double-quoted).
    pub fn parse(s: &str) -> Result<TableRef> {
        let parts = split_dotted(s);
        match parts.as_slice() {
            [t] if !t.is_empty() => Ok(TableRef { schema: None, table: t.clone() }),
            [sc, t] if !sc.is_empty() && !t.is_empty() => Ok(TableRef { schema: Some(sc.clone()), table: t.clone() }),
            _ => Err(ChangeError::BadArgument(format!("`{s}` is not TABLE (or SCHEMA.TABLE)")).into()),
        }
    }
}

/// Columns of one table as the operator names them: `T.C` or `T.C,D,...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnsRef {
    pub table: TableRef,
    pub columns: Vec<String>,
}

impl ColumnsRef {
    /// Parses `T.C[,C...]` (or `S.T.C[,C...]`); commas inside double quotes are part of a name.
    pub fn parse(s: &str) -> Result<ColumnsRef> {
        let items = split_commas(s);
        let first = ColumnRef::parse(&items[0])?;
        let mut columns = vec![first.column];
        for item in &items[1..] {
            match split_dotted(item).as_slice() {
                [c] if !c.is_empty() => columns.push(c.clone()),
                _ => return Err(ChangeError::BadArgument(format!("`{s}` is not TABLE.COLUMN[,COLUMN...]")).into()),
            }
        }
        Ok(ColumnsRef { table: TableRef { schema: first.schema, table: first.table }, columns })
    }
}

/// `a,"b,c",d` as `[a, "b,c", d]` (quotes kept).
fn split_commas(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                out.last_mut().expect("one part").push(c);
            }
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().expect("one part").push(c),
        }
    }
    out
}

/// `a."b.c".d` as `[a, b.c, d]`.
fn split_dotted(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = s.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().expect("one part").push('"');
            }
            '"' => quoted = !quoted,
            '.' if !quoted => out.push(String::new()),
            c => out.last_mut().expect("one part").push(c),
        }
    }
    out
}

/// One operation of `change`, as the command line gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// A new column; `fill` gives existing rows (and rows the old
    /// application writes) a value computed from the row.
    AddColumn { column: ColumnRef, type_sql: String, default: Option<String>, not_null: bool, fill: Option<String> },
    RenameColumn { column: ColumnRef, new_name: String },
    /// A new type through a new column (`new_name`, by default the column's
    /// name and the type's), `up` and `down` in terms of the column's name.
    ChangeType { column: ColumnRef, type_sql: String, up: String, down: String, new_name: Option<String> },
    SetNotNull { column: ColumnRef, fill: Option<String> },
    DropNotNull { column: ColumnRef },
    SetDefault { column: ColumnRef, default: String },
    DropDefault { column: ColumnRef },
    DropColumn { column: ColumnRef },
    /// The column's values move to a lookup table (`id`, `code`) and the
    /// column becomes a reference to it (`reference`, by default
    /// `<column>Id` or `<column>_id` after the table's naming).
    SplitToLookup { column: ColumnRef, lookup: String, reference: Option<String> },
    /// A check constraint `name` (`expr` over the row), added NOT VALID and validated.
    AddCheck { table: TableRef, name: String, expr: String },
    /// A unique constraint (`name`, by default `<table>_<columns>_key`)
    /// through a unique index built CONCURRENTLY.
    AddUnique { columns: ColumnsRef, name: Option<String> },
    /// A foreign key `column` -> `references` (`on_delete`: `cascade`, ...).
    AddForeignKey { column: ColumnRef, references: ColumnRef, on_delete: Option<String>, name: Option<String> },
    /// An index over `keys` (the SQL of its key list: `email, lower(name)`).
    CreateIndex { table: TableRef, keys: String, unique: bool, predicate: Option<String>, name: Option<String> },
    DropIndex { index: TableRef },
    /// A new table; `columns` is the SQL of its column list.
    CreateTable { table: TableRef, columns: String },
    RenameTable { table: TableRef, new_name: String },
    DropTable { table: TableRef },
    DropConstraint { table: TableRef, name: String },
    RenameConstraint { table: TableRef, name: String, new_name: String },
}

/// What to generate and how.
#[derive(Debug, Clone)]
pub struct Request {
    pub operation: Operation,
    /// Rows per batch of the generated backfills.
    pub batch: u64,
}

/// What an operation is written with: the schema, the database it was
/// read from (for the questions the change asks the data), and the phases
/// being built.
pub(crate) struct Ctx<'a> {
    pub s: &'a Schema,
    pub client: &'a mut Client,
    pub b: Builder,
    /// Names generated objects must not take.
    pub taken: HashSet<String>,
    pub batch: u64,
    described: String,
}

impl<'a> Ctx<'a> {
    /// The table `r` names, or an error naming the closest one.
    pub fn table(&self, schema: Option<&str>, table: &str) -> Result<&'a Table> {
        let s = self.s;
        let exact = |t: &&Table| t.name.name == table && schema.is_none_or(|sc| sc == t.name.schema);
        let found: Vec<&Table> = s.tables.iter().filter(exact).collect();
        let pick = match found.as_slice() {
            [one] => Some(*one),
            [] => None,
            many => many.iter().find(|t| t.name.schema == s.current_schema).copied(),
        };
        pick.ok_or_else(|| {
            let names: Vec<String> = s.tables.iter().map(|t| s.qname(&t.name)).collect();
            let wanted = schema.map(|sc| format!("{sc}.{table}")).unwrap_or_else(|| table.to_string());
            ChangeError::UnknownTable { closest: error::closest(&wanted, names.iter().map(String::as_str)), table: wanted, within: self.described.clone() }.into()
        })
    }

    /// The table `r` names (see [`Ctx::table`]).
    pub fn table_ref(&self, r: &TableRef) -> Result<&'a Table> {
        self.table(r.schema.as_deref(), &r.table)
    }

    /// The table and column `r` names.
    pub fn column(&self, r: &ColumnRef) -> Result<(&'a Table, &'a Column)> {
        let t = self.table(r.schema.as_deref(), &r.table)?;
        let c = t.find_column(&r.column).ok_or_else(|| ChangeError::UnknownColumn {
            table: self.s.qname(&t.name),
            column: r.column.clone(),
            closest: error::closest(&r.column, t.columns.iter().map(|c| c.name.as_str())),
        })?;
        Ok((t, c))
    }

    /// A name the change would give a new column of `t`: refused when taken.
    pub fn free_column(&self, t: &Table, name: &str) -> Result<()> {
        if name.is_empty() {
            return Err(ChangeError::BadArgument("a column name cannot be empty".into()).into());
        }
        if t.find_column(name).is_some() {
            return Err(ChangeError::NameTaken { what: "column", name: name.to_string(), table: Some(self.s.qname(&t.name)) }.into());
        }
        Ok(())
    }
}

/// Writes the change `request` asks for against the schema `source`
/// yields for `set`; nothing is written to the set (see [`write`]).
pub fn generate(set: &MigrationSet, source: Source, request: &Request) -> Result<Change> {
    let live = matches!(source, Source::Live { .. });
    let mut learned = learn::learn(set, source)?;
    let learn::Learned { client, schema, described, .. } = &mut learned;
    if schema.server_version < 120000 {
        return Err(ChangeError::Unsupported {
            what: format!("PostgreSQL {}", schema.server_version / 10000),
            why: "the generated SQL needs PostgreSQL 12 or later (SET NOT NULL proven by a validated CHECK, catalog-only defaults)".into(),
        }
        .into());
    }
    let (title, slug) = ops::title(schema, &request.operation);
    let before = set.phases.last().map_or(0, |p| p.id);
    let last_version = set.steps().map(|s| s.version).max().unwrap_or(0);
    let mut ctx = Ctx { s: schema, client, b: Builder::new(title, slug, before, last_version), taken: schema.taken_names(), batch: request.batch.max(1), described: described.clone() };
    ops::build(&mut ctx, &request.operation)?;
    // The probes' rows came from the live database; verify runs them on
    // the set's seed, and without one their writes name rows it lacks.
    if live && !ctx.b.probes_empty() && set.seed().is_none_or(|s| s.files.is_empty()) {
        ctx.b.note("the probes' values come from rows of the live database, but the set has no seed: verify runs the probes on an empty database, where their writes fail on the rows they reference (add seed/*.sql and [seed] in phases.toml)");
    }
    // The application as deployed now is this change's old version; one
    // declared earlier without an end is no newer, so it ends there too
    // (else verify finds it broken once this change drops what it reads).
    let mut closes = Vec::new();
    if let Some(end) = ctx.b.old_version_ends() {
        for p in set.probes.iter().filter(|p| p.until.is_none()) {
            ctx.b.note(format!("{}: until = {end} in phases.toml: an application version declared before this change is gone once its old version is (after phase {end})", p.name));
            closes.push((p.name.clone(), end));
        }
    }
    let mut change = ctx.b.finish();
    change.closes = closes;
    Ok(change)
}

/// A phase of its own for hand-written SQL (as `new`, but a phase of its
/// own after the set's last one): placeholders to replace, a rollback
/// unless `irreversible` gives the reason there is none, and a validation
/// file whose checks must be written.
pub fn raw(set: &MigrationSet, name: &str, irreversible: Option<&str>) -> Result<Change> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(ChangeError::BadArgument(format!("change name `{name}` must be snake_case (a-z, 0-9, _)")).into());
    }
    let before = set.phases.last().map_or(0, |p| p.id);
    let last_version = set.steps().map(|s| s.version).max().unwrap_or(0);
    let mut b = Builder::new(name.to_string(), name.to_string(), before, last_version);
    ops::raw(&mut b, irreversible);
    Ok(b.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any table and column name, double-quoted as SQL writes it,
        /// comes back as it was; no input makes the parser panic.
        #[test]
        fn quoted_column_references_parse_back(t in "\\PC{1,16}", c in "\\PC{1,16}", junk in "\\PC{0,40}") {
            let quoted = |x: &str| format!("\"{}\"", x.replace('"', "\"\""));
            let r = ColumnRef::parse(&format!("{}.{}", quoted(&t), quoted(&c))).unwrap();
            prop_assert_eq!((r.schema, r.table, r.column), (None, t, c));
            let _ = ColumnRef::parse(&junk);
        }

        /// Renaming a column to its own (bare) name changes no text
        /// without quoted names; no text makes the lexer-based rewrite panic.
        #[test]
        fn renaming_a_column_to_itself_changes_nothing(expr in "[^\"]{0,60}", any in "\\PC{0,60}") {
            prop_assert_eq!(sql::replace_column(&expr, "amount", "amount"), expr.clone());
            let _ = sql::map_columns(&any, |n| Some(format!("NEW.{n}")));
        }
    }

    #[test]
    fn column_references_parse_with_or_without_a_schema() {
        let r = ColumnRef::parse("accounts.full_name").unwrap();
        assert_eq!((r.schema, r.table.as_str(), r.column.as_str()), (None, "accounts", "full_name"));
        let r = ColumnRef::parse("billing.\"Odd.Table\".amount").unwrap();
        assert_eq!((r.schema.as_deref(), r.table.as_str(), r.column.as_str()), (Some("billing"), "Odd.Table", "amount"));
        assert!(ColumnRef::parse("accounts").is_err());
        assert!(ColumnRef::parse("accounts.").is_err());
        assert_eq!(ColumnRef::parse("a.b.c.d").unwrap_err().to_string(), "`a.b.c.d` is not TABLE.COLUMN (or SCHEMA.TABLE.COLUMN)");
    }
}
