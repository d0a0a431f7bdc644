//! Lock tracing (docs/safety.md): every statement's relation locks and how long
//! each was held, in migrate, rollback and verify, and `--max-lock-hold`
//! turning a longer hold of a lock that blocks writers into REVIEW at the
//! statement's file and line. The fixture builds an index without
//! CONCURRENTLY on a 200k-row table: its SHARE lock is held for the whole
//! build, orders of magnitude over the 1 ms limit the tests set.

use crate::harness::json::{Blocks, Lock, Report, Verdict};
use crate::harness::{exit, fixture, on, server, Cmd, TestDb};

/// The locks among `locks` whose relation and mode match.
fn locks_of<'a>(locks: &'a [Lock], relation: &str, mode: &str) -> Vec<&'a Lock> {
    locks.iter().filter(|l| l.relation == relation && l.mode == mode).collect()
}

/// The locks of the rehearsal step `name` of phase `phase` in verify's JSON.
#[track_caller]
fn rehearsal_locks<'a>(doc: &'a Report, phase: u32, name: &str) -> &'a [Lock] {
    let p = doc.rehearsal().phases.iter().find(|p| p.phase == phase).unwrap_or_else(|| panic!("no phase {phase}"));
    &p.step(name).locks
}

fn verify(format: &str, extra: &[&str]) -> crate::harness::Output {
    let url = server().admin_url().to_string();
    Cmd::new(&["verify", "--backend", "url", "--server-url", &url, "--format", format]).args(extra).dir(&fixture("lock_hold")).logs(crate::harness::log_dir()).run()
}

#[test]
fn verify_names_a_blocking_index_build_over_the_limit_at_its_file_and_line() {
    let dir = fixture("lock_hold");
    let create_index = dir.join("migrations/V2__events_kind_index.sql");

    // Without a limit every lock is recorded and nothing is judged.
    let out = verify("json", &[]);
    out.expect_exit(exit::OK);
    let doc = out.report();
    let migrate = rehearsal_locks(&doc, 1, "migrate");
    let build = locks_of(migrate, "events", "SHARE");
    assert_eq!(build.len(), 1, "{migrate:#?}");
    assert_eq!(build[0].file, create_index.display().to_string());
    assert_eq!(build[0].line, 3, "the CREATE INDEX, after two comment lines");
    assert_eq!(build[0].statement, "CREATE INDEX events_kind_idx");
    assert_eq!(build[0].blocks, Blocks::Writers);
    assert!(build[0].held_ms > 1.0, "{:?}", build[0]);
    // The index itself is new in the migrating transaction: nobody can wait for it.
    assert!(migrate.iter().all(|l| l.relation != "events_kind_idx"), "{migrate:#?}");
    // The rehearsal's own change log (snapshot/touch.rs) is not the
    // migration's doing: its locks never show.
    let all = doc.rehearsal().phases.iter().flat_map(|p| &p.steps).flat_map(|s| &s.locks);
    assert!(all.clone().count() > 0 && all.clone().all(|l| !l.relation.starts_with("phasegate_touch.")), "{:#?}", all.collect::<Vec<_>>());
    // DROP INDEX takes ACCESS EXCLUSIVE on the table, which blocks readers too.
    let drop = locks_of(rehearsal_locks(&doc, 1, "rollback"), "events", "ACCESS EXCLUSIVE");
    assert_eq!((drop.len(), drop[0].blocks, drop[0].line), (1, Blocks::Readers, 1));
    // Outside a transaction (sampled): the concurrent build blocks nobody.
    let online = rehearsal_locks(&doc, 2, "migrate");
    let concurrent = locks_of(online, "events", "SHARE UPDATE EXCLUSIVE");
    assert_eq!((concurrent.len(), concurrent[0].blocks), (1, Blocks::None), "{online:#?}");
    // A backfill of four batches: one entry for its statement, the longest.
    let batch = locks_of(online, "events", "ROW EXCLUSIVE");
    assert_eq!(batch.len(), 1, "{online:#?}");
    assert_eq!(batch[0].statement, "UPDATE events SET flag = true");
    // The rollback's backup triggers hold SHARE ROW EXCLUSIVE until it commits.
    let backup = locks_of(rehearsal_locks(&doc, 2, "rollback"), "events", "SHARE ROW EXCLUSIVE");
    assert_eq!(backup.len(), 1);
    assert!(backup[0].statement.contains("backup triggers"), "{:?}", backup[0]);
    assert!(doc.rehearsal().phases.iter().all(|p| p.findings.is_empty()), "{doc:#?}");

    // With a limit the build is a REVIEW (exit 3), named at its file and line.
    let out = verify("text", &["--max-lock-hold", "1ms"]);
    out.expect_exit(exit::REVIEW);
    println!("{}", out.stdout);
    let at = format!("{}:3", create_index.display());
    let row = out.stdout.lines().find(|l| l.starts_with("1    blocking-index") && l.contains(" migrate ")).unwrap_or_else(|| panic!("no lock row for phase 1 migrate: {}", out.stdout));
    assert!(row.contains("events SHARE ") && row.ends_with(&at), "{row}");
    assert!(out.stdout.contains("LONGEST BLOCKING LOCK"), "{}", out.stdout);
    let finding = out.stdout.lines().find(|l| l.contains("lock held too long (migrate)")).unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(finding.starts_with("warning: phase 1 blocking-index: lock held too long (migrate): events SHARE for "), "{finding}");
    assert!(finding.ends_with(&format!("(limit 1.0 ms) by `CREATE INDEX events_kind_idx` at {at}")), "{finding}");
}

#[test]
fn migrate_over_the_limit_is_a_review_naming_the_statement_and_rollback_records_its_locks() {
    let db = TestDb::new("locks_migrate");
    let dir = fixture("lock_hold");
    let out = on(&db, &dir, &["migrate", "--phase", "1", "--max-lock-hold", "1ms", "--format", "json"]).run();
    out.expect_exit(exit::REVIEW);
    let doc = out.report();
    let review: Vec<_> = doc.checks.iter().filter(|c| c.check == "max-lock-hold").collect();
    assert_eq!(review.len(), 1, "{doc:#?}");
    let c = review[0];
    assert_eq!((c.verdict, c.version, c.when.as_str()), (Verdict::Review, 2, "after-migrate"));
    assert_eq!(c.file, dir.join("migrations/V2__events_kind_index.sql").display().to_string());
    assert_eq!(c.line, 3);
    assert!(c.value.unwrap() > 1.0, "{c:?}");
    assert_eq!(c.evidence[0]["relation"], "events");
    assert_eq!(c.evidence[0]["mode"], "SHARE");
    let v2 = doc.step(2);
    assert_eq!(locks_of(&v2.locks, "events", "SHARE").len(), 1, "{v2:#?}");

    // The text output names the lock under its step, and the check.
    let out = on(&db, &dir, &["rollback", "--phase", "1", "--yes", "--format", "json"]).run();
    out.expect_exit(exit::OK);
    let v2 = &out.report().steps[0];
    let drop = locks_of(&v2.locks, "events", "ACCESS EXCLUSIVE");
    assert_eq!((drop.len(), drop[0].statement.as_str()), (1, "DROP INDEX events_kind_idx"), "{v2:#?}");
    let out = on(&db, &dir, &["migrate", "--phase", "1", "--max-lock-hold", "1ms"]).run();
    out.expect_exit(exit::REVIEW);
    println!("{}", out.stdout);
    let line = out.stdout.lines().find(|l| l.contains("longest blocking lock:")).unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(line.contains("events SHARE ") && line.contains("(blocks writers) by `CREATE INDEX events_kind_idx` at "), "{line}");
    assert!(line.ends_with("migrations/V2__events_kind_index.sql:3"), "{line}");
    assert!(out.stdout.lines().any(|l| l.starts_with("V2") && l.contains("max-lock-hold") && l.ends_with("REVIEW")), "{}", out.stdout);
}

/// Checks verify's JSON of a shipped set (every rehearsal step carries its
/// `locks`: the typed reader requires them); prints each migrate and rollback step's longest blocking lock
/// (`cargo test -- --show-output` shows them; their times are not asserted);
/// and each `(phase, step, relation, mode, "file:line")` expected is among
/// the step's locks, the file named by the end of its path (the line may be
/// left out).
#[track_caller]
pub(crate) fn assert_locks_of_a_shipped_set(doc: &Report, set: &str, expected: &[(u32, &str, &str, &str, &str)]) {
    println!("longest blocking lock per step, verify of {set}:");
    for p in &doc.rehearsal().phases {
        for s in p.steps.iter().filter(|s| ["migrate", "rollback"].contains(&s.step.as_str())) {
            // The first of the longest, as verify's table picks it (a table before its index).
            let longest = s.locks.iter().filter(|l| l.blocks != Blocks::None).fold(None, |best: Option<&Lock>, l| match best {
                Some(b) if b.held_ms >= l.held_ms => Some(b),
                _ => Some(l),
            });
            let cell = match longest {
                Some(l) => format!("{} {} {} ms at {}:{}", l.relation, l.mode, l.held_ms, l.file, l.line),
                None => "-".into(),
            };
            println!("  phase {} {:<8} {cell}", p.phase, s.step);
        }
    }
    for (phase, step, relation, mode, at) in expected {
        let locks = rehearsal_locks(doc, *phase, step);
        let found = locks_of(locks, relation, mode).iter().any(|l| if at.contains(':') { format!("{}:{}", l.file, l.line).ends_with(at) } else { l.file.ends_with(at) });
        assert!(found, "{set}: phase {phase} {step} has no {relation} {mode} at {at}: {locks:#?}");
    }
}

/// The progress lines the engine says.
#[derive(Default)]
struct Lines(Vec<String>);

impl phasegate::Ui for Lines {
    fn confirm(&mut self, _prompt: &str, _expected: &str) -> bool {
        true
    }
    fn progress(&mut self, line: &str) {
        self.0.push(line.to_string());
    }
}

#[test]
fn a_migration_goes_on_untraced_when_no_observer_can_connect_and_says_so_once() {
    let db = TestDb::new("locks_no_observer");
    let set = phasegate::load_set(&fixture("lock_hold")).unwrap();
    let opts = phasegate::Options { monitor_url: Some("postgres://nobody@127.0.0.1:1/none".into()), max_lock_hold: Some(std::time::Duration::from_millis(1)), ..Default::default() };
    let mut ui = Lines::default();
    let out = phasegate::migrate(&mut db.client(), &set, phasegate::Target::Phase(1), &opts, &mut ui).unwrap();
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!(out.steps.len(), 2);
    assert!(out.steps.iter().all(|s| s.locks.is_empty() && s.status == phasegate::StepStatus::Done), "{:?}", out.steps);
    assert_eq!(out.verdict(), phasegate::Verdict::Proceed, "nothing traced, nothing judged");
    let said: Vec<&String> = ui.0.iter().filter(|l| l.contains("lock tracing")).collect();
    assert_eq!(said.len(), 1, "{:?}", ui.0);
    assert!(said[0].starts_with("lock tracing is off (no lock is recorded): "), "{}", said[0]);
}
