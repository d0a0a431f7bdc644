//! Backups before data-changing rollbacks (docs/safety.md) and `restore`.
//!
//! Before a rollback script runs, [`targets`] reads which tables it changes
//! (UPDATE, DELETE, TRUNCATE, DROP TABLE, ALTER TABLE ... DROP COLUMN, also
//! inside data-modifying CTEs). In the rollback's own transaction,
//! [`Session::prepare`] then
//!
//! * for UPDATE / DELETE targets creates `phasegate_backup."<table>_<run>"`
//!   (`LIKE` the table, plus its primary key) and a statement-level AFTER
//!   trigger with a transition table that copies the old version of exactly
//!   the rows the statements changed (only the first version of a row
//!   updated twice is kept);
//! * for TRUNCATE / DROP TABLE copies the whole table, and for DROP COLUMN
//!   the primary key and the dropped columns of rows where any of them is set,
//!   before the script runs.
//!
//! [`Session::finish`] drops the triggers, counts what was saved, drops empty
//! backup tables and records the rest in the `phasegate_backups` ledger, all
//! before the rollback commits: the backup exists exactly when the rollback
//! committed. [`restore`] puts the rows back. A batched rollback's backup
//! ([`BatchBackup`]) is taken the same way, batch by batch, each in its
//! batch's transaction.

//!
//! Before each migration of an irreversible phase, [`keep`] does the same
//! for what the migration destroys ([`destroys`] reads it), in a transaction
//! of its own: definitions in the `phasegate_kept` ledger, data in backup
//! tables; [`recovery_plan`] turns that back into a way back (`recover`).
//!
//! `targets` reads the statements, `capture` takes the backup, `restore`
//! puts rows back; this file holds the types and the ledger queries.

mod batched;
mod capture;
mod destroys;
mod keep;
mod kept;
mod recover;
mod restore;
mod statement;
mod tabledef;
mod targets;

use std::collections::BTreeMap;

use postgres::GenericClient;
use serde::Serialize;

use crate::error::{db_err, Error, Result};
use crate::pg::quote_ident;

pub(crate) use batched::BatchBackup;
pub(crate) use capture::Session;
pub use destroys::{destroys, Destroy, Destroys, Unkept};
pub(crate) use keep::{discard, keep, kept_of, measure};
pub use keep::{ColumnDef, Kept, KeptStep, Size};
pub use recover::{plan as recovery_plan, Plan as RecoveryPlan, Planned, Recovered, Stage, TableRecovery};
pub use restore::{restore_in_tx as restore, Restored};
#[cfg(test)]
pub(crate) use {restore::restore as restore_rows, tabledef::create_enum_sql};
pub use targets::{targets, Change, Target};

/// The schema holding backup tables (snapshots ignore it).
pub const SCHEMA: &str = "phasegate_backup";
/// The ledger of backups.
pub(crate) const LEDGER: &str = "phasegate_backups";

/// `CREATE FUNCTION {head} AS '<body>'` with the body quoted by the server
/// (`format('%L')`): a name inside the body (a table called
/// `$phasegate$...`) cannot end it as it could end a dollar quote, whatever
/// `standard_conforming_strings` says.
pub(super) fn create_function(tx: &mut impl GenericClient, head: &str, body: &str) -> Result<String> {
    Ok(tx
        .query_one("SELECT pg_catalog.format('CREATE FUNCTION %s AS %L', $1::text, $2::text)", &[&head, &body])
        .map_err(db_err("quoting a function's body"))?
        .get(0))
}

/// `"a", "b"` (each with `prefix`), for column lists.
pub(super) fn idents(cols: &[String], prefix: &str) -> String {
    cols.iter().map(|c| format!("{prefix}{}", quote_ident(c))).collect::<Vec<_>>().join(", ")
}

/// What a backup table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupKind {
    /// Whole rows (UPDATE, DELETE, TRUNCATE, DROP TABLE).
    Rows,
    /// The primary key and the dropped columns (DROP COLUMN).
    Columns,
}

impl BackupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupKind::Rows => "rows",
            BackupKind::Columns => "columns",
        }
    }
    fn parse(s: &str) -> BackupKind {
        if s == "columns" {
            BackupKind::Columns
        } else {
            BackupKind::Rows
        }
    }
}

/// A backup taken by a rollback.
#[derive(Debug, Clone, Serialize)]
pub struct Backup {
    pub version: i32,
    /// The source table, `schema.table` in `quote_ident` form.
    pub table: String,
    /// `phasegate_backup.<name>` in `quote_ident` form.
    pub backup_table: String,
    pub kind: BackupKind,
    /// What the rollback did to the table: UPDATE, DELETE, ...
    pub changes: Vec<Change>,
    pub columns: Vec<String>,
    pub key_columns: Vec<String>,
    pub rows: i64,
}


/// A backup as the ledger remembers it.
#[derive(Debug, Clone, Serialize)]
pub struct Stored {
    pub id: i64,
    pub run_id: String,
    pub version: i32,
    pub table: String,
    pub backup_table: String,
    pub kind: BackupKind,
    pub changes: Vec<String>,
    pub columns: Vec<String>,
    pub key_columns: Vec<String>,
    pub rows: i64,
    pub created_at: String,
    pub restored_at: Option<String>,
    pub restored_by: Option<String>,
}

/// The backup ledger's qualified name, when it exists.
fn ledger_table(client: &mut impl GenericClient) -> Result<Option<String>> {
    let t = crate::ledger::tables(client)?;
    let exists: bool = client.query_one("SELECT pg_catalog.to_regclass($1) IS NOT NULL", &[&t.backups]).map_err(db_err("reading the backup ledger"))?.get(0);
    Ok(exists.then_some(t.backups))
}

fn stored_sql(ledger: &str) -> String {
    format!(
        "SELECT id, run_id::text, version, table_name, backup_table, kind, changes, columns, key_columns, rows,
                to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                to_char(restored_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), restored_by::text
         FROM {ledger}"
    )
}

fn stored(rows: Vec<postgres::Row>) -> Vec<Stored> {
    rows.iter()
        .map(|r| Stored {
            id: r.get(0),
            run_id: r.get(1),
            version: r.get(2),
            table: r.get(3),
            backup_table: r.get(4),
            kind: BackupKind::parse(r.get(5)),
            changes: r.get(6),
            columns: r.get(7),
            key_columns: r.get(8),
            rows: r.get(9),
            created_at: r.get(10),
            restored_at: r.get(11),
            restored_by: r.get(12),
        })
        .collect()
}

/// The backups of the given runs (for `history`), by run id.
pub fn of_runs(client: &mut impl GenericClient, run_ids: &[String]) -> Result<BTreeMap<String, Vec<Stored>>> {
    let mut out: BTreeMap<String, Vec<Stored>> = BTreeMap::new();
    if run_ids.is_empty() {
        return Ok(out);
    }
    let Some(ledger) = ledger_table(client)? else { return Ok(out) };
    let rows = client
        .query(&format!("{} WHERE run_id::text = ANY($1) ORDER BY id", stored_sql(&ledger)), &[&run_ids])
        .map_err(db_err("reading the backup ledger"))?;
    for b in stored(rows) {
        out.entry(b.run_id.clone()).or_default().push(b);
    }
    Ok(out)
}

/// The full run id and backups of the run whose id is or starts with `run`.
pub fn of_run(client: &mut impl GenericClient, run: &str) -> Result<(String, Vec<Stored>)> {
    let run = run.trim().to_lowercase();
    if run.len() < 8 || !run.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(Error::NotARunId { given: run });
    }
    let Some(ledger) = ledger_table(client)? else {
        return Err(Error::NoBackups);
    };
    let rows = client
        .query(&format!("{} WHERE pg_catalog.left(run_id::text, pg_catalog.length($1::text)) = $1::text ORDER BY id", stored_sql(&ledger)), &[&run])
        .map_err(db_err("reading the backup ledger"))?;
    let found = stored(rows);
    let mut ids: Vec<&str> = found.iter().map(|b| b.run_id.as_str()).collect();
    ids.dedup();
    match ids.as_slice() {
        [] => Err(Error::RunHasNoBackups { run }),
        [one] => Ok((one.to_string(), found.clone())),
        many => Err(Error::AmbiguousRun { run: run.clone(), matches: many.iter().map(|m| m.to_string()).collect() }),
    }
}

