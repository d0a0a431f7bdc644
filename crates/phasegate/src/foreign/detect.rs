//! Which layout a folder is, from its files (`verify --from DIR`): a
//! `sqitch.plan`, diesel's folders with `up.sql`, a tool's marker inside a
//! `.sql` file (Liquibase's header, goose's and dbmate's section markers),
//! then the names of the `.sql` files (Flyway, sqlx, golang-migrate, the
//! generic up/down pairs). A folder none of them reads is one error naming
//! the file no layout claims and every layout tried.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{entries, file_name, flyway, liquibase, read, sql_files, Layout};
use crate::error::{display_path, Error, Location, Result};

/// The layout `detect` chose and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detection {
    pub layout: Layout,
    pub evidence: Evidence,
}

/// What made `detect` choose a layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// A `sqitch.plan` in the folder.
    PlanFile {
        #[serde(serialize_with = "super::serialize_path")]
        file: PathBuf,
    },
    /// Sub-folders holding an `up.sql`.
    ChangeFolders { count: usize },
    /// A file carrying the layout's marker.
    Marker {
        #[serde(serialize_with = "super::serialize_path")]
        file: PathBuf,
        marker: &'static str,
    },
    /// Every `.sql` file named the layout's way.
    Names { count: usize, pattern: &'static str },
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Evidence::PlanFile { file } => write!(f, "{} found", display_path(file)),
            Evidence::ChangeFolders { count } => write!(f, "{count} folders holding up.sql"),
            Evidence::Marker { file, marker } => write!(f, "{} has `{marker}`", display_path(file)),
            Evidence::Names { count, pattern } => write!(f, "{count} .sql files named {pattern}"),
        }
    }
}

/// The layouts `detect` tries, in order: all but refinery, whose names are Flyway's.
fn unknown(at: &Path) -> Error {
    let tried = Layout::ALL.into_iter().filter(|l| *l != Layout::Refinery).map(Layout::name).collect();
    Error::UnknownLayout { at: Location::file(at), tried }
}

/// The marker of a tool in a `.sql` file, if it carries one.
fn marker(text: &str) -> Option<(Layout, &'static str)> {
    if text.lines().find(|l| !l.trim().is_empty()).is_some_and(liquibase::is_header) {
        return Some((Layout::Liquibase, "--liquibase formatted sql"));
    }
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("--") else { continue };
        if rest.trim().eq_ignore_ascii_case("+goose up") {
            return Some((Layout::Goose, "-- +goose Up"));
        }
        let rest = rest.trim_start();
        if rest.strip_prefix("migrate:up").is_some_and(|o| o.is_empty() || o.starts_with(char::is_whitespace)) {
            return Some((Layout::Dbmate, "-- migrate:up"));
        }
    }
    None
}

/// sqlx / golang-migrate: `<integer>_<desc>.sql`, with `.up` / `.down` or not.
fn paired_name(file: &str) -> Option<bool> {
    let stem = file.strip_suffix(".sql")?;
    let (stem, directional) = match stem.strip_suffix(".up").or_else(|| stem.strip_suffix(".down")) {
        Some(s) => (s, true),
        None => (stem, false),
    };
    let (ver, desc) = stem.split_once('_')?;
    (!ver.is_empty() && ver.bytes().all(|b| b.is_ascii_digit()) && !desc.is_empty()).then_some(directional)
}

/// Detects the layout of `dir` from its files.
pub fn detect(dir: &Path) -> Result<Detection> {
    if !dir.is_dir() {
        return Err(Error::Load { at: Location::file(dir), kind: crate::error::LoadError::FolderNotFound { migrations: false } });
    }
    let plan = dir.join(super::sqitch::PLAN);
    if plan.is_file() {
        return Ok(Detection { layout: Layout::Sqitch, evidence: Evidence::PlanFile { file: plan } });
    }
    let folders = entries(dir)?.into_iter().filter(|p| p.join("up.sql").is_file()).count();
    if folders > 0 {
        return Ok(Detection { layout: Layout::Diesel, evidence: Evidence::ChangeFolders { count: folders } });
    }
    let files = sql_files(dir)?;
    let Some(first) = files.first() else { return Err(unknown(dir)) };
    for f in &files {
        if let Some((layout, marker)) = marker(&read(f)?) {
            return Ok(Detection { layout, evidence: Evidence::Marker { file: f.clone(), marker } });
        }
    }
    let names: Vec<String> = files.iter().map(|p| file_name(p)).collect();
    let count = names.len();
    let found = |layout, pattern| Ok(Detection { layout, evidence: Evidence::Names { count, pattern } });
    if names.iter().all(|n| flyway::parse_name(n).is_some()) {
        return found(Layout::Flyway, "V<version>__<description>.sql");
    }
    let paired: Vec<Option<bool>> = names.iter().map(|n| paired_name(n)).collect();
    if paired.iter().all(Option::is_some) {
        let simple = paired.contains(&Some(false));
        let marked = files.iter().any(|f| read(f).is_ok_and(|t| t.lines().next().is_some_and(|l| l.trim() == "-- no-transaction")));
        if simple || marked {
            return found(Layout::Sqlx, "<version>_<description>.sql (sqlx)");
        }
        return found(Layout::GolangMigrate, "<version>_<title>.up.sql / .down.sql");
    }
    if names.iter().all(|n| super::files::parse_name(n).is_some()) {
        return found(Layout::Files, "<prefix><version><separator><name>.up.sql / .down.sql");
    }
    let claimed = |n: &str| flyway::parse_name(n).is_some() || paired_name(n).is_some() || super::files::parse_name(n).is_some();
    let culprit = files.iter().zip(&names).find(|(_, n)| !claimed(n)).map(|(p, _)| p);
    let culprit = culprit.or_else(|| files.iter().zip(&names).find(|(_, n)| super::files::parse_name(n).is_none()).map(|(p, _)| p));
    Err(unknown(culprit.unwrap_or(first)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, text) in files {
            crate::foreign::write(d.path(), name, text);
        }
        d
    }

    fn layout(files: &[(&str, &str)]) -> Layout {
        detect(folder(files).path()).unwrap().layout
    }

    #[test]
    fn each_layout_is_recognised() {
        assert_eq!(layout(&[("sqitch.plan", "%project=x\n"), ("deploy/a.sql", "")]), Layout::Sqitch);
        assert_eq!(layout(&[("2024-01-01-000000_a/up.sql", "SELECT 1;")]), Layout::Diesel);
        assert_eq!(layout(&[("001.sql", "\n--liquibase formatted sql\n--changeset a:1\nSELECT 1;\n")]), Layout::Liquibase);
        assert_eq!(layout(&[("1_a.sql", "-- +goose Up\nSELECT 1;\n")]), Layout::Goose);
        assert_eq!(layout(&[("1_a.sql", "-- migrate:up\nSELECT 1;\n-- migrate:down\n")]), Layout::Dbmate);
        assert_eq!(layout(&[("V1__a.sql", ""), ("U1__a.sql", ""), ("R__v.sql", "")]), Layout::Flyway);
        assert_eq!(layout(&[("1_a.up.sql", ""), ("1_a.down.sql", "")]), Layout::GolangMigrate);
        assert_eq!(layout(&[("1_a.up.sql", "-- no-transaction\nSELECT 1;"), ("1_a.down.sql", "")]), Layout::Sqlx);
        assert_eq!(layout(&[("1_a.sql", "SELECT 1;")]), Layout::Sqlx);
        assert_eq!(layout(&[("V0001.Initial_Schema.up.sql", ""), ("V0001.Initial_Schema.down.sql", "")]), Layout::Files);
    }

    #[test]
    fn an_unreadable_folder_names_a_file_and_the_layouts_tried() {
        let d = folder(&[("V1__a.sql", ""), ("init.sql", "CREATE TABLE t (x int);")]);
        let e = detect(d.path()).unwrap_err().to_string();
        let want = format!("{}: no migration layout reads this (tried sqitch, diesel, liquibase, goose, dbmate, flyway, sqlx, golang-migrate, files)", d.path().join("init.sql").display());
        assert_eq!(e, want);
        let empty = folder(&[("README.md", "")]);
        let e = detect(empty.path()).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: no migration layout reads this", empty.path().display())), "{e}");
    }
}
