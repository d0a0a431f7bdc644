//! The validation language (SPEC 3.3): parsing check headers, evaluating
//! thresholds, and running checks against a database to reach a verdict.

use std::fmt;
use std::path::{Path, PathBuf};

use postgres::GenericClient;
use serde::Serialize;

use crate::error::{Error, Location, Result};
use crate::sqltext;

/// The answer at a gate. Ordered: the verdict of a run is the worst of its checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    Proceed,
    Review,
    Rollback,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Proceed => "PROCEED",
            Verdict::Review => "REVIEW",
            Verdict::Rollback => "ROLLBACK",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
}

/// When a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum When {
    BeforeMigrate,
    AfterMigrate,
    /// Inside the rollback's transaction, before its script: what the
    /// rollback is about to change (e.g. the tenants it affects).
    BeforeRollback,
    AfterRollback,
}

impl When {
    pub fn parse(s: &str) -> Option<When> {
        match s {
            "before-migrate" => Some(When::BeforeMigrate),
            "after-migrate" => Some(When::AfterMigrate),
            "after-rollback" => Some(When::AfterRollback),
            "before-rollback" => Some(When::BeforeRollback),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            When::BeforeMigrate => "before-migrate",
            When::AfterMigrate => "after-migrate",
            When::AfterRollback => "after-rollback",
            When::BeforeRollback => "before-rollback",
        }
    }
}

/// A threshold condition on a metric value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Condition {
    Eq { value: f64 },
    Ne { value: f64 },
    Lt { value: f64 },
    Le { value: f64 },
    Gt { value: f64 },
    Ge { value: f64 },
    Between { low: f64, high: f64 },
}

impl Condition {
    /// Parses `= x`, `!= x`, `< x`, `<= x`, `> x`, `>= x`, `between x and y`.
    pub fn parse(s: &str) -> std::result::Result<Condition, String> {
        let s = s.trim();
        let num = |t: &str| -> std::result::Result<f64, String> {
            let t = t.trim();
            t.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("`{t}` is not a number"))
        };
        if let Some(rest) = s.strip_prefix("between ") {
            let (a, b) = rest
                .split_once(" and ")
                .ok_or_else(|| format!("`{s}`: expected `between x and y`"))?;
            let (low, high) = (num(a)?, num(b)?);
            if low > high {
                return Err(format!("`{s}`: the lower bound is above the upper bound"));
            }
            return Ok(Condition::Between { low, high });
        }
        for (op, make) in [
            ("!=", (|v| Condition::Ne { value: v }) as fn(f64) -> Condition),
            ("<=", |v| Condition::Le { value: v }),
            (">=", |v| Condition::Ge { value: v }),
            ("=", |v| Condition::Eq { value: v }),
            ("<", |v| Condition::Lt { value: v }),
            (">", |v| Condition::Gt { value: v }),
        ] {
            if let Some(rest) = s.strip_prefix(op) {
                return Ok(make(num(rest)?));
            }
        }
        Err(format!(
            "`{s}` is not a condition (use = x, != x, < x, <= x, > x, >= x or between x and y)"
        ))
    }

    pub fn holds(&self, v: f64) -> bool {
        const EPS: f64 = 1e-9;
        match *self {
            Condition::Eq { value } => (v - value).abs() <= EPS,
            Condition::Ne { value } => (v - value).abs() > EPS,
            Condition::Lt { value } => v < value,
            Condition::Le { value } => v <= value + EPS,
            Condition::Gt { value } => v > value,
            Condition::Ge { value } => v + EPS >= value,
            Condition::Between { low, high } => v + EPS >= low && v <= high + EPS,
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Eq { value } => write!(f, "= {value}"),
            Condition::Ne { value } => write!(f, "!= {value}"),
            Condition::Lt { value } => write!(f, "< {value}"),
            Condition::Le { value } => write!(f, "<= {value}"),
            Condition::Gt { value } => write!(f, "> {value}"),
            Condition::Ge { value } => write!(f, ">= {value}"),
            Condition::Between { low, high } => write!(f, "between {low} and {high}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CheckKind {
    /// The query returns offending rows; none passes.
    Assertion,
    /// The query returns one number; thresholds decide.
    Metric { unit: String, proceed: Condition, review: Option<Condition> },
    /// `sql` is a whole script (e.g. a Sqitch verify script) that passes when
    /// it runs without an error. It runs in a savepoint that is always
    /// rolled back, so it never changes anything; an error fails it and the
    /// result names the file and line. Built by `foreign`, never parsed from
    /// a validation file.
    Script,
}

/// One check of a validation file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub name: String,
    pub description: Option<String>,
    pub severity: Severity,
    pub kind: CheckKind,
    pub when: When,
    pub sql: String,
    pub file: PathBuf,
    /// Line of the `-- check:` header.
    pub line: usize,
    /// Line where the query starts.
    pub sql_line: usize,
}

impl Check {
    /// The rule as text, for reports: `= 0 / <= 1` or `0 rows`.
    pub fn threshold(&self) -> String {
        match &self.kind {
            CheckKind::Assertion => "0 rows".into(),
            CheckKind::Metric { proceed, review: Some(r), .. } => format!("{proceed} / review {r}"),
            CheckKind::Metric { proceed, review: None, .. } => proceed.to_string(),
            CheckKind::Script => "no error".into(),
        }
    }
}

/// Parses a validation file into its checks. `file` is used in errors.
pub fn parse_file(file: &Path, text: &str) -> Result<Vec<Check>> {
    let err = |line: usize, message: String| Error::Load { at: Location::line(file, line), message };
    let lines: Vec<&str> = text.lines().collect();
    // Byte offset of each line start.
    let mut offsets = Vec::with_capacity(lines.len() + 1);
    let mut acc = 0;
    for l in text.split_inclusive('\n') {
        offsets.push(acc);
        acc += l.len();
    }
    offsets.push(acc);

    let header_kv = |l: &str| -> Option<(String, String)> {
        let rest = l.trim_start().strip_prefix("--")?.trim();
        let (k, v) = rest.split_once(':')?;
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
            return None;
        }
        Some((k.to_string(), v.trim().to_string()))
    };

    // Find check headers: a line `-- check: name`.
    let mut starts = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some((k, _)) = header_kv(l) {
            if k == "check" {
                starts.push(i);
            }
        }
    }
    if starts.is_empty() {
        let first = lines.iter().position(|l| !l.trim().is_empty()).map_or(1, |i| i + 1);
        return Err(err(first, "no check found: a validation file needs at least one `-- check: name` header followed by a query".into()));
    }
    // Anything but comments and blanks before the first header is an error.
    for (i, l) in lines.iter().enumerate().take(starts[0]) {
        let t = l.trim();
        if !t.is_empty() && !t.starts_with("--") {
            return Err(err(i + 1, "SQL before the first `-- check:` header".into()));
        }
    }

    let mut checks: Vec<Check> = Vec::new();
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(lines.len());
        let mut i = start;
        let mut fields: Vec<(usize, String, String)> = Vec::new();
        while i < end {
            let l = lines[i];
            if l.trim().is_empty() {
                i += 1;
                continue;
            }
            match header_kv(l) {
                Some((k, v)) => fields.push((i + 1, k, v)),
                None if l.trim_start().starts_with("--") => {
                    return Err(err(i + 1, format!("comment inside a check header: use `-- description: ...` for prose (got `{}`)", l.trim())))
                }
                None => break,
            }
            i += 1;
        }
        let header_line = start + 1;
        let (mut name, mut description, mut severity, mut metric, mut proceed, mut review, mut when) =
            (String::new(), None, None, None, None, None, None);
        for (line, k, v) in &fields {
            let line = *line;
            let dup = |set: bool| if set { Err(err(line, format!("`{k}` given twice in check header"))) } else { Ok(()) };
            match k.as_str() {
                "check" => {
                    if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                        return Err(err(line, format!("check name `{v}` must be a non-empty identifier (letters, digits, _ or -)")));
                    }
                    name = v.clone();
                }
                "description" => {
                    dup(description.is_some())?;
                    description = Some(v.clone());
                }
                "severity" => {
                    dup(severity.is_some())?;
                    severity = Some(match v.as_str() {
                        "critical" => Severity::Critical,
                        "warning" => Severity::Warning,
                        _ => return Err(err(line, format!("unknown severity `{v}` (expected critical or warning)"))),
                    });
                }
                "metric" => {
                    dup(metric.is_some())?;
                    if v.is_empty() {
                        return Err(err(line, "`metric:` needs a unit, e.g. `-- metric: percent`".into()));
                    }
                    metric = Some((line, v.clone()));
                }
                "proceed" | "review" => {
                    let c = Condition::parse(v).map_err(|m| err(line, format!("`{k}` threshold {m}")))?;
                    let slot = if k == "proceed" { &mut proceed } else { &mut review };
                    dup(slot.is_some())?;
                    *slot = Some((line, c));
                }
                "when" => {
                    dup(when.is_some())?;
                    when = Some(When::parse(v).ok_or_else(|| {
                        err(line, format!("unknown `when: {v}` (expected after-migrate, after-rollback, before-migrate or before-rollback)"))
                    })?);
                }
                other => {
                    return Err(err(line, format!(
                        "unknown check key `{other}` (expected check, description, severity, metric, proceed, review, when)"
                    )))
                }
            }
        }
        if checks.iter().any(|c| c.name == name) {
            return Err(err(header_line, format!("check `{name}` is defined twice in this file")));
        }
        let kind = match (metric, proceed, review) {
            (Some((_, unit)), Some((_, p)), r) => CheckKind::Metric { unit, proceed: p, review: r.map(|r| r.1) },
            (Some((line, _)), None, _) => {
                return Err(err(line, format!("metric check `{name}` has no thresholds: add `-- proceed: <condition>` (and optionally `-- review:`)")))
            }
            (None, p, r) => {
                if let Some((line, _)) = p.or(r) {
                    return Err(err(line, format!("check `{name}` has thresholds but no `-- metric: <unit>`; an assertion check passes when it returns no rows")));
                }
                CheckKind::Assertion
            }
        };
        // The query: from line i to end, one statement.
        if i >= end {
            return Err(err(header_line, format!("check `{name}` has no query")));
        }
        let body_start = offsets[i];
        let body_end = offsets[end.min(lines.len())];
        let body = &text[body_start..body_end];
        let stmts = sqltext::statements(body);
        match stmts.len() {
            0 => return Err(err(header_line, format!("check `{name}` has no query"))),
            1 => {}
            _ => {
                let second = i + stmts[1].line;
                return Err(err(second, format!("check `{name}` has more than one statement; each check is one query (start another with `-- check:`)")));
            }
        }
        let st = &stmts[0];
        let sql = body[st.start..st.end].trim_end().to_string();
        checks.push(Check {
            name,
            description,
            severity: severity.unwrap_or(Severity::Critical),
            kind,
            when: when.unwrap_or(When::AfterMigrate),
            sql,
            file: file.to_path_buf(),
            line: header_line,
            sql_line: i + st.line,
        });
    }
    Ok(checks)
}

/// The measured result of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub version: i32,
    pub check: String,
    pub when: When,
    pub severity: Severity,
    pub verdict: Verdict,
    /// The metric's value, or the number of offending rows of an assertion.
    pub value: f64,
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
            (verdict, count as f64, "rows".to_string(), evidence)
        }
        CheckKind::Metric { unit, proceed, review } => {
            let q = format!("{METRIC_PREFIX}{}\n) q LIMIT 2", check.sql);
            let rows = client.query(q.as_str(), &[]).map_err(|e| sql_err(METRIC_PREFIX, e))?;
            let shape = |m: String| Error::Load {
                at: at(check.sql_line),
                message: format!("metric check `{}` {m}; a metric query returns one row with one number", check.name),
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
                serde_json::Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                serde_json::Value::Null => return Err(shape(format!("returned NULL in column `{col}`"))),
                other => return Err(shape(format!("returned {other} in column `{col}`, not a number"))),
            };
            let verdict = if proceed.holds(value) {
                Verdict::Proceed
            } else if review.is_some_and(|r| r.holds(value)) {
                Verdict::Review
            } else {
                Verdict::Rollback
            };
            (verdict, value, unit.clone(), Vec::new())
        }
        CheckKind::Script => return run_script(client, version, check, started),
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
        unit,
        threshold: check.threshold(),
        evidence,
        file: crate::error::display_path(&check.file),
        line: check.line,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// Runs a `CheckKind::Script` check statement by statement in a savepoint
/// that is rolled back whatever happens; the first error fails the check at
/// its file, line and column.
fn run_script(client: &mut impl GenericClient, version: i32, check: &Check, started: std::time::Instant) -> Result<CheckResult> {
    let mut sp = client.transaction().map_err(crate::error::db_err(format!("check `{}`: starting a savepoint", check.name)))?;
    let mut failure = None;
    for st in sqltext::statements(&check.sql) {
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
        value: if failure.is_some() { 1.0 } else { 0.0 },
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

    fn parse(text: &str) -> Result<Vec<Check>> {
        parse_file(Path::new("validations/V1__x.sql"), text)
    }

    #[test]
    fn parses_assertion_and_metric_checks() {
        let checks = parse(
            "-- check: a\n-- severity: warning\nSELECT 1 WHERE false;\n\n-- check: b\n-- metric: percent\n-- proceed: = 0\n-- review: <= 1\n-- when: after-rollback\nSELECT 0\n",
        )
        .unwrap();
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[0].severity, Severity::Warning);
        assert_eq!(checks[0].kind, CheckKind::Assertion);
        assert_eq!(checks[0].sql, "SELECT 1 WHERE false");
        assert_eq!(checks[1].when, When::AfterRollback);
        assert_eq!(checks[1].sql_line, 10);
        assert!(matches!(checks[1].kind, CheckKind::Metric { review: Some(Condition::Le { value }), .. } if value == 1.0));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("-- check: a\n-- colour: red\nSELECT 1").unwrap_err().to_string();
        assert_eq!(e, "validations/V1__x.sql:2: unknown check key `colour` (expected check, description, severity, metric, proceed, review, when)");
        let e = parse("-- check: a\n-- metric: percent\nSELECT 1").unwrap_err().to_string();
        assert!(e.starts_with("validations/V1__x.sql:2: metric check `a` has no thresholds"), "{e}");
        let e = parse("-- check: a\n-- proceed: = 0\nSELECT 1").unwrap_err().to_string();
        assert!(e.starts_with("validations/V1__x.sql:2: check `a` has thresholds but no"), "{e}");
        let e = parse("-- check: a\nSELECT 1;\nSELECT 2;").unwrap_err().to_string();
        assert!(e.starts_with("validations/V1__x.sql:3: check `a` has more than one statement"), "{e}");
        let e = parse("").unwrap_err().to_string();
        assert!(e.contains("no check found"), "{e}");
        let e = parse("-- check: a\n-- proceed: ~ 3\n-- metric: n\nSELECT 1").unwrap_err().to_string();
        assert!(e.starts_with("validations/V1__x.sql:2: `proceed` threshold"), "{e}");
        let e = parse("-- check: a\nSELECT 1;\n-- check: a\nSELECT 2").unwrap_err().to_string();
        assert!(e.starts_with("validations/V1__x.sql:3: check `a` is defined twice"), "{e}");
    }

    #[test]
    fn before_rollback_is_a_moment() {
        let checks = parse("-- check: affected_tenants\n-- when: before-rollback\n-- metric: tenants\n-- proceed: >= 0\nSELECT 3").unwrap();
        assert_eq!(checks[0].when, When::BeforeRollback);
        let e = parse("-- check: a\n-- when: before-lunch\nSELECT 1").unwrap_err().to_string();
        assert!(e.contains("expected after-migrate, after-rollback, before-migrate or before-rollback"), "{e}");
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
