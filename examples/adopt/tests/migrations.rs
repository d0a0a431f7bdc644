//! The migration set in db/, rehearsed inside `cargo test` with
//! phasegate::testing alone: the whole verify rehearsal, the schema after
//! each phase as an insta snapshot (review shows every schema change), and
//! tests that each get a database of their own, cloned in milliseconds from
//! a template migrated once.

use phasegate::rehearse::PhaseResult;
use phasegate::testing::{self, Factory};
use phasegate::{Verdict, When};

const SET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/db");

#[test]
fn every_phase_rolls_back_to_the_state_before_it() {
    // testing::verify fails the test with the findings when a rollback does
    // not restore the state before it; this says which phases were rolled
    // back and compared, and that the irreversible ones only went forward.
    let rehearsal = testing::verify(SET);
    let results: Vec<(u32, PhaseResult)> = rehearsal.phases.iter().map(|p| (p.phase, p.result)).collect();
    assert_eq!(
        results,
        vec![
            (0, PhaseResult::ForwardOnly), // the baseline
            (1, PhaseResult::Restored),
            (2, PhaseResult::Restored),
            (3, PhaseResult::Restored),
            (4, PhaseResult::ForwardOnly), // the cleanup: irreversible
        ]
    );
    assert!(!rehearsal.mismatch() && !rehearsal.migrate_failed());
    // Each reversible phase was rolled back, compared with the state before
    // it, re-applied and compared again; its after-rollback checks passed.
    // (A phase that rewrote many rows also shows a `vacuum` step before its
    // rollback and before its re-apply, as autovacuum would run between.)
    for p in rehearsal.phases.iter().filter(|p| p.reversible) {
        let steps: Vec<(&str, bool)> = p.steps.iter().filter(|s| !matches!(s.step, "migrate" | "snapshot" | "vacuum")).map(|s| (s.step, s.ok)).collect();
        assert_eq!(steps, vec![("rollback", true), ("compare", true), ("re-apply", true), ("compare", true)], "phase {}", p.phase);
        let rollback = p.steps.iter().find(|s| s.step == "rollback").expect("a rollback step");
        let after: Vec<&str> = rollback.checks.iter().filter(|c| c.when == When::AfterRollback).map(|c| c.check.as_str()).collect();
        assert!(!after.is_empty(), "phase {} ran its after-rollback checks", p.phase);
        assert!(rollback.checks.iter().all(|c| c.verdict == Verdict::Proceed), "phase {}: {:?}", p.phase, rollback.checks);
    }
}

#[test]
fn the_schema_after_each_phase() {
    for (phase, schema) in testing::schemas(SET) {
        insta::assert_snapshot!(format!("schema_after_phase_{phase}"), schema);
    }
}

/// Phase 2 applied to the seeded users: the backfill's template, shared.
fn after_backfill() -> Factory {
    Factory::new(SET).phase(2).seed_rows(1000)
}

#[test]
fn a_user_with_two_names_gets_both() {
    let db = after_backfill().database();
    let mut c = db.client();
    let row = c.query_one("SELECT given_name, family_name FROM users WHERE full_name = 'Grace Hopper' LIMIT 1", &[]).unwrap();
    assert_eq!((row.get::<_, String>(0), row.get::<_, Option<String>>(1)), ("Grace".to_string(), Some("Hopper".to_string())));
    // This test's own database: what it writes, no other test sees.
    c.execute("DELETE FROM users", &[]).unwrap();
}

#[test]
fn a_user_with_one_name_has_no_family_name() {
    let db = after_backfill().database();
    let mut c = db.client();
    let n: i64 = c.query_one("SELECT count(*) FROM users", &[]).unwrap().get(0);
    assert_eq!(n, 1000, "a clone of the seeded template, untouched by the other tests");
    let row = c.query_one("SELECT given_name, family_name FROM users WHERE full_name NOT LIKE '% %' LIMIT 1", &[]).unwrap();
    assert!(row.get::<_, Option<String>>(1).is_none(), "one name: no family name");
    assert!(!row.get::<_, String>(0).is_empty());
}
