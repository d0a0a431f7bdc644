//! Lock safety and non-transactional work (docs/safety.md, docs/directives.md): lock timeouts are
//! retried and the blocker named; a failed concurrent index build leaves no
//! INVALID index, and one left by an interrupted run is rebuilt; batched
//! backfills finish under concurrent inserts and resume from their progress.

use crate::harness::json::PhaseState;
use crate::harness::{assert_same_state, exit, fixture, run, TestDb, Writer};

#[test]
fn lock_timeout_is_retried_then_names_the_blocker_and_changes_nothing() {
    let db = TestDb::new("lockwait");
    let dir = fixture("accounts");
    run(&db, &dir, &["migrate", "--phase", "1"], "").expect_exit(exit::OK);
    let (before, ledger) = (db.snapshot(), db.ledger());

    // An application transaction reads accounts and stays open: V2's ALTER
    // TABLE needs ACCESS EXCLUSIVE and must not queue behind it for long.
    let mut app = phasegate::connect(&db.url, "long-report-job").unwrap();
    let pid: i32 = app.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let mut tx = app.transaction().unwrap();
    tx.query("SELECT count(*) FROM accounts", &[]).unwrap();

    let out = run(&db, &dir, &["migrate", "--lock-timeout", "300ms", "--lock-retries", "2"], "");
    assert_eq!(out.code, exit::ERROR, "{out:?}");
    assert_eq!(out.stdout.matches("lock not available within 300ms").count(), 2, "each retry is printed: {}", out.stdout);
    assert!(out.stdout.contains("retry 1/2") && out.stdout.contains("retry 2/2"), "{}", out.stdout);
    let err = out.stderr.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(err.contains("V2: lock not available after 2 retries (lock_timeout 300ms); blocked by"), "{err}");
    assert!(err.contains(&format!("pid {pid} (long-report-job")), "the blocker's pid and application: {err}");
    assert!(err.contains("idle in transaction") && err.contains("SELECT count(*) FROM accounts"), "its state and query: {err}");
    tx.rollback().unwrap();

    assert_same_state(&before, &db.snapshot(), "after the lock timeout");
    assert_eq!(ledger, db.ledger());
    let out = run(&db, &dir, &["migrate", "--phase", "2"], "");
    assert_eq!(out.code, exit::OK, "once the blocker is gone: {out:?}");
}

fn invalid_indexes(db: &TestDb) -> Vec<String> {
    db.client()
        .query("SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE NOT i.indisvalid", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn failed_concurrent_index_build_leaves_no_invalid_index() {
    let db = TestDb::new("cic");
    let dir = fixture("concurrent_index");
    run(&db, &dir, &["migrate", "--phase", "0"], "").expect_exit(exit::OK);
    let out = run(&db, &dir, &["migrate"], "");
    assert_eq!(out.code, exit::ERROR, "duplicate references: {out:?}");
    let err = out.stderr.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(err.contains("migrations/V2__orders_reference_unique.sql:2"), "{err}");
    assert!(err.contains("could not create unique index \"orders_reference_key\""), "{err}");
    assert!(err.contains("the INVALID index orders_reference_key it left was dropped"), "{err}");
    assert!(invalid_indexes(&db).is_empty());

    db.client().batch_execute("DELETE FROM orders WHERE id = 1001").unwrap();
    let out = run(&db, &dir, &["migrate"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
}

#[test]
fn invalid_index_left_by_an_interrupted_build_is_rebuilt() {
    let db = TestDb::new("cicrerun");
    let dir = fixture("concurrent_index");
    run(&db, &dir, &["migrate", "--phase", "0"], "").expect_exit(exit::OK);
    // What a killed `CREATE INDEX CONCURRENTLY` leaves: an INVALID index of
    // that name, which `IF NOT EXISTS` would silently keep.
    let mut c = db.client();
    let _ = c.batch_execute("CREATE UNIQUE INDEX CONCURRENTLY orders_reference_key ON orders (reference)");
    assert_eq!(invalid_indexes(&db), ["orders_reference_key"]);
    c.batch_execute("DELETE FROM orders WHERE id = 1001").unwrap();

    let out = run(&db, &dir, &["migrate"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    assert!(out.stdout.contains("index orders_reference_key is INVALID (left by an interrupted concurrent build); dropping it to build it again"), "{}", out.stdout);
    assert!(invalid_indexes(&db).is_empty());
    let unique: bool = c
        .query_one("SELECT i.indisunique AND i.indisvalid FROM pg_index i WHERE i.indexrelid = 'orders_reference_key'::regclass", &[])
        .unwrap()
        .get(0);
    assert!(unique);
}

#[test]
fn batched_backfill_finishes_under_concurrent_inserts() {
    let db = TestDb::new("backfill");
    let dir = fixture("batched_backfill");
    run(&db, &dir, &["migrate", "--phase", "0"], "").expect_exit(exit::OK);

    // A writer inserts events the whole time, as the application would.
    let writer = Writer::new("app-writer")
        .rounds(100_000)
        .execute(&db.url, |c, n| c.execute("INSERT INTO events (payload) VALUES ($1)", &[&format!("click:live-{n}")]));
    writer.until_written(1);
    let out = run(&db, &dir, &["migrate", "--format", "json"], "");
    let writes = writer.stop();
    assert_eq!(out.code, exit::OK, "{out:?}");
    let doc = out.report();
    let v3 = doc.step(3);
    // The pre-existing rows, plus any the writer inserted before V2's trigger existed.
    let rows = v3.rows.unwrap();
    assert!((20_000..=20_000 + writes.written).contains(&rows), "backfilled {rows}: {v3:?}");
    assert!(writes.written > 0, "the writer ran during the migration");
    assert_eq!(writes.failed, 0, "no insert failed");
    let missing: i64 = db.client().query_one("SELECT count(*) FROM events WHERE kind IS NULL", &[]).unwrap().get(0);
    assert_eq!(missing, 0, "rows written during the backfill are not missed");
    let progress: i64 = db.client().query_one("SELECT count(*) FROM phasegate_batches", &[]).unwrap().get(0);
    assert_eq!(progress, 0, "progress is cleared once the migration is recorded");
}

#[test]
fn batched_backfill_resumes_after_the_last_committed_batch() {
    let db = TestDb::new("resume");
    let dir = fixture("batched_backfill");
    run(&db, &dir, &["migrate", "--to-version", "2"], "").expect_exit(exit::OK);
    // The state a crash after 7 batches leaves: those rows done, the
    // progress row committed with them, the migration not recorded.
    db.client()
        .batch_execute(
            "UPDATE events SET kind = events_kind(payload) WHERE id <= 7000;
             INSERT INTO phasegate_batches (version, last_key, rows_done) VALUES (3, '7000', 7000);",
        )
        .unwrap();
    let out = run(&db, &dir, &["migrate", "--format", "json"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    let doc = out.report();
    let v3 = doc.step(3);
    assert_eq!(v3.rows, Some(20_000), "7000 done before plus 13000 now: {v3:?}");
    let log = doc.log();
    assert!(log.contains("V3 backfill: resuming after key 7000 (7000 rows done before)"), "{log}");
    assert!(log.contains("V3 backfill done: 20000 rows"), "{log}");
}

#[test]
fn failing_check_after_a_non_transactional_rollback_keeps_the_ledger_true() {
    let db = TestDb::new("nontxrb");
    let dir = fixture("nontx_rollback_check_fails");
    run(&db, &dir, &["migrate"], "").expect_exit(exit::OK);
    let out = run(&db, &dir, &["rollback", "--phase", "1", "--yes", "--format", "json"], "");
    assert_eq!(out.code, exit::ROLLBACK, "the failing check decides the verdict: {out:?}");
    // DROP INDEX CONCURRENTLY ran outside a transaction and cannot be undone,
    // so the ledger must not claim V2 is still applied.
    let gone: bool = db.client().query_one("SELECT to_regclass('orders_reference_key') IS NULL", &[]).unwrap().get(0);
    assert!(gone);
    let status = run(&db, &dir, &["status", "--format", "json"], "").report().phases();
    assert_eq!(status[1].state, PhaseState::Pending, "{status:#?}");
}
