//! Probes in `verify` (docs/probes.md), on tests/fixtures/probes_rename (a
//! rename of accounts.full_name with an old and a new application version
//! declared): each probe runs after every migrate, rollback and re-apply
//! whose state phases.toml says it must work in, never where it must not;
//! a probe that fails there is a ROLLBACK finding at its file, line and
//! column in every report format; and what probes write never reaches the
//! states the rehearsal compares.

use std::path::Path;

use crate::harness::json::{At, Finding, PhaseResult};
use crate::harness::{copy_set, exit, fixture, log_dir, server, Cmd, Output};

/// `verify --format FORMAT` of the set in `dir` on the shared test server.
fn verify_as(dir: &Path, format: &str, extra: &[&str]) -> Output {
    let logs = log_dir();
    let mut args = vec!["verify", "--backend", "url", "--server-url", server().admin_url(), "--format", format, "--log-dir", logs.to_str().unwrap()];
    args.extend_from_slice(&["--dir", dir.to_str().unwrap()]);
    args.extend_from_slice(extra);
    Cmd::new(&args).run()
}

/// The probe findings of a JSON report, one line each:
/// `phase: probe after STEP (state N) at FILE:LINE:COLUMN: error`.
fn probe_findings(out: &Output, dir: &Path) -> Vec<String> {
    let strip = format!("{}/", dir.display());
    let mut lines = Vec::new();
    for p in &out.report().rehearsal().phases {
        for f in &p.findings {
            if let Finding::ProbeFailed { probe, after, state, error, at: At { file, line, column } } = f {
                lines.push(format!("{}: {probe} after {after} (state {state}) at {}:{line}:{column}: {error}", p.phase, file.replace(&strip, "")));
            }
        }
    }
    lines
}

/// Each phase's probe steps, in the order they ran.
fn probe_steps(out: &Output) -> Vec<(u32, Vec<String>)> {
    let r = out.report();
    r.rehearsal().phases.iter().map(|p| (p.phase, p.steps.iter().filter(|s| s.step.starts_with("probes after")).map(|s| s.step.clone()).collect())).collect()
}

/// The fixture with `edits` (path, text) written over its files.
fn edited(edits: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = copy_set(&fixture("probes_rename"));
    for (path, text) in edits {
        std::fs::write(dir.path().join(path), text).unwrap();
    }
    dir
}

#[test]
fn probes_run_in_every_state_they_must_work_in_and_leave_nothing_behind() {
    let dir = fixture("probes_rename");
    let out = verify_as(&dir, "json", &[]);
    out.expect_exit(exit::OK);
    assert_eq!(probe_findings(&out, &dir), Vec::<String>::new());
    let results: Vec<PhaseResult> = out.report().rehearsal().phases.iter().map(|p| p.result).collect();
    // Restored although the probes insert and update accounts in every
    // state: each runs in a savepoint that is rolled back.
    assert_eq!(results, [PhaseResult::ForwardOnly, PhaseResult::Restored, PhaseResult::Restored, PhaseResult::ForwardOnly]);
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        probe_steps(&out),
        [
            (0, s(&["probes after migrate"])),
            (1, s(&["probes after rollback", "probes after re-apply", "probes after migrate"])),
            (2, s(&["probes after rollback", "probes after re-apply", "probes after migrate"])),
            (3, s(&["probes after migrate"])),
        ]
    );
}

#[test]
fn a_probe_runs_only_where_it_must_work() {
    // The new version's statements fail before the expand phase adds
    // display_name; declared from the switch (phase 2) they never run
    // there (the test above), declared from phase 0 they fail after phase
    // 0's migrate and after phase 1's rollback, which leaves that state.
    let manifest = std::fs::read_to_string(fixture("probes_rename/phases.toml")).unwrap();
    let dir = edited(&[("phases.toml", &manifest.replace("file = \"probes/new.sql\"\nfrom = 2", "file = \"probes/new.sql\"\nfrom = 0"))]);
    let out = verify_as(dir.path(), "json", &[]);
    out.expect_exit(exit::ROLLBACK);
    let missing = "column \"display_name\" does not exist (SQLSTATE 42703)";
    assert_eq!(
        probe_findings(&out, dir.path()),
        [
            format!("0: probes/new.sql after migrate (state 0) at probes/new.sql:2:19: {missing}"),
            format!("1: probes/new.sql after rollback (state 0) at probes/new.sql:2:19: {missing}"),
        ]
    );
}

/// A switch that takes full_name away while the old version still runs
/// (renamed aside, NOT NULL dropped, so the new version's inserts need not
/// fill it), with the sync trigger that wrote it; its rollback puts both
/// back, so the phase is restored and only the probe finds what is wrong.
const BAD_SWITCH: [(&str, &str); 3] = [
    (
        "migrations/V3__switch.sql",
        "ALTER TABLE accounts ALTER COLUMN display_name SET NOT NULL;\nDROP TRIGGER accounts_sync_name ON accounts;\nALTER TABLE accounts RENAME COLUMN full_name TO full_name_retired;\nALTER TABLE accounts ALTER COLUMN full_name_retired DROP NOT NULL;\n",
    ),
    (
        "rollback/V3__switch.sql",
        "ALTER TABLE accounts ALTER COLUMN full_name_retired SET NOT NULL;\nALTER TABLE accounts RENAME COLUMN full_name_retired TO full_name;\nCREATE TRIGGER accounts_sync_name BEFORE INSERT OR UPDATE ON accounts\n  FOR EACH ROW EXECUTE FUNCTION accounts_sync_name();\nALTER TABLE accounts ALTER COLUMN display_name DROP NOT NULL;\n",
    ),
    ("migrations/V4__cleanup.sql", "DROP FUNCTION accounts_sync_name();\nALTER TABLE accounts DROP COLUMN full_name_retired;\n"),
];

#[test]
fn a_switch_that_breaks_the_old_version_is_a_rollback_finding_at_the_probes_line_in_every_format() {
    let dir = edited(&BAD_SWITCH);
    let page = dir.path().join("verify.html");
    let junit = dir.path().join("verify.xml");
    let out = verify_as(dir.path(), "json", &["--html", page.to_str().unwrap(), "--junit", junit.to_str().unwrap()]);
    out.expect_exit(exit::ROLLBACK);
    let missing = "column \"full_name\" does not exist (SQLSTATE 42703)";
    assert_eq!(
        probe_findings(&out, dir.path()),
        [
            format!("2: probes/old.sql after re-apply (state 2) at probes/old.sql:2:19: {missing}"),
            format!("2: probes/old.sql after migrate (state 2) at probes/old.sql:2:19: {missing}"),
        ]
    );
    let doc = out.json();
    assert_eq!(doc["verdict"], "ROLLBACK", "{doc:#}");
    let phase2 = &doc["rehearsal"]["phases"][2];
    assert_eq!(phase2["verdict"], "ROLLBACK");
    let probe = phase2["findings"].as_array().unwrap().iter().find(|f| f["kind"] == "probe_failed").unwrap();
    assert_eq!(probe["sqlstate"], "42703", "{probe:#}");
    // The rest of the set is judged as before: the new version works after
    // the switch and the cleanup, the rollback restores the state.
    assert_eq!(phase2["result"], "restored");
    assert_eq!(out.report().rehearsal().phases[3].kinds(), ["no_rollback"]);

    let summary = format!("probe probes/old.sql fails after migrate (the state after phase 2) at {}/probes/old.sql:2:19: {missing}", dir.path().display());
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("an application version breaks: phase 2 switch"), "the page's decision names the probe");
    assert!(html.contains(&summary.replace('"', "&quot;")), "the page lists the finding");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<failure message=\"probe probes/old.sql fails after re-apply (the state after phase 2)"), "{xml}");

    let text = verify_as(dir.path(), "text", &[]);
    text.expect_exit(exit::ROLLBACK);
    assert!(text.stdout.contains(&format!("error: phase 2 switch: {summary}")), "{}", text.stdout);
    assert!(text.stdout.contains("; 2 probe run(s) failed: an application version breaks"), "{}", text.stdout);

    let github = verify_as(dir.path(), "github", &[]);
    github.expect_exit(exit::ROLLBACK);
    let file = format!("{}/probes/old.sql", dir.path().display()).replace(':', "%3A").replace(',', "%2C");
    assert!(github.stdout.contains(&format!("::error file={file},line=2,col=19,title=phasegate verify%3A phase 2 switch::probe probes/old.sql fails after migrate")), "{}", github.stdout);

    let markdown = verify_as(dir.path(), "markdown", &[]);
    markdown.expect_exit(exit::ROLLBACK);
    assert!(markdown.stdout.contains("❌ **phase 2 switch**: probe probes/old.sql fails after migrate"), "{}", markdown.stdout);
}

#[test]
fn transaction_control_in_a_probe_file_is_refused_at_its_line() {
    let dir = edited(&[("probes/old.sql", "SELECT id, full_name FROM accounts;\nCOMMIT;\n")]);
    let out = verify_as(dir.path(), "text", &[]);
    let error = out.expect_exit(exit::ERROR).error_line();
    assert!(error.ends_with("probes/old.sql:2: `COMMIT` in a probe file: verify runs each probe inside a savepoint it rolls back, and the file's own transaction control would end it (remove it)"), "{error}");
}

/// A probe may name rows the seed loads (`change` takes its values from a
/// seeded row). The seed loads after its phase's rollback and re-apply, so
/// that phase's state is probed once the seed is in, by the after-migrate
/// run; a run after the re-apply would meet the state without the seed's
/// rows and call a working application version broken.
#[test]
fn the_phase_the_seed_follows_is_probed_with_the_seeds_rows() {
    let toml = std::fs::read_to_string(fixture("probes_rename").join("phases.toml")).unwrap();
    let toml = format!("{toml}\n[seed]\nafter_phase = 1\n\n[[probe]]\nfile = \"probes/seeded.sql\"\nfrom = 1\nuntil = 1\n");
    // Division by zero unless the seeded account is there.
    let probe = "SELECT 1 / count(*)::int FROM accounts WHERE email = 'seeded@example.test';\n";
    let seed = "INSERT INTO accounts (email, full_name) VALUES ('seeded@example.test', 'Seeded Account');\n";
    let dir = edited(&[("phases.toml", &toml), ("probes/seeded.sql", probe)]);
    std::fs::create_dir_all(dir.path().join("seed")).unwrap();
    std::fs::write(dir.path().join("seed/01_accounts.sql"), seed).unwrap();
    let out = verify_as(dir.path(), "json", &[]);
    assert_eq!(probe_findings(&out, dir.path()), Vec::<String>::new());
    out.expect_exit(exit::OK);
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        probe_steps(&out),
        [
            (0, s(&["probes after migrate"])),
            (1, s(&["probes after rollback", "probes after migrate"])),
            (2, s(&["probes after rollback", "probes after re-apply", "probes after migrate"])),
            (3, s(&["probes after migrate"])),
        ]
    );
}
