//! Loading a set safely and running its checks without side effects
//! (tests/fixtures/loading and copies of it): a file's own transaction
//! control, and a rollback's way around the backup triggers, are refused at
//! load with their file and line and named by lint; a SQL-standard function
//! body runs whole; checks that write are rolled back with their savepoint
//! (migrate, rollback, validate and the rehearsal); a metric reads a numeric
//! wider than a bigint. Refused symlinks, FIFOs, oversized files, metric
//! shapes and check timeouts are rows of bad_input's table.

use std::path::Path;

use crate::harness::{assert_same_state, cli, copy_set, fixture, log_dir, run, server, Cmd, TestDb};

fn write(d: &Path, rel: &str, text: &str) {
    std::fs::write(d.join(rel), text).unwrap();
}

/// `lint --format json` of `dir`: its findings as (rule, file relative to
/// `dir`, line, severity), and the exit code.
fn lint(dir: &Path) -> (Vec<(String, String, u64, String)>, i32) {
    let out = cli(&["lint", "--format", "json", "--dir", dir.to_str().unwrap()], "");
    let prefix = format!("{}/", dir.display());
    let found = out.json()["findings"]
        .as_array()
        .expect("a findings array")
        .iter()
        .map(|f| {
            let file = f["file"].as_str().unwrap();
            (f["rule"].as_str().unwrap().to_string(), file.strip_prefix(&prefix).unwrap_or(file).to_string(), f["line"].as_u64().unwrap(), f["severity"].as_str().unwrap().to_string())
        })
        .collect();
    (found, out.code)
}

fn value_of(checks: &[serde_json::Value], name: &str) -> f64 {
    let c = checks.iter().find(|c| c["check"] == name).unwrap_or_else(|| panic!("no check {name} in {checks:#?}"));
    assert_eq!(c["verdict"], "PROCEED", "{c:#}");
    c["value"].as_f64().unwrap()
}

#[test]
fn function_bodies_run_whole_and_checks_that_write_change_nothing() {
    let db = TestDb::new("loading_checks");
    let dir = fixture("loading");
    let out = run(&db, &dir, &["migrate", "--yes", "--format", "json"], "");
    out.expect_exit(0);
    let checks = out.checks();
    // The purge check deleted every account inside its savepoint; the next
    // check still counts five, and so does the database after the commit.
    assert_eq!(value_of(&checks, "purge_is_undone"), 5.0);
    assert_eq!(value_of(&checks, "accounts_still_there"), 5.0);
    assert_eq!(value_of(&checks, "wide_number"), 123456789012345678901234567890.0);
    assert_eq!(db.count("SELECT count(*) FROM accounts"), 5);
    let mut c = db.client();
    let taxed: String = c.query_one("SELECT with_tax(10)::text || ' ' || two_steps()", &[]).unwrap().get(0);
    assert_eq!(taxed, "12.00 2", "both SQL-standard bodies were created whole");

    let out = run(&db, &dir, &["rollback", "--phase", "2", "--yes", "--format", "json"], "");
    out.expect_exit(0);
    assert_eq!(value_of(&out.checks(), "purge_after_rollback_is_undone"), 5.0);
    assert_eq!(db.count("SELECT count(*) FROM accounts WHERE balance = id * 10"), 5, "the rollback committed, the purge did not");

    // validate runs checks read-only: a check that writes is an error there.
    let out = run(&db, &dir, &["validate", "--phase", "1"], "");
    out.expect_exit(1);
    assert!(out.error_line().contains("validations/V2__tax_functions.sql:8: check `purge_is_undone`: cannot execute SELECT in a read-only transaction"), "{}", out.stderr);
    assert_eq!(db.count("SELECT count(*) FROM accounts"), 5);

    // The rehearsal runs the same checks in its own transactions: a purge
    // that stayed would fail a check or show as rows the rollback lost.
    let url = server().admin_url().to_string();
    let out = Cmd::new(&["verify", "--backend", "url", "--server-url", &url]).dir(&dir).logs(log_dir()).run();
    out.expect_exit(0);
}

#[test]
fn an_error_after_a_sql_standard_function_body_names_its_own_line() {
    let db = TestDb::new("loading_atomic_line");
    let set = copy_set(&fixture("loading"));
    let v2 = set.path().join("migrations/V2__tax_functions.sql");
    let text = std::fs::read_to_string(&v2).unwrap();
    std::fs::write(&v2, format!("{text}SELECT no_such_function();\n")).unwrap();
    let out = run(&db, set.path(), &["migrate", "--yes"], "");
    out.expect_exit(1);
    let line = out.error_line().replace(&format!("{}/", set.path().display()), "");
    assert!(line.starts_with("migrations/V2__tax_functions.sql:11:8: function no_such_function() does not exist"), "{line}");
    assert_eq!(db.count("SELECT count(*) FROM pg_proc WHERE proname IN ('with_tax', 'two_steps')"), 0, "V2's transaction left nothing");
}

#[test]
fn a_migration_with_its_own_commit_is_refused_at_load_and_lint_names_it() {
    let db = TestDb::new("loading_commit");
    let set = copy_set(&fixture("loading"));
    let p = set.path();
    run(&db, p, &["migrate", "--phase", "1"], "").expect_exit(0);
    // The case: the file commits half-way, then a critical check
    // fails; the report said "rolled back" while the first half stayed.
    write(p, "migrations/V3__double_balances.sql", "ALTER TABLE accounts ADD COLUMN a int;\nCOMMIT;\nALTER TABLE accounts ADD COLUMN b int;\n");
    write(p, "validations/V3__double_balances.sql", "-- check: always_fails\nSELECT 1;\n");
    let (before, ledger) = (db.snapshot(), db.ledger());
    for command in [&["migrate", "--yes"][..], &["status"]] {
        let out = run(&db, p, command, "");
        out.expect_exit(1);
        let line = out.error_line().replace(&format!("{}/", p.display()), "");
        assert!(line.starts_with("migrations/V3__double_balances.sql:2: `COMMIT` in a migration file: phasegate runs each migration in a transaction of its own"), "{command:?}: {line}");
    }
    assert_same_state(&before, &db.snapshot(), "after the refused migration");
    assert_eq!(ledger, db.ledger());
    assert_eq!(db.count("SELECT count(*) FROM information_schema.columns WHERE table_name = 'accounts' AND column_name IN ('a', 'b')"), 0);
    // (squawk adds prefer-robust-stmts for the statement after the COMMIT,
    // which it believes runs outside a transaction.)
    let (found, code) = lint(p);
    assert!(found.contains(&("transaction-control".to_string(), "migrations/V3__double_balances.sql".to_string(), 2, "error".to_string())), "{found:?}");
    assert_eq!(code, 1);

    // Every kind of transaction control, in a rollback file too.
    write(p, "migrations/V3__double_balances.sql", "UPDATE accounts SET balance = balance * 2 WHERE id IN (1, 2, 3, 4, 5);\n");
    for stmt in ["BEGIN", "start transaction", "END", "ROLLBACK", "ABORT", "SAVEPOINT s", "RELEASE SAVEPOINT s", "ROLLBACK TO SAVEPOINT s", "PREPARE TRANSACTION 'x'", "COMMIT PREPARED 'x'"] {
        write(p, "rollback/V3__double_balances.sql", &format!("UPDATE accounts SET balance = balance / 2 WHERE id IN (1, 2, 3, 4, 5);\n{stmt};\n"));
        let out = run(&db, p, &["migrate", "--yes"], "");
        out.expect_exit(1);
        let line = out.error_line().replace(&format!("{}/", p.display()), "");
        assert!(line.starts_with("rollback/V3__double_balances.sql:2: `") && line.contains("` in a rollback file"), "{stmt}: {line}");
    }
    assert_same_state(&before, &db.snapshot(), "after the refused rollbacks");
}

#[test]
fn a_rollback_that_gets_around_the_backup_triggers_is_refused_before_it_changes_anything() {
    let db = TestDb::new("loading_bypass");
    let set = copy_set(&fixture("loading"));
    let p = set.path();
    run(&db, p, &["migrate", "--yes"], "").expect_exit(0);
    let (before, ledger) = (db.snapshot(), db.ledger());
    let undo = "UPDATE accounts SET balance = balance / 2 WHERE id IN (1, 2, 3, 4, 5);\n";
    for (bypass, line) in [
        ("ALTER TABLE accounts DISABLE TRIGGER USER;\n", 1),
        ("ALTER TABLE accounts DISABLE TRIGGER ALL;\n", 1),
        ("ALTER TABLE accounts DISABLE TRIGGER accounts_audit;\n", 1),
        ("SET session_replication_role = replica;\n", 1),
        ("SET LOCAL session_replication_role TO 'replica';\n", 1),
        ("SELECT set_config('session_replication_role', 'replica', true);\n", 1),
        ("DO $$\nBEGIN\n    PERFORM set_config('session_replication_role', 'replica', true);\nEND $$;\n", 3),
    ] {
        write(p, "rollback/V3__double_balances.sql", &format!("{bypass}{undo}"));
        let out = run(&db, p, &["rollback", "--phase", "2", "--yes"], "");
        out.expect_exit(1);
        let got = out.error_line().replace(&format!("{}/", p.display()), "");
        assert!(
            got.starts_with(&format!("rollback/V3__double_balances.sql:{line}: ")) && got.contains("in a rollback file keeps phasegate's backup triggers from seeing the rows the rollback changes"),
            "{bypass}: {got}"
        );
        let (found, code) = lint(p);
        assert_eq!(found, [("trigger-bypass".to_string(), "rollback/V3__double_balances.sql".to_string(), line, "error".to_string())], "{bypass}");
        assert_eq!(code, 1);
    }
    assert_same_state(&before, &db.snapshot(), "after the refused rollbacks");
    assert_eq!(ledger, db.ledger(), "every rollback was refused before it ran");
    assert_eq!(db.count("SELECT count(*) FROM accounts WHERE balance = id * 20"), 5);

    // A forward file may: no backup trigger of phasegate's is in place
    // while it runs. Lint warns that the table's own triggers are skipped.
    write(p, "rollback/V3__double_balances.sql", undo);
    write(p, "migrations/V3__double_balances.sql", "ALTER TABLE accounts DISABLE TRIGGER USER;\nUPDATE accounts SET balance = balance * 2 WHERE id IN (1, 2, 3, 4, 5);\nALTER TABLE accounts ENABLE TRIGGER USER;\n");
    let (found, code) = lint(p);
    assert_eq!(found, [("trigger-bypass".to_string(), "migrations/V3__double_balances.sql".to_string(), 1, "warning".to_string())]);
    assert_eq!(code, 0);
}
