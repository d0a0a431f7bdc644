//! What a worker does to one database: connect, skip it cheaply when an
//! earlier run already got it there (a re-run resumes this way), else take
//! its migration lock and run the ordinary single-database engine, read
//! where its phases stand, and write its audit row on its own connection.

use std::collections::BTreeMap;
use std::time::Instant;

use postgres::Client;

use super::{Command, DbReport, DbState, Member, Options, PhaseCell, PhaseState};
use crate::apply::{self, RunOutcome};
use crate::check::{self, Verdict};
use crate::db;
use crate::error::{Error, Result};
use crate::ledger::{self, Applied};
use crate::set::MigrationSet;
use crate::walks;
use crate::ui::Ui;

/// Each phase's state from a database's ledger and its unfinished batch
/// walks (a walk that cannot be read counts as none: the cells are a view).
pub fn phase_cells(client: &mut Client, set: &MigrationSet, applied: &BTreeMap<i32, Applied>) -> Vec<PhaseCell> {
    let walks = walks::unfinished(client, set).unwrap_or_default();
    set.phases
        .iter()
        .map(|p| PhaseCell { phase: p.id, state: PhaseState::of(p, applied, &walks) })
        .collect()
}

/// Unreachable when the server could not be reached or the connection
/// dropped (checked with a round trip: a closed socket is not always seen
/// at once); failed otherwise.
fn failure_state(e: &Error, client: Option<&mut Client>) -> DbState {
    let lost = |c: &mut Client| c.is_closed() || c.is_valid(std::time::Duration::from_secs(5)).is_err();
    if matches!(e, Error::Connect { .. }) || client.is_some_and(lost) {
        DbState::Unreachable
    } else {
        DbState::Failed
    }
}

/// Runs `opts.command` on one database.
pub fn one(member: &Member, group: &str, set: &MigrationSet, opts: &Options, ui: &mut dyn Ui) -> DbReport {
    let started = Instant::now();
    let mut report = DbReport::new(member, group, DbState::Done);
    report.started_at = Some(time::OffsetDateTime::now_utc());
    let mut client = match db::connect_reporting(&member.url, &opts.application_name) {
        Ok((c, transport)) => {
            report.connection = Some(transport);
            c
        }
        Err(e) => {
            report.state = failure_state(&e, None);
            report.error = Some(e.to_string());
            report.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
            return report;
        }
    };
    let res = body(&mut client, member, set, opts, ui, &mut report);
    if let Err(e) = res {
        // A failed run has no verdict (its checks did not decide it); the
        // checks that ran before the failure stay in `checks`.
        report.verdict = None;
        report.state = failure_state(&e, Some(&mut client));
        report.error = Some(match report.state {
            DbState::Unreachable => format!("lost the connection to {}: {e}", member.target()),
            _ => e.to_string(),
        });
    }
    report.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    if !matches!(report.state, DbState::AlreadyDone | DbState::Unreachable) {
        if let Ok(applied) = ledger::applied(&mut client) {
            report.phases = phase_cells(&mut client, set, &applied);
        }
        if let Some(audit) = opts.audit {
            let record = audit(&report);
            if let Err(e) = ledger::ensure(&mut client).and_then(|_| ledger::audit(&mut client, &record)) {
                ui.progress(&format!("warning: audit row not written: {e}"));
            }
        }
    }
    // The migration lock is released before the run counts as finished.
    db::end_session(client);
    report
}

fn body(client: &mut Client, member: &Member, set: &MigrationSet, opts: &Options, ui: &mut dyn Ui, report: &mut DbReport) -> Result<()> {
    // Read without the lock: a database an earlier run finished is skipped
    // without taking its lock or writing an audit row.
    let applied = ledger::applied(client)?;
    let nothing_to_do = match opts.command {
        Command::Migrate(target) => apply::pending(set, &applied, target).is_empty() && apply::check_consistency(set, &applied).is_ok(),
        Command::Rollback(phase) => {
            // Neither this phase nor a later one is applied: rolled back earlier.
            set.phases.iter().filter(|p| p.id >= phase).flat_map(|p| p.steps.iter()).all(|s| !applied.contains_key(&s.version))
        }
        Command::Validate { .. } | Command::Status => false,
    };
    if nothing_to_do {
        report.state = DbState::AlreadyDone;
        report.phases = phase_cells(client, set, &applied);
        return Ok(());
    }
    let run_id = ledger::new_run_id();
    report.run_id = Some(run_id.clone());
    let mut apply_opts = opts.apply.clone();
    apply_opts.run_id = run_id;
    apply_opts.monitor_url = Some(member.url.clone());
    match opts.command {
        Command::Migrate(target) => {
            db::acquire_lock(client, opts.lock_wait)?;
            let outcome = apply::migrate(client, set, target, &apply_opts, ui)?;
            take_outcome(report, outcome)
        }
        Command::Rollback(phase) => {
            db::acquire_lock(client, opts.lock_wait)?;
            let outcome = apply::rollback(client, set, phase, &apply_opts, ui)?;
            take_outcome(report, outcome)
        }
        Command::Validate { phase, when } => {
            let checks = apply::validate(client, set, phase, when)?;
            report.verdict = Some(check::worst(&checks));
            report.checks = checks;
            Ok(())
        }
        Command::Status => {
            report.drift = ledger::drift(set, &applied);
            let checks = apply::validate_applied(client, set, &applied, None, None)?;
            report.verdict = Some(check::worst(&checks));
            report.checks = checks;
            Ok(())
        }
    }
}

/// A migrate or rollback outcome into the report: a failure is returned as
/// the error, a ROLLBACK verdict is the `Rollback` state.
fn take_outcome(report: &mut DbReport, outcome: RunOutcome) -> Result<()> {
    let verdict = outcome.verdict();
    report.verdict = Some(verdict);
    report.stopped_for_review = outcome.stopped_for_review;
    report.checks = outcome.checks().cloned().collect();
    report.steps = outcome.steps;
    if let Some(e) = outcome.failure {
        return Err(e);
    }
    if verdict == Verdict::Rollback {
        report.state = DbState::Rollback;
    }
    Ok(())
}
