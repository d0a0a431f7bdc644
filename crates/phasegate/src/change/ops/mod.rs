//! The operations, a file per family: `column` (add, defaults, NOT NULL,
//! drop), `copy` (rename and change type: a new column kept in sync with
//! the old one), `lookup` (a column's values moved to a lookup table),
//! `constraint` (checks, unique constraints, foreign keys: add, drop,
//! rename), `index` (create and drop), `table` (create, rename, drop) and
//! `raw` (a hand-written phase).

mod column;
mod constraint;
mod copy;
mod index;
mod lookup;
mod table;

use std::cell::RefCell;

use super::error::ChangeError;
use super::model::{Column, Schema, Table};
use super::plan::Builder;
use super::probes::{self, Version};
use super::sql::{comment, map_columns, slug};
use super::{ColumnRef, Ctx, Operation, TableRef};
use crate::error::Result;

/// The change's title (`rename accounts.full_name`, the prefix of its
/// phases' names) and slug (`rename_accounts_full_name`, of its files').
pub fn title(_schema: &Schema, op: &Operation) -> (String, String) {
    let titled = |verb: &str, shown: String, slug_of: String| {
        let mut sl = slug(&slug_of);
        sl.truncate(48);
        (format!("{verb} {shown}"), sl.trim_end_matches('_').to_string())
    };
    let table = |r: &TableRef| r.schema.as_ref().map_or(r.table.clone(), |s| format!("{s}.{}", r.table));
    let named = |verb: &str, short: &str, r: &ColumnRef| {
        let t = match &r.schema {
            Some(s) => format!("{s}.{}.{}", r.table, r.column),
            None => format!("{}.{}", r.table, r.column),
        };
        titled(verb, t, format!("{short}_{}_{}", r.table, r.column))
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
        Operation::AddCheck { table: t, name, .. } => titled("add-check", format!("{} {name}", table(t)), format!("check_{}_{name}", t.table)),
        Operation::AddUnique { columns, .. } => titled("add-unique", format!("{}({})", table(&columns.table), columns.columns.join(", ")), format!("unique_{}_{}", columns.table.table, columns.columns.join("_"))),
        Operation::AddForeignKey { column, .. } => named("add-foreign-key", "fkey", column),
        Operation::CreateIndex { table: t, keys, .. } => {
            // `'(channel, kind)'` as the examples write it, or bare.
            let keys = unwrap_parens(keys);
            titled("create-index", format!("{} ({keys})", table(t)), format!("index_{}_{keys}", t.table))
        }
        Operation::DropIndex { index } => titled("drop-index", table(index), format!("drop_index_{}", index.table)),
        Operation::CreateTable { table: t, .. } => titled("create-table", table(t), format!("create_{}", t.table)),
        Operation::RenameTable { table: t, .. } => titled("rename-table", table(t), format!("rename_table_{}", t.table)),
        Operation::DropTable { table: t } => titled("drop-table", table(t), format!("drop_table_{}", t.table)),
        Operation::DropConstraint { table: t, name } => titled("drop-constraint", format!("{} {name}", table(t)), format!("drop_constraint_{name}")),
        Operation::RenameConstraint { table: t, name, .. } => titled("rename-constraint", format!("{} {name}", table(t)), format!("rename_constraint_{name}")),
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
        Operation::AddCheck { table, name, expr } => constraint::add_check(ctx, table, name, expr),
        Operation::AddUnique { columns, name } => constraint::add_unique(ctx, columns, name.as_deref()),
        Operation::AddForeignKey { column, references, on_delete, name } => constraint::add_foreign_key(ctx, column, references, on_delete.as_deref(), name.as_deref()),
        Operation::DropConstraint { table, name } => constraint::drop(ctx, table, name),
        Operation::RenameConstraint { table, name, new_name } => constraint::rename(ctx, table, name, new_name),
        Operation::CreateIndex { table, keys, unique, predicate, name } => index::create(ctx, table, keys, *unique, predicate.as_deref(), name.as_deref()),
        Operation::DropIndex { index } => index::drop(ctx, index),
        Operation::CreateTable { table, columns } => table::create(ctx, table, columns),
        Operation::RenameTable { table, new_name } => table::rename(ctx, table, new_name),
        Operation::DropTable { table } => table::drop(ctx, table),
    }
}

/// The probes of an operation that leaves the application's statements as
/// they are (a constraint, an index): the same reads and writes of `t` for
/// the old version (from before the change, until `old_until`) and the new
/// one (from `new_from`), the `touched` columns updated to their own values.
/// `t` may be the table as the change leaves it (a unique index added), so
/// that the INSERT's values are distinct where they must be.
pub(super) fn same_probes(ctx: &mut Ctx, t: &Table, touched: &[String], new_from: u32, old_until: Option<u32>) -> Result<()> {
    let s = ctx.s;
    let sample = probes::sample(ctx.client, s, t)?;
    let insert = probes::insert_values(ctx.client, &mut ctx.b, s, t, sample.as_ref())?;
    let key = sample.as_ref().map(|x| x.key.clone()).unwrap_or_default();
    let set: Vec<(String, String)> = match &sample {
        Some(x) => touched.iter().filter(|c| !t.primary_key.contains(c)).filter_map(|c| t.find_column(c)).filter(|c| !c.generated && c.identity.is_none()).map(|c| (c.name.clone(), probes::literal(c, x.values.get(&c.name).cloned().flatten().as_deref()))).collect(),
        None => Vec::new(),
    };
    let all: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
    let stmts = probes::statements(s, t, &key, &all, insert.as_deref(), &set);
    let before = ctx.b.before;
    probes::add(&mut ctx.b, ctx.client, Version::Old, stmts.clone(), before, old_until)?;
    probes::add(&mut ctx.b, ctx.client, Version::New, stmts, new_from, None)
}

/// The columns of `t` that `expr` (SQL over the row) names.
pub(super) fn columns_in(t: &Table, expr: &str) -> Vec<String> {
    let found = RefCell::new(Vec::<String>::new());
    map_columns(expr, |n| {
        if t.find_column(n).is_some() && !found.borrow().iter().any(|f| f == n) {
            found.borrow_mut().push(n.to_string());
        }
        None
    });
    found.into_inner()
}

/// `(a, b)` as `a, b`: the outer parentheses of a list, when they enclose all of it.
pub(super) fn unwrap_parens(list: &str) -> &str {
    let l = list.trim();
    if !(l.starts_with('(') && l.ends_with(')')) {
        return l;
    }
    let mut depth = 0;
    for lx in crate::sqltext::lex(l) {
        match lx.token {
            crate::sqltext::Token::Punct('(') => depth += 1,
            crate::sqltext::Token::Punct(')') => {
                depth -= 1;
                if depth == 0 && lx.end != l.len() {
                    return l;
                }
            }
            _ => {}
        }
    }
    l[1..l.len() - 1].trim()
}

/// A name the operator gives a new relation or constraint: refused when taken.
pub(super) fn free_name(ctx: &mut Ctx, what: &'static str, name: &str, t: Option<&Table>) -> Result<String> {
    if name.is_empty() {
        return Err(ChangeError::BadArgument(format!("a {what} name cannot be empty")).into());
    }
    if ctx.taken.contains(name) {
        return Err(ChangeError::NameTaken { what, name: name.to_string(), table: t.map(|t| ctx.s.qname(&t.name)) }.into());
    }
    ctx.taken.insert(name.to_string());
    Ok(name.to_string())
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

/// The single-column primary key a batched backfill walks. Without one
/// the error says what the table has instead and the way that is left: a
/// hand-written phase (`change raw`), whose walk the author chooses.
pub(super) fn walk_key<'a>(ctx: &Ctx, t: &'a Table, what: &str) -> Result<&'a Column> {
    t.single_key().ok_or_else(|| {
        let has = match t.primary_key.as_slice() {
            [] => "it has no primary key".to_string(),
            cols => format!("its primary key is ({})", cols.iter().map(|c| ctx.s.ident(c)).collect::<Vec<_>>().join(", ")),
        };
        ChangeError::Unsupported {
            what: format!("{what} on {}", ctx.s.qname(&t.name)),
            why: format!("the batched backfill walks a single-column primary key, and {has}; write this backfill by hand in a phase of its own (`change raw`)"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::{ColumnsRef, TableRef};
    use proptest::prelude::*;

    #[test]
    fn tables_and_column_lists_parse() {
        assert_eq!(TableRef::parse("billing.\"Odd.T\"").unwrap(), TableRef { schema: Some("billing".into()), table: "Odd.T".into() });
        assert!(TableRef::parse("a.b.c").is_err() && TableRef::parse("").is_err());
        let c = ColumnsRef::parse("orders.account_id,\"Kind,x\"").unwrap();
        assert_eq!((c.table.table.as_str(), c.columns), ("orders", vec!["account_id".to_string(), "Kind,x".to_string()]));
        assert!(ColumnsRef::parse("orders.a,b.c").is_err());
        assert_eq!(unwrap_parens(" (a, lower(b)) "), "a, lower(b)");
        assert_eq!(unwrap_parens("(a) + (b)"), "(a) + (b)");
        assert_eq!(unwrap_parens("lower(b)"), "lower(b)");
    }

    proptest! {
        /// No text makes the table, column-list or parenthesis parsers panic.
        #[test]
        fn parsers_of_table_arguments_never_panic(any in "\\PC{0,60}") {
            let _ = TableRef::parse(&any);
            let _ = ColumnsRef::parse(&any);
            let _ = unwrap_parens(&any);
        }
    }
}
