//! Running the checks of one point of a run (a step's before- or
//! after-checks) with as few round trips as their kinds allow: assertions
//! and metrics that follow one another share one simple-query message, each
//! in its own scope under its own timeout, exactly as `run` runs one alone.
//!
//! A message of three checks in a transaction reads, per check:
//! `SAVEPOINT phasegate_check; SET LOCAL statement_timeout = N;` the clock,
//! the query, the clock, `ROLLBACK TO SAVEPOINT ...; RELEASE SAVEPOINT ...`
//! (on a session outside a transaction `BEGIN` ... `ROLLBACK`). The two
//! clocks give the query's own duration on the server. A statement that
//! fails skips the rest of the message (PostgreSQL's rule); the aborted
//! scope is closed, and the error is the failing check's, named by a mark
//! the message kept outside the checks' savepoints (in a transaction), else
//! found by running the group again one check at a time; either way it
//! names the check, its file, line and SQL position as `run` does.
//! A metric's row comes as JSON, which carries what the column's type would
//! tell (`run::METRIC_PREFIX`). Scripts (statement by statement) run alone.

use postgres::{GenericClient, SimpleQueryMessage};

use super::run::{assertion_sql, judge_assertion, judge_metric, metric_sql, opening, result, run, sql_err, statement_rows, text, ASSERT_PREFIX, METRIC_PREFIX};
use super::{Check, CheckKind, CheckResult, Scope};
use crate::error::{db_err, Error, Result};

/// Server time in seconds since the epoch, as text.
const CLOCK: &str = "SELECT pg_catalog.date_part('epoch', pg_catalog.clock_timestamp())::text;\n";

/// Runs `checks` in order and returns their results in the same order.
pub fn run_all<C: Scope>(client: &mut C, version: i32, checks: &[&Check]) -> Result<Vec<CheckResult>> {
    let mut out = Vec::with_capacity(checks.len());
    let mut rest = checks;
    while let Some(first) = rest.first() {
        // A lone check too: one round trip, where `run` takes two or four.
        let n = rest.iter().take_while(|c| !matches!(c.kind, CheckKind::Script)).count();
        if n == 0 {
            out.push(run(client, version, first)?);
            rest = &rest[1..];
            continue;
        }
        let (group, after) = rest.split_at(n);
        rest = after;
        match together(client, version, group)? {
            Some(results) => out.extend(results),
            None => {
                for c in group {
                    out.push(run(client, version, c)?);
                }
            }
        }
    }
    Ok(out)
}

/// The statements of one check's part of a message, and where its
/// query and clocks are among them.
struct Layout {
    per_check: usize,
    start_clock: usize,
}

impl Layout {
    fn of<C: Scope>() -> Layout {
        let mark = usize::from(C::KEEPS_WHAT_CAME_BEFORE);
        let open = C::OPEN.split(';').count();
        let close = C::CLOSE.split(';').count();
        // [mark,] open, SET LOCAL, clock, query, clock, close
        Layout { per_check: mark + open + 4 + close, start_clock: mark + open + 1 }
    }
}

/// In a transaction, each check's part of a message starts by noting its
/// place in a setting of the transaction's, outside the check's savepoint:
/// when a check fails (a timeout, an error while it runs), the message's
/// rows are lost with it, but the setting says which check it was, so the
/// error is that check's at once, and the checks are not run again one by
/// one (a check that timed out would wait out its timeout a second time).
const MARK: &str = "phasegate.check_at";

fn mark(i: usize) -> String {
    format!("SELECT pg_catalog.set_config('{MARK}', '{i}', true);\n")
}

/// The check of `group` whose part of the message failed, by the mark.
fn failed_at<C: Scope>(scope: &mut C, checks: usize) -> Option<usize> {
    let messages = scope.client().simple_query(&format!("SELECT pg_catalog.current_setting('{MARK}', true)")).ok()?;
    let rows = statement_rows(&messages);
    let at = rows.first()?.first().and_then(|r| text(r, 0))?.parse::<usize>().ok()?;
    (at < checks).then_some(at)
}

/// Several assertions and metrics in one message; `None` when a statement
/// of it failed (its scope closed again), so the caller runs them one by one.
fn together<C: Scope>(client: &mut C, version: i32, group: &[&Check]) -> Result<Option<Vec<CheckResult>>> {
    let mut message = String::new();
    // Where each check's own SQL starts in the message, in characters
    // (counted as the message grows: once per character, not per check).
    let mut starts = Vec::with_capacity(group.len());
    let (mut counted_bytes, mut chars) = (0, 0);
    for (i, c) in group.iter().enumerate() {
        if C::KEEPS_WHAT_CAME_BEFORE {
            message.push_str(&mark(i));
        }
        message.push_str(&opening::<C>(c));
        message.push_str(CLOCK);
        let (prefix, sql) = match c.kind {
            CheckKind::Metric { .. } => (METRIC_PREFIX, metric_sql(c)),
            _ => (ASSERT_PREFIX, assertion_sql(c)),
        };
        chars += message[counted_bytes..].chars().count();
        counted_bytes = message.len();
        starts.push(chars + prefix.chars().count());
        message.push_str(&sql);
        message.push_str(";\n");
        message.push_str(CLOCK);
        message.push_str(C::CLOSE);
        message.push_str(";\n");
    }
    let messages: Vec<SimpleQueryMessage> = match client.client().simple_query(&message) {
        Ok(m) => m,
        Err(e) => {
            if client.client().batch_execute(C::CLOSE).is_ok() {
                return match C::KEEPS_WHAT_CAME_BEFORE.then(|| failed_at(client, group.len())).flatten() {
                    Some(i) => Err(sql_err(group[i], starts[i], &e)),
                    None => Ok(None),
                };
            }
            // Nothing ran: the message failed as a whole, before its
            // first savepoint (PostgreSQL parses a message before running
            // it, so a syntax error in any check stops all), and the
            // caller's transaction is aborted, as one check's syntax error
            // leaves it. The error is that check's, found by its position.
            let at = e.as_db_error().and_then(|d| d.position()).and_then(|p| match p {
                postgres::error::ErrorPosition::Original(p) => Some(*p as usize),
                postgres::error::ErrorPosition::Internal { .. } => None,
            });
            return Err(match at.and_then(|p| starts.iter().rposition(|&s| p > s)) {
                Some(i) => sql_err(group[i], starts[i], &e),
                None => db_err("running checks")(e),
            });
        }
    };
    let statements = statement_rows(&messages);
    let layout = Layout::of::<C>();
    if statements.len() != layout.per_check * group.len() {
        return Err(Error::Unexpected {
            context: "running checks".into(),
            message: format!("{} statements answered where {} were sent", statements.len(), layout.per_check * group.len()),
        });
    }
    let clock = |rows: &Vec<&postgres::SimpleQueryRow>| rows.first().and_then(|r| text(r, 0)).and_then(|t| t.parse::<f64>().ok());
    let mut results = Vec::with_capacity(group.len());
    for (c, part) in group.iter().zip(statements.chunks(layout.per_check)) {
        let started = clock(&part[layout.start_clock]);
        let ended = clock(&part[layout.start_clock + 2]);
        let ms = started.zip(ended).map_or(0.0, |(s, e)| ((e - s) * 1000.0).max(0.0));
        let rows = &part[layout.start_clock + 1];
        let measured = match c.kind {
            CheckKind::Metric { .. } => judge_metric(c, rows)?,
            _ => judge_assertion(c, rows),
        };
        results.push(result(version, c, measured, ms));
    }
    Ok(Some(results))
}
