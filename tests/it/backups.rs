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

/// A rollback that re-creates a column a phase dropped and then fills it
/// (the usual rollback of a dropped column) backs up the rows it updates:
/// the backup copies the columns by name, not by position, so the column the
/// rollback added before its UPDATE does not shift the others.
#[test]
fn a_rollback_that_adds_a_column_before_its_update_backs_up_the_rows() {
    let set = tempfile::tempdir().unwrap();
    let w = |path: &str, text: &str| {
        let p = set.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w(
        "phases.toml",
        "[[phase]]\nid = 0\nname = \"baseline\"\nsummary = \"people\"\nversions = [1]\nreversible = false\nreason = \"the existing schema\"\nbaseline = true\n\n\
         [[phase]]\nid = 1\nname = \"drop-note\"\nsummary = \"people.note goes\"\nversions = [2]\n",
    );
    w("migrations/V1__people.sql", "CREATE TABLE people (id integer PRIMARY KEY, name text NOT NULL, note text);\nINSERT INTO people VALUES (1, 'ada', 'x'), (2, 'bob', 'y');\n");
    w("validations/V1__people.sql", "-- check: two_people\n-- metric: count\n-- proceed: = 2\nSELECT count(*) FROM people;\n");
    w("migrations/V2__drop_note.sql", "ALTER TABLE people DROP COLUMN note;\n");
    w("rollback/V2__drop_note.sql", "ALTER TABLE people ADD COLUMN note text;\nUPDATE people SET name = upper(name), note = 'restored';\n");
    w("validations/V2__drop_note.sql", "-- check: names_kept\n-- metric: count\n-- proceed: = 2\nSELECT count(*) FROM people;\n");

    let db = TestDb::new("rollback_adds_column");
    run(&db, set.path(), &["migrate"], "").expect_exit(exit::OK);
    let out = run(&db, set.path(), &["rollback", "--phase", "1", "--yes", "--format", "json"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    let doc = out.report();
    assert_eq!(doc.backups()[0].changes, ["UPDATE"], "{doc:#?}");
    assert_eq!(doc.backups()[0].rows, 2, "{doc:#?}");
    let names: Vec<String> = db.client().query("SELECT name || '/' || note FROM people ORDER BY id", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(names, ["ADA/restored", "BOB/restored"]);

    // restore puts the names back as the rollback found them.
    let out = run(&db, set.path(), &["restore", "--run", &doc.run_id, "--yes", "--format", "json"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    let names: Vec<String> = db.client().query("SELECT name FROM people ORDER BY id", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(names, ["ada", "bob"]);
}
