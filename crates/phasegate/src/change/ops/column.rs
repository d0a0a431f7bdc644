//! One column, one table: `add-column`, `set-default`, `drop-default`,
//! `drop-not-null`, `set-not-null` and `drop-column`, each in the smallest
//! shape that is safe on a live table (a catalog-only change is one phase;
//! a fill is a trigger, a batched backfill, a switch and a cleanup).

use super::super::checks;
use super::super::learn::{self, Fit};
use super::super::model::{Column, Table};
use super::super::probes::{self, Version};
use super::super::shapes::{self, batch_note, batched_update};
use super::super::sql::{comment, fresh_name, lit, Check, Checks, Moment};
use super::super::error::Input;
use super::super::{ChangeError, ColumnRef, Ctx};
use super::{movable, walk_key};
use crate::error::Result;

/// The sample row's values, its key and the INSERT an application writes.
struct Rows {
    key: Vec<(String, String)>,
    insert: Option<Vec<(String, String)>>,
    sample: Option<probes::Sample>,
}

fn rows(ctx: &mut Ctx, t: &Table) -> Result<Rows> {
    let sample = probes::sample(ctx.client, ctx.s, t)?;
    let insert = probes::insert_values(ctx.client, &mut ctx.b, ctx.s, t, sample.as_ref())?;
    Ok(Rows { key: sample.as_ref().map(|s| s.key.clone()).unwrap_or_default(), insert, sample })
}

impl Rows {
    /// The sample's value of `c` as a literal (a typed placeholder without rows).
    fn value(&self, ctx: &Ctx, c: &Column) -> String {
        match &self.sample {
            Some(s) => probes::literal(c, s.values.get(&c.name).cloned().flatten().as_deref()),
            None => probes::typed_literal(ctx.s, c).unwrap_or_else(|| "NULL".into()),
        }
    }
    /// The INSERT's columns with `col` set to `v` (`None`: left out).
    fn insert_with(&self, col: &str, v: Option<String>) -> Option<Vec<(String, String)>> {
        let mut row: Vec<(String, String)> = self.insert.clone()?.into_iter().filter(|(c, _)| c != col).collect();
        if let Some(v) = v {
            row.push((col.to_string(), v));
        }
        Some(row)
    }
}

/// The reads and writes of the version that does not know `col` yet.
fn unchanged(ctx: &Ctx, t: &Table, r: &Rows) -> Vec<String> {
    let read: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
    probes::statements(ctx.s, t, &r.key, &read, r.insert.as_deref(), &[])
}

pub fn add(ctx: &mut Ctx, r: &ColumnRef, ty: &str, default: Option<&str>, not_null: bool, fill: Option<&str>) -> Result<()> {
    let t = ctx.table(r.schema.as_deref(), &r.table)?;
    let s = ctx.s;
    let col = r.column.as_str();
    ctx.free_column(t, col)?;
    let canonical = learn::check_type(ctx.client, ty)?;
    let fast_default = match default {
        Some(d) => learn::is_catalog_only_default(ctx.client, Input::Default, d, ty)?,
        None => true,
    };
    if let Some(f) = fill {
        learn::check_fits(ctx.client, s, t, &Fit { input: Input::Fill, shown: f, expr: f, ty, not_null_when: not_null.then(|| "true".to_string()) })?;
    }
    if not_null && default.is_none() && fill.is_none() {
        return Err(ChangeError::NeedsValue { column: s.show(t, col) }.into());
    }
    let table = s.qname(&t.name);
    let c = s.ident(col);
    let rws = rows(ctx, t)?;
    let before = ctx.b.before;
    let new_value = match (fill, default) {
        (Some(e), _) | (None, Some(e)) => {
            let key_where = rws.key.iter().map(|(k, v)| format!("{} = {v}", s.ident(k))).collect::<Vec<_>>().join(" AND ");
            let q = if rws.key.is_empty() { format!("SELECT ({e})::{ty}::text FROM {table} LIMIT 1") } else { format!("SELECT ({e})::{ty}::text FROM {table} WHERE {key_where}") };
            // No row to compute it from: a value of the type, as the
            // new version (which writes the column) would send.
            let typed = || probes::typed_literal(s, &Column { num: 0, name: col.into(), type_sql: canonical.clone(), not_null, default: None, identity: None, generated: false, enum_type: None, views: vec![] });
            learn::text(ctx.client, &q)?.map(|v| lit(&v)).or_else(typed)
        }
        (None, None) => probes::typed_literal(s, &Column { num: 0, name: col.into(), type_sql: ty.into(), not_null, default: None, identity: None, generated: false, enum_type: None, views: vec![] }),
    };
    let new_probe = |ctx: &Ctx| {
        let mut read: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
        read.push(col.to_string());
        let set = new_value.clone().map(|v| vec![(col.to_string(), v)]).unwrap_or_default();
        probes::statements(ctx.s, t, &rws.key, &read, rws.insert_with(col, new_value.clone()).as_deref(), &set)
    };

    if fill.is_none() && fast_default {
        let id = ctx.b.phase("expand", format!("{} {ty}{}{}", s.show(t, col), if not_null { " NOT NULL" } else { "" }, default.map(|d| format!(" DEFAULT {d}")).unwrap_or_default()));
        let why = match default {
            None => "a nullable column without a default is catalog-only: no rewrite, no scan; the ACCESS EXCLUSIVE lock of ADD COLUMN lasts milliseconds".to_string(),
            Some(_) => "the default is not volatile, so PostgreSQL 11+ stores it once as the column's missing value instead of rewriting the table, and NOT NULL needs no scan since every row has it: catalog-only, the ACCESS EXCLUSIVE lock of ADD COLUMN lasts milliseconds".to_string(),
        };
        let fwd = format!(
            "{}ALTER TABLE {table} ADD COLUMN {c} {ty}{}{};\n",
            comment(&format!("{}: {why}.", ctx.b.title)),
            if not_null { " NOT NULL" } else { "" },
            default.map(|d| format!(" DEFAULT {d}")).unwrap_or_default()
        );
        let rb = format!("{}ALTER TABLE {table} DROP COLUMN IF EXISTS {c};\n", comment(&format!("Undo: drop {} again (catalog-only).", s.show(t, col))));
        let mut v = Checks::default();
        checks::column_present(&mut v, s, t, col, Some(&canonical), Some(not_null), "column_added");
        if default.is_some() {
            checks::has_default(&mut v, s, t, col, true, Moment::AfterMigrate, "default_set");
        }
        checks::column_absent(&mut v, s, t, col, Moment::AfterRollback, "column_dropped");
        ctx.b.migration("add_column", fwd, Some(rb), v.finish());
        let old = unchanged(ctx, t, &rws);
        probes::add(&mut ctx.b, ctx.client, Version::Old, old, before, None)?;
        let stmts = new_probe(ctx);
        return probes::add(&mut ctx.b, ctx.client, Version::New, stmts, id, None);
    }

    walk_key(ctx, t, "add-column with a volatile default or a fill expression")?;
    let fill_expr = fill.or(default).expect("fill or a volatile default");
    ctx.b.phase("expand", format!("{} {ty}, nullable{}{}", s.show(t, col), default.map(|d| format!(", DEFAULT {d} for new rows")).unwrap_or_default(), if fill.is_some() { ", filled by a trigger for writers that leave it out" } else { "" }));
    let mut fwd = comment(&format!(
        "{}: add the column nullable and without a default (catalog-only){}{}. Nothing here reads the table, so its ACCESS EXCLUSIVE (ADD COLUMN) and SHARE ROW EXCLUSIVE (CREATE TRIGGER) locks last milliseconds.",
        ctx.b.title,
        if default.is_some() { "; the default is set separately, which applies to new rows only (a volatile default on ADD COLUMN would rewrite the table under an exclusive lock)" } else { "" },
        if fill.is_some() { "; the trigger fills it for every write that leaves it NULL, so rows the application version that does not know it writes get it too" } else { "" }
    ));
    fwd.push_str(&format!("ALTER TABLE {table} ADD COLUMN {c} {ty};\n"));
    if let Some(d) = default {
        fwd.push_str(&format!("ALTER TABLE {table} ALTER COLUMN {c} SET DEFAULT {d};\n"));
    }
    let filler = fill.map(|f| {
        let body = format!("  NEW.{c} := {};\n", super::copy::on_new(t, f, ctx.s));
        shapes::sync(ctx, t, col, "INSERT OR UPDATE", Some(&format!("NEW.{c} IS NULL")), "", &body)
    });
    let mut rb = comment("Undo: drop what the forward file added.");
    let mut v = Checks::default();
    checks::column_present(&mut v, s, t, col, Some(&canonical), Some(false), "column_added");
    if let Some(f) = &filler {
        fwd.push('\n');
        fwd.push_str(&f.create);
        rb.push_str(&f.drop(ctx, t, true));
        checks::trigger_enabled(&mut v, s, t, &f.trigger, Moment::AfterMigrate, "fill_trigger_enabled");
    }
    rb.push_str(&format!("ALTER TABLE {table} DROP COLUMN IF EXISTS {c};\n"));
    checks::column_absent(&mut v, s, t, col, Moment::AfterRollback, "column_dropped");
    ctx.b.migration("add_column", fwd, Some(rb), v.finish());

    ctx.b.phase("backfill", format!("{} filled on every existing row, in batches", s.show(t, col)));
    let pending = format!("{c} IS NULL AND ({fill_expr}) IS NOT NULL");
    let fwd = batched_update(ctx, t, &format!("{}: fill {} on the rows that exist with {fill_expr}. {}", ctx.b.title, s.show(t, col), batch_note(t, ctx)), &format!("{c} = {fill_expr}"), None, None, &format!("{c} IS NULL"));
    let rb = batched_update(ctx, t, &format!("Undo: {} back to NULL on every row, in batches like the backfill (the rows are backed up first), with the fill trigger quiet.", s.show(t, col)), &format!("{c} = NULL"), None, None, &format!("{c} IS NOT NULL"));
    let mut v = Checks::default();
    if let Some(f) = &filler {
        checks::trigger_enabled(&mut v, s, t, &f.trigger, Moment::BeforeMigrate, "fill_trigger_in_place");
    }
    checks::pending_percent(&mut v, s, t, &pending, &format!("not filled yet ({} NULL)", s.show(t, col)), "unfilled_percent");
    checks::column_present(&mut v, s, t, col, Some(&canonical), None, "column_kept");
    ctx.b.migration("backfill", fwd, Some(rb), v.finish());

    if not_null {
        ctx.b.phase("switch", format!("{} NOT NULL through a validated check", s.show(t, col)));
        shapes::switch(ctx, t, vec![], vec![], vec![], Some(col));
    }
    let new_from = ctx.b.last_phase();
    let old_until = (not_null && default.is_none() && filler.is_some()).then_some(new_from);
    if let Some(f) = &filler {
        ctx.b.irreversible(
            "cleanup",
            format!("drop the fill trigger of {}", s.show(t, col)),
            format!("writes that leave {} out are no longer filled by the trigger; recover re-creates it from what migrate keeps", s.show(t, col)),
        );
        let fwd = format!("{}{}", comment(&format!("{}: every application version writes {} now; drop the fill trigger (catalog-only).", ctx.b.title, s.show(t, col))), f.drop(ctx, t, false));
        let mut v = Checks::default();
        checks::trigger_absent(&mut v, s, t, &f.trigger, &f.signature(), Moment::AfterMigrate, "fill_trigger_dropped");
        ctx.b.migration("drop_fill_trigger", fwd, None, v.finish());
    }
    let old = unchanged(ctx, t, &rws);
    probes::add(&mut ctx.b, ctx.client, Version::Old, old, before, old_until)?;
    let stmts = new_probe(ctx);
    probes::add(&mut ctx.b, ctx.client, Version::New, stmts, new_from, None)
}

pub fn set_default(ctx: &mut Ctx, r: &ColumnRef, default: &str) -> Result<()> {
    let (t, c) = ctx.column(r)?;
    let s = ctx.s;
    if c.identity.is_some() || c.generated {
        return Err(ChangeError::Pointless { what: format!("set-default {}", s.show(t, &c.name)), why: "an identity or generated column takes no default".into() }.into());
    }
    learn::is_catalog_only_default(ctx.client, Input::Default, default, &c.type_sql)?;
    let (table, col) = (s.qname(&t.name), s.ident(&c.name));
    let rws = rows(ctx, t)?;
    let before = ctx.b.before;
    let id = ctx.b.phase("default", format!("{} DEFAULT {default}", s.show(t, &c.name)));
    let fwd = format!(
        "{}ALTER TABLE {table} ALTER COLUMN {col} SET DEFAULT {default};\n",
        comment(&format!("{}: catalog-only; the default applies to rows inserted from now on, existing rows keep their values, and writers that set the column are not affected.", ctx.b.title))
    );
    let rb = match &c.default {
        Some(old) => format!("{}ALTER TABLE {table} ALTER COLUMN {col} SET DEFAULT {old};\n", comment("Undo: the default it had before (catalog-only).")),
        None => format!("{}ALTER TABLE {table} ALTER COLUMN {col} DROP DEFAULT;\n", comment("Undo: no default, as before (catalog-only).")),
    };
    let mut v = Checks::default();
    checks::has_default(&mut v, s, t, &c.name, true, Moment::AfterMigrate, "default_set");
    checks::has_default(&mut v, s, t, &c.name, c.default.is_some(), Moment::AfterRollback, "default_as_before");
    ctx.b.migration("set_default", fwd, Some(rb), v.finish());
    let all: Vec<String> = t.columns.iter().map(|x| x.name.clone()).collect();
    let old = probes::statements(s, t, &rws.key, &all, rws.insert.as_deref(), &[]);
    let new = probes::statements(s, t, &rws.key, &all, rws.insert_with(&c.name, None).as_deref(), &[]);
    probes::add(&mut ctx.b, ctx.client, Version::Old, old, before, None)?;
    probes::add(&mut ctx.b, ctx.client, Version::New, new, id, None)
}

pub fn drop_default(ctx: &mut Ctx, r: &ColumnRef) -> Result<()> {
    let (t, c) = ctx.column(r)?;
    let s = ctx.s;
    let what = format!("drop-default {}", s.show(t, &c.name));
    let Some(old) = &c.default else {
        return Err(ChangeError::Pointless { what, why: "the column has no default".into() }.into());
    };
    if c.sequence_backed() || c.generated {
        return Err(ChangeError::Unsupported { what, why: "its values come from a sequence or an expression; without it inserts would have no value".into() }.into());
    }
    let (table, col) = (s.qname(&t.name), s.ident(&c.name));
    let rws = rows(ctx, t)?;
    let before = ctx.b.before;
    let id = ctx.b.phase("default", format!("{} without its default", s.show(t, &c.name)));
    let breaks = if c.not_null { " The column is NOT NULL: from now on every insert must set it, so deploy application versions that do before this phase." } else { " Inserts that leave it out store NULL from now on." };
    let fwd = format!(
        "{}-- squawk-ignore ban-drop-default -- catalog-only; the rollback puts the default back\nALTER TABLE {table} ALTER COLUMN {col} DROP DEFAULT;\n",
        comment(&format!("{}: catalog-only; rows that exist keep their values.{breaks}", ctx.b.title))
    );
    let rb = format!("{}ALTER TABLE {table} ALTER COLUMN {col} SET DEFAULT {old};\n", comment("Undo: the default it had (catalog-only)."));
    let mut v = Checks::default();
    checks::has_default(&mut v, s, t, &c.name, false, Moment::AfterMigrate, "default_dropped");
    checks::has_default(&mut v, s, t, &c.name, true, Moment::AfterRollback, "default_back");
    ctx.b.migration("drop_default", fwd, Some(rb), v.finish());
    if c.not_null {
        ctx.b.note(format!("{} is NOT NULL: inserts that leave it out fail from phase {id} on", s.show(t, &c.name)));
    }
    let all: Vec<String> = t.columns.iter().map(|x| x.name.clone()).collect();
    let stmts = probes::statements(s, t, &rws.key, &all, rws.insert.as_deref(), &[]);
    probes::add(&mut ctx.b, ctx.client, Version::Old, stmts.clone(), before, None)?;
    probes::add(&mut ctx.b, ctx.client, Version::New, stmts, id, None)
}

pub fn drop_not_null(ctx: &mut Ctx, r: &ColumnRef) -> Result<()> {
    let (t, c) = ctx.column(r)?;
    let s = ctx.s;
    let what = format!("drop-not-null {}", s.show(t, &c.name));
    if !c.not_null {
        return Err(ChangeError::Pointless { what, why: "the column is nullable already".into() }.into());
    }
    if t.primary_key.contains(&c.name) {
        return Err(ChangeError::Unsupported { what, why: "it is (part of) the primary key, which is always NOT NULL".into() }.into());
    }
    let rws = rows(ctx, t)?;
    let before = ctx.b.before;
    let id = ctx.b.phase("nullable", format!("{} accepts NULL", s.show(t, &c.name)));
    shapes::drop_not_null(ctx, t, &c.name);
    let all: Vec<String> = t.columns.iter().map(|x| x.name.clone()).collect();
    let old = probes::statements(s, t, &rws.key, &all, rws.insert.as_deref(), &[]);
    let nulled = vec![(c.name.clone(), "NULL".to_string())];
    let new = probes::statements(s, t, &rws.key, &all, rws.insert_with(&c.name, Some("NULL".into())).as_deref(), &nulled);
    probes::add(&mut ctx.b, ctx.client, Version::Old, old, before, None)?;
    probes::add(&mut ctx.b, ctx.client, Version::New, new, id, None)
}

pub fn set_not_null(ctx: &mut Ctx, r: &ColumnRef, fill: Option<&str>) -> Result<()> {
    let (t, c) = ctx.column(r)?;
    let s = ctx.s;
    let what = format!("set-not-null {}", s.show(t, &c.name));
    if c.not_null {
        return Err(ChangeError::Pointless { what, why: "the column is NOT NULL already".into() }.into());
    }
    let (table, col) = (s.qname(&t.name), s.ident(&c.name));
    let nulls = learn::count(ctx.client, &format!("SELECT count(*) FROM {table} WHERE {col} IS NULL"))?;
    if nulls > 0 && fill.is_none() {
        return Err(ChangeError::NullRows { table, column: c.name.clone(), rows: nulls }.into());
    }
    if let Some(f) = fill {
        learn::check_fits(ctx.client, s, t, &Fit { input: Input::Fill, shown: f, expr: f, ty: &c.type_sql, not_null_when: Some(format!("{col} IS NULL")) })?;
    }
    let rws = rows(ctx, t)?;
    let before = ctx.b.before;
    let all: Vec<String> = t.columns.iter().map(|x| x.name.clone()).collect();
    let value = rws.value(ctx, c);
    let Some(f) = fill else {
        ctx.b.phase("switch", format!("{} NOT NULL through a validated check", s.show(t, &c.name)));
        shapes::switch(ctx, t, vec![], vec![], vec![], Some(&c.name));
        let id = ctx.b.last_phase();
        let stmts = probes::statements(s, t, &rws.key, &all, rws.insert_with(&c.name, Some(value.clone())).as_deref(), &[(c.name.clone(), value)]);
        probes::add(&mut ctx.b, ctx.client, Version::Old, stmts.clone(), before, None)?;
        return probes::add(&mut ctx.b, ctx.client, Version::New, stmts, id, None);
    };
    let key = walk_key(ctx, t, "set-not-null with a fill expression")?;
    let k = s.ident(&key.name);
    let tracking = fresh_name(&["phasegate_filled", &t.name.name, &c.name], &mut ctx.taken);
    let null_index = fresh_name(&[&t.name.name, &c.name, "null_idx"], &mut ctx.taken);

    ctx.b.phase("expand", format!("fill trigger for NULL writes to {}, the list of rows the backfill fills, an index of the NULL rows", s.show(t, &c.name)));
    let body = format!("  NEW.{col} := {};\n", super::copy::on_new(t, f, s));
    let filler = shapes::sync(ctx, t, &c.name, "INSERT OR UPDATE", Some(&format!("NEW.{col} IS NULL")), "", &body);
    let fwd = format!(
        "{}CREATE TABLE {tracking} ({k} {} PRIMARY KEY);\n\n{}",
        comment(&format!(
            "{}: from now on a write that leaves {} NULL gets {f} instead (the trigger), so the NULLs stop growing while the backfill removes them; {tracking} records the rows the backfill fills, so its rollback can make exactly those NULL again. CREATE TABLE and CREATE FUNCTION touch no existing table; CREATE TRIGGER takes SHARE ROW EXCLUSIVE for an instant.",
            ctx.b.title,
            s.show(t, &c.name)
        )),
        key.type_sql,
        filler.create
    );
    let rb = format!("{}{}DROP TABLE IF EXISTS {tracking};\n", comment("Undo: drop the trigger, its function and the list."), filler.drop(ctx, t, true));
    let mut v = Checks::default();
    checks::trigger_enabled(&mut v, s, t, &filler.trigger, Moment::AfterMigrate, "fill_trigger_enabled");
    checks::trigger_absent(&mut v, s, t, &filler.trigger, &filler.signature(), Moment::AfterRollback, "fill_trigger_dropped");
    ctx.b.migration("fill_trigger", fwd, Some(rb), v.finish());
    let idx = shapes::NewIndex { create: format!("CREATE INDEX CONCURRENTLY IF NOT EXISTS {null_index} ON {table} ({k}) WHERE {col} IS NULL"), name: null_index.clone(), unique_constraint: false };
    shapes::switch(ctx, t, vec![], vec![], vec![idx], None);

    ctx.b.phase("backfill", format!("{} filled where NULL, in batches, each filled row recorded", s.show(t, &c.name)));
    let fwd = format!(
        "-- phasegate: batch {b}\n{}WITH filled AS (\n  UPDATE {table}\n  SET {col} = {f}\n  WHERE {k} = ANY (ARRAY(\n          SELECT {k} FROM {table}\n          WHERE {col} IS NULL\n          ORDER BY {k}\n          LIMIT :batch_size))\n  RETURNING {k})\nINSERT INTO {tracking} ({k})\nSELECT {k} FROM filled\nON CONFLICT DO NOTHING;\n",
        comment(&format!(
            "{}: fill the NULLs of {} with {f}, recording each filled row in {tracking}. phasegate runs it in batches of :batch_size rows ({b} here), one short transaction each, until a batch records no row; {null_index} finds each batch's NULL rows without rescanning the rows done; a crash or Ctrl-C resumes where the NULLs are left.",
            ctx.b.title,
            s.show(t, &c.name),
            b = ctx.batch
        )),
        b = ctx.batch
    );
    let rb = format!(
        "-- phasegate: batch {b}\n{}WITH picked AS (\n  SELECT {k} FROM {tracking} ORDER BY {k} LIMIT :batch_size),\nreset AS (\n  UPDATE {table}\n  SET {col} = NULL\n  FROM picked, {q}\n  WHERE {table}.{k} = picked.{k}\n  RETURNING {table}.{k})\nDELETE FROM {tracking}\nWHERE {k} IN (SELECT {k} FROM picked);\n",
        comment("Undo: make the rows the backfill filled NULL again, in batches (each batch's rows are backed up first), with the fill trigger quiet, and forget them; values written into those rows since are overwritten, and `restore` puts them back from the backup."),
        b = ctx.batch,
        q = shapes::QUIET
    );
    let mut v = Checks::default();
    checks::trigger_enabled(&mut v, s, t, &filler.trigger, Moment::BeforeMigrate, "fill_trigger_in_place");
    checks::pending_percent(&mut v, s, t, &format!("{col} IS NULL"), &format!("still NULL in {}", c.name), "null_percent");
    v.assert("filled_rows_reset", Moment::AfterRollback, &format!("no row is left in {tracking}: every filled row was made NULL again"), &format!("SELECT {k} FROM {tracking}"));
    ctx.b.migration("backfill", fwd, Some(rb), v.finish());

    ctx.b.phase("switch", format!("{} NOT NULL through a validated check", s.show(t, &c.name)));
    shapes::switch(ctx, t, vec![], vec![], vec![], Some(&c.name));
    let switch = ctx.b.last_phase();

    ctx.b.irreversible(
        "cleanup",
        format!("drop the fill trigger of {}, the list of filled rows and the index of NULL rows", s.show(t, &c.name)),
        format!("forgets which rows of {} were NULL before the fill ({tracking}), so the backfill can no longer be undone; recover brings the list and the trigger back from what migrate keeps", s.qname(&t.name)),
    );
    let fwd = format!("{}{}DROP TABLE {tracking};\n", comment(&format!("{}: no application version writes NULL any more.", ctx.b.title)), filler.drop(ctx, t, false));
    let mut v = Checks::default();
    checks::trigger_absent(&mut v, s, t, &filler.trigger, &filler.signature(), Moment::AfterMigrate, "fill_trigger_dropped");
    ctx.b.migration("drop_fill_trigger", fwd, None, v.finish());
    let fwd = format!("-- phasegate: no-transaction\n{}DROP INDEX CONCURRENTLY IF EXISTS {null_index};\n", comment("The index of NULL rows is empty now: drop it without blocking writes."));
    let mut v = Checks::default();
    checks::index_absent(&mut v, s, t, &null_index, Moment::AfterMigrate, "null_index_dropped");
    ctx.b.migration("drop_null_index", fwd, None, v.finish());

    let old = probes::statements(s, t, &rws.key, &all, rws.insert_with(&c.name, Some("NULL".into())).as_deref(), &[(c.name.clone(), "NULL".into())]);
    let new = probes::statements(s, t, &rws.key, &all, rws.insert_with(&c.name, Some(value.clone())).as_deref(), &[(c.name.clone(), value)]);
    probes::add(&mut ctx.b, ctx.client, Version::Old, old, before, Some(switch))?;
    probes::add(&mut ctx.b, ctx.client, Version::New, new, switch, None)
}

pub fn drop_column(ctx: &mut Ctx, r: &ColumnRef) -> Result<()> {
    let (t, c) = ctx.column(r)?;
    let s = ctx.s;
    movable(ctx, t, c, "drop-column")?;
    let (table, col) = (s.qname(&t.name), s.ident(&c.name));
    let rws = rows(ctx, t)?;
    let before = ctx.b.before;
    let needs_expand = c.not_null && c.default.is_none() && !c.generated;
    let new_from = if needs_expand {
        let id = ctx.b.phase("expand", format!("{} accepts NULL, so writers that leave it out work", s.show(t, &c.name)));
        shapes::drop_not_null(ctx, t, &c.name);
        id
    } else {
        before
    };
    let going: Vec<String> = t.indexes_on(&c.name).map(|i| format!("index {}", i.name)).chain(t.constraints_on(&c.name).map(|k| format!("constraint {}", k.name))).collect();
    ctx.b.irreversible(
        "cleanup",
        format!("drop {}", s.show(t, &c.name)),
        format!("drops {} and its values; recover brings them back from what migrate keeps", s.show(t, &c.name)),
    );
    let fwd = format!(
        "{}ALTER TABLE {table} DROP COLUMN {col};\n",
        comment(&format!(
            "{}: only when no deployed application version reads or writes it. DROP COLUMN is catalog-only (the space is reclaimed by later updates and VACUUM) and takes ACCESS EXCLUSIVE for an instant; no CASCADE, so anything unexpected that depends on the column aborts the migration instead of going with it.{}",
            ctx.b.title,
            if going.is_empty() { String::new() } else { format!(" Going with it: {}.", going.join(", ")) }
        ))
    );
    let mut v = Checks::default();
    v.push(
        Check::metric(
            "rows_with_values",
            "rows",
            (">= 0", None),
            &format!("rows whose {} is set: what migrate keeps before dropping it (for recover)", c.name),
            &format!("SELECT count(*) FROM {table} WHERE {col} IS NOT NULL"),
        )
        .at(Moment::BeforeMigrate),
    );
    checks::column_absent(&mut v, s, t, &c.name, Moment::AfterMigrate, "column_dropped");
    ctx.b.migration("drop_column", fwd, None, v.finish());
    let all: Vec<String> = t.columns.iter().map(|x| x.name.clone()).collect();
    let rest: Vec<String> = all.iter().filter(|n| **n != c.name).cloned().collect();
    let old = probes::statements(s, t, &rws.key, &all, rws.insert.as_deref(), &[(c.name.clone(), rws.value(ctx, c))]);
    let new = probes::statements(s, t, &rws.key, &rest, rws.insert_with(&c.name, None).as_deref(), &[]);
    let old_until = ctx.b.last_phase() - 1;
    probes::add(&mut ctx.b, ctx.client, Version::Old, old, before, Some(old_until))?;
    probes::add(&mut ctx.b, ctx.client, Version::New, new, new_from, None)
}
