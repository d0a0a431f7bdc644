//! Other tools' migration layouts, read where they lie so `verify --from`
//! can rehearse an existing project's down migrations without converting
//! anything: each migration is its own phase, its down script its rollback,
//! and (Sqitch) its verify script an after-migrate check. A migration
//! without a down script becomes an irreversible phase, which the rehearsal
//! reports (never skips). Every step keeps its `Origin`: the tool, the
//! migration's own label (`1.2.3`, `users@v1.0`, `alice:3`) and its file.
//!
//! One file per layout; each parser is pure (a folder in, migrations out)
//! and its errors name file and line. `detect` picks the layout from the
//! files. Layouts that keep several scripts in one file (goose and dbmate
//! sections, Liquibase changesets) hand the engine the whole file with
//! everything else blanked out (`text::blank_outside`), so a PostgreSQL
//! error in a down section is reported at its line in the real file.
//! Every file then runs as its tool runs it (`txn`: its own transaction
//! control, statements that cannot run in a transaction), and `ledger`
//! gives the tool's ledger table, which the rehearsal creates before the
//! first migration. A layout that finds nothing is an error naming the
//! folder and the files it looked for.

mod applied;
pub(crate) mod checksum;
mod dbmate;
mod detect;
mod diesel;
mod files;
mod flyway;
mod goose;
mod ledger;
mod liquibase;
mod paired;
mod sqitch;
mod text;
pub(crate) mod txn;

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::check::Check;
use crate::error::{Error, LoadError, Location, Result};
use crate::set::{Directives, MigrationSet, Phase, SqlFile, Step};

pub use detect::{detect, Detection, Evidence};
pub use ledger::setup as ledger;
pub(crate) use applied::{key as ledger_key, read as read_ledger, table as ledger_table, ToolLedger};
/// A step's origin lives with the set that carries it (`set/origin.rs`).
pub use crate::set::origin::{Layout, Origin};
use crate::set::origin::serialize_path;

/// What a reader needs besides the folder.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Values for Flyway `${placeholders}` and goose ENVSUBST variables.
    pub placeholders: BTreeMap<String, String>,
}

/// A migration's way back.
pub(crate) enum Down {
    Script(SqlFile),
    /// No down script; the reason the report shows.
    Missing(String),
}

/// One migration of another tool, before it becomes a phase.
pub(crate) struct Migration {
    pub origin: Origin,
    /// The phase name the report shows.
    pub name: String,
    pub up: SqlFile,
    pub down: Down,
    /// A Sqitch verify script as a check, and its file.
    pub verify: Option<(SqlFile, Check)>,
}

/// Reads a foreign project's migrations folder as a set.
pub fn load(layout: Layout, dir: &Path) -> Result<MigrationSet> {
    load_with(layout, dir, &Options::default())
}

/// Reads a foreign project's migrations folder as a set, with placeholder values.
pub fn load_with(layout: Layout, dir: &Path, opts: &Options) -> Result<MigrationSet> {
    if !dir.is_dir() {
        return Err(Error::Load { at: Location::file(dir), kind: LoadError::FolderNotFound { migrations: false } });
    }
    let migrations = match layout {
        Layout::Diesel => diesel::load(dir)?,
        Layout::Sqlx => paired::load(dir, true)?,
        Layout::GolangMigrate => paired::load(dir, false)?,
        Layout::Refinery => flyway::load_refinery(dir)?,
        Layout::Goose => goose::load(dir, opts)?,
        Layout::Dbmate => dbmate::load(dir)?,
        Layout::Flyway => flyway::load(dir, opts)?,
        Layout::Sqitch => sqitch::load(dir)?,
        Layout::Liquibase => liquibase::load(dir)?,
        Layout::Files => files::load(dir)?,
    };
    if migrations.is_empty() {
        return Err(Error::NoMigrations { dir: dir.to_path_buf(), layout: layout.name(), patterns: layout.patterns() });
    }
    Ok(assemble(dir, migrations))
}

/// One phase per migration, in the order the reader returned them, each
/// file run as its tool runs it (`txn`).
fn assemble(dir: &Path, migrations: Vec<Migration>) -> MigrationSet {
    let mut phases = Vec::new();
    for (i, mut m) in migrations.into_iter().enumerate() {
        let id = i as u32 + 1;
        let tool = m.origin.tool;
        m.up = txn::as_tool_runs(m.up, tool);
        if let Down::Script(f) = m.down {
            m.down = Down::Script(txn::as_tool_runs(f, tool));
        }
        let safe: String = m.name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let (rollback, reason) = match m.down {
            Down::Script(f) => (Some(f), None),
            Down::Missing(r) => (None, Some(r)),
        };
        let (validation, checks) = match m.verify {
            Some((file, check)) => (file, vec![check]),
            None => (SqlFile::new(m.up.path.clone(), String::new(), Directives::default()), Vec::new()),
        };
        phases.push(Phase {
            id,
            name: m.name,
            summary: crate::error::display_path(&m.origin.file),
            reversibility: crate::set::Reversibility::new(rollback.is_some(), reason, false),
            steps: vec![Step { version: id as i32, name: safe, phase: id, forward: m.up, rollback, validation, checks, origin: Some(m.origin) }],
        });
    }
    MigrationSet { dir: dir.to_path_buf(), phases, seed: None, probes: Vec::new() }
}

/// A file's text, read as a set's files are (a regular file within the size
/// cap); not UTF-8 is an error at the line where it stops being so.
pub(crate) fn read(path: &Path) -> Result<String> {
    crate::set::read_regular(path)
}

/// The entries of a folder, sorted by path.
pub(crate) fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |e| Error::Io { path: dir.to_path_buf(), source: e };
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io)? {
        v.push(e.map_err(io)?.path());
    }
    v.sort();
    Ok(v)
}

/// The `.sql` files of a folder, sorted by path (hidden files skipped).
pub(crate) fn sql_files(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(entries(dir)?.into_iter().filter(|p| p.is_file() && is_sql(p)).collect())
}

pub(crate) fn is_sql(p: &Path) -> bool {
    let f = file_name(p);
    f.ends_with(".sql") && !f.starts_with('.')
}

pub(crate) fn file_name(p: &Path) -> String {
    p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
}

pub(crate) fn bad_name(path: &Path, expected: &str) -> Error {
    Error::Load { at: Location::file(path), kind: LoadError::BadForeignName { expected: expected.to_string() } }
}

/// The error for a second migration with the same `version` (`what`:
/// `version`, `down version`) as `other`.
pub(crate) fn duplicate(path: &Path, what: &'static str, version: impl fmt::Display, other: &Path) -> Error {
    Error::Load { at: Location::file(path), kind: LoadError::DuplicateVersion { what, version: version.to_string(), other: other.to_path_buf() } }
}

/// One section of a file that holds several (goose and dbmate sections, a
/// Liquibase changeset) as a file of its own: the whole text with all but
/// `keep` blanked, so its lines stay the real file's; `blocks` are sent
/// whole.
pub(crate) fn section_file(path: &Path, text: &str, keep: &[Range<usize>], blocks: Vec<Range<usize>>, no_transaction: bool) -> SqlFile {
    SqlFile::new(path.to_path_buf(), text::blank_outside(text, keep), Directives { no_transaction, blocks, ..Default::default() })
}

/// A SQL file that runs in a transaction unless `no_transaction`.
pub(crate) fn sql_file(path: &Path, text: String, no_transaction: bool) -> SqlFile {
    SqlFile::new(path.to_path_buf(), text, Directives { no_transaction, ..Default::default() })
}

/// Whether a script holds any SQL statement (besides comments and blanks).
pub(crate) fn has_sql(text: &str) -> bool {
    !crate::sqltext::statements(text).is_empty()
}

/// A version made of numbers (`1.2.3`, `1_1`, `0001`), compared number by
/// number with trailing zeros ignored, as Flyway does (`1.0` == `1`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Version(Vec<u128>);

impl Version {
    /// Parses digits separated by `.`, `_` or `-`.
    pub fn parse(s: &str) -> Option<Version> {
        let mut parts = Vec::new();
        for p in s.split(['.', '_', '-']) {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            parts.push(p.parse().ok()?);
        }
        while parts.len() > 1 && parts.last() == Some(&0) {
            parts.pop();
        }
        Some(Version(parts))
    }
}

/// Test helper: writes `text` at `rel` under `dir`, creating folders.
#[cfg(test)]
pub(crate) fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("a parent")).expect("create folders");
    std::fs::write(p, text).expect("write a test file");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        let v = |s: &str| Version::parse(s).unwrap();
        assert!(v("2") < v("10"));
        assert!(v("1.2.3") < v("1.10"));
        assert_eq!(v("1.0"), v("1"));
        assert_eq!(v("1_1"), v("1.1"));
        assert!(Version::parse("1.a").is_none() && Version::parse("").is_none());
    }

    #[test]
    fn layouts_round_trip_their_names() {
        for l in Layout::ALL {
            assert_eq!(Layout::parse(l.name()), Some(l));
        }
    }

    #[test]
    fn a_missing_folder_is_an_error() {
        let e = load(Layout::Goose, Path::new("no/such/folder")).unwrap_err();
        assert_eq!(e.to_string(), "no/such/folder: folder not found");
    }
}
