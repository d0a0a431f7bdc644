//! `restore`: putting back the rows a backup saved, by primary key, in the
//! caller's transaction, refusing before writing anything when the table,
//! a column or the primary key it needs is gone.

use postgres::{Client, GenericClient};
use serde::Serialize;

use super::{idents, BackupKind, Stored};
use crate::error::{db_err, Error, RestoreBlock, Result};
use crate::pg::quote_ident;

/// What restoring one backup did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub table: String,
    pub backup_table: String,
    /// Live rows set back to their backed-up values.
    pub updated: u64,
    /// Backed-up rows that no longer existed and were inserted again.
    pub inserted: u64,
    /// Backed-up rows already identical to the live ones.
    pub unchanged: u64,
    /// Rows of a column backup whose row no longer exists.
    pub skipped: u64,
}


struct Col {
    name: String,
    generated: bool,
    identity_always: bool,
    /// The live column's type, to cast backed-up values back to it.
    type_sql: String,
}

/// The live columns of `table`, `None` when it is gone (one round trip: a
/// row of NULLs when the table has no column).
fn live_columns(client: &mut impl GenericClient, table: &str) -> Result<Option<Vec<Col>>> {
    let rows = client
        .query(
            "SELECT r.oid IS NOT NULL, a.attname::text, a.attgenerated <> '', a.attidentity = 'a', pg_catalog.format_type(a.atttypid, a.atttypmod)
             FROM (SELECT pg_catalog.to_regclass($1) AS oid) AS r
             LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&table],
        )
        .map_err(db_err(format!("reading the columns of {table}")))?;
    if !rows.first().is_some_and(|r| r.get::<_, bool>(0)) {
        return Ok(None);
    }
    Ok(Some(
        rows.iter()
            .filter(|r| r.get::<_, Option<String>>(1).is_some())
            .map(|r| Col { name: r.get(1), generated: r.get(2), identity_always: r.get(3), type_sql: r.get(4) })
            .collect(),
    ))
}

/// Puts back the rows of `backups` (one run's), newest backup first, in the
/// caller's transaction: UPDATE by primary key where the row still exists,
/// INSERT where it does not (whole-row backups), UPDATE of the saved columns
/// (column backups). Refuses, changing nothing, when a table or column the
/// backup needs is gone or the table has no primary key.
pub(crate) fn restore(tx: &mut impl GenericClient, backups: &[Stored], restore_run_id: &str) -> Result<Vec<Restored>> {
    let mut out = Vec::new();
    let ledger = crate::ledger::tables(tx)?.backups;
    for b in backups.iter().rev() {
        let Some(live) = live_columns(tx, &b.table)? else {
            return Err(blocked(b, RestoreBlock::TableGone { table: b.table.clone() }));
        };
        let missing: Vec<&str> = b.columns.iter().filter(|c| !live.iter().any(|l| &l.name == *c)).map(String::as_str).collect();
        if !missing.is_empty() {
            return Err(blocked(b, RestoreBlock::ColumnsGone { table: b.table.clone(), columns: missing.iter().map(|c| c.to_string()).collect() }));
        }
        if b.key_columns.is_empty() {
            return Err(blocked(b, RestoreBlock::NoPrimaryKey { table: b.table.clone() }));
        }
        let gen = |c: &str| live.iter().any(|l| l.name == c && l.generated);
        let ident_always = |c: &str| live.iter().any(|l| l.name == c && l.identity_always);
        // Backed-up values as the live column's type (user types are stored as text).
        let val = |c: &str| match live.iter().find(|l| l.name == c) {
            Some(l) => format!("CAST(b.{} AS {})", quote_ident(c), l.type_sql),
            None => format!("b.{}", quote_ident(c)),
        };
        let key_match = b.key_columns.iter().map(|k| format!("t.{} = {}", quote_ident(k), val(k))).collect::<Vec<_>>().join(" AND ");
        let set_cols: Vec<&String> = b.columns.iter().filter(|c| !b.key_columns.contains(c) && !gen(c) && !ident_always(c)).collect();
        let differs = if set_cols.is_empty() {
            "false".to_string()
        } else {
            set_cols.iter().map(|c| format!("t.{c}::text IS DISTINCT FROM b.{c}::text", c = quote_ident(c))).collect::<Vec<_>>().join(" OR ")
        };
        // Backed-up rows, and those whose key is not in the table (the
        // UPDATE below changes no key).
        let counts = tx
            .query_one(
                &format!("SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM {} AS t WHERE {key_match})) FROM {} AS b", b.table, b.backup_table),
                &[],
            )
            .map_err(db_err(format!("reading {}", b.backup_table)))?;
        let (total, absent): (i64, i64) = (counts.get(0), counts.get(1));
        let updated = if set_cols.is_empty() {
            0
        } else {
            let assign = set_cols.iter().map(|c| format!("{} = {}", quote_ident(c), val(c))).collect::<Vec<_>>().join(", ");
            tx.execute(&format!("UPDATE {} AS t SET {assign} FROM {} AS b WHERE {key_match} AND ({differs})", b.table, b.backup_table), &[])
                .map_err(db_err(format!("restoring {} from {}", b.table, b.backup_table)))?
        };
        let (inserted, skipped) = if b.kind == BackupKind::Rows && absent > 0 {
            let cols: Vec<String> = b.columns.iter().filter(|c| !gen(c)).cloned().collect();
            let overriding = if cols.iter().any(|c| ident_always(c)) { " OVERRIDING SYSTEM VALUE" } else { "" };
            let n = tx
                .execute(
                    &format!(
                        "INSERT INTO {} ({}){overriding} SELECT {} FROM {} AS b WHERE NOT EXISTS (SELECT 1 FROM {} AS t WHERE {key_match})",
                        b.table,
                        idents(&cols, ""),
                        cols.iter().map(|c| val(c)).collect::<Vec<_>>().join(", "),
                        b.backup_table,
                        b.table
                    ),
                    &[],
                )
                .map_err(db_err(format!("re-inserting deleted rows of {} from {}", b.table, b.backup_table)))?;
            advance_sequences(tx, &b.table, &cols)?;
            (n, 0)
        } else {
            (0, absent as u64)
        };
        tx.execute(&format!("UPDATE {ledger} SET restored_at = pg_catalog.now(), restored_by = $2::text::uuid WHERE id = $1"), &[&b.id, &restore_run_id])
            .map_err(db_err("recording the restore"))?;
        let unchanged = (total as u64).saturating_sub(updated + inserted + skipped);
        out.push(Restored { table: b.table.clone(), backup_table: b.backup_table.clone(), updated, inserted, unchanged, skipped });
    }
    Ok(out)
}

fn blocked(b: &Stored, reason: RestoreBlock) -> Error {
    Error::RestoreBlocked { backup_table: b.backup_table.clone(), reason }
}

/// Moves the sequences behind identity and serial columns past the values
/// re-inserted rows brought back, so the next insert does not collide.
pub(super) fn advance_sequences(tx: &mut impl GenericClient, table: &str, cols: &[String]) -> Result<()> {
    let seqs = tx
        .query("SELECT c, s FROM pg_catalog.unnest($2::text[]) AS c, pg_catalog.pg_get_serial_sequence($1, c) AS s WHERE s IS NOT NULL", &[&table, &cols])
        .map_err(db_err(format!("looking up the sequences of {table}")))?;
    for r in seqs {
        let (c, seq): (String, String) = (r.get(0), r.get(1));
        // `seq` is pg_get_serial_sequence's text: the sequence's
        // schema-qualified name, quoted where it must be, so it is used as
        // it is where an identifier goes, and handed over as a parameter
        // where a value goes.
        tx.execute(
            &format!(
                "SELECT pg_catalog.setval($1::text::regclass, m) FROM (SELECT max({col})::bigint AS m FROM {table}) AS x, {seq} AS s
                 WHERE m > CASE WHEN s.is_called THEN s.last_value ELSE s.last_value - 1 END",
                col = quote_ident(&c)
            ),
            &[&seq],
        )
        .map_err(db_err(format!("advancing {seq} past the restored rows")))?;
    }
    Ok(())
}

/// Convenience for callers holding a `Client`: restore in one transaction.
pub fn restore_in_tx(client: &mut Client, backups: &[Stored], restore_run_id: &str, lock_timeout_ms: u128) -> Result<Vec<Restored>> {
    let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
    tx.batch_execute(&format!("SET LOCAL lock_timeout = '{lock_timeout_ms}ms'")).map_err(db_err("setting lock_timeout"))?;
    let out = restore(&mut tx, backups, restore_run_id)?;
    tx.commit().map_err(db_err("committing the restore"))?;
    Ok(out)
}

