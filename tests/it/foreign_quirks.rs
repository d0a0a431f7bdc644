//! verify --from runs other tools' histories as their own tools do
//! (`tests/fixtures/foreign/quirks`): golang-migrate's up and down paired
//! by version whatever their titles, files with their own transaction
//! control and a lone `CREATE INDEX CONCURRENTLY`, Liquibase `includeAll`
//! raw files, each tool's ledger table present for a migration that
//! GRANTs on it, `--setup FILE`, a folder with no migration, the summary's
//! last words, and the roles a rehearsal creates dropped when it ends.

use crate::harness::json::PhaseResult;
use phasegate::foreign;

use crate::harness::{cli, exit, fixture, log_dir, server, TestDb};
use crate::verify::verify;

/// `verify --from LAYOUT DIR` with `extra` arguments, as JSON.
fn from(layout: &str, rel: &str, extra: &[&str]) -> crate::harness::Output {
    let dir = fixture(&format!("foreign/quirks/{rel}"));
    let mut args = vec!["--from", layout, dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    verify(&args)
}

/// The same in text, as a person reads it.
fn from_text(layout: &str, rel: &str, extra: &[&str]) -> crate::harness::Output {
    let dir = fixture(&format!("foreign/quirks/{rel}"));
    let logs = log_dir();
    let mut args = vec!["verify", "--backend", "url", "--server-url", server().admin_url(), "--log-dir", logs.to_str().unwrap(), "--from", layout, dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    cli(&args, "")
}

/// Each phase's name and result.
fn results(out: &crate::harness::Output) -> Vec<(String, PhaseResult)> {
    out.report().rehearsal().phases.iter().map(|p| (p.name.clone(), p.result)).collect()
}

/// Whether the shared server has this role.
fn role_exists(name: &str) -> bool {
    let mut c = phasegate::connect(server().admin_url(), "phasegate-test").unwrap();
    c.query_one("SELECT count(*) FROM pg_roles WHERE rolname = $1", &[&name]).unwrap().get::<_, i64>(0) == 1
}

/// The summary line a text run ends with.
fn last_words(out: &crate::harness::Output) -> String {
    out.stdout.lines().rfind(|l| l.starts_with("verify: ")).unwrap_or_else(|| panic!("no summary: {out:?}")).to_string()
}

#[test]
fn golang_migrate_runs_as_golang_migrate_does_twice_on_one_server() {
    // Two runs in a row on the same server: the role migration 5 creates
    // is dropped after each, so the second rehearses it again.
    for run in 1..=2 {
        let out = from("golang-migrate", "golang-migrate", &[]);
        out.expect_exit(exit::OK);
        let r = results(&out);
        let names: Vec<&str> = r.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["1_create_customers", "2_orders_in_two_transactions", "3_index_customers_email", "4_add_customer_tier", "5_reporting_role", "6_orders_note"], "run {run}");
        assert!(r.iter().all(|(_, res)| *res == PhaseResult::Restored), "run {run}: every migration rehearsed and restored: {r:?}\n{}", out.stderr);
        let doc = out.json();
        let isolation: Vec<&str> = doc["rehearsal"]["phases"].as_array().unwrap().iter().map(|p| p["isolation"].as_str().unwrap()).collect();
        // Two transactions of its own and CONCURRENTLY run outside one (on
        // a clone); a file wrapped in BEGIN/COMMIT is one transaction.
        assert_eq!(isolation, ["transaction", "clone", "clone", "transaction", "transaction", "transaction"], "run {run}");
        assert!(!role_exists("quirks_reporting"), "run {run}: the role the rehearsal created is dropped");
    }
    let out = from_text("golang-migrate", "golang-migrate", &[]);
    out.expect_exit(exit::OK);
    assert!(last_words(&out).ends_with("; every rollback restores the prior state"), "{}", last_words(&out));
}

#[test]
fn liquibase_include_all_runs_a_raw_file_and_the_summary_says_what_was_not_checked() {
    let out = from("liquibase", "liquibase", &[]);
    out.expect_exit(exit::OK);
    let want = [("alice:1".to_string(), PhaseResult::Restored), ("002-audit.sql".to_string(), PhaseResult::ForwardOnly), ("bob:tier".to_string(), PhaseResult::Restored)];
    assert_eq!(results(&out), want);
    let report = out.report();
    let raw = &report.rehearsal().phases[1];
    assert_eq!(raw.origin.as_ref().map(|o| o.id.as_str()), Some("includeAll:raw"));
    let words = last_words(&from_text("liquibase", "liquibase", &[]));
    assert!(words.ends_with("; 2 of 3 rollbacks rehearsed, compared and restored; not checked: 1 without a rollback (applied forward only)"), "{words}");
    assert!(!words.contains("every rollback restores"), "{words}");
}

#[test]
fn dbmate_migrations_grant_on_dbmates_ledger() {
    let out = from("dbmate", "dbmate", &[]);
    out.expect_exit(exit::OK);
    assert!(results(&out).iter().all(|(_, r)| *r == PhaseResult::Restored), "{:?}", results(&out));
}

#[test]
fn setup_runs_before_the_first_migration_and_its_errors_name_file_and_line() {
    let setup = fixture("foreign/quirks/setup/setup.sql");
    let out = from("files", "setup/migrations", &["--setup", setup.to_str().unwrap()]);
    out.expect_exit(exit::OK);
    assert_eq!(results(&out), [("V1__orders".to_string(), PhaseResult::Restored)]);
    assert!(!role_exists("quirks_app"), "the setup's role is dropped when the rehearsal ends");
    // Without the setup the migration cannot run: the rehearsal says so.
    let out = from("files", "setup/migrations", &[]);
    out.expect_exit(exit::ERROR);
    assert_eq!(results(&out), [("V1__orders".to_string(), PhaseResult::Failed)]);
    let words = last_words(&from_text("files", "setup/migrations", &[]));
    assert!(words.ends_with("; 0 of 1 rollbacks rehearsed, compared and restored; not checked: 1 failed forward"), "{words}");
    // An error in the setup: one line naming the file and the line.
    let bad = fixture("foreign/quirks/setup/bad-setup.sql");
    let out = from_text("files", "setup/migrations", &["--setup", bad.to_str().unwrap()]);
    out.expect_exit(exit::ERROR);
    let line = out.error_line();
    assert!(line.starts_with(&format!("{}:3:", bad.display())) && line.contains("relation \"nowhere\" does not exist"), "{line}");
    assert!(!role_exists("quirks_setup_failed"), "a role is dropped also when the run fails");
}

#[test]
fn a_folder_with_no_migration_is_an_error_naming_it_and_the_patterns() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("README.md"), "notes").unwrap();
    let logs = log_dir();
    let out = cli(&["verify", "--from", "flyway", d.path().to_str().unwrap(), "--log-dir", logs.to_str().unwrap()], "");
    out.expect_exit(exit::ERROR);
    assert_eq!(out.error_line(), format!("{}: no flyway migration found (looked for V<version>__<description>.sql, R__<description>.sql)", d.path().display()));
}

#[test]
fn a_phasegate_sets_summary_says_what_was_not_checked() {
    // concurrent_index: a baseline phase (no rollback), then a unique index
    // its seed rows violate: nothing was compared, and the summary says so
    // (it used to end "every rollback restores the prior state").
    let out = crate::harness::Cmd::new(&["verify", "--backend", "url", "--server-url", server().admin_url()]).dir(&fixture("concurrent_index")).logs(log_dir()).run();
    out.expect_exit(exit::ERROR);
    let words = last_words(&out);
    assert!(words.ends_with("; 0 of 2 rollbacks rehearsed, compared and restored; not checked: 1 without a rollback (applied forward only), 1 failed forward"), "{words}");
}

#[test]
fn every_tools_ledger_is_created_as_the_tool_creates_it() {
    let tables = [
        (foreign::Layout::Diesel, "__diesel_schema_migrations"),
        (foreign::Layout::Sqlx, "_sqlx_migrations"),
        (foreign::Layout::GolangMigrate, "schema_migrations"),
        (foreign::Layout::Refinery, "refinery_schema_history"),
        (foreign::Layout::Goose, "goose_db_version"),
        (foreign::Layout::Dbmate, "schema_migrations"),
        (foreign::Layout::Flyway, "flyway_schema_history"),
        (foreign::Layout::Sqitch, "sqitch.changes"),
        (foreign::Layout::Liquibase, "databasechangelog"),
    ];
    for (layout, table) in tables {
        let db = TestDb::new(&format!("ledger_{}", layout.name().replace('-', "_")));
        let ledger = phasegate::foreign::ledger(layout).unwrap_or_else(|| panic!("{layout} has a ledger"));
        db.client().batch_execute(&ledger.text).unwrap_or_else(|e| panic!("{layout}: {e}"));
        assert_eq!(db.count(&format!("SELECT count(*) FROM pg_class WHERE oid = to_regclass('{table}')")), 1, "{layout}: {table}");
    }
    assert!(phasegate::foreign::ledger(foreign::Layout::Files).is_none(), "the generic layout has no tool, so no ledger");
}
