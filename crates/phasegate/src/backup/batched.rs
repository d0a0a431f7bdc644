//! The backup of a batched rollback (docs/safety.md, docs/directives.md): one backup table per
//! table the file changes, for the whole step, filled batch by batch, each
//! batch's old rows copied and counted in the `phasegate_backups` ledger
//! inside that batch's own transaction. A batch's rows are in the backup
//! exactly when the batch committed.
//!
//! The copying trigger is created once before the walk and dropped once
//! after it, each in a short transaction of its own under the run's lock
//! timeout; its function copies only in transactions that set
//! `phasegate.backup` to this run's tag, which only the batches do. So a
//! batch takes no lock beyond its UPDATE's (ROW EXCLUSIVE and the rows of
//! the batch): creating the trigger in every batch would hold SHARE ROW
//! EXCLUSIVE, which blocks every writer of the table, for the whole batch.
//! The application's own statements fire the trigger and pass through it.
//!
//! A run that dies between the two leaves the trigger in place, copying
//! nothing; the next run's `install` drops any phasegate backup trigger it
//! finds on the table before creating its own.

use std::path::{Path, PathBuf};

use postgres::{Client, GenericClient};

use super::capture::{bypassed, create_like, drop_copy_triggers, free_name, generated_ident, install_copy_triggers, record, resolve, short_run, watched, CopyTrigger};
use super::{Backup, Change, Target, SCHEMA};
use crate::error::{db_err, Error, Location, Result};
use crate::pg::quote_ident;

/// A batched rollback's backup, across its batches.
pub struct BatchBackup {
    run_id: String,
    short: String,
    targets: Vec<Target>,
    /// The backup tables.
    tables: Vec<Backup>,
    triggers: Vec<CopyTrigger>,
    /// The rollback file, for errors.
    file: PathBuf,
}

impl BatchBackup {
    /// Before the walk, in a transaction of its own (`timeouts` are the
    /// run's `SET LOCAL lock_timeout ...`): the backup tables of the UPDATE
    /// / DELETE targets of a batched file and the triggers that will copy
    /// the batches' old rows (`targets` read from `file`). `before_commit`
    /// runs last before the commit (the caller's lock tracing looks then).
    pub fn install(client: &mut Client, run_id: &str, version: i32, file: &Path, targets: Vec<Target>, timeouts: &str, before_commit: &mut dyn FnMut()) -> Result<BatchBackup> {
        let short = short_run(run_id);
        let targets: Vec<Target> = targets.into_iter().filter(|t| matches!(t.change, Change::Update | Change::Delete)).collect();
        let mut b = BatchBackup { run_id: run_id.to_string(), short, targets, tables: Vec::new(), triggers: Vec::new(), file: file.to_path_buf() };
        if b.targets.is_empty() {
            return Ok(b);
        }
        let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
        tx.batch_execute(timeouts).map_err(db_err("setting timeouts"))?;
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {SCHEMA}")).map_err(db_err("creating the phasegate_backup schema"))?;
        let targets = b.targets.clone();
        for t in &targets {
            let Some(table) = resolve(&mut tx, &t.table)? else { continue };
            if b.tables.iter().any(|x| x.table == table.qualified) {
                continue;
            }
            let mut changes: Vec<Change> = Vec::new();
            for c in targets.iter().filter(|o| o.table == t.table).map(|o| o.change) {
                if !changes.contains(&c) {
                    changes.push(c);
                }
            }
            drop_stale_triggers(&mut tx, &table.qualified)?;
            let name = free_name(&mut tx, &table.relname, &b.short, &b.tables)?;
            let qualified = format!("{SCHEMA}.{}", generated_ident(&name));
            create_like(&mut tx, &table, &qualified)?;
            b.triggers.extend(install_copy_triggers(&mut tx, &table, &qualified, &name, &b.short, &changes, Some(&b.short), t.line)?);
            b.tables.push(watched(version, &table, qualified, changes));
        }
        before_commit();
        tx.commit().map_err(db_err("committing the backup's triggers"))?;
        Ok(b)
    }

    /// In a batch's transaction, before its statement: the triggers copy
    /// this transaction's changes.
    pub fn begin(&self, tx: &mut impl GenericClient) -> Result<()> {
        if self.tables.is_empty() {
            return Ok(());
        }
        tx.execute("SELECT pg_catalog.set_config('phasegate.backup', $1, true)", &[&self.short]).map_err(db_err("tagging a batch for its backup"))?;
        Ok(())
    }

    /// In the batch's transaction, after its statement: refuses the batch
    /// (an error, on which the caller rolls it back) when its backup could
    /// have been bypassed (see `capture::bypassed`: a trigger disabled or
    /// altered since `install`, by the file or by anyone, a replica role,
    /// the batch's tag changed); else adds the rows this batch saved (the
    /// trigger counts them in a setting local to the transaction) to the
    /// backup's row in the ledger, recording the backup with its first rows.
    pub fn end(&self, tx: &mut impl GenericClient) -> Result<()> {
        if let Some((t, how)) = bypassed(tx, &self.triggers, Some(&self.short))? {
            return Err(Error::BackupBypassed { at: Location::line(&self.file, t.line), table: t.table.clone(), how, batched: true });
        }
        let ledger = crate::ledger::tables(tx)?.backups;
        for b in &self.tables {
            let saved: i64 = tx
                .query_one("SELECT coalesce(nullif(current_setting('phasegate.saved_' || to_regclass($1)::oid::text, true), ''), '0')::bigint", &[&b.table])
                .map_err(db_err("counting backed-up rows"))?
                .get(0);
            if saved == 0 {
                continue;
            }
            let n = tx
                .execute(&format!("UPDATE {ledger} SET rows = rows + $1 WHERE backup_table = $2"), &[&saved, &b.backup_table])
                .map_err(db_err(format!("counting the backup {}", b.backup_table)))?;
            if n == 0 {
                record(tx, &self.run_id, &Backup { rows: saved, ..b.clone() })?;
            }
        }
        Ok(())
    }

    /// After the walk (or when it failed), in a transaction of its own: the
    /// triggers dropped (ACCESS EXCLUSIVE for an instant), backup tables no
    /// batch saved a row into dropped, and the backups that hold rows, as
    /// the ledger counts them.
    pub fn finish(self, client: &mut Client, timeouts: &str, before_commit: &mut dyn FnMut()) -> Result<Vec<Backup>> {
        if self.tables.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
        tx.batch_execute(timeouts).map_err(db_err("setting timeouts"))?;
        drop_copy_triggers(&mut tx, &self.triggers)?;
        let ledger = crate::ledger::tables(&mut tx)?.backups;
        let mut kept = Vec::new();
        for mut b in self.tables {
            let rows: Option<i64> = tx
                .query_opt(&format!("SELECT rows FROM {ledger} WHERE backup_table = $1"), &[&b.backup_table])
                .map_err(db_err("reading the backup ledger"))?
                .map(|r| r.get(0));
            match rows {
                Some(rows) => {
                    b.rows = rows;
                    kept.push(b);
                }
                None => tx.batch_execute(&format!("DROP TABLE IF EXISTS {}", b.backup_table)).map_err(db_err("dropping an empty backup"))?,
            }
        }
        before_commit();
        tx.commit().map_err(db_err("committing"))?;
        Ok(kept)
    }
}

/// Drops the backup triggers an earlier run left on `table` (it died
/// between creating and dropping them) and their functions.
fn drop_stale_triggers(tx: &mut impl GenericClient, table: &str) -> Result<()> {
    let stale = tx
        .query(
            "SELECT t.tgname::text, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname)
             FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
             WHERE t.tgrelid = $1::text::regclass AND NOT t.tgisinternal AND pg_catalog.left(t.tgname::text, 17) = 'phasegate_backup_' AND n.nspname = $2",
            &[&table, &SCHEMA],
        )
        .map_err(db_err(format!("looking for stale backup triggers on {table}")))?;
    let (mut sql, mut functions) = (String::new(), Vec::new());
    for r in stale {
        let (trigger, function): (String, String) = (r.get(0), r.get(1));
        sql.push_str(&format!("DROP TRIGGER {} ON {table};", quote_ident(&trigger)));
        if !functions.contains(&function) {
            functions.push(function);
        }
    }
    for f in functions {
        sql.push_str(&format!(" DROP FUNCTION IF EXISTS {f}();"));
    }
    if !sql.is_empty() {
        tx.batch_execute(&sql).map_err(db_err(format!("dropping stale backup triggers on {table}")))?;
    }
    Ok(())
}
