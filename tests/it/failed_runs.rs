//! What a failed run says about itself: its verdict is ERROR in every
//! output (JSON, Markdown, GitHub, text, the audit row, the rollback
//! report, a fleet's rows), never the PROCEED of the checks that ran before
//! it failed; and a log folder that cannot be written stops a run before
//! it does anything.

use std::path::Path;

use crate::harness::{copy_set, fixture, on, Cmd, TestDb};

/// A copy of the accounts set with one check of V2's validation file
/// replaced: `old` (a line of the file) becomes `new`.
fn accounts_with(old: &str, new: &str) -> tempfile::TempDir {
    let set = copy_set(&fixture("accounts"));
    let path = set.path().join("validations/V2__add_domain.sql");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(old), "{text}");
    std::fs::write(&path, text.replace(old, new)).unwrap();
    set
}

/// V2's share metric returns text: the run fails after its first check
/// (`domain_filled`) said PROCEED.
fn metric_returns_text() -> tempfile::TempDir {
    accounts_with("SELECT 100.0 * max(n) / sum(n) FROM (SELECT count(*) AS n FROM accounts GROUP BY domain) d;", "SELECT 'high'::text;")
}

/// The audit row of a run: its verdict and exit code.
fn audit_row(db: &TestDb, run_id: &str) -> (Option<String>, i32) {
    let row = db.client().query_one("SELECT verdict, exit_code FROM phasegate_runs WHERE run_id = $1::text::uuid", &[&run_id]).unwrap();
    (row.get(0), row.get(1))
}

#[test]
fn a_failed_migrate_says_error_in_every_output_and_its_audit_row() {
    let db = TestDb::new("failed_verdict");
    let set = metric_returns_text();
    on(&db, set.path(), &["migrate", "--phase", "1"]).run().expect_exit(0);
    let migrate = |format: &str| on(&db, set.path(), &["migrate", "--phase", "2", "--format", format]).run();

    let out = migrate("json");
    out.expect_exit(1);
    let doc = out.json();
    assert_eq!((&doc["verdict"], &doc["exit_code"]), (&serde_json::json!("ERROR"), &serde_json::json!(1)), "{doc:#}");
    assert!(doc["error"].as_str().unwrap().contains("not a number"), "{doc:#}");
    assert_eq!(audit_row(&db, doc["run_id"].as_str().unwrap()), (Some("ERROR".to_string()), 1));

    let text = migrate("text");
    text.expect_exit(1);
    assert!(text.stdout.lines().any(|l| l == "verdict: ERROR") && !text.stdout.contains("verdict: PROCEED"), "{}", text.stdout);
    let md = migrate("markdown");
    md.expect_exit(1);
    assert!(md.stdout.contains("**Verdict:** ⛔ **ERROR**") && !md.stdout.contains("**Verdict:** ✅"), "{}", md.stdout);
    let gh = migrate("github");
    gh.expect_exit(1);
    assert!(gh.stdout.lines().any(|l| l == "verdict: ERROR"), "{}", gh.stdout);
    // Nothing of V2 was kept.
    assert_eq!(db.count("SELECT count(*) FROM refinery_schema_history WHERE version = 2"), 0);
}

#[test]
fn a_failed_rollback_reports_error_in_its_report_file() {
    let db = TestDb::new("failed_rollback_verdict");
    let set = accounts_with(
        "-- check: domain_column_dropped\n-- when: after-rollback\nSELECT 1 FROM information_schema.columns WHERE table_name = 'accounts' AND column_name = 'domain';",
        "-- check: domain_column_dropped\n-- when: after-rollback\n-- metric: count\n-- proceed: = 0\nSELECT 'none'::text;",
    );
    on(&db, set.path(), &["migrate", "--phase", "2"]).run().expect_exit(0);
    let out = on(&db, set.path(), &["rollback", "--phase", "2", "--yes", "--format", "json"]).run();
    out.expect_exit(1);
    let doc = out.json();
    assert_eq!(doc["verdict"], "ERROR", "{doc:#}");
    let report = std::fs::read_to_string(doc["report_file"].as_str().expect("a report file")).unwrap();
    assert!(report.starts_with("# Rollback of phase 2 (data): FAILED"), "{report}");
    assert!(report.contains("| verdict | ERROR (exit 1) |"), "{report}");
    assert_eq!(audit_row(&db, doc["run_id"].as_str().unwrap()), (Some("ERROR".to_string()), 1));
    // The rollback's transaction was rolled back: V2 is still applied.
    assert_eq!(db.count("SELECT count(*) FROM refinery_schema_history WHERE version = 2"), 1);
}

#[test]
fn a_failed_fleet_database_is_error_in_its_row_and_audit_row() {
    let db = TestDb::new("failed_fleet_verdict");
    let set = metric_returns_text();
    on(&db, set.path(), &["migrate", "--phase", "1"]).run().expect_exit(0);
    let fleet = set.path().join("fleet.toml");
    std::fs::write(&fleet, "[[database]]\nname = \"only\"\nurl_env = \"FAILED_RUNS_FLEET_URL\"\n\n[[group]]\nname = \"all\"\ndatabases = [\"only\"]\n").unwrap();
    let fleet_run = |format: &str| {
        Cmd::new(&["migrate", "--fleet", fleet.to_str().unwrap(), "--format", format])
            .dir(set.path())
            .logs(crate::harness::log_dir())
            .env("FAILED_RUNS_FLEET_URL", &db.url)
            .process()
    };
    let out = fleet_run("json");
    out.expect_exit(1);
    let doc = out.json();
    assert_eq!(doc["verdict"], "ERROR", "{doc:#}");
    let row = &doc["fleet"]["databases"][0];
    assert_eq!((&row["state"], &row["verdict"]), (&serde_json::json!("failed"), &serde_json::Value::Null), "{row:#}");
    assert_eq!(audit_row(&db, row["run_id"].as_str().unwrap()), (Some("ERROR".to_string()), 1));
    let out = fleet_run("text");
    out.expect_exit(1);
    let line = out.stdout.lines().find(|l| l.starts_with("only ")).unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(line.contains(" failed ") && line.contains(" ERROR "), "{line}");
}

/// The run's log folder cannot be created: `logs` under a regular file
/// (root, which runs these tests in CI, may write anywhere else).
fn unwritable(tmp: &Path) -> std::path::PathBuf {
    let file = tmp.join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    file.join("logs")
}

#[test]
fn an_unwritable_log_dir_is_an_error_before_anything_runs() {
    let db = TestDb::new("log_dir");
    let tmp = tempfile::tempdir().unwrap();
    let logs = unwritable(tmp.path());
    let expected = format!("cannot write the run's log in {}: ", logs.display());
    for args in [&["migrate"][..], &["rollback", "--phase", "1", "--yes"], &["status"], &["verify", "--backend", "docker"]] {
        let cmd = Cmd::new(args).dir(&fixture("accounts")).logs(&logs);
        // verify connects to no database of ours (it would start a container).
        let out = if args[0] == "verify" { cmd } else { cmd.url(&db.url) }.run();
        out.expect_exit(1);
        let e = out.error_line();
        assert!(e.starts_with(&expected) && e.contains("nothing was done"), "{args:?}: {e}");
    }
    let out = Cmd::new(&["migrate", "--format", "json"]).url(&db.url).dir(&fixture("accounts")).logs(&logs).run();
    out.expect_exit(1);
    assert_eq!(out.json()["verdict"], "ERROR");
    // Nothing ran: no connection made, not even the ledger created.
    assert_eq!(db.count("SELECT count(*) FROM pg_class WHERE relname IN ('accounts', 'refinery_schema_history', 'phasegate_runs')"), 0);

    // The default folder (logs/ in the set) is checked the same way.
    let set = copy_set(&fixture("accounts"));
    std::fs::write(set.path().join("logs"), "a file where the logs folder goes").unwrap();
    let out = Cmd::new(&["migrate"]).url(&db.url).dir(set.path()).run();
    out.expect_exit(1);
    assert!(out.error_line().starts_with(&format!("cannot write the run's log in {}: ", set.path().join("logs").display())), "{}", out.stderr);
    assert_eq!(db.count("SELECT count(*) FROM pg_class WHERE relname = 'accounts'"), 0);
}
