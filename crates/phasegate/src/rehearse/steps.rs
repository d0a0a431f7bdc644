//! Running a phase's forward or rollback files inside a transaction the
//! rehearsal controls, with the same checks, ledger rows and backups as
//! `apply::migrate` and `apply::rollback` give each step in a transaction
//! of its own. A failing step ends the run and the caller rolls the
//! transaction back (the chain stops, or the rehearsal is discarded), so
//! steps need no savepoint to be undone one by one; each file still runs
//! behind one, in a single round trip. Lock retries are left out: nothing
//! else uses a rehearsal database.

use postgres::GenericClient;

use crate::apply::{backup_source, exec_file, run_checks, timeouts_sql, Options};
use crate::backup;
use crate::check::{self, CheckResult, Verdict, When};
use crate::error::{db_err, sql_error, Error, Location, Result};
use crate::locks::trace::Tracer;
use crate::locks::LockHold;
use crate::set::{Phase, SqlFile, Step};
use crate::ui::Ui;

/// What stopped a run: its message, and the place of a file it is about.
#[derive(Debug, Clone)]
pub(super) struct Failure {
    pub message: String,
    pub at: Option<Location>,
}

impl Failure {
    pub fn of(e: &Error) -> Failure {
        Failure { message: e.to_string(), at: e.location().cloned() }
    }
    pub fn message(message: String) -> Failure {
        Failure { message, at: None }
    }
}

/// What running a phase's files one way did.
#[derive(Debug)]
pub(super) struct Ran {
    /// The worst verdict of the checks that ran.
    pub verdict: Verdict,
    /// What stopped it (a file's SQL, or checks that said ROLLBACK);
    /// nothing of the failing step is kept.
    pub error: Option<Failure>,
    /// The locks its statements took.
    pub locks: Vec<LockHold>,
    /// The checks that ran.
    pub checks: Vec<CheckResult>,
}

impl Default for Ran {
    fn default() -> Self {
        Ran { verdict: Verdict::Proceed, error: None, locks: Vec::new(), checks: Vec::new() }
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

/// Checks that said ROLLBACK, as a failure at the first one's file and line.
pub(super) fn checks_failed<'a>(checks: impl IntoIterator<Item = &'a CheckResult>) -> Option<Failure> {
    let failing: Vec<&CheckResult> = checks.into_iter().filter(|c| c.verdict == Verdict::Rollback).collect();
    let first = failing.first()?;
    let lines: Vec<String> = failing.iter().map(|c| c.failure_line()).collect();
    Some(Failure { message: format!("checks said ROLLBACK: {}", lines.join(", ")), at: Some(Location::line(&first.file, first.line)) })
}

/// Applies the phase's steps in order, as `apply::migrate` would; with
/// `record`, their ledger rows too (the chain needs them; a rehearsal that
/// is rolled back does not). Each step's locks end with the step, as they
/// would when it commits on its own.
pub(super) fn forward(tx: &mut impl check::Scope, phase: &Phase, opts: &Options, record: bool, tracer: &mut Tracer, ui: &mut dyn Ui) -> Ran {
    let mut ran = Ran::default();
    // The ledger found once for the phase's steps, as `apply::migrate` does.
    let ledger = match record.then(|| crate::ledger::tables(tx.client())).transpose() {
        Ok(l) => l,
        Err(e) => {
            ran.note(Err(e));
            return ran;
        }
    };
    for step in &phase.steps {
        ui.progress(&format!("  apply V{} {}", step.version, step.name));
        let res = apply_step(tx, step, opts, ledger.as_ref(), tracer, ui);
        tracer.end();
        if ran.note(res) {
            break;
        }
    }
    ran.locks = tracer.take();
    ran
}

/// Reverses the phase's steps, newest first, as `apply::rollback` would
/// (the ledger is left alone: the caller rolls this back).
pub(super) fn backward(tx: &mut impl check::Scope, phase: &Phase, opts: &Options, tracer: &mut Tracer, ui: &mut dyn Ui) -> Ran {
    let mut ran = Ran::default();
    for step in phase.steps.iter().rev() {
        ui.progress(&format!("  rollback V{} {}", step.version, step.name));
        let res = rollback_step(tx, step, opts, tracer, ui);
        tracer.end();
        if ran.note(res) {
            break;
        }
    }
    ran.locks = tracer.take();
    ran
}

impl Ran {
    /// Notes a step's outcome; true when it stops the run.
    fn note(&mut self, res: Result<Vec<CheckResult>>) -> bool {
        match res {
            Ok(checks) => {
                self.verdict = self.verdict.max(check::worst(&checks));
                self.error = checks_failed(&checks);
                self.checks.extend(checks);
            }
            Err(e) => self.error = Some(Failure::of(&e)),
        }
        self.error.is_some()
    }
}

/// Runs a file in one round trip, behind a savepoint of its own (so its
/// writes get a transaction id of their own) and with its timeouts. An
/// error PostgreSQL places (a syntax error, a missing relation) is mapped
/// to its line and column in the file; for one it does not, the savepoint
/// is rolled back and the file runs again statement by statement, so the
/// error names the statement's line. When locks are traced, the file runs
/// statement by statement (the observer looks after each one).
fn run_file(tx: &mut impl GenericClient, file: &SqlFile, opts: &Options, tracer: &mut Tracer) -> Result<()> {
    let head = format!("SAVEPOINT phasegate_step; {}\n", timeouts_sql(&file.directives, opts, true));
    if tracer.active() {
        tx.batch_execute(&head).map_err(db_err("starting a step"))?;
        return exec_file(tx, file, tracer);
    }
    let Err(first) = tx.batch_execute(&format!("{head}{}", file.text)) else { return Ok(()) };
    if first.as_db_error().and_then(|d| d.position()).is_some() {
        return Err(sql_error(&file.path, 1, &file.text, head.chars().count(), &first));
    }
    tx.batch_execute("ROLLBACK TO SAVEPOINT phasegate_step").map_err(db_err("rolling back a step"))?;
    exec_file(tx, file, tracer)?;
    // It failed once and not statement by statement: report the first error.
    Err(crate::error::file_error(&file.path, &first))
}

/// One forward step: before-migrate checks, the file, its ledger rows,
/// after-migrate checks.
fn apply_step(tx: &mut impl check::Scope, step: &Step, opts: &Options, ledger: Option<&crate::ledger::Tables>, tracer: &mut Tracer, ui: &mut dyn Ui) -> Result<Vec<CheckResult>> {
    crate::apply::forward_in_tx(tx, step, opts, ledger, tracer, ui, |tx, file, tracer| run_file(tx.client(), file, opts, tracer))
}

/// One rollback step: before-rollback checks, the backup of the rows it
/// changes, the file, after-rollback checks.
fn rollback_step(tx: &mut impl check::Scope, step: &Step, opts: &Options, tracer: &mut Tracer, ui: &mut dyn Ui) -> Result<Vec<CheckResult>> {
    let file = step.rollback.as_ref().ok_or(Error::NoRollbackFile { version: step.version })?;
    let mut checks = run_checks(tx, step.version, step.checks_when(When::BeforeRollback), ui)?;
    if check::worst(&checks) == Verdict::Rollback {
        return Ok(checks);
    }
    let targets = if opts.backup { backup::targets(&file.text) } else { Vec::new() };
    tracer.begin();
    let since = tracer.clock();
    let session = backup::Session::prepare(tx.client(), &opts.run_id, step.version, &file.path, &targets, false)?;
    if !targets.is_empty() {
        tracer.mark(&backup_source(file, &targets), since);
    }
    run_file(tx.client(), file, opts, tracer)?;
    checks.extend(run_checks(tx, step.version, step.checks_when(When::AfterRollback), ui)?);
    if check::worst(&checks) < Verdict::Rollback {
        session.finish(tx.client(), &opts.run_id)?;
    }
    Ok(checks)
}
