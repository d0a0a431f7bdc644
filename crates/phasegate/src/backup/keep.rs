//! Keeping what an irreversible migration destroys, before it runs, in a
//! transaction of its own: each dropped object's definition (read from the
//! catalogs: `format_type`, enum labels in order, `pg_get_functiondef`,
//! `pg_get_triggerdef`, `pg_get_constraintdef`, `pg_get_indexdef`) in the
//! `phasegate_kept` ledger, and the data it holds in `phasegate_backup`
//! tables recorded in `phasegate_backups`: whole tables for DROP TABLE and
//! TRUNCATE; for dropped columns (and columns of a dropped type) every
//! row's primary key, the column values and an md5 of the rest of the row,
//! so `recover` can tell rows changed since from rows left alone.

use postgres::GenericClient;

use super::capture::{generated_ident, resolve, textify, Table};
use super::destroys::{destroys, Destroy, Destroys, Unkept};
use super::{idents, Backup, BackupKind, Change, SCHEMA};
use crate::error::{db_err, Result};
use crate::pg::quote_ident;

pub use super::kept::{ColumnDef, Kept, KeptStep, Size, StoredKept, KEPT, ROW_MD5};

fn q1<T: for<'a> postgres::types::FromSql<'a>>(c: &mut impl GenericClient, sql: &str, params: &[&(dyn postgres::types::ToSql + Sync)], what: &str) -> Result<T> {
    Ok(c.query_one(sql, params).map_err(db_err(what.to_string()))?.get(0))
}

/// The columns of `table` (resolved) a Columns backup holds: the dropped
/// ones that exist and are not part of the key.
fn dropped_columns(t: &Table, columns: &[String]) -> Vec<String> {
    columns.iter().filter(|c| t.columns.contains(c) && !t.key.contains(c)).cloned().collect()
}

/// Measures what keeping `sql`'s destroyed data would copy: rows and bytes.
pub fn measure(c: &mut impl GenericClient, sql: &str) -> Result<Size> {
    let mut size = Size::default();
    for d in destroys(sql) {
        match &d.what {
            Destroys::Table { table } | Destroys::Rows { table } => {
                let Some(t) = resolve(c, table)? else { continue };
                size.rows += q1::<i64>(c, &format!("SELECT count(*) FROM {}", t.qualified), &[], "measuring a table to keep")?;
                size.bytes += q1::<i64>(c, "SELECT pg_total_relation_size($1::oid)", &[&t.oid], "measuring a table to keep")?;
            }
            Destroys::Columns { table, columns } => {
                let Some(t) = resolve(c, table)? else { continue };
                let mut cols = t.key.clone();
                cols.extend(dropped_columns(&t, columns));
                let sum = cols.iter().map(|c| format!("coalesce(pg_column_size({}), 0)", quote_ident(c))).collect::<Vec<_>>().join(" + ");
                let sum = if sum.is_empty() { "0".to_string() } else { sum };
                let row = c
                    .query_one(&format!("SELECT count(*), coalesce(sum({sum} + 16), 0)::bigint FROM {}", t.qualified), &[])
                    .map_err(db_err("measuring columns to keep"))?;
                size.rows += row.get::<_, i64>(0);
                size.bytes += row.get::<_, i64>(1);
            }
            _ => {}
        }
    }
    Ok(size)
}

/// SQL for `schema.table` (each part quoted only when it must be) of the
/// relation whose oid is in `col`: the same form `capture::resolve` gives.
fn qualified(col: &str) -> String {
    format!("(SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = {col})")
}

/// The state of one keep in progress.
struct Keeper<'a> {
    run_id: &'a str,
    short: String,
    version: i32,
    out: KeptStep,
    /// (table oid, column) of every column kept so far.
    kept_columns: Vec<(u32, String)>,
}

impl Keeper<'_> {
    /// Copies `select` into a new backup table and records it in `phasegate_backups`.
    fn copy(&mut self, tx: &mut impl GenericClient, t: &Table, select: &str, kind: BackupKind, change: Change, columns: Vec<String>) -> Result<String> {
        let name = super::capture::free_name(tx, &t.relname, &self.short, &self.out.backups)?;
        let backup_table = format!("{SCHEMA}.{}", generated_ident(&name));
        // CREATE TABLE AS reports the rows it wrote: no count afterwards.
        let rows = tx.execute(&format!("CREATE TABLE {backup_table} AS {select}"), &[]).map_err(db_err(format!("keeping {} in {backup_table}", t.qualified)))? as i64;
        textify(tx, &backup_table)?;
        let bytes: i64 = q1(tx, "SELECT pg_total_relation_size($1::text::regclass)", &[&backup_table], "measuring kept rows")?;
        let b = Backup { version: self.version, table: t.qualified.clone(), backup_table: backup_table.clone(), kind, changes: vec![change], columns, key_columns: t.key.clone(), rows };
        super::capture::record(tx, self.run_id, &b)?;
        self.out.size += Size { rows, bytes };
        self.out.backups.push(b);
        Ok(backup_table)
    }

    fn columns(&mut self, tx: &mut impl GenericClient, t: &Table, names: &[String]) -> Result<()> {
        let dropped = dropped_columns(t, names);
        if dropped.is_empty() {
            return Ok(());
        }
        let mut defs = Vec::new();
        for name in &dropped {
            let r = tx
                .query_one(
                    "SELECT format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid),
                            CASE WHEN a.attcollation <> 0 AND a.attcollation <> ty.typcollation THEN quote_ident(co.collname) END
                     FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
                     LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                     LEFT JOIN pg_collation co ON co.oid = a.attcollation
                     WHERE a.attrelid = $1 AND a.attname = $2",
                    &[&t.oid, name],
                )
                .map_err(db_err(format!("reading the definition of {}.{name}", t.qualified)))?;
            defs.push(ColumnDef { name: name.clone(), type_sql: r.get(0), not_null: r.get(1), default: r.get(2), collation: r.get(3) });
        }
        self.kept_columns.extend(dropped.iter().map(|c| (t.oid, c.clone())));
        let hashed: Vec<String> = t.columns.iter().filter(|c| !dropped.contains(c)).cloned().collect();
        let backup_table = if t.key.is_empty() {
            None
        } else {
            let mut cols = t.key.clone();
            cols.extend(dropped.iter().cloned());
            let select = format!("SELECT {}, md5(ROW({})::text) AS {ROW_MD5} FROM {}", idents(&cols, ""), idents(&hashed, ""), t.qualified);
            Some(self.copy(tx, t, &select, BackupKind::Columns, Change::DropColumn, cols)?)
        };
        self.out.kept.push(Kept::Columns { table: t.qualified.clone(), columns: defs, key: t.key.clone(), hashed, backup_table });
        // Indexes and constraints that go with the columns.
        let deps = tx
            .query(
                "SELECT DISTINCT d.classid = 'pg_constraint'::regclass, d.objid
                 FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                 WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1 AND a.attname = ANY($2)
                   AND d.classid IN ('pg_constraint'::regclass, 'pg_class'::regclass) AND d.deptype IN ('a', 'n')",
                &[&t.oid, &dropped],
            )
            .map_err(db_err(format!("reading what depends on the dropped columns of {}", t.qualified)))?;
        for r in deps {
            let (is_constraint, oid): (bool, u32) = (r.get(0), r.get(1));
            if is_constraint {
                self.constraint_by_oid(tx, oid)?;
            } else {
                self.index_by_oid(tx, oid)?;
            }
        }
        Ok(())
    }

    fn constraint_by_oid(&mut self, tx: &mut impl GenericClient, oid: u32) -> Result<()> {
        let r = tx
            .query_opt(
                &format!("SELECT {}, quote_ident(conname), pg_get_constraintdef(oid), convalidated FROM pg_constraint WHERE oid = $1 AND conrelid <> 0", qualified("conrelid")),
                &[&oid],
            )
            .map_err(db_err("reading a constraint"))?;
        if let Some(r) = r {
            let k = Kept::Constraint { table: r.get(0), constraint: r.get(1), definition: r.get(2), validated: r.get(3) };
            if !self.out.kept.contains(&k) {
                self.out.kept.push(k);
            }
        }
        Ok(())
    }

    /// An index, unless a constraint owns it (the constraint re-creates it).
    fn index_by_oid(&mut self, tx: &mut impl GenericClient, oid: u32) -> Result<()> {
        let r = tx
            .query_opt(
                "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
                 WHERE i.indexrelid = $1 AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))",
                &[&oid],
            )
            .map_err(db_err("reading an index"))?;
        if let Some(r) = r {
            let k = Kept::Index { index: r.get(0), create: r.get(1) };
            if !self.out.kept.contains(&k) {
                self.out.kept.push(k);
            }
        }
        Ok(())
    }

    fn ty(&mut self, tx: &mut impl GenericClient, name: &str, line: usize) -> Result<()> {
        let Some(r) = tx
            .query_opt(
                "SELECT t.oid, quote_ident(n.nspname) || '.' || quote_ident(t.typname), t.typtype::text, t.typarray FROM pg_type t
                 JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = to_regtype($1)",
                &[&name],
            )
            .map_err(db_err(format!("looking up type {name}")))?
        else {
            return Ok(());
        };
        let (oid, qualified, typtype, array): (u32, String, String, u32) = (r.get(0), r.get(1), r.get(2), r.get(3));
        // The columns that use it go with it (with CASCADE) or must be gone
        // before it (without): keep those not kept already.
        let users = tx
            .query(
                "SELECT c.oid, a.attname::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE a.atttypid IN ($1, $2) AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND n.nspname <> $3
                 ORDER BY 1, a.attnum",
                &[&oid, &array, &SCHEMA],
            )
            .map_err(db_err(format!("reading the columns of type {name}")))?;
        let mut by_table: Vec<(u32, Vec<String>)> = Vec::new();
        for u in users {
            let (table, column): (u32, String) = (u.get(0), u.get(1));
            if self.kept_columns.contains(&(table, column.clone())) {
                continue;
            }
            match by_table.iter_mut().find(|(t, _)| *t == table) {
                Some((_, cols)) => cols.push(column),
                None => by_table.push((table, vec![column])),
            }
        }
        for (table, cols) in by_table {
            let name: String = q1(tx, "SELECT $1::oid::regclass::text", &[&table], "naming a table")?;
            if let Some(t) = resolve(tx, &name)? {
                self.columns(tx, &t, &cols)?;
            }
        }
        let kept = match typtype.as_str() {
            "e" => {
                let labels: Vec<String> = tx
                    .query("SELECT enumlabel::text FROM pg_enum WHERE enumtypid = $1 ORDER BY enumsortorder", &[&oid])
                    .map_err(db_err(format!("reading the labels of {name}")))?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                Kept::Enum { name: qualified, labels }
            }
            "d" => {
                let create: String = q1(
                    tx,
                    "SELECT 'CREATE DOMAIN ' || $2 || ' AS ' || format_type(t.typbasetype, t.typtypmod)
                        || coalesce(' DEFAULT ' || t.typdefault, '') || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
                        || coalesce((SELECT string_agg(' CONSTRAINT ' || quote_ident(conname) || ' ' || pg_get_constraintdef(oid), '' ORDER BY conname)
                                     FROM pg_constraint WHERE contypid = t.oid), '')
                     FROM pg_type t WHERE t.oid = $1",
                    &[&oid, &qualified],
                    "reading a domain",
                )?;
                Kept::Type { name: qualified, create }
            }
            "c" => {
                let create: String = q1(
                    tx,
                    "SELECT 'CREATE TYPE ' || $2 || ' AS (' || string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum) || ')'
                     FROM pg_type t JOIN pg_attribute a ON a.attrelid = t.typrelid WHERE t.oid = $1 AND a.attnum > 0 AND NOT a.attisdropped",
                    &[&oid, &qualified],
                    "reading a composite type",
                )?;
                Kept::Type { name: qualified, create }
            }
            _ => Kept::Unkept { line, statement: format!("DROP TYPE {qualified}"), why: Unkept::ObjectKind },
        };
        self.out.kept.push(kept);
        Ok(())
    }

    fn function(&mut self, tx: &mut impl GenericClient, name: &str, args: Option<&[String]>, line: usize) -> Result<()> {
        let exact: Option<u32> = match args {
            // Behind a savepoint: before PostgreSQL 16, to_regprocedure
            // raises on argument names and modes (`f(in a numeric)`), which
            // would abort the keeping transaction; the match by name below
            // covers those.
            Some(a) => {
                let mut sp = tx.transaction().map_err(db_err("starting a savepoint"))?;
                let found: Option<Option<u32>> = q1(&mut sp, "SELECT to_regprocedure($1)::oid", &[&format!("{name}({})", a.join(", "))], "looking up a function").ok();
                match found {
                    Some(o) => {
                        sp.commit().map_err(db_err("releasing a savepoint"))?;
                        o
                    }
                    None => {
                        sp.rollback().map_err(db_err("rolling back a savepoint"))?;
                        None
                    }
                }
            }
            None => None,
        };
        let oid = match exact {
            Some(o) => Some(o),
            None => {
                // Argument names or modes, or no list: match by name (and count).
                let n = args.map(|a| a.len() as i16);
                let rows = tx
                    .query(
                        "SELECT p.oid FROM pg_proc p JOIN pg_namespace ns ON ns.oid = p.pronamespace
                         WHERE p.proname = (parse_ident($1))[array_upper(parse_ident($1), 1)]
                           AND CASE WHEN array_length(parse_ident($1), 1) = 1 THEN ns.nspname = ANY(current_schemas(false))
                                    ELSE ns.nspname = (parse_ident($1))[1] END
                           AND ($2::int2 IS NULL OR p.pronargs = $2)",
                        &[&name, &n],
                    )
                    .map_err(db_err(format!("looking up function {name}")))?;
                (rows.len() == 1).then(|| rows[0].get(0))
            }
        };
        let Some(oid) = oid else { return Ok(()) };
        let r = tx
            .query_one("SELECT oid::regprocedure::text, CASE WHEN prokind IN ('f', 'p', 'w') THEN pg_get_functiondef(oid) END FROM pg_proc WHERE oid = $1", &[&oid])
            .map_err(db_err(format!("reading the definition of {name}")))?;
        let signature: String = r.get(0);
        self.out.kept.push(match r.get::<_, Option<String>>(1) {
            Some(create) => Kept::Function { signature, create },
            None => Kept::Unkept { line, statement: format!("DROP FUNCTION {signature}"), why: Unkept::ObjectKind },
        });
        Ok(())
    }

    fn trigger(&mut self, tx: &mut impl GenericClient, trigger: &str, table: &str) -> Result<()> {
        let r = tx
            .query_opt(
                &format!(
                    "SELECT {}, quote_ident(tgname), pg_get_triggerdef(oid), (tgtype & 7) = 7, tgenabled::text
                     FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2 AND NOT tgisinternal",
                    qualified("tgrelid")
                ),
                &[&table, &trigger],
            )
            .map_err(db_err(format!("reading trigger {trigger}")))?;
        if let Some(r) = r {
            self.out.kept.push(Kept::Trigger { table: r.get(0), trigger: r.get(1), create: r.get(2), replay: r.get(3), enabled: r.get(4) });
        }
        Ok(())
    }

    fn table(&mut self, tx: &mut impl GenericClient, t: &Table, change: Change) -> Result<()> {
        let select = format!("SELECT * FROM {}", t.qualified);
        let kind = if change == Change::Truncate { "rows" } else { "table" };
        let backup_table = self.copy(tx, t, &select, BackupKind::Rows, change, t.columns.clone())?;
        if kind == "rows" {
            self.out.kept.push(Kept::Rows { table: t.qualified.clone(), columns: t.columns.clone(), key: t.key.clone(), backup_table });
            return Ok(());
        }
        let (before, create, after) = super::tabledef::table_ddl(tx, t)?;
        self.out.kept.push(Kept::Table { table: t.qualified.clone(), before, create, after, columns: t.columns.clone(), key: t.key.clone(), backup_table });
        Ok(())
    }

    fn one(&mut self, tx: &mut impl GenericClient, d: &Destroy) -> Result<()> {
        match &d.what {
            Destroys::Table { table } | Destroys::Rows { table } => {
                let change = if matches!(d.what, Destroys::Rows { .. }) { Change::Truncate } else { Change::DropTable };
                if let Some(t) = resolve(tx, table)? {
                    self.table(tx, &t, change)?;
                }
            }
            Destroys::Columns { table, columns } => {
                if let Some(t) = resolve(tx, table)? {
                    self.columns(tx, &t, columns)?;
                }
            }
            Destroys::Constraint { table, constraint } => {
                let oid: Option<u32> = q1(tx, "SELECT oid FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2", &[table, constraint], "looking up a constraint").ok().flatten();
                if let Some(oid) = oid {
                    self.constraint_by_oid(tx, oid)?;
                }
            }
            Destroys::NotNull { table, column } => {
                let set: Option<bool> = q1(tx, "SELECT attnotnull FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2", &[table, column], "reading NOT NULL").ok();
                if set == Some(true) {
                    self.out.kept.push(Kept::NotNull { table: table.clone(), column: column.clone() });
                }
            }
            Destroys::Default { table, column } => {
                let default: Option<String> = q1(
                    tx,
                    "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
                     WHERE d.adrelid = to_regclass($1) AND a.attname = $2",
                    &[table, column],
                    "reading a default",
                )
                .ok();
                if let Some(default) = default {
                    self.out.kept.push(Kept::Default { table: table.clone(), column: column.clone(), default });
                }
            }
            Destroys::Type { name } => self.ty(tx, name, d.line)?,
            Destroys::Function { name, args } => self.function(tx, name, args.as_deref(), d.line)?,
            Destroys::Trigger { trigger, table } => self.trigger(tx, trigger, table)?,
            Destroys::Index { index } => {
                let oid: Option<u32> = q1(tx, "SELECT to_regclass($1)::oid", &[index], "looking up an index")?;
                if let Some(oid) = oid {
                    self.index_by_oid(tx, oid)?;
                }
            }
            Destroys::Unkept { statement, why } => self.out.kept.push(Kept::Unkept { line: d.line, statement: statement.clone(), why: *why }),
        }
        Ok(())
    }
}

/// Keeps what `sql` (version `version`'s forward SQL) destroys, in the
/// caller's transaction, and records it in the ledger under `run_id`.
pub fn keep(tx: &mut impl GenericClient, run_id: &str, version: i32, sql: &str) -> Result<KeptStep> {
    let short = super::capture::short_run(run_id);
    let mut k = Keeper { run_id, short, version, out: KeptStep { version, size: Size::default(), kept: Vec::new(), backups: Vec::new() }, kept_columns: Vec::new() };
    tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {SCHEMA}")).map_err(db_err("creating the phasegate_backup schema"))?;
    let items = destroys(sql);
    k.out.kept.push(Kept::Step { statements: crate::sqltext::statements(sql).len() });
    for d in &items {
        k.one(tx, d)?;
    }
    let ledger = crate::ledger::tables(tx)?.kept;
    for (ord, kept) in k.out.kept.iter().enumerate() {
        let definition = serde_json::to_string(kept).expect("a definition serialises");
        let object = match kept {
            Kept::Step { .. } => format!("V{version}"),
            other => other.describe(),
        };
        tx.execute(
            &format!("INSERT INTO {ledger} (run_id, version, ord, kind, object, definition) VALUES ($1::text::uuid, $2, $3, $4, $5, $6::text::jsonb)"),
            &[&run_id, &version, &(ord as i32), &kept.kind(), &object, &definition],
        )
        .map_err(db_err(format!("recording what V{version} destroys in {KEPT}")))?;
    }
    Ok(k.out)
}

/// Forgets what was kept before a migration that then did not commit: its
/// backup tables and ledger rows.
pub fn discard(tx: &mut impl GenericClient, run_id: &str, version: i32) -> Result<()> {
    let ledger = crate::ledger::tables(tx)?;
    let tables: Vec<String> = tx
        .query(&format!("SELECT backup_table FROM {} WHERE run_id = $1::text::uuid AND version = $2", ledger.backups), &[&run_id, &version])
        .map_err(db_err("reading kept backups"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for t in tables {
        tx.batch_execute(&format!("DROP TABLE IF EXISTS {t}")).map_err(db_err(format!("dropping {t}")))?;
    }
    tx.execute(&format!("DELETE FROM {} WHERE run_id = $1::text::uuid AND version = $2", ledger.backups), &[&run_id, &version])
        .map_err(db_err("forgetting kept backups"))?;
    tx.execute(&format!("DELETE FROM {} WHERE run_id = $1::text::uuid AND version = $2", ledger.kept), &[&run_id, &version])
        .map_err(db_err("forgetting kept definitions"))?;
    Ok(())
}

/// What was kept before `version` in run `run_id`, in the order it was kept;
/// `None` when that run kept nothing for it (no backup was taken).
pub fn kept_of(c: &mut impl GenericClient, run_id: &str, version: i32) -> Result<Option<Vec<StoredKept>>> {
    let ledger = crate::ledger::tables(c)?.kept;
    let exists: bool = q1(c, "SELECT pg_catalog.to_regclass($1) IS NOT NULL", &[&ledger], "reading the kept ledger")?;
    if !exists {
        return Ok(None);
    }
    let rows = c
        .query(
            &format!(
                "SELECT id, version, definition::text, to_char(recovered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM {ledger}
                 WHERE run_id = $1::text::uuid AND version = $2 ORDER BY ord"
            ),
            &[&run_id, &version],
        )
        .map_err(db_err("reading the kept ledger"))?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for r in rows {
        let text: String = r.get(2);
        let kept: Kept = serde_json::from_str(&text).map_err(|e| crate::error::Error::Unexpected { context: format!("reading what V{version} kept"), message: e.to_string() })?;
        out.push(StoredKept { id: r.get(0), version: r.get(1), kept, recovered_at: r.get(3) });
    }
    Ok(Some(out))
}
