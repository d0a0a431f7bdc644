//! One migrator at a time (docs/safety.md, docs/targets.md): eight `phasegate migrate`
//! processes started at once against one database. Each migration is applied
//! exactly once and the ledger stays consistent. With the default
//! `--lock-wait 0s` every loser exits 1 at once naming the holder; with
//! `--lock-wait 60s` all eight succeed in turn.

use crate::crash::references;
use crate::harness::{assert_same_state, exit, fixture, on, Child, Output, TestDb};

const PROCESSES: usize = 8;

/// What one migrator did, read from its output.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Role {
    /// Applied migrations (exit 0).
    Applied,
    /// Found nothing to migrate (exit 0).
    NothingToDo,
    /// Failed fast on the lock, naming the holder (exit 1).
    Refused,
}

/// Starts eight migrators at once on a fresh database and checks: every
/// process ends in a role `allowed` permits, a refusal is one error line
/// naming a holder that is one of the eight, each version is applied by
/// exactly one process (its output and the audit log agree), and the
/// database ends in the state of one uninterrupted migrate.
#[track_caller]
fn race(lock_wait: &str, allowed: &[Role]) {
    let refs = references();
    let db = TestDb::new("race");
    let dir = fixture("crash");
    let logs = crate::harness::log_dir().join("race");
    let cmd = on(&db, &dir, &["migrate", "--lock-wait", lock_wait]).logs(logs);
    let children: Vec<Child> = (0..PROCESSES).map(|_| cmd.spawn()).collect();
    let pids: Vec<u32> = children.iter().map(|c| c.pid).collect();
    let outputs: Vec<Output> = children.into_iter().map(Child::wait).collect();

    let mut applied_by: std::collections::BTreeMap<i32, Vec<u32>> = Default::default();
    let mut roles = Vec::new();
    for (pid, out) in pids.iter().zip(&outputs) {
        let errors: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert!(!out.stderr.contains("panicked"), "pid {pid} panicked: {out:?}");
        let applied: Vec<i32> = out
            .stdout
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("apply V"))
            .map(|rest| rest.split_whitespace().next().unwrap().parse().unwrap())
            .collect();
        for v in &applied {
            applied_by.entry(*v).or_default().push(*pid);
        }
        let role = match out.code {
            exit::OK if !applied.is_empty() => Role::Applied,
            exit::OK if out.stdout.contains("nothing to migrate") => Role::NothingToDo,
            exit::ERROR => {
                assert_eq!(errors.len(), 1, "pid {pid}: one error line: {out:?}");
                let holder = errors[0]
                    .strip_prefix("error: another phasegate run holds the migration lock: pid ")
                    .unwrap_or_else(|| panic!("pid {pid}: not a lock refusal: {}", errors[0]));
                let named: Vec<u32> = pids.iter().copied().filter(|p| holder.contains("(phasegate migrate (") && holder.contains(&format!(" pid {p})"))).collect();
                assert_eq!(named.len(), 1, "pid {pid}: the holder should be one of the migrators {pids:?}: {}", errors[0]);
                assert!(applied.is_empty(), "pid {pid} was refused but applied {applied:?}");
                Role::Refused
            }
            _ => panic!("pid {pid}: unexpected outcome: {out:?}"),
        };
        assert!(allowed.contains(&role), "pid {pid} ended as {role:?}, allowed {allowed:?}: {out:?}");
        roles.push(role);
    }

    let versions: Vec<i32> = (1..=6).collect();
    assert_eq!(applied_by.keys().copied().collect::<Vec<_>>(), versions, "every migration applied: {applied_by:?}");
    for (v, by) in &applied_by {
        assert_eq!(by.len(), 1, "V{v} applied by {by:?}");
    }

    // The ledger and the audit log tell the same story.
    let mut c = db.client();
    let history: Vec<i32> = c.query("SELECT version FROM refinery_schema_history ORDER BY version", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    let stored: Vec<i32> = c.query("SELECT version FROM phasegate_applied ORDER BY version", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!((&history, &stored), (&versions, &versions), "the ledger holds each version once");
    let runs: Vec<(i32, i64, Option<String>)> = c
        .query(
            "SELECT exit_code, (SELECT count(*) FROM jsonb_array_elements(steps) s WHERE s->>'status' = 'done'), error
             FROM phasegate_runs WHERE command = 'migrate'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    for (code, _, error) in &runs {
        assert!(*code != 1 || error.as_deref().is_some_and(|e| e.contains("holds the migration lock")), "a refused run's audit row names the holder: {runs:?}");
    }
    assert_eq!(runs.len(), PROCESSES, "every migrator wrote its audit row: {runs:?}");
    assert_eq!(runs.iter().map(|r| r.1).sum::<i64>(), versions.len() as i64, "the audit log counts each step done once: {runs:?}");
    let mut codes: Vec<i32> = runs.iter().map(|r| r.0).collect();
    let mut expected: Vec<i32> = outputs.iter().map(|o| o.code).collect();
    codes.sort();
    expected.sort();
    assert_eq!(codes, expected, "audited exit codes match the processes'");
    assert_same_state(&refs.after[3], &db.snapshot(), "after the race against one uninterrupted migrate");

    let count = |r: Role| roles.iter().filter(|x| **x == r).count();
    assert_eq!(count(Role::Applied), 1, "one migrator applies everything: {roles:?}");
    eprintln!(
        "concurrency (--lock-wait {lock_wait}): {PROCESSES} migrators: {} applied, {} refused naming the holder, {} found nothing to do; each of {} migrations applied once; failures 0",
        count(Role::Applied),
        count(Role::Refused),
        count(Role::NothingToDo),
        versions.len()
    );
}

#[test]
fn eight_migrators_fail_fast_and_apply_each_migration_once() {
    // A process that starts after the winner finished finds nothing to do.
    race("0s", &[Role::Applied, Role::Refused, Role::NothingToDo]);
}

#[test]
fn eight_migrators_waiting_for_the_lock_all_succeed() {
    race("60s", &[Role::Applied, Role::NothingToDo]);
}

/// A run that has ended holds the migration lock no longer: it releases
/// the lock on the server before it returns, instead of leaving that to the
/// server noticing the closed connection a moment later (when the next run,
/// a CI step or a fleet's next database on the same server, was refused by
/// a run that had finished). Checked right after each of 20 runs, from a
/// session of the test's own.
#[test]
fn a_finished_run_holds_no_migration_lock() {
    let db = TestDb::new("lock_released");
    let dir = fixture("crash");
    on(&db, &dir, &["migrate"]).run().expect_exit(exit::OK);
    let mut watcher = db.client();
    for round in 0..20 {
        on(&db, &dir, &["migrate"]).run().expect_exit(exit::OK);
        let held: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND ((classid::bigint << 32) | objid::bigint) = $1
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[&phasegate::LOCK_KEY],
            )
            .unwrap()
            .get(0);
        assert_eq!(held, 0, "round {round}: the run ended but its migration lock is still held");
    }
}
