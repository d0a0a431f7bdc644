//! The clinic reservations set (SPEC 9.1) on its 100k-row seed: every phase
//! PROCEEDs, phase 4 waits for its typed confirmation, each rollback restores
//! the schema and rows of the state before its phase, and the normalised
//! schema after every phase is an insta snapshot.

use crate::harness::{assert_same_state, clinic_seeded_template, repo, run, TestDb};

fn check_verdicts(doc: &serde_json::Value) -> Vec<(String, String)> {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (format!("V{} {}", c["version"], c["check"].as_str().unwrap()), c["verdict"].as_str().unwrap().to_string()))
        .collect()
}

/// Compares a normalised schema with tests/snapshots/NAME.snap.
#[track_caller]
fn schema_snapshot(name: &str, schema: &str) {
    insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(name, schema);
    });
}

#[track_caller]
fn assert_all_proceed(doc: &serde_json::Value) {
    let v = check_verdicts(doc);
    assert!(!v.is_empty(), "no checks ran: {doc:#}");
    let bad: Vec<_> = v.iter().filter(|(_, verdict)| verdict != "PROCEED").collect();
    assert!(bad.is_empty(), "checks not PROCEED: {bad:?}\n{doc:#}");
}

#[test]
fn migrate_walks_every_phase_on_the_seed_with_every_check_proceed() {
    let db = TestDb::from_template("walk", clinic_seeded_template());
    let dir = repo();

    // Without a confirmation, phases 1-3 apply and phase 4 is refused.
    let out = run(&db, &dir, &["migrate", "--format", "json"], "");
    assert_eq!(out.code, 1, "{out:?}");
    let doc = out.json();
    assert!(doc["error"].as_str().unwrap().contains("phase 4 (cleanup) is irreversible and was not confirmed"), "{doc:#}");
    let versions: Vec<i64> = doc["steps"].as_array().unwrap().iter().map(|s| s["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, (2..=13).collect::<Vec<_>>());
    assert_all_proceed(&doc);
    let metric = |name: &str| doc["checks"].as_array().unwrap().iter().find(|c| c["check"] == name).unwrap_or_else(|| panic!("no check {name}"))["value"].as_f64().unwrap();
    assert_eq!(metric("unmigrated_percent"), 0.0);
    let top = metric("period_distribution_max_percent");
    assert!(top > 50.0 && top < 95.0, "period distribution {top}");
    schema_snapshot("clinic_schema_after_phase_3", &db.snapshot().schema);

    // A wrong answer is refused too; the phase name goes through.
    let out = run(&db, &dir, &["migrate"], "drop it\n");
    assert_eq!(out.code, 1, "{out:?}");
    let out = run(&db, &dir, &["migrate", "--format", "json"], "cleanup\n");
    assert_eq!(out.code, 0, "{out:?}");
    let doc = out.json();
    assert_eq!(doc["steps"][0]["version"], 14);
    assert_all_proceed(&doc);
    schema_snapshot("clinic_schema_after_phase_4", &db.snapshot().schema);

    let n: i64 = db.client().query_one("SELECT count(*) FROM reservations", &[]).unwrap().get(0);
    assert_eq!(n, 100_000, "every seeded reservation survives the migration");
    let status = run(&db, &dir, &["status", "--format", "json"], "").json();
    let states: Vec<&str> = status["phases"].as_array().unwrap().iter().map(|p| p["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["applied"; 5]);
    assert_all_proceed(&status);
}

#[test]
fn rollbacks_restore_the_state_before_each_phase() {
    let db = TestDb::from_template("rollback", clinic_seeded_template());
    let dir = repo();
    let mut before = vec![db.snapshot()];
    schema_snapshot("clinic_schema_after_phase_0", &before[0].schema);
    for phase in 1..=3 {
        let out = run(&db, &dir, &["migrate", "--phase", &phase.to_string(), "--format", "json"], "");
        assert_eq!(out.code, 0, "migrate --phase {phase}: {out:?}");
        assert_all_proceed(&out.json());
        let snap = db.snapshot();
        schema_snapshot(&format!("clinic_schema_after_phase_{phase}"), &snap.schema);
        before.push(snap);
    }

    let out = run(&db, &dir, &["rollback", "--phase", "1", "--yes"], "");
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("phase 2 (data) is applied after phase 1; roll it back first: cargo xtask rollback --phase 2"), "{}", out.stderr);
    let out = run(&db, &dir, &["rollback", "--phase", "4", "--yes"], "");
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("phase 4 (cleanup) is irreversible: drops columns whose data exists nowhere else. It has no rollback: restore the database from the backup taken before phase 4"), "{}", out.stderr);
    let out = run(&db, &dir, &["rollback", "--phase", "3"], "no\n");
    assert_eq!(out.code, 1, "unconfirmed rollback is refused");
    assert_same_state(&before[3], &db.snapshot(), "after a refused rollback");

    for phase in (1..=3).rev() {
        let out = run(&db, &dir, &["rollback", "--phase", &phase.to_string(), "--yes", "--format", "json"], "");
        assert_eq!(out.code, 0, "rollback --phase {phase}: {out:?}");
        let doc = out.json();
        assert_all_proceed(&doc);
        assert!(doc["checks"].as_array().unwrap().iter().all(|c| c["when"] == "after-rollback"));
        assert_same_state(&before[phase - 1], &db.snapshot(), &format!("after rolling back phase {phase}"));
    }

    // Re-applying gives the same state as the first time.
    let out = run(&db, &dir, &["migrate", "--phase", "3"], "");
    assert_eq!(out.code, 0, "{out:?}");
    assert_same_state(&before[3], &db.snapshot(), "after re-applying phases 1-3");
}
