//! Each tool's own ledger table, created in the rehearsal database before
//! the first migration as the tool creates it before running one: a
//! migration may read it or `GRANT ... ON` it (dbmate's `schema_migrations`
//! exists when its migrations run). The tables stay empty apart from the
//! row goose writes when it creates its table; the rehearsal records what
//! ran in its own ledger. Column types follow what each tool creates on
//! PostgreSQL.

use std::path::PathBuf;

use super::Layout;
use crate::set::{Directives, SqlFile};

const DIESEL: &str = "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
    version VARCHAR(50) PRIMARY KEY NOT NULL,
    run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);";

const SQLX: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
);";

const GOLANG_MIGRATE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);";

const REFINERY: &str = "CREATE TABLE IF NOT EXISTS refinery_schema_history (
    version INT4 PRIMARY KEY,
    name VARCHAR(255),
    applied_on VARCHAR(255),
    checksum VARCHAR(255)
);";

const GOOSE: &str = "CREATE TABLE IF NOT EXISTS goose_db_version (
    id serial NOT NULL,
    version_id bigint NOT NULL,
    is_applied boolean NOT NULL,
    tstamp timestamp NULL DEFAULT now(),
    PRIMARY KEY (id)
);
INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true);";

const DBMATE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (version varchar(128) PRIMARY KEY);";

const FLYWAY: &str = "CREATE TABLE IF NOT EXISTS flyway_schema_history (
    installed_rank INT NOT NULL,
    version VARCHAR(50),
    description VARCHAR(200) NOT NULL,
    type VARCHAR(20) NOT NULL,
    script VARCHAR(1000) NOT NULL,
    checksum INTEGER,
    installed_by VARCHAR(100) NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT now(),
    execution_time INTEGER NOT NULL,
    success BOOLEAN NOT NULL,
    CONSTRAINT flyway_schema_history_pk PRIMARY KEY (installed_rank)
);
CREATE INDEX IF NOT EXISTS flyway_schema_history_s_idx ON flyway_schema_history (success);";

const SQITCH: &str = "CREATE SCHEMA IF NOT EXISTS sqitch;
CREATE TABLE IF NOT EXISTS sqitch.releases (
    version REAL PRIMARY KEY,
    installed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    installer_name TEXT NOT NULL,
    installer_email TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sqitch.projects (
    project TEXT PRIMARY KEY,
    uri TEXT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    creator_name TEXT NOT NULL,
    creator_email TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sqitch.changes (
    change_id TEXT PRIMARY KEY,
    script_hash TEXT NULL,
    change TEXT NOT NULL,
    project TEXT NOT NULL REFERENCES sqitch.projects(project) ON UPDATE CASCADE,
    note TEXT NOT NULL DEFAULT '',
    committed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    committer_name TEXT NOT NULL,
    committer_email TEXT NOT NULL,
    planned_at TIMESTAMPTZ NOT NULL,
    planner_name TEXT NOT NULL,
    planner_email TEXT NOT NULL,
    UNIQUE (project, script_hash)
);
CREATE TABLE IF NOT EXISTS sqitch.tags (
    tag_id TEXT PRIMARY KEY,
    tag TEXT NOT NULL,
    project TEXT NOT NULL REFERENCES sqitch.projects(project) ON UPDATE CASCADE,
    change_id TEXT NOT NULL REFERENCES sqitch.changes(change_id) ON UPDATE CASCADE,
    note TEXT NOT NULL DEFAULT '',
    committed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    committer_name TEXT NOT NULL,
    committer_email TEXT NOT NULL,
    planned_at TIMESTAMPTZ NOT NULL,
    planner_name TEXT NOT NULL,
    planner_email TEXT NOT NULL,
    UNIQUE (project, tag)
);
CREATE TABLE IF NOT EXISTS sqitch.dependencies (
    change_id TEXT NOT NULL REFERENCES sqitch.changes(change_id) ON UPDATE CASCADE ON DELETE CASCADE,
    type TEXT NOT NULL,
    dependency TEXT NOT NULL,
    dependency_id TEXT NULL REFERENCES sqitch.changes(change_id) ON UPDATE CASCADE,
    PRIMARY KEY (change_id, dependency)
);
CREATE TABLE IF NOT EXISTS sqitch.events (
    event TEXT NOT NULL CHECK (event IN ('deploy', 'revert', 'fail', 'merge')),
    change_id TEXT NOT NULL,
    change TEXT NOT NULL,
    project TEXT NOT NULL REFERENCES sqitch.projects(project) ON UPDATE CASCADE,
    note TEXT NOT NULL DEFAULT '',
    requires TEXT[] NOT NULL DEFAULT '{}',
    conflicts TEXT[] NOT NULL DEFAULT '{}',
    tags TEXT[] NOT NULL DEFAULT '{}',
    committed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    committer_name TEXT NOT NULL,
    committer_email TEXT NOT NULL,
    planned_at TIMESTAMPTZ NOT NULL,
    planner_name TEXT NOT NULL,
    planner_email TEXT NOT NULL,
    PRIMARY KEY (change_id, committed_at)
);";

const LIQUIBASE: &str = "CREATE TABLE IF NOT EXISTS databasechangeloglock (
    id INTEGER NOT NULL,
    locked BOOLEAN NOT NULL,
    lockgranted TIMESTAMP WITHOUT TIME ZONE,
    lockedby VARCHAR(255),
    CONSTRAINT databasechangeloglock_pkey PRIMARY KEY (id)
);
CREATE TABLE IF NOT EXISTS databasechangelog (
    id VARCHAR(255) NOT NULL,
    author VARCHAR(255) NOT NULL,
    filename VARCHAR(255) NOT NULL,
    dateexecuted TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    orderexecuted INTEGER NOT NULL,
    exectype VARCHAR(10) NOT NULL,
    md5sum VARCHAR(35),
    description VARCHAR(255),
    comments VARCHAR(255),
    tag VARCHAR(255),
    liquibase VARCHAR(20),
    contexts VARCHAR(255),
    labels VARCHAR(255),
    deployment_id VARCHAR(10)
);";

/// The SQL that creates the tool's ledger, `None` for the generic layout
/// (no tool, no ledger).
pub fn sql(tool: Layout) -> Option<&'static str> {
    Some(match tool {
        Layout::Diesel => DIESEL,
        Layout::Sqlx => SQLX,
        Layout::GolangMigrate => GOLANG_MIGRATE,
        Layout::Refinery => REFINERY,
        Layout::Goose => GOOSE,
        Layout::Dbmate => DBMATE,
        Layout::Flyway => FLYWAY,
        Layout::Sqitch => SQITCH,
        Layout::Liquibase => LIQUIBASE,
        Layout::Files => return None,
    })
}

/// The tool's ledger as a file the rehearsal runs before the first
/// migration (named `<tool> ledger` in errors).
pub fn setup(tool: Layout) -> Option<SqlFile> {
    sql(tool).map(|text| SqlFile::new(PathBuf::from(format!("{tool} ledger")), text.to_string(), Directives::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_but_the_generic_layout_has_a_ledger() {
        for l in Layout::ALL {
            let file = setup(l);
            assert_eq!(file.is_none(), l == Layout::Files, "{l}");
            if let Some(f) = file {
                assert!(!f.statements().is_empty(), "{l}");
            }
        }
    }
}
