//! `status --schema`: the live schema against the set's files applied to a
//! disposable database up to the versions the ledger lists. A database
//! `migrate` built and nothing else touched matches; an index created by
//! hand and a column dropped outside a migration are each named with a
//! diff, and the command exits 3; the disposable database is gone after.

use std::sync::{Mutex, MutexGuard};

use crate::harness::{fixture, on, server, TestDb};

/// The tests here run one at a time, so none sees another's disposable
/// database while checking that its own is gone.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// `status --schema` on `db`, the disposable database on the test server.
fn status_schema(db: &TestDb, extra: &[&str]) -> crate::harness::Output {
    let mut args = vec!["status", "--schema", "--backend", "url", "--server-url", server().admin_url()];
    args.extend_from_slice(extra);
    on(db, &fixture("accounts"), &args).run()
}

/// The disposable databases `--schema` left on the test server (none, ever).
fn left_on_server() -> Vec<String> {
    let mut c = phasegate::connect(server().admin_url(), "status_schema test").unwrap();
    c.query("SELECT datname FROM pg_database WHERE datname LIKE 'phasegate_schema_%'", &[]).unwrap().iter().map(|r| r.get(0)).collect()
}

#[test]
fn a_database_migrate_built_matches_its_files() {
    let _one = one_at_a_time();
    let db = TestDb::new("schema_same");
    on(&db, &fixture("accounts"), &["migrate", "--phase", "2"]).run().expect_exit(0);
    // Grants made by hand to the environment's own roles are not the
    // set's (a rehearsal compares them; drift does not).
    db.client().batch_execute("GRANT SELECT ON accounts TO PUBLIC; GRANT CREATE ON SCHEMA public TO PUBLIC").unwrap();
    let out = status_schema(&db, &[]);
    out.expect_exit(0);
    assert!(out.stdout.contains("schema: matches the files up to V2 (2 migrations applied to a disposable database)"), "{}", out.stdout);
    let doc = status_schema(&db, &["--format", "json"]).expect_exit(0).json();
    assert_eq!(doc["schema"]["compared_versions"], serde_json::json!([1, 2]), "{doc:#}");
    assert_eq!(doc["schema"]["objects"], serde_json::json!([]), "{doc:#}");
    // Without --schema the document has no schema field and nothing is started.
    let doc = on(&db, &fixture("accounts"), &["status", "--format", "json"]).run().expect_exit(0).json();
    assert!(doc.get("schema").is_none(), "{doc:#}");
    assert_eq!(left_on_server(), Vec::<String>::new());
}

#[test]
fn an_empty_database_matches_a_set_it_never_applied() {
    let _one = one_at_a_time();
    let db = TestDb::new("schema_empty");
    let out = status_schema(&db, &[]);
    out.expect_exit(0);
    assert!(out.stdout.contains("schema: matches no migration (0 migrations applied to a disposable database)"), "{}", out.stdout);
}

#[test]
fn a_hand_made_index_and_a_dropped_column_are_named_with_their_diff() {
    let _one = one_at_a_time();
    let db = TestDb::new("schema_drifted");
    on(&db, &fixture("accounts"), &["migrate", "--phase", "2"]).run().expect_exit(0);
    db.client().batch_execute("CREATE INDEX accounts_email_by_hand ON accounts (email); ALTER TABLE accounts DROP COLUMN domain;").unwrap();

    // Dropping `domain` by hand also breaks V2's checks: status says so,
    // exits 1 for it, and still shows the schema's differences.
    let out = status_schema(&db, &[]);
    out.expect_exit(1);
    assert!(out.stdout.contains("checks: could not run: ") && out.stdout.contains("V2__add_domain.sql:3:"), "{}", out.stdout);

    db.client().batch_execute("ALTER TABLE accounts ADD COLUMN domain text; UPDATE accounts SET domain = split_part(email, '@', 2); ALTER TABLE accounts DROP COLUMN legacy; CREATE VIEW accounts_by_hand AS SELECT id FROM accounts;").unwrap();
    let out = status_schema(&db, &[]);
    out.expect_exit(3);
    let text = &out.stdout;
    assert!(text.contains("schema: 2 objects differ from the files up to V2"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("schema: ") && l.contains("accounts_by_hand") && l.ends_with("only in the database")), "{text}");
    assert!(text.lines().any(|l| l == "schema: table public.accounts: differs"), "{text}");
    // An index is part of its table's definition: the table's diff shows it.
    assert!(text.lines().any(|l| l.trim_start().starts_with('+') && l.contains("index accounts_email_by_hand")), "the diff shows the index: {text}");
    assert!(text.lines().any(|l| l.trim_start().starts_with('-') && l.contains("legacy")), "the diff shows the dropped column: {text}");

    let doc = status_schema(&db, &["--format", "json"]).expect_exit(3).json();
    let objects = doc["schema"]["objects"].as_array().unwrap();
    let change_of = |needle: &str| objects.iter().find(|o| o["object"].as_str().unwrap().contains(needle)).map(|o| o["change"].as_str().unwrap().to_string());
    assert_eq!(change_of("accounts_by_hand").as_deref(), Some("unexpected"), "{doc:#}");
    assert_eq!(change_of("table public.accounts").as_deref(), Some("differs"), "{doc:#}");
    assert!(objects.iter().any(|o| o["change"] == "differs" && o["expected"].as_str().unwrap().contains("legacy") && !o["live"].as_str().unwrap().contains("legacy")), "{doc:#}");
    assert_eq!(left_on_server(), Vec::<String>::new());
}
