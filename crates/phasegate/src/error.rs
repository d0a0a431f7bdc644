//! The engine's error type: every variant carries what the operator needs to
//! act (the file and line, the SQL position, the lock holder), and renders as
//! one line.

mod backend;
pub(crate) mod change;
mod drift;
mod load;

use std::fmt;
use std::path::{Path, PathBuf};

pub use backend::BackendKind;
pub use change::ChangeError;
pub use drift::{Drift, DriftKind};
pub use load::LoadError;
pub use postgres::error::SqlState;

/// A place in a migration set: a file and, where known, a line and column.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    #[serde(serialize_with = "serialize_display_path")]
    pub file: PathBuf,
    /// 1-based; 0 when the problem is the file as a whole (its name, its absence).
    pub line: usize,
    /// 1-based; 0 when unknown.
    pub column: usize,
}

impl Location {
    pub fn file(file: impl Into<PathBuf>) -> Self {
        Location { file: file.into(), line: 0, column: 0 }
    }
    pub fn line(file: impl Into<PathBuf>, line: usize) -> Self {
        Location { file: file.into(), line, column: 0 }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", display_path(&self.file))?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        Ok(())
    }
}

pub(crate) fn serialize_display_path<S: serde::Serializer>(p: &Path, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&display_path(p))
}

/// Paths as the operator typed them, without a leading "./".
pub fn display_path(p: &Path) -> String {
    let s = p.display().to_string();
    s.strip_prefix("./").map(str::to_string).unwrap_or(s)
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `change` refused an operation (nothing was written).
    #[error(transparent)]
    Change(Box<ChangeError>),

    /// A migration set breaks a rule of docs/migration-set.md.
    #[error("{at}: {kind}")]
    Load { at: Location, kind: LoadError },

    #[error("{}: {source}", display_path(path))]
    Io { path: PathBuf, source: std::io::Error },

    /// `migrate` met a database that already holds a schema, and a check of
    /// the baseline phase it would record as applied fails on it.
    #[error("{at}: the database already holds a schema, but check `{check}` of baseline migration {version} fails on it: the baseline does not describe this database (fix the baseline, or migrate an empty database)")]
    BaselineMismatch { at: Location, version: i32, check: String },

    /// `init` refused: the folder already holds a migration set, or a file
    /// init would write (nothing was written).
    #[error("{}: {why}", display_path(path))]
    InitRefused { path: PathBuf, why: String },

    /// `init --baseline-from`: the live schema could not be read.
    #[error("reading the schema of {target}: {message}")]
    SchemaDump { target: String, message: String },

    /// The folder holds no migration set (no phases.toml).
    #[error("no migration set in {}: phases.toml not found", display_path(dir))]
    NoMigrationSet { dir: PathBuf },

    /// The database could not be reached or refused the login. `target` is the
    /// connection string with its password removed.
    #[error("cannot connect to {target}: {message}")]
    Connect { target: String, message: String },

    /// PostgreSQL rejected SQL from a file; `at` points at the statement (and
    /// the column PostgreSQL reported, when it did).
    #[error("{at}: {message}")]
    Sql { at: Location, message: String, sqlstate: Option<SqlState> },

    /// A database error outside any file (ledger, lock, catalog queries),
    /// with the error PostgreSQL or the connection returned.
    #[error("{context}: {}", pg_message(source))]
    Database { context: String, source: postgres::Error },

    /// What a query returned (or a run found) stops the engine, though no
    /// statement failed: no schema for the ledger, a kept document that
    /// does not parse, a snapshot that missed a change, checks that said
    /// ROLLBACK.
    #[error("{context}: {message}")]
    Unexpected { context: String, message: String },

    /// Another migrator holds the migration lock.
    #[error("another phasegate run holds the migration lock: {holder}")]
    Locked { holder: String },

    /// A step could not take its locks within lock_timeout, every retry.
    #[error("{what}: lock not available after {retries} retries (lock_timeout {lock_timeout}); blocked by {blockers}")]
    LockTimeout { what: String, retries: u32, lock_timeout: String, blockers: String },

    /// A phase id the manifest does not have; `known` names the ones it has.
    #[error("no phase {phase} in {} ({known})", display_path(manifest))]
    NoSuchPhase { phase: u32, manifest: PathBuf, known: String },

    /// The operator did not type the confirmation.
    #[error("{0}")]
    NotConfirmed(Confirmation),

    /// A rollback of a phase while a later phase is applied.
    #[error("phase {later} ({later_name}) is applied after phase {phase}; roll it back first")]
    LaterPhaseApplied { phase: u32, later: u32, later_name: String },

    /// A rollback of a phase an applied irreversible phase came after.
    #[error("phase {later} ({later_name}) is applied after phase {phase} and is irreversible: phase {phase} can no longer be rolled back; recover phase {later} first from what was kept when it was applied, then roll back phase {phase}; or restore the database from the backup taken before phase {later}, or fix forward with a new migration")]
    PastPointOfNoReturn { phase: u32, later: u32, later_name: String },

    /// A rollback of an irreversible phase.
    #[error("phase {phase} ({name}) is irreversible: {reason}. It has no rollback; the way back is to recover phase {phase} from what was kept when it was applied (what it dropped re-created, its data restored by key, rows written since kept); without that, restore the database from the backup taken before phase {phase}, or fix forward with a new migration")]
    Irreversible { phase: u32, name: String, reason: String },

    /// Keeping what an irreversible phase destroys would copy more rows than allowed.
    #[error("phase {phase} ({name}) would keep {rows} rows of what it destroys before running, more than the limit of {limit}; nothing was changed")]
    BackupTooLarge { phase: u32, name: String, rows: i64, limit: u64 },

    /// `recover` of a reversible phase.
    #[error("phase {phase} ({name}) is reversible: roll it back instead of recovering it")]
    Reversible { phase: u32, name: String },

    /// `recover` of a phase none of whose migrations is applied.
    #[error("phase {phase} ({name}) is not applied; nothing to recover")]
    NothingToRecover { phase: u32, name: String },

    /// `recover` of a migration applied without keeping what it destroys.
    #[error("migration {version} of phase {phase} was applied without keeping what it destroys (run {run}); there is nothing to recover it from: restore the database from a backup taken before phase {phase}, or fix forward with a new migration")]
    NothingKept { phase: u32, version: i32, run: String },

    /// A rollback of a phase none of whose migrations is applied.
    #[error("phase {phase} ({name}) is not applied; nothing to roll back")]
    NotApplied { phase: u32, name: String },

    /// The ledger disagrees with the files (an applied file changed or vanished).
    #[error("{0}")]
    Drift(Drift),

    /// `migrate --adopt` refused: the other tool's ledger and the imported
    /// set disagree (a version without a file, a changed checksum, a failed
    /// or dirty migration), one line per problem; nothing was recorded.
    #[error("{}", problems.join("\n"))]
    Adopt { problems: Vec<String> },

    /// A migration is not applied while a later one is.
    #[error("migration {missing} is not applied but a later one ({later}) is; the ledger has a gap")]
    LedgerGap { missing: i32, later: i32 },

    /// Another run removed a migration from the ledger while this one worked.
    #[error("migration {version} is no longer in refinery_schema_history: another run changed the ledger")]
    LedgerChanged { version: i32 },

    /// A step of a reversible phase has no rollback file.
    #[error("migration {version} has no rollback file")]
    NoRollbackFile { version: i32 },

    /// Not a run id (restore).
    #[error("`{given}` is not a run id: give the id the rollback printed (at least its first 8 characters)")]
    NotARunId { given: String },

    /// The database holds no backup at all.
    #[error("this database has no backups: no rollback has backed up rows here")]
    NoBackups,

    /// The run took no backup.
    #[error("run {run} has no backups: it changed no rows, ran without backups, or is not a rollback")]
    RunHasNoBackups { run: String },

    /// A run id prefix that matches several runs.
    #[error("run id {run} is ambiguous: it starts {}; give more characters", matches.join(", "))]
    AmbiguousRun { run: String, matches: Vec<String> },

    /// A backup cannot be restored into the database as it is now.
    #[error("cannot restore {backup_table}: {reason}")]
    RestoreBlocked { backup_table: String, reason: RestoreBlock },

    /// A rollback turned off what backs up the rows it changes (disabled
    /// or altered a backup trigger, or changed session_replication_role);
    /// its transaction (a batched rollback's: that batch's) was rolled
    /// back. `at` is the first statement that changes the table.
    #[error("{at}: the rollback bypassed the backup of {table}: {how}; {}", if *batched { "this batch was rolled back (the batches before it committed with their rows backed up)" } else { "it was rolled back, nothing was changed" })]
    BackupBypassed { at: Location, table: String, how: Bypass, batched: bool },

    /// No free name for a backup table after this many tries.
    #[error("no free name for a backup of {table} in {schema} after {tries} tries; drop old backup tables there")]
    NoFreeName { schema: &'static str, table: String, tries: u32 },

    /// A batched file's key (its `RETURNING` column) is of a type whose
    /// values cannot be read back from text, so `:last_key` cannot be
    /// handed to the next batch.
    #[error("{at}: the batch key (the first RETURNING column) is of type {type_name}, which cannot be passed back as :last_key; return a column or a named composite type instead")]
    BatchKeyType { at: Location, type_name: String },

    /// No disposable PostgreSQL could be started.
    #[error("{backend} backend: {message}")]
    Backend { backend: BackendKind, message: String },

    /// The automatic backend found no way to a server: neither Docker nor
    /// the local binaries started one, and no server URL was given.
    #[error("no PostgreSQL to rehearse on: Docker did not start one ({docker}); the local binaries did not either ({local}); and no server URL was given")]
    NoServer { docker: String, local: String },

    /// No migration layout phasegate reads matches this folder: `at` names
    /// the first file none of them claims (or the folder, when it holds no
    /// migration file at all).
    #[error("{at}: no migration layout reads this (tried {})", tried.join(", "))]
    UnknownLayout { at: Location, tried: Vec<&'static str> },

    /// A layout found no migration in the folder `verify --from` names.
    #[error("{}: no {layout} migration found (looked for {patterns})", display_path(dir))]
    NoMigrations { dir: PathBuf, layout: &'static str, patterns: &'static str },

    /// A `${name}` placeholder (Flyway) or environment variable (goose
    /// ENVSUBST) in a migration file has no value.
    #[error("{at}: no value for placeholder `{name}`")]
    MissingPlaceholder { at: Location, name: String },

    /// A fleet file breaks a rule (its TOML, a name, a group).
    #[error("{at}: {message}")]
    FleetFile { at: Location, message: String },

    /// The environment variable a fleet database's URL comes from is unset.
    #[error("{at}: database {database}: environment variable {variable} is not set (it holds the database's URL)")]
    FleetUrlUnset { at: Location, database: String, variable: String },

    /// The environment variable the discovery catalog's URL comes from is unset.
    #[error("{at}: the discovery catalog: environment variable {variable} is not set (it holds the catalog database's URL)")]
    CatalogUrlUnset { at: Location, variable: String },

    /// The discovery query failed or returned something other than names and URLs.
    #[error("{at}: discovery query: {message}")]
    Discovery { at: Location, message: String },

    /// A replica lag limit was given but the role may not read the
    /// replicas' positions in pg_stat_replication (PostgreSQL shows them
    /// only to superusers and members of pg_read_all_stats / pg_monitor).
    #[error("role {role} cannot read the replicas' positions in pg_stat_replication, so it cannot wait for lagging replicas: grant it pg_monitor (GRANT pg_monitor TO {role})")]
    ReplicaLagHidden { role: String },

    /// A database (found by the discovery query) that no group lists or matches.
    #[error("{}: database {database} belongs to no group; list it in a group, or end with a group that has match = \"*\"", display_path(file))]
    FleetUngrouped { file: PathBuf, database: String },
}

/// What the operator was asked to confirm and did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// Entering an irreversible phase (typing its name).
    EnterIrreversible { phase: u32, name: String },
    /// Rolling back a phase (typing `rollback phase N`).
    Rollback { phase: u32 },
    /// Restoring a run's backups (typing `restore <id>`).
    Restore { run: String, short: String },
    /// Recovering an irreversible phase (typing `recover phase N`).
    Recover { phase: u32 },
}

impl fmt::Display for Confirmation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Confirmation::EnterIrreversible { phase, name } => {
                write!(f, "phase {phase} ({name}) is irreversible and was not confirmed; type its name at the prompt")
            }
            Confirmation::Rollback { phase } => write!(f, "rollback of phase {phase} was not confirmed; type `rollback phase {phase}` at the prompt"),
            Confirmation::Restore { run, short } => write!(f, "restore of run {run} was not confirmed; type `restore {short}` at the prompt"),
            Confirmation::Recover { phase } => write!(f, "recovery of phase {phase} was not confirmed; type `recover phase {phase}` at the prompt"),
        }
    }
}

/// Why a backup cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreBlock {
    /// The backed-up table no longer exists.
    TableGone { table: String },
    /// Columns the backup holds no longer exist.
    ColumnsGone { table: String, columns: Vec<String> },
    /// The table has no primary key to match rows by.
    NoPrimaryKey { table: String },
}

impl fmt::Display for RestoreBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreBlock::TableGone { table } => write!(f, "table {table} no longer exists; re-apply the phase that creates it, then restore again"),
            RestoreBlock::ColumnsGone { table, columns } => {
                write!(f, "{table} has no column {} any more (a later rollback dropped it); re-apply the phase that adds it, then restore again", columns.join(", "))
            }
            RestoreBlock::NoPrimaryKey { table } => write!(f, "{table} has no primary key, so its rows cannot be matched; copy them back by hand"),
        }
    }
}

/// How a rollback bypassed its backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bypass {
    /// The backup trigger is disabled (`ALTER TABLE ... DISABLE TRIGGER`).
    Disabled,
    /// The backup trigger was altered since it was created (disabled and
    /// enabled again, renamed).
    Altered,
    /// The backup trigger is gone.
    Dropped,
    /// `session_replication_role` is not `origin`.
    ReplicationRole(String),
    /// The setting that tags a batch for its backup (`phasegate.backup`) was changed.
    Untagged,
}

impl fmt::Display for Bypass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bypass::Disabled => write!(f, "its backup trigger was disabled (ALTER TABLE ... DISABLE TRIGGER)"),
            Bypass::Altered => write!(f, "its backup trigger was altered while the rollback ran (disabled and enabled again, or renamed)"),
            Bypass::Dropped => write!(f, "its backup trigger was dropped"),
            Bypass::ReplicationRole(r) => write!(f, "session_replication_role is {r}, not origin"),
            Bypass::Untagged => write!(f, "the setting phasegate.backup that tags a batch for its backup was changed"),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A load error of `kind` at `at`.
    pub fn load(at: Location, kind: LoadError) -> Error {
        Error::Load { at, kind }
    }

    /// The SQLSTATE PostgreSQL returned, when the error came from the server.
    pub fn sqlstate(&self) -> Option<&SqlState> {
        match self {
            Error::Sql { sqlstate, .. } => sqlstate.as_ref(),
            Error::Database { source, .. } => source.code(),
            _ => None,
        }
    }

    /// The file, line and column the error is about, when it is about one.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Error::Load { at, .. }
            | Error::Sql { at, .. }
            | Error::UnknownLayout { at, .. }
            | Error::MissingPlaceholder { at, .. }
            | Error::BackupBypassed { at, .. }
            | Error::BatchKeyType { at, .. }
            | Error::BaselineMismatch { at, .. } => Some(at),
            _ => None,
        }
    }
}

/// One line out of a PostgreSQL error: severity-less message plus detail and hint.
pub fn pg_message(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => {
            let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str("; detail: ");
                s.push_str(d);
            }
            if let Some(h) = db.hint() {
                s.push_str("; hint: ");
                s.push_str(h);
            }
            if let Some(w) = db.where_() {
                s.push_str("; where: ");
                s.push_str(w);
            }
            s.replace('\n', " ")
        }
        None => {
            let mut s = err.to_string();
            let mut src = std::error::Error::source(err);
            while let Some(e) = src {
                s.push_str(": ");
                s.push_str(&e.to_string());
                src = e.source();
            }
            s.replace('\n', " ")
        }
    }
}

/// Wraps a database error that is not tied to a file.
pub fn db_err(context: impl Into<String>) -> impl FnOnce(postgres::Error) -> Error {
    let context = context.into();
    move |source| Error::Database { context, source }
}

/// Maps a PostgreSQL error from running `sql` (which starts at line
/// `first_line` of `file`) to an error naming the file, line and column.
pub fn sql_error(file: &Path, first_line: usize, sql: &str, prefix_chars: usize, err: &postgres::Error) -> Error {
    let mut at = Location::line(file, first_line);
    if let Some(postgres::error::ErrorPosition::Original(p)) = err.as_db_error().and_then(|d| d.position()) {
        let p = (*p as usize).saturating_sub(prefix_chars);
        if p > 0 {
            let (l, c) = crate::sqltext::position_to_line_col(sql, p);
            at = Location { file: file.to_path_buf(), line: first_line + l - 1, column: c };
        }
    }
    Error::Sql { at, message: pg_message(err), sqlstate: err.code().cloned() }
}

/// A PostgreSQL error of a file as a whole, at no line (the statement
/// that raised it is not known).
pub fn file_error(file: &Path, err: &postgres::Error) -> Error {
    Error::Sql { at: Location::file(file), message: pg_message(err), sqlstate: err.code().cloned() }
}

/// Maps an error from running one statement of a file's `text` (the
/// statement starts at byte `start`, on line `line`) to the file, line and
/// column.
pub fn statement_error(file: &Path, text: &str, start: usize, line: usize, err: &postgres::Error) -> Error {
    wrapped_statement_error(file, text, start, line, 0, err)
}

/// [`statement_error`] for a statement that was sent wrapped, after
/// `prefix_chars` characters of the engine's own (a position there, or
/// past the statement, names the statement's line only).
pub fn wrapped_statement_error(file: &Path, text: &str, start: usize, line: usize, prefix_chars: usize, err: &postgres::Error) -> Error {
    let mut at = Location::line(file, line);
    if let Some(postgres::error::ErrorPosition::Original(p)) = err.as_db_error().and_then(|d| d.position()) {
        let p = *p as usize;
        let abs = text[..start].chars().count() + p.saturating_sub(prefix_chars);
        if p > prefix_chars && abs <= text.chars().count() {
            let (l, c) = crate::sqltext::position_to_line_col(text, abs);
            at = Location { file: file.to_path_buf(), line: l, column: c };
        }
    }
    Error::Sql { at, message: pg_message(err), sqlstate: err.code().cloned() }
}

/// The SQLSTATE of a database error, if it came from the server.
pub fn sqlstate(err: &postgres::Error) -> Option<&SqlState> {
    err.code()
}
