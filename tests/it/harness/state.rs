//! Assertions on whole database states (schema and every table's rows),
//! insta snapshots of the normalised schema, and the phase-by-phase walk
//! both shipped sets go through.

use std::path::Path;

use super::json::{Check, Verdict};
use super::{exit, run, AsReport, Report, TestDb};

/// Copies a migration set to a temporary folder the test may edit.
pub fn copy_set(src: &Path) -> tempfile::TempDir {
    let dst = tempfile::tempdir().unwrap();
    for sub in ["", "migrations", "rollback", "validations", "seed", "probes"] {
        let from = src.join(sub);
        if !from.is_dir() {
            continue;
        }
        std::fs::create_dir_all(dst.path().join(sub)).unwrap();
        for e in std::fs::read_dir(&from).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, dst.path().join(sub).join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    dst
}

/// Asserts two snapshots are equal, printing a unified diff when not.
#[track_caller]
pub fn assert_same_state(before: &phasegate::Snapshot, after: &phasegate::Snapshot, what: &str) {
    if before.schema != after.schema {
        panic!("{what}: schema differs\n{}", phasegate::schema_diff(&before.schema, &after.schema, "before", "after"));
    }
    for (t, f) in &before.tables {
        match after.tables.get(t) {
            Some(g) if g == f => {}
            Some(g) => panic!("{what}: rows of {t} changed: {} rows {} -> {} rows {}", f.rows, f.hash, g.rows, g.hash),
            None => panic!("{what}: table {t} is gone"),
        }
    }
    if let Some(t) = after.tables.keys().find(|t| !before.tables.contains_key(*t)) {
        panic!("{what}: table {t} appeared");
    }
}

/// Compares a normalised schema with tests/snapshots/NAME.snap.
#[track_caller]
pub fn schema_snapshot(name: &str, schema: &str) {
    insta::with_settings!({ snapshot_path => "../../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(name, schema);
    });
}

/// Asserts that checks ran and every one said PROCEED.
#[track_caller]
pub fn assert_all_proceed(doc: &impl AsReport) {
    let doc = doc.as_report();
    assert!(!doc.checks.is_empty(), "no checks ran: {doc:#?}");
    let bad: Vec<(String, Verdict)> = doc.checks.iter().filter(|c| c.verdict != Verdict::Proceed).map(|c| (c.label(), c.verdict)).collect();
    assert!(bad.is_empty(), "checks not PROCEED: {bad:?}\n{doc:#?}");
}

/// Snapshots the state, then migrates phase by phase up to `last`, asserting
/// every check PROCEEDs (and PROCEEDs again in `validate`, with no metric
/// empty: a seeded database gives each something to measure) and comparing
/// each schema with the insta snapshot `<label>_schema_after_phase_N`.
/// Returns the snapshot after each phase
/// (index 0: before the first).
#[track_caller]
pub fn migrate_phase_by_phase(db: &TestDb, dir: &Path, label: &str, first: u32, last: u32) -> Vec<phasegate::Snapshot> {
    let mut states = vec![db.snapshot()];
    schema_snapshot(&format!("{label}_schema_after_phase_{}", first - 1), &states[0].schema);
    for phase in first..=last {
        let out = run(db, dir, &["migrate", "--phase", &phase.to_string(), "--format", "json"], "");
        assert_eq!(out.code, exit::OK, "migrate --phase {phase}: {out:?}");
        assert_all_proceed(&out.report());
        let doc = proceeds(db, dir, &["validate"]);
        assert_eq!(empty_metrics(&doc), Vec::<String>::new(), "validate after phase {phase}: {doc:#?}");
        let snap = db.snapshot();
        schema_snapshot(&format!("{label}_schema_after_phase_{phase}"), &snap.schema);
        states.push(snap);
    }
    states
}

/// Rolls back phases `last` down to `first`, asserting each restores the
/// state before it (`states` from `migrate_phase_by_phase`), then re-applies
/// them and compares with the first forward state.
#[track_caller]
pub fn roll_back_phase_by_phase_and_reapply(db: &TestDb, dir: &Path, states: &[phasegate::Snapshot], first: u32, last: u32) {
    for phase in (first..=last).rev() {
        let out = run(db, dir, &["rollback", "--phase", &phase.to_string(), "--yes", "--format", "json"], "");
        assert_eq!(out.code, exit::OK, "rollback --phase {phase}: {out:?}");
        let doc = out.report();
        assert_all_proceed(&doc);
        assert!(doc.checks.iter().all(|c| c.when == "after-rollback" || c.when == "before-rollback"), "{doc:#?}");
        assert_same_state(&states[(phase - first) as usize], &db.snapshot(), &format!("after rolling back phase {phase}"));
    }
    run(db, dir, &["migrate", "--phase", &last.to_string()], "").expect_exit(exit::OK);
    assert_same_state(&states[(last - first + 1) as usize], &db.snapshot(), &format!("after re-applying phases {first}-{last}"));
}

/// The metric checks that said "nothing to measure" (JSON `"empty": true`,
/// `"value": null`) in a command's output, as `V<version> <check>`.
pub fn empty_metrics(doc: &impl AsReport) -> Vec<String> {
    let checks: Vec<Check> = doc.as_report().checks.iter().filter(|c| c.empty).cloned().collect();
    checks
        .iter()
        .map(|c| {
            assert!(c.value.is_none(), "an empty metric has no value: {c:?}");
            c.label()
        })
        .collect()
}

/// Runs a command with `--format json`, asserting exit 0 and every check
/// PROCEED; returns the document.
#[track_caller]
fn proceeds(db: &TestDb, dir: &Path, args: &[&str]) -> Report {
    let mut full = args.to_vec();
    full.extend(["--format", "json"]);
    let out = run(db, dir, &full, "");
    assert_eq!(out.code, exit::OK, "{args:?}: {out:?}");
    let doc = out.report();
    assert_all_proceed(&doc);
    doc
}

/// What a set's walk over a database reported.
#[derive(Debug)]
pub struct Walk {
    /// Every metric that had nothing to measure, per command (`validate`,
    /// `migrate --phase 3`, `rollback --phase 2`, ...), in order.
    pub empty: Vec<(String, Vec<String>)>,
    /// The text (decision tables) of `validate` after each reversible phase.
    pub validate_text: String,
}

impl Walk {
    /// Asserts that exactly `shares` (`V<version> <check>`, the checks of
    /// phase `phase` computing a share) had nothing to measure: in `migrate`
    /// and `validate` of that phase and in the final `migrate --yes`, and
    /// nowhere else; and that the decision table shows each as "no rows",
    /// PROCEED.
    #[track_caller]
    pub fn assert_only_these_were_empty(&self, phase: u32, shares: &[&str]) {
        for (what, empty) in &self.empty {
            let expected: &[&str] = if [format!("migrate --phase {phase}"), format!("validate after phase {phase}"), "migrate --yes".into()].contains(what) { shares } else { &[] };
            assert_eq!(empty, expected, "{what}: {self:?}");
        }
        for share in shares {
            let name = share.split_once(' ').unwrap().1;
            let line = self.validate_text.lines().find(|l| l.contains(name)).unwrap_or_else(|| panic!("no {name} in:\n{}", self.validate_text));
            assert!(line.contains(" no rows ") && line.ends_with("PROCEED"), "{line}");
        }
    }
}

/// The life of a set on one database, every command exiting 0 with every
/// check PROCEED: each phase up to `last_reversible` migrated and validated
/// (JSON and text), then rolled back from `last_reversible` down to 1,
/// newest first, then every phase migrated at once (`--yes` confirms the
/// irreversible ones) and validated again. `validate` runs the current
/// phase's checks: an earlier phase's after-migrate checks describe the
/// state right after it, which a later phase changes.
#[track_caller]
pub fn walk_every_phase(db: &TestDb, dir: &Path, last_reversible: u32) -> Walk {
    let (mut empty, mut validate_text) = (Vec::new(), String::new());
    let mut record = |what: String, doc: &Report| empty.push((what, empty_metrics(doc)));
    for phase in 1..=last_reversible {
        let p = phase.to_string();
        record(format!("migrate --phase {p}"), &proceeds(db, dir, &["migrate", "--phase", &p]));
        record(format!("validate after phase {p}"), &proceeds(db, dir, &["validate"]));
        let text = run(db, dir, &["validate"], "");
        text.expect_exit(exit::OK);
        validate_text.push_str(&text.stdout);
    }
    for phase in (1..=last_reversible).rev() {
        let p = phase.to_string();
        record(format!("rollback --phase {p}"), &proceeds(db, dir, &["rollback", "--phase", &p, "--yes"]));
    }
    record("migrate --yes".into(), &proceeds(db, dir, &["migrate", "--yes"]));
    record("validate after every phase".into(), &proceeds(db, dir, &["validate"]));
    Walk { empty, validate_text }
}
