//! Parsing a validation file (docs/checks.md): `-- key: value` headers, then one
//! query per check; every mistake is a load error naming the file and line.

use std::path::Path;

use super::{Check, CheckKind, Condition, Severity, Verdict, When};
use std::time::Duration;

use crate::error::{Error, LoadError, Location, Result};
use crate::sqltext;

/// Parses a validation file into its checks. `file` is used in errors.
pub fn parse_file(file: &Path, text: &str) -> Result<Vec<Check>> {
    let err = |line: usize, kind: LoadError| Error::Load { at: Location::line(file, line), kind };
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
        return Err(err(first, LoadError::NoCheck));
    }
    // Anything but comments and blanks before the first header is an error.
    for (i, l) in lines.iter().enumerate().take(starts[0]) {
        let t = l.trim();
        if !t.is_empty() && !t.starts_with("--") {
            return Err(err(i + 1, LoadError::SqlBeforeCheck));
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
                    return Err(err(i + 1, LoadError::ProseInHeader { line: l.trim().to_string() }))
                }
                None => break,
            }
            i += 1;
        }
        let header_line = start + 1;
        let (mut name, mut description, mut severity, mut metric, mut proceed, mut review, mut when, mut empty, mut timeout) =
            (String::new(), None, None, None, None, None, None, None, None);
        let mut holds: Option<bool> = None;
        for (line, k, v) in &fields {
            let line = *line;
            let dup = |set: bool| if set { Err(err(line, LoadError::KeyTwice { key: k.clone() })) } else { Ok(()) };
            match k.as_str() {
                "check" => {
                    if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                        return Err(err(line, LoadError::BadCheckName { name: v.clone() }));
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
                        _ => return Err(err(line, LoadError::UnknownValue { what: format!("severity `{v}`"), expected: "critical or warning" })),
                    });
                }
                "metric" => {
                    dup(metric.is_some())?;
                    if v.is_empty() {
                        return Err(err(line, LoadError::MetricWithoutUnit));
                    }
                    metric = Some((line, v.clone()));
                }
                "proceed" | "review" => {
                    let c = Condition::parse(v).map_err(|m| err(line, LoadError::BadLimit { key: k.clone(), threshold: true, problem: m }))?;
                    let slot = if k == "proceed" { &mut proceed } else { &mut review };
                    dup(slot.is_some())?;
                    *slot = Some((line, c));
                }
                "when" => {
                    dup(when.is_some())?;
                    when = Some(When::parse(v).ok_or_else(|| {
                        err(line, LoadError::UnknownValue { what: format!("`when: {v}`"), expected: "after-migrate, after-rollback, before-migrate or before-rollback" })
                    })?);
                }
                "holds" => {
                    dup(holds.is_some())?;
                    holds = Some(match v.as_str() {
                        "until-next-migration" => true,
                        "while-applied" => false,
                        _ => return Err(err(line, LoadError::UnknownValue { what: format!("`holds: {v}`"), expected: "until-next-migration or while-applied" })),
                    });
                }
                "timeout" => {
                    dup(timeout.is_some())?;
                    timeout = Some(parse_duration(v).map_err(|m| err(line, LoadError::BadLimit { key: "timeout".into(), threshold: false, problem: m }))?);
                }
                "empty" => {
                    dup(empty.is_some())?;
                    let v = Verdict::parse(v).ok_or_else(|| err(line, LoadError::UnknownValue { what: format!("`empty: {v}`"), expected: "proceed, review or rollback" }))?;
                    empty = Some((line, v));
                }
                other => {
                    return Err(err(line, LoadError::UnknownCheckKey { key: other.to_string() }))
                }
            }
        }
        if checks.iter().any(|c| c.name == name) {
            return Err(err(header_line, LoadError::CheckTwice { check: name }));
        }
        let kind = match (metric, proceed, review) {
            (Some((_, unit)), Some((_, p)), r) => {
                CheckKind::Metric { unit, proceed: p, review: r.map(|r| r.1), empty: empty.map_or(Verdict::Proceed, |e| e.1) }
            }
            (Some((line, _)), None, _) => {
                return Err(err(line, LoadError::NoThresholds { check: name }))
            }
            (None, p, r) => {
                if let Some((line, _)) = p.or(r) {
                    return Err(err(line, LoadError::ThresholdsWithoutMetric { check: name }));
                }
                if let Some((line, _)) = empty {
                    return Err(err(line, LoadError::EmptyOnAssertion { check: name }));
                }
                CheckKind::Assertion
            }
        };
        if let (Some(true), Some(w)) = (holds, when.filter(|w| *w != When::AfterMigrate)) {
            let line = fields.iter().find(|f| f.1 == "holds").map_or(header_line, |f| f.0);
            return Err(err(line, LoadError::HoldsNotAfterMigrate { check: name, when: w.as_str() }));
        }
        // The query: from line i to end, one statement.
        if i >= end {
            return Err(err(header_line, LoadError::NoQuery { check: name }));
        }
        let body_start = offsets[i];
        let body_end = offsets[end.min(lines.len())];
        let body = &text[body_start..body_end];
        let stmts = sqltext::statements(body);
        match stmts.len() {
            0 => return Err(err(header_line, LoadError::NoQuery { check: name })),
            1 => {}
            _ => {
                let second = i + stmts[1].line;
                return Err(err(second, LoadError::TwoStatements { check: name }));
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
            timeout: timeout.unwrap_or(super::DEFAULT_TIMEOUT),
            until_next_migration: holds.unwrap_or(false),
        });
    }
    Ok(checks)
}

/// Parses `500ms`, `2s`, `5m`, `1h`.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a duration (e.g. 500ms, 2s, 5m)"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" | "" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("`{s}` is not a duration (e.g. 500ms, 2s, 5m)")),
    };
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Check>> {
        parse_file(Path::new("validations/V1__x.sql"), text)
    }

    #[test]
    fn holds_until_next_migration_is_an_after_migrate_header() {
        let checks = parse("-- check: a\n-- holds: until-next-migration\nSELECT 1 WHERE false;\n\n-- check: b\nSELECT 1 WHERE false;\n").unwrap();
        assert!(checks[0].until_next_migration && !checks[1].until_next_migration);
        let e = parse("-- check: a\n-- when: after-rollback\n-- holds: until-next-migration\nSELECT 1\n").unwrap_err().to_string();
        assert_eq!(e, "validations/V1__x.sql:3: `holds: until-next-migration` is for after-migrate checks; check `a` runs after-rollback");
        let e = parse("-- check: a\n-- holds: forever\nSELECT 1\n").unwrap_err().to_string();
        assert_eq!(e, "validations/V1__x.sql:2: unknown `holds: forever` (expected until-next-migration or while-applied)");
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
        assert_eq!(e, "validations/V1__x.sql:2: unknown check key `colour` (expected check, description, severity, metric, proceed, review, empty, when, holds, timeout)");
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
    fn a_timeout_header_bounds_the_query() {
        let checks = parse("-- check: slow\n-- timeout: 2m\nSELECT 1 WHERE false;\n-- check: quick\nSELECT 1 WHERE false").unwrap();
        assert_eq!((checks[0].timeout, checks[1].timeout), (std::time::Duration::from_secs(120), super::super::DEFAULT_TIMEOUT));
        let e = parse("-- check: a\n-- timeout: soon\nSELECT 1").unwrap_err().to_string();
        assert!(e.starts_with("validations/V1__x.sql:2: `timeout` `soon` is not a duration"), "{e}");
    }

    #[test]
    fn before_rollback_is_a_moment() {
        let checks = parse("-- check: affected_tenants\n-- when: before-rollback\n-- metric: tenants\n-- proceed: >= 0\nSELECT 3").unwrap();
        assert_eq!(checks[0].when, When::BeforeRollback);
        let e = parse("-- check: a\n-- when: before-lunch\nSELECT 1").unwrap_err().to_string();
        assert!(e.contains("expected after-migrate, after-rollback, before-migrate or before-rollback"), "{e}");
    }

    #[test]
    fn empty_header_sets_the_verdict_of_nothing_to_measure() {
        let metric = |header: &str| parse(&format!("-- check: share\n-- metric: percent\n-- proceed: = 100\n{header}SELECT NULL::numeric")).map(|c| c[0].clone());
        let empty = |c: &Check| match c.kind {
            CheckKind::Metric { empty, .. } => empty,
            CheckKind::Assertion | CheckKind::Script => panic!("not a metric"),
        };
        assert_eq!(empty(&metric("").unwrap()), Verdict::Proceed, "the default is proceed");
        for (word, verdict) in [("proceed", Verdict::Proceed), ("review", Verdict::Review), ("rollback", Verdict::Rollback)] {
            assert_eq!(empty(&metric(&format!("-- empty: {word}\n")).unwrap()), verdict, "{word}");
        }
        // Before `metric:` too: headers are unordered.
        let c = parse("-- check: share\n-- empty: review\n-- metric: percent\n-- proceed: = 100\nSELECT 1").unwrap();
        assert_eq!(empty(&c[0]), Verdict::Review);
        assert_eq!(c[0].threshold(), "= 100 / empty REVIEW");
        assert_eq!(metric("").unwrap().threshold(), "= 100", "the default adds nothing to the threshold");
    }

    #[test]
    fn empty_header_errors_name_the_line() {
        let e = parse("-- check: share\n-- metric: percent\n-- proceed: = 0\n-- empty: skip\nSELECT 1").unwrap_err().to_string();
        assert_eq!(e, "validations/V1__x.sql:4: unknown `empty: skip` (expected proceed, review or rollback)");
        let e = parse("-- check: share\n-- metric: percent\n-- proceed: = 0\n-- empty: PROCEED\nSELECT 1").unwrap_err().to_string();
        assert!(e.starts_with("validations/V1__x.sql:4: unknown `empty: PROCEED`"), "{e}");
        let e = parse("-- check: share\n-- metric: percent\n-- proceed: = 0\n-- empty:\nSELECT 1").unwrap_err().to_string();
        assert!(e.starts_with("validations/V1__x.sql:4: unknown `empty: `"), "{e}");
        let e = parse("-- check: rows_left\n-- severity: warning\n-- empty: review\nSELECT 1 WHERE false").unwrap_err().to_string();
        assert_eq!(e, "validations/V1__x.sql:3: `empty:` is for metric checks; check `rows_left` is an assertion, which passes when it returns no rows");
        let e = parse("-- check: share\n-- metric: percent\n-- proceed: = 0\n-- empty: review\n-- empty: rollback\nSELECT 1").unwrap_err().to_string();
        assert!(e.starts_with("validations/V1__x.sql:5: `empty` given twice"), "{e}");
    }
}
