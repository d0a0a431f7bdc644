//! Running a phase's forward or rollback files inside a transaction the
//! rehearsal controls (the chain's, or a savepoint of it), each step in a
//! savepoint of its own, with the same checks, ledger rows and backups as
//! `apply::migrate` and `apply::rollback` give it in a transaction of its
//! own. Lock retries are left out: nothing else uses a rehearsal database.

use postgres::Transaction;

use crate::apply::{exec_file, run_checks, timeouts_sql, Options};
use crate::backup;
use crate::check::{self, CheckResult, Verdict, When};
use crate::error::{db_err, Error, Result};
use crate::ledger;
use crate::set::{Phase, Step};
use crate::ui::Ui;

/// What running a phase's files one way did.
#[derive(Debug)]
pub(super) struct Ran {
    /// The worst verdict of the checks that ran.
    pub verdict: Verdict,
    /// The error that stopped it (a file's SQL, or checks that said
    /// ROLLBACK); nothing of the failing step is kept.
    pub error: Option<String>,
}

impl Default for Ran {
    fn default() -> Self {
        Ran { verdict: Verdict::Proceed, error: None }
    }
}

/// Whether every file of the phase can run inside a transaction the
/// rehearsal controls (no `no-transaction`, no batches, which commit).
pub(super) fn transactional(phase: &Phase) -> bool {
    phase.steps.iter().all(|s| {
        let plain = |d: &crate::set::Directives| !d.no_transaction && d.batch.is_none();
        plain(&s.forward.directives) && s.rollback.as_ref().is_none_or(|r| plain(&r.directives))
    })
}

fn checks_failed(checks: &[CheckResult]) -> Option<String> {
    let failing: Vec<String> = checks.iter().filter(|c| c.verdict == Verdict::Rollback).map(|c| c.failure_line()).collect();
    (!failing.is_empty()).then(|| format!("checks said ROLLBACK: {}", failing.join(", ")))
}

/// Applies the phase's steps in order, as `apply::migrate` would.
pub(super) fn forward(tx: &mut Transaction<'_>, phase: &Phase, opts: &Options, ui: &mut dyn Ui) -> Ran {
    let mut ran = Ran::default();
    for step in &phase.steps {
        ui.progress(&format!("  apply V{} {}", step.version, step.name));
        match apply_step(tx, step, opts, ui) {
            Ok(checks) => {
                ran.verdict = ran.verdict.max(check::worst(&checks));
                if let Some(e) = checks_failed(&checks) {
                    ran.error = Some(e);
                    return ran;
                }
            }
            Err(e) => {
                ran.error = Some(e.to_string());
                return ran;
            }
        }
    }
    ran
}

/// Reverses the phase's steps, newest first, as `apply::rollback` would.
pub(super) fn backward(tx: &mut Transaction<'_>, phase: &Phase, opts: &Options, ui: &mut dyn Ui) -> Ran {
    let mut ran = Ran::default();
    for step in phase.steps.iter().rev() {
        ui.progress(&format!("  rollback V{} {}", step.version, step.name));
        match rollback_step(tx, step, opts, ui) {
            Ok(checks) => {
                ran.verdict = ran.verdict.max(check::worst(&checks));
                if let Some(e) = checks_failed(&checks) {
                    ran.error = Some(e);
                    return ran;
                }
            }
            Err(e) => {
                ran.error = Some(e.to_string());
                return ran;
            }
        }
    }
    ran
}

/// One forward step in a savepoint: before-migrate checks, the file, its
/// ledger rows, after-migrate checks. A ROLLBACK verdict undoes the step.
fn apply_step(tx: &mut Transaction<'_>, step: &Step, opts: &Options, ui: &mut dyn Ui) -> Result<Vec<CheckResult>> {
    let mut sp = tx.savepoint("phasegate_step").map_err(db_err("starting a savepoint"))?;
    sp.batch_execute(&timeouts_sql(&step.forward.directives, opts, true)).map_err(db_err("setting timeouts"))?;
    let mut checks = run_checks(&mut sp, step.version, step.checks_when(When::BeforeMigrate), ui)?;
    if check::worst(&checks) == Verdict::Rollback {
        return Ok(checks); // dropping the savepoint rolls it back
    }
    exec_file(&mut sp, &step.forward)?;
    ledger::record_apply(&mut sp, step, &opts.run_id)?;
    checks.extend(run_checks(&mut sp, step.version, step.checks_when(When::AfterMigrate), ui)?);
    if check::worst(&checks) < Verdict::Rollback {
        sp.commit().map_err(db_err("releasing a savepoint"))?;
    }
    Ok(checks)
}

/// One rollback step in a savepoint: before-rollback checks, the backup of
/// the rows it changes, the file, the removal of its ledger rows,
/// after-rollback checks.
fn rollback_step(tx: &mut Transaction<'_>, step: &Step, opts: &Options, ui: &mut dyn Ui) -> Result<Vec<CheckResult>> {
    let file = step.rollback.as_ref().ok_or(Error::NoRollbackFile { version: step.version })?;
    let mut sp = tx.savepoint("phasegate_step").map_err(db_err("starting a savepoint"))?;
    sp.batch_execute(&timeouts_sql(&file.directives, opts, true)).map_err(db_err("setting timeouts"))?;
    let mut checks = run_checks(&mut sp, step.version, step.checks_when(When::BeforeRollback), ui)?;
    if check::worst(&checks) == Verdict::Rollback {
        return Ok(checks);
    }
    let targets = if opts.backup { backup::targets(&file.text) } else { Vec::new() };
    let session = backup::Session::prepare(&mut sp, &opts.run_id, step.version, &targets, false)?;
    exec_file(&mut sp, file)?;
    ledger::record_rollback(&mut sp, step.version)?;
    checks.extend(run_checks(&mut sp, step.version, step.checks_when(When::AfterRollback), ui)?);
    if check::worst(&checks) == Verdict::Rollback {
        return Ok(checks);
    }
    session.finish(&mut sp, &opts.run_id)?;
    sp.commit().map_err(db_err("releasing a savepoint"))?;
    Ok(checks)
}
