//! Batched backfills (docs/directives.md): `-- phasegate: batch` runs the file's
//! one UPDATE again and again, one transaction per batch (sized by a fixed
//! count or by time: `sizing`), walking the key,
//! recording progress so a killed run resumes, and reporting each batch to
//! the caller's `Ui` (which draws the bar). Forward files and rollback files
//! alike; a rollback's walk backs up each batch's rows in that batch. How
//! the key is handed from batch to batch (a bind parameter of its own
//! type): `keyset`.

use std::time::{Duration, Instant};

use postgres::Client;

use super::exec::{run_checks, run_rollback_sql, timeouts_sql, Attempt, StepTx};
use super::keyset::{key_type, keyset_sql, substitute, KeyText, Placeholders, KEYSET_PREFIX};
use super::replica::ReplicaGate;
use super::outcome::Options;
use super::sizing::Sizer;
use crate::backup::BatchBackup;
use crate::check::{self, CheckResult, Verdict, When};
use crate::error::{db_err, wrapped_statement_error, Error, Location, Result};
use crate::ledger;
use crate::locks::trace::Tracer;
use crate::locks::Source;
use crate::set::{BatchSize, SqlFile, Step};
use crate::ui::{BatchProgress, Ui};

/// `SELECT count(*)` over the subquery that selects a batch's rows (the one
/// ending in `LIMIT :batch_size`), without the limit and without its ORDER
/// BY: the exact number of rows still to do, for the progress bar's ETA. (A
/// count needs no order: sorting every remaining key to count them cost
/// 1.3 s of a 1M-row walk, the count alone 40 ms.) Read with the SQL lexer,
/// so quotes, comments and dollar quotes cannot mislead it. Its `:last_key`
/// is `$1`, as in the batches.
fn remaining_count_sql(template: &str) -> Option<String> {
    use crate::sqltext::Token;
    let lx = crate::sqltext::lex(template);
    let limit = (0..lx.len().saturating_sub(2)).find(|&i| lx[i].token.is_word("limit") && lx[i + 1].token == Token::Punct(':') && lx[i + 2].token.is_word("batch_size"))?;
    // The parenthesis that opens the subquery, and its top-level ORDER BY.
    let mut depth = 0i32;
    let mut order_by = None;
    let mut open = None;
    for i in (0..limit).rev() {
        match &lx[i].token {
            Token::Punct(')') => depth += 1,
            Token::Punct('(') if depth == 0 => {
                open = Some(i);
                break;
            }
            Token::Punct('(') => depth -= 1,
            t if depth == 0 && t.is_word("order") && lx.get(i + 1).is_some_and(|n| n.token.is_word("by")) => order_by = Some(i),
            _ => {}
        }
    }
    let open = open?;
    let end = order_by.map_or(lx[limit].start, |i| lx[i].start);
    let inner = template[lx[open].end..end].trim();
    if !inner.to_ascii_lowercase().starts_with("select") {
        return None;
    }
    Some(format!("SELECT count(*) FROM ({}) phasegate_remaining", substitute(inner, 0, "$1").trim_end()))
}

/// A batched file's key walk: which file, how its batches are sized, the
/// key its progress is recorded under in `phasegate_batches` (see
/// [`ledger::rollback_batch_key`]) and the label its progress shows.
pub(super) struct Walk<'a> {
    pub version: i32,
    pub file: &'a SqlFile,
    pub batch: BatchSize,
    pub progress_key: i32,
    pub label: String,
}

/// `-- phasegate: batch` in a forward file: the checks before, the walk,
/// then the ledger and the checks after.
pub(super) fn apply_batched(client: &mut Client, step: &Step, ledger: &ledger::Tables, batch: BatchSize, opts: &Options, tracer: &mut Tracer, ui: &mut dyn Ui) -> Result<Attempt> {
    let checks = run_checks(client, step.version, step.checks_when(When::BeforeMigrate), ui)?;
    if check::worst(&checks) == Verdict::Rollback {
        return Ok(Attempt::new(checks, None, false));
    }
    let walk = Walk { version: step.version, file: &step.forward, batch, progress_key: step.version, label: format!("V{} backfill", step.version) };
    let done = run_batches(client, &walk, opts, tracer, ui, None)?;
    record_after_outside(client, step, ledger, checks, Some(done), opts, tracer, ui)
}

/// Runs a batched file's one UPDATE again and again, one transaction per
/// batch, until it changes no rows, each batch as large as the walk's
/// [`Sizer`] says. With `:last_key` and `RETURNING <key>` the batches are
/// keyset-paginated (each starts after the largest key the previous one
/// returned). Each batch records its progress in `phasegate_batches` in its
/// own transaction, so a rerun after a crash or Ctrl-C resumes after the
/// last committed batch. With `backup`, each batch's old rows are copied in
/// the batch's own transaction. Returns the rows done, those of earlier
/// runs included.
///
/// A batch costs four round trips: `BEGIN` with its timeouts, the UPDATE
/// (its largest key and row count computed by the server), the progress
/// row (the ledger's table found once per walk, the statement not
/// prepared) and `COMMIT`.
pub(super) fn run_batches(client: &mut Client, walk: &Walk, opts: &Options, tracer: &mut Tracer, ui: &mut dyn Ui, backup: Option<&BatchBackup>) -> Result<u64> {
    let file = walk.file;
    let st = crate::sqltext::statements(&file.text).into_iter().next().ok_or_else(|| Error::Load { at: Location::line(&file.path, 1), kind: crate::error::LoadError::NoStatement })?;
    let template = file.text[st.start..st.end].to_string();
    let keyset = Placeholders::find(&template).keyset();
    let label = &walk.label;
    let (mut key, mut done) = match ledger::batch_progress(client, walk.progress_key)? {
        Some((k, d)) => {
            ui.progress(&format!("  {label}: resuming after key {} ({d} rows done before)", k.as_deref().unwrap_or("-")));
            (k, d as u64)
        }
        None => (None, 0),
    };
    // PostgreSQL's errors placed in the file (the statement is sent after
    // `prefix` characters of the engine's own).
    let located = |prefix: usize| move |e: postgres::Error| wrapped_statement_error(&file.path, &file.text, st.start, st.line, prefix, &e);
    let mut sizer = Sizer::new(walk.batch);
    let (key_type, total) = before_walk(client, walk, &template, sizer.size(), key.as_deref(), keyset, opts, &located(KEYSET_PREFIX.len()))?;
    let record = ledger::record_batch_sql(client)?;
    let begin = format!("BEGIN; {}", timeouts_sql(&file.directives, opts, true));
    ui.batch(BatchProgress::Started { version: walk.version, label, total, done });
    let started = Instant::now();
    let mut last_line = Instant::now();
    let mut this_run = 0u64;
    let (mut batches, mut smallest, mut largest) = (0u64, u64::MAX, 0u64);
    let mut gate = ReplicaGate::new(walk.version, label, opts.max_replica_lag);
    loop {
        gate.wait(client, ui)?;
        let size = sizer.size();
        // Each batch is a transaction of its own: its locks end with it.
        let batch = (|| -> Result<(u64, Duration)> {
            client.batch_execute(&begin).map_err(db_err("starting a batch's transaction"))?;
            if let Some(b) = backup {
                b.begin(client)?;
            }
            tracer.begin_fresh();
            let t = Instant::now();
            let (n, next_key) = tracer.statement(Source::new(&file.path, &template, st.line), || -> Result<_> {
                match &key_type {
                    Some(ty) => {
                        let row = client.query_typed_one(&keyset_sql(&template, size), &[(&KeyText(key.as_deref()), ty.clone())]).map_err(located(KEYSET_PREFIX.len()))?;
                        Ok((row.get::<_, i64>(0) as u64, row.get::<_, Option<String>>(1)))
                    }
                    None => Ok((changed(client.simple_query(&substitute(&template, size, "NULL")).map_err(located(0))?), None)),
                }
            })?;
            if n > 0 {
                if next_key.is_some() {
                    key = next_key;
                }
                ledger::record_batch_with(client, &record, walk.progress_key, key.as_deref(), (done + n) as i64)?;
            }
            if let Some(b) = backup {
                b.end(client)?;
            }
            client.batch_execute("COMMIT").map_err(db_err("committing a batch"))?;
            Ok((n, t.elapsed()))
        })();
        let (n, took) = batch.inspect_err(|_| {
            // Whatever failed, the batch's transaction ends here (a
            // ROLLBACK after a failed COMMIT only warns).
            let _ = client.batch_execute("ROLLBACK");
            tracer.end();
        })?;
        tracer.end();
        done += n;
        this_run += n;
        batches += 1;
        (smallest, largest) = (smallest.min(size), largest.max(size));
        sizer.took(took);
        ui.batch(BatchProgress::Advanced { version: walk.version, rows: n, size, took });
        if n == 0 {
            break;
        }
        if last_line.elapsed() >= Duration::from_secs(2) {
            last_line = Instant::now();
            let rate = this_run as f64 / started.elapsed().as_secs_f64().max(1e-3);
            let eta = total.map(|t| format!(", ETA {:.0}s", t.saturating_sub(this_run) as f64 / rate.max(1e-3))).unwrap_or_default();
            ui.progress(&format!("    {label}: {done} rows ({rate:.0} rows/s{eta}, batches of {size} rows)"));
        }
    }
    ui.batch(BatchProgress::Finished { version: walk.version });
    let rate = this_run as f64 / started.elapsed().as_secs_f64().max(1e-3);
    let sizes = if smallest == largest { format!("{largest}") } else { format!("{smallest}-{largest}") };
    ui.progress(&format!("    {label} done: {done} rows in {:.1}s ({rate:.0} rows/s; {batches} batches of {sizes} rows)", started.elapsed().as_secs_f64()));
    Ok(done)
}

/// The rows a simple-query UPDATE changed (its command tag).
fn changed(messages: Vec<postgres::SimpleQueryMessage>) -> u64 {
    messages.iter().rev().find_map(|m| if let postgres::SimpleQueryMessage::CommandComplete(n) = m { Some(*n) } else { None }).unwrap_or(0)
}

/// Before the first batch, in a short transaction under the file's
/// timeouts (it takes the locks the statement would): the key's type
/// (keyset walks; `located` places an error of the statement in the file)
/// and the rows left to do, for the progress bar's ETA (a count that fails
/// or times out only leaves the ETA out).
#[allow(clippy::too_many_arguments)]
fn before_walk(
    client: &mut Client,
    walk: &Walk,
    template: &str,
    size: u64,
    key: Option<&str>,
    keyset: bool,
    opts: &Options,
    located: &dyn Fn(postgres::Error) -> Error,
) -> Result<(Option<postgres::types::Type>, Option<u64>)> {
    let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
    tx.batch_execute(&timeouts_sql(&walk.file.directives, opts, true)).map_err(db_err("setting timeouts"))?;
    let ty = if keyset {
        match key_type(&mut tx, template, size).map_err(located)? {
            Ok(ty) => Some(ty),
            Err(type_name) => {
                let line = crate::sqltext::statements(&walk.file.text).first().map_or(1, |s| s.line);
                return Err(Error::BatchKeyType { at: Location::line(&walk.file.path, line), type_name });
            }
        }
    } else {
        None
    };
    let total = remaining_count_sql(template).and_then(|q| {
        let key_param = ty.clone().unwrap_or(postgres::types::Type::TEXT);
        tx.query_typed_one(&q, &[(&KeyText(key), key_param)]).ok().map(|r| r.get::<_, i64>(0) as u64)
    });
    let _ = tx.rollback();
    Ok((ty, total))
}


/// Records the ledger and runs the after-migrate checks of a step whose SQL
/// ran outside a transaction. When a check fails, the step's rollback file
/// undoes what the SQL did, so the database is as before the step.
///
/// `rows`: the rows a walk changed. The ledger rows are written (which
/// also forgets a walk's progress) in the message that opens the
/// transaction.
#[allow(clippy::too_many_arguments)]
pub(super) fn record_after_outside(
    client: &mut Client,
    step: &Step,
    ledger: &ledger::Tables,
    mut checks: Vec<CheckResult>,
    rows: Option<u64>,
    opts: &Options,
    tracer: &mut Tracer,
    ui: &mut dyn Ui,
) -> Result<Attempt> {
    let what = format!("recording migration {} in the ledger", step.version);
    let mut tx = StepTx::begin(client, &ledger::record_apply_sql(ledger, step, &opts.run_id), &what)?;
    checks.extend(run_checks(&mut tx, step.version, step.checks_when(When::AfterMigrate), ui)?);
    if check::worst(&checks) < Verdict::Rollback {
        tx.commit()?;
        return Ok(Attempt::new(checks, rows, true));
    }
    tx.rollback()?;
    match &step.rollback {
        Some(rb) => {
            ui.progress(&format!("  V{}: a critical check failed after SQL that ran outside a transaction; undoing it with {}", step.version, crate::error::display_path(&rb.path)));
            match rb.directives.batch {
                // A batched rollback file is a key walk, as `rollback` runs it
                // (its placeholders mean nothing to PostgreSQL).
                Some(batch) => {
                    let key = ledger::rollback_batch_key(step.version);
                    let walk = Walk { version: step.version, file: rb, batch, progress_key: key, label: format!("V{} undo", step.version) };
                    run_batches(client, &walk, opts, tracer, ui, None)?;
                    ledger::clear_batch(client, key)?;
                }
                None => run_rollback_sql(client, rb, &rb.text, opts, tracer)?,
            }
            // Undone: a re-run walks from the start, not after the last batch.
            ledger::clear_batch(client, step.version)?;
        }
        None => ui.progress(&format!("  V{}: a critical check failed after SQL that ran outside a transaction and has no rollback file; its changes remain", step.version)),
    }
    Ok(Attempt::new(checks, rows, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_rows_a_batch_selects() {
        let t = "UPDATE t SET x = 1 WHERE id IN (SELECT id FROM t WHERE (:last_key IS NULL OR id > :last_key) AND x IS NULL ORDER BY id LIMIT :batch_size) RETURNING id";
        assert_eq!(
            remaining_count_sql(t).unwrap(),
            "SELECT count(*) FROM (SELECT id FROM t WHERE ($1        IS NULL OR id > $1       ) AND x IS NULL) phasegate_remaining"
        );
        assert!(remaining_count_sql("UPDATE t SET x = 1").is_none());
        let array = "UPDATE t SET x = 1 WHERE id = ANY (ARRAY(SELECT id FROM t WHERE id > :last_key ORDER BY id LIMIT :batch_size)) RETURNING id";
        assert_eq!(remaining_count_sql(array).unwrap(), "SELECT count(*) FROM (SELECT id FROM t WHERE id > $1) phasegate_remaining");
        let nested = "UPDATE t SET x = 1 WHERE id = ANY (ARRAY(SELECT id FROM t WHERE x IN (SELECT y FROM u ORDER BY y) AND z <> ') order by (' ORDER BY id LIMIT :batch_size))";
        assert_eq!(remaining_count_sql(nested).unwrap(), "SELECT count(*) FROM (SELECT id FROM t WHERE x IN (SELECT y FROM u ORDER BY y) AND z <> ') order by (') phasegate_remaining");
    }
}
