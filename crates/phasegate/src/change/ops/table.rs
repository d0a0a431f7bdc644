//! Tables: `create-table` (one reversible phase), `rename-table` (the table
//! renamed and a view under the old name, so the application version that
//! knows the old name reads and writes through it during the window; the
//! view goes in a phase of its own) and `drop-table` (an irreversible
//! cleanup; `migrate` keeps the table and its rows for `recover`).

use postgres::Transaction;

use super::super::checks;
use super::super::error::Input;
use super::super::learn;
use super::super::model::{self, QName, Table};
use super::super::probes::{self, Version};
use super::super::sql::{comment, lit, Check, Checks, Moment};
use super::super::{ChangeError, Ctx, TableRef};
use super::unwrap_parens;
use crate::error::Result;

/// The schema a new relation `r` goes to.
fn schema_of(ctx: &Ctx, r: &TableRef) -> String {
    r.schema.clone().unwrap_or_else(|| ctx.s.current_schema.clone())
}

/// Refuses a relation name in `schema` that a table, view, index or
/// sequence has.
fn relation_free(ctx: &mut Ctx, schema: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(ChangeError::BadArgument("a table name cannot be empty".into()).into());
    }
    let q = ctx.s.qname(&QName { schema: schema.to_string(), name: name.to_string() });
    let n = learn::count(ctx.client, &format!("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = {} AND c.relname = {}", lit(schema), lit(name)))?;
    if n > 0 || (schema == ctx.s.current_schema && ctx.taken.contains(name)) {
        return Err(ChangeError::NameTaken { what: "relation", name: q, table: None }.into());
    }
    ctx.taken.insert(name.to_string());
    Ok(())
}

/// Asserts that `q` (a relation name as SQL) is of kind `kinds` (`'r', 'p'`
/// for a table, `'v'` for a view), or gone when `kinds` is empty.
fn relation_is(v: &mut Checks, name: &str, q: &str, kinds: &str, what: &str, when: Moment) {
    let query = if kinds.is_empty() {
        format!("SELECT {} AS still_exists WHERE to_regclass({}) IS NOT NULL", lit(name), lit(q))
    } else {
        format!("SELECT {} AS not_so\nWHERE NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass({}) AND relkind IN ({kinds}))", lit(name), lit(q))
    };
    let check = format!("{}_{}", super::super::sql::slug(name), what.split_whitespace().last().unwrap_or("there"));
    v.assert(&check, when, &format!("{name} {what}"), &query);
}

pub fn create(ctx: &mut Ctx, r: &TableRef, columns: &str) -> Result<()> {
    let schema = schema_of(ctx, r);
    relation_free(ctx, &schema, &r.table)?;
    let s = ctx.s;
    let qn = QName { schema: schema.clone(), name: r.table.clone() };
    let q = s.qname(&qn);
    let cols = unwrap_parens(columns).to_string();
    let ddl = format!("CREATE TABLE {q} (\n  {cols}\n)");
    // Tried in a transaction that is rolled back: what PostgreSQL makes of it.
    let read = |tx: &mut Transaction| -> Result<Table> {
        let schema_now = model::read(tx)?;
        Ok(schema_now.tables.into_iter().find(|t| t.name == qn).expect("the table just created"))
    };
    let t = learn::try_ddl(ctx.client, &ddl, Input::Columns, &cols, read)?;
    let id = ctx.b.phase("create", format!("table {q} ({})", t.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")));
    let fwd = format!("{}{ddl};\n", comment(&format!("{}: a new table is empty and no application version uses it yet: nothing waits on it. A foreign key in it takes SHARE ROW EXCLUSIVE on the table it references for an instant.", ctx.b.title)));
    let rb = format!("{}DROP TABLE IF EXISTS {q};\n", comment("Undo: the table goes with the rows written into it since (backed up first)."));
    let mut v = Checks::default();
    for c in &t.columns {
        checks::column_present(&mut v, s, &t, &c.name, Some(&c.type_sql), Some(c.not_null), &format!("column_{}", super::super::sql::slug(&c.name)));
    }
    relation_is(&mut v, &r.table, &q, "", "is gone", Moment::AfterRollback);
    ctx.b.migration("create_table", fwd, Some(rb), v.finish());
    // The new version reads and writes it; the old one does not know it.
    let mut row = Vec::new();
    for c in t.columns.iter().filter(|c| !c.generated && !c.sequence_backed()) {
        let fk = t.constraints.iter().find(|k| k.columns == [c.name.clone()] && k.references.is_some());
        let value = match fk.and_then(|k| k.references.as_ref()) {
            Some((rt, rc)) => Some(probes::referenced(s, rt, rc, 0)),
            None => probes::typed_literal(s, c),
        };
        match value {
            Some(v) => row.push((c.name.clone(), v)),
            None if !c.not_null || c.default.is_some() => {}
            None => {
                ctx.b.note(format!("no probe INSERT into {q}: no placeholder value for {} ({})", c.name, c.type_sql));
                row.clear();
                break;
            }
        }
    }
    let all: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
    let stmts = probes::statements(s, &t, &[], &all, (!row.is_empty()).then_some(row.as_slice()), &[]);
    probes::add(&mut ctx.b, ctx.client, Version::New, stmts, id, None)
}

pub fn rename(ctx: &mut Ctx, r: &TableRef, new_name: &str) -> Result<()> {
    let t = ctx.table_ref(r)?;
    relation_free(ctx, &t.name.schema.clone(), new_name)?;
    let s = ctx.s;
    let (old, new) = (s.qname(&t.name), s.qname(&QName { schema: t.name.schema.clone(), name: new_name.to_string() }));
    let before = ctx.b.before;
    let expand = ctx.b.phase("expand", format!("{old} renamed {new_name}; a view {old} over it for the application version that knows the old name"));
    let fwd = format!(
        "{}-- squawk-ignore renaming-table -- the view below keeps the old name working; the rollback renames it back\nALTER TABLE {old} RENAME TO {};\nCREATE VIEW {old} AS SELECT * FROM {new};\n",
        comment(&format!(
            "{}: both statements in one transaction, so no application version ever finds the old name missing. The rename is catalog-only (ACCESS EXCLUSIVE for an instant); the view is simple, so PostgreSQL writes through it: the application version that knows {} reads, inserts, updates and deletes through the view, with the table's defaults, constraints and triggers. Indexes, constraints and sequences keep their names.",
            ctx.b.title, t.name.name
        )),
        s.ident(new_name)
    );
    let rb = format!(
        "{}-- squawk-ignore ban-drop-view -- the view the forward file created\nDROP VIEW IF EXISTS {old};\n-- squawk-ignore renaming-table -- back to the name it had\nALTER TABLE {new} RENAME TO {};\n",
        comment("Undo: the view goes and the table takes its name back, in one transaction (catalog-only)."),
        s.ident(&t.name.name)
    );
    let mut v = Checks::default();
    relation_is(&mut v, new_name, &new, "'r', 'p'", "is a table", Moment::AfterMigrate);
    relation_is(&mut v, &t.name.name, &old, "'v'", "is a view", Moment::AfterMigrate);
    relation_is(&mut v, &t.name.name, &old, "'r', 'p'", "is a table", Moment::AfterRollback);
    relation_is(&mut v, new_name, &new, "", "is gone", Moment::AfterRollback);
    ctx.b.migration("rename_table", fwd, Some(rb), v.finish());

    ctx.b.phase("cleanup", format!("the view {old} goes"));
    let fwd = format!(
        "{}-- squawk-ignore ban-drop-view -- only the view goes; the rollback creates it again\nDROP VIEW {old};\n",
        comment(&format!("{}: only once no deployed application version uses {}. The view holds no data: dropping it is catalog-only, and its rollback creates it again.", ctx.b.title, t.name.name))
    );
    let rb = format!("{}CREATE VIEW {old} AS SELECT * FROM {new};\n", comment("Undo: the old name works again (catalog-only)."));
    let mut v = Checks::default();
    relation_is(&mut v, &t.name.name, &old, "", "is gone", Moment::AfterMigrate);
    relation_is(&mut v, &t.name.name, &old, "'v'", "is a view", Moment::AfterRollback);
    ctx.b.migration("drop_view", fwd, Some(rb), v.finish());

    let sample = probes::sample(ctx.client, s, t)?;
    let insert = probes::insert_values(ctx.client, &mut ctx.b, s, t, sample.as_ref())?;
    let key = sample.as_ref().map(|x| x.key.clone()).unwrap_or_default();
    let all: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
    let stmts_of = |table: &Table| probes::statements(s, table, &key, &all, insert.as_deref(), &[]);
    let old_stmts = stmts_of(t);
    let mut renamed = t.clone();
    renamed.name.name = new_name.to_string();
    let new_stmts = stmts_of(&renamed);
    probes::add(&mut ctx.b, ctx.client, Version::Old, old_stmts, before, Some(expand))?;
    probes::add(&mut ctx.b, ctx.client, Version::New, new_stmts, expand, None)
}

pub fn drop(ctx: &mut Ctx, r: &TableRef) -> Result<()> {
    let t = ctx.table_ref(r)?;
    let s = ctx.s;
    let table = s.qname(&t.name);
    let what = format!("drop-table {table}");
    if let Some(fk) = t.referenced_by.iter().find(|fk| fk.table != t.name) {
        return Err(ChangeError::Unsupported { what, why: format!("foreign key {} of {} references it; drop that constraint first (drop-constraint {} {})", fk.name, s.qname(&fk.table), s.qname(&fk.table), fk.name) }.into());
    }
    if let Some(v) = t.columns.iter().flat_map(|c| c.views.iter()).next() {
        return Err(ChangeError::Unsupported { what, why: format!("view {v} reads it; drop the view first") }.into());
    }
    let before = ctx.b.before;
    ctx.b.irreversible("cleanup", format!("drop {table}"), format!("drops {table} and its rows; recover brings them back from what migrate keeps"));
    let fwd = format!(
        "{}DROP TABLE {table};\n",
        comment(&format!("{}: only once no deployed application version reads or writes {table}. DROP TABLE takes ACCESS EXCLUSIVE for an instant (no scan); no CASCADE, so anything unexpected that depends on it aborts the migration. migrate keeps its definition and rows first, for recover.", ctx.b.title))
    );
    let mut v = Checks::default();
    v.push(Check::metric("rows_kept", "rows", (">= 0", None), &format!("rows of {table}: what migrate keeps before dropping it (for recover)"), &format!("SELECT count(*) FROM {table}")).at(Moment::BeforeMigrate));
    relation_is(&mut v, &t.name.name, &table, "", "is gone", Moment::AfterMigrate);
    ctx.b.migration("drop_table", fwd, None, v.finish());
    let sample = probes::sample(ctx.client, s, t)?;
    let insert = probes::insert_values(ctx.client, &mut ctx.b, s, t, sample.as_ref())?;
    let key = sample.as_ref().map(|x| x.key.clone()).unwrap_or_default();
    let all: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
    let stmts = probes::statements(s, t, &key, &all, insert.as_deref(), &[]);
    probes::add(&mut ctx.b, ctx.client, Version::Old, stmts, before, Some(before))
}
