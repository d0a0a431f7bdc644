//! What a worker does to one database: connect, skip it cheaply when an
//! earlier run already got it there (a re-run resumes this way), else take
//! its migration lock and run the ordinary single-database engine, read
//! where its phases stand, and write its audit row on its own connection.

use std::collections::BTreeMap;
use std::time::Instant;

use postgres::Client;

use super::gauge::{self, since, Gauge};
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
    cells(set, applied, &walks)
}

fn cells(set: &MigrationSet, applied: &BTreeMap<i32, Applied>, walks: &[walks::BatchWalk]) -> Vec<PhaseCell> {
    set.phases
        .iter()
        .map(|p| PhaseCell { phase: p.id, state: PhaseState::of(p, applied, walks) })
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

/// Runs `opts.command` on one database, counting its connections in
/// `gauge` and where its time goes in the report's `timings`.
pub fn one(member: &Member, group: &str, set: &MigrationSet, opts: &Options, gauge: &Gauge, ui: &mut dyn Ui) -> DbReport {
    let started = Instant::now();
    let mut report = DbReport::new(member, group, DbState::Done);
    report.started_at = Some(time::OffsetDateTime::now_utc());
    let server = gauge::server_of(&member.url);
    gauge.visit(&server);
    // Counted before it opens: the count never falls below the server's.
    let held = gauge.hold(&server, 1);
    let t = Instant::now();
    // The ledger looked for as the session is set up: no round trip of its own.
    let connected = db::connect_sending(&member.url, &opts.application_name, ledger::tables_query());
    report.timings.connect_ms = since(t);
    let (mut client, first) = match connected {
        Ok((c, transport, answer)) => {
            report.connection = Some(transport);
            (c, answer)
        }
        Err(e) => {
            report.state = failure_state(&e, None);
            report.error = Some(e.to_string());
            report.duration_ms = since(started);
            return report;
        }
    };
    let res = ledger::tables_from(&first).and_then(|at_start| body(&mut client, at_start, &Job { member, set, opts, gauge, server: &server }, ui, &mut report));
    let at_start = match res {
        Ok(t) => Some(t),
        Err(e) => {
            // A failed run has no verdict (its checks did not decide it); the
            // checks that ran before the failure stay in `checks`.
            report.verdict = None;
            report.state = failure_state(&e, Some(&mut client));
            report.error = Some(match report.state {
                DbState::Unreachable => format!("lost the connection to {}: {e}", member.target()),
                _ => e.to_string(),
            });
            None
        }
    };
    if !matches!(report.state, DbState::AlreadyDone | DbState::Unreachable) {
        // The ledger found as the run began serves the phases' cells and
        // the audit row (a migrate or rollback that ran a step made it
        // whole first); else one look for it: three or four round trips
        // (where, applied, walks, audit), not seven.
        let t = Instant::now();
        let found = match at_start {
            Some(l) if !report.steps.is_empty() => Some(l.whole()),
            _ => ledger::tables(&mut client).ok(),
        };
        if let Some(l) = &found {
            if let Ok(applied) = ledger::applied_in(&mut client, l) {
                let walks = walks::unfinished_in(&mut client, set, l).unwrap_or_default();
                report.phases = cells(set, &applied, &walks);
            }
        }
        report.timings.ledger_ms += since(t);
        if let Some(audit) = opts.audit {
            let t = Instant::now();
            report.duration_ms = since(started);
            let record = audit(&report);
            // Any run but a migrate or rollback that ran a step makes sure
            // of the ledger first. The row's values (check evidence, error
            // text) come from the database: bind parameters, not literals.
            let ensured = match found {
                Some(l) if !report.steps.is_empty() => Ok(l),
                _ => ledger::ensure_tables(&mut client),
            };
            if let Err(e) = ensured.and_then(|l| ledger::audit_in(&mut client, &l, &record)) {
                ui.progress(&format!("warning: audit row not written: {e}"));
            }
            report.timings.audit_ms = since(t);
        }
    }
    // The migration lock is released before the run counts as finished.
    let t = Instant::now();
    db::end_session(client);
    drop(held);
    report.timings.close_ms = since(t);
    report.duration_ms = since(started);
    report
}

/// The connections a migrate or rollback opens besides the database's own:
/// the lock tracer and the blocker watch (see `observers`).
const OBSERVERS: usize = 2;

/// Whether a database's migrate or rollback runs with its two observer
/// connections (the lock tracer, the watcher that names blockers): only
/// when `--max-lock-hold` asks for the lock trace, so a fleet otherwise
/// holds one connection per running database (docs/fleet.md).
fn observers(opts: &Options) -> bool {
    opts.apply.max_lock_hold.is_some()
}

/// What a worker's run on one database works with.
struct Job<'a> {
    member: &'a Member,
    set: &'a MigrationSet,
    opts: &'a Options<'a>,
    gauge: &'a Gauge,
    /// The database's server, as `gauge` counts it.
    server: &'a str,
}

/// Runs the command on the database, its ledger found at `at_start` as
/// the session began (see [`ledger::tables`]); returns `at_start`.
fn body(client: &mut Client, at_start: ledger::Tables, job: &Job, ui: &mut dyn Ui, report: &mut DbReport) -> Result<ledger::Tables> {
    let Job { member, set, opts, .. } = *job;
    // Read without the lock: a database an earlier run finished is skipped
    // without taking its lock or writing an audit row.
    let t = Instant::now();
    let applied = ledger::applied_in(client, &at_start)?;
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
        report.timings.ledger_ms = since(t);
        return Ok(at_start);
    }
    report.timings.ledger_ms = since(t);
    let run_id = ledger::new_run_id();
    report.run_id = Some(run_id.clone());
    let mut apply_opts = opts.apply.clone();
    apply_opts.run_id = run_id;
    apply_opts.monitor_url = observers(opts).then(|| member.url.clone());
    let t = Instant::now();
    let res = match opts.command {
        Command::Migrate(target) => change(client, report, job, |c| apply::migrate(c, set, target, &apply_opts, ui)),
        Command::Rollback(phase) => change(client, report, job, |c| apply::rollback(c, set, phase, &apply_opts, ui)),
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
    };
    if matches!(opts.command, Command::Validate { .. } | Command::Status) {
        // Nothing but checks.
        report.timings.checks_ms = since(t);
    } else {
        // The checks ran inside the command: their own clocks say how long.
        let checks: f64 = report.checks.iter().map(|c| c.duration_ms).sum();
        report.timings.checks_ms = checks;
        report.timings.migrate_ms = (report.timings.migrate_ms - checks).max(0.0);
    }
    res.map(|_| at_start)
}

/// A migrate or rollback (`run`) under the database's migration lock, its
/// observers counted while they may be connected, timed into the report.
fn change(client: &mut Client, report: &mut DbReport, job: &Job, run: impl FnOnce(&mut Client) -> Result<RunOutcome>) -> Result<()> {
    let Job { opts, gauge, server, .. } = *job;
    let t = Instant::now();
    let locked = db::acquire_lock(client, opts.lock_wait);
    report.timings.lock_ms = since(t);
    locked?;
    let t = Instant::now();
    let observed = observers(opts).then(|| gauge.hold(server, OBSERVERS));
    let outcome = run(client);
    drop(observed);
    report.timings.migrate_ms = since(t);
    take_outcome(report, outcome?)
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
