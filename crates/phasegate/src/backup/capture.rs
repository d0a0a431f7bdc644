//! Taking a backup inside a rollback's transaction: backup tables `LIKE`
//! the source watched by statement-level AFTER triggers with transition
//! tables (UPDATE, DELETE), or copies made before the script runs (TRUNCATE,
//! DROP TABLE, DROP COLUMN); then the triggers dropped, empty backups dropped
//! and the rest recorded in the `phasegate_backups` ledger.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use postgres::GenericClient;

use super::{idents, Backup, BackupKind, Change, Target, LEDGER, SCHEMA};
use crate::error::{db_err, Bypass, Error, Location, Result};
use crate::pg::{fit_name, quote_ident, MAX_IDENT_BYTES};

/// A table resolved in the catalogs.
pub(super) struct Table {
    pub(super) oid: u32,
    pub(super) qualified: String,
    pub(super) relname: String,
    pub(super) columns: Vec<String>,
    pub(super) key: Vec<String>,
}

/// The table `name` (as a statement names it), with its columns and
/// primary key, in one round trip; `None` when it is not an ordinary or
/// partitioned table outside the backup schema.
pub(super) fn resolve(client: &mut impl GenericClient, name: &str) -> Result<Option<Table>> {
    let row = client
        .query_opt(
            "SELECT c.oid, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), c.relname::text,
                    ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum),
                    ARRAY(SELECT a.attname::text FROM pg_catalog.pg_index i
                          CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                          JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                          WHERE i.indrelid = c.oid AND i.indisprimary ORDER BY k.ord)
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE c.oid = pg_catalog.to_regclass($1) AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
               AND n.nspname <> $2",
            &[&name, &SCHEMA],
        )
        .map_err(db_err(format!("looking up table {name}")))?;
    Ok(row.map(|r| Table { oid: r.get(0), qualified: r.get(1), relname: r.get(2), columns: r.get(3), key: r.get(4) }))
}

/// A generated name (`<table>_<run>`, never a keyword), quoted only when
/// it must be, so messages show `phasegate_backup.api_keys_3f2a9c1e`.
pub(super) fn generated_ident(s: &str) -> String {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_') && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        s.to_string()
    } else {
        quote_ident(s)
    }
}



/// The backups of one rollback step while its transaction is open.
pub struct Session {
    version: i32,
    short: String,
    pending: Vec<Backup>,
    /// Triggers to drop before commit.
    triggers: Vec<CopyTrigger>,
    /// The rollback file, for errors.
    file: PathBuf,
}

impl Session {
    /// Creates the backup tables, copies and triggers for `targets` (read
    /// from `file`) inside the caller's transaction. With `copy_only`,
    /// UPDATE and DELETE targets are copied whole instead of watched by a
    /// trigger (for rollback files that run outside a transaction).
    pub fn prepare(tx: &mut impl GenericClient, run_id: &str, version: i32, file: &Path, targets: &[Target], copy_only: bool) -> Result<Session> {
        let short = short_run(run_id);
        let mut s = Session { version, short, pending: Vec::new(), triggers: Vec::new(), file: file.to_path_buf() };
        if targets.is_empty() {
            return Ok(s);
        }
        // Group by table, in the order the script names them.
        let mut by_table: BTreeMap<u32, (Table, Vec<Change>, Vec<String>, usize)> = BTreeMap::new();
        for (n, t) in targets.iter().enumerate() {
            let Some(table) = resolve(tx, &t.table)? else { continue };
            let e = by_table.entry(table.oid).or_insert_with(|| (table, Vec::new(), Vec::new(), n));
            if !e.1.contains(&t.change) {
                e.1.push(t.change);
            }
            for c in &t.columns {
                if !e.2.contains(c) {
                    e.2.push(c.clone());
                }
            }
        }
        if by_table.is_empty() {
            return Ok(s);
        }
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {SCHEMA}")).map_err(db_err("creating the phasegate_backup schema"))?;
        let mut tables: Vec<_> = by_table.into_values().collect();
        tables.sort_by_key(|t| t.3);
        for (table, changes, dropped, first) in tables {
            let whole = changes.iter().any(|c| matches!(c, Change::Truncate | Change::DropTable));
            let dml = changes.iter().any(|c| matches!(c, Change::Update | Change::Delete));
            if whole || (dml && copy_only) {
                let name = s.create_table(tx, &table, &format!("SELECT * FROM {}", table.qualified), BackupKind::Rows, changes.clone(), table.columns.clone())?;
                let _ = name;
                continue;
            }
            if dml {
                let line = targets[first].line;
                s.watch(tx, &table, changes.iter().copied().filter(|c| matches!(c, Change::Update | Change::Delete)).collect(), line)?;
            }
            let dropped: Vec<String> = dropped.into_iter().filter(|c| table.columns.contains(c) && !table.key.contains(c)).collect();
            if !dropped.is_empty() {
                let mut cols = table.key.clone();
                cols.extend(dropped.iter().cloned());
                let any_set = dropped.iter().map(|c| format!("{} IS NOT NULL", quote_ident(c))).collect::<Vec<_>>().join(" OR ");
                let select = format!("SELECT {} FROM {} WHERE {any_set}", idents(&cols, ""), table.qualified);
                s.create_table(tx, &table, &select, BackupKind::Columns, vec![Change::DropColumn], cols)?;
            }
        }
        Ok(s)
    }

    fn free_name(&self, tx: &mut impl GenericClient, relname: &str) -> Result<String> {
        free_name(tx, relname, &self.short, &self.pending)
    }

    fn create_table(&mut self, tx: &mut impl GenericClient, table: &Table, select: &str, kind: BackupKind, changes: Vec<Change>, columns: Vec<String>) -> Result<String> {
        let name = self.free_name(tx, &table.relname)?;
        let qualified = format!("{SCHEMA}.{}", generated_ident(&name));
        tx.batch_execute(&format!("CREATE TABLE {qualified} AS {select}"))
            .map_err(db_err(format!("backing up {} to {qualified}", table.qualified)))?;
        textify(tx, &qualified)?;
        self.pending.push(Backup {
            version: self.version,
            table: table.qualified.clone(),
            backup_table: qualified,
            kind,
            changes,
            columns,
            key_columns: table.key.clone(),
            rows: 0,
        });
        Ok(name)
    }

    /// A backup table LIKE the source and AFTER triggers with transition
    /// tables that copy the old rows of every UPDATE / DELETE statement
    /// (the first of which is at `line`).
    fn watch(&mut self, tx: &mut impl GenericClient, table: &Table, changes: Vec<Change>, line: usize) -> Result<()> {
        let name = self.free_name(tx, &table.relname)?;
        let qualified = format!("{SCHEMA}.{}", generated_ident(&name));
        create_like(tx, table, &qualified)?;
        self.triggers.extend(install_copy_triggers(tx, table, &qualified, &name, &self.short, &changes, None, line)?);
        self.pending.push(watched(self.version, table, qualified, changes));
        Ok(())
    }

    /// Checks that the backup could not have been bypassed (see
    /// [`bypassed`]), then drops the triggers, counts the saved rows, drops
    /// empty backups and records the rest in the ledger; still inside the
    /// caller's transaction, which the caller rolls back on an error.
    pub fn finish(mut self, tx: &mut impl GenericClient, run_id: &str) -> Result<Vec<Backup>> {
        if let Some((t, how)) = bypassed(tx, &self.triggers, None)? {
            return Err(Error::BackupBypassed { at: Location::line(&self.file, t.line), table: t.table.clone(), how, batched: false });
        }
        drop_copy_triggers(tx, &self.triggers)?;
        let mut kept = Vec::new();
        for mut b in std::mem::take(&mut self.pending) {
            b.rows = tx.query_one(&format!("SELECT count(*) FROM {}", b.backup_table), &[]).map_err(db_err("counting backed-up rows"))?.get(0);
            if b.rows == 0 {
                tx.batch_execute(&format!("DROP TABLE {}", b.backup_table)).map_err(db_err("dropping an empty backup"))?;
                continue;
            }
            record(tx, run_id, &b)?;
            kept.push(b);
        }
        Ok(kept)
    }
}


/// The first eight hex digits of a run id: the suffix of its backup tables
/// and triggers.
pub(super) fn short_run(run_id: &str) -> String {
    run_id.chars().filter(|c| *c != '-').take(8).collect()
}

/// A backup of whole rows of `table` in `backup_table`, filled by copy
/// triggers, nothing saved yet.
pub(super) fn watched(version: i32, table: &Table, backup_table: String, changes: Vec<Change>) -> Backup {
    Backup {
        version,
        table: table.qualified.clone(),
        backup_table,
        kind: BackupKind::Rows,
        changes,
        columns: table.columns.clone(),
        key_columns: table.key.clone(),
        rows: 0,
    }
}

/// The prefix of a copy trigger's function: its name is the backup
/// table's with this in front.
const FUNCTION_PREFIX: &str = "copy_";

/// The longest backup table name, in bytes: with [`FUNCTION_PREFIX`] in
/// front it is still an identifier PostgreSQL keeps whole.
pub(super) const NAME_BYTES: usize = MAX_IDENT_BYTES - FUNCTION_PREFIX.len();

/// How many names [`free_name`] tries before it gives up.
pub(super) const NAME_TRIES: u32 = 1000;

/// A free name `<table>_<run>` (then `_2`, `_3`, ...) in the backup schema,
/// also not among `taken`, for a table and its copy function: the table's
/// name is cut by bytes, on a character boundary, so the suffix that makes
/// the name unique always survives (PostgreSQL would cut a longer name
/// itself, suffix first, and every run would find the same name taken).
pub(super) fn free_name(tx: &mut impl GenericClient, relname: &str, short: &str, taken: &[Backup]) -> Result<String> {
    for n in 1..=NAME_TRIES {
        let suffix = if n == 1 { format!("_{short}") } else { format!("_{short}_{n}") };
        let name = fit_name(relname, &suffix, NAME_BYTES);
        let exists: bool = tx
            .query_one(
                "SELECT pg_catalog.to_regclass(pg_catalog.quote_ident($1) || '.' || pg_catalog.quote_ident($2)) IS NOT NULL
                     OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace s ON s.oid = p.pronamespace
                                WHERE s.nspname = $1 AND p.proname = $3)",
                &[&SCHEMA, &name, &format!("{FUNCTION_PREFIX}{name}")],
            )
            .map_err(db_err("naming a backup table"))?
            .get(0);
        if !exists && !taken.iter().any(|b| b.backup_table == format!("{SCHEMA}.{}", generated_ident(&name))) {
            return Ok(name);
        }
    }
    Err(Error::NoFreeName { schema: SCHEMA, table: relname.to_string(), tries: NAME_TRIES })
}

/// Records a backup in the `phasegate_backups` ledger.
pub(super) fn record(tx: &mut impl GenericClient, run_id: &str, b: &Backup) -> Result<()> {
    let changes: Vec<&str> = b.changes.iter().map(|c| c.as_str()).collect();
    let ledger = crate::ledger::tables(tx)?.backups;
    tx.execute(
        &format!(
            "INSERT INTO {ledger} (run_id, version, table_name, backup_table, kind, changes, columns, key_columns, rows)
             VALUES ($1::text::uuid, $2, $3, $4, $5, $6, $7, $8, $9)"
        ),
        &[&run_id, &b.version, &b.table, &b.backup_table, &b.kind.as_str(), &changes, &b.columns, &b.key_columns, &b.rows],
    )
    .map_err(db_err(format!("recording the backup {} in {LEDGER}", b.backup_table)))?;
    Ok(())
}

/// `CREATE TABLE backup (LIKE source)` with the source's primary key, its
/// user-typed columns stored as text.
pub(super) fn create_like(tx: &mut impl GenericClient, table: &Table, qualified: &str) -> Result<()> {
    let mut sql = format!("CREATE TABLE {qualified} (LIKE {});", table.qualified);
    if !table.key.is_empty() {
        sql.push_str(&format!(" ALTER TABLE {qualified} ADD PRIMARY KEY ({});", idents(&table.key, "")));
    }
    tx.batch_execute(&sql).map_err(db_err(format!("preparing the backup of {} ({qualified})", table.qualified)))?;
    textify(tx, qualified)
}

/// A copy trigger to drop before commit, and its `pg_trigger` row as it
/// was once installed: anything that alters the trigger afterwards
/// (disables it, enables it again, renames it) writes a new version of the
/// row, at another `ctid`.
#[derive(Debug, Clone)]
pub(super) struct CopyTrigger {
    pub(super) name: String,
    /// The table, qualified.
    pub(super) table: String,
    pub(super) function: String,
    /// The first line of the rollback that changes the table.
    pub(super) line: usize,
    oid: u32,
    ctid: String,
}

/// Whether a rollback could have changed rows its backup did not see: a
/// copy trigger altered, disabled or gone since it was installed (say by
/// `ALTER TABLE ... DISABLE TRIGGER USER` in the rollback, or in a DO block
/// it runs), `session_replication_role` other than `origin`, or (`tag`,
/// batched rollbacks) the setting that tags the batch changed. Triggers
/// are created `ENABLE ALWAYS`, so a replica role alone does not stop them;
/// it is refused anyway, since it switches off the table's other triggers
/// and foreign keys. One round trip, run last before the commit.
pub(super) fn bypassed<'a>(tx: &mut impl GenericClient, triggers: &'a [CopyTrigger], tag: Option<&str>) -> Result<Option<(&'a CopyTrigger, Bypass)>> {
    let Some(first) = triggers.first() else { return Ok(None) };
    let oids: Vec<u32> = triggers.iter().map(|t| t.oid).collect();
    let row = tx
        .query_one(
            "SELECT pg_catalog.current_setting('session_replication_role'), pg_catalog.current_setting('phasegate.backup', true),
                    ARRAY(SELECT t.oid::text || ' ' || t.tgenabled::text || ' ' || t.ctid::text FROM pg_catalog.pg_trigger t WHERE t.oid = ANY($1::oid[]))",
            &[&oids],
        )
        .map_err(db_err("checking the backup triggers"))?;
    let (role, set_tag, rows): (String, Option<String>, Vec<String>) = (row.get(0), row.get(1), row.get(2));
    if role != "origin" {
        return Ok(Some((first, Bypass::ReplicationRole(role))));
    }
    if tag.is_some_and(|t| set_tag.as_deref() != Some(t)) {
        return Ok(Some((first, Bypass::Untagged)));
    }
    for t in triggers {
        let seen = rows.iter().map(|r| r.splitn(3, ' ').collect::<Vec<_>>()).find(|r| r[0] == t.oid.to_string());
        let how = match seen.as_deref() {
            None => Some(Bypass::Dropped),
            Some([_, "D", _]) => Some(Bypass::Disabled),
            Some([_, enabled, ctid]) if *enabled != "A" || *ctid != t.ctid => Some(Bypass::Altered),
            _ => None,
        };
        if let Some(how) = how {
            return Ok(Some((t, how)));
        }
    }
    Ok(None)
}

/// A function and statement-level AFTER triggers with transition tables that
/// copy the old version of every row an UPDATE / DELETE of `table` changes
/// into `qualified` (the first version of a row changed twice).
///
/// With `only_when`, the function copies only in transactions where the
/// setting `phasegate.backup` has that value (a batched rollback's batches
/// set it; everyone else's statements pass through untouched).
///
/// The triggers are `ENABLE ALWAYS`: they fire whatever the session's
/// `session_replication_role`. `line` is the first line of the rollback
/// that changes the table, for [`bypassed`]'s errors.
#[allow(clippy::too_many_arguments)]
pub(super) fn install_copy_triggers(
    tx: &mut impl GenericClient,
    table: &Table,
    qualified: &str,
    name: &str,
    short: &str,
    changes: &[Change],
    only_when: Option<&str>,
    line: usize,
) -> Result<Vec<CopyTrigger>> {
    let function = format!("{SCHEMA}.{}", generated_ident(&format!("{FUNCTION_PREFIX}{name}")));
    let conflict = if table.key.is_empty() { "" } else { " ON CONFLICT DO NOTHING" };
    // By name, not position: the rollback may add a column to the table
    // before it changes rows (re-creating one a phase dropped), and the
    // backup table holds the columns the table had when it was prepared.
    let columns = table.columns.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
    let copy = format!("INSERT INTO {qualified} ({columns}) SELECT {columns} FROM phasegate_old{conflict};");
    // Gated, it also counts what it saved in `phasegate.saved_<table oid>`
    // (local to the transaction), for the batch's ledger row.
    let body = match only_when {
        None => copy,
        Some(v) => {
            // The tag as a literal quoted by the server (right under any
            // standard_conforming_strings).
            let tag: String = tx.query_one("SELECT pg_catalog.quote_literal($1::text)", &[&v]).map_err(db_err("quoting a backup's tag"))?.get(0);
            format!(
                "IF pg_catalog.current_setting('phasegate.backup', true) = {tag} THEN
    {copy}
    GET DIAGNOSTICS saved = ROW_COUNT;
    PERFORM pg_catalog.set_config('phasegate.saved_' || TG_RELID::text,
      (coalesce(nullif(pg_catalog.current_setting('phasegate.saved_' || TG_RELID::text, true), ''), '0')::bigint + saved)::text, true);
  END IF;"
            )
        }
    };
    let mut sql = super::create_function(
        tx,
        &format!("{function}() RETURNS trigger LANGUAGE plpgsql"),
        &format!(
            "
DECLARE
  saved bigint;
BEGIN
  {body}
  RETURN NULL;
END"
        ),
    )?;
    sql.push(';');
    let mut names = Vec::new();
    for c in changes.iter().filter(|c| matches!(c, Change::Update | Change::Delete)) {
        let (event, suffix) = if *c == Change::Update { ("UPDATE", "u") } else { ("DELETE", "d") };
        let trigger = format!("phasegate_backup_{short}_{suffix}");
        sql.push_str(&format!(
            " CREATE TRIGGER {t} AFTER {event} ON {table} REFERENCING OLD TABLE AS phasegate_old FOR EACH STATEMENT EXECUTE FUNCTION {function}();
              ALTER TABLE {table} ENABLE ALWAYS TRIGGER {t};",
            t = quote_ident(&trigger),
            table = table.qualified
        ));
        names.push(trigger);
    }
    tx.batch_execute(&sql).map_err(db_err(format!("preparing the backup of {} ({qualified})", table.qualified)))?;
    let rows = tx
        .query("SELECT t.tgname::text, t.oid, t.ctid::text FROM pg_catalog.pg_trigger t WHERE t.tgrelid = $1 AND t.tgname = ANY($2)", &[&table.oid, &names])
        .map_err(db_err(format!("preparing the backup of {} ({qualified})", table.qualified)))?;
    Ok(rows
        .iter()
        .map(|r| CopyTrigger { name: r.get(0), table: table.qualified.clone(), function: function.clone(), line, oid: r.get(1), ctid: r.get(2) })
        .collect())
}

/// Drops copy triggers and their functions (DROP TRIGGER takes ACCESS
/// EXCLUSIVE on the table, held until the caller's transaction ends: do it
/// last before the commit).
pub(super) fn drop_copy_triggers(tx: &mut impl GenericClient, triggers: &[CopyTrigger]) -> Result<()> {
    let mut sql = String::new();
    let mut functions: Vec<&str> = Vec::new();
    for t in triggers {
        sql.push_str(&format!("DROP TRIGGER {} ON {};", quote_ident(&t.name), t.table));
        if !functions.contains(&t.function.as_str()) {
            functions.push(&t.function);
        }
    }
    for f in functions {
        sql.push_str(&format!("DROP FUNCTION {f}();"));
    }
    if !sql.is_empty() {
        tx.batch_execute(&sql).map_err(db_err("removing the backup triggers"))?;
    }
    Ok(())
}

/// Stores the backup's columns of user-defined types (enums, domains,
/// composites, their arrays) as text: a backup must not depend on a type
/// that a later migration drops (an irreversible cleanup's `DROP TYPE` would
/// fail on it). Rows reach these columns by assignment casts to text;
/// `restore` casts them back to the live column's type.
pub(super) fn textify(tx: &mut impl GenericClient, backup_table: &str) -> Result<()> {
    let cols: Vec<String> = tx
        .query(
            "SELECT a.attname::text FROM pg_attribute a
             JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
            &[&backup_table],
        )
        .map_err(db_err(format!("reading the column types of {backup_table}")))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if cols.is_empty() {
        return Ok(());
    }
    let alters = cols.iter().map(|c| format!("ALTER COLUMN {c} TYPE text USING {c}::text", c = quote_ident(c))).collect::<Vec<_>>().join(", ");
    tx.batch_execute(&format!("ALTER TABLE {backup_table} {alters}")).map_err(db_err(format!("storing user-typed columns of {backup_table} as text")))
}

