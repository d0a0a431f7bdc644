//! `health`: one line per round in watch mode, and a non-zero exit when the
//! probe crosses its threshold (a slow probe, or one blocked by a held lock).

use crate::harness::{exit, fixture, on, run, TestDb};

fn round_lines(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.contains(" round ")).collect()
}

#[test]
fn health_watch_prints_one_line_per_round_and_exits_zero_when_healthy() {
    let db = TestDb::new("health_ok");
    let dir = fixture("accounts");
    run(&db, &dir, &["migrate", "--phase", "2"], "").expect_exit(exit::OK);
    let out = run(&db, &dir, &["health", "--watch", "--interval", "0s", "--rounds", "3"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    let lines = round_lines(&out.stdout);
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    for (n, l) in lines.iter().enumerate() {
        assert!(l.contains(&format!("round {}", n + 1)) && l.contains("probe ok") && l.contains("checks ok") && l.ends_with("=> PROCEED"), "{l}");
    }
}

#[test]
fn health_watch_exits_non_zero_when_a_slow_probe_crosses_its_threshold() {
    let db = TestDb::new("health_slow");
    let out = run(&db, &fixture("accounts"), &["health", "--watch", "--interval", "0s", "--rounds", "2", "--probe", "SELECT pg_sleep(0.3)", "--warn", "100ms", "--fail", "200ms"], "");
    assert_eq!(out.code, exit::ROLLBACK, "a probe over the failure threshold exits 4: {out:?}");
    let lines = round_lines(&out.stdout);
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(lines.iter().all(|l| l.contains("probe FAIL") && l.ends_with("=> ROLLBACK")), "{}", out.stdout);

    let out = run(&db, &fixture("accounts"), &["health", "--probe", "SELECT pg_sleep(0.15)", "--warn", "100ms", "--fail", "1s", "--format", "json"], "");
    assert_eq!(out.code, exit::REVIEW, "over the warning threshold only exits 3: {out:?}");
    assert_eq!(out.report().rounds()[0].findings[1].level, "warn");
}

#[test]
fn health_fails_when_a_held_lock_blocks_the_probe() {
    let db = TestDb::new("health_lock");
    let dir = fixture("accounts");
    run(&db, &dir, &["migrate", "--phase", "1"], "").expect_exit(exit::OK);
    let mut holder = db.client();
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE").unwrap();
    let out = run(&db, &dir, &["health", "--probe", "SELECT count(*) FROM accounts", "--warn", "100ms", "--fail", "300ms", "--no-checks"], "");
    tx.rollback().unwrap();
    assert_eq!(out.code, exit::ROLLBACK, "{out:?}");
    assert!(out.stdout.contains("cancelled after 600ms"), "{}", out.stdout);
    let out = run(&db, &dir, &["health", "--probe", "SELECT count(*) FROM accounts", "--warn", "100ms", "--fail", "300ms"], "");
    assert_eq!(out.code, exit::OK, "once the lock is released the probe is fine: {out:?}");
}

#[test]
fn health_exits_1_naming_no_password_when_the_database_is_unreachable() {
    let out = on("postgres://app:s3cret@127.0.0.1:1/nowhere", &fixture("accounts"), &["health"]).run();
    out.expect_exit(exit::ERROR);
    assert!(out.stdout.contains("connectivity       FAIL"), "{}", out.stdout);
    assert!(out.stdout.contains("; verdict ERROR"), "an unreachable database is an error, not a ROLLBACK: {}", out.stdout);
    assert!(!out.stdout.contains("s3cret") && !out.stderr.contains("s3cret"), "{out:?}");
}
