//! What applying and reversing a step share: running a file statement by
//! statement, running checks, the timeouts of a file, and the outcome of
//! one attempt at a step.

use std::time::{Duration, Instant};

use postgres::{Client, GenericClient};

use super::outcome::{Action, Options, StepOutcome, StepStatus};
use crate::backup::Backup;
use crate::check::{self, Check, CheckResult, Severity, Verdict, When};
use crate::error::{db_err, Error, Result};
use crate::locks::trace::Tracer;
use crate::locks::{LockHold, Source};
use crate::set::{Directives, SqlFile, Step};
use crate::ui::Ui;

pub(super) fn fmt_ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// A step's transaction, opened by the first statement of the step's first
/// message (`START TRANSACTION; ...`) where `Client::transaction` spends a
/// round trip on its `START TRANSACTION` alone. Rolled back when dropped
/// uncommitted, as postgres' `Transaction` is; checks run in it behind a
/// savepoint, as in any transaction.
pub(crate) struct StepTx<'a> {
    client: &'a mut Client,
    open: bool,
}

impl<'a> StepTx<'a> {
    /// Sends `START TRANSACTION; {rest}` in one message. When `rest`
    /// fails, the transaction it aborted is rolled back and the error is
    /// returned, under `what`.
    pub(crate) fn begin(client: &'a mut Client, rest: &str, what: &str) -> Result<StepTx<'a>> {
        let tx = StepTx { client, open: true };
        tx.client.batch_execute(&format!("START TRANSACTION; {rest}")).map_err(db_err(what))?;
        Ok(tx)
    }

    /// [`StepTx::begin`] with a file's statements after `rest` in the same
    /// message: an error of the file's is its statement's (see [`AtOnce`]),
    /// one before it is `what`'s.
    pub(crate) fn begin_with(client: &'a mut Client, rest: &str, what: &str, file: &SqlFile, at_once: &AtOnce) -> Result<StepTx<'a>> {
        let tx = StepTx { client, open: true };
        let head = format!("START TRANSACTION; {rest}\n");
        if let Err(e) = tx.client.batch_execute(&format!("{head}{}", at_once.sql)) {
            return Err(match at_once.error(tx.client, file, head.chars().count(), &e) {
                Some(err) => err,
                None => db_err(what)(e),
            });
        }
        Ok(tx)
    }

    pub(crate) fn commit(mut self) -> Result<()> {
        self.open = false;
        self.client.batch_execute("COMMIT").map_err(db_err("committing"))
    }

    pub(crate) fn rollback(mut self) -> Result<()> {
        self.open = false;
        self.client.batch_execute("ROLLBACK").map_err(db_err("rolling back"))
    }
}

impl Drop for StepTx<'_> {
    fn drop(&mut self) {
        if self.open && !self.client.is_closed() {
            let _ = self.client.batch_execute("ROLLBACK");
        }
    }
}

impl check::Scope for StepTx<'_> {
    type Client = Client;
    check::in_transaction!();
    fn client(&mut self) -> &mut Client {
        self.client
    }
}

/// `SET [LOCAL] lock_timeout / statement_timeout` for a file.
pub(crate) fn timeouts_sql(d: &Directives, opts: &Options, local: bool) -> String {
    let scope = if local { "SET LOCAL" } else { "SET" };
    let lock = d.lock_timeout.unwrap_or(opts.lock_timeout);
    let mut s = format!("{scope} lock_timeout = '{}';", fmt_ms(lock));
    match d.statement_timeout.or(opts.statement_timeout) {
        Some(st) => s.push_str(&format!(" {scope} statement_timeout = '{}';", fmt_ms(st))),
        None if !local => s.push_str(" SET statement_timeout = 0;"),
        None => {}
    }
    s
}

/// Sets `phasegate.step_started_at` on the session (outside any
/// transaction, so it holds for every transaction of the step, a batch
/// walk's included): the time the step's attempt began, which checks read
/// to tell rows the step saw from rows the application wrote while it ran
/// (docs/checks.md) without depending on how long the step took.
pub(super) fn mark_step_start(client: &mut impl GenericClient) -> Result<()> {
    client.batch_execute(MARK_STEP_START).map_err(db_err("marking the step's start"))
}

pub(super) const MARK_STEP_START: &str = "SELECT pg_catalog.set_config('phasegate.step_started_at', pg_catalog.clock_timestamp()::text, false)";

pub(super) const RESET_TIMEOUTS: &str = "RESET lock_timeout; RESET statement_timeout;";

pub(super) fn is_lock_timeout(e: &Error) -> bool {
    e.sqlstate() == Some(&crate::error::SqlState::LOCK_NOT_AVAILABLE)
}

/// Runs a file's SQL statement by statement, so an error names the line of
/// the statement that failed (and the column, when PostgreSQL gives one).
/// Inside a transaction this is the same as sending the file at once; outside
/// one it is required (several statements in one message form an implicit
/// transaction, where `CREATE INDEX CONCURRENTLY` is refused). The splitter
/// keeps a SQL-standard function body (`BEGIN ATOMIC ... END`) with its
/// `CREATE FUNCTION`. `tracer` records each statement's locks (see `locks`).
pub(crate) fn exec_file(client: &mut impl GenericClient, file: &SqlFile, tracer: &mut Tracer) -> Result<()> {
    for st in file.statements() {
        let sql = &file.text[st.start..st.end];
        tracer
            .statement(Source::new(&file.path, sql, st.line), || client.batch_execute(sql))
            .map_err(|e| crate::error::statement_error(&file.path, &file.text, st.start, st.line, &e))?;
    }
    Ok(())
}

/// The most statements [`exec_file_in_tx`] sends in one message: each runs
/// behind a savepoint of its own, and a transaction with more than 64
/// subtransactions that wrote overflows every backend's subtransaction
/// cache (the other sessions' snapshots then read `pg_subtrans`).
const AT_ONCE_MAX: usize = 32;

/// Where a file sent at once notes which of its statements is running, in
/// a setting of the transaction's, outside the statement's savepoint.
const STATEMENT_AT: &str = "phasegate.statement_at";

/// A file's statements as one message, to run inside a transaction (see
/// [`exec_file_in_tx`]): before each statement its index in a setting of
/// the transaction's, then the statement behind a savepoint.
pub(crate) struct AtOnce {
    pub sql: String,
    statements: Vec<crate::sqltext::Statement>,
    /// How many characters of `sql` come before each statement's text.
    before: Vec<usize>,
    /// How many characters each statement's text has.
    lens: Vec<usize>,
}

impl AtOnce {
    /// The message for `file`, or `None` when it goes statement by
    /// statement: a lock tracer looks after each statement, a file of one
    /// statement needs no more, one of more than [`AT_ONCE_MAX`] would take
    /// too many subtransactions, and a file's own transaction control
    /// would end the savepoints.
    pub(crate) fn of(file: &SqlFile, tracer: &Tracer, least: usize) -> Option<AtOnce> {
        let statements = file.statements();
        if tracer.active() || statements.len() < least || statements.len() > AT_ONCE_MAX || file.has_transaction_control() {
            return None;
        }
        let mut sql = String::new();
        let mut before = Vec::with_capacity(statements.len());
        let mut lens = Vec::with_capacity(statements.len());
        let mut chars = 0;
        for (i, st) in statements.iter().enumerate() {
            let head = format!("SELECT pg_catalog.set_config('{STATEMENT_AT}', '{i}', true);\nSAVEPOINT phasegate_statement;\n");
            chars += head.chars().count();
            sql.push_str(&head);
            before.push(chars);
            let text = &file.text[st.start..st.end];
            let tail = "\n;\nRELEASE SAVEPOINT phasegate_statement;\n";
            lens.push(text.chars().count());
            chars += text.chars().count() + tail.chars().count();
            sql.push_str(text);
            sql.push_str(tail);
        }
        Some(AtOnce { sql, statements, before, lens })
    }

    /// The error `e` of a message that carried this one after
    /// `prefix_chars` characters of other SQL, as the failing statement's
    /// (its line, and the column PostgreSQL gives); `None` when it came
    /// before the file (the prefix's own). A syntax error stops the message
    /// before anything runs: its position names the statement. Else the
    /// failed statement's savepoint is rolled back and the setting names
    /// it; with no such savepoint the file never began.
    pub(crate) fn error(&self, client: &mut impl GenericClient, file: &SqlFile, prefix_chars: usize, e: &postgres::Error) -> Option<Error> {
        let position = e.as_db_error().and_then(|d| match d.position() {
            Some(postgres::error::ErrorPosition::Original(p)) => Some(*p as usize),
            _ => None,
        });
        let at = match position {
            Some(p) if p <= prefix_chars => return None,
            Some(p) => self.before.iter().rposition(|b| prefix_chars + *b < p),
            None => failed_statement(client)?,
        };
        let Some(i) = at.filter(|i| *i < self.statements.len()) else {
            // The setting is gone, or the position is in the engine's own SQL: the file, not a line.
            return Some(crate::error::file_error(&file.path, e));
        };
        let st = &self.statements[i];
        let head = prefix_chars + self.before[i];
        if position.is_some_and(|p| p > head + self.lens[i]) {
            // At the `;` the message put after the statement: it ended where
            // PostgreSQL wanted more, which alone is "at end of input".
            let end = file.text[..st.start].chars().count() + self.lens[i] + 1;
            let (line, column) = crate::sqltext::position_to_line_col(&file.text, end);
            let message = crate::error::pg_message(e).replacen("at or near \";\"", "at end of input", 1);
            return Some(Error::Sql { at: crate::error::Location { file: file.path.clone(), line, column }, message, sqlstate: e.code().cloned() });
        }
        Some(crate::error::wrapped_statement_error(&file.path, &file.text, st.start, st.line, head, e))
    }
}

/// Runs a file inside the caller's transaction. With no lock tracer to
/// feed statement by statement, the file's statements (2 to
/// [`AT_ONCE_MAX`]) go in one message ([`AtOnce`]), one round trip instead
/// of one per statement. When one fails, the error names the statement's
/// line (and the column PostgreSQL gives) as statement by statement does,
/// and nothing runs twice. What the statements before it did stays in the
/// transaction, as statement by statement: the caller rolls it back.
pub(crate) fn exec_file_in_tx(client: &mut impl GenericClient, file: &SqlFile, tracer: &mut Tracer) -> Result<()> {
    let Some(at_once) = AtOnce::of(file, tracer, 2) else { return exec_file(client, file, tracer) };
    let Err(e) = client.batch_execute(&at_once.sql) else { return Ok(()) };
    Err(at_once.error(client, file, 0, &e).unwrap_or_else(|| crate::error::file_error(&file.path, &e)))
}

/// After a failed [`AtOnce`] message: the failed statement's savepoint
/// rolled back, the index the setting holds (`Some(None)` when it holds
/// none); `None` when there was no such savepoint (the error came first).
fn failed_statement(client: &mut impl GenericClient) -> Option<Option<usize>> {
    client.batch_execute("ROLLBACK TO SAVEPOINT phasegate_statement").ok()?;
    let answer = client.simple_query(&format!("SELECT pg_catalog.current_setting('{STATEMENT_AT}', true)")).ok();
    Some(answer.and_then(|a| {
        a.iter().find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse().ok()),
            _ => None,
        })
    }))
}

pub(crate) fn run_checks<'a>(client: &mut impl check::Scope, version: i32, checks: impl Iterator<Item = &'a Check>, ui: &mut dyn Ui) -> Result<Vec<CheckResult>> {
    let checks: Vec<&Check> = checks.collect();
    let out = check::run_all(client, version, &checks)?;
    for r in &out {
        ui.check_done(r);
    }
    Ok(out)
}

/// The result of one attempt at a step: checks, rows touched, and whether
/// the transaction committed.
pub(super) struct Attempt {
    pub checks: Vec<CheckResult>,
    pub rows: Option<u64>,
    pub committed: bool,
    pub backups: Vec<Backup>,
}

impl Attempt {
    pub fn new(checks: Vec<CheckResult>, rows: Option<u64>, committed: bool) -> Attempt {
        Attempt { checks, rows, committed, backups: Vec::new() }
    }
}

pub(super) fn finish_step(step: &Step, action: Action, started: Instant, retries: u32, res: Result<Attempt>) -> (StepOutcome, Option<Error>) {
    let (status, checks, rows, backups, err) = match res {
        Ok(a) if a.committed => (StepStatus::Done, a.checks, a.rows, a.backups, None),
        Ok(a) => (StepStatus::Aborted, a.checks, a.rows, a.backups, None),
        Err(e) => (StepStatus::Failed, Vec::new(), None, Vec::new(), Some(e)),
    };
    let error = err.as_ref().map(|e| e.to_string());
    (StepOutcome {
        version: step.version,
        name: step.name.clone(),
        phase: step.phase,
        action,
        status,
        started_unix_ms: unix_ms(std::time::SystemTime::now()) - started.elapsed().as_secs_f64() * 1000.0,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        retries,
        rows,
        checks,
        backups,
        locks: Vec::new(),
        error,
    }, err)
}

/// Milliseconds since the Unix epoch (0 for a clock set before it).
fn unix_ms(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
}

/// Gives a finished step its locks; with `max_lock_hold`, a REVIEW check
/// (`max-lock-hold`, at the statement's file and line) for each lock that
/// blocks writers and was held longer.
pub(super) fn record_locks(so: &mut StepOutcome, tracer: &mut Tracer, opts: &Options, ui: &mut dyn Ui) {
    so.locks = tracer.take();
    if let Some(why) = tracer.lost() {
        ui.progress(&format!("  lock tracing stopped (no lock is recorded from here on): {why}"));
    }
    let Some(limit) = opts.max_lock_hold else { return };
    let when = match so.action {
        Action::Apply => When::AfterMigrate,
        Action::Rollback => When::AfterRollback,
    };
    for hold in crate::locks::over_limit(&so.locks, limit) {
        let r = lock_check(so.version, when, hold, limit);
        ui.check_done(&r);
        so.checks.push(r);
    }
}

/// The REVIEW a lock held longer than `limit` gets, as a check result.
fn lock_check(version: i32, when: When, hold: &LockHold, limit: Duration) -> CheckResult {
    CheckResult {
        version,
        check: crate::locks::MAX_LOCK_HOLD_CHECK.into(),
        when,
        severity: Severity::Warning,
        verdict: Verdict::Review,
        value: Some((hold.held_ms * 10.0).round() / 10.0),
        empty: false,
        unit: "ms".into(),
        threshold: format!("<= {}", fmt_ms(limit)),
        evidence: vec![serde_json::json!({
            "at": hold.at().to_string(),
            "relation": hold.relation,
            "mode": hold.mode,
            "statement": hold.statement,
        })],
        file: crate::error::display_path(&hold.file),
        line: hold.line,
        duration_ms: 0.0,
        skipped: None,
    }
}

/// A forward step's work inside a transaction the caller owns, as `migrate`
/// and a rehearsal both do it: the before-migrate checks (stopping at a
/// ROLLBACK), the file (run by `run`), its ledger rows (in `record`, the
/// ledger found in this transaction, if any) and
/// the after-migrate checks. Whether to commit is the caller's.
pub(crate) fn forward_in_tx<C: crate::check::Scope>(
    tx: &mut C,
    step: &Step,
    opts: &Options,
    record: Option<&crate::ledger::Tables>,
    tracer: &mut Tracer,
    ui: &mut dyn Ui,
    run: impl FnOnce(&mut C, &SqlFile, &mut Tracer) -> Result<()>,
) -> Result<Vec<CheckResult>> {
    let mut checks = run_checks(tx, step.version, step.checks_when(When::BeforeMigrate), ui)?;
    if check::worst(&checks) == Verdict::Rollback {
        return Ok(checks);
    }
    tracer.begin();
    run(tx, &step.forward, tracer)?;
    if let Some(ledger) = record {
        crate::ledger::record_apply_in(tx.client(), ledger, step, &opts.run_id)?;
    }
    checks.extend(run_checks(tx, step.version, step.checks_when(When::AfterMigrate), ui)?);
    Ok(checks)
}

/// After a file that ran outside a transaction failed: a transaction the
/// file opened itself (`BEGIN` with no `COMMIT` reached) is rolled back, as
/// it would be when the tool's connection closed, so the session is usable
/// and the error reported is the file's (outside a transaction the
/// `ROLLBACK` only warns).
pub(super) fn end_own_transaction<T>(client: &mut Client, res: &Result<T>) {
    if res.is_err() && !client.is_closed() {
        let _ = client.batch_execute("ROLLBACK");
    }
}

/// Runs rollback SQL (in a transaction unless the file says otherwise).
pub(super) fn run_rollback_sql(client: &mut Client, file: &SqlFile, text: &str, opts: &Options, tracer: &mut Tracer) -> Result<()> {
    let f = SqlFile::new(file.path.clone(), text.to_string(), file.directives.clone());
    if f.directives.no_transaction {
        client.batch_execute(&timeouts_sql(&f.directives, opts, false)).map_err(db_err("setting timeouts"))?;
        let r = exec_file(client, &f, tracer);
        end_own_transaction(client, &r);
        client.batch_execute(RESET_TIMEOUTS).map_err(db_err("resetting timeouts"))?;
        r
    } else {
        let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
        tx.batch_execute(&timeouts_sql(&f.directives, opts, true)).map_err(db_err("setting timeouts"))?;
        tracer.begin_fresh();
        exec_file_in_tx(&mut tx, &f, tracer)?;
        let r = tx.commit().map_err(db_err("committing"));
        tracer.end();
        r
    }
}
