//! The tenant API keys set (docs/migration-set.md) on its 3000-tenant seed: every phase
//! PROCEEDs and rolls back to the exact state before it; the phase 2
//! rollback backs up exactly the keys it widens, reports how many tenants
//! are affected, writes its report, and `restore` brings the keys back byte
//! for byte. On an empty database (a new environment) every phase migrates,
//! validates and rolls back too, its shares showing "no rows"; `-- empty:`
//! decides their verdict.

use crate::harness::json::Verdict;
use crate::harness::{assert_all_proceed, copy_set, empty_metrics, exit, migrate_phase_by_phase, roll_back_phase_by_phase_and_reapply, run, tenant_keys, tenant_keys_seeded_template, walk_every_phase, TestDb};

#[test]
fn tenant_keys_rollbacks_restore_the_state_before_each_phase() {
    let db = TestDb::from_template("tk_rollback", tenant_keys_seeded_template());
    let dir = tenant_keys();
    let states = migrate_phase_by_phase(&db, &dir, "tenant_keys", 1, 3);

    // The seed matches the seed document: 15-20% of tenants have branch-scoped keys.
    let (tenants, scoped): (i64, i64) = {
        let r = db.client().query_one("SELECT (SELECT count(*) FROM tenants), (SELECT count(DISTINCT tenant_id) FROM api_keys WHERE scope = 'branch')", &[]).unwrap();
        (r.get(0), r.get(1))
    };
    let share = 100.0 * scoped as f64 / tenants as f64;
    assert!(tenants >= 3000 && (15.0..=20.0).contains(&share), "{scoped} of {tenants} tenants branch-scoped ({share:.1}%)");

    // health on the fully migrated set: every probe and check fine.
    let out = run(&db, &dir, &["health", "--format", "json"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    assert!(!out.report().rounds()[0].checks.is_empty(), "the current phase's checks ran");

    // Phase 3 changes no data, so phase 2's shares still hold: not empty, as measured.
    let out = run(&db, &dir, &["validate", "--phase", "2", "--format", "json"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    let doc = out.report();
    assert_all_proceed(&doc);
    assert_eq!(empty_metrics(&doc), Vec::<String>::new(), "on the seed every metric has something to measure");
    let value = |name: &str| doc.check(name).value.unwrap();
    assert_eq!(value("branch_hints_honoured_percent"), 100.0);
    assert!((value("branch_scoped_tenants_percent") - share).abs() < 1e-6, "{doc:#?}");

    roll_back_phase_by_phase_and_reapply(&db, &dir, &states, 1, 3);
}

/// The checks of V5 that compute a share of keys or tenants.
const TENANT_SHARES: [&str; 3] = ["V5 branch_hints_honoured_percent", "V5 unusable_branch_hints_percent", "V5 branch_scoped_tenants_percent"];

#[test]
fn tenant_keys_migrate_validate_and_roll_back_on_an_empty_database() {
    let db = TestDb::new("tk_empty");
    walk_every_phase(&db, &tenant_keys(), 3).assert_only_these_were_empty(2, &TENANT_SHARES);
    let n: i64 = db.client().query_one("SELECT count(*) FROM tenants", &[]).unwrap().get(0);
    assert_eq!(n, 0, "nothing was seeded");
}

#[test]
fn the_empty_header_decides_the_verdict_of_nothing_to_measure() {
    let set = copy_set(&tenant_keys());
    let file = set.path().join("validations/V5__assign_branch_scopes.sql");
    let text = std::fs::read_to_string(&file).unwrap();
    let header = "-- review: <= 50\n";
    assert_eq!(text.matches(header).count(), 1, "branch_scoped_tenants_percent has one review threshold");
    std::fs::write(&file, text.replace(header, &format!("{header}-- empty: review\n"))).unwrap();

    let db = TestDb::new("tk_empty_review");
    let out = run(&db, set.path(), &["migrate", "--phase", "2", "--format", "json"], "");
    assert_eq!(out.code, exit::REVIEW, "an empty population asked for review: {out:?}");
    let doc = out.report();
    let check = doc.check("branch_scoped_tenants_percent");
    assert_eq!((check.verdict, check.empty, check.value), (Verdict::Review, true, None), "{check:?}");
    assert_eq!(check.threshold, "between 5 and 30 / review <= 50 / empty REVIEW");
    let reviewed: Vec<&str> = doc.checks.iter().filter(|c| c.verdict != Verdict::Proceed).map(|c| c.check.as_str()).collect();
    assert_eq!(reviewed, ["branch_scoped_tenants_percent"], "the other empty shares keep the default, proceed");

    // The text output says so too.
    let out = run(&db, set.path(), &["validate", "--phase", "2"], "");
    assert_eq!(out.code, exit::REVIEW, "{out:?}");
    let line = out.stdout.lines().find(|l| l.contains("branch_scoped_tenants_percent")).unwrap_or_else(|| panic!("{out:?}"));
    assert!(line.contains(" no rows ") && line.contains("empty REVIEW") && line.ends_with("REVIEW"), "{line}");
}

/// Every row of api_keys as text, by id.
fn keys_text(db: &TestDb, filter: &str) -> Vec<(String, String)> {
    db.client()
        .query(&format!("SELECT id::text, k::text FROM api_keys k {filter} ORDER BY id"), &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[test]
fn phase_2_rollback_backs_up_exactly_the_affected_keys_and_restore_brings_them_back() {
    let db = TestDb::from_template("tk_backup", tenant_keys_seeded_template());
    let dir = tenant_keys();
    let out = run(&db, &dir, &["migrate", "--phase", "2"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    let all_before = keys_text(&db, "");
    let affected = keys_text(&db, "WHERE scope = 'branch'");
    let tenants: i64 = db.client().query_one("SELECT count(DISTINCT tenant_id) FROM api_keys WHERE scope = 'branch'", &[]).unwrap().get(0);
    assert!(affected.len() > 100 && tenants > 100, "{} keys of {tenants} tenants", affected.len());
    let phase_2_state = db.snapshot();

    let out = run(&db, &dir, &["rollback", "--phase", "2", "--yes", "--format", "json"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    let doc = out.report();
    let run_id = doc.run_id.clone();

    // Exactly the affected keys, as they were, in one backup table.
    let backups = doc.backups();
    assert_eq!(backups.len(), 1, "{doc:#?}");
    assert_eq!(backups[0].table, "public.api_keys");
    assert_eq!(backups[0].changes, ["UPDATE"]);
    assert_eq!(backups[0].rows, affected.len() as i64);
    let backup_table = &backups[0].backup_table;
    assert!(backup_table.starts_with(&format!("phasegate_backup.api_keys_{}", &run_id[..8])), "{backup_table}");
    let saved: Vec<(String, String)> =
        db.client().query(&format!("SELECT id::text, b::text FROM {backup_table} b ORDER BY id"), &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(saved, affected, "the backup holds exactly the affected keys, byte for byte");
    assert_eq!(keys_text(&db, "WHERE scope = 'branch'").len(), 0, "every key is tenant-wide again");

    // The affected counts are checks, in the decision table and JSON.
    assert_eq!(doc.check("affected_tenants").value, Some(tenants as f64));
    assert_eq!(doc.check("affected_tenants").when, "before-rollback");
    assert_eq!(doc.check("affected_keys").value, Some(affected.len() as f64));

    // The report beside the log names every check and the restore command.
    let report = std::fs::read_to_string(doc.part::<String>("report_file")).unwrap();
    for c in &doc.checks {
        assert!(report.contains(&format!("`{}`", c.check)), "report lacks {}:\n{report}", c.check);
    }
    assert!(report.contains(&format!("cargo xtask restore --run {run_id}")), "{report}");
    assert!(report.contains(&format!("| `public.api_keys` | UPDATE | {} |", affected.len())), "{report}");
    assert!(report.contains("- [ ] Customer email sent (within 30 minutes): affected"), "{report}");
    assert!(report.contains(&format!("`affected_tenants` = {tenants} tenants")), "{report}");

    // history lists the run and its backup.
    let history = run(&db, &dir, &["history", "--format", "json"], "").report().runs();
    let rolled = history.iter().find(|r| r.run_id == run_id).expect("the rollback is in the history");
    assert_eq!(rolled.backups[0].rows, affected.len() as i64);
    let text = run(&db, &dir, &["history"], "").stdout;
    assert!(text.contains(&format!("cargo xtask restore --run {}", &run_id[..8])), "{text}");

    // restore (by the short id) puts every key back as it was.
    let out = run(&db, &dir, &["restore", "--run", &run_id[..8]], "no\n");
    assert_eq!(out.code, exit::ERROR, "an unconfirmed restore is refused: {out:?}");
    let out = run(&db, &dir, &["restore", "--run", &run_id[..8], "--yes", "--format", "json"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    let restored = out.report().restored()[0];
    assert_eq!(restored.updated, affected.len() as u64, "{restored:?}");
    assert_eq!(restored.inserted, 0);
    assert_eq!(keys_text(&db, ""), all_before, "every key is back byte for byte");
    crate::harness::assert_same_state(&phase_2_state, &db.snapshot(), "after the restore");
    let audited: i64 = db.client().query_one("SELECT count(*) FROM phasegate_runs WHERE command = 'restore' AND exit_code = 0", &[]).unwrap().get(0);
    assert_eq!(audited, 1, "the restore is audited");
}

#[test]
fn restore_refuses_when_the_columns_are_gone_and_no_backup_is_audited() {
    let db = TestDb::from_template("tk_refuse", tenant_keys_seeded_template());
    let dir = tenant_keys();
    run(&db, &dir, &["migrate", "--phase", "2"], "").expect_exit(exit::OK);
    let out = run(&db, &dir, &["rollback", "--phase", "2", "--yes", "--format", "json"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    let run_id = out.report().run_id;
    let out = run(&db, &dir, &["rollback", "--phase", "1", "--yes", "--format", "json"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    let backups = out.report().backups();
    assert_eq!(backups.len(), 1, "DROP COLUMN saves the key and the dropped columns: {backups:?}");
    assert_eq!(backups[0].kind, "columns");
    assert_eq!(backups[0].columns, ["id", "scope", "branch_id"]);

    let before = db.snapshot();
    let out = run(&db, &dir, &["restore", "--run", &run_id, "--yes"], "");
    assert_eq!(out.code, exit::ERROR, "{out:?}");
    assert!(out.stderr.contains("public.api_keys has no column branch_id, scope any more") || out.stderr.contains("public.api_keys has no column scope, branch_id any more"), "{}", out.stderr);
    assert!(out.stderr.contains("re-apply the phase that adds it"), "{}", out.stderr);
    crate::harness::assert_same_state(&before, &db.snapshot(), "after a refused restore");

    // --no-backup: nothing saved, and the audit row says so.
    run(&db, &dir, &["migrate", "--phase", "2"], "").expect_exit(exit::OK);
    let out = run(&db, &dir, &["rollback", "--phase", "2", "--yes", "--no-backup", "--format", "json"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    let doc = out.report();
    assert!(doc.backups().is_empty(), "{doc:#?}");
    let args: String = db.client().query_one("SELECT args::text FROM phasegate_runs WHERE run_id = $1::text::uuid", &[&doc.run_id]).unwrap().get(0);
    assert!(args.contains("--no-backup"), "{args}");
    let report = std::fs::read_to_string(doc.part::<String>("report_file")).unwrap();
    assert!(report.contains("None: the rollback ran with `--no-backup`."), "{report}");
}
