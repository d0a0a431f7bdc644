//! Reversing one step: the rollback SQL stored at apply time, its
//! before- and after-rollback checks, the removal of its ledger row and the
//! backup of the rows it changes, all in one transaction (or, for a file
//! that runs outside a transaction, the backup committed first).

use std::time::Instant;

use postgres::Client;

use super::batch::{run_batches, Walk};
use super::exec::{exec_file_in_tx, finish_step, mark_step_start, run_checks, run_rollback_sql, timeouts_sql, Attempt};
use super::retry::{with_lock_retries, Watch};
use super::outcome::{Action, Options, StepOutcome};
use crate::backup::{self, Backup};
use crate::check::{self, Check, Verdict, When};
use crate::error::{db_err, display_path, Error, Result};
use crate::ledger::{self, Applied};
use crate::locks::trace::Tracer;
use crate::locks::Source;
use crate::set::{SqlFile, Step};
use crate::ui::Ui;

/// The rollback SQL and after-rollback checks to use for an applied step:
/// those stored at apply time, so a rollback still runs if files changed or
/// vanished.
fn stored_rollback(step: &Step, a: &Applied, ui: &mut dyn Ui) -> Result<(SqlFile, Vec<Check>)> {
    let file = step.rollback.clone().ok_or(Error::NoRollbackFile { version: step.version })?;
    let (text, checks) = match (&a.rollback_sql, &a.validation_sql) {
        (Some(rb), Some(val)) => {
            if rb != &file.text {
                ui.progress(&format!("  note: {} changed since V{} was applied; running the SQL stored at apply time", display_path(&file.path), step.version));
            }
            let checks = if val == &step.validation.text { step.checks.clone() } else { check::parse_file(&step.validation.path, val)? };
            (rb.clone(), checks)
        }
        _ => {
            ui.progress(&format!("  note: V{} has no stored rollback (applied by another tool); using {}", step.version, display_path(&file.path)));
            (file.text.clone(), step.checks.clone())
        }
    };
    let directives = crate::set::SqlFile::new(file.path.clone(), text.clone(), file.directives.clone());
    Ok((directives, checks))
}

pub(super) fn rollback_step(client: &mut Client, step: &Step, a: &Applied, opts: &Options, watch: &Watch, tracer: &mut Tracer, ui: &mut dyn Ui) -> (StepOutcome, Option<Error>) {
    let started = Instant::now();
    ui.progress(&format!("  rollback V{} {}", step.version, step.name));
    let what = format!("rollback V{}", step.version);
    let (res, retries) = with_lock_retries(opts, ui, &what, watch, |ui| {
        mark_step_start(client)?;
        let (file, checks) = stored_rollback(step, a, ui)?;
        let before = checks.iter().filter(|c| c.when == When::BeforeRollback);
        let after = checks.iter().filter(|c| c.when == When::AfterRollback);
        let targets = if opts.backup { backup::targets(&file.text) } else { Vec::new() };
        if let Some(batch) = file.directives.batch {
            return rollback_batched(client, step, &file, batch, targets, (before, after), opts, tracer, ui);
        }
        if file.directives.no_transaction {
            let mut results = run_checks(client, step.version, before, ui)?;
            if check::worst(&results) == Verdict::Rollback {
                ui.progress(&format!("  rollback V{}: a before-rollback check failed; nothing was changed", step.version));
                return Ok(Attempt::new(results, None, false));
            }
            // SQL outside a transaction: the backup commits first, on its own.
            let mut backups = Vec::new();
            if !targets.is_empty() {
                let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
                let session = backup::Session::prepare(&mut tx, &opts.run_id, step.version, &file.path, &targets, true)?;
                backups = session.finish(&mut tx, &opts.run_id)?;
                tx.commit().map_err(db_err("committing the backup"))?;
                report_backups(ui, &backups);
            }
            run_rollback_sql(client, &file, &file.text, opts, tracer)?;
            // The SQL ran outside a transaction and cannot be undone: the
            // ledger must say so whatever the checks find (they still set
            // the verdict, and the run stops at a failing one).
            let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
            ledger::record_rollback(&mut tx, step.version)?;
            results.extend(run_checks(&mut tx, step.version, after, ui)?);
            tx.commit().map_err(db_err("committing"))?;
            if check::worst(&results) == Verdict::Rollback {
                ui.progress(&format!("  rollback V{}: an after-rollback check failed after SQL that ran outside a transaction; the rollback stands, investigate before going on", step.version));
            }
            return Ok(Attempt { checks: results, rows: None, committed: true, backups });
        }
        let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
        tx.batch_execute(&timeouts_sql(&file.directives, opts, true)).map_err(db_err("setting timeouts"))?;
        let mut results = run_checks(&mut tx, step.version, before, ui)?;
        if check::worst(&results) == Verdict::Rollback {
            tx.rollback().map_err(db_err("rolling back"))?;
            ui.progress(&format!("  rollback V{}: a before-rollback check failed; nothing was changed", step.version));
            return Ok(Attempt::new(results, None, false));
        }
        tracer.begin();
        let since = tracer.clock();
        let session = backup::Session::prepare(&mut tx, &opts.run_id, step.version, &file.path, &targets, false)?;
        if !targets.is_empty() {
            tracer.mark(&backup_source(&file, &targets), since);
        }
        exec_file_in_tx(&mut tx, &file, tracer)?;
        ledger::record_rollback(&mut tx, step.version)?;
        results.extend(run_checks(&mut tx, step.version, after, ui)?);
        if check::worst(&results) == Verdict::Rollback {
            tx.rollback().map_err(db_err("rolling back"))?;
            tracer.end();
            ui.progress(&format!("  rollback V{}: an after-rollback check failed; the rollback was undone, V{} stays applied", step.version, step.version));
            return Ok(Attempt::new(results, None, false));
        }
        // Last before commit: dropping the backup triggers takes ACCESS
        // EXCLUSIVE on the table, held only until the commit just below.
        let since = tracer.clock();
        let backups = session.finish(&mut tx, &opts.run_id)?;
        if !targets.is_empty() {
            tracer.mark(&backup_source(&file, &targets), since);
        }
        tx.commit().map_err(db_err("committing"))?;
        tracer.end();
        report_backups(ui, &backups);
        Ok(Attempt { checks: results, rows: None, committed: true, backups })
    });
    finish_step(step, Action::Rollback, started, retries, res)
}

/// A rollback file with `-- phasegate: batch N`: the before-rollback checks,
/// the key walk (each batch in its own transaction, with the backup of its
/// rows), then the ledger and the after-rollback checks. Like SQL outside a
/// transaction, the committed batches cannot be undone: an after-rollback
/// check that fails sets the verdict, and the rollback stands.
#[allow(clippy::too_many_arguments)]
fn rollback_batched<'a>(
    client: &mut Client,
    step: &Step,
    file: &SqlFile,
    batch: crate::set::BatchSize,
    targets: Vec<backup::Target>,
    (before, after): (impl Iterator<Item = &'a Check>, impl Iterator<Item = &'a Check>),
    opts: &Options,
    tracer: &mut Tracer,
    ui: &mut dyn Ui,
) -> Result<Attempt> {
    let mut results = run_checks(client, step.version, before, ui)?;
    if check::worst(&results) == Verdict::Rollback {
        ui.progress(&format!("  rollback V{}: a before-rollback check failed; nothing was changed", step.version));
        return Ok(Attempt::new(results, None, false));
    }
    let timeouts = timeouts_sql(&file.directives, opts, true);
    // The backup's trigger is installed and dropped in short transactions
    // of their own: their locks are traced as the backup's.
    let source = backup_source(file, &targets);
    let saved = if opts.backup {
        tracer.begin_fresh();
        let since = tracer.clock();
        let b = backup::BatchBackup::install(client, &opts.run_id, step.version, &file.path, targets, &timeouts, &mut || tracer.mark(&source, since))?;
        tracer.end();
        Some(b)
    } else {
        None
    };
    let walk = Walk { version: step.version, file, batch, progress_key: ledger::rollback_batch_key(step.version), label: format!("V{} rollback", step.version) };
    let walked = run_batches(client, &walk, opts, tracer, ui, saved.as_ref());
    // The triggers go whether the walk finished or not; what the committed
    // batches saved stays in the ledger.
    let backups = match saved {
        Some(b) => {
            tracer.begin_fresh();
            let since = tracer.clock();
            let r = b.finish(client, &timeouts, &mut || tracer.mark(&source, since));
            tracer.end();
            r
        }
        None => Ok(Vec::new()),
    };
    let rows = match (walked, backups.as_ref()) {
        (Err(e), Err(left)) => {
            ui.progress(&format!("  rollback V{}: the backup's copy triggers could not be dropped ({left}); they stay on the table, copying nothing, until the next batched rollback of it drops them", step.version));
            return Err(e);
        }
        (walked, _) => walked?,
    };
    let backups = backups?;
    report_backups(ui, &backups);
    let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
    ledger::record_rollback(&mut tx, step.version)?;
    results.extend(run_checks(&mut tx, step.version, after, ui)?);
    tx.commit().map_err(db_err("committing"))?;
    if check::worst(&results) == Verdict::Rollback {
        ui.progress(&format!("  rollback V{}: an after-rollback check failed after a batched rollback whose batches committed; the rollback stands, investigate before going on", step.version));
    }
    Ok(Attempt { checks: results, rows: Some(rows), committed: true, backups })
}

/// What the backup of a rollback's rows locks (the triggers on the tables
/// it changes) is attributed to: the first statement it backs up.
pub(crate) fn backup_source(file: &SqlFile, targets: &[backup::Target]) -> Source {
    let line = targets.iter().map(|t| t.line).min().unwrap_or(1);
    Source::new(&file.path, "(phasegate) backup triggers on the tables this rollback changes", line)
}

fn report_backups(ui: &mut dyn Ui, backups: &[Backup]) {
    for b in backups {
        let changes: Vec<&str> = b.changes.iter().map(|c| c.as_str()).collect();
        ui.progress(&format!("    backup: {} rows of {} ({}) saved to {}", b.rows, b.table, changes.join(", "), b.backup_table));
    }
}

