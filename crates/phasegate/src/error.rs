//! The engine's error type: every variant carries what the operator needs to
//! act (the file and line, the SQL position, the lock holder), and renders as
//! one line.

use std::fmt;
use std::path::{Path, PathBuf};

/// A place in a migration set: a file and, where known, a line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
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

/// Paths as the operator typed them, without a leading "./".
pub fn display_path(p: &Path) -> String {
    let s = p.display().to_string();
    s.strip_prefix("./").map(str::to_string).unwrap_or(s)
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A migration set breaks a rule of SPEC section 3.
    #[error("{at}: {message}")]
    Load { at: Location, message: String },

    #[error("{}: {source}", display_path(path))]
    Io { path: PathBuf, source: std::io::Error },

    /// The database could not be reached or refused the login. `target` is the
    /// connection string with its password removed.
    #[error("cannot connect to {target}: {message}")]
    Connect { target: String, message: String },

    /// PostgreSQL rejected SQL from a file; `at` points at the statement (and
    /// the column PostgreSQL reported, when it did).
    #[error("{at}: {message}")]
    Sql { at: Location, message: String, sqlstate: Option<String> },

    /// A database error outside any file (ledger, lock, catalog queries).
    #[error("{context}: {message}")]
    Database { context: String, message: String },

    /// Another migrator holds the migration lock.
    #[error("another phasegate run holds the migration lock: {holder}")]
    Locked { holder: String },

    /// A step could not take its locks within lock_timeout, every retry.
    #[error("{what}: lock not available after {retries} retries (lock_timeout {lock_timeout}); blocked by {blockers}")]
    LockTimeout { what: String, retries: u32, lock_timeout: String, blockers: String },

    /// The operation is not allowed in the current state; the message says why
    /// and what to do instead.
    #[error("{0}")]
    Refused(String),

    /// No migration layout phasegate reads matches this folder: `at` names
    /// the first file none of them claims (or the folder, when it holds no
    /// migration file at all).
    #[error("{at}: no migration layout reads this (tried {})", tried.join(", "))]
    UnknownLayout { at: Location, tried: Vec<&'static str> },

    /// A `${name}` placeholder (Flyway) or environment variable (goose
    /// ENVSUBST) in a migration file has no value.
    #[error("{at}: no value for placeholder `{name}`")]
    MissingPlaceholder { at: Location, name: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

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
    move |e| Error::Database { context, message: pg_message(&e) }
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
    Error::Sql { at, message: pg_message(err), sqlstate: sqlstate(err).map(str::to_string) }
}

/// Maps an error from running one statement of a file's `text` (the
/// statement starts at byte `start`, on line `line`) to the file, line and
/// column.
pub fn statement_error(file: &Path, text: &str, start: usize, line: usize, err: &postgres::Error) -> Error {
    let mut at = Location::line(file, line);
    if let Some(postgres::error::ErrorPosition::Original(p)) = err.as_db_error().and_then(|d| d.position()) {
        let abs = text[..start].chars().count() + *p as usize;
        let (l, c) = crate::sqltext::position_to_line_col(text, abs);
        at = Location { file: file.to_path_buf(), line: l, column: c };
    }
    Error::Sql { at, message: pg_message(err), sqlstate: sqlstate(err).map(str::to_string) }
}

/// The SQLSTATE of a database error, if it came from the server.
pub fn sqlstate(err: &postgres::Error) -> Option<&str> {
    err.as_db_error().map(|d| d.code().code())
}
