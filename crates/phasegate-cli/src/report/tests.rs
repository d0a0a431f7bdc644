//! The text tables and documents the reports print.

use super::*;
use phasegate::{locks, rehearse, Severity, When};

/// A metric result: `value` None is a metric with nothing to measure.
fn metric(check: &str, when: When, value: Option<f64>, verdict: Verdict) -> CheckResult {
    CheckResult {
        version: 5,
        check: check.into(),
        when,
        severity: Severity::Critical,
        verdict,
        value,
        empty: value.is_none(),
        unit: "tenants".into(),
        threshold: ">= 0".into(),
        evidence: Vec::new(),
        file: "validations/V5__x.sql".into(),
        line: 1,
        duration_ms: 0.1,
        skipped: None,
    }
}

fn hold(relation: &str, mode: phasegate::locks::LockMode, held_ms: f64, blocks: locks::Blocks) -> locks::LockHold {
    locks::LockHold { statement: "ALTER TABLE reservations".into(), file: "migrations/V5__x.sql".into(), line: 7, relation: relation.into(), mode, held_ms, blocks }
}

#[test]
fn verify_shows_each_steps_longest_blocking_lock_and_where_it_was_taken() {
    let step = |step: &'static str, locks: Vec<locks::LockHold>| rehearse::StepTiming { step, start_ms: 0.0, ms: 5.0, ok: true, verdict: Some(Verdict::Proceed), locks, checks: Vec::new() };
    let phase = rehearse::PhaseRehearsal {
        phase: 1,
        name: "additive".into(),
        origin: None,
        reversible: true,
        steps: vec![
            step("snapshot", Vec::new()),
            step("migrate", vec![hold("services", locks::LockMode::RowExclusive, 40.0, locks::Blocks::None), hold("reservations", locks::LockMode::AccessExclusive, 3.12, locks::Blocks::Readers)]),
            step("rollback", vec![hold("services", locks::LockMode::AccessShare, 9.0, locks::Blocks::None)]),
            step("re-apply", Vec::new()),
        ],
        findings: Vec::new(),
        verdict: Verdict::Proceed,
        result: rehearse::PhaseResult::Restored,
        isolation: rehearse::Isolation::Transaction,
        clone_ms: None,
        ms: 20.0,
    };
    let r = rehearse::Rehearsal { phases: vec![phase], summary: Default::default(), strict: false, ms: 20.0 };
    let mut out = Vec::new();
    verify_table(&mut out, &r, Style::default(), "phasegate verify").unwrap();
    let text = String::from_utf8(out).unwrap();
    let rows: Vec<&str> = text.lines().skip_while(|l| !l.contains("LONGEST BLOCKING LOCK")).take(3).collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(rows[0].ends_with("STATEMENT"), "{text}");
    assert_eq!(rows[1].split_whitespace().collect::<Vec<_>>(), ["1", "additive", "migrate", "reservations", "ACCESS", "EXCLUSIVE", "3.1", "ms", "migrations/V5__x.sql:7"], "{text}");
    assert_eq!(rows[2].split_whitespace().collect::<Vec<_>>(), ["1", "additive", "rollback", "-"], "a lock that blocks nobody is not shown: {text}");
    let md = markdown::verify(&r);
    assert!(md.contains("| 1 | migrate | reservations ACCESS EXCLUSIVE 3.1 ms (`migrations/V5__x.sql:7`) |\n| 1 | rollback | - |"), "{md}");
}

#[test]
fn a_metric_with_nothing_to_measure_shows_as_no_rows() {
    assert_eq!(fmt_value(None, "percent"), "no rows");
    assert_eq!(fmt_value(Some(0.0), "percent"), "0 percent");
    assert_eq!(fmt_value(Some(12.5), "percent"), "12.5 percent");

    let results = [metric("share", When::AfterMigrate, None, Verdict::Proceed), metric("count", When::AfterMigrate, Some(3.0), Verdict::Proceed)];
    let mut out = Vec::new();
    decision_table(&mut out, &results, RunVerdict::of(&results, false), Style::default()).unwrap();
    let table = String::from_utf8(out).unwrap();
    let line = table.lines().find(|l| l.contains("share")).unwrap();
    assert!(line.contains(" no rows ") && line.ends_with("PROCEED"), "{table}");

    let json = serde_json::to_value(&results[0]).unwrap();
    assert_eq!((&json["value"], &json["empty"]), (&serde_json::Value::Null, &serde_json::Value::Bool(true)), "{json}");
    assert_eq!(serde_json::to_value(&results[1]).unwrap()["empty"], false);
}

#[test]
fn the_rollback_report_shows_an_empty_metric_as_no_rows() {
    let step = phasegate::StepOutcome {
        version: 5,
        name: "assign".into(),
        phase: 2,
        action: phasegate::Action::Rollback,
        status: StepStatus::Done,
        started_unix_ms: 0.0,
        duration_ms: 1.0,
        retries: 0,
        rows: Some(0),
        checks: vec![metric("affected_tenants", When::BeforeRollback, None, Verdict::Proceed)],
        backups: Vec::new(),
        locks: Vec::new(),
        error: None,
    };
    let outcome = RunOutcome { steps: vec![step], verdict: Some(Verdict::Proceed), ..Default::default() };
    let doc = RollbackDoc {
        run_id: "r",
        phase: 2,
        phase_name: "data",
        phase_summary: "s",
        set_dir: ".",
        database: "db",
        operator: "me",
        db_user: "me",
        started_at: "now",
        duration_s: 0.1,
        verdict: Some(RunVerdict::Proceed),
        exit_code: 0,
        error: None,
        outcome: Some(&outcome),
        no_backup: false,
        restore_command: "restore",
        health_command: "health",
        log_file: None,
    };
    let md = rollback_markdown(&doc);
    assert!(md.contains("| V5 | `affected_tenants` | before-rollback | no rows | >= 0 | **PROCEED** |"), "{md}");
    assert!(md.contains("affected `affected_tenants` = no rows"), "{md}");
}
