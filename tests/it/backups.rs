//! Backups and restore beyond the tenant keys set: rows a rollback deletes
//! come back with their identity values (and the sequence moves past them),
//! generated columns are recomputed, a dropped table's rows come back once
//! the table exists again.

use crate::harness::{exit, fixture, run, Report, TestDb};

fn plans(db: &TestDb) -> Vec<String> {
    db.client().query("SELECT p::text FROM plans p ORDER BY id", &[]).unwrap().iter().map(|r| r.get(0)).collect()
}

fn rollback_run(db: &TestDb, phase: &str) -> Report {
    let out = run(db, &fixture("backup_restore"), &["rollback", "--phase", phase, "--yes", "--format", "json"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    out.report()
}

fn restore(db: &TestDb, run_id: &str) -> crate::harness::Output {
    run(db, &fixture("backup_restore"), &["restore", "--run", run_id, "--yes", "--format", "json"], "")
}

#[test]
fn restore_reinserts_deleted_rows_and_sets_updated_rows_back() {
    let db = TestDb::new("restore_rows");
    let dir = fixture("backup_restore");
    run(&db, &dir, &["migrate"], "").expect_exit(exit::OK);
    let phase_2 = plans(&db);

    let doc = rollback_run(&db, "2");
    assert_eq!(doc.backups()[0].changes, ["DELETE", "UPDATE"], "{doc:#?}");
    assert_eq!(doc.backups()[0].rows, 3, "two deleted plans and one updated: {doc:#?}");
    let out = restore(&db, &doc.run_id);
    assert_eq!(out.code, exit::OK, "{out:?}");
    let r = out.report().restored()[0];
    assert_eq!((r.inserted, r.updated), (2, 1), "{r:?}");
    assert_eq!(plans(&db), phase_2, "identity values, generated columns and jsonb come back as they were");

    // A dropped table (phase 2 stays rolled back in the ledger; its rows are
    // restored): restore refuses until the table exists again, then puts back
    // what the re-created table lacks or has differently.
    let before_drop = plans(&db);
    let doc = rollback_run(&db, "1");
    assert_eq!(doc.backups()[0].changes, ["DROP TABLE"], "{doc:#?}");
    let out = restore(&db, &doc.run_id);
    assert_eq!(out.code, exit::ERROR);
    assert!(out.report().error.unwrap().contains("table public.plans no longer exists; re-apply the phase that creates it"), "{out:?}");
    run(&db, &dir, &["migrate", "--phase", "1"], "").expect_exit(exit::OK);
    let out = restore(&db, &doc.run_id);
    assert_eq!(out.code, exit::OK, "{out:?}");
    let r = out.report().restored()[0];
    assert_eq!((r.inserted, r.updated, r.unchanged), (2, 1, 2), "{r:?}");
    assert_eq!(plans(&db), before_drop);
    db.client().execute("INSERT INTO plans (code, price_cents) VALUES ('enterprise', 49900)", &[]).expect("the identity sequence moved past the restored ids");
}
