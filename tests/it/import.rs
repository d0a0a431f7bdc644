//! `import`: another tool's history written as a phasegate set, which
//! `lint` loads and `verify` rehearses with the same findings (each phase's
//! result, and what each finding is about) as `verify --from` on the
//! original, on the real PostgreSQL of the test server; refused, writing
//! nothing, where a set already is.

use std::path::Path;

use crate::harness::json::{Finding, PhaseResult};
use crate::harness::{cli, exit, fixture, Output};
use crate::verify::verify;

/// `import --from LAYOUT DIR --dir SET` and its extra arguments.
fn import(layout: &str, from: &Path, set: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["import", "--from", layout, from.to_str().unwrap(), "--dir", set.to_str().unwrap()];
    args.extend_from_slice(extra);
    cli(&args, "")
}

/// A phase's finding as a stable line: its kind, what it is compared with,
/// and what it is about (the objects that differ, the table whose rows
/// changed). An error's text starts with its file and line, which import
/// changed, so only the PostgreSQL message after them is kept (and after
/// the check's name, for a Sqitch verify script import made a check).
fn line(f: &Finding) -> String {
    let against = f.against().map(|a| format!(" {}", a.as_str())).unwrap_or_default();
    let detail = match f {
        Finding::SchemaDiffers { objects, .. } => objects.join(", "),
        Finding::RowsChanged { table, rows_before, rows_after, .. } => format!("{table} {rows_before}->{rows_after}"),
        Finding::RollbackFailed { error } | Finding::ReapplyFailed { error } | Finding::MigrateFailed { error } => {
            let after_file = error.find(".sql:").map_or(error.as_str(), |i| &error[i..]);
            let message = after_file.split_once(": ").map_or(after_file, |(_, m)| m);
            // A Sqitch verify script is a check of the imported validation, which the error names.
            let message = message.strip_prefix("check `").and_then(|m| m.split_once("`: ")).map_or(message, |(_, m)| m);
            message.to_string()
        }
        _ => String::new(),
    };
    format!("{}{against}: {detail}", f.kind())
}

/// Each phase of a verify run: name, result and finding lines.
fn outcome(out: &Output) -> Vec<(String, PhaseResult, Vec<String>)> {
    out.report().rehearsal().phases.iter().map(|p| (p.name.clone(), p.result, p.findings.iter().map(line).collect())).collect()
}

fn count(o: &[(String, PhaseResult, Vec<String>)], r: PhaseResult) -> usize {
    o.iter().filter(|p| p.1 == r).count()
}

/// Imports a fixture, lints the set (it loads: findings, if any, are the
/// history's own lock rules, never a load error), then verifies it and the
/// original: same exit code, same phases with the same results and
/// findings. Returns the original's outcome.
#[track_caller]
fn imported_verifies_like_the_original(layout: &str, rel: &str, extra: &[&str]) -> Vec<(String, PhaseResult, Vec<String>)> {
    let from = fixture(rel);
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("db");
    let out = import(layout, &from, &set, extra);
    out.expect_exit(exit::OK);
    assert!(out.stdout.contains(&format!("{layout} migrations as phases")), "{}", out.stdout);
    let lint = cli(&["lint", "--dir", set.to_str().unwrap(), "--format", "json"], "");
    assert!(lint.code == exit::OK || lint.code == exit::ERROR, "{}", lint.stdout);
    assert!(lint.json()["summary"]["findings"].is_number(), "{}", lint.stdout);
    assert!(!lint.stdout.contains("set-structure"), "the imported set loads: {}", lint.stdout);

    let original = verify(&[&["--from", layout, from.to_str().unwrap()], extra].concat());
    // `verify --from` creates the tool's ledger table; import writes it as a setup file when a migration refers to it.
    let setup = set.join("setup").join(format!("{}_ledger.sql", layout.replace('-', "_")));
    let mut args = vec!["--dir", set.to_str().unwrap()];
    if setup.exists() {
        assert!(out.stdout.contains("--setup"), "{}", out.stdout);
        args.extend(["--setup", setup.to_str().unwrap()]);
    }
    let imported = verify(&args);
    let (want, got) = (outcome(&original), outcome(&imported));
    assert!(!want.is_empty());
    assert_eq!(got, want, "verify on the imported set vs verify --from on {rel}:\n{}\n{}", imported.stdout, original.stdout);
    assert_eq!(imported.code, original.code, "{}\n{}", imported.stdout, original.stdout);
    // The summary names the tool and the original file.
    let manifest = std::fs::read_to_string(set.join("phases.toml")).unwrap();
    assert_eq!(manifest.matches(&format!("summary = \"imported from {layout} ")).count(), want.len(), "{manifest}");
    want
}

#[test]
fn a_diesel_history_imports_and_verifies_as_verify_from_does() {
    let o = imported_verifies_like_the_original("diesel", "foreign/diesel/migrations", &[]);
    assert_eq!(o.len(), 30);
    // The planted defects (EXPECTED.md): one down fails, two leave objects.
    assert_eq!(count(&o, PhaseResult::Mismatch), 3, "{o:#?}");
}

#[test]
fn a_golang_migrate_history_with_its_quirks_imports_and_verifies_as_verify_from_does() {
    // Version pairing, two transactions in one file, CREATE INDEX CONCURRENTLY, a role.
    let o = imported_verifies_like_the_original("golang-migrate", "foreign/quirks/golang-migrate", &[]);
    assert_eq!(o.len(), 6);
    let tmp = tempfile::tempdir().unwrap();
    import("golang-migrate", &fixture("foreign/quirks/golang-migrate"), tmp.path(), &[]).expect_exit(exit::OK);
    let setup = std::fs::read_to_string(tmp.path().join("setup/golang_migrate_ledger.sql")).unwrap();
    assert!(setup.contains("CREATE TABLE IF NOT EXISTS schema_migrations"), "a migration grants on the ledger: {setup}");
    let read = |rel: &str| std::fs::read_to_string(tmp.path().join(rel)).unwrap();
    let two = read("migrations/V2__2_orders_in_two_transactions.sql");
    assert!(!two.contains("BEGIN") && !two.contains("COMMIT") && !two.contains("phasegate: no-transaction"), "two transactions run as one: {two}");
    assert!(read("migrations/V3__3_index_customers_email.sql").starts_with("-- phasegate: no-transaction\n"), "CREATE INDEX CONCURRENTLY alone");
    assert!(read("rollback/V1__1_create_customers.sql").contains("1_drop_customers.down.sql"), "paired by version");
}

#[test]
fn a_goose_history_imports_and_verifies_as_verify_from_does() {
    let o = imported_verifies_like_the_original("goose", "foreign/goose/migrations", &[]);
    assert!(count(&o, PhaseResult::ForwardOnly) >= 1, "a migration without a down: {o:#?}");
}

#[test]
fn a_flyway_history_imports_and_verifies_as_verify_from_does() {
    let o = imported_verifies_like_the_original("flyway", "foreign/flyway/sql", &["--placeholder", "default_currency=EUR"]);
    assert!(count(&o, PhaseResult::Mismatch) >= 1, "{o:#?}");
}

#[test]
fn import_into_a_set_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("db");
    std::fs::create_dir_all(&set).unwrap();
    std::fs::write(set.join("phases.toml"), "# a set\n").unwrap();
    let out = import("goose", &fixture("foreign/goose/migrations"), &set, &[]);
    out.expect_exit(exit::ERROR);
    assert!(out.error_line().ends_with("phases.toml: a migration set is already here; import writes a new one (pass --dir for another folder)"), "{}", out.stderr);
    assert_eq!(out.stderr.trim().lines().count(), 1, "one line: {}", out.stderr);
    assert_eq!(std::fs::read_dir(&set).unwrap().count(), 1, "nothing written");

    // A migration phasegate cannot hold (several statements, one of them
    // refused in a transaction, run outside one) is refused with its file
    // and line, and nothing is written either.
    let from = tmp.path().join("gm");
    std::fs::create_dir_all(&from).unwrap();
    std::fs::write(from.join("1_a.up.sql"), "CREATE TABLE a (x int);\nCREATE INDEX CONCURRENTLY a_x ON a (x);\n").unwrap();
    std::fs::write(from.join("1_a.down.sql"), "DROP TABLE a;\n").unwrap();
    let fresh = tmp.path().join("fresh");
    let out = import("golang-migrate", &from, &fresh, &[]);
    out.expect_exit(exit::ERROR);
    assert!(out.error_line().contains("1_a.up.sql:2: runs outside a transaction"), "{}", out.stderr);
    assert!(!fresh.join("phases.toml").exists() && !fresh.join("migrations").exists());
}

#[test]
fn sqlx_dbmate_and_liquibase_histories_import_and_verify_as_verify_from_does() {
    let o = imported_verifies_like_the_original("sqlx", "foreign/sqlx/migrations", &[]);
    assert_eq!(o.len(), 32);
    // dbmate grants on its own ledger table: import writes it as setup/.
    imported_verifies_like_the_original("dbmate", "foreign/quirks/dbmate", &[]);
    imported_verifies_like_the_original("liquibase", "foreign/liquibase/changelog", &[]);
}

#[test]
fn a_sqitch_history_imports_and_verifies_as_verify_from_does() {
    // A reworked change, a verify script per change (an after-migrate check), a revert that fails.
    let o = imported_verifies_like_the_original("sqitch", "foreign/sqitch", &[]);
    assert_eq!(o.len(), 8);
}
