//! The ledger made sure of at the start of every command: one round trip
//! when it is whole, else completed under the setup lock in one message
//! (an older version's ledger gains what it lacks; a schema's name cannot
//! break the trigger's `DO` block out of its quotes).

use crate::harness::{exit, fixture, run, TestDb};

/// The ledger's parts `ensure` completes, as `count` sees them in `schema`.
fn whole(db: &TestDb, schema: &str) -> [i64; 3] {
    let lit = schema.replace('\'', "''");
    [
        db.count(&format!("SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '{lit}' AND c.relname = 'phasegate_runs' AND t.tgname = 'phasegate_runs_append_only'")),
        db.count(&format!("SELECT count(*) FROM information_schema.columns WHERE table_schema = '{lit}' AND table_name = 'phasegate_runs' AND column_name = 'fleet_member'")),
        db.count(&format!("SELECT count(*) FROM information_schema.columns WHERE table_schema = '{lit}' AND table_name = 'phasegate_applied' AND column_name = 'adopted_from'")),
    ]
}

#[test]
fn an_older_ledger_gains_its_trigger_and_columns() {
    let db = TestDb::new("ledger_older");
    let dir = fixture("accounts");
    run(&db, &dir, &["migrate", "--phase", "1"], "").expect_exit(exit::OK);
    assert_eq!(whole(&db, "public"), [1, 1, 1]);
    // What a ledger of a version before the trigger and both columns holds.
    db.client()
        .batch_execute(
            "DROP TRIGGER phasegate_runs_append_only ON phasegate_runs;
             ALTER TABLE phasegate_runs DROP COLUMN fleet_member;
             ALTER TABLE phasegate_applied DROP COLUMN adopted_from;",
        )
        .unwrap();
    assert_eq!(whole(&db, "public"), [0, 0, 0]);
    run(&db, &dir, &["status"], "").expect_exit(exit::OK);
    assert_eq!(whole(&db, "public"), [1, 1, 1], "completed by the next command");
    let refused = db.client().batch_execute("UPDATE phasegate_runs SET command = 'edited'");
    assert!(refused.is_err(), "the audit rows are append-only again");
}

#[test]
fn a_schema_named_like_the_dollar_quote_keeps_its_ledger_whole() {
    let db = TestDb::new("ledger_dollar");
    let schema = "led$phasegate0$ger's";
    let quoted = format!("\"{}\"", schema.replace('"', "\"\""));
    let mut c = db.client();
    c.batch_execute(&format!("CREATE SCHEMA {quoted}; ALTER DATABASE {} SET search_path = {quoted}", db.name)).unwrap();
    run(&db, &fixture("accounts"), &["migrate", "--phase", "1"], "").expect_exit(exit::OK);
    assert_eq!(whole(&db, schema), [1, 1, 1]);
    assert_eq!(db.count(&format!("SELECT count(*) FROM {quoted}.phasegate_applied")), 1);
}

#[test]
fn a_ledger_that_cannot_be_completed_names_why_and_leaves_nothing() {
    let db = TestDb::new("ledger_blocked");
    // A view where the audit table goes: CREATE TABLE IF NOT EXISTS passes
    // it by, and adding a column to it fails inside the setup transaction.
    db.client().batch_execute("CREATE VIEW phasegate_runs AS SELECT 1 AS x").unwrap();
    let out = run(&db, &fixture("accounts"), &["migrate", "--phase", "1"], "");
    assert_ne!(out.code, exit::OK, "{out:?}");
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains("creating the phasegate ledger tables") && said.contains("phasegate_runs"), "the setup's own error: {said}");
    assert!(!said.contains("current transaction is aborted"), "{said}");
    assert_eq!(db.count("SELECT count(*) FROM pg_class WHERE relname = 'phasegate_applied'"), 0, "nothing of the setup is kept");
}
