//! `status` after a backfill stopped part way: the phase is partly applied
//! (not pending), and the walk shows its rows done, the key its next batch
//! starts after and when its last batch committed; a re-run resumes it.
//! The walk is stopped deterministically: a session holds a row of the
//! sixth batch, whose UPDATE times out waiting for it (no retries), so
//! exactly five batches committed.

use crate::harness::{copy_set, fixture, log_dir, on, Cmd, TestDb};

/// The batched_backfill fixture with its backfill (V3) in a phase of its
/// own, so that nothing but the walk can make that phase partly applied.
fn backfill_alone_in_its_phase() -> tempfile::TempDir {
    let set = copy_set(&fixture("batched_backfill"));
    std::fs::write(
        set.path().join("phases.toml"),
        "[[phase]]\nid = 0\nname = \"baseline\"\nsummary = \"events\"\nversions = [1]\nreversible = false\nreason = \"the existing schema\"\nbaseline = true\n\n\
         [[phase]]\nid = 1\nname = \"trigger\"\nsummary = \"the sync trigger\"\nversions = [2]\n\n\
         [[phase]]\nid = 2\nname = \"backfill\"\nsummary = \"events.kind, batched\"\nversions = [3]\n",
    )
    .unwrap();
    set
}

#[test]
fn status_shows_a_backfill_stopped_part_way_and_where_it_resumes() {
    let db = TestDb::new("walk_status");
    let set = backfill_alone_in_its_phase();
    on(&db, set.path(), &["migrate", "--phase", "1"]).run().expect_exit(0);

    let mut holder = db.client();
    let mut tx = holder.transaction().unwrap();
    tx.execute("SELECT 1 FROM events WHERE id = 5500 FOR UPDATE", &[]).unwrap();
    let out = on(&db, set.path(), &["migrate", "--lock-timeout", "100ms", "--lock-retries", "0"]).run();
    out.expect_exit(1);
    tx.rollback().unwrap();

    let doc = on(&db, set.path(), &["status", "--format", "json"]).run().expect_exit(0).json();
    assert_eq!(doc["phases"][2]["state"], "partly applied", "{doc:#}");
    assert_eq!(doc["phases"][2]["pending"], serde_json::json!([3]), "{doc:#}");
    let walk = &doc["batches"][0];
    assert_eq!(
        (&walk["version"], &walk["phase"], &walk["direction"], &walk["rows_done"], &walk["last_key"]),
        (&serde_json::json!(3), &serde_json::json!(2), &serde_json::json!("forward"), &serde_json::json!(5000), &serde_json::json!("5000")),
        "{doc:#}"
    );
    assert!(walk["updated_at"].as_str().unwrap().ends_with(" UTC"), "{walk}");

    let text = on(&db, set.path(), &["status"]).run().expect_exit(0).stdout.clone();
    assert!(text.contains("phase 2  backfill     partly applied"), "{text}");
    assert!(
        text.contains("phase 2: V3 backfill part way: 5000 rows done, the next batch starts after key 5000; last batch at ")
            && text.contains("not running: `cargo xtask migrate` resumes it"),
        "{text}"
    );

    // A fleet's status shows the phase the same way.
    let fleet = set.path().join("fleet.toml");
    std::fs::write(&fleet, "[[database]]\nname = \"walker\"\nurl_env = \"STATUS_WALK_URL\"\n\n[[group]]\nname = \"all\"\ndatabases = [\"walker\"]\n").unwrap();
    let out = Cmd::new(&["status", "--fleet", fleet.to_str().unwrap(), "--format", "json"]).dir(set.path()).logs(log_dir()).env("STATUS_WALK_URL", &db.url).process();
    out.expect_exit(0);
    let cells = &out.json()["fleet"]["databases"][0]["phases"];
    assert_eq!(cells[2]["state"], "partly applied", "{cells}");

    // The re-run resumes after key 5000 and finishes; nothing is left part way.
    on(&db, set.path(), &["migrate"]).run().expect_exit(0);
    let doc = on(&db, set.path(), &["status", "--format", "json"]).run().expect_exit(0).json();
    assert_eq!((&doc["phases"][2]["state"], &doc["batches"]), (&serde_json::json!("applied"), &serde_json::json!([])), "{doc:#}");
    assert_eq!(db.count("SELECT count(*) FROM events WHERE kind IS NULL"), 0);
}
