//! Applying and reversing migrations (SPEC 4 migrate/rollback, 7.2): each
//! step and its checks in one transaction, the ledger written in that same
//! transaction, lock and statement timeouts on every step, and bounded
//! retries when a lock cannot be had.
//!
//! The caller holds the migration lock (see `db::acquire_lock`) for the
//! whole run; nothing here takes it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use postgres::{Client, GenericClient};
use serde::Serialize;

use crate::backup::{self, Backup};
use crate::check::{self, Check, CheckResult, Verdict, When};
use crate::error::{db_err, display_path, sql_error, Error, Result};
use crate::ledger::{self, Applied};
use crate::set::{Directives, MigrationSet, Phase, SqlFile, Step};

/// How a run treats timeouts and REVIEW verdicts.
#[derive(Debug, Clone)]
pub struct Options {
    /// `lock_timeout` for every migration and rollback (default 2s).
    pub lock_timeout: Duration,
    /// `statement_timeout`; `None` leaves the server's setting.
    pub statement_timeout: Option<Duration>,
    /// Retries after a lock timeout (SQLSTATE 55P03), with exponential
    /// backoff and jitter.
    pub lock_retries: u32,
    /// Continue past a phase whose verdict is REVIEW.
    pub accept_review: bool,
    pub run_id: String,
    /// A connection string for a second session that watches who blocks the
    /// migration, so a lock timeout names the blocker. `None`: no watcher.
    pub monitor_url: Option<String>,
    /// Back up the rows a rollback changes (SPEC 7.3); off with `--no-backup`.
    pub backup: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lock_timeout: Duration::from_secs(2),
            statement_timeout: None,
            lock_retries: 5,
            accept_review: false,
            run_id: ledger::new_run_id(),
            monitor_url: None,
            backup: true,
        }
    }
}

pub use crate::ui::{Quiet, Ui};

/// Which migrations `migrate` applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Latest,
    /// Up to and including this phase.
    Phase(u32),
    /// Up to and including this version.
    Version(i32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Apply,
    Rollback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Committed.
    Done,
    /// A check said ROLLBACK: the step's transaction was rolled back.
    Aborted,
    /// An error: the step's transaction was rolled back.
    Failed,
}

/// What happened to one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepOutcome {
    pub version: i32,
    pub name: String,
    pub phase: u32,
    pub action: Action,
    pub status: StepStatus,
    pub duration_ms: f64,
    pub retries: u32,
    pub rows: Option<u64>,
    pub checks: Vec<CheckResult>,
    /// Rows a rollback saved before changing them (SPEC 7.3).
    pub backups: Vec<Backup>,
    pub error: Option<String>,
}

/// The result of a run: every step done before a failure is reported, and
/// the failure too.
#[derive(Debug, Default, Serialize)]
pub struct RunOutcome {
    pub steps: Vec<StepOutcome>,
    pub verdict: Option<Verdict>,
    /// The phase after which a REVIEW verdict stopped the run.
    pub stopped_for_review: Option<u32>,
    pub error: Option<String>,
    #[serde(skip)]
    pub failure: Option<Error>,
}

impl RunOutcome {
    pub fn checks(&self) -> impl Iterator<Item = &CheckResult> {
        self.steps.iter().flat_map(|s| s.checks.iter())
    }
    pub fn verdict(&self) -> Verdict {
        check::worst(self.checks())
    }
    /// A copy for reports (the error as text, not the error itself).
    pub fn summary(&self) -> RunOutcome {
        RunOutcome { steps: self.steps.clone(), verdict: self.verdict, stopped_for_review: self.stopped_for_review, error: self.error.clone(), failure: None }
    }
    pub fn backups(&self) -> impl Iterator<Item = &Backup> {
        self.steps.iter().flat_map(|s| s.backups.iter())
    }
    fn fail(mut self, e: Error) -> Self {
        self.error = Some(e.to_string());
        self.failure = Some(e);
        self.verdict = Some(self.verdict());
        self
    }
    fn finish(mut self) -> Self {
        self.verdict = Some(self.verdict());
        self
    }
}

/// Refuses to work on a database whose ledger disagrees with the files:
/// an applied migration whose file changed or vanished, or a gap.
pub fn check_consistency(set: &MigrationSet, applied: &BTreeMap<i32, Applied>) -> Result<()> {
    for (v, a) in applied {
        match set.step(*v) {
            None => {
                return Err(Error::Refused(format!(
                    "migration {v} ({}) was applied but its file is missing from {}; restore the file before migrating",
                    a.name,
                    display_path(&set.dir.join(crate::set::MIGRATIONS))
                )))
            }
            Some(step) if a.forward_changed(step) => {
                return Err(Error::Refused(format!(
                    "migration {v} was applied but its file has changed since ({}); restore the applied version or add a new migration",
                    display_path(&step.forward.path)
                )))
            }
            _ => {}
        }
    }
    if let Some(&max) = applied.keys().max() {
        if let Some(gap) = set.steps().find(|s| s.version < max && !applied.contains_key(&s.version)) {
            return Err(Error::Refused(format!(
                "migration {} is not applied but a later one ({max}) is; the ledger has a gap",
                gap.version
            )));
        }
    }
    Ok(())
}

/// The steps `migrate` would apply, in order.
pub fn pending<'a>(set: &'a MigrationSet, applied: &BTreeMap<i32, Applied>, target: Target) -> Vec<&'a Step> {
    set.steps()
        .filter(|s| !applied.contains_key(&s.version))
        .filter(|s| match target {
            Target::Latest => true,
            Target::Phase(p) => s.phase <= p,
            Target::Version(v) => s.version <= v,
        })
        .collect()
}

/// Applies pending migrations in order. Stops at the first error, at a
/// ROLLBACK verdict (that step's transaction is rolled back), or at the end
/// of a phase whose verdict is REVIEW unless `accept_review`.
pub fn migrate(client: &mut Client, set: &MigrationSet, target: Target, opts: &Options, ui: &mut dyn Ui) -> Result<RunOutcome> {
    ledger::ensure(client)?;
    let applied = ledger::applied(client)?;
    check_consistency(set, &applied)?;
    let todo = pending(set, &applied, target);
    let mut out = RunOutcome::default();
    if todo.is_empty() {
        ui.progress("nothing to migrate: every selected migration is applied");
        return Ok(out.finish());
    }
    let watch = Watch::start(client, opts);
    for phase in &set.phases {
        let steps: Vec<&Step> = todo.iter().copied().filter(|s| s.phase == phase.id).collect();
        if steps.is_empty() {
            continue;
        }
        let entering = !phase.steps.iter().any(|s| applied.contains_key(&s.version));
        if entering && phase.needs_confirmation() {
            let prompt = format!(
                "phase {} ({}) is irreversible: {}. Type the phase name to continue",
                phase.id,
                phase.name,
                phase.reason.as_deref().unwrap_or("")
            );
            if !ui.confirm(&prompt, &phase.name) {
                return Ok(out.fail(Error::Refused(format!(
                    "phase {} ({}) is irreversible and was not confirmed; type its name at the prompt or pass --yes",
                    phase.id, phase.name
                ))));
            }
        }
        ui.progress(&format!("phase {} {}: {}", phase.id, phase.name, phase.summary));
        for step in steps {
            let (so, err) = apply_step(client, step, opts, &watch, ui);
            let done = so.status == StepStatus::Done;
            out.steps.push(so);
            if let Some(e) = err {
                return Ok(out.fail(e));
            }
            if !done {
                return Ok(out.finish());
            }
        }
        let phase_verdict = check::worst(out.steps.iter().filter(|s| s.phase == phase.id).flat_map(|s| s.checks.iter()));
        let more = todo.iter().any(|s| s.phase > phase.id);
        if phase_verdict == Verdict::Review && !opts.accept_review && more {
            ui.progress(&format!(
                "phase {} ended with REVIEW: a human must look before the next phase (rerun with --accept-review to continue)",
                phase.id
            ));
            out.stopped_for_review = Some(phase.id);
            return Ok(out.finish());
        }
    }
    Ok(out.finish())
}

/// Reverses phase `phase_id`, newest migration first.
pub fn rollback(client: &mut Client, set: &MigrationSet, phase_id: u32, opts: &Options, ui: &mut dyn Ui) -> Result<RunOutcome> {
    let phase = set.phase(phase_id).ok_or_else(|| Error::Refused(format!("phasegate has no phase {phase_id} in {}", display_path(&set.dir.join(crate::set::MANIFEST)))))?;
    refuse_irreversible(phase)?;
    ledger::ensure(client)?;
    let applied = ledger::applied(client)?;
    let to_reverse = plan_rollback(set, phase, &applied)?;
    let prompt = format!(
        "this reverses phase {} ({}): migrations {}. Type `rollback phase {}` to continue",
        phase.id,
        phase.name,
        to_reverse.iter().map(|s| s.version.to_string()).collect::<Vec<_>>().join(", "),
        phase.id
    );
    if !ui.confirm(&prompt, &format!("rollback phase {}", phase.id)) {
        return Err(Error::Refused(format!("rollback of phase {} was not confirmed; type `rollback phase {}` at the prompt or pass --yes", phase.id, phase.id)));
    }
    let mut out = RunOutcome::default();
    let watch = Watch::start(client, opts);
    for step in to_reverse {
        let a = &applied[&step.version];
        let (so, err) = rollback_step(client, step, a, opts, &watch, ui);
        let done = so.status == StepStatus::Done && check::worst(&so.checks) < Verdict::Rollback;
        out.steps.push(so);
        if let Some(e) = err {
            return Ok(out.fail(e));
        }
        if !done {
            return Ok(out.finish());
        }
    }
    Ok(out.finish())
}

pub fn refuse_irreversible(phase: &Phase) -> Result<()> {
    if phase.reversible {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "phase {} ({}) is irreversible: {}. It has no rollback: restore the database from the backup taken before phase {} (pg_restore, or your provider's point-in-time recovery), then re-apply from there; or fix forward with a new migration",
        phase.id,
        phase.name,
        phase.reason.as_deref().unwrap_or("no reason given"),
        phase.id
    )))
}

/// The applied steps of `phase` in the order they will be reversed, after
/// checking that no later phase is applied.
pub fn plan_rollback<'a>(set: &'a MigrationSet, phase: &Phase, applied: &BTreeMap<i32, Applied>) -> Result<Vec<&'a Step>> {
    for later in set.phases.iter().filter(|p| p.id > phase.id) {
        if later.steps.iter().any(|s| applied.contains_key(&s.version)) {
            return Err(Error::Refused(format!(
                "phase {} ({}) is applied after phase {}; roll it back first: cargo xtask rollback --phase {}",
                later.id, later.name, phase.id, later.id
            )));
        }
    }
    let mut steps: Vec<&Step> = set
        .phase(phase.id)
        .map(|p| p.steps.iter().filter(|s| applied.contains_key(&s.version)).collect())
        .unwrap_or_default();
    if steps.is_empty() {
        return Err(Error::Refused(format!("phase {} ({}) is not applied; nothing to roll back", phase.id, phase.name)));
    }
    steps.reverse();
    Ok(steps)
}

fn fmt_ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// `SET [LOCAL] lock_timeout / statement_timeout` for a file.
fn timeouts_sql(d: &Directives, opts: &Options, local: bool) -> String {
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

const RESET_TIMEOUTS: &str = "RESET lock_timeout; RESET statement_timeout;";

fn is_lock_timeout(e: &Error) -> bool {
    matches!(e, Error::Sql { sqlstate: Some(c), .. } if c == "55P03")
}

/// Runs a file's SQL statement by statement, so an error names the line of
/// the statement that failed (and the column, when PostgreSQL gives one).
/// Inside a transaction this is the same as sending the file at once; outside
/// one it is required (several statements in one message form an implicit
/// transaction, where `CREATE INDEX CONCURRENTLY` is refused). A file with a
/// SQL-standard function body (`BEGIN ATOMIC`, whose semicolons the splitter
/// cannot see past) is sent whole.
fn exec_file(client: &mut impl GenericClient, file: &SqlFile) -> Result<()> {
    if file.text.to_ascii_uppercase().contains("BEGIN ATOMIC") {
        return client.batch_execute(&file.text).map_err(|e| sql_error(&file.path, 1, &file.text, 0, &e));
    }
    for st in file.statements() {
        client
            .batch_execute(&file.text[st.start..st.end])
            .map_err(|e| crate::error::statement_error(&file.path, &file.text, st.start, st.line, &e))?;
    }
    Ok(())
}

fn run_checks<'a>(client: &mut impl GenericClient, version: i32, checks: impl Iterator<Item = &'a Check>, ui: &mut dyn Ui) -> Result<Vec<CheckResult>> {
    let mut out = Vec::new();
    for c in checks {
        let r = check::run(client, version, c)?;
        ui.check_done(&r);
        out.push(r);
    }
    Ok(out)
}

/// Who blocks this run's session: a watcher on a connection of its own.
pub(crate) struct Watch(Option<crate::db::BlockerWatch>);

impl Watch {
    fn start(client: &mut Client, opts: &Options) -> Watch {
        let Some(url) = &opts.monitor_url else { return Watch(None) };
        let pid: Option<i32> = client.query_one("SELECT pg_backend_pid()", &[]).ok().map(|r| r.get(0));
        Watch(pid.and_then(|pid| crate::db::BlockerWatch::start(url, pid)))
    }
    fn reset(&self) {
        if let Some(w) = &self.0 {
            w.reset();
        }
    }
    fn describe(&self) -> String {
        let seen = self.0.as_ref().map(|w| w.seen()).unwrap_or_default();
        if seen.is_empty() {
            return "a session the lock monitor did not catch (see pg_locks / pg_stat_activity)".into();
        }
        seen.iter().map(|b| b.to_string()).collect::<Vec<_>>().join("; ")
    }
}

/// Retries `attempt` after lock timeouts (SQLSTATE 55P03) with exponential
/// backoff and full jitter, printing each retry; the last failure names the
/// blocking sessions the watcher saw.
fn with_lock_retries<T>(opts: &Options, ui: &mut dyn Ui, what: &str, watch: &Watch, mut attempt: impl FnMut(&mut dyn Ui) -> Result<T>) -> (Result<T>, u32) {
    let mut retries = 0;
    watch.reset();
    loop {
        match attempt(ui) {
            Err(e) if is_lock_timeout(&e) && retries < opts.lock_retries => {
                retries += 1;
                let base = 250u64 << retries.min(6);
                let jitter = (uuid::Uuid::new_v4().as_u128() as u64) % (base + 1);
                let wait = Duration::from_millis(base / 2 + jitter / 2);
                ui.progress(&format!("  {what}: lock not available within {}; blocked by {}; retry {retries}/{} in {}", fmt_ms(opts.lock_timeout), watch.describe(), opts.lock_retries, fmt_ms(wait)));
                std::thread::sleep(wait);
            }
            Err(e) if is_lock_timeout(&e) => {
                let err = Error::LockTimeout { what: what.to_string(), retries, lock_timeout: fmt_ms(opts.lock_timeout), blockers: watch.describe() };
                return (Err(err), retries);
            }
            other => return (other, retries),
        }
    }
}

/// The result of one attempt at a step: checks, rows touched, and whether
/// the transaction committed.
struct Attempt {
    checks: Vec<CheckResult>,
    rows: Option<u64>,
    committed: bool,
    backups: Vec<Backup>,
}

impl Attempt {
    fn new(checks: Vec<CheckResult>, rows: Option<u64>, committed: bool) -> Attempt {
        Attempt { checks, rows, committed, backups: Vec::new() }
    }
}

fn apply_step(client: &mut Client, step: &Step, opts: &Options, watch: &Watch, ui: &mut dyn Ui) -> (StepOutcome, Option<Error>) {
    let started = Instant::now();
    ui.progress(&format!("  apply V{} {}", step.version, step.name));
    let d = &step.forward.directives;
    let what = format!("V{}", step.version);
    let (res, retries) = with_lock_retries(opts, ui, &what, watch, |ui| {
        if d.no_transaction {
            apply_outside_tx(client, step, opts, ui)
        } else if let Some(batch) = d.batch {
            apply_batched(client, step, batch, opts, ui)
        } else {
            apply_in_tx(client, step, opts, ui)
        }
    });
    finish_step(step, Action::Apply, started, retries, res)
}

fn finish_step(step: &Step, action: Action, started: Instant, retries: u32, res: Result<Attempt>) -> (StepOutcome, Option<Error>) {
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
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        retries,
        rows,
        checks,
        backups,
        error,
    }, err)
}

fn apply_in_tx(client: &mut Client, step: &Step, opts: &Options, ui: &mut dyn Ui) -> Result<Attempt> {
    let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
    tx.batch_execute(&timeouts_sql(&step.forward.directives, opts, true)).map_err(db_err("setting timeouts"))?;
    let mut checks = run_checks(&mut tx, step.version, step.checks_when(When::BeforeMigrate), ui)?;
    if check::worst(&checks) == Verdict::Rollback {
        return Ok(Attempt::new(checks, None, false));
    }
    exec_file(&mut tx, &step.forward)?;
    ledger::record_apply(&mut tx, step, &opts.run_id)?;
    checks.extend(run_checks(&mut tx, step.version, step.checks_when(When::AfterMigrate), ui)?);
    if check::worst(&checks) == Verdict::Rollback {
        tx.rollback().map_err(db_err("rolling back"))?;
        ui.progress(&format!("  V{}: a critical check failed; its transaction was rolled back, the database is as before it", step.version));
        return Ok(Attempt::new(checks, None, false));
    }
    tx.commit().map_err(db_err("committing"))?;
    Ok(Attempt::new(checks, None, true))
}

/// Records the ledger and runs the after-migrate checks of a step whose SQL
/// ran outside a transaction. When a check fails, the step's rollback file
/// undoes what the SQL did, so the database is as before the step.
fn record_after_outside(client: &mut Client, step: &Step, mut checks: Vec<CheckResult>, rows: Option<u64>, opts: &Options, ui: &mut dyn Ui) -> Result<Attempt> {
    let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
    ledger::record_apply(&mut tx, step, &opts.run_id)?;
    ledger::clear_batch(&mut tx, step.version)?;
    checks.extend(run_checks(&mut tx, step.version, step.checks_when(When::AfterMigrate), ui)?);
    if check::worst(&checks) < Verdict::Rollback {
        tx.commit().map_err(db_err("committing"))?;
        return Ok(Attempt::new(checks, rows, true));
    }
    tx.rollback().map_err(db_err("rolling back"))?;
    match &step.rollback {
        Some(rb) => {
            ui.progress(&format!("  V{}: a critical check failed after SQL that ran outside a transaction; undoing it with {}", step.version, display_path(&rb.path)));
            run_rollback_sql(client, rb, &rb.text, opts)?;
        }
        None => ui.progress(&format!("  V{}: a critical check failed after SQL that ran outside a transaction and has no rollback file; its changes remain", step.version)),
    }
    Ok(Attempt::new(checks, rows, false))
}

fn apply_outside_tx(client: &mut Client, step: &Step, opts: &Options, ui: &mut dyn Ui) -> Result<Attempt> {
    let checks = run_checks(client, step.version, step.checks_when(When::BeforeMigrate), ui)?;
    if check::worst(&checks) == Verdict::Rollback {
        return Ok(Attempt::new(checks, None, false));
    }
    let index = concurrent_index_name(&step.forward.text);
    if let Some(name) = &index {
        if index_is_invalid(client, name)? {
            ui.progress(&format!("  V{}: index {name} is INVALID (left by an interrupted concurrent build); dropping it to build it again", step.version));
            drop_index_concurrently(client, name)?;
        }
    }
    client.batch_execute(&timeouts_sql(&step.forward.directives, opts, false)).map_err(db_err("setting timeouts"))?;
    let res = exec_file(client, &step.forward);
    client.batch_execute(RESET_TIMEOUTS).map_err(db_err("resetting timeouts"))?;
    if let (Err(_), Some(name)) = (&res, &index) {
        // A failed concurrent build leaves an INVALID index that every write
        // still maintains: drop it now rather than leave it behind.
        if index_is_invalid(client, name)? {
            drop_index_concurrently(client, name)?;
            return Err(match res.expect_err("matched an error above") {
                Error::Sql { at, message, sqlstate } => Error::Sql { at, message: format!("{message}; the INVALID index {name} it left was dropped"), sqlstate },
                other => other,
            });
        }
    }
    res?;
    record_after_outside(client, step, checks, None, opts, ui)
}

/// The index a `CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name ON`
/// statement builds, as written (quotes kept), if the file is one.
pub fn concurrent_index_name(sql: &str) -> Option<String> {
    let text = crate::sqltext::strip_comments(sql);
    let mut tokens: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in text.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                cur.push(ch);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    tokens.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
        if tokens.len() > 10 {
            break;
        }
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    let up: Vec<String> = tokens.iter().map(|t| t.to_uppercase()).collect();
    let mut i = 0;
    let expect = |word: &str, i: &mut usize, optional: bool| -> bool {
        if up.get(*i).map(String::as_str) == Some(word) {
            *i += 1;
            true
        } else {
            optional
        }
    };
    if !expect("CREATE", &mut i, false) {
        return None;
    }
    expect("UNIQUE", &mut i, true);
    if !expect("INDEX", &mut i, false) || !expect("CONCURRENTLY", &mut i, false) {
        return None;
    }
    if up.get(i).map(String::as_str) == Some("IF") {
        i += 3;
    }
    let name = tokens.get(i)?;
    (up[i] != "ON").then(|| name.clone())
}

fn index_is_invalid(client: &mut Client, name: &str) -> Result<bool> {
    let row = client
        .query_opt("SELECT NOT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass($1)", &[&name])
        .map_err(db_err(format!("checking index {name}")))?;
    Ok(row.map(|r| r.get(0)).unwrap_or(false))
}

fn drop_index_concurrently(client: &mut Client, name: &str) -> Result<()> {
    client.batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {name}")).map_err(db_err(format!("dropping the INVALID index {name}")))
}

/// The value substituted for `:last_key`: a number as is, text quoted, and
/// NULL before the first batch.
fn key_literal(key: Option<&str>) -> String {
    match key {
        None => "NULL".into(),
        Some(k) if k.parse::<i64>().is_ok() || k.parse::<f64>().is_ok_and(f64::is_finite) => k.to_string(),
        Some(k) => format!("'{}'", k.replace('\'', "''")),
    }
}

fn batch_sql(template: &str, batch: u64, key: Option<&str>) -> String {
    template.replace(":batch_size", &batch.to_string()).replace(":last_key", &key_literal(key))
}

/// `SELECT count(*)` over the subquery that selects a batch's rows (the one
/// ending in `LIMIT :batch_size`), without the limit: the exact number of
/// rows still to do, for the progress bar's ETA.
fn remaining_count_sql(template: &str, key: Option<&str>) -> Option<String> {
    let lower = template.to_ascii_lowercase();
    let limit = lower.find("limit :batch_size")?;
    let bytes = template.as_bytes();
    let mut depth = 0i32;
    let mut open = None;
    for i in (0..limit).rev() {
        match bytes[i] {
            b')' => depth += 1,
            b'(' if depth == 0 => {
                open = Some(i);
                break;
            }
            b'(' => depth -= 1,
            _ => {}
        }
    }
    let inner = template[open? + 1..limit].trim();
    if !inner.to_ascii_lowercase().starts_with("select") {
        return None;
    }
    Some(format!("SELECT count(*) FROM ({}) phasegate_remaining", inner.replace(":last_key", &key_literal(key))))
}

/// `-- phasegate: batch N`: the UPDATE runs again and again, one transaction
/// per batch, until it changes no rows. With `:last_key` and `RETURNING
/// <key>` the batches are keyset-paginated (each starts after the largest key
/// the previous one returned). Each batch records its progress in
/// `phasegate_batches` in its own transaction, so a rerun after a crash or
/// Ctrl-C resumes after the last committed batch.
fn apply_batched(client: &mut Client, step: &Step, batch: u64, opts: &Options, ui: &mut dyn Ui) -> Result<Attempt> {
    let checks = run_checks(client, step.version, step.checks_when(When::BeforeMigrate), ui)?;
    if check::worst(&checks) == Verdict::Rollback {
        return Ok(Attempt::new(checks, None, false));
    }
    let file = &step.forward;
    let st = crate::sqltext::statements(&file.text).into_iter().next().ok_or_else(|| Error::Refused(format!("{}: no statement", display_path(&file.path))))?;
    let template = file.text[st.start..st.end].to_string();
    let keyset = template.contains(":last_key");
    let (mut key, mut done) = match ledger::batch_progress(client, step.version)? {
        Some((k, d)) => {
            ui.progress(&format!("  V{}: resuming the backfill after key {} ({d} rows done before)", step.version, k.as_deref().unwrap_or("-")));
            (k, d as u64)
        }
        None => (None, 0),
    };
    let total = match remaining_count_sql(&template, key.as_deref()) {
        Some(q) => client.query_one(q.as_str(), &[]).ok().map(|r| r.get::<_, i64>(0) as u64),
        None => None,
    };
    let label = format!("V{} backfill", step.version);
    ui.batch(crate::ui::BatchProgress::Started { version: step.version, label: &label, total, done });
    let started = Instant::now();
    let mut last_line = Instant::now();
    let mut this_run = 0u64;
    loop {
        let sql = batch_sql(&template, batch, key.as_deref());
        let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
        tx.batch_execute(&timeouts_sql(&file.directives, opts, true)).map_err(db_err("setting timeouts"))?;
        let err = |e: postgres::Error| crate::error::statement_error(&file.path, &file.text, st.start, st.line, &e);
        let (n, next_key) = if keyset {
            let q = format!("WITH phasegate_batch AS ({sql}) SELECT count(*)::bigint, max(k)::text FROM phasegate_batch AS t(k)");
            let row = tx.query_one(q.as_str(), &[]).map_err(err)?;
            (row.get::<_, i64>(0) as u64, row.get::<_, Option<String>>(1))
        } else {
            (tx.execute(sql.as_str(), &[]).map_err(err)?, None)
        };
        if n > 0 {
            if next_key.is_some() {
                key = next_key;
            }
            done += n;
            this_run += n;
            ledger::record_batch(&mut tx, step.version, key.as_deref(), done as i64)?;
        }
        tx.commit().map_err(db_err("committing a batch"))?;
        ui.batch(crate::ui::BatchProgress::Advanced { version: step.version, rows: n });
        if n == 0 {
            break;
        }
        if last_line.elapsed() >= Duration::from_secs(2) {
            last_line = Instant::now();
            let rate = this_run as f64 / started.elapsed().as_secs_f64().max(1e-3);
            let eta = total.map(|t| format!(", ETA {:.0}s", t.saturating_sub(this_run) as f64 / rate.max(1e-3))).unwrap_or_default();
            ui.progress(&format!("    V{} backfill: {done} rows ({rate:.0} rows/s{eta})", step.version));
        }
    }
    ui.batch(crate::ui::BatchProgress::Finished { version: step.version });
    let rate = this_run as f64 / started.elapsed().as_secs_f64().max(1e-3);
    ui.progress(&format!("    V{} backfill done: {done} rows in {:.1}s ({rate:.0} rows/s)", step.version, started.elapsed().as_secs_f64()));
    record_after_outside(client, step, checks, Some(done), opts, ui)
}

/// Runs rollback SQL (in a transaction unless the file says otherwise).
fn run_rollback_sql(client: &mut Client, file: &SqlFile, text: &str, opts: &Options) -> Result<()> {
    let f = SqlFile { path: file.path.clone(), text: text.to_string(), directives: file.directives.clone() };
    if f.directives.no_transaction {
        client.batch_execute(&timeouts_sql(&f.directives, opts, false)).map_err(db_err("setting timeouts"))?;
        let r = exec_file(client, &f);
        client.batch_execute(RESET_TIMEOUTS).map_err(db_err("resetting timeouts"))?;
        r
    } else {
        let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
        tx.batch_execute(&timeouts_sql(&f.directives, opts, true)).map_err(db_err("setting timeouts"))?;
        exec_file(&mut tx, &f)?;
        tx.commit().map_err(db_err("committing"))
    }
}

/// The rollback SQL and after-rollback checks to use for an applied step:
/// those stored at apply time, so a rollback still runs if files changed or
/// vanished.
fn stored_rollback(step: &Step, a: &Applied, ui: &mut dyn Ui) -> Result<(SqlFile, Vec<Check>)> {
    let file = step.rollback.clone().ok_or_else(|| Error::Refused(format!("migration {} has no rollback file", step.version)))?;
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
    let directives = crate::set::SqlFile { path: file.path.clone(), text: text.clone(), directives: file.directives.clone() };
    Ok((directives, checks))
}

fn rollback_step(client: &mut Client, step: &Step, a: &Applied, opts: &Options, watch: &Watch, ui: &mut dyn Ui) -> (StepOutcome, Option<Error>) {
    let started = Instant::now();
    ui.progress(&format!("  rollback V{} {}", step.version, step.name));
    let what = format!("rollback V{}", step.version);
    let (res, retries) = with_lock_retries(opts, ui, &what, watch, |ui| {
        let (file, checks) = stored_rollback(step, a, ui)?;
        let before = checks.iter().filter(|c| c.when == When::BeforeRollback);
        let after = checks.iter().filter(|c| c.when == When::AfterRollback);
        let targets = if opts.backup { backup::targets(&file.text) } else { Vec::new() };
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
                let session = backup::Session::prepare(&mut tx, &opts.run_id, step.version, &targets, true)?;
                backups = session.finish(&mut tx, &opts.run_id)?;
                tx.commit().map_err(db_err("committing the backup"))?;
                report_backups(ui, &backups);
            }
            run_rollback_sql(client, &file, &file.text, opts)?;
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
        let session = backup::Session::prepare(&mut tx, &opts.run_id, step.version, &targets, false)?;
        exec_file(&mut tx, &file)?;
        ledger::record_rollback(&mut tx, step.version)?;
        results.extend(run_checks(&mut tx, step.version, after, ui)?);
        if check::worst(&results) == Verdict::Rollback {
            tx.rollback().map_err(db_err("rolling back"))?;
            ui.progress(&format!("  rollback V{}: an after-rollback check failed; the rollback was undone, V{} stays applied", step.version, step.version));
            return Ok(Attempt::new(results, None, false));
        }
        // Last before commit: dropping the backup triggers takes ACCESS
        // EXCLUSIVE on the table, held only until the commit just below.
        let backups = session.finish(&mut tx, &opts.run_id)?;
        tx.commit().map_err(db_err("committing"))?;
        report_backups(ui, &backups);
        Ok(Attempt { checks: results, rows: None, committed: true, backups })
    });
    finish_step(step, Action::Rollback, started, retries, res)
}

fn report_backups(ui: &mut dyn Ui, backups: &[Backup]) {
    for b in backups {
        let changes: Vec<&str> = b.changes.iter().map(|c| c.as_str()).collect();
        ui.progress(&format!("    backup: {} rows of {} ({}) saved to {}", b.rows, b.table, changes.join(", "), b.backup_table));
    }
}

/// The latest phase with an applied migration.
pub fn current_phase(set: &MigrationSet, applied: &BTreeMap<i32, Applied>) -> Option<u32> {
    set.phases.iter().rev().find(|p| p.steps.iter().any(|s| applied.contains_key(&s.version))).map(|p| p.id)
}

/// Runs checks against the current database in a read-only transaction that
/// is rolled back, so validation never changes anything. Without a phase,
/// the after-migrate checks of the current phase run.
pub fn validate(client: &mut Client, set: &MigrationSet, phase: Option<u32>, when: Option<When>) -> Result<Vec<CheckResult>> {
    let applied = ledger::applied(client)?;
    validate_applied(client, set, &applied, phase, when)
}

/// `validate` for a caller that has just read the ledger.
pub fn validate_applied(client: &mut Client, set: &MigrationSet, applied: &BTreeMap<i32, Applied>, phase: Option<u32>, when: Option<When>) -> Result<Vec<CheckResult>> {
    // By default, the current phase's checks: a later phase may drop what an
    // earlier phase's checks look at (a cleanup drops the old columns).
    let phase = match (phase, when) {
        (Some(p), _) => Some(p),
        (None, None | Some(When::AfterMigrate)) => current_phase(set, applied),
        (None, _) => None,
    };
    let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
    tx.batch_execute("SET TRANSACTION READ ONLY").map_err(db_err("starting a read-only transaction"))?;
    let mut results = Vec::new();
    for step in set.steps().filter(|s| phase.is_none_or(|p| s.phase == p)) {
        let is_applied = applied.contains_key(&step.version);
        let w = match (when, is_applied) {
            (Some(w), _) => w,
            (None, true) => When::AfterMigrate,
            (None, false) => continue,
        };
        // after-migrate and before-rollback checks describe applied steps;
        // after-rollback and before-migrate checks steps that are not applied.
        if matches!(w, When::AfterMigrate | When::BeforeRollback) != is_applied {
            continue;
        }
        let checks: Vec<Check> = match applied.get(&step.version).and_then(|a| a.validation_sql.as_ref()) {
            Some(stored) if stored != &step.validation.text => check::parse_file(&step.validation.path, stored)?,
            _ => step.checks.clone(),
        };
        results.extend(run_checks(&mut tx, step.version, checks.iter().filter(|c| c.when == w), &mut Quiet)?);
    }
    tx.rollback().map_err(db_err("ending the read-only transaction"))?;
    Ok(results)
}

/// Loads the set's seed files (rehearsals only): `rows` sets
/// `phasegate.seed_rows` for files that read it.
pub fn seed(client: &mut Client, set: &MigrationSet, rows: Option<u64>) -> Result<usize> {
    let Some(seed) = &set.seed else { return Ok(0) };
    let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
    if let Some(n) = rows {
        tx.batch_execute(&format!("SET LOCAL phasegate.seed_rows = '{n}'")).map_err(db_err("setting phasegate.seed_rows"))?;
    }
    for f in &seed.files {
        exec_file(&mut tx, f)?;
    }
    tx.commit().map_err(db_err("committing the seed"))?;
    Ok(seed.files.len())
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_index_a_concurrent_build_makes() {
        assert_eq!(concurrent_index_name("-- x\nCREATE INDEX CONCURRENTLY IF NOT EXISTS \"a b_idx\" ON t (x);"), Some("\"a b_idx\"".into()));
        assert_eq!(concurrent_index_name("create unique index concurrently i on t(x)"), Some("i".into()));
        assert_eq!(concurrent_index_name("CREATE INDEX CONCURRENTLY ON t (x)"), None);
        assert_eq!(concurrent_index_name("CREATE INDEX i ON t (x)"), None);
    }

    #[test]
    fn counts_the_rows_a_batch_selects() {
        let t = "UPDATE t SET x = 1 WHERE id IN (SELECT id FROM t WHERE (:last_key IS NULL OR id > :last_key) AND x IS NULL ORDER BY id LIMIT :batch_size) RETURNING id";
        assert_eq!(
            remaining_count_sql(t, Some("41")).unwrap(),
            "SELECT count(*) FROM (SELECT id FROM t WHERE (41 IS NULL OR id > 41) AND x IS NULL ORDER BY id) phasegate_remaining"
        );
        assert_eq!(batch_sql(t, 500, None).matches("NULL IS NULL").count(), 1);
        assert_eq!(key_literal(Some("o'k")), "'o''k'");
        assert!(remaining_count_sql("UPDATE t SET x = 1", None).is_none());
    }
}
