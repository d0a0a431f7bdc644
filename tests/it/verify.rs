//! verify: each defect fixture is classified exactly; the clinic set is
//! restored phase by phase; foreign projects (diesel, sqlx) get the same
//! per-migration result as a `pg_dump --schema-only` round trip.

use std::path::Path;

use crate::harness::json::PhaseResult::{ForwardOnly, Restored};
use crate::harness::json::{Against, Finding, PhaseRehearsal, PhaseResult, Rehearsal};
use crate::harness::{cli, exit, fixture, repo, server, Output, TestDb};

/// Runs verify on the shared test server (url backend).
pub(crate) fn verify(args: &[&str]) -> Output {
    let logs = crate::harness::log_dir();
    let mut full = vec!["verify", "--backend", "url", "--server-url", server().admin_url(), "--format", "json", "--log-dir", logs.to_str().unwrap()];
    full.extend_from_slice(args);
    cli(&full, "")
}

/// The findings of a verify run as stable lines: `phase kind against: detail`.
fn findings(out: &Output, strip: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for p in &out.report().rehearsal().phases {
        for f in &p.findings {
            let against = f.against().map(|a| format!(" {}", a.as_str())).unwrap_or_default();
            let detail = match f {
                Finding::SchemaDiffers { objects, .. } => objects.join(", "),
                Finding::RowsChanged { table, columns, rows_before, rows_after, .. } => format!("{table} {rows_before}->{rows_after} [{}]", columns.join(", ")),
                Finding::RollbackFailed { error } | Finding::ReapplyFailed { error } | Finding::MigrateFailed { error } => error.replace(strip, ""),
                _ => String::new(),
            };
            lines.push(format!("{} {}{against}: {detail}", p.phase, f.kind()).trim_end_matches(": ").to_string());
        }
    }
    lines
}

/// Each phase's result in a verify run's JSON.
#[track_caller]
fn results(out: &Output) -> Vec<PhaseResult> {
    out.report().rehearsal().phases.iter().map(|p| p.result).collect()
}

/// Verifies a fixture set and asserts its exit code and exact findings.
#[track_caller]
fn check(name: &str, extra: &[&str], exit: i32, expected: &[&str]) {
    let dir = fixture(name);
    let mut args = vec!["--dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = verify(&args);
    let strip = format!("{}/", dir.display());
    assert_eq!(findings(&out, &strip), expected, "{name}: {}", out.stdout);
    assert_eq!(out.code, exit, "{name}: {out:?}");
}

#[test]
fn rollback_that_leaves_an_index() {
    check(
        "verify_leaves_index",
        &[],
        exit::MISMATCH,
        &[
            "1 schema_differs before_phase: table public.customers",
            "1 reapply_failed: migrations/V2__change.sql:1: relation \"customers_name_idx\" already exists (SQLSTATE 42P07)",
        ],
    );
}

#[test]
fn rollback_that_leaves_a_function() {
    check(
        "verify_leaves_function",
        &[],
        exit::MISMATCH,
        &[
            "1 schema_differs before_phase: function public.customer_label(public.customers)",
            "1 reapply_failed: migrations/V2__change.sql:1: function \"customer_label\" already exists with same argument types (SQLSTATE 42723)",
        ],
    );
}

#[test]
fn rollback_that_leaves_a_type() {
    check(
        "verify_leaves_type",
        &[],
        exit::MISMATCH,
        &["1 schema_differs before_phase: type public.tier", "1 reapply_failed: migrations/V2__change.sql:1: type \"tier\" already exists (SQLSTATE 42710)"],
    );
}

#[test]
fn rollback_that_leaves_a_constraint() {
    check(
        "verify_leaves_constraint",
        &[],
        exit::MISMATCH,
        &[
            "1 schema_differs before_phase: table public.customers",
            "1 reapply_failed: migrations/V2__change.sql:1: constraint \"customers_email_at\" for relation \"customers\" already exists (SQLSTATE 42710)",
        ],
    );
}

#[test]
fn rollback_that_loses_rows_of_a_pre_existing_table() {
    check(
        "verify_loses_rows",
        &[],
        exit::MISMATCH,
        &[
            "1 rows_changed before_phase: public.customers 3->2 [id, email, name, legacy_code, created_on]",
            "1 rows_changed first_forward: public.customers 4->3 [id, email, name, legacy_code, created_on]",
        ],
    );
}

#[test]
fn forward_migration_that_rewrites_pre_existing_data() {
    check("verify_rewrites_data", &[], exit::MISMATCH, &["1 rows_changed before_phase: public.customers 3->3 [email]"]);
}

#[test]
fn column_order_only_is_a_warning_unless_strict() {
    // Re-applying drops the column again, so the re-applied state matches the first forward run.
    check("verify_column_order", &[], exit::OK, &["1 column_order_only before_phase"]);
    check("verify_column_order", &["--strict"], exit::MISMATCH, &["1 column_order_only before_phase"]);
}

#[test]
fn down_script_that_fails() {
    check(
        "verify_rollback_fails",
        &[],
        exit::MISMATCH,
        &["1 rollback_failed: rollback/V2__change.sql:2: index \"customers_created_on_idx\" does not exist (SQLSTATE 42704)"],
    );
}

#[test]
fn reapply_that_fails() {
    check(
        "verify_reapply_fails",
        &[],
        exit::MISMATCH,
        &["1 reapply_failed: migrations/V2__change.sql:1: duplicate key value violates unique constraint \"pg_ts_config_cfgname_index\" (SQLSTATE 23505); detail: Key (cfgname, cfgnamespace)=(customer_search, 2200) already exists."],
    );
}

#[test]
fn correct_set_is_restored() {
    check("verify_correct", &[], exit::OK, &[]);
    let out = verify(&["--dir", fixture("verify_correct").to_str().unwrap()]);
    assert_eq!(results(&out), [ForwardOnly, Restored]);
}

#[test]
fn clinic_set_passes_verify_with_a_junit_report() {
    let junit = tempfile::NamedTempFile::new().unwrap();
    let out = verify(&["--dir", repo().to_str().unwrap(), "--seed-rows", "20000", "--junit", junit.path().to_str().unwrap()]);
    assert_eq!(out.code, exit::OK, "{}", out.stdout);
    let doc = out.report();
    assert_eq!(results(&out), [ForwardOnly, Restored, Restored, Restored, ForwardOnly]);
    for p in &doc.rehearsal().phases[1..4] {
        let (probes, steps): (Vec<&str>, Vec<&str>) = p.steps.iter().map(|s| s.step.as_str()).partition(|s| s.starts_with("probes after"));
        // The data phase's backfill and its rollback each rewrite every
        // reservation: the next pass may meet the table vacuumed, where
        // autovacuum would vacuum it. Whether it would depends on how many
        // dead rows the checks' scans already pruned, which other sessions'
        // snapshots decide (tests/it/vacuum.rs pins the vacuum down); here
        // only where a vacuum may stand.
        let passes: Vec<&str> = steps.iter().copied().filter(|s| *s != "vacuum").collect();
        assert_eq!(passes, ["snapshot", "migrate", "snapshot", "rollback", "compare", "re-apply", "compare"], "{p:#?}");
        for (i, _) in steps.iter().enumerate().filter(|(_, s)| **s == "vacuum") {
            assert!(p.phase == 2 && ["rollback", "re-apply"].contains(&steps[i + 1]), "a vacuum only before the data phase's rollback or re-apply: {steps:?}");
        }
        // Every state the phase leaves has a probe that must work there
        // (probes/reservations_old.sql until phase 3, _new.sql from it).
        assert_eq!(probes.len(), 3, "{p:#?}");
    }
    let xml = std::fs::read_to_string(junit.path()).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 5, "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
    crate::locks::assert_locks_of_a_shipped_set(
        &doc,
        "the clinic set",
        &[
            (1, "migrate", "reservations", "ACCESS EXCLUSIVE", "migrations/V5__add_reservation_columns.sql:12"),
            (1, "rollback", "reservations", "ACCESS EXCLUSIVE", "rollback/V5__add_reservation_columns.sql:4"),
            (2, "migrate", "reservations", "SHARE ROW EXCLUSIVE", "migrations/V9__sync_new_columns_trigger.sql:110"),
            // The backup triggers of the backfill's rollback.
            (2, "rollback", "reservations", "SHARE ROW EXCLUSIVE", "rollback/V10__backfill_reservations.sql"),
            (3, "migrate", "reservations", "SHARE ROW EXCLUSIVE", "migrations/V14__capacity_check.sql:66"),
            (4, "migrate", "reservations", "ACCESS EXCLUSIVE", "migrations/V16__drop_old_columns.sql:11"),
        ],
    );
}

#[test]
fn tenant_keys_set_passes_verify() {
    let out = verify(&["--dir", repo().join("examples/tenant-keys").to_str().unwrap()]);
    assert_eq!(out.code, exit::OK, "{}", out.stdout);
    assert_eq!(results(&out), [ForwardOnly, Restored, Restored, Restored]);
    // The tenant-wide API's probe after every migrate, rollback and
    // re-apply; the branch-scoped one's after phase 3 too.
    let probed: Vec<usize> = out.report().rehearsal().phases.iter().map(|p| p.steps.iter().filter(|s| s.step.starts_with("probes after")).count()).collect();
    assert_eq!(probed, [1, 3, 3, 3]);
    crate::locks::assert_locks_of_a_shipped_set(
        &out.report(),
        "examples/tenant-keys",
        &[
            (1, "migrate", "api_keys", "ACCESS EXCLUSIVE", "migrations/V2__api_keys_scope_columns.sql:6"),
            (2, "rollback", "api_keys", "SHARE ROW EXCLUSIVE", "rollback/V5__assign_branch_scopes.sql"),
        ],
    );
}

#[test]
fn junit_report_names_the_failing_phase() {
    let junit = tempfile::NamedTempFile::new().unwrap();
    let out = verify(&["--dir", fixture("verify_leaves_index").to_str().unwrap(), "--junit", junit.path().to_str().unwrap()]);
    assert_eq!(out.code, exit::MISMATCH);
    let xml = std::fs::read_to_string(junit.path()).unwrap();
    assert!(xml.contains("<testcase name=\"phase 1 change\""), "{xml}");
    assert!(xml.contains("<failure message=\"schema differs (after rollback, compared with before the phase): table public.customers; re-apply failed:"), "{xml}");
    assert!(xml.contains("customers_name_idx"), "the diff is in the report: {xml}");
}

#[test]
fn local_backend_runs_initdb_and_pg_ctl() {
    // The local backend needs PostgreSQL's server binaries on this machine
    // (Debian: postgresql); without them the error says so and this fails.
    let logs = crate::harness::log_dir();
    let dir = fixture("verify_correct");
    let out = cli(&["verify", "--backend", "local", "--format", "json", "--dir", dir.to_str().unwrap(), "--log-dir", logs.to_str().unwrap()], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    assert_eq!(results(&out), [ForwardOnly, Restored]);
}

/// A local cluster asks for the password over TCP, as the containers do:
/// a wrong one is refused (a cluster that trusted every TCP login would let
/// a test of a wrong password pass on one backend and fail on the other).
#[test]
fn the_local_backend_refuses_a_wrong_password() {
    let server = phasegate::Server::start(&phasegate::Backend::Local).expect("the local backend (PostgreSQL's server binaries)");
    phasegate::connect(server.admin_url(), "phasegate-test").expect("the admin URL connects");
    let wrong = server.admin_url().replacen(":phasegate@", ":not-the-password@", 1);
    assert_ne!(wrong, server.admin_url(), "the admin URL carries the password: {}", phasegate::redact(server.admin_url()));
    let e = phasegate::connect(&wrong, "phasegate-test").err().expect("a wrong password is refused").to_string();
    assert!(e.contains("password authentication failed"), "{e}");
}

// ---- foreign layouts against a pg_dump round trip ----

/// `pg_dump --schema-only` of a database, without the per-run \restrict keys.
pub(crate) fn pg_dump(url: &str) -> String {
    let out = std::process::Command::new("pg_dump")
        .args(["--schema-only", "--no-owner", "--no-privileges", url])
        .output()
        .expect("pg_dump is needed by this test (Debian: apt-get install postgresql-client)");
    assert!(out.status.success(), "pg_dump failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict")).collect::<Vec<_>>().join("\n")
}

/// Runs a migration file the way its tool does: in one transaction, or
/// statement by statement (its tool's statements) when it must run outside one.
pub(crate) fn exec(client: &mut postgres::Client, f: &phasegate::SqlFile) -> Result<(), postgres::Error> {
    if f.directives.no_transaction {
        for st in f.statements() {
            client.batch_execute(&f.text[st.start..st.end])?;
        }
        Ok(())
    } else {
        let mut tx = client.transaction()?;
        tx.batch_execute(&f.text)?;
        tx.commit()
    }
}

/// Whether one of a step's checks (a Sqitch verify script) raises, run in
/// a transaction that is rolled back.
fn check_raises(client: &mut postgres::Client, step: &phasegate::Step) -> bool {
    step.checks.iter().any(|c| {
        let mut tx = client.transaction().expect("begin");
        let raised = tx.batch_execute(&c.sql).is_err();
        tx.rollback().expect("rollback");
        raised
    })
}

/// The pg_dump round trip per migration: dump, up, (verify script), down,
/// dump, compare, up again.
pub(crate) fn pg_dump_round_trip(set: &phasegate::MigrationSet) -> Vec<(String, &'static str)> {
    let db = TestDb::new("pgdump");
    let mut client = db.client();
    let mut out = Vec::new();
    for p in &set.phases {
        let step = &p.steps[0];
        let before = pg_dump(&db.url);
        exec(&mut client, &step.forward).unwrap_or_else(|e| panic!("{}: up failed: {e}", p.name));
        if check_raises(&mut client, step) {
            out.push((p.name.clone(), "migrate failed"));
            continue;
        }
        let Some(down) = &step.rollback else {
            out.push((p.name.clone(), "no down"));
            continue;
        };
        if exec(&mut client, down).is_err() {
            out.push((p.name.clone(), "down failed"));
            continue;
        }
        let after = pg_dump(&db.url);
        out.push((p.name.clone(), if before == after { "identical" } else { "differs" }));
        exec(&mut client, &step.forward).unwrap_or_else(|e| panic!("{}: up again failed: {e}", p.name));
    }
    out
}

/// What a pg_dump round trip sees for each phasegate classification: it
/// compares the schema only, so changed rows look identical to it, and any
/// column-order change is a difference.
fn as_pg_dump(p: &PhaseRehearsal) -> &'static str {
    let kinds = p.kinds();
    if kinds.contains(&"migrate_failed") {
        "migrate failed"
    } else if kinds.contains(&"rollback_failed") {
        "down failed"
    } else if kinds.contains(&"no_rollback") {
        "no down"
    } else if kinds.iter().any(|k| *k == "schema_differs" || *k == "column_order_only") {
        "differs"
    } else {
        assert!(p.result == Restored || kinds.iter().all(|k| *k == "rows_changed"), "unexpected result {:?} {kinds:?}", p.result);
        "identical"
    }
}

/// Each migration of a rehearsal by name, classified as a pg_dump round
/// trip would see it.
pub(crate) fn as_pg_dump_results(rehearsal: &Rehearsal) -> Vec<(String, &'static str)> {
    rehearsal.phases.iter().map(|p| (p.name.clone(), as_pg_dump(p))).collect()
}

/// The migrations whose rollback lost rows (which a schema-only dump
/// cannot see): where pg_dump sees nothing, phasegate names the table.
pub(crate) fn rows_lost(rehearsal: &Rehearsal) -> Vec<&str> {
    rehearsal
        .phases
        .iter()
        .filter(|p| p.findings.iter().any(|f| matches!(f, Finding::RowsChanged { against: Against::BeforePhase, .. })))
        .map(|p| p.name.as_str())
        .collect()
}

#[track_caller]
fn foreign_matches_pg_dump(layout: phasegate::foreign::Layout, from: &str, dir: &Path, rows_changed: &[&str]) -> Rehearsal {
    let set = phasegate::foreign::load(layout, dir).unwrap();
    assert!(set.phases.len() >= 30, "dozens of migrations");
    let out = verify(&["--from", from, dir.to_str().unwrap()]);
    assert_eq!(out.code, exit::MISMATCH, "defective downs exit 5: {}", out.stdout);
    let rehearsal = out.report().rehearsal().clone();
    assert_eq!(rehearsal.phases.len(), set.phases.len(), "every migration is rehearsed, none skipped");
    assert_eq!(as_pg_dump_results(&rehearsal), pg_dump_round_trip(&set), "per-migration classification, phasegate vs pg_dump");
    assert_eq!(rows_lost(&rehearsal), rows_changed);
    rehearsal
}

#[test]
fn verify_from_diesel_matches_a_pg_dump_round_trip() {
    let dir = fixture("foreign/diesel/migrations");
    foreign_matches_pg_dump(phasegate::foreign::Layout::Diesel, "diesel", &dir, &[]);
}

#[test]
fn verify_from_sqlx_matches_a_pg_dump_round_trip() {
    let dir = fixture("foreign/sqlx/migrations");
    let rehearsal = foreign_matches_pg_dump(phasegate::foreign::Layout::Sqlx, "sqlx", &dir, &["20240124090000_lowercase_customer_emails"]);
    // Re-seeding rows with now() defaults differs from the first run: a warning, not a failure.
    let seed = rehearsal.phases.iter().find(|p| p.name == "20240110101000_seed_demo_customers").unwrap();
    assert_eq!(seed.result, Restored, "{seed:#?}");
    assert_eq!(seed.findings[0].kind(), "rows_changed");
    assert_eq!(seed.findings[0].against(), Some(Against::FirstForward));
}
