//! Gates, refusals and errors on small fixture sets: a failing critical check
//! leaves the database as it was, a warning stops for review, the lock is
//! exclusive, drift and missing pairs are reported, errors name file and line.

use crate::harness::json::{Check, PhaseState, StepStatus, Verdict};
use crate::harness::{copy_set, exit, fixture, log_dir, on, run, server, Cmd, TestDb};

#[test]
fn critical_check_failure_leaves_database_exactly_as_before() {
    let db = TestDb::new("critical");
    let dir = fixture("critical_check_fails");
    let out = run(&db, &dir, &["migrate", "--phase", "1"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    let (before, ledger_before) = (db.snapshot(), db.ledger());

    let out = run(&db, &dir, &["migrate", "--format", "json"], "");
    assert_eq!(out.code, exit::ROLLBACK, "a critical check failing must exit 4: {out:?}");
    let doc = out.report();
    assert_eq!(doc.verdict, Some(Verdict::Rollback));
    let failing: Vec<&Check> = doc.checks.iter().filter(|c| c.verdict == Verdict::Rollback).collect();
    assert_eq!(failing.len(), 1, "{doc:#?}");
    assert_eq!(failing[0].check, "every_domain_is_one_test");
    assert_eq!(failing[0].value, Some(2.0));
    assert_eq!(failing[0].evidence.len(), 2, "offending rows are shown as evidence");
    assert_eq!(doc.steps[0].status, StepStatus::Aborted);

    crate::harness::assert_same_state(&before, &db.snapshot(), "after the aborted migration");
    assert_eq!(ledger_before, db.ledger(), "the ledger must be unchanged");
}

#[test]
fn warning_check_commits_but_stops_for_review() {
    let db = TestDb::new("review");
    let dir = fixture("warning_check_reviews");
    let out = run(&db, &dir, &["migrate", "--yes", "--format", "json"], "");
    assert_eq!(out.code, exit::REVIEW, "REVIEW exits 3: {out:?}");
    let doc = out.report();
    assert_eq!(doc.verdict, Some(Verdict::Review));
    assert_eq!(doc.stopped_for_review, Some(2));
    let applied: Vec<i32> = doc.steps.iter().map(|s| s.version).collect();
    assert_eq!(applied, vec![1, 2], "phase 3 must not start after a REVIEW");

    let status = run(&db, &dir, &["status", "--format", "json"], "").report().phases();
    assert_eq!(status[1].state, PhaseState::Applied, "REVIEW commits the phase");
    assert_eq!(status[2].state, PhaseState::Pending);

    let out = run(&db, &dir, &["migrate", "--yes", "--accept-review"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    let status = run(&db, &dir, &["status", "--format", "json"], "").report().phases();
    assert_eq!(status[2].state, PhaseState::Applied);
}

#[test]
fn second_migrator_fails_fast_naming_the_holder() {
    let db = TestDb::new("lock");
    let mut holder = phasegate::connect(&db.url, "holder-under-test").unwrap();
    let pid: i32 = holder.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    phasegate::acquire_lock(&mut holder, std::time::Duration::ZERO).unwrap();

    let out = run(&db, &fixture("accounts"), &["migrate"], "");
    assert_eq!(out.code, exit::ERROR, "{out:?}");
    assert!(out.stderr.contains("holds the migration lock"), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("pid {pid}")), "the holder's pid is named: {}", out.stderr);
    assert!(out.stderr.contains("holder-under-test"), "the holder's application is named: {}", out.stderr);
    assert_eq!(out.stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "one error line: {}", out.stderr);
    assert!(db.client().query_opt("SELECT 1 FROM pg_tables WHERE tablename = 'accounts'", &[]).unwrap().is_none(), "nothing was applied");
    let audited: Vec<(i32, String)> = db.client().query("SELECT exit_code, error FROM phasegate_runs", &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(audited.len(), 1, "the refused run is audited: {audited:?}");
    assert!(audited[0].0 == 1 && audited[0].1.contains(&format!("holds the migration lock: pid {pid}")), "{audited:?}");

    phasegate::release_lock(&mut holder).unwrap();
    let out = run(&db, &fixture("accounts"), &["migrate", "--phase", "2"], "");
    assert_eq!(out.code, exit::OK, "once released, migrate proceeds: {out:?}");
}

#[test]
fn edited_migration_shows_as_drift_and_blocks_migrate() {
    let db = TestDb::new("drift");
    let set = copy_set(&fixture("accounts"));
    let out = run(&db, set.path(), &["migrate", "--phase", "1"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    let status = run(&db, set.path(), &["status", "--format", "json"], "");
    assert_eq!(status.code, exit::OK, "{status:?}");
    assert_eq!(status.report().drift().len(), 0);

    let f = set.path().join("migrations/V1__create_accounts.sql");
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, text.replace("'a@one.test'", "'x@one.test'")).unwrap();

    let status = run(&db, set.path(), &["status", "--format", "json"], "");
    assert_eq!(status.code, exit::ERROR, "drift exits non-zero: {status:?}");
    let drift = status.report().drift();
    assert_eq!(drift.len(), 1, "{drift:?}");
    assert_eq!(drift[0]["kind"], "forward_changed");
    assert_eq!(drift[0]["version"], 1);
    assert!(drift[0]["file"].as_str().unwrap().ends_with("migrations/V1__create_accounts.sql"));

    let out = run(&db, set.path(), &["migrate"], "");
    assert_eq!(out.code, exit::ERROR);
    assert!(out.stderr.contains("migration 1 was applied but its file has changed since"), "{}", out.stderr);
}

#[test]
fn missing_pairs_are_load_errors_naming_the_file() {
    let db = TestDb::new("pairs");
    for (remove, expected) in [
        ("rollback/V2__add_domain.sql", "rollback/V2__add_domain.sql: missing rollback for migration 2 of reversible phase 2"),
        ("validations/V1__create_accounts.sql", "validations/V1__create_accounts.sql: missing validation for migration 1"),
    ] {
        let set = copy_set(&fixture("accounts"));
        std::fs::remove_file(set.path().join(remove)).unwrap();
        for cmd in ["status", "migrate"] {
            let out = run(&db, set.path(), &[cmd], "");
            assert_eq!(out.code, exit::ERROR, "{out:?}");
            let err = out.stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_default();
            assert!(err.contains(&format!("/{expected}")), "{cmd}: `{err}` should name `{expected}`");
        }
    }
    assert!(db.client().query_opt("SELECT 1 FROM pg_tables WHERE tablename = 'accounts'", &[]).unwrap().is_none(), "nothing was applied");
}

#[test]
fn json_output_of_validate_and_status_carries_every_check() {
    let db = TestDb::new("json");
    let dir = fixture("accounts");
    run(&db, &dir, &["migrate", "--phase", "2"], "").expect_exit(exit::OK);
    for cmd in ["validate", "status"] {
        let out = run(&db, &dir, &[cmd, "--format", "json"], "");
        assert_eq!(out.code, exit::OK, "{out:?}");
        let doc = out.report();
        assert_eq!(doc.command, cmd);
        assert_eq!(doc.verdict, Some(Verdict::Proceed));
        let names: Vec<&str> = doc.checks.iter().map(|c| c.check.as_str()).collect();
        assert_eq!(names, ["domain_filled", "domain_share_percent"], "{cmd}: the current phase's checks");
        for c in &doc.checks {
            assert!(c.value.is_some(), "{cmd}: every check has a verdict and a value: {c:?}");
        }
        let share = doc.checks.iter().find(|c| c.check == "domain_share_percent").unwrap();
        assert!((share.value.unwrap() - 66.666).abs() < 0.01, "{share:?}");
    }
}

#[test]
fn sql_error_names_file_line_and_column_and_changes_nothing() {
    let db = TestDb::new("sqlerr");
    let dir = fixture("sql_error");
    run(&db, &dir, &["migrate", "--phase", "1"], "").expect_exit(exit::OK);
    let (before, ledger_before) = (db.snapshot(), db.ledger());
    let out = run(&db, &dir, &["migrate"], "");
    assert_eq!(out.code, exit::ERROR, "{out:?}");
    let err = out.stderr.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(err.contains("migrations/V2__add_domain.sql:4:46: syntax error at or near \"WHERE\""), "{err}");
    crate::harness::assert_same_state(&before, &db.snapshot(), "after the failed migration");
    assert_eq!(ledger_before, db.ledger());
}

#[test]
fn unreachable_database_is_one_line_without_the_password() {
    let out = on("postgres://app:hunter2secret@127.0.0.1:1/clinic", &fixture("accounts"), &["status"]).run();
    out.expect_exit(exit::ERROR);
    assert!(out.error_line().starts_with("cannot connect to postgres://app:***@127.0.0.1:1/clinic"), "{}", out.error_line());
    assert!(!out.stderr.contains("hunter2secret") && !out.stdout.contains("hunter2secret"));
}

#[test]
fn rollback_is_typed_confirmation_and_after_rollback_checks_run() {
    let db = TestDb::new("confirm");
    let dir = fixture("accounts");
    run(&db, &dir, &["migrate", "--phase", "2"], "").expect_exit(exit::OK);
    let out = run(&db, &dir, &["rollback", "--phase", "2"], "yes\n");
    assert_eq!(out.code, exit::ERROR, "a wrong answer refuses: {out:?}");
    assert!(out.stderr.contains("type `rollback phase 2`"), "{}", out.stderr);
    let out = run(&db, &dir, &["rollback", "--phase", "2", "--format", "json"], "rollback phase 2\n");
    assert_eq!(out.code, exit::OK, "{out:?}");
    let c = out.report().checks;
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].check, "domain_column_dropped");
    assert_eq!(c[0].when, "after-rollback");
    assert_eq!(c[0].verdict, Verdict::Proceed);
    let runs = run(&db, &dir, &["history", "--format", "json"], "").report().runs();
    let commands: Vec<&str> = runs.iter().map(|r| r.command.as_str()).collect();
    assert_eq!(commands, ["migrate", "rollback", "rollback"], "every command is audited");
    assert_eq!(runs[1].exit_code, exit::ERROR);
    assert_eq!(runs[2].os_user.as_deref(), Some("tester"));
}

#[test]
fn no_backend_says_what_to_install() {
    server(); // the engine works here; now ask for an image that cannot exist
    let out = Cmd::new(&["verify", "--backend", "docker", "--image", "phasegate/no-such-image:0"]).dir(&fixture("accounts")).logs(log_dir()).run();
    let error = out.expect_exit(exit::ERROR).error_line();
    assert!(error.contains("cannot start a PostgreSQL container from image phasegate/no-such-image:0"), "{error}");
    assert!(error.ends_with(phasegate_cli::testing::INSTALL_HINT), "{error}");
}

#[test]
fn dry_run_prints_the_sql_and_changes_nothing() {
    let db = TestDb::new("dryrun");
    let dir = fixture("accounts");
    run(&db, &dir, &["migrate", "--phase", "1"], "").expect_exit(exit::OK);
    let (before, ledger_before) = (db.snapshot(), db.ledger());
    let out = run(&db, &dir, &["migrate", "--dry-run"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    assert!(out.stdout.contains("-- phase 2 · V2 add_domain"), "{}", out.stdout);
    assert!(out.stdout.contains("UPDATE accounts SET domain = split_part(email, '@', 2);"));
    assert!(out.stdout.contains("ALTER TABLE accounts DROP COLUMN legacy;"));
    let out = run(&db, &dir, &["rollback", "--phase", "1", "--dry-run"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    assert!(out.stdout.contains("DROP TABLE accounts;"), "{}", out.stdout);
    crate::harness::assert_same_state(&before, &db.snapshot(), "after dry runs");
    assert_eq!(ledger_before, db.ledger());
    let runs = run(&db, &dir, &["history", "--format", "json"], "").report().runs();
    assert_eq!(runs.len(), 1, "dry runs write no audit row");
}

#[test]
fn new_scaffolds_a_trio_that_loads_and_applies() {
    let db = TestDb::new("scaffold");
    let set = copy_set(&fixture("accounts"));
    // Versions stay contiguous: only the last phase takes new migrations.
    let out = crate::harness::cli(&["new", "add_index", "--phase", "1", "--dir", set.path().to_str().unwrap()], "");
    assert_eq!(out.code, exit::ERROR, "{out:?}");
    assert!(out.stderr.contains("new migrations go in the last phase"), "{}", out.stderr);
    let out = crate::harness::cli(&["new", "add_notes", "--phase", "3", "--dir", set.path().to_str().unwrap()], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    assert!(out.stdout.contains("migrations/V4__add_notes.sql") && out.stdout.contains("validations/V4__add_notes.sql"));
    assert!(!set.path().join("rollback/V4__add_notes.sql").exists(), "phase 3 is irreversible: no rollback file");
    let loaded = phasegate::load_set(set.path()).unwrap();
    assert_eq!(loaded.phase(3).unwrap().steps.iter().map(|s| s.version).collect::<Vec<_>>(), vec![3, 4]);
    let out = run(&db, set.path(), &["migrate", "--yes"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
}

#[test]
fn plan_rates_each_clinic_phase() {
    let out = crate::harness::cli(&["plan", "--format", "json", "--dir", crate::harness::repo().to_str().unwrap()], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    let plan = out.report().plan();
    let risks: Vec<(&str, &str, bool, bool)> = plan.iter().map(|p| (p.name.as_str(), p.risk.as_str(), p.data_loss, p.rollback_discards)).collect();
    assert_eq!(
        risks,
        [
            ("baseline", "low", false, false),
            ("additive", "low", false, true),
            ("data", "medium", false, true),
            ("switchover", "medium", false, true),
            ("cleanup", "catastrophic", true, false)
        ]
    );
    let cleanup = &plan[4];
    assert!(cleanup.locks.iter().any(|l| l == "ACCESS EXCLUSIVE"), "{cleanup:?}");
}

#[test]
fn a_folder_without_a_set_is_one_line_and_gets_no_logs_folder() {
    let empty = tempfile::tempdir().unwrap();
    for args in [&["migrate"][..], &["status"], &["rollback", "--phase", "1", "--yes"], &["validate"]] {
        let out = Cmd::new(args).url("postgres://app@127.0.0.1:1/nowhere").dir(empty.path()).run();
        let error = out.expect_exit(exit::ERROR).error_line();
        assert_eq!(error, format!("no migration set in {}: phases.toml not found; pass --dir", empty.path().display()), "{args:?}");
    }
    let out = Cmd::new(&["lint"]).dir(empty.path()).run();
    out.expect_exit(exit::ERROR);
    assert!(out.stdout.contains("no migration set in"), "{}", out.stdout);
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0, "nothing was created in a folder without a set");
}

/// Checks before a no-transaction step run on a session outside any
/// transaction, so they open a transaction of their own (`check::Scope` for
/// a `Client`: `BEGIN`, the timeout and the query in one message, then
/// `ROLLBACK`): an assertion's offending rows come back as evidence, and a
/// check's own `-- timeout:` stops a slow one there, as an error at its
/// file and line, with the database as before.
#[test]
fn checks_before_a_no_transaction_step_run_in_a_transaction_of_their_own() {
    let db = TestDb::new("outside_checks");
    let dir = tempfile::tempdir().unwrap();
    let files = [
        (
            "phases.toml",
            "[[phase]]\nid = 0\nname = \"baseline\"\nsummary = \"t\"\nversions = [1]\nreversible = false\nreason = \"the existing schema\"\nbaseline = true\n\n\
             [[phase]]\nid = 1\nname = \"index\"\nsummary = \"an index built concurrently\"\nversions = [2]\n",
        ),
        (
            "migrations/V1__t.sql",
            "CREATE TABLE t (id integer PRIMARY KEY, v text NOT NULL);\nINSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 10) g;\n\
             CREATE FUNCTION add_row() RETURNS integer LANGUAGE sql AS $$ INSERT INTO t VALUES (100, 'written by a check') RETURNING id $$;\n",
        ),
        ("validations/V1__t.sql", "-- check: t_exists\nSELECT 1 WHERE to_regclass('t') IS NULL;\n"),
        ("migrations/V2__t_v.sql", "-- phasegate: no-transaction\nCREATE INDEX CONCURRENTLY t_v_idx ON t (v);\n"),
        ("rollback/V2__t_v.sql", "-- phasegate: no-transaction\nDROP INDEX CONCURRENTLY t_v_idx;\n"),
        (
            "validations/V2__t_v.sql",
            "-- check: slow_before\n-- when: before-migrate\n-- timeout: 100ms\nSELECT 1 FROM pg_sleep(5) WHERE random() < 0;\n\n\
             -- check: first_rows_before\n-- when: before-migrate\n-- severity: warning\nSELECT id, v FROM t WHERE id <= 3;\n\n\
             -- check: writes_before\n-- when: before-migrate\nSELECT 1 WHERE add_row() < 0;\n\n\
             -- check: index_valid\nSELECT 1 WHERE NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indexrelid = to_regclass('t_v_idx') AND i.indisvalid);\n\n\
             -- check: index_gone\n-- when: after-rollback\nSELECT 1 WHERE to_regclass('t_v_idx') IS NOT NULL;\n",
        ),
    ];
    for (rel, text) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let out = run(&db, dir.path(), &["migrate", "--phase", "0"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    let (before, ledger_before) = (db.snapshot(), db.ledger());

    // Its timeout applies: the sleep is cancelled after 100 ms, not waited out.
    let out = run(&db, dir.path(), &["migrate"], "");
    assert_eq!(out.code, exit::ERROR, "{out:?}");
    assert!(out.stderr.contains("check `slow_before` timed out after 100ms"), "{}", out.stderr);
    assert!(out.stderr.contains("validations/V2__t_v.sql:4"), "the check's query is at line 4: {}", out.stderr);
    crate::harness::assert_same_state(&before, &db.snapshot(), "after the check timed out");
    assert_eq!(ledger_before, db.ledger(), "the ledger must be unchanged");

    let v = dir.path().join("validations/V2__t_v.sql");
    let text = std::fs::read_to_string(&v).unwrap();
    std::fs::write(&v, text.replace("pg_sleep(5)", "pg_sleep(0)")).unwrap();
    let out = run(&db, dir.path(), &["migrate", "--format", "json"], "");
    assert_eq!(out.code, exit::REVIEW, "the warning check's rows ask for review: {out:?}");
    let doc = out.report();
    let check = |name: &str| doc.checks.iter().find(|c| c.check == name).unwrap_or_else(|| panic!("no check {name}: {doc:#?}"));
    let first = check("first_rows_before");
    assert_eq!((first.verdict, first.value), (Verdict::Review, Some(3.0)), "{first:?}");
    let ids: Vec<i64> = first.evidence.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![1, 2, 3], "the offending rows, as JSON objects: {first:?}");
    assert_eq!(check("slow_before").verdict, Verdict::Proceed);
    assert_eq!(check("index_valid").verdict, Verdict::Proceed);
    assert_eq!(doc.steps[0].status, StepStatus::Done, "a REVIEW before the step does not stop it");
    // What a check writes is rolled back with its transaction.
    assert_eq!(check("writes_before").verdict, Verdict::Proceed);
    let mut c = phasegate::connect(&db.url, "test").unwrap();
    let rows: i64 = c.query_one("SELECT count(*) FROM t", &[]).unwrap().get(0);
    assert_eq!(rows, 10, "the row the check's function inserted must be gone");
}
