//! Constraints: `add-check` and `add-foreign-key` (added NOT VALID, then
//! validated in a migration of their own), `add-unique` (a unique index
//! built CONCURRENTLY, then attached as the constraint), `drop-constraint`
//! (loosened in steps its rollback can retrace without a scan under an
//! exclusive lock) and `rename-constraint` (catalog-only).

use super::super::checks;
use super::super::error::Input;
use super::super::learn;
use super::super::model::{Constraint, ConstraintKind, Index, Table};
use super::super::shapes::{self, Deferred, NewIndex};
use super::super::sql::{comment, fresh_name, Checks, Moment};
use super::super::{error, ChangeError, ColumnRef, ColumnsRef, Ctx, TableRef};
use super::{columns_in, free_name, same_probes};
use crate::error::Result;

/// The ON DELETE actions a foreign key takes.
const ACTIONS: &[&str] = &["no action", "restrict", "cascade", "set null", "set default"];

pub fn add_check(ctx: &mut Ctx, tr: &TableRef, name: &str, expr: &str) -> Result<()> {
    let t = ctx.table_ref(tr)?;
    let s = ctx.s;
    let name = free_name(ctx, "constraint", name, Some(t))?;
    let table = s.qname(&t.name);
    // A constraint's expression, as PostgreSQL accepts it (no subquery, ...), on a copy of the table's columns.
    learn::try_ddl(ctx.client, &format!("CREATE TEMP TABLE phasegate_like (LIKE {table}) ON COMMIT DROP;\nALTER TABLE phasegate_like ADD CHECK ({expr})"), Input::Check, expr, |_| Ok(()))?;
    let q = format!("SELECT {} FROM {table} AS t WHERE NOT ({expr}) LIMIT 1", learn::key_text_sql(s, t, "t"));
    if let Some(row) = learn::first_row(ctx.client, &q, Input::Check, expr)? {
        let key = row.into_iter().next().flatten().unwrap_or_default();
        return Err(ChangeError::DataDoesNotFit { input: Input::Check, expr: expr.to_string(), table, key, failure: "is false", message: String::new() }.into());
    }
    let id = ctx.b.phase("constraint", format!("CHECK ({expr}) on {table} as {name}: added NOT VALID, then validated"));
    shapes::switch(ctx, t, vec![Deferred { name, definition: format!("CHECK ({expr})"), validate: true }], vec![], vec![], None);
    same_probes(ctx, t, &columns_in(t, expr), id, None)
}

/// The columns `r` names on its table, each checked.
fn columns<'a>(ctx: &Ctx<'a>, r: &ColumnsRef) -> Result<(&'a Table, Vec<String>)> {
    let t = ctx.table_ref(&r.table)?;
    let mut out: Vec<String> = Vec::new();
    for c in &r.columns {
        let cr = ColumnRef { schema: r.table.schema.clone(), table: r.table.table.clone(), column: c.clone() };
        let (_, col) = ctx.column(&cr)?;
        if out.contains(&col.name) {
            return Err(ChangeError::BadArgument(format!("column `{c}` is named twice")).into());
        }
        out.push(col.name.clone());
    }
    Ok((t, out))
}

/// Refuses keys (SQL over the row, `WHERE` `predicate`) that rows of `t`
/// hold more than once (NULLs are distinct), naming the first rows.
pub(super) fn no_duplicates(ctx: &mut Ctx, t: &Table, keys: &[String], predicate: Option<&str>, input: Input, shown: &str) -> Result<()> {
    let s = ctx.s;
    let list = keys.iter().enumerate().map(|(i, k)| format!("({k}) AS phasegate_g{i}")).collect::<Vec<_>>().join(", ");
    let groups = (0..keys.len()).map(|i| format!("phasegate_g{i}")).collect::<Vec<_>>().join(", ");
    let not_null = keys.iter().map(|k| format!("({k}) IS NOT NULL")).collect::<Vec<_>>().join(" AND ");
    let pred = predicate.map(|p| format!(" AND ({p})")).unwrap_or_default();
    let q = format!(
        "SELECT array_to_string((array_agg(k ORDER BY k))[1:3], ', ')\nFROM (SELECT {} AS k, {list} FROM {} AS t WHERE {not_null}{pred}) AS d\nGROUP BY {groups}\nHAVING count(*) > 1\nLIMIT 1",
        learn::key_text_sql(s, t, "t"),
        s.qname(&t.name),
    );
    if let Some(row) = learn::first_row(ctx.client, &q, input, shown)? {
        return Err(ChangeError::Duplicates { table: s.qname(&t.name), columns: format!("({})", shown), keys: row.into_iter().next().flatten().unwrap_or_default() }.into());
    }
    Ok(())
}

/// `t` as it is once a unique index over `columns` exists: the probes'
/// INSERT then makes one of them distinct.
pub(super) fn with_unique(t: &Table, name: &str, columns: Vec<String>) -> Table {
    let mut out = t.clone();
    out.indexes.push(Index { name: name.to_string(), unique: true, primary: false, valid: true, constraint: None, definition: String::new(), columns });
    out
}

pub fn add_unique(ctx: &mut Ctx, r: &ColumnsRef, name: Option<&str>) -> Result<()> {
    let (t, cols) = columns(ctx, r)?;
    let s = ctx.s;
    let shown = format!("{}({})", s.qname(&t.name), cols.join(", "));
    if let Some(i) = t.indexes.iter().find(|i| i.unique && i.valid && i.columns == cols && !i.definition.contains(" WHERE ") && !i.definition.contains("((")) {
        return Err(ChangeError::Pointless { what: format!("add-unique {shown}"), why: format!("index {} makes these columns unique already", i.name) }.into());
    }
    let name = match name {
        Some(n) => free_name(ctx, "relation", n, None)?,
        None => fresh_name(&[&t.name.name, &cols.join("_"), "key"], &mut ctx.taken),
    };
    let idents: Vec<String> = cols.iter().map(|c| s.ident(c)).collect();
    no_duplicates(ctx, t, &idents, None, Input::Keys, &idents.join(", "))?;
    let id = ctx.b.phase("unique", format!("{shown} unique as {name}: the index built CONCURRENTLY, then attached as the constraint"));
    let create = format!("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} ({})", s.ident(&name), s.qname(&t.name), idents.join(", "));
    shapes::switch(ctx, t, vec![], vec![], vec![NewIndex { name: name.clone(), create, unique_constraint: true }], None);
    let after = with_unique(t, &name, cols.clone());
    same_probes(ctx, &after, &cols, id, None)
}

pub fn add_foreign_key(ctx: &mut Ctx, r: &ColumnRef, to: &ColumnRef, on_delete: Option<&str>, name: Option<&str>) -> Result<()> {
    let (t, c) = ctx.column(r)?;
    let (rt, rc) = ctx.column(to)?;
    let s = ctx.s;
    let what = format!("add-foreign-key {}", s.show(t, &c.name));
    let action = match on_delete.map(|a| a.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()) {
        Some(a) if ACTIONS.contains(&a.as_str()) => Some(a),
        Some(_) => return Err(ChangeError::BadExpression { input: Input::OnDelete, expr: on_delete.unwrap_or_default().to_string(), message: format!("expected one of: {}", ACTIONS.join(", ")) }.into()),
        None => None,
    };
    if action.as_deref() == Some("set null") && c.not_null {
        return Err(ChangeError::Pointless { what, why: "ON DELETE SET NULL on a NOT NULL column would fail every delete it applies to".into() }.into());
    }
    if !rt.indexes.iter().any(|i| i.unique && i.valid && i.columns == [rc.name.clone()] && !i.definition.contains(" WHERE ")) {
        return Err(ChangeError::Unsupported { what, why: format!("{} is neither a primary key nor a unique column: a foreign key must reference one (add-unique it first)", s.show(rt, &rc.name)) }.into());
    }
    if let Some(k) = t.constraints.iter().find(|k| k.kind == ConstraintKind::ForeignKey && k.columns == [c.name.clone()] && k.references.as_ref().is_some_and(|(q, cs)| q == &rt.name && cs.as_slice() == std::slice::from_ref(&rc.name))) {
        return Err(ChangeError::Pointless { what, why: format!("foreign key {} does this already", k.name) }.into());
    }
    let (table, col, target, tcol) = (s.qname(&t.name), s.ident(&c.name), s.qname(&rt.name), s.ident(&rc.name));
    let shown = format!("{} -> {}", s.show(t, &c.name), s.show(rt, &rc.name));
    let q = format!(
        "SELECT {}, t.{col}::text FROM {table} AS t\nWHERE t.{col} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {target} AS r WHERE r.{tcol} = t.{col})\nLIMIT 1",
        learn::key_text_sql(s, t, "t")
    );
    if let Some(row) = learn::first_row(ctx.client, &q, Input::Keys, &shown)? {
        let mut row = row.into_iter();
        let (key, value) = (row.next().flatten().unwrap_or_default(), row.next().flatten().unwrap_or_default());
        return Err(ChangeError::Orphan { table, key, column: c.name.clone(), value, target: s.show(rt, &rc.name) }.into());
    }
    let name = match name {
        Some(n) => free_name(ctx, "constraint", n, Some(t))?,
        None => fresh_name(&[&t.name.name, &c.name, "fkey"], &mut ctx.taken),
    };
    let definition = format!("FOREIGN KEY ({col}) REFERENCES {target} ({tcol}){}", action.map(|a| format!(" ON DELETE {}", a.to_uppercase())).unwrap_or_default());
    // An index on the referencing column, so that deletes in the referenced table do not scan this one.
    let mut indexes = Vec::new();
    if !t.indexes.iter().any(|i| i.valid && i.columns.first() == Some(&c.name)) {
        let ix = fresh_name(&[&t.name.name, &c.name, "idx"], &mut ctx.taken);
        indexes.push(NewIndex { create: format!("CREATE INDEX CONCURRENTLY IF NOT EXISTS {ix} ON {table} ({col})"), name: ix, unique_constraint: false });
    }
    let id = ctx.b.phase("constraint", format!("{shown} as {name}: added NOT VALID{}, then validated", if indexes.is_empty() { "" } else { ", the column indexed CONCURRENTLY" }));
    shapes::switch(ctx, t, vec![Deferred { name, definition, validate: true }], vec![], indexes, None);
    same_probes(ctx, t, std::slice::from_ref(&c.name), id, None)
}

/// The constraint `name` of `t`, or an error naming the closest.
fn find<'a>(ctx: &Ctx, t: &'a Table, name: &str) -> Result<&'a Constraint> {
    t.constraints.iter().find(|k| k.name == name).ok_or_else(|| {
        ChangeError::UnknownObject { what: "constraint", name: name.to_string(), place: format!("on {}", ctx.s.qname(&t.name)), closest: error::closest(name, t.constraints.iter().map(|k| k.name.as_str())) }.into()
    })
}

/// The rows of `t` that break constraint `k` (a check or a foreign key).
fn breaking(ctx: &Ctx, t: &Table, k: &Constraint) -> String {
    let s = ctx.s;
    let table = s.qname(&t.name);
    let cond = match (&k.kind, &k.references) {
        (ConstraintKind::ForeignKey, Some((rt, rcols))) => {
            let pairs = k.columns.iter().zip(rcols).map(|(c, r)| format!("r.{} = {table}.{}", s.ident(r), s.ident(c))).collect::<Vec<_>>().join(" AND ");
            let set = k.columns.iter().map(|c| format!("{table}.{} IS NOT NULL", s.ident(c))).collect::<Vec<_>>().join(" AND ");
            format!("{set} AND NOT EXISTS (SELECT 1 FROM {} AS r WHERE {pairs})", s.qname(rt))
        }
        _ => format!("NOT {}", core(&k.definition).trim_start_matches("CHECK ")),
    };
    let shown: Vec<String> = k.columns.iter().map(|c| s.ident(c)).collect();
    let keys: Vec<String> = t.primary_key.iter().map(|c| s.ident(c)).chain(shown).collect();
    format!("SELECT {}\nFROM {table}\nWHERE {cond}", if keys.is_empty() { "*".to_string() } else { keys.join(", ") })
}

/// A constraint's definition without its NOT VALID.
fn core(definition: &str) -> &str {
    definition.trim_end().trim_end_matches("NOT VALID").trim_end()
}

pub fn drop(ctx: &mut Ctx, tr: &TableRef, name: &str) -> Result<()> {
    let t = ctx.table_ref(tr)?;
    let k = find(ctx, t, name)?;
    let s = ctx.s;
    let what = format!("drop-constraint {} {name}", s.qname(&t.name));
    match k.kind {
        ConstraintKind::PrimaryKey | ConstraintKind::Exclusion => return Err(ChangeError::Unsupported { what, why: "change drops checks, unique constraints and foreign keys; a primary key or an exclusion constraint is for a hand-written phase (`change raw`)".into() }.into()),
        _ => {}
    }
    if let Some(fk) = s.tables.iter().flat_map(|x| x.constraints.iter()).find(|fk| k.kind == ConstraintKind::Unique && fk.kind == ConstraintKind::ForeignKey && fk.references.as_ref().is_some_and(|(q, cs)| q == &t.name && *cs == k.columns)) {
        return Err(ChangeError::Unsupported { what, why: format!("foreign key {} of {} depends on its index; drop that constraint first", fk.name, s.qname(&fk.table)) }.into());
    }
    let (table, kq) = (s.qname(&t.name), s.ident(&k.name));
    let ignore = format!("-- squawk-ignore ban-drop-constraint -- reversible: the rollback adds {} back\n", k.name);
    let id = ctx.b.phase("drop", format!("drop {} {} of {table}", kind_word(k.kind), k.name));
    if k.kind == ConstraintKind::Unique {
        let ix = t.indexes.iter().find(|i| i.constraint.as_deref() == Some(k.name.as_str())).map(|i| i.definition.clone()).unwrap_or_default();
        let fwd = format!("{}{ignore}ALTER TABLE {table} DROP CONSTRAINT {kq};\n", comment(&format!("{}: catalog-only, ACCESS EXCLUSIVE for an instant; its index goes with it. The next migration's rollback rebuilds the index CONCURRENTLY, and this one's rollback attaches it again.", ctx.b.title)));
        let rb = format!("{}ALTER TABLE {table} ADD CONSTRAINT {kq} UNIQUE USING INDEX {kq};\n", comment("Undo: the index the next migration's rollback rebuilt becomes the constraint again (catalog-only)."));
        let mut v = Checks::default();
        checks::constraint_absent(&mut v, s, t, &k.name, Moment::AfterMigrate, "constraint_dropped");
        checks::constraint_present(&mut v, s, t, &k.name, true, Moment::AfterRollback, "constraint_back");
        ctx.b.migration("drop_constraint", fwd, Some(rb), v.finish());
        let create = ix.replacen(&format!("INDEX {kq} ON"), &format!("INDEX CONCURRENTLY IF NOT EXISTS {kq} ON"), 1);
        let fwd = format!("-- phasegate: no-transaction\n{}DROP INDEX CONCURRENTLY IF EXISTS {kq};\n", comment("The index went with the constraint: nothing is left to drop. This migration is here for its rollback, which rebuilds the index without blocking writes (CONCURRENTLY, outside a transaction) before the previous migration's rollback attaches it."));
        let rb = format!("-- phasegate: no-transaction\n{}{create};\n", comment("Undo: rebuild the unique index without blocking writes; rows written meanwhile that break it make the build fail (the check before the rollback lists them)."));
        let mut v = Checks::default();
        checks::index_absent(&mut v, s, t, &k.name, Moment::AfterMigrate, "index_dropped");
        let cols: Vec<String> = k.columns.iter().map(|c| s.ident(c)).collect();
        let list = cols.join(", ");
        v.assert("no_duplicates", Moment::BeforeRollback, &format!("rows of {table} holding the same ({list}): the unique index cannot come back while they exist"), &format!("SELECT {list}, count(*) AS rows\nFROM {table}\nWHERE {}\nGROUP BY {list}\nHAVING count(*) > 1", cols.iter().map(|c| format!("{c} IS NOT NULL")).collect::<Vec<_>>().join(" AND ")));
        checks::index_valid(&mut v, s, t, &k.name, Moment::AfterRollback, "index_back");
        ctx.b.migration("drop_index", fwd, Some(rb), v.finish());
    } else {
        let def = core(&k.definition).to_string();
        if k.validated {
            let fwd = format!(
                "{}{ignore}ALTER TABLE {table} DROP CONSTRAINT {kq};\nALTER TABLE {table}\n  ADD CONSTRAINT {kq} {def} NOT VALID;\n",
                comment(&format!("{}: the constraint becomes NOT VALID (catalog-only, both statements): writes are still checked until the next migration drops it, and the rollback can validate it again under SHARE UPDATE EXCLUSIVE instead of adding it back with a scan under an exclusive lock.", ctx.b.title))
            );
            let rb = format!("{}ALTER TABLE {table} VALIDATE CONSTRAINT {kq};\n", comment("Undo: validate it again; the scan takes SHARE UPDATE EXCLUSIVE, so writes go on."));
            let mut v = Checks::default();
            v.push(checks::constraint_exists(s, t, &k.name, false, "constraint_still_checked").until_next_migration());
            v.assert("no_breaking_rows", Moment::BeforeRollback, &format!("rows that break {}: it cannot be validated again while they exist", k.name), &breaking(ctx, t, k));
            checks::constraint_present(&mut v, s, t, &k.name, true, Moment::AfterRollback, "constraint_validated");
            ctx.b.migration("unvalidate", fwd, Some(rb), v.finish());
        }
        let fwd = format!("{}{ignore}ALTER TABLE {table} DROP CONSTRAINT {kq};\n", comment(&format!("{}: from now on writes are no longer checked against {} (catalog-only, ACCESS EXCLUSIVE for an instant).", ctx.b.title, k.name)));
        let rb = format!("{}ALTER TABLE {table}\n  ADD CONSTRAINT {kq} {def} NOT VALID;\n", comment("Undo: check writes again, NOT VALID (catalog-only, reads no rows)."));
        let mut v = Checks::default();
        checks::constraint_absent(&mut v, s, t, &k.name, Moment::AfterMigrate, "constraint_dropped");
        checks::constraint_present(&mut v, s, t, &k.name, false, Moment::AfterRollback, "constraint_back");
        ctx.b.migration("drop_constraint", fwd, Some(rb), v.finish());
    }
    same_probes(ctx, t, &k.columns, id, None)
}

fn kind_word(k: ConstraintKind) -> &'static str {
    match k {
        ConstraintKind::Check => "check",
        ConstraintKind::Unique => "unique constraint",
        ConstraintKind::ForeignKey => "foreign key",
        ConstraintKind::PrimaryKey => "primary key",
        ConstraintKind::Exclusion => "exclusion constraint",
    }
}

pub fn rename(ctx: &mut Ctx, tr: &TableRef, name: &str, new_name: &str) -> Result<()> {
    let t = ctx.table_ref(tr)?;
    let k = find(ctx, t, name)?;
    let s = ctx.s;
    let new_name = free_name(ctx, "constraint", new_name, Some(t))?;
    let (table, from, to) = (s.qname(&t.name), s.ident(&k.name), s.ident(&new_name));
    let backed = matches!(k.kind, ConstraintKind::Unique | ConstraintKind::PrimaryKey | ConstraintKind::Exclusion);
    let id = ctx.b.phase("rename", format!("{} {} of {table} renamed {new_name}", kind_word(k.kind), k.name));
    let fwd = format!(
        "{}-- squawk-ignore renaming-object -- reversible: the rollback renames it back\nALTER TABLE {table} RENAME CONSTRAINT {from} TO {to};\n",
        comment(&format!("{}: catalog-only, ACCESS EXCLUSIVE for an instant; nothing the application sends names a constraint, only its error messages do{}.", ctx.b.title, if backed { "; its index is renamed with it" } else { "" }))
    );
    let rb = format!("{}-- squawk-ignore renaming-object -- back to the name it had\nALTER TABLE {table} RENAME CONSTRAINT {to} TO {from};\n", comment("Undo: the old name again (catalog-only)."));
    let mut v = Checks::default();
    checks::constraint_present(&mut v, s, t, &new_name, k.validated, Moment::AfterMigrate, "renamed");
    checks::constraint_absent(&mut v, s, t, &k.name, Moment::AfterMigrate, "old_name_gone");
    checks::constraint_present(&mut v, s, t, &k.name, k.validated, Moment::AfterRollback, "old_name_back");
    ctx.b.migration("rename_constraint", fwd, Some(rb), v.finish());
    same_probes(ctx, t, &k.columns, id, None)
}
