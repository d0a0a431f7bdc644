//! `--format github` (workflow commands at file and line) and `--format
//! markdown` (tables for a step summary) of lint, migrate, rollback and
//! validate, on fixtures with findings and failing checks; and the refusal
//! of those formats by commands that do not print them.

use crate::harness::{exit, fixture, on, server, Cmd, TestDb};

/// The annotation lines (`::level ...::message`) of an output.
fn annotations(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.starts_with("::")).collect()
}

#[test]
fn lint_github_prints_one_error_annotation_per_error_finding() {
    for name in ["lint_index_without_concurrently", "lint_foreign_key_without_not_valid", "lint_unbatched_update", "lint_drop_column_in_additive_phase"] {
        let dir = fixture(name);
        let json = Cmd::new(&["lint", "--format", "json"]).dir(&dir).run().report();
        let findings = json.findings();
        assert!(!findings.is_empty(), "{name}: each fixture has findings");
        let out = Cmd::new(&["lint", "--format", "github"]).dir(&dir).run();
        assert_eq!(out.code, json.exit_code, "{name}: {out:?}");
        let lines = annotations(&out.stdout);
        assert_eq!(lines.len(), findings.len(), "{name}: one annotation per finding: {}", out.stdout);
        for (line, f) in lines.iter().zip(&findings) {
            let level = if f.severity == "error" { "error" } else { "warning" };
            let file = f.file.replace(':', "%3A").replace(',', "%2C");
            let head = format!("::{level} file={file},line={},col={},title=phasegate lint%3A {}::", f.line, f.column, f.rule);
            assert!(line.starts_with(&head), "{name}: {line}\nexpected to start with {head}");
            assert!(line.contains(&f.message), "{line}");
        }
        let errors = lines.iter().filter(|l| l.starts_with("::error ")).count();
        assert_eq!(errors as u64, json.lint_errors(), "{name}");
        assert!(errors > 0 || name == "lint_unbatched_update", "{name} has error findings");

        let md = Cmd::new(&["lint", "--format", "markdown"]).dir(&dir).run();
        assert!(md.stdout.starts_with("### phasegate lint\n\n| file | line | severity | rule | finding | fix |"), "{}", md.stdout);
        assert_eq!(md.stdout.lines().filter(|l| l.starts_with("| `")).count(), findings.len(), "{}", md.stdout);
    }
}

#[test]
fn a_failing_check_is_annotated_at_its_validation_line_in_migrate_and_validate() {
    let db = TestDb::new("gh_check");
    let dir = fixture("critical_check_fails");
    on(&db, &dir, &["migrate", "--phase", "1"]).run().expect_exit(exit::OK);
    let out = on(&db, &dir, &["migrate", "--format", "github"]).run();
    out.expect_exit(exit::ROLLBACK);
    let lines = annotations(&out.stdout);
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    let file = dir.join("validations/V2__add_domain.sql");
    assert!(
        lines[0].starts_with(&format!("::error file={},line=1,title=phasegate%3A ROLLBACK every_domain_is_one_test::V2 check `every_domain_is_one_test` says ROLLBACK: 2 rows", file.display())),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("%0Aevidence: "), "the evidence rows follow: {}", lines[0]);
    assert!(out.stdout.contains("phase 2 V2 add_domain: aborted"), "{}", out.stdout);

    let md = on(&db, &dir, &["migrate", "--format", "markdown"]).run();
    md.expect_exit(exit::ROLLBACK);
    assert!(md.stdout.starts_with("### phasegate migrate\n\n| phase | migration | name | result |"), "{}", md.stdout);
    assert!(md.stdout.contains("| V2 | `every_domain_is_one_test` | after-migrate | 2 rows | 0 rows | ❌ **ROLLBACK** |"), "{}", md.stdout);
    assert!(md.stdout.contains("**Verdict:** ❌ **ROLLBACK**"), "{}", md.stdout);

    // validate: the same check, now on the applied phase 1 only: nothing to annotate.
    let out = on(&db, &dir, &["validate", "--format", "github"]).run();
    out.expect_exit(exit::OK);
    assert!(annotations(&out.stdout).is_empty(), "{}", out.stdout);
    let md = on(&db, &dir, &["validate", "--format", "markdown"]).run();
    assert!(md.stdout.starts_with("### phasegate validate\n\n| migration | check |"), "{}", md.stdout);
    assert!(md.stdout.contains("**Verdict:** ✅ **PROCEED**"), "{}", md.stdout);
}

#[test]
fn a_review_check_is_a_warning_and_a_sql_error_is_annotated_at_its_line_and_column() {
    let db = TestDb::new("gh_review");
    let dir = fixture("warning_check_reviews");
    let out = on(&db, &dir, &["migrate", "--yes", "--format", "github"]).run();
    out.expect_exit(exit::REVIEW);
    let lines = annotations(&out.stdout);
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    assert!(lines[0].starts_with(&format!("::warning file={},line=4,", dir.join("validations/V2__add_domain.sql").display())), "{}", lines[0]);
    let out = on(&db, &dir, &["validate", "--format", "github"]).run();
    out.expect_exit(exit::REVIEW);
    assert_eq!(annotations(&out.stdout).len(), 1, "validate annotates the same check: {}", out.stdout);

    let db = TestDb::new("gh_sql");
    let dir = fixture("sql_error");
    let out = on(&db, &dir, &["migrate", "--format", "github"]).run();
    out.expect_exit(exit::ERROR);
    let lines = annotations(&out.stdout);
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    assert!(lines[0].starts_with(&format!("::error file={},line=4,col=46,title=phasegate::", dir.join("migrations/V2__add_domain.sql").display())), "{}", lines[0]);
    assert!(lines[0].contains("syntax error at or near"), "{}", lines[0]);
    let md = on(&db, &dir, &["migrate", "--format", "markdown"]).run();
    assert!(md.stdout.contains("> **error:** "), "{}", md.stdout);
}

#[test]
fn rollback_prints_github_and_markdown() {
    let db = TestDb::new("gh_rollback");
    let dir = fixture("accounts");
    on(&db, &dir, &["migrate", "--phase", "2"]).run().expect_exit(exit::OK);
    let out = on(&db, &dir, &["rollback", "--phase", "2", "--yes", "--format", "markdown"]).run();
    out.expect_exit(exit::OK);
    assert!(out.stdout.starts_with("### phasegate rollback --phase 2\n\n| phase | migration |"), "{}", out.stdout);
    assert!(out.stdout.contains("| 2 | V2 | add_domain | done |"), "{}", out.stdout);
    assert!(out.stdout.contains("**Verdict:** ✅ **PROCEED**"), "{}", out.stdout);
    let out = on(&db, &dir, &["rollback", "--phase", "1", "--yes", "--format", "github"]).run();
    out.expect_exit(exit::OK);
    assert!(out.stdout.contains("phase 1 V1 create_accounts: done"), "{}", out.stdout);
    assert!(annotations(&out.stdout).is_empty(), "nothing to annotate: {}", out.stdout);
    // Refused: the error is one annotation.
    let out = on(&db, &dir, &["rollback", "--phase", "1", "--yes", "--format", "github"]).run();
    out.expect_exit(exit::ERROR);
    assert_eq!(annotations(&out.stdout), ["::error title=phasegate::phase 1 (additive) is not applied; nothing to roll back"], "{}", out.stdout);
}

#[test]
fn other_commands_refuse_the_ci_formats() {
    for args in [&["plan", "--format", "github"][..], &["new", "x", "--phase", "1", "--format", "markdown"]] {
        let out = Cmd::new(args).dir(&fixture("accounts")).run();
        out.expect_exit(exit::USAGE);
        assert!(out.error_line().contains("is for lint, verify, migrate, rollback, validate"), "{}", out.stderr);
    }
}

#[test]
fn verify_annotates_a_failing_rollback_at_its_line_and_a_leftover_at_the_rollback_file() {
    server(); // the rehearsals below run on the shared server
    let url = server().admin_url().to_string();
    let verify = |fixture_name: &str, format: &str| {
        Cmd::new(&["verify", "--backend", "url", "--server-url", &url, "--format", format]).dir(&fixture(fixture_name)).logs(crate::harness::log_dir()).run()
    };
    let dir = fixture("verify_rollback_fails");
    let out = verify("verify_rollback_fails", "github");
    out.expect_exit(exit::MISMATCH);
    let lines = annotations(&out.stdout);
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    assert!(
        lines[0].starts_with(&format!("::error file={},line=2,", dir.join("rollback/V2__change.sql").display())),
        "the failing statement's line: {}",
        lines[0]
    );
    assert!(lines[0].contains("rollback failed: "), "{}", lines[0]);

    let dir = fixture("verify_leaves_index");
    let out = verify("verify_leaves_index", "github");
    out.expect_exit(exit::MISMATCH);
    let errors: Vec<&str> = annotations(&out.stdout).into_iter().filter(|l| l.starts_with("::error ")).collect();
    assert!(!errors.is_empty(), "{}", out.stdout);
    assert!(errors[0].starts_with(&format!("::error file={},line=1,", dir.join("rollback/V2__change.sql").display())), "{}", errors[0]);
    assert!(errors[0].contains("schema differs") && errors[0].contains("%0A"), "the diff follows: {}", errors[0]);

    let md = verify("verify_leaves_index", "markdown");
    md.expect_exit(exit::MISMATCH);
    assert!(md.stdout.starts_with("### phasegate verify\n\n| phase | name | result | verdict | time |"), "{}", md.stdout);
    assert!(md.stdout.contains("| mismatch |"), "{}", md.stdout);
    assert!(md.stdout.contains("```diff\n"), "{}", md.stdout);
    assert!(md.stdout.contains(" mismatch, "), "the counts: {}", md.stdout);
}
