//! `lint` (docs/commands.md): the set's structure (docs/migration-set.md,
//! enforced by `set::load`)
//! plus lock-safety rules on every forward and rollback file, with the squawk
//! linter (squawk-linter 2.68, PostgreSQL 15 semantics) used as a library,
//! made phase-aware with what the set knows and squawk does not.
//!
//! How squawk is run: each file is parsed with `SourceFile::parse` and linted
//! with `Linter::with_rules(&[], DISABLED)`; `assume_in_transaction` is set
//! unless the file says `-- phasegate: no-transaction`, because the engine
//! runs every other file in one transaction. A violation's byte range becomes
//! a line and column; its rule name, message and help become a `Finding`
//! (phasegate's own fix text replaces squawk's help where phasegate has a
//! better one, e.g. the no-transaction file for CONCURRENTLY).
//!
//! Phase awareness:
//! - destructive rules (drops, renames, type changes, `DESTRUCTIVE`) are
//!   expected in an irreversible cleanup phase (`!reversible && !baseline`),
//!   expected in a rollback file when they undo what the same migration's
//!   forward file created (a rollback dropping the column its forward file
//!   added, or dropping the NOT NULL its forward file set), expected in a
//!   forward file when the object was created in that same file, and errors
//!   everywhere else: in a reversible phase they destroy what the rollback
//!   cannot bring back, and break the application version still running;
//! - lock rules (`LOCK`) do not apply to the baseline phase, which describes
//!   a schema that already exists; squawk itself skips tables created in the
//!   same transaction (they have no rows yet);
//! - squawk rules that conflict with phasegate's model are off (`DISABLED`,
//!   each with its reason: the timeout rules, because the engine sets the
//!   timeouts; squawk's CONCURRENTLY-in-transaction rule, replaced by one that
//!   reads the directive; the type-preference rules, which judge the schema's
//!   design rather than what a migration does to a live table);
//! - kept on purpose: `prefer-robust-stmts` as a warning (it only speaks
//!   outside a transaction, i.e. in no-transaction files, where a failed
//!   statement is not undone and a re-run should not trip over what it
//!   left); squawk's `transaction-nesting` is replaced by
//!   `transaction-control` (below), which is also a load error;
//! - a squawk parse error is a `syntax-error` finding; a batch file's
//!   `:batch_size` is replaced by a number of the same length first, and
//!   `:last_key` by a NULL of the same length.
//!
//! phasegate's own rules, which need the directives squawk does not know:
//! - `set-structure`: a load error (docs/migration-set.md); linting stops there;
//! - `transaction-control`: `BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`,
//!   `PREPARE TRANSACTION`... at the top level of a forward or rollback file
//!   (the step's one transaction with its ledger rows and checks would be
//!   committed or undone in part), and `trigger-bypass`: `ALTER TABLE ...
//!   DISABLE TRIGGER`, `ENABLE REPLICA TRIGGER` or a change of
//!   `session_replication_role` (also in a DO block), an error in a rollback
//!   file (phasegate's backup triggers would not see its rows) and a warning
//!   in a forward file (the table's own triggers are skipped). Both rules are
//!   `set::refuse`'s, which `set::load` refuses; `lint::dir` loads the set
//!   without refusing them so that each is a finding of its own;
//! - `concurrently-in-transaction`: `CREATE/DROP INDEX CONCURRENTLY`,
//!   `REINDEX ... CONCURRENTLY` or `DETACH PARTITION ... CONCURRENTLY` in a
//!   file without `-- phasegate: no-transaction` (PostgreSQL refuses them in a
//!   transaction block); squawk's own rule assumes a one-statement file runs
//!   outside a transaction, which is not so here;
//! - `enum-value-in-transaction`: `ALTER TYPE ... ADD VALUE` in a transactional
//!   file (the value cannot be used until the transaction commits);
//! - `unbatched-update`: an UPDATE that can touch every row of a table that
//!   existed before the migration (no WHERE, or none comparing with a
//!   literal), outside the baseline and without `-- phasegate: batch N`: it
//!   holds the row locks of the whole table until it commits. Forward files
//!   only: the engine runs a rollback file in one transaction and does not
//!   batch it, so there is no fix to offer there yet.

//!
//! Files: `squawk` runs squawk and sorts its rules; `own` holds phasegate's
//! own rules; `created` reads what a forward file creates, so its rollback
//! may take it away.

pub(crate) mod created;
mod own;
mod squawk;

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use crate::error::{display_path, Error, Location};
use crate::set::{self, MigrationSet, Phase, SqlFile};
use created::Created;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One lint finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// squawk's rule name (`require-concurrent-index-creation`) or one of
    /// phasegate's (`set-structure`, `concurrently-in-transaction`, ...).
    pub rule: String,
    pub severity: Severity,
    pub file: String,
    /// 1-based; 0 when the finding is about the file as a whole.
    pub line: usize,
    /// 1-based; 0 when unknown.
    pub column: usize,
    pub message: String,
    pub fix: Option<String>,
    /// The phase of the file; `None` for a set that does not load.
    pub phase: Option<u32>,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = Location { file: self.file.clone().into(), line: self.line, column: self.column };
        write!(f, "{at}: {} {}: {}", self.severity, self.rule, self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, " (fix: {fix})")?;
        }
        Ok(())
    }
}

/// Lints the set in `dir`: a set that does not load is one `set-structure`
/// finding naming the file and line. Statements `set::load` refuses
/// (transaction control, trigger bypasses) are findings of their own.
pub fn dir(dir: &Path) -> Vec<Finding> {
    match set::load_for_lint(dir) {
        Ok(loaded) => set(&loaded),
        Err(e) => vec![load_finding(dir, &e)],
    }
}

fn load_finding(dir: &Path, e: &Error) -> Finding {
    let (file, line, column, message) = match e {
        Error::Load { at, kind } => (display_path(&at.file), at.line, at.column, kind.to_string()),
        Error::Io { path, source } => (display_path(path), 0, 0, source.to_string()),
        other => (display_path(dir), 0, 0, other.to_string()),
    };
    Finding { rule: "set-structure".into(), severity: Severity::Error, file, line, column, message, fix: None, phase: None }
}

/// Every finding of a loaded set, phase by phase, file by file, in order.
pub fn set(set: &MigrationSet) -> Vec<Finding> {
    set.phases.iter().flat_map(phase).collect()
}

/// The findings of one phase's forward and rollback files.
pub fn phase(phase: &Phase) -> Vec<Finding> {
    let mut out = Vec::new();
    for step in &phase.steps {
        let created = Created::of(&step.forward.text);
        out.extend(lint_file(phase, &step.forward, false, &created));
        if let Some(rb) = &step.rollback {
            out.extend(lint_file(phase, rb, true, &created));
        }
    }
    out
}

fn file_name(f: &SqlFile) -> String {
    display_path(&f.path)
}

fn lint_file(phase: &Phase, file: &SqlFile, rollback: bool, created: &Created) -> Vec<Finding> {
    let mut out = squawk::findings(phase, file, created);
    out.extend(own::findings(phase, file, rollback, created));
    out.extend(own::refusals(phase, file, rollback));
    out.sort_by_key(|f| (f.line, f.column));
    out
}

/// Counts of a list of findings: (errors, warnings, files).
pub fn summary(findings: &[Finding]) -> (usize, usize, usize) {
    let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
    let files: BTreeSet<&str> = findings.iter().map(|f| f.file.as_str()).collect();
    (errors, findings.len() - errors, files.len())
}



#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const CHECK: &str = "-- check: ok\nSELECT 1 WHERE false;\n";

    /// A set whose phase 0 is a baseline creating `t(a, b)`, then phase 1
    /// (`reversible`, or an irreversible cleanup) holding V2 = `forward` with
    /// `rollback`. Returns the findings as (rule, file name, line, severity).
    fn lint(forward: &str, rollback: Option<&str>) -> Vec<(String, String, usize, Severity)> {
        let d = tempfile::tempdir().unwrap();
        let w = |rel: &str, text: &str| {
            let p = d.path().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        };
        let phase1 = match rollback {
            Some(_) => "[[phase]]\nid = 1\nname = \"additive\"\nversions = [2]\n",
            None => "[[phase]]\nid = 1\nname = \"cleanup\"\nversions = [2]\nreversible = false\nreason = \"drops\"\n",
        };
        w("phases.toml", &format!("[[phase]]\nid = 0\nname = \"baseline\"\nversions = [1]\nreversible = false\nreason = \"exists\"\nbaseline = true\n\n{phase1}"));
        w("migrations/V1__base.sql", "CREATE TABLE t (a int, b text);\nCREATE TABLE u (a int);\n");
        w("validations/V1__base.sql", CHECK);
        w("migrations/V2__change.sql", forward);
        w("validations/V2__change.sql", CHECK);
        if let Some(rb) = rollback {
            w("rollback/V2__change.sql", rb);
        }
        dir(d.path())
            .into_iter()
            .map(|f| {
                let name = Path::new(&f.file).file_name().unwrap().to_string_lossy().to_string();
                let dir = Path::new(&f.file).parent().unwrap().file_name().unwrap().to_string_lossy().to_string();
                (f.rule, format!("{dir}/{name}"), f.line, f.severity)
            })
            .collect()
    }

    fn rules(found: &[(String, String, usize, Severity)]) -> Vec<&str> {
        found.iter().map(|f| f.0.as_str()).collect()
    }

    #[test]
    fn dropping_a_column_is_an_error_in_a_reversible_phase_and_expected_in_cleanup() {
        let found = lint("ALTER TABLE t DROP COLUMN b;\n", Some("ALTER TABLE t ADD COLUMN b text;\n"));
        assert_eq!(found, vec![("ban-drop-column".into(), "migrations/V2__change.sql".into(), 1, Severity::Error)]);
        assert_eq!(lint("ALTER TABLE t DROP COLUMN b;\n", None), vec![]);
        let ignored = "-- squawk-ignore ban-drop-column -- b was never read\nALTER TABLE t DROP COLUMN b;\n";
        assert_eq!(lint(ignored, Some("ALTER TABLE t ADD COLUMN b text;\n")), vec![]);
        assert_eq!(rules(&lint("DROP TABLE u;\n", Some("CREATE TABLE u (a int);\n"))), vec!["ban-drop-table"]);
    }

    #[test]
    fn a_rollback_may_drop_what_its_forward_file_created_and_nothing_else() {
        let forward = "ALTER TABLE t ADD COLUMN c int;\nCREATE TABLE v (x int);\n";
        assert_eq!(lint(forward, Some("ALTER TABLE t DROP COLUMN IF EXISTS c;\nDROP TABLE v;\n")), vec![]);
        let found = lint(forward, Some("ALTER TABLE t DROP COLUMN c, DROP COLUMN b;\nDROP TABLE v;\n"));
        assert_eq!(found, vec![("ban-drop-column".into(), "rollback/V2__change.sql".into(), 1, Severity::Error)]);
        // Undoing a NOT NULL the forward file set, or a constraint it added.
        let forward = "ALTER TABLE t ADD CONSTRAINT t_a_nn CHECK (a IS NOT NULL) NOT VALID;\n";
        assert_eq!(lint(forward, Some("ALTER TABLE t DROP CONSTRAINT t_a_nn;\n")), vec![]);
        assert_eq!(rules(&lint("SELECT 1;\n", Some("ALTER TABLE t DROP CONSTRAINT other;\n"))), vec!["ban-drop-constraint"]);
    }

    #[test]
    fn lock_rules_apply_outside_the_baseline_only() {
        // The baseline itself creates an index on an existing table without a finding.
        let found = lint("CREATE INDEX t_a_idx ON t (a);\n", Some("DROP INDEX CONCURRENTLY t_a_idx;\n"));
        assert_eq!(rules(&found), vec!["require-concurrent-index-creation", "concurrently-in-transaction"]);
        let fix = lint_dir_first_fix("CREATE INDEX t_a_idx ON t (a);\n");
        assert!(fix.contains("-- phasegate: no-transaction"), "{fix}");
        // A table created in the same file has no rows: no lock finding.
        assert_eq!(lint("CREATE TABLE w (a int);\nCREATE INDEX w_a_idx ON w (a);\n", Some("DROP TABLE w;\n")), vec![]);
    }

    fn lint_dir_first_fix(forward: &str) -> String {
        let d = tempfile::tempdir().unwrap();
        for (rel, text) in [
            ("phases.toml", "[[phase]]\nid = 1\nname = \"additive\"\nversions = [1]\n"),
            ("migrations/V1__a.sql", forward),
            ("rollback/V1__a.sql", "SELECT 1;\n"),
            ("validations/V1__a.sql", CHECK),
        ] {
            let p = d.path().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        dir(d.path()).remove(0).fix.unwrap()
    }

    #[test]
    fn not_null_and_foreign_keys_need_the_not_valid_pattern() {
        let found = lint("ALTER TABLE t ALTER COLUMN a SET NOT NULL;\n", Some("ALTER TABLE t ALTER COLUMN a DROP NOT NULL;\n"));
        assert_eq!(rules(&found), vec!["adding-not-nullable-field"]);
        let found = lint("ALTER TABLE t ADD CONSTRAINT t_u FOREIGN KEY (a) REFERENCES u (a);\n", Some("ALTER TABLE t DROP CONSTRAINT t_u;\n"));
        assert!(rules(&found).contains(&"adding-foreign-key-constraint"), "{found:?}");
        let safe = "ALTER TABLE t ADD CONSTRAINT t_u FOREIGN KEY (a) REFERENCES u (a) NOT VALID;\n";
        assert_eq!(lint(safe, Some("ALTER TABLE t DROP CONSTRAINT t_u;\n")), vec![]);
    }

    #[test]
    fn concurrently_needs_the_no_transaction_directive() {
        let sql = "CREATE INDEX CONCURRENTLY t_a_idx ON t (a);\n";
        assert_eq!(rules(&lint(sql, Some("DROP INDEX t_a_idx;\n"))), vec!["prefer-robust-stmts", "concurrently-in-transaction", "require-concurrent-index-deletion"]);
        let ok = "-- phasegate: no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_a_idx ON t (a);\n";
        assert_eq!(lint(ok, Some("-- phasegate: no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS t_a_idx;\n")), vec![]);
        let found = lint("ALTER TYPE mood ADD VALUE 'ok' AFTER 'fine';\n", Some("SELECT 1;\n"));
        assert_eq!(found, vec![("enum-value-in-transaction".into(), "migrations/V2__change.sql".into(), 1, Severity::Warning)]);
    }

    #[test]
    fn whole_table_updates_outside_a_batch_are_warnings() {
        let found = lint("UPDATE t SET b = 'x' WHERE b IS NULL;\n", Some("SELECT 1;\n"));
        assert_eq!(found, vec![("unbatched-update".into(), "migrations/V2__change.sql".into(), 1, Severity::Warning)]);
        assert_eq!(lint("UPDATE t SET b = 'x' WHERE a = 3;\n", Some("SELECT 1;\n")), vec![]);
        assert_eq!(lint("UPDATE t SET b = 'x' WHERE a IN (1, 2);\n", Some("SELECT 1;\n")), vec![]);
        let batched = "-- phasegate: batch 100\nUPDATE t SET b = 'x' WHERE a IN (SELECT a FROM t WHERE b IS NULL LIMIT :batch_size);\n";
        assert_eq!(lint(batched, Some("SELECT 1;\n")), vec![]);
        assert_eq!(lint("CREATE TABLE w (a int);\nUPDATE w SET a = 1;\n", Some("DROP TABLE w;\n")), vec![]);
    }

    #[test]
    fn transaction_control_and_trigger_bypasses_are_findings_at_their_lines() {
        let forward = "ALTER TABLE t ADD COLUMN c int;\nALTER TABLE t DISABLE TRIGGER USER;\nCOMMIT;\n";
        let rollback = "BEGIN;\nSET session_replication_role = replica;\nALTER TABLE t DROP COLUMN c;\n";
        let found = lint(forward, Some(rollback));
        assert_eq!(
            found,
            vec![
                ("trigger-bypass".into(), "migrations/V2__change.sql".into(), 2, Severity::Warning),
                ("transaction-control".into(), "migrations/V2__change.sql".into(), 3, Severity::Error),
                ("transaction-control".into(), "rollback/V2__change.sql".into(), 1, Severity::Error),
                ("trigger-bypass".into(), "rollback/V2__change.sql".into(), 2, Severity::Error),
            ]
        );
        // A DO block's BEGIN and a SQL-standard body's BEGIN ATOMIC are not transaction control.
        let fine = "DO $$ BEGIN PERFORM 1; END $$;\nCREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;\n";
        assert_eq!(lint(fine, Some("DROP FUNCTION f();\n")), vec![]);
    }

    #[test]
    fn linting_does_the_same_work_per_byte_whatever_the_statement_count() {
        // phasegate's own side of lint (its rules, the line of each finding),
        // counted rather than timed: bytes lexed and indexed per byte of SQL
        // stay the same from 20 statements to 2000, and so does the number of
        // line indexes built (one per file and rule, none per statement).
        let work = |n: usize| {
            let forward = "UPDATE t SET b = 'x;y' WHERE a = 1;\nALTER TABLE t DISABLE TRIGGER USER;\n".repeat(n);
            let d = tempfile::tempdir().unwrap();
            for (rel, text) in [
                ("phases.toml", "[[phase]]\nid = 1\nname = \"data\"\nversions = [1]\n"),
                ("migrations/V1__a.sql", forward.as_str()),
                ("rollback/V1__a.sql", "SELECT 1;\n"),
                ("validations/V1__a.sql", CHECK),
            ] {
                let p = d.path().join(rel);
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(p, text).unwrap();
            }
            let set = set::load(d.path()).unwrap();
            crate::sqltext::work::take();
            let found = super::set(&set);
            let (lexed, indexed, indexes) = crate::sqltext::work::take();
            assert_eq!(found.iter().filter(|f| f.rule == "trigger-bypass").count(), n);
            let bytes = (forward.len() + "SELECT 1;\n".len()) as f64;
            (lexed as f64 / bytes, indexed as f64 / bytes, indexes)
        };
        let (small, large) = (work(20), work(2000));
        assert_eq!(small.2, large.2, "{small:?} {large:?}");
        assert!(large.0 <= small.0 * 1.01 && large.1 <= small.1 * 1.01, "{small:?} for 20 statements, {large:?} for 2000");
    }

    #[test]
    fn a_set_that_does_not_load_is_one_finding_with_file_and_line() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("phases.toml"), "[[phase]]\nid = 1\nname = \"a\"\nversions = [1]\ncolour = 2\n").unwrap();
        fs::create_dir(d.path().join("migrations")).unwrap();
        let found = dir(d.path());
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].rule.as_str(), found[0].line, found[0].severity, found[0].phase), ("set-structure", 5, Severity::Error, None));
        assert!(found[0].file.ends_with("phases.toml"));
    }
}

