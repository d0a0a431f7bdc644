//! The recovery plan of an irreversible phase, built from what `keep`
//! recorded, and running it in the caller's transaction. Four stages:
//!
//! 1. **create**: types (enums with their labels in order), dropped tables
//!    (their sequences first), dropped columns (nullable, no default yet),
//!    then functions, in the reverse order of the drops;
//! 2. **restore**: a dropped table's rows inserted; a truncated table's rows
//!    inserted where their key is free; dropped column values set back by
//!    key on every row whose other columns are as they were when kept (the
//!    row's md5 says so);
//! 3. **replay**: rows written since (not kept, or changed since) go once
//!    through the kept BEFORE INSERT row triggers of their table, on a
//!    temporary copy, and only the re-created columns are written back: what
//!    the phase's sync trigger would have filled in had the columns existed.
//!    A row a trigger refuses (or any row, when no such trigger was dropped)
//!    keeps its kept values, or stays NULL when it has none, and is counted;
//! 4. **finish**: defaults, NOT NULL (only where no row is left NULL),
//!    constraints, indexes, a dropped table's constraints, indexes and
//!    triggers, then the dropped triggers themselves.

use postgres::GenericClient;
use serde::Serialize;

use super::kept::{ColumnDef, Kept, ROW_MD5};
use super::restore::advance_sequences;
use super::tabledef::create_enum_sql;
use super::idents;
use crate::error::{db_err, Result};
use crate::pg::quote_ident;

/// A stage of the recovery plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Create,
    Restore,
    Replay,
    Finish,
}

#[derive(Debug, Clone)]
enum Action {
    Sql(String),
    /// `CREATE TYPE name AS ENUM (labels)`, the labels quoted by the server.
    CreateEnum { name: String, labels: Vec<String> },
    RestoreColumns { table: String, key: Vec<String>, columns: Vec<ColumnDef>, hashed: Vec<String>, backup_table: String },
    Replay { table: String, key: Vec<String>, columns: Vec<ColumnDef>, hashed: Vec<String>, backup_table: Option<String>, triggers: Vec<String> },
    InsertRows { table: String, columns: Vec<String>, key: Vec<String>, backup_table: String, absent_only: bool },
    NotNull { table: String, column: String },
}

/// One statement of the plan, for people and JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    pub version: i32,
    pub stage: Stage,
    pub sql: String,
    #[serde(skip)]
    action: Action,
}

/// The recovery plan of a phase's kept migrations.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub statements: Vec<Planned>,
    /// What the phase destroyed that was not kept (one line each).
    pub unkept: Vec<String>,
}

/// What recovering one table's re-created columns or rows did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TableRecovery {
    pub table: String,
    pub version: i32,
    /// Rows whose kept values were set back (unchanged since they were kept).
    pub restored: u64,
    /// Rows re-inserted (a dropped or truncated table).
    pub inserted: u64,
    /// Rows written since (not kept) or changed since.
    pub written_since: u64,
    /// Of those, rows whose re-created columns the kept triggers filled.
    pub replayed: u64,
    /// Rows a kept trigger refused: they keep their kept values, or NULL.
    pub replay_refused: u64,
    /// The error of the first row refused.
    pub first_refusal: Option<String>,
    /// Rows changed since whose kept values were set back as they were.
    pub kept_values_used: u64,
    /// Per re-created column, rows written since (not kept) left NULL.
    pub left_null: Vec<(String, i64)>,
}

/// What a recovery did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Recovered {
    pub statements: usize,
    pub tables: Vec<TableRecovery>,
    /// `table.column` whose NOT NULL was not restored because rows are left NULL.
    pub not_null_skipped: Vec<String>,
    pub unkept: Vec<String>,
}

impl Recovered {
    /// Anything short of the state the phase began from.
    pub fn incomplete(&self) -> bool {
        !self.not_null_skipped.is_empty() || !self.unkept.is_empty() || self.tables.iter().any(|t| t.left_null.iter().any(|(_, n)| *n > 0))
    }
}

fn add_column(c: &ColumnDef) -> String {
    let collation = c.collation.as_ref().map(|x| format!(" COLLATE {x}")).unwrap_or_default();
    format!("ADD COLUMN {} {}{collation}", quote_ident(&c.name), c.type_sql)
}

/// The trigger `create` (a `pg_get_triggerdef`) made to fire on `target`
/// instead: the name after its first top-level `ON` is replaced.
fn retarget_trigger(create: &str, target: &str) -> Option<String> {
    let lx = crate::sqltext::lex(create);
    let on = lx.iter().position(|l| l.token.is_word("on"))?;
    let start = lx.get(on + 1)?.start;
    let mut end = lx[on + 1].end;
    let mut k = on + 2;
    while lx.get(k).is_some_and(|l| l.token == crate::sqltext::Token::Punct('.')) && lx.get(k + 1).is_some() {
        end = lx[k + 1].end;
        k += 2;
    }
    Some(format!("{}{target}{}", &create[..start], &create[end..]))
}

/// Builds the plan from the kept entries of the phase's migrations, each
/// `(version, entries in the order they were kept)`, newest version first.
pub fn plan(steps: &[(i32, Vec<Kept>)]) -> Plan {
    let mut p = Plan::default();
    // Undo order: newest migration first, later statements first.
    let undo: Vec<(i32, &Kept)> = steps.iter().flat_map(|(v, ks)| ks.iter().rev().map(move |k| (*v, k))).collect();
    let push = |p: &mut Plan, version: i32, stage: Stage, action: Action| {
        let sql = describe(&action);
        p.statements.push(Planned { version, stage, sql, action });
    };
    for &(v, k) in &undo {
        match k {
            Kept::Enum { name, labels } => push(&mut p, v, Stage::Create, Action::CreateEnum { name: name.clone(), labels: labels.clone() }),
            Kept::Type { create, .. } => push(&mut p, v, Stage::Create, Action::Sql(create.clone())),
            Kept::Unkept { .. } => p.unkept.push(k.describe()),
            _ => {}
        }
    }
    for &(v, k) in &undo {
        match k {
            Kept::Table { before, create, .. } => {
                for s in before {
                    push(&mut p, v, Stage::Create, Action::Sql(s.clone()));
                }
                push(&mut p, v, Stage::Create, Action::Sql(create.clone()));
            }
            Kept::Columns { table, columns, .. } => {
                let adds = columns.iter().map(add_column).collect::<Vec<_>>().join(", ");
                push(&mut p, v, Stage::Create, Action::Sql(format!("ALTER TABLE {table} {adds}")));
            }
            _ => {}
        }
    }
    for &(v, k) in &undo {
        if let Kept::Function { create, .. } = k {
            push(&mut p, v, Stage::Create, Action::Sql(create.clone()));
        }
    }
    for &(v, k) in &undo {
        match k {
            Kept::Table { table, columns, key, backup_table, .. } => push(
                &mut p,
                v,
                Stage::Restore,
                Action::InsertRows { table: table.clone(), columns: columns.clone(), key: key.clone(), backup_table: backup_table.clone(), absent_only: false },
            ),
            Kept::Rows { table, columns, key, backup_table } => push(
                &mut p,
                v,
                Stage::Restore,
                Action::InsertRows { table: table.clone(), columns: columns.clone(), key: key.clone(), backup_table: backup_table.clone(), absent_only: !key.is_empty() },
            ),
            Kept::Columns { table, columns, key, hashed, backup_table: Some(b) } => push(
                &mut p,
                v,
                Stage::Restore,
                Action::RestoreColumns { table: table.clone(), key: key.clone(), columns: columns.clone(), hashed: hashed.clone(), backup_table: b.clone() },
            ),
            _ => {}
        }
    }
    for &(v, k) in &undo {
        if let Kept::Columns { table, columns, key, hashed, backup_table } = k {
            // The dropped BEFORE INSERT row triggers of this table, in name order (as they fire).
            let mut triggers: Vec<(&String, &String)> = undo
                .iter()
                .filter_map(|(_, k)| match k {
                    Kept::Trigger { table: t, trigger, create, replay: true, .. } if t == table => Some((trigger, create)),
                    _ => None,
                })
                .collect();
            triggers.sort();
            let triggers = triggers.into_iter().map(|(_, c)| c.clone()).collect();
            push(
                &mut p,
                v,
                Stage::Replay,
                Action::Replay { table: table.clone(), key: key.clone(), columns: columns.clone(), hashed: hashed.clone(), backup_table: backup_table.clone(), triggers },
            );
        }
    }
    for &(v, k) in &undo {
        match k {
            Kept::Columns { table, columns, .. } => {
                for c in columns {
                    if let Some(d) = &c.default {
                        push(&mut p, v, Stage::Finish, Action::Sql(format!("ALTER TABLE {table} ALTER COLUMN {} SET DEFAULT {d}", quote_ident(&c.name))));
                    }
                    if c.not_null {
                        push(&mut p, v, Stage::Finish, Action::NotNull { table: table.clone(), column: c.name.clone() });
                    }
                }
            }
            Kept::Default { table, column, default } => push(&mut p, v, Stage::Finish, Action::Sql(format!("ALTER TABLE {table} ALTER COLUMN {} SET DEFAULT {default}", quote_ident(column)))),
            Kept::NotNull { table, column } => push(&mut p, v, Stage::Finish, Action::NotNull { table: table.clone(), column: column.clone() }),
            _ => {}
        }
    }
    for &(v, k) in &undo {
        match k {
            Kept::Constraint { table, constraint, definition, .. } => push(&mut p, v, Stage::Finish, Action::Sql(format!("ALTER TABLE {table} ADD CONSTRAINT {constraint} {definition}"))),
            Kept::Index { create, .. } => push(&mut p, v, Stage::Finish, Action::Sql(create.clone())),
            Kept::Table { after, .. } => {
                for s in after {
                    push(&mut p, v, Stage::Finish, Action::Sql(s.clone()));
                }
            }
            _ => {}
        }
    }
    for &(v, k) in &undo {
        if let Kept::Trigger { table, trigger, create, enabled, .. } = k {
            push(&mut p, v, Stage::Finish, Action::Sql(create.clone()));
            let state = match enabled.as_str() {
                "D" => Some("DISABLE TRIGGER"),
                "R" => Some("ENABLE REPLICA TRIGGER"),
                "A" => Some("ENABLE ALWAYS TRIGGER"),
                _ => None,
            };
            if let Some(state) = state {
                push(&mut p, v, Stage::Finish, Action::Sql(format!("ALTER TABLE {table} {state} {trigger}")));
            }
        }
    }
    p
}

fn key_match(key: &[String]) -> String {
    key.iter().map(|k| format!("t.{k} = b.{k}", k = quote_ident(k))).collect::<Vec<_>>().join(" AND ")
}

fn cast(c: &ColumnDef) -> String {
    format!("CAST(b.{} AS {})", quote_ident(&c.name), c.type_sql)
}

/// `md5(ROW(t.a, t.b)::text)`: the row as it was hashed when kept.
fn row_md5(hashed: &[String]) -> String {
    format!("md5(ROW({})::text)", idents(hashed, "t."))
}

fn describe(a: &Action) -> String {
    match a {
        Action::Sql(s) => s.clone(),
        Action::CreateEnum { name, labels } => format!("CREATE TYPE {name} AS ENUM ({})", labels.iter().map(|l| crate::pg::quote_literal(l)).collect::<Vec<_>>().join(", ")),
        Action::RestoreColumns { table, key, columns, hashed, backup_table } => format!(
            "UPDATE {table} AS t SET {} FROM {backup_table} AS b WHERE {} AND {} = b.{ROW_MD5}  -- rows unchanged since they were kept",
            columns.iter().map(|c| format!("{} = {}", quote_ident(&c.name), cast(c))).collect::<Vec<_>>().join(", "),
            key_match(key),
            row_md5(hashed)
        ),
        Action::Replay { table, columns, triggers, .. } => {
            let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            if triggers.is_empty() {
                format!("-- rows of {table} changed since they were kept get their kept values; rows written since keep {} NULL (no sync trigger was dropped to fill them)", names.join(", "))
            } else {
                format!(
                    "-- rows of {table} written or changed since go through the kept trigger(s) on a temporary copy; {} are written back:\n{}",
                    names.join(", "),
                    triggers.iter().map(|t| format!("--   {t}")).collect::<Vec<_>>().join("\n")
                )
            }
        }
        Action::InsertRows { table, backup_table, absent_only, .. } => {
            format!("INSERT INTO {table} SELECT ... FROM {backup_table}{}", if *absent_only { "  -- rows whose key is free (rows written since keep theirs)" } else { "" })
        }
        Action::NotNull { table, column } => format!("ALTER TABLE {table} ALTER COLUMN {} SET NOT NULL  -- only if no row is left NULL", quote_ident(column)),
    }
}

fn count(tx: &mut impl GenericClient, sql: &str, what: &str) -> Result<i64> {
    Ok(tx.query_one(sql, &[]).map_err(db_err(what.to_string()))?.get(0))
}

impl Plan {
    /// Runs the plan in the caller's transaction.
    pub fn run(&self, tx: &mut impl GenericClient) -> Result<Recovered> {
        let mut out = Recovered { statements: self.statements.len(), unkept: self.unkept.clone(), ..Default::default() };
        for st in &self.statements {
            match &st.action {
                Action::Sql(sql) => tx.batch_execute(sql).map_err(db_err(format!("recovering V{}: {}", st.version, first_line(sql))))?,
                Action::CreateEnum { name, labels } => {
                    let sql = create_enum_sql(tx, name, labels)?;
                    tx.batch_execute(&sql).map_err(db_err(format!("recovering V{}: {}", st.version, first_line(&st.sql))))?;
                }
                Action::InsertRows { table, columns, key, backup_table, absent_only } => {
                    let n = insert_rows(tx, table, columns, key, backup_table, *absent_only)?;
                    out.tables.push(TableRecovery { table: table.clone(), version: st.version, inserted: n, ..Default::default() });
                }
                Action::RestoreColumns { table, key, columns, hashed, backup_table } => {
                    let set = columns.iter().map(|c| format!("{} = {}", quote_ident(&c.name), cast(c))).collect::<Vec<_>>().join(", ");
                    let n = tx
                        .execute(&format!("UPDATE {table} AS t SET {set} FROM {backup_table} AS b WHERE {} AND {} = b.{ROW_MD5}", key_match(key), row_md5(hashed)), &[])
                        .map_err(db_err(format!("restoring the kept columns of {table} from {backup_table}")))?;
                    out.tables.push(TableRecovery { table: table.clone(), version: st.version, restored: n, ..Default::default() });
                }
                Action::Replay { table, key, columns, hashed, backup_table, triggers } => {
                    let mut r = replay(tx, table, key, columns, hashed, backup_table.as_deref(), triggers)?;
                    r.version = st.version;
                    match out.tables.iter_mut().find(|t| t.table == *table && t.version == st.version) {
                        Some(t) => {
                            t.written_since = r.written_since;
                            t.replayed = r.replayed;
                            t.replay_refused = r.replay_refused;
                            t.first_refusal = r.first_refusal;
                            t.kept_values_used = r.kept_values_used;
                            t.left_null = r.left_null;
                        }
                        None => out.tables.push(r),
                    }
                }
                Action::NotNull { table, column } => {
                    let nulls = count(tx, &format!("SELECT count(*) FROM {table} WHERE {} IS NULL", quote_ident(column)), "counting rows left NULL")?;
                    if nulls == 0 {
                        tx.batch_execute(&format!("ALTER TABLE {table} ALTER COLUMN {} SET NOT NULL", quote_ident(column)))
                            .map_err(db_err(format!("restoring NOT NULL on {table}.{column}")))?;
                    } else {
                        out.not_null_skipped.push(format!("{table}.{column} ({nulls} rows NULL)"));
                    }
                }
            }
        }
        Ok(out)
    }
}

fn first_line(sql: &str) -> String {
    let l = sql.lines().next().unwrap_or_default();
    l.chars().take(100).collect()
}

fn insert_rows(tx: &mut impl GenericClient, table: &str, columns: &[String], key: &[String], backup_table: &str, absent_only: bool) -> Result<u64> {
    let live = tx
        .query(
            "SELECT attname::text, attgenerated <> '', attidentity = 'a', format_type(atttypid, atttypmod) FROM pg_attribute
             WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[&table],
        )
        .map_err(db_err(format!("reading the columns of {table}")))?;
    let mut cols = Vec::new();
    let mut vals = Vec::new();
    let mut overriding = "";
    for r in &live {
        let (name, generated, always, type_sql): (String, bool, bool, String) = (r.get(0), r.get(1), r.get(2), r.get(3));
        if generated || !columns.contains(&name) {
            continue;
        }
        if always {
            overriding = " OVERRIDING SYSTEM VALUE";
        }
        vals.push(format!("CAST(b.{} AS {type_sql})", quote_ident(&name)));
        cols.push(name);
    }
    let filter = if absent_only { format!(" WHERE NOT EXISTS (SELECT 1 FROM {table} AS t WHERE {})", key_match(key)) } else { String::new() };
    let n = tx
        .execute(&format!("INSERT INTO {table} ({}){overriding} SELECT {} FROM {backup_table} AS b{filter}", idents(&cols, ""), vals.join(", ")), &[])
        .map_err(db_err(format!("re-inserting the kept rows of {table} from {backup_table}")))?;
    advance_sequences(tx, table, &cols)?;
    Ok(n)
}

/// Stage 3 for one table's re-created columns.
fn replay(tx: &mut impl GenericClient, table: &str, key: &[String], columns: &[ColumnDef], hashed: &[String], backup_table: Option<&str>, triggers: &[String]) -> Result<TableRecovery> {
    let mut r = TableRecovery { table: table.to_string(), ..Default::default() };
    let what = |s: &str| format!("replaying the rows of {table} written since: {s}");
    // Rows to replay: not kept (written since), or changed since.
    let (join, candidates) = match backup_table {
        Some(b) => (
            format!(" LEFT JOIN {b} AS b ON {}", key_match(key)),
            format!("b.{} IS NULL OR {} IS DISTINCT FROM b.{ROW_MD5}", quote_ident(&key[0]), row_md5(hashed)),
        ),
        None => (String::new(), "true".to_string()),
    };
    let n = count(tx, &format!("SELECT count(*) FROM {table} AS t{join} WHERE {candidates}"), &what("counting"))?;
    r.written_since = n as u64;
    if n > 0 && !triggers.is_empty() {
        let live: Vec<String> = tx
            .query("SELECT attname::text FROM pg_attribute WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum", &[&table])
            .map_err(db_err(what("reading columns")))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let select: Vec<String> = live
            .iter()
            .map(|l| match columns.iter().find(|c| &c.name == l) {
                Some(c) => {
                    let default = c.default.clone().unwrap_or_else(|| "NULL".into());
                    let kept = if backup_table.is_some() { format!("CASE WHEN b.{} IS NULL THEN {default} ELSE {} END", quote_ident(&key[0]), cast(c)) } else { default };
                    format!("CAST({kept} AS {})", c.type_sql)
                }
                None => format!("t.{}", quote_ident(l)),
            })
            .collect();
        let mut sql = format!("CREATE TEMP TABLE phasegate_replay ON COMMIT DROP AS SELECT *, NULL::tid AS phasegate_ctid FROM {table} WITH NO DATA;\n");
        for t in triggers {
            let Some(create) = retarget_trigger(t, "pg_temp.phasegate_replay") else { continue };
            sql.push_str(&create);
            sql.push_str(";\n");
        }
        let body = format!(
            "
DECLARE r pg_temp.phasegate_replay%ROWTYPE;
BEGIN
  refused := 0;
  FOR r IN SELECT {}, t.ctid FROM {table} AS t{join} WHERE {candidates} LOOP
    BEGIN
      INSERT INTO pg_temp.phasegate_replay SELECT r.*;
    EXCEPTION WHEN OTHERS THEN
      refused := refused + 1;
      first_refusal := coalesce(first_refusal, SQLERRM);
    END;
  END LOOP;
END",
            select.join(", ")
        );
        sql.push_str(&super::create_function(tx, "pg_temp.phasegate_replay_rows(OUT refused bigint, OUT first_refusal text) LANGUAGE plpgsql", &body)?);
        sql.push_str(";\n");
        tx.batch_execute(&sql).map_err(db_err(what("preparing")))?;
        let row = tx.query_one("SELECT * FROM pg_temp.phasegate_replay_rows()", &[]).map_err(db_err(what("running the kept triggers")))?;
        r.replay_refused = row.get::<_, i64>(0) as u64;
        r.first_refusal = row.get(1);
        let set = columns.iter().map(|c| format!("{c} = x.{c}", c = quote_ident(&c.name))).collect::<Vec<_>>().join(", ");
        r.replayed = tx
            .execute(&format!("UPDATE {table} AS t SET {set} FROM pg_temp.phasegate_replay AS x WHERE t.ctid = x.phasegate_ctid"), &[])
            .map_err(db_err(what("writing back")))?;
        tx.batch_execute("DROP FUNCTION pg_temp.phasegate_replay_rows(); DROP TABLE pg_temp.phasegate_replay;").map_err(db_err(what("cleaning up")))?;
    }
    // Rows changed since that no trigger filled keep their kept values.
    if let Some(b) = backup_table {
        if n > 0 {
            let set = columns.iter().map(|c| format!("{} = {}", quote_ident(&c.name), cast(c))).collect::<Vec<_>>().join(", ");
            let unfilled = columns.iter().map(|c| format!("t.{} IS NULL", quote_ident(&c.name))).collect::<Vec<_>>().join(" AND ");
            r.kept_values_used = tx
                .execute(&format!("UPDATE {table} AS t SET {set} FROM {b} AS b WHERE {} AND {unfilled}", key_match(key)), &[])
                .map_err(db_err(what("setting back kept values")))?;
        }
        // New rows get the column default, as an INSERT would have given them.
        let defaults: Vec<String> = columns.iter().filter_map(|c| c.default.as_ref().map(|d| format!("{c} = coalesce(t.{c}, {d})", c = quote_ident(&c.name)))).collect();
        if !defaults.is_empty() && triggers.is_empty() && n > 0 {
            tx.execute(&format!("UPDATE {table} AS t SET {} WHERE NOT EXISTS (SELECT 1 FROM {b} AS b WHERE {})", defaults.join(", "), key_match(key)), &[])
                .map_err(db_err(what("filling defaults")))?;
        }
    }
    // Rows written since (not kept) left NULL: nothing could fill them.
    let nulls = columns.iter().map(|c| format!("count(*) FILTER (WHERE t.{} IS NULL)", quote_ident(&c.name))).collect::<Vec<_>>().join(", ");
    let new_rows = match backup_table {
        Some(_) => format!("b.{} IS NULL", quote_ident(&key[0])),
        None => "true".to_string(),
    };
    let row = tx.query_one(&format!("SELECT {nulls} FROM {table} AS t{join} WHERE {new_rows}"), &[]).map_err(db_err(what("counting rows left NULL")))?;
    r.left_null = columns.iter().enumerate().map(|(i, c)| (c.name.clone(), row.get::<_, i64>(i))).collect();
    Ok(r)
}

#[cfg(test)]
mod tests;
