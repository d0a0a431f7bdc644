//! Another tool's ledger read as that tool reads it, for `migrate --adopt`:
//! which of its migrations it holds applied, with the checksum it stored.
//!
//! * diesel `__diesel_schema_migrations`, dbmate `schema_migrations`: a row
//!   per applied version;
//! * sqlx `_sqlx_migrations`: a row per version, `success = false` a
//!   migration that failed (refused);
//! * golang-migrate `schema_migrations(version, dirty)`: one row, the
//!   current version; every version at or below it is applied; `dirty`
//!   (a migration failed part way) is refused;
//! * goose `goose_db_version`: the latest row of each `version_id` decides
//!   (`is_applied`); version 0 is the row goose writes at creation;
//! * Flyway `flyway_schema_history`, in `installed_rank` order: a versioned
//!   or repeatable row applies (the latest row of a repeatable is the one
//!   that counts), `UNDO_SQL` undoes, a `BASELINE` row stands for every
//!   version at or below it, `success = false` is refused;
//! * Sqitch `sqitch.changes`: a row per deployed change (a reworked change
//!   is one row per deployment, told apart by `script_hash`);
//! * Liquibase `databasechangelog`: a row per changeset (`author:id`, and
//!   the file it came from);
//! * refinery `refinery_schema_history`: a row per version, with refinery's
//!   checksum. It is the table phasegate keeps its own ledger in: rows
//!   phasegate wrote (a `phasegate_applied` row beside them) are not
//!   refinery's.

use postgres::{Client, Row};

use super::{Layout, Version};
use crate::error::{db_err, Error, Result};

/// One migration the tool's ledger holds applied.
#[derive(Debug, Clone)]
pub(crate) struct Applied {
    /// Its label as the tool writes it (`key` normalises it for matching).
    pub label: String,
    /// The file the row names (Liquibase's `filename`), if any.
    pub file: Option<String>,
    pub checksum: Option<String>,
    /// The tool recorded it as failed.
    pub failed: bool,
}

/// What the tool's ledger says is applied.
#[derive(Debug, Clone, Default)]
pub(crate) struct ToolLedger {
    /// The table read, for messages.
    pub table: &'static str,
    pub rows: Vec<Applied>,
    /// golang-migrate's current version, Flyway's baseline: every migration
    /// at or below it counts as applied (no checksum to compare).
    pub up_to: Option<String>,
}

/// The label normalised for matching a ledger row to an imported
/// migration: diesel versions without their dashes, numeric versions
/// without leading zeros, Flyway versions by number (`1.0` = `1`), a
/// Sqitch change without its `@tag` (a reworked change's older script).
pub(crate) fn key(tool: Layout, label: &str) -> String {
    let label = label.trim();
    match tool {
        Layout::Diesel => numeric(&label.replace('-', "")),
        Layout::Flyway if !label.starts_with("R__") => match Version::parse(label) {
            Some(v) => format!("{v:?}"),
            None => label.to_string(),
        },
        Layout::Sqitch => label.split('@').next().unwrap_or(label).to_string(),
        Layout::Sqlx | Layout::GolangMigrate | Layout::Goose | Layout::Dbmate | Layout::Refinery => numeric(label),
        _ => label.to_string(),
    }
}

fn numeric(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let t = s.trim_start_matches('0');
        if t.is_empty() { "0".into() } else { t.to_string() }
    } else {
        s.to_string()
    }
}

/// The tool's ledger table, as `read` reads it.
pub(crate) fn table(tool: Layout) -> Option<&'static str> {
    Some(match tool {
        Layout::Diesel => "__diesel_schema_migrations",
        Layout::Sqlx => "_sqlx_migrations",
        Layout::GolangMigrate | Layout::Dbmate => "schema_migrations",
        Layout::Goose => "goose_db_version",
        Layout::Flyway => "flyway_schema_history",
        Layout::Sqitch => "sqitch.changes",
        Layout::Liquibase => "databasechangelog",
        Layout::Refinery => "refinery_schema_history",
        Layout::Files => return None,
    })
}

/// Reads the tool's ledger; a missing table is an error naming it.
pub(crate) fn read(client: &mut Client, tool: Layout) -> Result<ToolLedger> {
    let table = table(tool).expect("adopt checks the tool has a ledger first");
    let found: bool = client
        .query_one("SELECT pg_catalog.to_regclass($1) IS NOT NULL", &[&table])
        .map_err(db_err(format!("looking for {tool}'s ledger")))?
        .get(0);
    if !found {
        return Err(Error::Adopt {
            problems: vec![format!("{tool}'s ledger table {table} is not in this database (on its search_path): there is nothing to adopt; `migrate` runs the set from the start")],
        });
    }
    let query = |client: &mut Client, sql: &str| -> Result<Vec<Row>> { client.query(sql, &[]).map_err(db_err(format!("reading {table}"))) };
    let mut out = ToolLedger { table, ..Default::default() };
    let plain = |label: String| Applied { label, file: None, checksum: None, failed: false };
    match tool {
        Layout::Diesel => out.rows = query(client, "SELECT version::text FROM __diesel_schema_migrations ORDER BY version")?.iter().map(|r| plain(r.get(0))).collect(),
        Layout::Dbmate => out.rows = query(client, "SELECT version::text FROM schema_migrations ORDER BY version")?.iter().map(|r| plain(r.get(0))).collect(),
        Layout::Sqlx => {
            for r in query(client, "SELECT version::text, success, encode(checksum, 'hex') FROM _sqlx_migrations ORDER BY version")? {
                out.rows.push(Applied { label: r.get(0), file: None, checksum: r.get(2), failed: !r.get::<_, bool>(1) });
            }
        }
        Layout::GolangMigrate => {
            let rows = query(client, "SELECT version::text, dirty FROM schema_migrations")?;
            if rows.len() > 1 {
                return Err(Error::Adopt { problems: vec![format!("schema_migrations holds {} rows; golang-migrate keeps one (the current version): is this dbmate's ledger?", rows.len())] });
            }
            if let Some(r) = rows.first() {
                let version: String = r.get(0);
                if r.get::<_, bool>(1) {
                    return Err(Error::Adopt {
                        problems: vec![format!("schema_migrations: golang-migrate version {version} is dirty (it failed part way): repair the database and `migrate force` it with golang-migrate, then adopt")],
                    });
                }
                out.up_to = Some(version);
            }
        }
        Layout::Goose => {
            let sql = "SELECT DISTINCT ON (version_id) version_id::text, is_applied FROM goose_db_version WHERE version_id <> 0 ORDER BY version_id, id DESC";
            out.rows = query(client, sql)?.iter().filter(|r| r.get::<_, bool>(1)).map(|r| plain(r.get(0))).collect();
        }
        Layout::Flyway => flyway(&mut out, query(client, "SELECT version, description, type, checksum::text, success FROM flyway_schema_history ORDER BY installed_rank")?),
        Layout::Sqitch => {
            for r in query(client, "SELECT change, script_hash FROM sqitch.changes ORDER BY committed_at, change_id")? {
                out.rows.push(Applied { label: r.get(0), file: None, checksum: r.get(1), failed: false });
            }
        }
        Layout::Liquibase => {
            for r in query(client, "SELECT author || ':' || id, filename FROM databasechangelog ORDER BY orderexecuted, dateexecuted")? {
                out.rows.push(Applied { label: r.get(0), file: r.get(1), checksum: None, failed: false });
            }
        }
        Layout::Refinery => {
            let ours: bool = client.query_one("SELECT to_regclass('phasegate_applied') IS NOT NULL", &[]).map_err(db_err("reading refinery_schema_history"))?.get(0);
            let sql = match ours {
                true => "SELECT h.version::text, h.checksum FROM refinery_schema_history h WHERE NOT EXISTS (SELECT 1 FROM phasegate_applied a WHERE a.version = h.version) ORDER BY h.version",
                false => "SELECT version::text, checksum FROM refinery_schema_history ORDER BY version",
            };
            for r in query(client, sql)? {
                out.rows.push(Applied { label: r.get(0), file: None, checksum: r.get(1), failed: false });
            }
        }
        Layout::Files => unreachable!("no ledger to read"),
    }
    Ok(out)
}

/// Flyway's history in rank order: what is applied now.
fn flyway(out: &mut ToolLedger, rows: Vec<Row>) {
    for r in rows {
        let (version, description, kind): (Option<String>, String, String) = (r.get(0), r.get(1), r.get(2));
        let label = match &version {
            Some(v) => v.clone(),
            None => format!("R__{}", description.replace(' ', "_")),
        };
        let k = key(Layout::Flyway, &label);
        match kind.as_str() {
            "BASELINE" | "SQL_BASELINE" => out.up_to = version,
            "UNDO_SQL" | "UNDO_JDBC" | "UNDO_SCRIPT" => out.rows.retain(|a| key(Layout::Flyway, &a.label) != k),
            "SCHEMA" | "DELETE" => {}
            _ => {
                out.rows.retain(|a| key(Layout::Flyway, &a.label) != k);
                out.rows.push(Applied { label, file: None, checksum: r.get(3), failed: !r.get::<_, bool>(4) });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_match_as_each_tool_compares_them() {
        assert_eq!(key(Layout::Diesel, "2024-01-05-101500"), key(Layout::Diesel, "20240105101500"));
        assert_eq!(key(Layout::Goose, "00001"), "1");
        assert_eq!(key(Layout::Flyway, "1.0"), key(Layout::Flyway, "1"));
        assert_ne!(key(Layout::Flyway, "1.1"), key(Layout::Flyway, "1"));
        assert_eq!(key(Layout::Sqitch, "customers@v1.0"), "customers");
        assert_eq!(key(Layout::Liquibase, "alice:3"), "alice:3");
    }
}
