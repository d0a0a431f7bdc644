//! A baseline phase on a database that already holds a schema: `migrate`
//! records its migrations as applied without running them, once the
//! baseline's own after-migrate checks pass on what is there (Flyway's
//! `baselineOnMigrate`, with the checks as the proof). On an empty database
//! the baseline runs like any phase, which is how `verify`, `demo` and
//! `phasegate::testing` build it.

use std::time::Instant;

use postgres::Client;

use super::exec::{finish_step, run_checks, Attempt};
use super::outcome::{Action, Options, StepOutcome, StepStatus};
use crate::check::{Verdict, When};
use crate::error::{db_err, Error, Location, Result};
use crate::ledger;
use crate::set::Step;
use crate::ui::Ui;

/// The objects a user made (tables, views, sequences, foreign tables,
/// functions, types) outside the system schemas, phasegate's ledger and its
/// backup schema, and outside extensions: none means an empty database.
const USER_OBJECTS: &str = "
WITH ns AS (
  SELECT oid FROM pg_namespace
  WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'phasegate_backup')
    AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp\\_%'
), ext AS (
  SELECT objid FROM pg_depend WHERE deptype = 'e'
)
SELECT (SELECT count(*) FROM pg_class c
         WHERE c.relnamespace IN (SELECT oid FROM ns) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
           AND c.relname <> 'refinery_schema_history' AND c.relname NOT LIKE 'phasegate\\_%'
           AND c.oid NOT IN (SELECT objid FROM ext))
     + (SELECT count(*) FROM pg_proc p
         WHERE p.pronamespace IN (SELECT oid FROM ns) AND p.proname NOT LIKE 'phasegate\\_%'
           AND p.oid NOT IN (SELECT objid FROM ext))
     + (SELECT count(*) FROM pg_type t
         WHERE t.typnamespace IN (SELECT oid FROM ns) AND t.typtype IN ('e', 'd', 'r', 'm')
           AND t.oid NOT IN (SELECT objid FROM ext))";

/// Whether the database holds objects of its own (see [`USER_OBJECTS`]).
pub(super) fn holds_objects(client: &mut Client) -> Result<bool> {
    // Typed: one round trip (an untyped query is prepared first).
    let n: i64 = client.query_typed_one(USER_OBJECTS, &[]).map_err(db_err("looking for an existing schema"))?.get(0);
    Ok(n > 0)
}

/// Records a baseline step as applied without running its SQL: its
/// after-migrate checks run first, in the same transaction as the ledger
/// rows, and a check saying ROLLBACK refuses (nothing recorded), since the
/// baseline then does not describe this database.
pub(super) fn record_step(client: &mut Client, step: &Step, ledger: &ledger::Tables, opts: &Options, ui: &mut dyn Ui) -> (StepOutcome, Option<Error>) {
    let started = Instant::now();
    ui.progress(&format!("  record V{} {} as applied: the database already holds the baseline's schema (not run)", step.version, step.name));
    let res = (|| -> Result<Attempt> {
        let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
        let checks = run_checks(&mut tx, step.version, step.checks_when(When::AfterMigrate), ui)?;
        if let Some(bad) = checks.iter().find(|c| c.verdict == Verdict::Rollback) {
            tx.rollback().map_err(db_err("rolling back"))?;
            return Err(Error::BaselineMismatch { at: Location::line(&step.validation.path, bad.line), version: step.version, check: bad.check.clone() });
        }
        ledger::record_apply_in(&mut tx, ledger, step, &opts.run_id)?;
        tx.commit().map_err(db_err("committing"))?;
        Ok(Attempt::new(checks, None, true))
    })();
    let (mut so, err) = finish_step(step, Action::Apply, started, 0, res);
    if so.status == StepStatus::Done {
        so.status = StepStatus::Baselined;
    }
    (so, err)
}
