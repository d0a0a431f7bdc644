//! Batches sized by time (docs/directives.md#batch, issue 24): `-- phasegate:
//! batch D [max N]` asks each batch for as many rows as the last batches
//! did in `D`, within bounds; a fixed `batch N` keeps its count. The sizes
//! are read from the engine's progress events (`BatchProgress::Advanced`),
//! never from a clock of the test's own: a batch made slow by `pg_sleep`
//! in a trigger is slow by at least its sleep, whatever the machine.

use std::path::Path;
use std::time::{Duration, Instant};

use phasegate::{BatchProgress, Options, Target, Ui};

use crate::harness::{copy_set, exit, fixture, on, run, TestDb};

/// Collects each batch's size and rows.
#[derive(Default)]
struct Sizes(Vec<(u64, u64)>);

impl Ui for Sizes {
    fn confirm(&mut self, _prompt: &str, _expected: &str) -> bool {
        true
    }
    fn progress(&mut self, _line: &str) {}
    fn batch(&mut self, p: BatchProgress<'_>) {
        if let BatchProgress::Advanced { size, rows, .. } = p {
            self.0.push((size, rows));
        }
    }
}

/// The batched_backfill fixture (V3 fills `kind` on 20000 events, walking
/// the key) with V3's directive replaced by `directive`.
fn backfill_set(directive: &str) -> tempfile::TempDir {
    let set = copy_set(&fixture("batched_backfill"));
    let v3 = set.path().join("migrations/V3__backfill_events_kind.sql");
    let text = std::fs::read_to_string(&v3).unwrap().replacen("-- phasegate: batch 1000", &format!("-- phasegate: {directive}"), 1);
    std::fs::write(&v3, text).unwrap();
    set
}

/// Migrates to V2 with the CLI, then runs the rest through the engine, the
/// batch sizes collected.
fn walk(db: &TestDb, dir: &Path, before: &str) -> Vec<(u64, u64)> {
    run(db, dir, &["migrate", "--to-version", "2"], "").expect_exit(exit::OK);
    db.client().batch_execute(before).unwrap();
    let set = phasegate::load_set(dir).unwrap();
    let mut client = db.client();
    let mut sizes = Sizes::default();
    let out = phasegate::migrate(&mut client, &set, Target::Latest, &Options::default(), &mut sizes).unwrap();
    assert!(out.failure.is_none(), "{:?}", out.failure);
    assert_eq!(db.count("SELECT count(*) FROM events WHERE kind IS NULL"), 0);
    sizes.0
}

#[test]
fn a_time_sized_walk_shrinks_the_batch_after_a_slow_one_and_never_exceeds_its_max() {
    let db = TestDb::new("batchsize_time");
    let set = backfill_set("batch 100ms max 4000");
    // One row costs a second: the batch holding it takes ten times the target.
    let sizes = walk(
        &db,
        set.path(),
        "CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.id = 1600 THEN PERFORM pg_sleep(1); END IF; RETURN NEW; END $$;
         CREATE TRIGGER slow_row BEFORE UPDATE ON events FOR EACH ROW EXECUTE FUNCTION slow_row();",
    );
    assert_eq!(sizes.iter().map(|s| s.1).sum::<u64>(), 20_000, "{sizes:?}");
    assert_eq!(sizes[0].0, 1000, "the first batch asks for the starting size: {sizes:?}");
    assert!(sizes.iter().all(|s| (1..=4000).contains(&s.0)), "never over the max: {sizes:?}");
    // The keys are 1..20000 and every batch fills what it selects: the
    // batch holding id 1600 is the one whose rows reach past 1599.
    let mut reached = 0;
    let slow = sizes
        .iter()
        .position(|s| {
            reached += s.1;
            reached >= 1600
        })
        .unwrap();
    assert!(sizes[slow + 1].0 < sizes[slow].0, "the batch after the slow one (#{slow}) asks for fewer rows: {sizes:?}");
}

#[test]
fn a_fixed_count_asks_for_the_same_rows_every_batch() {
    let db = TestDb::new("batchsize_fixed");
    let set = backfill_set("batch 3000");
    let sizes = walk(&db, set.path(), "SELECT 1");
    assert!(sizes.iter().all(|s| s.0 == 3000), "{sizes:?}");
    assert_eq!(sizes.iter().map(|s| s.1).collect::<Vec<_>>(), [3000, 3000, 3000, 3000, 3000, 3000, 2000, 0]);
}

#[test]
fn a_time_sized_walk_killed_mid_way_resumes_after_its_last_committed_batch() {
    let db = TestDb::new("batchsize_crash");
    let set = backfill_set("batch 50ms");
    run(&db, set.path(), &["migrate", "--to-version", "2"], "").expect_exit(exit::OK);
    // Each row costs a little, so the walk lasts seconds and is killed mid-way.
    db.client()
        .batch_execute(
            "CREATE FUNCTION slow_rows() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.0002); RETURN NEW; END $$;
             CREATE TRIGGER slow_rows BEFORE UPDATE ON events FOR EACH ROW EXECUTE FUNCTION slow_rows();",
        )
        .unwrap();
    let mut child = on(&db.url, set.path(), &["migrate"]).spawn();
    let deadline = Instant::now() + Duration::from_secs(120);
    let done_before = loop {
        let done = db.count("SELECT coalesce(max(rows_done), 0)::bigint FROM phasegate_batches");
        if done > 0 {
            break done;
        }
        assert!(Instant::now() < deadline, "no batch committed within 120 s");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(child.kill9(), "the walk was still running when killed");
    let pid = child.pid;
    let _ = child.wait();
    // Its server session ends as a dead client's does (the batch in flight
    // rolls back), and is gone before the state is read.
    let pattern = format!("% pid {pid})");
    let mut c = db.client();
    c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1", &[&pattern]).unwrap();
    while c.query_one("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE $1", &[&pattern]).unwrap().get::<_, i64>(0) > 0 {
        assert!(Instant::now() < deadline, "the killed run's session outlived the test's bound");
        std::thread::sleep(Duration::from_millis(20));
    }
    let recorded = db.count("SELECT rows_done FROM phasegate_batches WHERE version = 3");
    assert!(recorded >= done_before && recorded < 20_000, "killed part way: {recorded}");
    assert_eq!(db.count("SELECT count(*) FROM events WHERE kind IS NOT NULL"), recorded, "the recorded progress is what the committed batches did");

    let out = run(&db, set.path(), &["migrate", "--format", "json"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    let doc = out.report();
    assert_eq!(doc.step(3).rows, Some(20_000), "the rows done before count: {:?}", doc.step(3));
    let log = doc.log();
    assert!(log.contains(&format!("V3 backfill: resuming after key {recorded} ({recorded} rows done before)")), "{log}");
    assert_eq!(db.count("SELECT count(*) FROM events WHERE kind IS NULL"), 0);
    assert_eq!(db.count("SELECT count(*) FROM phasegate_batches"), 0);
}
