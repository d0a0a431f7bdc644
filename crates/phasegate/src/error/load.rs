//! What is wrong with a migration set (or a foreign layout, an import
//! record, a probe): one variant per kind of problem, carrying its data, so
//! a caller or a test matches the kind and the message stays one line. The
//! rules are in docs/migration-set.md, docs/checks.md and docs/directives.md.

use std::path::PathBuf;

use super::display_path;

/// The kind of a load problem; [`super::Error::Load`] pairs it with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    // Files and folders.
    /// The folder a set or layout needs is not there.
    #[error("folder not found{}", if *migrations { ": a migration set needs migrations/ beside phases.toml" } else { "" })]
    FolderNotFound { migrations: bool },
    /// A folder inside migrations/, rollback/ or validations/.
    #[error("sub-folders are not allowed in {sub}/ (refinery would load them as forward migrations)")]
    SubFolder { sub: &'static str },
    /// A `.sql` file whose name is not `V{version}__{name}.sql`.
    #[error("file name must be V{{version}}__{{name}}.sql, e.g. V3__add_columns.sql")]
    BadFileName,
    /// A foreign layout's file whose name that layout does not read.
    #[error("not a migration name this layout knows (expected {expected})")]
    BadForeignName { expected: String },
    /// Two files of one version (`what` is "version", "migration", ...).
    #[error("duplicate {what} {version}: also {}", display_path(other))]
    DuplicateVersion { what: &'static str, version: String, other: PathBuf },
    /// Two Flyway files that claim one place (`what` says which).
    #[error("{what}: also {}", display_path(other))]
    Clash { what: String, other: PathBuf },
    /// A symlink that leaves the set's folder.
    #[error("resolves to {}, outside the set's folder; a set reads only files inside its folder (copy the file in)", display_path(real))]
    OutsideFolder { real: PathBuf },
    /// A FIFO, socket, device or folder where a file belongs.
    #[error("is {what}, not a regular file")]
    NotRegularFile { what: &'static str },
    /// A file over the set's size cap.
    #[error("is {bytes} bytes, more than a set's file may hold ({cap_mib} MiB)")]
    TooLarge { bytes: u64, cap_mib: u64 },
    /// Bytes that are not UTF-8 (the location names the line).
    #[error("file is not valid UTF-8")]
    NotUtf8,
    /// A SQL file with no statement in it.
    #[error("file holds no SQL statement")]
    NoStatement,

    // Pairing.
    /// A rollback or validation file with no forward migration of its name.
    #[error("{kind} file has no forward migration {}", display_path(forward))]
    NoForward { kind: &'static str, forward: PathBuf },
    /// A step of a reversible phase without its rollback file.
    #[error("missing rollback for migration {version} of reversible phase {phase} (create it, or mark the phase `reversible = false` with a `reason`)")]
    MissingRollback { version: i32, phase: u32 },
    /// A step of an irreversible phase with a rollback file.
    #[error("phase {phase} is irreversible, so migration {version} must have no rollback file")]
    RollbackInIrreversible { version: i32, phase: u32 },
    /// A step without its validation file.
    #[error("missing validation for migration {version}: every migration needs at least one check")]
    MissingValidation { version: i32 },
    /// A migration file no phase lists.
    #[error("migration {version} belongs to no phase in phases.toml")]
    NotInPhase { version: i32 },
    /// A foreign layout's half of a pair without the other half
    /// (a down without its up, an undo without its versioned migration).
    #[error("{message}")]
    MissingPair { message: String },

    // phases.toml (and other TOML files the engine reads).
    /// The TOML parser's message.
    #[error("{message}")]
    Toml { message: String },
    #[error("no `[[phase]]` defined")]
    NoPhases,
    #[error("phase ids must ascend: phase {id} comes after phase {previous}")]
    PhaseIdsDescend { id: u32, previous: u32 },
    #[error("phase {phase} has an empty name")]
    EmptyPhaseName { phase: u32 },
    #[error("phase {phase} is irreversible and needs a `reason` saying why")]
    NoReason { phase: u32 },
    #[error("phase {phase} is a baseline and must be `reversible = false`")]
    ReversibleBaseline { phase: u32 },
    #[error("phase {phase} lists no versions")]
    NoVersions { phase: u32 },
    #[error("version {version} belongs to phase {other} and phase {phase}; every migration belongs to exactly one phase")]
    VersionInTwoPhases { version: i32, other: u32, phase: u32 },
    #[error("phase {phase} lists version {version} but {} has no V{version}__*.sql", display_path(folder))]
    VersionWithoutFile { phase: u32, version: i32, folder: PathBuf },
    #[error("phase {phase} lists version {version} out of order: the next migration is version {}; a phase's versions are contiguous and ascend with the phase ids", expected.map_or("none".to_string(), |e| e.to_string()))]
    VersionOutOfOrder { phase: u32, version: i32, expected: Option<i32> },
    #[error("seed.after_phase = {after} names no phase")]
    SeedUnknownPhase { after: u32 },
    /// A `[[probe]]` entry that breaks a rule of docs/migration-set.md.
    #[error("{message}")]
    Probe { message: String },

    // Directives and statements.
    #[error("directives go at the top of the file, before any SQL")]
    DirectiveAfterSql,
    #[error("directives are only allowed in migration and rollback files")]
    DirectiveNotAllowed,
    #[error("unknown directive `{directive}` (expected no-transaction, batch [N or D [max N]], lock-timeout D, statement-timeout D)")]
    UnknownDirective { directive: String },
    /// A directive's argument that does not parse (a duration, a batch size).
    #[error("{message}")]
    BadDirective { message: String },
    #[error("`no-transaction` and `batch` cannot be combined")]
    NoTransactionWithBatch,
    #[error("a `no-transaction` file holds exactly one statement (split the others into their own migrations)")]
    NoTransactionStatements,
    #[error("a `batch` file holds exactly one UPDATE")]
    BatchStatements,
    #[error("a `batch` UPDATE must select its rows with `LIMIT :batch_size`")]
    BatchWithoutLimit,
    /// A statement a migration or rollback file may not run (docs/safety.md).
    #[error("{message} ({fix})")]
    Refused { message: String, fix: String },

    // Checks (docs/checks.md).
    #[error("no check found: a validation file needs at least one `-- check: name` header followed by a query")]
    NoCheck,
    #[error("SQL before the first `-- check:` header")]
    SqlBeforeCheck,
    /// A comment line in a header that is not `-- key: value`.
    #[error("comment inside a check header: use `-- description: ...` for prose (got `{line}`)")]
    ProseInHeader { line: String },
    #[error("`{key}` given twice in check header")]
    KeyTwice { key: String },
    #[error("unknown check key `{key}` (expected check, description, severity, metric, proceed, review, empty, when, holds, timeout)")]
    UnknownCheckKey { key: String },
    #[error("check name `{name}` must be a non-empty identifier (letters, digits, _ or -)")]
    BadCheckName { name: String },
    /// A key's value that is not one it takes (`severity`, `when`, `holds`,
    /// `empty`), with the values it takes.
    #[error("unknown {what} (expected {expected})")]
    UnknownValue { what: String, expected: &'static str },
    #[error("`metric:` needs a unit, e.g. `-- metric: percent`")]
    MetricWithoutUnit,
    /// A `proceed:` or `review:` threshold, or a `timeout:`, that does not parse.
    #[error("`{key}`{} {problem}", if *threshold { " threshold" } else { "" })]
    BadLimit { key: String, threshold: bool, problem: String },
    #[error("check `{check}` is defined twice in this file")]
    CheckTwice { check: String },
    #[error("metric check `{check}` has no thresholds: add `-- proceed: <condition>` (and optionally `-- review:`)")]
    NoThresholds { check: String },
    #[error("check `{check}` has thresholds but no `-- metric: <unit>`; an assertion check passes when it returns no rows")]
    ThresholdsWithoutMetric { check: String },
    #[error("`empty:` is for metric checks; check `{check}` is an assertion, which passes when it returns no rows")]
    EmptyOnAssertion { check: String },
    #[error("`holds: until-next-migration` is for after-migrate checks; check `{check}` runs {when}")]
    HoldsNotAfterMigrate { check: String, when: &'static str },
    #[error("check `{check}` has no query")]
    NoQuery { check: String },
    #[error("check `{check}` has more than one statement; each check is one query (start another with `-- check:`)")]
    TwoStatements { check: String },
    /// A metric check's query returned something other than one number.
    #[error("metric check `{check}` {problem}; a metric query returns one row with one number (NULL when there is nothing to measure)")]
    MetricShape { check: String, problem: String },

    // Foreign layouts and imports.
    /// A file of another tool's layout that phasegate cannot read as it is
    /// (its annotations, its plan, its configuration).
    #[error("{message}")]
    Foreign { message: String },
    /// `import` or `migrate --adopt` cannot take the set as it is.
    #[error("{message}")]
    Import { message: String },
}
