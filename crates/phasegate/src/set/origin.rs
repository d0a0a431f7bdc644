//! Where a step of a set read from another tool's layout came from
//! (`foreign` reads them): the layout and the migration's own label and
//! file. Here, beside `Step`, so the set needs nothing from `foreign`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The layouts `verify --from` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// `migrations/<version>_<name>/up.sql, down.sql[, metadata.toml]`
    Diesel,
    /// `<version>_<desc>.up.sql / .down.sql`, or `<version>_<desc>.sql`;
    /// `-- no-transaction` on the first line.
    Sqlx,
    /// `<version>_<title>.up.sql / .down.sql`
    GolangMigrate,
    /// `V<n>__<name>.sql` (refinery has no down migrations).
    Refinery,
    /// `<version>_<name>.sql` with `-- +goose Up` / `-- +goose Down` sections.
    Goose,
    /// `<version>_<name>.sql` with `-- migrate:up` / `-- migrate:down` sections.
    Dbmate,
    /// `V<version>__<desc>.sql`, `U<version>__<desc>.sql` undo, `R__<desc>.sql`.
    Flyway,
    /// `sqitch.plan` with `deploy/`, `revert/` and `verify/`.
    Sqitch,
    /// Formatted SQL changelogs: `--changeset author:id` and `--rollback`.
    Liquibase,
    /// Up/down pairs no tool claims: `<prefix><version><sep><name>.up.sql`.
    Files,
}

impl Layout {
    /// Every layout, in the order `detect` tries them.
    pub const ALL: [Layout; 10] = [
        Layout::Sqitch,
        Layout::Diesel,
        Layout::Liquibase,
        Layout::Goose,
        Layout::Dbmate,
        Layout::Flyway,
        Layout::Refinery,
        Layout::Sqlx,
        Layout::GolangMigrate,
        Layout::Files,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Layout::Diesel => "diesel",
            Layout::Sqlx => "sqlx",
            Layout::GolangMigrate => "golang-migrate",
            Layout::Refinery => "refinery",
            Layout::Goose => "goose",
            Layout::Dbmate => "dbmate",
            Layout::Flyway => "flyway",
            Layout::Sqitch => "sqitch",
            Layout::Liquibase => "liquibase",
            Layout::Files => "files",
        }
    }

    /// The files the layout reads, for the error when it finds none.
    pub fn patterns(self) -> &'static str {
        match self {
            Layout::Diesel => "<version>_<name>/up.sql folders",
            Layout::Sqlx => "<version>_<description>.sql or .up.sql / .down.sql",
            Layout::GolangMigrate => "<version>_<title>.up.sql / .down.sql",
            Layout::Refinery => "V<version>__<name>.sql",
            Layout::Goose => "<version>_<name>.sql with `-- +goose Up`",
            Layout::Dbmate => "<version>_<name>.sql with `-- migrate:up`",
            Layout::Flyway => "V<version>__<description>.sql, R__<description>.sql",
            Layout::Sqitch => "changes in sqitch.plan with deploy/<change>.sql",
            Layout::Liquibase => "*.sql changelogs (`--liquibase formatted sql` with `--changeset author:id`, or raw SQL)",
            Layout::Files => "<prefix><version><separator><name>.up.sql / .down.sql",
        }
    }

    pub fn parse(s: &str) -> Option<Layout> {
        Layout::ALL.into_iter().find(|l| l.name() == s)
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a migration came from: its tool, its own label, its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub tool: Layout,
    /// The migration's label in its tool: a version (`1.2.3`,
    /// `20240105101500`), a Sqitch change (`users`, `users@v1.0` for a
    /// reworked one), a Liquibase changeset (`alice:3`), `R__<desc>` for a
    /// Flyway repeatable migration.
    pub id: String,
    /// The description part of the name (may be empty).
    pub name: String,
    /// The forward script's file.
    #[serde(serialize_with = "serialize_path")]
    pub file: PathBuf,
    /// 1-based line where the migration starts in `file`.
    pub line: usize,
}

pub(crate) fn serialize_path<S: serde::Serializer>(p: &Path, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&crate::error::display_path(p))
}

impl Origin {
    /// `flyway 1.2.3`: tool and label, for tables.
    pub fn label(&self) -> String {
        format!("{} {}", self.tool, self.id)
    }
}
