//! Running a check against a database: an assertion's offending rows as
//! evidence, a metric's value against its thresholds (or its `-- empty:`
//! verdict when there is nothing to measure).


use postgres::GenericClient;
use serde::Serialize;

use super::{Check, CheckKind, Condition, Severity, Verdict, When};
use crate::error::{Error, Location, Result};

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
}

const EVIDENCE_ROWS: i64 = 5;
const ASSERT_PREFIX: &str = "SELECT count(*) OVER (), row_to_json(q)::text FROM (\n";
const METRIC_PREFIX: &str = "SELECT row_to_json(q)::text FROM (\n";

/// Runs a check and decides its verdict. A SQL error or a wrongly shaped
/// result is an error naming the file and line.
pub fn run(client: &mut impl GenericClient, version: i32, check: &Check) -> Result<CheckResult> {
    let started = std::time::Instant::now();
    let at = |line: usize| Location::line(&check.file, line);
    let sql_err = |prefix: &str, e: postgres::Error| match crate::error::sql_error(&check.file, check.sql_line, &check.sql, prefix.chars().count(), &e) {
        Error::Sql { at, message, sqlstate } => Error::Sql { at, message: format!("check `{}`: {message}", check.name), sqlstate },
        other => other,
    };
    let (verdict, value, unit, evidence) = match &check.kind {
        CheckKind::Assertion => {
            let q = format!("{ASSERT_PREFIX}{}\n) q LIMIT {EVIDENCE_ROWS}", check.sql);
            let rows = client.query(q.as_str(), &[]).map_err(|e| sql_err(ASSERT_PREFIX, e))?;
            let count: i64 = rows.first().map(|r| r.get(0)).unwrap_or(0);
            let evidence = rows
                .iter()
                .map(|r| serde_json::from_str(r.get::<_, &str>(1)).unwrap_or(serde_json::Value::Null))
                .collect();
            let verdict = match (count, check.severity) {
                (0, _) => Verdict::Proceed,
                (_, Severity::Warning) => Verdict::Review,
                (_, Severity::Critical) => Verdict::Rollback,
            };
            (verdict, Some(count as f64), "rows".to_string(), evidence)
        }
        CheckKind::Script => return run_script(client, version, check, started),
        CheckKind::Metric { unit, proceed, review, empty } => {
            let q = format!("{METRIC_PREFIX}{}\n) q LIMIT 2", check.sql);
            let rows = client.query(q.as_str(), &[]).map_err(|e| sql_err(METRIC_PREFIX, e))?;
            let shape = |m: String| Error::Load {
                at: at(check.sql_line),
                message: format!("metric check `{}` {m}; a metric query returns one row with one number (NULL when there is nothing to measure)", check.name),
            };
            if rows.len() != 1 {
                return Err(shape(format!("returned {} rows", if rows.is_empty() { "no".to_string() } else { "several".to_string() })));
            }
            let obj: serde_json::Value = serde_json::from_str(rows[0].get::<_, &str>(0)).unwrap_or_default();
            let map = obj.as_object().cloned().unwrap_or_default();
            if map.len() != 1 {
                return Err(shape(format!("returned {} columns", map.len())));
            }
            let (col, v) = map.into_iter().next().expect("one column");
            let value = match &v {
                serde_json::Value::Number(n) => Some(n.as_f64().unwrap_or(f64::NAN)),
                serde_json::Value::Null => None,
                other => return Err(shape(format!("returned {other} in column `{col}`, not a number"))),
            };
            let verdict = metric_verdict(proceed, review.as_ref(), *empty, value);
            (verdict, value, unit.clone(), Vec::new())
        }
    };
    // A failing warning-severity metric asks for review, never rollback.
    let verdict = if check.severity == Severity::Warning { verdict.min(Verdict::Review) } else { verdict };
    Ok(CheckResult {
        version,
        check: check.name.clone(),
        when: check.when,
        severity: check.severity,
        verdict,
        value,
        empty: value.is_none(),
        unit,
        threshold: check.threshold(),
        evidence,
        file: crate::error::display_path(&check.file),
        line: check.line,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
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

/// Runs a `CheckKind::Script` check statement by statement in a savepoint
/// that is rolled back whatever happens; the first error fails the check at
/// its file, line and column.
fn run_script(client: &mut impl GenericClient, version: i32, check: &Check, started: std::time::Instant) -> Result<CheckResult> {
    let mut sp = client.transaction().map_err(crate::error::db_err(format!("check `{}`: starting a savepoint", check.name)))?;
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
    sp.rollback().map_err(crate::error::db_err(format!("check `{}`: rolling back its savepoint", check.name)))?;
    let (verdict, file, line, evidence) = match &failure {
        None => (Verdict::Proceed, crate::error::display_path(&check.file), check.line, Vec::new()),
        Some(e) => {
            let (file, line) = match e {
                Error::Sql { at, .. } => (crate::error::display_path(&at.file), at.line),
                _ => (crate::error::display_path(&check.file), check.line),
            };
            let verdict = if check.severity == Severity::Warning { Verdict::Review } else { Verdict::Rollback };
            (verdict, file, line, vec![serde_json::json!({ "script_error": e.to_string() })])
        }
    };
    Ok(CheckResult {
        version,
        check: check.name.clone(),
        when: check.when,
        severity: check.severity,
        verdict,
        value: Some(if failure.is_some() { 1.0 } else { 0.0 }),
        empty: false,
        unit: "errors".into(),
        threshold: check.threshold(),
        evidence,
        file,
        line,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

impl CheckResult {
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
