//! Running a check against a database: an assertion's offending rows as
//! evidence, a metric's value against its thresholds (or its `-- empty:`
//! verdict when there is nothing to measure).
//!
//! Every check runs inside a savepoint (a transaction of its own when the
//! caller holds none) that is rolled back once its result is read, so a
//! check never changes anything, even one that calls a function that
//! writes, and under its own `statement_timeout` (`Check::timeout`), so a
//! slow check cannot hold the migration's locks unbounded.

use std::time::{Duration, Instant};

use postgres::types::{Kind, Type};
use postgres::{GenericClient, Transaction};
use serde::Serialize;

use super::{Check, CheckKind, Condition, Severity, Verdict, When};
use crate::error::{db_err, display_path, Error, LoadError, Location, Result, SqlState};

/// The measured result of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub version: i32,
    pub check: String,
    pub when: When,
    pub severity: Severity,
    pub verdict: Verdict,
    /// The metric's value, or the number of offending rows of an assertion;
    /// `None` (JSON `null`) when a metric had nothing to measure.
    pub value: Option<f64>,
    /// The metric query returned NULL: nothing to measure (an empty
    /// population); the verdict is the check's `empty:` header.
    pub empty: bool,
    pub unit: String,
    pub threshold: String,
    /// The first offending rows of an assertion, as JSON objects.
    pub evidence: Vec<serde_json::Value>,
    pub file: String,
    pub line: usize,
    pub duration_ms: f64,
    /// Why the check did not run (`validate` and `status` skip a
    /// `holds: until-next-migration` check once a later migration of its
    /// phase is applied); its verdict is then PROCEED. `None` when it ran.
    pub skipped: Option<String>,
}

const EVIDENCE_ROWS: i64 = 5;
pub(super) const ASSERT_PREFIX: &str = "SELECT count(*) OVER (), row_to_json(q)::text FROM (\n";
/// Describes a metric query's columns without running it.
const SHAPE_PREFIX: &str = "SELECT * FROM (\n";
/// A metric's one column as text: a `numeric` too large for JSON or for
/// a binary read is still read, and parsed here.
const VALUE_PREFIX: &str = "SELECT v::text FROM (\n";

/// What a check measured, before the severity caps its verdict.
pub(super) struct Measured {
    verdict: Verdict,
    value: Option<f64>,
    unit: String,
    evidence: Vec<serde_json::Value>,
    /// Where a script check failed; the check's header otherwise.
    at: Option<Location>,
}

/// Where a check runs, and how its scope is opened and closed around it:
/// inside the caller's transaction a savepoint, on a session outside one a
/// transaction of its own; either is rolled back once the result is read.
/// The opening is sent with the check's `statement_timeout` and, for an
/// assertion, with its query, in one simple-query message (PostgreSQL 13+
/// applies the timeout to each statement of such a message), and the
/// closing in one more: two round trips for an assertion, where a
/// savepoint, a `SET`, a prepared query and a rollback took five.
pub trait Scope {
    /// The connection the scope's statements are sent on.
    type Client: GenericClient;
    /// Opens the scope (followed by the check's statements).
    const OPEN: &'static str;
    /// Rolls it back and closes it.
    const CLOSE: &'static str;
    /// Whether a setting made before the scope opens outlives its closing
    /// (in a transaction, around a savepoint: yes; a session's `BEGIN` in a
    /// message takes the message's earlier statements into its transaction).
    const KEEPS_WHAT_CAME_BEFORE: bool;
    /// The connection, to send on.
    fn client(&mut self) -> &mut Self::Client;
}

/// Inside a transaction: a savepoint around each check.
macro_rules! in_transaction {
    () => {
        const OPEN: &'static str = "SAVEPOINT phasegate_check";
        const CLOSE: &'static str = "ROLLBACK TO SAVEPOINT phasegate_check; RELEASE SAVEPOINT phasegate_check";
        const KEEPS_WHAT_CAME_BEFORE: bool = true;
    };
}
pub(crate) use in_transaction;

impl Scope for postgres::Client {
    type Client = Self;
    const OPEN: &'static str = "BEGIN";
    const CLOSE: &'static str = "ROLLBACK";
    const KEEPS_WHAT_CAME_BEFORE: bool = false;
    fn client(&mut self) -> &mut Self {
        self
    }
}

impl<'a> Scope for Transaction<'a> {
    type Client = Self;
    in_transaction!();
    fn client(&mut self) -> &mut Self {
        self
    }
}

/// Column `i` of a simple-query row as text (`None` for NULL or a missing column).
pub(super) fn text(r: &postgres::SimpleQueryRow, i: usize) -> Option<&str> {
    r.try_get(i).ok().flatten()
}

/// Opens a check's scope with its timeout: the start of its message.
pub(super) fn opening<C: Scope>(check: &Check) -> String {
    format!("{}; SET LOCAL statement_timeout = {};\n", C::OPEN, check.timeout.as_millis())
}

/// Runs a check and decides its verdict, in a savepoint that is rolled back
/// and under the check's timeout. A SQL error, a timeout or a wrongly shaped
/// result is an error naming the file and line.
pub fn run<C: Scope>(scope: &mut C, version: i32, check: &Check) -> Result<CheckResult> {
    let client = scope.client();
    let started = Instant::now();
    let context = |what: &str| db_err(format!("check `{}`: {what}", check.name));
    let open = opening::<C>(check);
    let measured = match &check.kind {
        CheckKind::Assertion => assertion(client, &open, check),
        CheckKind::Metric { .. } => client.batch_execute(&open).map_err(context("starting its savepoint")).and_then(|_| metric(client, check).map(|value| metric_measured(check, value))),
        CheckKind::Script => client.batch_execute(&open).map_err(context("starting its savepoint")).map(|_| script(client, check)),
    };
    // Closed whatever happened: an error inside leaves the scope aborted,
    // and the rollback is what ends that.
    let rolled_back = client.batch_execute(C::CLOSE);
    let m = measured?;
    rolled_back.map_err(context("rolling back its savepoint"))?;
    Ok(result(version, check, m, started.elapsed().as_secs_f64() * 1000.0))
}

/// What `check` measured, as its result: a failing warning-severity check
/// asks for review, never rollback.
pub(super) fn result(version: i32, check: &Check, m: Measured, duration_ms: f64) -> CheckResult {
    let verdict = if check.severity == Severity::Warning { m.verdict.min(Verdict::Review) } else { m.verdict };
    let (file, line) = m.at.map_or_else(|| (display_path(&check.file), check.line), |at| (display_path(&at.file), at.line));
    CheckResult {
        version,
        check: check.name.clone(),
        when: check.when,
        severity: check.severity,
        verdict,
        value: m.value,
        empty: m.value.is_none(),
        unit: m.unit,
        threshold: check.threshold(),
        evidence: m.evidence,
        file,
        line,
        duration_ms,
        skipped: None,
    }
}

/// A PostgreSQL error from running the check's query behind `prefix`, at
/// the check's file, line and column; a timeout says which limit it hit.
pub(super) fn sql_err(check: &Check, prefix_chars: usize, e: &postgres::Error) -> Error {
    match crate::error::sql_error(&check.file, check.sql_line, &check.sql, prefix_chars, e) {
        Error::Sql { at, sqlstate, .. } if sqlstate.as_ref() == Some(&SqlState::QUERY_CANCELED) && timed_out(e) => Error::Sql {
            message: format!(
                "check `{}` timed out after {} (its statement_timeout; a `-- timeout: 5m` header in the check gives it longer)",
                check.name,
                human(check.timeout)
            ),
            at,
            sqlstate,
        },
        Error::Sql { at, message, sqlstate } => Error::Sql { at, message: format!("check `{}`: {message}", check.name), sqlstate },
        other => other,
    }
}

fn timed_out(e: &postgres::Error) -> bool {
    e.as_db_error().is_some_and(|d| d.message().contains("statement timeout"))
}

/// `30s`, `2m`, `1500ms`.
fn human(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        _ if ms > 0 && ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

/// An assertion: its offending rows, the first few as evidence. Sent after
/// `open` in one simple-query message: its values arrive as text.
fn assertion(client: &mut impl GenericClient, open: &str, check: &Check) -> Result<Measured> {
    let prefix = format!("{open}{ASSERT_PREFIX}");
    let q = format!("{open}{}", assertion_sql(check));
    let messages = client.simple_query(&q).map_err(|e| sql_err(check, prefix.chars().count(), &e))?;
    // The rows of the message's last statement (the query), read as text.
    let statements = statement_rows(&messages);
    Ok(judge_assertion(check, statements.last().map_or(&[], Vec::as_slice)))
}

/// An assertion's query: its offending rows, counted, the first few as JSON.
pub(super) fn assertion_sql(check: &Check) -> String {
    format!("{ASSERT_PREFIX}{}\n) q LIMIT {EVIDENCE_ROWS}", check.sql)
}

/// The rows of each statement of a simple-query message, in order (empty
/// for a statement that returns none).
pub(super) fn statement_rows(messages: &[postgres::SimpleQueryMessage]) -> Vec<Vec<&postgres::SimpleQueryRow>> {
    let (mut statements, mut rows) = (Vec::new(), Vec::new());
    for m in messages {
        match m {
            postgres::SimpleQueryMessage::Row(r) => rows.push(r),
            postgres::SimpleQueryMessage::CommandComplete(_) => statements.push(std::mem::take(&mut rows)),
            _ => {}
        }
    }
    statements
}

/// An assertion's verdict from the rows of its query (`assertion_sql`).
pub(super) fn judge_assertion(check: &Check, last: &[&postgres::SimpleQueryRow]) -> Measured {
    let count: i64 = last.first().and_then(|r| text(r, 0)).and_then(|n| n.parse().ok()).unwrap_or(0);
    let evidence = last.iter().map(|r| text(r, 1).and_then(|j| serde_json::from_str(j).ok()).unwrap_or(serde_json::Value::Null)).collect();
    let verdict = match (count, check.severity) {
        (0, _) => Verdict::Proceed,
        (_, Severity::Warning) => Verdict::Review,
        (_, Severity::Critical) => Verdict::Rollback,
    };
    Measured { verdict, value: Some(count as f64), unit: "rows".into(), evidence, at: None }
}

/// A metric's value: its query must return one row of one numeric column;
/// NULL is `None` (nothing to measure). The column's count and type are
/// read from the query's description, its value as text, so a `numeric`
/// of any size is read exactly and one that does not fit a double is an
/// error rather than a wrong number.
fn metric(sp: &mut impl GenericClient, check: &Check) -> Result<Option<f64>> {
    let shape = |problem: String| Error::Load { at: Location::line(&check.file, check.sql_line), kind: LoadError::MetricShape { check: check.name.clone(), problem } };
    let described = sp.prepare(&format!("{SHAPE_PREFIX}{}\n) q", check.sql)).map_err(|e| sql_err(check, SHAPE_PREFIX.chars().count(), &e))?;
    let [column] = described.columns() else {
        return Err(shape(format!("returned {} columns", described.columns().len())));
    };
    let q = format!("{VALUE_PREFIX}{}\n) q(v) LIMIT 2", check.sql);
    let rows = sp.query_typed(q.as_str(), &[]).map_err(|e| sql_err(check, VALUE_PREFIX.chars().count(), &e))?;
    match rows.len() {
        1 => {}
        0 => return Err(shape("returned no rows".into())),
        _ => return Err(shape("returned several rows".into())),
    }
    match rows[0].get::<_, Option<&str>>(0) {
        None => Ok(None),
        Some(text) if is_number(column.type_()) => number(text).map(Some).map_err(shape),
        Some(text) => Err(shape(format!("returned {text:?} in column `{}`, not a number", column.name()))),
    }
}

/// A metric's verdict on its value.
fn metric_measured(check: &Check, value: Option<f64>) -> Measured {
    let CheckKind::Metric { unit, proceed, review, empty } = &check.kind else {
        unreachable!("only a metric check has a value to judge");
    };
    Measured { verdict: metric_verdict(proceed, review.as_ref(), *empty, value), value, unit: unit.clone(), evidence: Vec::new(), at: None }
}

/// Before a metric's query when it shares a message: its row as JSON (a
/// simple-query message answers in text, without the columns' types), so
/// that it answers how many columns, the first one's name, its JSON type
/// (a number for every integer, floating-point and `numeric` type and the
/// domains over them) and its value's text (a `numeric` of any size, exact).
/// `json` rather than `jsonb`, which would merge columns of the same name.
pub(super) const METRIC_PREFIX: &str = "SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.json_each(r.j)),
       (SELECT e.key FROM pg_catalog.json_each(r.j) e LIMIT 1),
       (SELECT pg_catalog.json_typeof(e.value) FROM pg_catalog.json_each(r.j) e LIMIT 1),
       (SELECT e.value FROM pg_catalog.json_each_text(r.j) e LIMIT 1)
FROM (SELECT pg_catalog.row_to_json(q) AS j FROM (\n";

/// A metric's query when it shares a message (see [`METRIC_PREFIX`]).
pub(super) fn metric_sql(check: &Check) -> String {
    format!("{METRIC_PREFIX}{}\n) q LIMIT 2) r", check.sql)
}

/// A metric's verdict from the rows of [`metric_sql`]: the same shapes
/// refused, with the same words, as [`metric`] refuses them.
pub(super) fn judge_metric(check: &Check, rows: &[&postgres::SimpleQueryRow]) -> Result<Measured> {
    let shape = |problem: String| Error::Load { at: Location::line(&check.file, check.sql_line), kind: LoadError::MetricShape { check: check.name.clone(), problem } };
    let row = match rows {
        [row] => row,
        [] => return Err(shape("returned no rows".into())),
        _ => return Err(shape("returned several rows".into())),
    };
    let columns: usize = text(row, 0).and_then(|n| n.parse().ok()).unwrap_or(0);
    if columns != 1 {
        return Err(shape(format!("returned {columns} columns")));
    }
    let value = match (text(row, 2), text(row, 3)) {
        (Some("null"), _) | (_, None) => None,
        (Some("number"), Some(v)) => Some(number(v).map_err(shape)?),
        // A floating-point or numeric NaN or infinity is a JSON string.
        (Some("string"), Some(v @ ("NaN" | "Infinity" | "-Infinity"))) => Some(number(v).map_err(shape)?),
        (_, Some(v)) => return Err(shape(format!("returned {v:?} in column `{}`, not a number", text(row, 1).unwrap_or_default()))),
    };
    Ok(metric_measured(check, value))
}

/// Integer, floating-point and `numeric` types, and domains over them.
fn is_number(t: &Type) -> bool {
    match t.kind() {
        Kind::Domain(inner) => is_number(inner),
        _ => [Type::INT2, Type::INT4, Type::INT8, Type::FLOAT4, Type::FLOAT8, Type::NUMERIC].contains(t),
    }
}

/// A number's text as a finite double.
fn number(text: &str) -> std::result::Result<f64, String> {
    let v: f64 = text.trim().parse().map_err(|_| format!("returned {text:?}, not a number"))?;
    if v.is_finite() {
        return Ok(v);
    }
    if text.trim().chars().any(|c| c.is_ascii_digit()) {
        let digits = text.chars().filter(char::is_ascii_digit).count();
        let head: String = text.chars().take(24).collect();
        return Err(format!("returned a number too large for a double ({head}..., {digits} digits)"));
    }
    Err(format!("returned {}, not a finite number", text.trim()))
}

/// A metric's verdict: `proceed` satisfied is PROCEED, else `review`
/// satisfied is REVIEW, else ROLLBACK; no value (NULL: nothing to measure)
/// is the `empty` verdict.
fn metric_verdict(proceed: &Condition, review: Option<&Condition>, empty: Verdict, value: Option<f64>) -> Verdict {
    match value {
        None => empty,
        Some(v) if proceed.holds(v) => Verdict::Proceed,
        Some(v) if review.is_some_and(|r| r.holds(v)) => Verdict::Review,
        Some(_) => Verdict::Rollback,
    }
}

/// A `CheckKind::Script` check, statement by statement; the first error
/// fails the check at its file, line and column.
fn script(sp: &mut impl GenericClient, check: &Check) -> Measured {
    let mut failure = None;
    for st in crate::sqltext::statements(&check.sql) {
        if let Err(e) = sp.batch_execute(&check.sql[st.start..st.end]) {
            let mut err = crate::error::statement_error(&check.file, &check.sql, st.start, st.line, &e);
            if let Error::Sql { at, .. } = &mut err {
                at.line += check.sql_line.saturating_sub(1);
            }
            failure = Some(err);
            break;
        }
    }
    match failure {
        None => Measured { verdict: Verdict::Proceed, value: Some(0.0), unit: "errors".into(), evidence: Vec::new(), at: None },
        Some(e) => Measured {
            verdict: Verdict::Rollback,
            value: Some(1.0),
            unit: "errors".into(),
            evidence: vec![serde_json::json!({ "script_error": e.to_string() })],
            at: Some(e.location().cloned().unwrap_or_else(|| Location::line(&check.file, check.line))),
        },
    }
}

impl CheckResult {
    /// `check` of migration `version`, not run: `why`; its verdict is PROCEED.
    pub fn skipped(version: i32, check: &Check, why: String) -> CheckResult {
        let unit = match &check.kind {
            CheckKind::Metric { unit, .. } => unit.clone(),
            CheckKind::Assertion => "rows".into(),
            CheckKind::Script => "errors".into(),
        };
        CheckResult {
            version,
            check: check.name.clone(),
            when: check.when,
            severity: check.severity,
            verdict: Verdict::Proceed,
            value: None,
            empty: false,
            unit,
            threshold: check.threshold(),
            evidence: Vec::new(),
            file: display_path(&check.file),
            line: check.line,
            duration_ms: 0.0,
            skipped: Some(why),
        }
    }

    /// A failing check in one line: `V3 name`, and the error of a script
    /// check that raised (with its file and line).
    pub fn failure_line(&self) -> String {
        match self.evidence.first().and_then(|e| e.get("script_error")).and_then(|e| e.as_str()) {
            Some(error) => format!("V{} {}: {error}", self.version, self.check),
            None => format!("V{} {}", self.version, self.check),
        }
    }
}

/// The worst verdict of a set of results; PROCEED when there are none.
pub fn worst<'a>(results: impl IntoIterator<Item = &'a CheckResult>) -> Verdict {
    results.into_iter().map(|r| r.verdict).max().unwrap_or(Verdict::Proceed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_metric_takes_the_empty_verdict_and_a_number_the_thresholds() {
        let (p, r) = (Condition::Eq { value: 0.0 }, Condition::Le { value: 1.0 });
        for empty in [Verdict::Proceed, Verdict::Review, Verdict::Rollback] {
            assert_eq!(metric_verdict(&p, Some(&r), empty, None), empty);
            assert_eq!(metric_verdict(&p, Some(&r), empty, Some(0.0)), Verdict::Proceed);
            assert_eq!(metric_verdict(&p, Some(&r), empty, Some(0.5)), Verdict::Review);
            assert_eq!(metric_verdict(&p, Some(&r), empty, Some(2.0)), Verdict::Rollback);
        }
        assert_eq!(metric_verdict(&p, None, Verdict::Proceed, Some(0.5)), Verdict::Rollback);
    }

    #[test]
    fn numbers_are_read_from_their_text_or_refused_clearly() {
        assert_eq!(number("42"), Ok(42.0));
        assert_eq!(number("-0.25"), Ok(-0.25));
        assert_eq!(number("1e-400"), Ok(0.0), "below a double's range rounds to zero");
        let huge = format!("1{}", "0".repeat(400));
        assert_eq!(number(&huge).unwrap_err(), "returned a number too large for a double (100000000000000000000000..., 401 digits)");
        assert_eq!(number("NaN").unwrap_err(), "returned NaN, not a finite number");
        assert_eq!(number("-Infinity").unwrap_err(), "returned -Infinity, not a finite number");
        assert_eq!((human(Duration::from_secs(30)), human(Duration::from_secs(120)), human(Duration::from_millis(1500))), ("30s".into(), "2m".into(), "1500ms".into()));
    }

    #[test]
    fn conditions_hold_as_written() {
        let c = |s: &str| Condition::parse(s).unwrap();
        assert!(c("= 0").holds(0.0) && !c("= 0").holds(0.1));
        assert!(c("<= 1").holds(1.0) && !c("<= 1").holds(1.01));
        assert!(c("< 95").holds(94.9) && !c("< 95").holds(95.0));
        assert!(c("between 2 and 3").holds(2.5) && !c("between 2 and 3").holds(3.5));
        assert!(c("!= 4").holds(5.0) && !c("!= 4").holds(4.0));
        assert!(c(">= 6").holds(6.0) && c("> 6").holds(6.5) && !c("> 6").holds(6.0));
        assert!(Condition::parse("between 3 and 2").is_err());
        assert!(Condition::parse("= abc").is_err());
    }
}
