//! Nothing lost on bad input (docs/safety.md, docs/targets.md): each kind of bad input is a
//! mutation of a copy of tests/fixtures/bad_input (phase 1 applied to the
//! database first), run through one helper that asserts a non-zero exit, one
//! error line naming the file and line (where there is one), and a database
//! whose snapshot and ledger are unchanged. Each kind also names the
//! error the engine returns for it, called directly (`load_set`,
//! `migrate`, `MigrationSet::phase`, `connect`): the variant is asserted,
//! not only the message.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use phasegate::{Error, LoadError, Options, Quiet, SqlState};

use crate::harness::{assert_same_state, copy_set, exit, fixture, on, run, server, TestDb};

/// Which database a kind talks to.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The test's database (phase 1 applied).
    Db,
    /// A port nothing listens on.
    Unreachable,
    /// The test server, as a role that exists, with the wrong password.
    WrongPassword,
    /// The test server, a database that does not exist.
    NoSuchDatabase,
}

/// The error the engine returns for a kind, and the call that returns it.
#[derive(Clone, Copy)]
enum Expect {
    /// `load_set` fails with an error this accepts.
    Load(fn(&Error) -> bool),
    /// The set loads; the engine's `migrate` to the latest version fails so.
    Migrate(fn(&Error) -> bool),
    /// `MigrationSet::phase` of this id fails so.
    Phase(u32, fn(&Error) -> bool),
    /// `connect` to the kind's target fails so.
    Connect(fn(&Error) -> bool),
}

/// `load_set` fails with this kind of load problem.
macro_rules! load {
    ($($kind:tt)+) => { Expect::Load(|e| matches!(e, Error::Load { kind: LoadError::$($kind)+, .. })) };
}
/// `load_set` fails with this error.
macro_rules! is {
    ($p:pat) => { Expect::Load(|e| matches!(e, $p)) };
}
/// The set loads and the engine's `migrate` fails with this error.
macro_rules! ran {
    ($p:pat) => { Expect::Migrate(|e| matches!(e, $p)) };
}

struct Kind {
    name: &'static str,
    /// Turns the valid base set into the bad input.
    mutate: fn(&Path),
    command: &'static [&'static str],
    target: Target,
    /// The engine's error for it.
    expect: Expect,
    /// How the one error line (after `error: `, the set's folder removed) starts.
    error: &'static str,
}

fn write(d: &Path, rel: &str, text: impl AsRef<[u8]>) {
    let p = d.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn remove(d: &Path, rel: &str) {
    std::fs::remove_file(d.join(rel)).unwrap();
}

/// Replaces `from` (which must occur) with `to` in a file.
fn edit(d: &Path, rel: &str, from: &str, to: &str) {
    let p = d.join(rel);
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "{rel} has no `{from}`");
    std::fs::write(p, text.replacen(from, to, 1)).unwrap();
}

/// Replaces migrations/V2__add_tier.sql with a symlink to `target`.
fn replace_with_symlink(d: &Path, target: &str) {
    remove(d, "migrations/V2__add_tier.sql");
    std::os::unix::fs::symlink(target, d.join("migrations/V2__add_tier.sql")).unwrap();
}

const MIGRATE: &[&str] = &["migrate", "--yes"];

/// The metric query of validations/V2__add_tier.sql.
const GOLD_SHARE: &str = "SELECT 100.0 * count(*) FILTER (WHERE tier = 'gold') / greatest(count(*), 1) FROM customers;";

fn kinds() -> Vec<Kind> {
    use Target::*;
    let k = |name, mutate: fn(&Path), expect, error| Kind { name, mutate, command: MIGRATE, target: Db, expect, error };
    vec![
        // File names and pairing.
        k("name_without_double_underscore", |d| write(d, "migrations/V5_extra.sql", "SELECT 1;"), load!(BadFileName), "migrations/V5_extra.sql: file name must be V{version}__{name}.sql"),
        k("name_version_not_a_number", |d| write(d, "migrations/Vfive__extra.sql", "SELECT 1;"), load!(BadFileName), "migrations/Vfive__extra.sql: file name must be"),
        k("name_with_a_dash", |d| write(d, "migrations/V5__add-extra.sql", "SELECT 1;"), load!(BadFileName), "migrations/V5__add-extra.sql: file name must be"),
        k("duplicate_version", |d| write(d, "migrations/V02__tier_again.sql", "SELECT 1;"), load!(DuplicateVersion { what: "version", .. }), "migrations/V2__add_tier.sql: duplicate version 2: also "),
        k("sub_folder_in_migrations", |d| write(d, "migrations/old/V9__old.sql", "SELECT 1;"), load!(SubFolder { sub: "migrations" }), "migrations/old: sub-folders are not allowed in migrations/"),
        k("no_migrations_folder", |d| std::fs::remove_dir_all(d.join("migrations")).unwrap(), load!(FolderNotFound { migrations: true }), "migrations: folder not found"),
        k("rollback_without_forward", |d| write(d, "rollback/V9__ghost.sql", "SELECT 1;"), load!(NoForward { kind: "rollback", .. }), "rollback/V9__ghost.sql: rollback file has no forward migration"),
        k("validation_without_forward", |d| write(d, "validations/V9__ghost.sql", "-- check: a\nSELECT 1 WHERE false;"), load!(NoForward { kind: "validations", .. }), "validations/V9__ghost.sql: validations file has no forward migration"),
        k(
            "rollback_name_differs",
            |d| std::fs::rename(d.join("rollback/V2__add_tier.sql"), d.join("rollback/V2__add_tiers.sql")).unwrap(),
            load!(NoForward { kind: "rollback", .. }),
            "rollback/V2__add_tiers.sql: rollback file has no forward migration",
        ),
        k("missing_rollback", |d| remove(d, "rollback/V3__fill_tier.sql"), load!(MissingRollback { version: 3, phase: 2 }), "rollback/V3__fill_tier.sql: missing rollback for migration 3 of reversible phase 2"),
        k("missing_validation", |d| remove(d, "validations/V2__add_tier.sql"), load!(MissingValidation { version: 2 }), "validations/V2__add_tier.sql: missing validation for migration 2"),
        k("rollback_in_irreversible_phase", |d| write(d, "rollback/V4__drop_legacy.sql", "SELECT 1;"), load!(RollbackInIrreversible { version: 4, phase: 3 }), "rollback/V4__drop_legacy.sql: phase 3 is irreversible, so migration 4 must have no rollback file"),
        // phases.toml.
        k("manifest_missing", |d| remove(d, "phases.toml"), is!(Error::NoMigrationSet { .. }), "no migration set in "),
        k("manifest_not_toml", |d| edit(d, "phases.toml", "[[phase]]\nid = 2", "[[phase]\nid = 2"), load!(Toml { .. }), "phases.toml:9: "),
        k("manifest_unknown_field", |d| edit(d, "phases.toml", "versions = [1]\n", "versions = [1]\ncolour = \"red\"\n"), load!(Toml { .. }), "phases.toml:8: unknown field `colour`"),
        k("manifest_without_phases", |d| write(d, "phases.toml", "# nothing yet\n"), load!(NoPhases), "phases.toml:1: no `[[phase]]` defined"),
        k("phase_ids_descend", |d| edit(d, "phases.toml", "id = 2", "id = 0"), load!(PhaseIdsDescend { id: 0, previous: 1 }), "phases.toml:10: phase ids must ascend: phase 0 comes after phase 1"),
        k("version_in_two_phases", |d| edit(d, "phases.toml", "versions = [4]", "versions = [3, 4]"), load!(VersionInTwoPhases { version: 3, other: 2, phase: 3 }), "phases.toml:19: version 3 belongs to phase 2 and phase 3"),
        k("version_without_file", |d| edit(d, "phases.toml", "versions = [4]", "versions = [4, 5]"), load!(VersionWithoutFile { phase: 3, version: 5, .. }), "phases.toml:19: phase 3 lists version 5 but "),
        k("versions_out_of_order", |d| edit(d, "phases.toml", "versions = [2, 3]", "versions = [3, 2]"), load!(VersionOutOfOrder { phase: 2, version: 3, expected: Some(2) }), "phases.toml:13: phase 2 lists version 3 out of order"),
        k("phase_without_versions", |d| edit(d, "phases.toml", "versions = [1]", "versions = []"), load!(NoVersions { phase: 1 }), "phases.toml:7: phase 1 lists no versions"),
        k(
            "migration_in_no_phase",
            |d| {
                write(d, "migrations/V5__extra.sql", "SELECT 1;");
                write(d, "validations/V5__extra.sql", "-- check: a\nSELECT 1 WHERE false;");
            },
            load!(NotInPhase { version: 5 }),
            "migrations/V5__extra.sql: migration 5 belongs to no phase in phases.toml",
        ),
        k(
            "irreversible_without_reason",
            |d| edit(d, "phases.toml", "reason = \"drops a column whose data exists nowhere else\"\n", ""),
            load!(NoReason { phase: 3 }),
            "phases.toml:15: phase 3 is irreversible and needs a `reason`",
        ),
        k("seed_after_unknown_phase", |d| edit(d, "phases.toml", "nowhere else\"\n", "nowhere else\"\n\n[seed]\nafter_phase = 7\n"), load!(SeedUnknownPhase { after: 7 }), "phases.toml:24: seed.after_phase = 7 names no phase"),
        k("non_utf8_manifest", |d| write(d, "phases.toml", b"[[phase]]\nid = 1\nname = \"caf\xe9\"\n"), load!(NotUtf8), "phases.toml:3: file is not valid UTF-8"),
        // Directives.
        k("unknown_directive", |d| edit(d, "migrations/V2__add_tier.sql", "ALTER", "-- phasegate: fast\nALTER"), load!(UnknownDirective { .. }), "migrations/V2__add_tier.sql:1: unknown directive `fast`"),
        k(
            "directive_after_sql",
            |d| edit(d, "migrations/V2__add_tier.sql", "(tier);\n", "(tier);\n-- phasegate: lock-timeout 2s\n"),
            load!(DirectiveAfterSql),
            "migrations/V2__add_tier.sql:3: directives go at the top of the file",
        ),
        k("directive_bad_duration", |d| edit(d, "migrations/V2__add_tier.sql", "ALTER", "-- phasegate: lock-timeout soon\nALTER"), load!(BadDirective { .. }), "migrations/V2__add_tier.sql:1: `soon` is not a duration"),
        k("batch_of_zero", |d| edit(d, "migrations/V3__fill_tier.sql", "UPDATE", "-- phasegate: batch 0\nUPDATE"), load!(BadDirective { .. }), "migrations/V3__fill_tier.sql:1: `batch` needs a positive row count or a target duration per batch (e.g. 5000, 150ms, 200ms max 20000), got `0`"),
        k(
            "batch_without_limit",
            |d| edit(d, "migrations/V3__fill_tier.sql", "UPDATE", "-- phasegate: batch 100\nUPDATE"),
            load!(BatchWithoutLimit),
            "migrations/V3__fill_tier.sql:2: a `batch` UPDATE must select its rows with `LIMIT :batch_size`",
        ),
        k(
            "no_transaction_with_two_statements",
            |d| edit(d, "migrations/V2__add_tier.sql", "ALTER", "-- phasegate: no-transaction\nALTER"),
            load!(NoTransactionStatements),
            "migrations/V2__add_tier.sql:3: a `no-transaction` file holds exactly one statement",
        ),
        k(
            "directive_in_a_validation",
            |d| edit(d, "validations/V3__fill_tier.sql", "-- check", "-- phasegate: no-transaction\n-- check"),
            load!(DirectiveNotAllowed),
            "validations/V3__fill_tier.sql:1: directives are only allowed in migration and rollback files",
        ),
        // Empty and non-UTF-8 files.
        k("empty_migration", |d| write(d, "migrations/V2__add_tier.sql", ""), load!(NoStatement), "migrations/V2__add_tier.sql:1: file holds no SQL statement"),
        k("comment_only_rollback", |d| write(d, "rollback/V2__add_tier.sql", "-- TODO\n"), load!(NoStatement), "rollback/V2__add_tier.sql:1: file holds no SQL statement"),
        k(
            "non_utf8_migration",
            |d| write(d, "migrations/V2__add_tier.sql", b"ALTER TABLE customers ADD COLUMN tier text;\n-- caf\xe9\n"),
            load!(NotUtf8),
            "migrations/V2__add_tier.sql:2: file is not valid UTF-8",
        ),
        k(
            "non_utf8_validation",
            |d| write(d, "validations/V3__fill_tier.sql", b"-- check: tier_filled\n-- description: \xff\nSELECT 1 WHERE false;\n"),
            load!(NotUtf8),
            "validations/V3__fill_tier.sql:2: file is not valid UTF-8",
        ),
        // Check headers and thresholds.
        k("validation_without_check", |d| write(d, "validations/V3__fill_tier.sql", "SELECT id FROM customers;\n"), load!(NoCheck), "validations/V3__fill_tier.sql:1: no check found"),
        k("sql_before_first_check", |d| edit(d, "validations/V3__fill_tier.sql", "-- check", "SELECT 1;\n-- check"), load!(SqlBeforeCheck), "validations/V3__fill_tier.sql:1: SQL before the first `-- check:` header"),
        k("check_unknown_key", |d| edit(d, "validations/V3__fill_tier.sql", "\nSELECT", "\n-- colour: red\nSELECT"), load!(UnknownCheckKey { .. }), "validations/V3__fill_tier.sql:2: unknown check key `colour`"),
        k("check_bad_name", |d| edit(d, "validations/V3__fill_tier.sql", "tier_filled", "tier filled!"), load!(BadCheckName { .. }), "validations/V3__fill_tier.sql:1: check name `tier filled!` must be"),
        k("check_unknown_severity", |d| edit(d, "validations/V3__fill_tier.sql", "\nSELECT", "\n-- severity: fatal\nSELECT"), load!(UnknownValue { expected: "critical or warning", .. }), "validations/V3__fill_tier.sql:2: unknown severity `fatal`"),
        k("check_unknown_when", |d| edit(d, "validations/V3__fill_tier.sql", "\nSELECT", "\n-- when: later\nSELECT"), load!(UnknownValue { .. }), "validations/V3__fill_tier.sql:2: unknown `when: later`"),
        k("check_key_twice", |d| edit(d, "validations/V3__fill_tier.sql", "\nSELECT", "\n-- severity: warning\n-- severity: critical\nSELECT"), load!(KeyTwice { .. }), "validations/V3__fill_tier.sql:3: `severity` given twice"),
        k("check_prose_in_header", |d| edit(d, "validations/V3__fill_tier.sql", "\nSELECT", "\n-- every row needs a tier\nSELECT"), load!(ProseInHeader { .. }), "validations/V3__fill_tier.sql:2: comment inside a check header"),
        k("check_without_query", |d| write(d, "validations/V3__fill_tier.sql", "-- check: tier_filled\n-- severity: warning\n"), load!(NoStatement), "validations/V3__fill_tier.sql:1: file holds no SQL statement"),
        k("check_two_statements", |d| edit(d, "validations/V3__fill_tier.sql", "IS NULL;\n", "IS NULL;\nSELECT 1;\n"), load!(TwoStatements { .. }), "validations/V3__fill_tier.sql:3: check `tier_filled` has more than one statement"),
        k("check_defined_twice", |d| edit(d, "validations/V2__add_tier.sql", "gold_share", "tier_column_added"), load!(CheckTwice { .. }), "validations/V2__add_tier.sql:5: check `tier_column_added` is defined twice"),
        k("metric_without_thresholds", |d| edit(d, "validations/V2__add_tier.sql", "-- proceed: <= 100\n", ""), load!(NoThresholds { .. }), "validations/V2__add_tier.sql:6: metric check `gold_share` has no thresholds"),
        k("thresholds_without_metric", |d| edit(d, "validations/V2__add_tier.sql", "-- metric: percent\n", ""), load!(ThresholdsWithoutMetric { .. }), "validations/V2__add_tier.sql:6: check `gold_share` has thresholds but no `-- metric: <unit>`"),
        k("threshold_not_a_condition", |d| edit(d, "validations/V2__add_tier.sql", "<= 100", "about 100"), load!(BadLimit { threshold: true, .. }), "validations/V2__add_tier.sql:7: `proceed` threshold `about 100` is not a condition"),
        k("threshold_not_a_number", |d| edit(d, "validations/V2__add_tier.sql", "<= 100", "<= lots"), load!(BadLimit { threshold: true, .. }), "validations/V2__add_tier.sql:7: `proceed` threshold `lots` is not a number"),
        k("empty_unknown_verdict", |d| edit(d, "validations/V2__add_tier.sql", "<= 100\n", "<= 100\n-- empty: skip\n"), load!(UnknownValue { expected: "proceed, review or rollback", .. }), "validations/V2__add_tier.sql:8: unknown `empty: skip` (expected proceed, review or rollback)"),
        k("empty_on_an_assertion", |d| edit(d, "validations/V3__fill_tier.sql", "\nSELECT", "\n-- empty: review\nSELECT"), load!(EmptyOnAssertion { .. }), "validations/V3__fill_tier.sql:2: `empty:` is for metric checks; check `tier_filled` is an assertion"),
        k("threshold_bounds_reversed", |d| edit(d, "validations/V2__add_tier.sql", "<= 100", "between 100 and 0"), load!(BadLimit { threshold: true, .. }), "validations/V2__add_tier.sql:7: `proceed` threshold `between 100 and 0`: the lower bound is above the upper bound"),
        // Result shapes, SQL errors (in V2, the first pending migration: its
        // transaction must leave nothing behind).
        k("metric_returns_rows", |d| edit(d, "validations/V2__add_tier.sql", "SELECT 100.0", "SELECT id FROM customers UNION ALL SELECT 100.0"), METRIC_SHAPE, "validations/V2__add_tier.sql:8: metric check `gold_share` returned several rows"),
        k("metric_returns_no_row", |d| edit(d, "validations/V2__add_tier.sql", "FROM customers;", "FROM customers WHERE false GROUP BY id;"), METRIC_SHAPE, "validations/V2__add_tier.sql:8: metric check `gold_share` returned no rows"),
        k("metric_returns_two_columns", |d| edit(d, "validations/V2__add_tier.sql", "SELECT 100.0", "SELECT 1 AS a, 100.0"), METRIC_SHAPE, "validations/V2__add_tier.sql:8: metric check `gold_share` returned 2 columns"),
        k("metric_returns_text", |d| edit(d, "validations/V2__add_tier.sql", GOLD_SHARE, "SELECT 'high' AS level;"), METRIC_SHAPE, "validations/V2__add_tier.sql:8: metric check `gold_share` returned \"high\" in column `level`, not a number"),
        k("sql_syntax_error", |d| edit(d, "migrations/V2__add_tier.sql", "(tier);", "(tier) WHERE;"), ran!(Error::Sql { sqlstate: Some(SqlState::SYNTAX_ERROR), .. }), "migrations/V2__add_tier.sql:2:58: syntax error at end of input"),
        k("sql_unknown_column", |d| edit(d, "migrations/V2__add_tier.sql", "(tier);", "(tiers);"), ran!(Error::Sql { sqlstate: Some(SqlState::UNDEFINED_COLUMN), .. }), "migrations/V2__add_tier.sql:2: column \"tiers\" does not exist"),
        k(
            "check_on_missing_table",
            |d| edit(d, "validations/V2__add_tier.sql", "FROM customers;", "FROM customer_tiers;"),
            ran!(Error::Sql { sqlstate: Some(SqlState::UNDEFINED_TABLE), .. }),
            "validations/V2__add_tier.sql:8:83: check `gold_share`: relation \"customer_tiers\" does not exist",
        ),
        // A check's error among assertions that run in one message (check::batch):
        // found when the message is parsed (nothing of it ran) or when its statement runs.
        k(
            "check_syntax_error_after_another_check",
            |d| edit(d, "validations/V2__add_tier.sql", "-- check: gold_share", "-- check: tier_values\nSELECT id FROM customers WHERE tier NOT IN ('gold' 'silver');\n\n-- check: gold_share"),
            ran!(Error::Sql { sqlstate: Some(SqlState::SYNTAX_ERROR), .. }),
            "validations/V2__add_tier.sql:6:52: check `tier_values`: syntax error at or near \"'silver'\"",
        ),
        k(
            "check_error_after_another_check",
            |d| edit(d, "validations/V2__add_tier.sql", "-- check: gold_share", "-- check: tier_values\nSELECT id FROM customer_tier;\n\n-- check: gold_share"),
            ran!(Error::Sql { sqlstate: Some(SqlState::UNDEFINED_TABLE), .. }),
            "validations/V2__add_tier.sql:6:16: check `tier_values`: relation \"customer_tier\" does not exist",
        ),
        // Statements a migration or rollback file may not run.
        k("commit_in_a_migration", |d| edit(d, "migrations/V2__add_tier.sql", "tier text;\n", "tier text;\nCOMMIT;\n"), load!(Refused { .. }), "migrations/V2__add_tier.sql:2: `COMMIT` in a migration file"),
        k("savepoint_in_a_rollback", |d| edit(d, "rollback/V3__fill_tier.sql", "UPDATE", "SAVEPOINT before_update;\nUPDATE"), load!(Refused { .. }), "rollback/V3__fill_tier.sql:1: `SAVEPOINT` in a rollback file"),
        k(
            "rollback_disables_triggers",
            |d| edit(d, "rollback/V3__fill_tier.sql", "UPDATE", "ALTER TABLE customers DISABLE TRIGGER USER;\nUPDATE"),
            load!(Refused { .. }),
            "rollback/V3__fill_tier.sql:1: `ALTER TABLE ... DISABLE TRIGGER USER` in a rollback file keeps phasegate's backup triggers",
        ),
        k(
            "rollback_sets_replication_role",
            |d| edit(d, "rollback/V3__fill_tier.sql", "UPDATE", "SET session_replication_role = replica;\nUPDATE"),
            load!(Refused { .. }),
            "rollback/V3__fill_tier.sql:1: a change of `session_replication_role` in a rollback file",
        ),
        // Files that are not the set's own regular files, or too large.
        k("symlink_out_of_the_set", |d| replace_with_symlink(d, "/etc/passwd"), load!(OutsideFolder { .. }), "migrations/V2__add_tier.sql: resolves to /etc/passwd, outside the set's folder"),
        k("symlink_to_dev_zero", |d| replace_with_symlink(d, "/dev/zero"), load!(OutsideFolder { .. }), "migrations/V2__add_tier.sql: resolves to /dev/zero, outside the set's folder"),
        k(
            "fifo_in_the_set",
            |d| {
                remove(d, "migrations/V2__add_tier.sql");
                let made = std::process::Command::new("mkfifo").arg(d.join("migrations/V2__add_tier.sql")).status().unwrap();
                assert!(made.success());
            },
            load!(NotRegularFile { what: "a FIFO" }),
            "migrations/V2__add_tier.sql: is a FIFO, not a regular file",
        ),
        k(
            "file_over_the_size_cap",
            |d| std::fs::File::create(d.join("migrations/V2__add_tier.sql")).unwrap().set_len(64 * 1024 * 1024 + 1).unwrap(),
            load!(TooLarge { bytes: 67108865, cap_mib: 64 }),
            "migrations/V2__add_tier.sql: is 67108865 bytes, more than a set's file may hold (64 MiB)",
        ),
        // Check shapes and limits found when the check runs.
        k("metric_two_unnamed_columns", |d| edit(d, "validations/V2__add_tier.sql", GOLD_SHARE, "SELECT 1, 0;"), METRIC_SHAPE, "validations/V2__add_tier.sql:8: metric check `gold_share` returned 2 columns"),
        k(
            "metric_numeric_too_large",
            |d| edit(d, "validations/V2__add_tier.sql", GOLD_SHARE, "SELECT 1e400::numeric;"),
            METRIC_SHAPE,
            "validations/V2__add_tier.sql:8: metric check `gold_share` returned a number too large for a double (100000000000000000000000..., 401 digits)",
        ),
        k("metric_not_a_finite_number", |d| edit(d, "validations/V2__add_tier.sql", GOLD_SHARE, "SELECT 'NaN'::float8 AS share;"), METRIC_SHAPE, "validations/V2__add_tier.sql:8: metric check `gold_share` returned NaN, not a finite number"),
        k("metric_returns_a_boolean", |d| edit(d, "validations/V2__add_tier.sql", GOLD_SHARE, "SELECT true AS share;"), METRIC_SHAPE, "validations/V2__add_tier.sql:8: metric check `gold_share` returned \"true\" in column `share`, not a number"),
        k(
            "check_times_out",
            |d| edit(d, "validations/V2__add_tier.sql", "tier_column_added\nSELECT 1 WHERE", "tier_column_added\n-- timeout: 100ms\nSELECT 1 FROM pg_sleep(30) WHERE true OR"),
            ran!(Error::Sql { sqlstate: Some(SqlState::QUERY_CANCELED), .. }),
            "validations/V2__add_tier.sql:3: check `tier_column_added` timed out after 100ms",
        ),
        // Drift between the ledger (V1 applied) and the files.
        k(
            "drift_applied_file_edited",
            |d| edit(d, "migrations/V1__create_customers.sql", "a@one.test", "x@one.test"),
            ran!(Error::Drift(..)),
            "migration 1 was applied but its file has changed since (migrations/V1__create_customers.sql)",
        ),
        k(
            "drift_applied_file_missing",
            |d| {
                for sub in ["migrations", "rollback", "validations"] {
                    remove(d, &format!("{sub}/V1__create_customers.sql"));
                }
                edit(d, "phases.toml", "summary = \"customers table\"\nversions = [1]", "summary = \"customers table\"\nversions = [2]");
                edit(d, "phases.toml", "versions = [2, 3]", "versions = [3]");
            },
            ran!(Error::Drift(..)),
            "migration 1 (create_customers) was applied but its file is missing from migrations",
        ),
        // The database itself.
        Kind {
            name: "unknown_phase",
            mutate: |_| {},
            command: &["migrate", "--phase", "9"],
            target: Db,
            expect: Expect::Phase(9, |e| matches!(e, Error::NoSuchPhase { phase: 9, .. })),
            error: "no phase 9 in phases.toml",
        },
        Kind {
            name: "unreachable_database",
            mutate: |_| {},
            command: MIGRATE,
            target: Unreachable,
            expect: CONNECT,
            error: "cannot connect to postgres://phasegate:***@127.0.0.1:1/nowhere: ",
        },
        Kind { name: "wrong_password", mutate: |_| {}, command: MIGRATE, target: WrongPassword, expect: CONNECT, error: "cannot connect to postgres://phasegate_bad_input:***@" },
        Kind { name: "no_such_database", mutate: |_| {}, command: MIGRATE, target: NoSuchDatabase, expect: CONNECT, error: "cannot connect to postgres://postgres:***@" },
    ]
}

/// A metric check's query returned something other than one number.
const METRIC_SHAPE: Expect = ran!(Error::Load { kind: LoadError::MetricShape { .. }, .. });

const CONNECT: Expect = Expect::Connect(|e| matches!(e, Error::Connect { .. }));

const ROLE: &str = "phasegate_bad_input";

/// The URL a kind connects to.
fn url_for(db: &TestDb, target: Target) -> String {
    let host_port = db.url.split('@').nth(1).and_then(|r| r.split('/').next()).expect("host:port in the test URL").to_string();
    match target {
        Target::Db => db.url.clone(),
        Target::Unreachable => "postgres://phasegate:secret@127.0.0.1:1/nowhere".into(),
        Target::WrongPassword => format!("postgres://{ROLE}:not-the-password@{host_port}/{}", db.name),
        Target::NoSuchDatabase => server().url_for("phasegate_no_such_database"),
    }
}

/// Runs a kind and asserts: exit 1, one `error:` line that starts with the
/// expected text (which names the file and line where there is one), nothing
/// else on stderr but the log path, and the database unchanged.
#[track_caller]
fn expect_rejected(db: &TestDb, kind: &Kind) {
    let set = copy_set(&fixture("bad_input"));
    (kind.mutate)(set.path());
    let (before, ledger_before) = (db.snapshot(), db.ledger());
    let url = url_for(db, kind.target);
    let dir = set.path().to_str().unwrap();
    let out = on(&url, set.path(), kind.command).logs(crate::harness::log_dir().join("bad_input")).run();
    out.expect_exit(exit::ERROR);
    let others: Vec<&str> = out.stderr.lines().filter(|l| !l.starts_with("error: ") && !l.starts_with("log: ")).collect();
    assert!(others.is_empty(), "{}: stderr holds more than the error: {others:?}", kind.name);
    let line = out.error_line().replace(&format!("{dir}/"), "");
    assert!(line.starts_with(kind.error), "{}:\n  got      `{line}`\n  expected `{}...`", kind.name, kind.error);
    expect_engine_error(db, kind, set.path(), &url);
    assert_same_state(&before, &db.snapshot(), kind.name);
    assert_eq!(ledger_before, db.ledger(), "{}: the ledger changed", kind.name);
}

/// Calls the engine on the kind's bad input and asserts the error's
/// variant, and that it reads as the CLI's error line does.
#[track_caller]
fn expect_engine_error(db: &TestDb, kind: &Kind, set: &Path, url: &str) {
    let load = || phasegate::load_set(set).unwrap_or_else(|e| panic!("{}: the set does not load: {e}", kind.name));
    let (err, is) = match kind.expect {
        Expect::Load(is) => (phasegate::load_set(set).err(), is),
        Expect::Migrate(is) => {
            let mut client = db.client();
            let err = match phasegate::migrate(&mut client, &load(), phasegate::Target::Latest, &Options::default(), &mut Quiet) {
                Ok(outcome) => outcome.failure,
                Err(e) => Some(e),
            };
            (err, is)
        }
        Expect::Phase(id, is) => (load().phase(id).err(), is),
        Expect::Connect(is) => (phasegate::connect(url, "phasegate-test").err(), is),
    };
    let err = err.unwrap_or_else(|| panic!("{}: the engine returned no error", kind.name));
    assert!(is(&err), "{}: not the expected variant: {err:?}", kind.name);
    let line = err.to_string().replace(&format!("{}/", set.display()), "");
    assert!(line.starts_with(kind.error), "{}: the engine's error\n  got      `{line}`\n  expected `{}...`", kind.name, kind.error);
}

#[test]
fn every_kind_of_bad_input_is_one_line_and_changes_nothing() {
    let db = TestDb::new("bad_input");
    let out = run(&db, &fixture("bad_input"), &["migrate", "--phase", "1"], "");
    assert_eq!(out.code, exit::OK, "the base set applies: {out:?}");
    let mut admin = phasegate::connect(server().admin_url(), "phasegate-test").unwrap();
    admin
        .batch_execute(&format!("DO $$ BEGIN CREATE ROLE {ROLE} LOGIN PASSWORD 'the-password'; EXCEPTION WHEN duplicate_object THEN NULL; END $$"))
        .unwrap();

    let kinds = kinds();
    let mut names: Vec<&str> = kinds.iter().map(|k| k.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), kinds.len(), "kind names are unique");
    let mut failures = Vec::new();
    for kind in &kinds {
        if catch_unwind(AssertUnwindSafe(|| expect_rejected(&db, kind))).is_err() {
            failures.push(kind.name);
        }
    }
    eprintln!("bad input: {} kinds tried, failures {} {failures:?}", kinds.len(), failures.len());
    assert!(failures.is_empty(), "bad input kinds failed: {failures:?}");
    assert!(kinds.len() >= 30, "docs/targets.md asks for at least 30 kinds of bad input, the table has {}", kinds.len());
}
