//! The operations, a file per family: `column` (add, defaults, NOT NULL,
//! drop), `copy` (rename and change type: a new column kept in sync with
//! the old one), `lookup` (a column's values moved to a lookup table) and
//! `raw` (a hand-written phase).

mod column;
mod copy;
mod lookup;

use super::error::ChangeError;
use super::model::{Column, Schema, Table};
use super::plan::Builder;
use super::sql::{comment, slug};
use super::{ColumnRef, Ctx, Operation};
use crate::error::Result;

/// The change's title (`rename accounts.full_name`, the prefix of its
/// phases' names) and slug (`rename_accounts_full_name`, of its files').
pub fn title(_schema: &Schema, op: &Operation) -> (String, String) {
    let named = |verb: &str, short: &str, r: &ColumnRef| {
        let t = match &r.schema {
            Some(s) => format!("{s}.{}.{}", r.table, r.column),
            None => format!("{}.{}", r.table, r.column),
        };
        let mut sl = slug(&format!("{short}_{}_{}", r.table, r.column));
        sl.truncate(48);
        (format!("{verb} {t}"), sl.trim_end_matches('_').to_string())
    };
    match op {
        Operation::AddColumn { column, .. } => named("add", "add", column),
        Operation::RenameColumn { column, .. } => named("rename", "rename", column),
        Operation::ChangeType { column, .. } => named("retype", "retype", column),
        Operation::SetNotNull { column, .. } => named("set-not-null", "not_null", column),
        Operation::DropNotNull { column } => named("drop-not-null", "nullable", column),
        Operation::SetDefault { column, .. } => named("set-default", "default", column),
        Operation::DropDefault { column } => named("drop-default", "no_default", column),
        Operation::DropColumn { column } => named("drop", "drop", column),
        Operation::SplitToLookup { column, .. } => named("split", "lookup", column),
    }
}

/// Writes the operation's phases and probes into `ctx.b`.
pub fn build(ctx: &mut Ctx, op: &Operation) -> Result<()> {
    match op {
        Operation::AddColumn { column, type_sql, default, not_null, fill } => column::add(ctx, column, type_sql, default.as_deref(), *not_null, fill.as_deref()),
        Operation::RenameColumn { column, new_name } => copy::rename(ctx, column, new_name),
        Operation::ChangeType { column, type_sql, up, down, new_name } => copy::change_type(ctx, column, type_sql, up, down, new_name.as_deref()),
        Operation::SetNotNull { column, fill } => column::set_not_null(ctx, column, fill.as_deref()),
        Operation::DropNotNull { column } => column::drop_not_null(ctx, column),
        Operation::SetDefault { column, default } => column::set_default(ctx, column, default),
        Operation::DropDefault { column } => column::drop_default(ctx, column),
        Operation::DropColumn { column } => column::drop_column(ctx, column),
        Operation::SplitToLookup { column, lookup, reference } => lookup::split(ctx, column, lookup, reference.as_deref()),
    }
}

/// Refuses what the operations that move or drop a column cannot carry
/// through: a view reading it (a view cannot follow a column to its new
/// name), a foreign key of another table referencing it, the primary key.
pub(super) fn movable(ctx: &Ctx, t: &Table, c: &Column, what: &str) -> Result<()> {
    let s = ctx.s;
    let unsupported = |why: String| -> crate::error::Error { ChangeError::Unsupported { what: format!("{what} {}", s.show(t, &c.name)), why }.into() };
    if let Some(v) = c.views.first() {
        return Err(unsupported(format!("view {v} reads the column; change or drop the view first (a view cannot follow a column to its replacement)")));
    }
    if let Some(fk) = t.referenced_by.iter().chain(s.tables.iter().flat_map(|x| x.referenced_by.iter())).find(|fk| fk.references.as_ref().is_some_and(|(rt, cols)| rt == &t.name && cols.contains(&c.name))) {
        return Err(unsupported(format!("foreign key {} of {} references it; drop that constraint first", fk.name, s.qname(&fk.table))));
    }
    if t.primary_key.contains(&c.name) {
        return Err(unsupported("it is (part of) the primary key".into()));
    }
    Ok(())
}

/// The single-column primary key a batched backfill walks.
pub(super) fn walk_key<'a>(ctx: &Ctx, t: &'a Table, what: &str) -> Result<&'a Column> {
    t.single_key().ok_or_else(|| {
        ChangeError::Unsupported {
            what: format!("{what} on {}", ctx.s.qname(&t.name)),
            why: "the table has no single-column primary key for the batched backfill to walk".into(),
        }
        .into()
    })
}

/// The placeholders of a hand-written phase: a forward file to write, its
/// rollback (unless irreversible) and a validation file with checks to fill in.
pub fn raw(b: &mut Builder, irreversible: Option<&str>) {
    let name = b.title.clone();
    match irreversible {
        Some(reason) => b.irreversible("raw", format!("{name}: hand-written, irreversible"), reason),
        None => b.phase("raw", format!("{name}: hand-written")),
    };
    let forward = format!(
        "{}SELECT 1;\n",
        comment(&format!("{name}: replace SELECT 1 with the change, and say here why it is safe under live traffic (which locks it takes, for how long). `lint` checks it; `verify` rehearses it."))
    );
    let rollback = irreversible.is_none().then(|| format!("{}SELECT 1;\n", comment(&format!("Undo {name}: restore exactly the schema and rows before it."))));
    let validation = format!(
        "-- check: {name}_applied\n-- description: returns the rows that prove {name} did NOT do its job\nSELECT 1 WHERE false;\n{}",
        if irreversible.is_none() { format!("\n-- check: {name}_reversed\n-- when: after-rollback\n-- description: returns what is left of {name} after its rollback\nSELECT 1 WHERE false;\n") } else { String::new() }
    );
    b.migration("sql", forward, rollback, validation);
}
