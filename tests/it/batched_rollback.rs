//! Batched rollbacks (docs/safety.md, docs/directives.md, issue 13): `-- phasegate: batch N` in
//! a rollback file walks the key one transaction per batch, backs each
//! batch's rows up in that batch, resumes after a crash, and leaves no
//! trigger behind.

use crate::harness::{exit, fixture, run, TestDb, Writer};

#[test]
fn a_batched_rollback_backs_up_each_batch_while_the_application_writes() {
    let db = TestDb::new("batchrb");
    let dir = fixture("batched_rollback");
    run(&db, &dir, &["migrate"], "").expect_exit(exit::OK);

    // The application inserts events and edits existing ones the whole time.
    let writer = Writer::new("app-writer").rounds(200_000).execute(&db.url, |c, n| {
        if n % 2 == 0 {
            c.execute("INSERT INTO events (payload) VALUES ($1)", &[&format!("click:live-{n}")])
        } else {
            c.execute("UPDATE events SET payload = payload WHERE id = $1", &[&(n as i64 * 7919 % 20_000 + 1)])
        }
    });
    writer.until_written(1);
    let out = run(&db, &dir, &["rollback", "--phase", "1", "--yes", "--format", "json"], "");
    let writes = writer.stop();
    assert_eq!(out.code, exit::OK, "{out:?}");
    assert!(writes.written > 0, "the application wrote during the rollback");
    assert_eq!(writes.failed, 0, "no application statement failed");

    let doc = out.report();
    let v3 = doc.step(3);
    let rows = v3.rows.unwrap() as i64;
    assert!(rows >= 20_000, "every baseline row reset, and the live rows the walk reached: {v3:?}");
    let backups = &v3.backups;
    assert_eq!(backups.len(), 1, "one backup table for the whole walk: {v3:?}");
    let table = &backups[0].backup_table;
    // Exactly the rows the batches changed, each once, with its kind as it
    // was; the application's own updates went through the trigger uncopied.
    assert_eq!(backups[0].rows, rows, "{v3:?}");
    assert_eq!(db.count(&format!("SELECT count(*) FROM {table}")), rows);
    assert_eq!(db.count(&format!("SELECT count(*) FROM {table} WHERE kind IS NULL")), 0);
    assert_eq!(db.count(&format!("SELECT count(*) FROM phasegate_backups WHERE backup_table = '{table}'")), 1);
    // No trigger, no function and no progress row outlive the rollback.
    assert_eq!(db.count("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'phasegate_backup%'"), 0);
    assert_eq!(db.count("SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'phasegate_backup'"), 0);
    assert_eq!(db.count("SELECT count(*) FROM phasegate_batches"), 0);
    assert_eq!(db.count("SELECT count(*) FROM events WHERE id <= 20000 AND kind IS NOT NULL"), 0);

    // The backup puts every reset kind back.
    let restored = run(&db, &dir, &["restore", "--run", &doc.run_id, "--yes"], "");
    assert_eq!(restored.code, exit::OK, "{restored:?}");
    assert_eq!(db.count("SELECT count(*) FROM events WHERE id <= 20000 AND kind IS NULL"), 0);
}

#[test]
fn a_batched_rollback_resumes_after_its_last_committed_batch() {
    let db = TestDb::new("batchrbresume");
    let dir = fixture("batched_rollback");
    run(&db, &dir, &["migrate"], "").expect_exit(exit::OK);
    // The state a crash after 6 batches of a rollback leaves: those rows
    // reset, the walk's progress committed with them (under the rollback's
    // own key, the version negated), V3 still recorded as applied, and the
    // copying trigger of the dead run still on the table.
    db.client()
        .batch_execute(
            "UPDATE events SET kind = NULL WHERE id <= 6000;
             INSERT INTO phasegate_batches (version, last_key, rows_done) VALUES (-3, '6000', 6000);
             CREATE SCHEMA IF NOT EXISTS phasegate_backup;
             CREATE FUNCTION phasegate_backup.copy_events_deadbeef() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
             CREATE TRIGGER phasegate_backup_deadbeef_u AFTER UPDATE ON events REFERENCING OLD TABLE AS phasegate_old
               FOR EACH STATEMENT EXECUTE FUNCTION phasegate_backup.copy_events_deadbeef();",
        )
        .unwrap();
    let out = run(&db, &dir, &["rollback", "--phase", "1", "--yes", "--format", "json"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    let doc = out.report();
    let v3 = doc.step(3);
    assert_eq!(v3.rows, Some(20_000), "6000 done before plus 14000 now: {v3:?}");
    assert_eq!(v3.backups[0].rows, 14_000, "this run backed up what it reset: {v3:?}");
    let log = doc.log();
    assert!(log.contains("V3 rollback: resuming after key 6000 (6000 rows done before)"), "{log}");
    assert!(log.contains("V3 rollback done: 20000 rows"), "{log}");
    assert_eq!(db.count("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'phasegate_backup%'"), 0, "the dead run's trigger is gone too");
    assert_eq!(db.count("SELECT count(*) FROM events WHERE kind IS NOT NULL"), 0);
}

/// A batched backfill whose after-migrate check fails is undone by its
/// rollback file; a batched rollback file is walked like `rollback` walks
/// it (it was run as plain SQL, its `:last_key` a syntax error).
#[test]
fn a_batched_backfill_whose_check_fails_is_undone_by_its_batched_rollback() {
    let db = TestDb::new("batchundo");
    let dir = crate::harness::copy_set(&fixture("batched_rollback"));
    let validation = dir.path().join("validations/V3__backfill_events_kind.sql");
    let text = std::fs::read_to_string(&validation).unwrap();
    std::fs::write(&validation, format!("-- check: fails_on_purpose\nSELECT 1 AS always;\n\n{text}")).unwrap();
    let out = run(&db, dir.path(), &["migrate"], "");
    assert_eq!(out.code, exit::ROLLBACK, "{out:?}");
    assert!(out.stderr.contains("undoing it with") || out.stdout.contains("fails_on_purpose"), "{out:?}");
    assert_eq!(db.count("SELECT count(*) FROM events WHERE id <= 20000 AND kind IS NOT NULL"), 0, "the backfill is undone");
    assert_eq!(db.count("SELECT count(*) FROM phasegate_applied WHERE version = 3"), 0, "V3 is not recorded");
    assert_eq!(db.count("SELECT count(*) FROM phasegate_batches"), 0, "no walk's progress is left");
}
