//! Rollbacks that try to change rows without their backup: a backup
//! trigger disabled (`ALTER TABLE ... DISABLE TRIGGER USER`), disabled and
//! enabled again, or `session_replication_role` set to `replica`, each
//! hidden in a DO block and spelled in pieces so no reading of the file's
//! text can see it (what the load step refuses is another matter; this is
//! what is left when a statement gets past it): the effect is detected before
//! the rollback commits, the rollback is refused naming the file and line,
//! and the database is as before. A batched rollback is checked per batch:
//! a trigger disabled by another session between two batches stops the
//! walk at the next batch, whose rows stay as they were.

use phasegate::{BatchProgress, Bypass, Error, Options, Ui};

use super::{manifest, Set, PASSES};
use crate::harness::TestDb;

const ACCOUNTS: &str = "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);\n\
                        INSERT INTO accounts SELECT g, g * 10 FROM generate_series(1, 1000) g;\n";

/// The set: accounts (1000 rows), then a phase whose rollback runs
/// `before` and then zeroes every balance.
fn set_with_rollback(before: &str) -> Set {
    Set::new(&manifest(&[1], &[2], true))
        .step(1, "accounts", ACCOUNTS, None, PASSES)
        .step(2, "nothing", "SELECT 1;\n", Some(&format!("{before}\nUPDATE accounts SET balance = 0;\n")), PASSES)
}

fn balances(db: &TestDb) -> i64 {
    db.count("SELECT sum(balance)::bigint FROM accounts")
}

#[track_caller]
fn refused(db: &TestDb, before: &str, how: &str) {
    let set = set_with_rollback(before);
    set.run(db, &["migrate"]).expect_exit(0);
    let snapshot = db.snapshot();
    let ledger = db.ledger();
    let out = set.run(db, &["rollback", "--phase", "1", "--yes"]);
    out.expect_exit(1);
    let line = out.error_line();
    // The UPDATE is on the line after `before` (one line, or more).
    let update_line = before.lines().count() + 1;
    assert!(line.contains(&format!("rollback/V2__nothing.sql:{update_line}: the rollback bypassed the backup of public.accounts: {how}")), "{line}");
    assert!(line.contains("it was rolled back, nothing was changed"), "{line}");
    assert!(!out.stdout.contains("none needed") && !out.stderr.contains("none needed"), "{out:?}");
    assert_eq!(balances(db), 5_005_000, "no balance changed");
    crate::harness::assert_same_state(&snapshot, &db.snapshot(), "a refused rollback");
    assert_eq!(db.ledger(), ledger, "V2 is still applied");
    assert_eq!(db.count("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'accounts'::regclass"), 0, "no backup trigger is left behind");
}

#[test]
fn a_rollback_that_disables_its_backup_trigger_is_refused() {
    let db = TestDb::new("bypass_disable");
    refused(&db, "DO $$ BEGIN EXECUTE 'ALTER TABLE accounts DIS' || 'ABLE TRIG' || 'GER USER'; END $$;", "its backup trigger was disabled");
}

#[test]
fn a_rollback_that_disables_and_enables_its_backup_trigger_around_a_hidden_update_is_refused() {
    let db = TestDb::new("bypass_reenable");
    // The UPDATE runs while the trigger is off; the trigger is on again
    // (ENABLE ALWAYS, as phasegate made it) before the rollback ends.
    let before = "DO $$ BEGIN EXECUTE 'ALTER TABLE accounts DIS' || 'ABLE TRIG' || 'GER USER'; UPDATE accounts SET balance = -1 WHERE id = 1; END $$;\n\
                  DO $$ DECLARE t text; BEGIN FOR t IN SELECT tgname FROM pg_trigger WHERE tgrelid = 'accounts'::regclass LOOP\n\
                  EXECUTE format('ALTER TABLE accounts EN' || 'ABLE ALWAYS TRIG' || 'GER %I', t); END LOOP; END $$;";
    refused(&db, before, "its backup trigger was altered while the rollback ran");
}

#[test]
fn a_rollback_that_sets_session_replication_role_to_replica_is_refused() {
    let db = TestDb::new("bypass_replica");
    refused(&db, "DO $$ BEGIN PERFORM set_config('session_' || 'replication_role', 'replica', false); END $$;", "session_replication_role is replica, not origin");
}

/// A `Ui` that, once the first batch committed, disables every trigger of
/// `accounts` from a session of its own (as a careless operator would
/// between two batches).
struct DisableAfterFirstBatch {
    url: String,
    done: bool,
}

impl Ui for DisableAfterFirstBatch {
    fn confirm(&mut self, _prompt: &str, _expected: &str) -> bool {
        true
    }
    fn progress(&mut self, _line: &str) {}
    fn batch(&mut self, progress: BatchProgress<'_>) {
        if matches!(progress, BatchProgress::Advanced { rows, .. } if rows > 0) && !self.done {
            self.done = true;
            let mut c = phasegate::connect(&self.url, "careless operator").unwrap();
            c.batch_execute("ALTER TABLE accounts DISABLE TRIGGER USER").unwrap();
        }
    }
}

#[test]
fn a_batched_rollback_stops_at_the_batch_whose_backup_trigger_was_disabled() {
    let db = TestDb::new("bypass_batched");
    let walk = "-- phasegate: batch 100\nUPDATE accounts SET balance = 0 WHERE id IN (\n  SELECT id FROM accounts WHERE (:last_key IS NULL OR id > :last_key) AND balance <> 0\n  ORDER BY id LIMIT :batch_size)\nRETURNING id;\n";
    let set = Set::new(&manifest(&[1], &[2], true)).step(1, "accounts", ACCOUNTS, None, PASSES).step(2, "nothing", "SELECT 1;\n", Some(walk), PASSES);
    set.run(&db, &["migrate"]).expect_exit(0);
    let loaded = phasegate::load_set(set.path()).unwrap();
    let mut client = db.client();
    let mut ui = DisableAfterFirstBatch { url: db.url.clone(), done: false };
    let out = phasegate::rollback(&mut client, &loaded, 1, &Options::default(), &mut ui).expect("the run reports its failure");
    match out.failure {
        Some(Error::BackupBypassed { at, table, how: Bypass::Disabled, batched: true }) => {
            assert!(at.to_string().ends_with("rollback/V2__nothing.sql:2"), "{at}");
            assert_eq!(table, "public.accounts");
        }
        other => panic!("the second batch is refused: {other:?}"),
    }
    assert_eq!(db.count("SELECT count(*) FROM accounts WHERE balance = 0"), 100, "the first batch committed; the second was rolled back");
    assert_eq!(db.count("SELECT coalesce(sum(rows), 0)::bigint FROM phasegate_backups"), 100, "with its 100 rows backed up");
    assert_eq!(db.count("SELECT count(*) FROM refinery_schema_history WHERE version = 2"), 1, "V2 is still applied");

    // Triggers on again, the walk resumes after its last committed batch
    // and every changed row has its backup.
    db.client().batch_execute("ALTER TABLE accounts ENABLE TRIGGER USER").unwrap();
    set.run(&db, &["rollback", "--phase", "1", "--yes"]).expect_exit(0);
    assert_eq!(db.count("SELECT count(*) FROM accounts WHERE balance = 0"), 1000);
    assert_eq!(db.count("SELECT coalesce(sum(rows), 0)::bigint FROM phasegate_backups"), 1000, "every changed row is in a backup");
}
