//! Applying one step: in a transaction with its checks and ledger row, or
//! outside one (`no-transaction` files, with recovery of the INVALID index a
//! failed concurrent build leaves), undone by its rollback file when a
//! critical check fails afterwards.

use std::time::Instant;

use postgres::Client;

use super::batch::{apply_batched, record_after_outside};
use super::exec::{end_own_transaction, exec_file, exec_file_in_tx, AtOnce, finish_step, forward_in_tx, mark_step_start, run_checks, timeouts_sql, Attempt, StepTx, MARK_STEP_START, RESET_TIMEOUTS};
use super::retry::{with_lock_retries, Watch};
use super::outcome::{Action, Options, StepOutcome};
use crate::check::{self, Scope as _, Verdict, When};
use crate::error::{db_err, Error, Result};
use crate::ledger;
use crate::locks::trace::Tracer;
use crate::set::Step;
use crate::ui::Ui;

pub(super) fn apply_step(client: &mut Client, step: &Step, ledger: &ledger::Tables, opts: &Options, watch: &Watch, tracer: &mut Tracer, ui: &mut dyn Ui) -> (StepOutcome, Option<Error>) {
    let started = Instant::now();
    ui.progress(&format!("  apply V{} {}", step.version, step.name));
    let d = &step.forward.directives;
    let what = format!("V{}", step.version);
    let (res, retries) = with_lock_retries(opts, ui, &what, watch, |ui| {
        if d.no_transaction {
            apply_outside_tx(client, step, ledger, opts, tracer, ui)
        } else if let Some(batch) = d.batch {
            mark_step_start(client)?;
            apply_batched(client, step, ledger, batch, opts, tracer, ui)
        } else {
            apply_in_tx(client, step, ledger, opts, tracer, ui)
        }
    });
    finish_step(step, Action::Apply, started, retries, res)
}

fn apply_in_tx(client: &mut Client, step: &Step, ledger: &ledger::Tables, opts: &Options, tracer: &mut Tracer, ui: &mut dyn Ui) -> Result<Attempt> {
    // One message opens the step's transaction, marks its start (a
    // rolled-back step's mark goes with it, and a retry marks its own),
    // sets its timeouts and writes its ledger rows, which the transaction
    // keeps only if the step commits: no round trip of their own.
    let first = format!("{MARK_STEP_START}; {} {}", timeouts_sql(&step.forward.directives, opts, true), ledger::record_apply_sql(ledger, step, &opts.run_id));
    let what = format!("starting V{}: setting its timeouts and recording it in the ledger", step.version);
    // With no checks to run before it, the file goes in that message too
    // (see `AtOnce`): a step is then three round trips, its start and
    // file, its checks, its commit.
    let at_once = match step.checks_when(When::BeforeMigrate).next() {
        None => AtOnce::of(&step.forward, tracer, 1),
        Some(_) => None,
    };
    let mut tx = match &at_once {
        Some(a) => StepTx::begin_with(client, &first, &what, &step.forward, a)?,
        None => StepTx::begin(client, &first, &what)?,
    };
    let checks = forward_in_tx(&mut tx, step, opts, None, tracer, ui, |tx, file, tracer| match at_once {
        Some(_) => Ok(()),
        None => exec_file_in_tx(tx.client(), file, tracer),
    })?;
    if check::worst(&checks) == Verdict::Rollback {
        tx.rollback()?;
        tracer.end();
        ui.progress(&format!("  V{}: a critical check failed; its transaction was rolled back, the database is as before it", step.version));
        return Ok(Attempt::new(checks, None, false));
    }
    tx.commit()?;
    tracer.end();
    Ok(Attempt::new(checks, None, true))
}

fn apply_outside_tx(client: &mut Client, step: &Step, ledger: &ledger::Tables, opts: &Options, tracer: &mut Tracer, ui: &mut dyn Ui) -> Result<Attempt> {
    // The step's start, its session timeouts and, for a concurrent index
    // build, whether an interrupted build left that index INVALID: one
    // message (the start is marked on its own before checks that run
    // first, so it stays the step's start).
    let mut before = step.checks_when(When::BeforeMigrate).peekable();
    let marked = before.peek().is_some();
    let checks = if marked {
        mark_step_start(client)?;
        run_checks(client, step.version, before, ui)?
    } else {
        Vec::new()
    };
    if check::worst(&checks) == Verdict::Rollback {
        return Ok(Attempt::new(checks, None, false));
    }
    let index = concurrent_index_name(&step.forward.text);
    let mark = if marked { String::new() } else { format!("{MARK_STEP_START};") };
    let invalid = index.as_deref().map(invalid_index_query).unwrap_or_default();
    let sql = format!("{mark} {} {invalid}", timeouts_sql(&step.forward.directives, opts, false));
    let what = match &index {
        Some(name) => format!("setting timeouts and checking index {name}"),
        None => "setting timeouts".to_string(),
    };
    let answer = client.simple_query(&sql).map_err(db_err(what))?;
    if let Some(name) = &index {
        if index_was_invalid(&answer) {
            ui.progress(&format!("  V{}: index {name} is INVALID (left by an interrupted concurrent build); dropping it to build it again", step.version));
            // Under the step's lock timeout, as the build after it.
            drop_index_concurrently(client, name)?;
        }
    }
    let res = exec_file(client, &step.forward, tracer);
    end_own_transaction(client, &res);
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
    record_after_outside(client, step, ledger, checks, None, opts, tracer, ui)
}

/// The query that answers one row `t` when the index `name` (as
/// [`concurrent_index_name`] gives it) exists and is INVALID, `f` when it is
/// valid, and no row when there is no such index.
fn invalid_index_query(name: &str) -> String {
    format!(
        "SELECT NOT i.indisvalid AS phasegate_invalid FROM pg_catalog.pg_index i WHERE i.indexrelid = pg_catalog.to_regclass({});",
        crate::pg::quote_literal(name)
    )
}

/// Whether an answer holding [`invalid_index_query`] found the index INVALID.
fn index_was_invalid(answer: &[postgres::SimpleQueryMessage]) -> bool {
    answer.iter().any(|m| matches!(m, postgres::SimpleQueryMessage::Row(r) if r.columns().first().is_some_and(|c| c.name() == "phasegate_invalid") && r.get(0) == Some("t")))
}

/// The index a `CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name ON`
/// statement builds, in a form `to_regclass` and `DROP INDEX` accept
/// (quoted names keep their quotes), if the file is one.
pub(crate) fn concurrent_index_name(sql: &str) -> Option<String> {
    use crate::sqltext::Token;
    let t = crate::sqltext::tokens(sql);
    let mut i = 0;
    let eat = |w: &str, i: &mut usize| t.get(*i).is_some_and(|x| x.is_word(w)).then(|| *i += 1).is_some();
    if !eat("create", &mut i) {
        return None;
    }
    eat("unique", &mut i);
    if !eat("index", &mut i) || !eat("concurrently", &mut i) {
        return None;
    }
    if eat("if", &mut i) && !(eat("not", &mut i) && eat("exists", &mut i)) {
        return None;
    }
    let mut name = String::new();
    loop {
        match t.get(i)? {
            Token::Word(w) if w != "on" => name.push_str(w),
            Token::Quoted(q) => name.push_str(&crate::pg::quote_ident(q)),
            _ => return None,
        }
        if t.get(i + 1) != Some(&Token::Punct('.')) {
            return Some(name);
        }
        name.push('.');
        i += 2;
    }
}

fn index_is_invalid(client: &mut Client, name: &str) -> Result<bool> {
    let answer = client.simple_query(&invalid_index_query(name)).map_err(db_err(format!("checking index {name}")))?;
    Ok(index_was_invalid(&answer))
}

fn drop_index_concurrently(client: &mut Client, name: &str) -> Result<()> {
    client.batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {name}")).map_err(db_err(format!("dropping the INVALID index {name}")))
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
        assert_eq!(concurrent_index_name("CREATE INDEX CONCURRENTLY app.\"I\" ON t (x)"), Some("app.\"I\"".into()));
    }
}
