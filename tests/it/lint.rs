//! `lint` on fixture sets, one unsafe pattern each (and their safe
//! counterparts), and on the shipped migration sets. Lint needs no database:
//! these run the CLI in-process on the files only.

use std::path::Path;

use crate::harness::{cli, exit, fixture, repo};

/// Runs `lint --format json` on `dir` and asserts its findings are exactly
/// `expected` as (rule, file path relative to the set, line), in order, and
/// that the exit code follows from them (1 when any is an error).
#[track_caller]
fn check(dir: &Path, expected: &[(&str, &str, u64)]) {
    let out = cli(&["lint", "--format", "json", "--dir", dir.to_str().unwrap()], "");
    let doc = out.report();
    let findings = doc.findings();
    let prefix = format!("{}/", dir.display());
    let got: Vec<(String, String, u64)> = findings.iter().map(|f| (f.rule.clone(), f.file.strip_prefix(&prefix).unwrap_or(&f.file).to_string(), f.line)).collect();
    let want: Vec<(String, String, u64)> = expected.iter().map(|(r, f, l)| (r.to_string(), f.to_string(), *l)).collect();
    assert_eq!(got, want, "findings of {}:\n{doc:#?}", dir.display());
    for f in &findings {
        assert!(!f.message.is_empty(), "every finding says what: {f:?}");
        assert!(f.fix.as_deref().is_some_and(|m| !m.is_empty()) || f.rule == "set-structure", "every lint finding says how to fix it: {f:?}");
    }
    let errors = findings.iter().filter(|f| f.severity == "error").count();
    assert_eq!(doc.lint_errors(), errors as u64);
    assert_eq!(out.code, i32::from(errors > 0), "{out:?}");
    assert_eq!(doc.exit_code, out.code);
}

#[test]
fn not_null_without_the_validated_check_is_an_error() {
    check(&fixture("lint_not_null_without_check"), &[("adding-not-nullable-field", "migrations/V2__email_not_null.sql", 2)]);
}

#[test]
fn index_without_concurrently_on_a_table_with_rows_is_an_error() {
    check(&fixture("lint_index_without_concurrently"), &[("require-concurrent-index-creation", "migrations/V2__index_email.sql", 2)]);
}

#[test]
fn foreign_key_without_not_valid_is_an_error() {
    // squawk reports the scan (any constraint) and the lock on both tables (foreign keys).
    check(
        &fixture("lint_foreign_key_without_not_valid"),
        &[
            ("constraint-missing-not-valid", "migrations/V2__team_fkey.sql", 3),
            ("adding-foreign-key-constraint", "migrations/V2__team_fkey.sql", 3),
        ],
    );
}

#[test]
fn dropping_a_column_in_an_additive_phase_is_an_error() {
    check(&fixture("lint_drop_column_in_additive_phase"), &[("ban-drop-column", "migrations/V2__drop_legacy.sql", 1)]);
}

#[test]
fn dropping_a_column_in_an_irreversible_cleanup_phase_is_expected() {
    check(&fixture("lint_drop_column_in_cleanup_phase"), &[]);
}

#[test]
fn concurrently_in_a_transactional_file_is_an_error() {
    check(&fixture("lint_concurrently_in_transaction"), &[("concurrently-in-transaction", "migrations/V2__index_email.sql", 2)]);
}

#[test]
fn unbatched_whole_table_update_is_a_warning() {
    check(&fixture("lint_unbatched_update"), &[("unbatched-update", "migrations/V2__lower_emails.sql", 1)]);
    let out = cli(&["lint", "--strict", "--dir", fixture("lint_unbatched_update").to_str().unwrap()], "");
    assert_eq!(out.code, exit::ERROR, "--strict fails on warnings: {out:?}");
}

#[test]
fn the_safe_patterns_have_no_findings() {
    check(&fixture("lint_safe_set"), &[]);
}

#[test]
fn a_set_that_does_not_load_is_one_finding_naming_the_file() {
    check(&fixture("lint_set_structure"), &[("set-structure", "rollback/V2__add_domain.sql", 0)]);
}

#[test]
fn text_output_is_one_line_per_finding_and_a_summary() {
    let dir = fixture("lint_foreign_key_without_not_valid");
    let out = cli(&["lint", "--dir", dir.to_str().unwrap()], "");
    assert_eq!(out.code, exit::ERROR, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    let file = dir.join("migrations/V2__team_fkey.sql");
    assert!(lines[0].starts_with(&format!("{}:3:3: error constraint-missing-not-valid: ", file.display())), "{}", out.stdout);
    assert!(lines[0].contains(" (fix: add the constraint `NOT VALID`, then `ALTER TABLE ... VALIDATE CONSTRAINT`"), "{}", out.stdout);
    assert_eq!(lines.last().copied(), Some("2 findings (2 errors, 0 warnings) in 1 file"));
    let out = cli(&["lint", "--dir", fixture("lint_safe_set").to_str().unwrap()], "");
    assert_eq!((out.code, out.stdout.as_str()), (exit::OK, "no findings in 14 SQL files of 2 phases\n"));
}

/// The clinic set: the drops of its cleanup phase and the rollbacks that
/// remove what their forward files created are expected, so what remains are
/// the VALIDATEs that run in the same transaction as their NOT VALID
/// constraint (V5, V10). Making them safe means moving each VALIDATE into a
/// migration of its own, which renumbers the set; until then they are listed
/// here, so a new finding, or a fixed one, fails this test.
/// The shipped sets (the clinic set at the root, every examples/* set, and
/// the set of an example repository in its db/, as examples/adopt keeps it)
/// are written the safe way: no findings.
#[test]
fn shipped_sets_have_no_findings() {
    let mut sets = vec![repo()];
    for e in std::fs::read_dir(repo().join("examples")).expect("the examples folder") {
        let dir = e.unwrap().path();
        for set in [dir.clone(), dir.join("db")] {
            if set.join("phases.toml").is_file() {
                sets.push(set);
            }
        }
    }
    assert!(sets.len() >= 3, "the clinic set, the tenant keys set and the adopter's set: {sets:?}");
    for dir in &sets {
        check(dir, &[]);
    }
}

#[test]
fn plan_shows_each_phase_findings_beside_its_risk() {
    let dir = fixture("lint_drop_column_in_additive_phase");
    let out = cli(&["plan", "--format", "json", "--dir", dir.to_str().unwrap()], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    let plan = out.report().plan();
    let rules = |p: usize| plan[p].findings.iter().map(|f| f.rule.clone()).collect::<Vec<_>>();
    assert_eq!(rules(0), Vec::<String>::new());
    assert_eq!(rules(1), vec!["ban-drop-column"]);
    let out = cli(&["plan", "--dir", dir.to_str().unwrap()], "");
    let phase1 = out.stdout.lines().find(|l| l.starts_with("phase 1")).unwrap();
    assert!(phase1.contains("lint 1 error"), "{}", out.stdout);
}

/// The safe patterns are not only lint-clean: they migrate and roll back on
/// a real PostgreSQL.
#[test]
fn the_safe_set_migrates_and_rolls_back() {
    let db = crate::harness::TestDb::new("lint_safe");
    let dir = fixture("lint_safe_set");
    let out = crate::harness::run(&db, &dir, &["migrate", "--yes"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
    let nulls: i64 = db.client().query_one("SELECT count(*) FROM accounts WHERE domain IS NULL", &[]).unwrap().get(0);
    assert_eq!(nulls, 0, "the batched backfill filled every row");
    let out = crate::harness::run(&db, &dir, &["rollback", "--phase", "1", "--yes"], "");
    assert_eq!(out.code, exit::OK, "{out:?}");
}
