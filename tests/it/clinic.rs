//! The clinic reservations set (docs/migration-set.md) on its 100k-row seed: every phase
//! PROCEEDs, phase 4 waits for its typed confirmation, each rollback restores
//! the schema and rows of the state before its phase, and the normalised
//! schema after every phase is an insta snapshot. On an empty database (a
//! new environment) every phase migrates, validates and rolls back too, its
//! shares showing "no rows" instead of a verdict on a made-up 0.

use crate::harness::json::PhaseState;
use crate::harness::{assert_all_proceed, assert_same_state, clinic_seeded_template, exit, migrate_phase_by_phase, repo, roll_back_phase_by_phase_and_reapply, run, schema_snapshot, walk_every_phase, TestDb};

#[test]
fn migrate_walks_every_phase_on_the_seed_with_every_check_proceed() {
    let db = TestDb::from_template("walk", clinic_seeded_template());
    let dir = repo();

    // Without a confirmation, phases 1-3 apply and phase 4 is refused.
    let out = run(&db, &dir, &["migrate", "--format", "json"], "");
    assert_eq!(out.code, exit::ERROR, "{out:?}");
    let doc = out.report();
    assert!(doc.error.as_deref().unwrap().contains("phase 4 (cleanup) is irreversible and was not confirmed"), "{doc:#?}");
    let versions: Vec<i32> = doc.steps.iter().map(|s| s.version).collect();
    assert_eq!(versions, (2..=15).collect::<Vec<_>>());
    assert_all_proceed(&doc);
    let metric = |name: &str| doc.check(name).value.unwrap();
    assert_eq!(metric("unmigrated_percent"), 0.0);
    let top = metric("period_distribution_max_percent");
    assert!(top > 50.0 && top < 95.0, "period distribution {top}");
    schema_snapshot("clinic_schema_after_phase_3", &db.snapshot().schema);

    // A wrong answer is refused too; the phase name goes through.
    let out = run(&db, &dir, &["migrate"], "drop it\n");
    assert_eq!(out.code, exit::ERROR, "{out:?}");
    let out = run(&db, &dir, &["migrate", "--format", "json"], "cleanup\n");
    assert_eq!(out.code, exit::OK, "{out:?}");
    let doc = out.report();
    assert_eq!(doc.steps[0].version, 16);
    assert_all_proceed(&doc);
    schema_snapshot("clinic_schema_after_phase_4", &db.snapshot().schema);

    let n: i64 = db.client().query_one("SELECT count(*) FROM reservations", &[]).unwrap().get(0);
    assert_eq!(n, 100_000, "every seeded reservation survives the migration");
    let status = run(&db, &dir, &["status", "--format", "json"], "").report();
    let states: Vec<PhaseState> = status.phases().iter().map(|p| p.state).collect();
    assert_eq!(states, [PhaseState::Applied; 5]);
    assert_all_proceed(&status);

    // Past the point of no return, an earlier phase cannot be rolled back,
    // and the error does not suggest rolling back the irreversible one.
    let out = run(&db, &dir, &["rollback", "--phase", "3", "--yes"], "");
    let error = out.expect_exit(exit::ERROR).error_line();
    assert!(error.starts_with("phase 4 (cleanup) is applied after phase 3 and is irreversible: phase 3 can no longer be rolled back"), "{error}");
    assert!(!error.contains("rollback --phase 4"), "{error}");

    let out = run(&db, &dir, &["validate", "--format", "json"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    assert_all_proceed(&out.report());
}

/// The checks of V10 that compute a share of the reservations.
const CLINIC_SHARES: [&str; 3] = ["V10 unmigrated_percent", "V10 period_distribution_max_percent", "V10 fallback_period_percent"];

#[test]
fn every_phase_migrates_validates_and_rolls_back_on_an_empty_database() {
    let db = TestDb::new("clinic_empty");
    // Each share has nothing to measure: shown empty, not judged as 0.
    walk_every_phase(&db, &repo(), 3).assert_only_these_were_empty(2, &CLINIC_SHARES);
    let n: i64 = db.client().query_one("SELECT count(*) FROM reservations", &[]).unwrap().get(0);
    assert_eq!(n, 0, "nothing was seeded");
}

#[test]
fn rollbacks_restore_the_state_before_each_phase() {
    let db = TestDb::from_template("rollback", clinic_seeded_template());
    let dir = repo();
    let before = migrate_phase_by_phase(&db, &dir, "clinic", 1, 3);

    let out = run(&db, &dir, &["rollback", "--phase", "1", "--yes"], "");
    assert_eq!(out.code, exit::ERROR);
    assert!(out.stderr.contains("phase 2 (data) is applied after phase 1; roll it back first: cargo xtask rollback --phase 2"), "{}", out.stderr);
    let out = run(&db, &dir, &["rollback", "--phase", "4", "--yes"], "");
    assert_eq!(out.code, exit::ERROR);
    assert!(out.stderr.contains("phase 4 (cleanup) is irreversible: drops columns whose data exists nowhere else. It has no rollback; the way back is to recover phase 4"), "{}", out.stderr);
    let out = run(&db, &dir, &["rollback", "--phase", "3"], "no\n");
    assert_eq!(out.code, exit::ERROR, "unconfirmed rollback is refused");
    assert_same_state(&before[3], &db.snapshot(), "after a refused rollback");

    roll_back_phase_by_phase_and_reapply(&db, &dir, &before, 1, 3);
}

/// The checks that run the strict parser once per distinct preferredTime
/// (V10's every_time_value_gets_a_period and same_time_text_one_period,
/// V13's dual_write_period_consistent) find exactly what the same checks
/// calling the parser on every row find, on rows made wrong on purpose
/// and with a fallback broken on purpose.
#[test]
fn the_checks_that_parse_once_per_text_find_what_a_parse_per_row_finds() {
    let db = TestDb::from_template("parse_once", clinic_seeded_template());
    let dir = repo();
    let out = run(&db, &dir, &["migrate", "--phase", "3", "--format", "json"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    let set = phasegate::load_set(&dir).unwrap();
    let sql = |version: i32, name: &str| {
        let step = set.phases.iter().flat_map(|p| &p.steps).find(|s| s.version == version).unwrap();
        step.checks.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("V{version} {name}")).sql.clone()
    };
    let mut c = db.client();
    // Periods the triggers would never write: every 997th row flipped.
    c.batch_execute(
        "ALTER TABLE reservations DISABLE TRIGGER USER;
         UPDATE reservations SET period = CASE period WHEN 'MORNING' THEN 'AFTERNOON' ELSE 'MORNING' END WHERE id % 997 = 0;
         ALTER TABLE reservations ENABLE TRIGGER USER;",
    )
    .unwrap();
    let mut count = |q: &str| -> i64 { c.query_one(&format!("SELECT count(*) FROM ({}) q", q.trim_end().trim_end_matches(';')), &[]).unwrap().get(0) };
    let per_row = count(r#"SELECT id FROM reservations WHERE period IS DISTINCT FROM phasegate_parse_period("preferredTime", "createdAt")"#);
    assert!(per_row > 50, "{per_row} rows planted");
    assert_eq!(count(&sql(13, "dual_write_period_consistent")), per_row);
    let per_row = count(
        r#"SELECT "preferredTime" FROM reservations WHERE phasegate_parse_period_strict("preferredTime") IS NOT NULL
           GROUP BY "preferredTime" HAVING count(DISTINCT period) > 1"#,
    );
    assert!(per_row > 10, "{per_row} texts with two periods");
    assert_eq!(count(&sql(10, "same_time_text_one_period")), per_row);

    // A fallback that gives no period for reservations made at 13:00.
    c.batch_execute(
        r#"CREATE OR REPLACE FUNCTION phasegate_parse_period(raw text, created_at timestamptz) RETURNS text
           LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce(phasegate_parse_period_strict(raw),
             CASE WHEN extract(hour FROM created_at AT TIME ZONE 'Asia/Seoul') = 13 THEN NULL ELSE 'MORNING' END) $$"#,
    )
    .unwrap();
    let mut count = |q: &str| -> i64 { c.query_one(&format!("SELECT count(*) FROM ({}) q", q.trim_end().trim_end_matches(';')), &[]).unwrap().get(0) };
    let per_row = count(r#"SELECT DISTINCT "preferredTime" FROM reservations WHERE phasegate_parse_period("preferredTime", "createdAt") IS NULL"#);
    assert!(per_row > 0, "texts without a period");
    assert_eq!(count(&sql(10, "every_time_value_gets_a_period")), per_row);
}
