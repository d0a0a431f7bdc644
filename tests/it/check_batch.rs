//! Checks that share a message (check/batch.rs): in a transaction, a check
//! that fails while it runs is named from a mark the message keeps outside
//! the checks' savepoints, so the group is not run again one check at a
//! time, and a check that timed out does not wait out its timeout twice.

use crate::harness::{copy_set, exit, fixture, run, TestDb};

#[test]
fn a_check_that_times_out_after_another_runs_once() {
    let db = TestDb::new("check_once");
    // Counts the check's runs: a sequence is not rolled back with the
    // check's savepoint, nor with the step's transaction.
    db.client().batch_execute("CREATE SEQUENCE check_runs").unwrap();
    let dir = copy_set(&fixture("bad_input"));
    let validation = dir.path().join("validations/V2__add_tier.sql");
    let text = std::fs::read_to_string(&validation).unwrap();
    let slow = "-- check: counted_and_slow\n-- timeout: 1s\nSELECT CASE WHEN nextval('check_runs') > 0 THEN pg_sleep(60) END;\n\n";
    let (first, rest) = text.split_at(text.find("-- check: gold_share").unwrap());
    std::fs::write(&validation, format!("{first}{slow}{rest}")).unwrap();
    let out = run(&db, dir.path(), &["migrate", "--phase", "2"], "");
    assert_eq!(out.code, exit::ERROR, "{out:?}");
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains("validations/V2__add_tier.sql:7:") && said.contains("check `counted_and_slow` timed out after 1s"), "{said}");
    assert_eq!(db.count("SELECT last_value FROM check_runs"), 1, "the check ran once: {said}");
    assert_eq!(db.count("SELECT count(*) FROM phasegate_applied WHERE version = 2"), 0, "V2 is not recorded");
}
