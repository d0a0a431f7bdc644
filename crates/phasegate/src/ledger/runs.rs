//! The audit half of the ledger (docs/ledger.md): `phasegate_runs`, one
//! append-only row per command, and the history read from it.

use postgres::GenericClient;
use time::format_description::well_known::Rfc3339;

use super::{existing, tables, Tables};
use crate::error::{db_err, Result};

/// One row of the audit log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRecord {
    pub run_id: String,
    pub command: String,
    pub args: Vec<String>,
    pub phase: Option<i32>,
    pub started_at: time::OffsetDateTime,
    pub duration_ms: i64,
    pub client_host: String,
    pub os_user: String,
    pub verdict: Option<String>,
    pub exit_code: i32,
    pub error: Option<String>,
    pub steps: serde_json::Value,
    pub checks: serde_json::Value,
    pub log_file: Option<String>,
    /// The fleet run this run was part of, and the database's name in the fleet.
    pub fleet_run: Option<String>,
    pub fleet_member: Option<String>,
}

/// Appends a run to `phasegate_runs`.
pub fn audit(client: &mut impl GenericClient, r: &RunRecord) -> Result<()> {
    let t = tables(client)?;
    audit_in(client, &t, r)
}

/// [`audit`] into the ledger at `t`, found earlier in the session: one
/// round trip.
pub(crate) fn audit_in(client: &mut impl GenericClient, t: &Tables, r: &RunRecord) -> Result<()> {
    let started = r.started_at.format(&Rfc3339).expect("RFC 3339 formats any time");
    let args = serde_json::to_string(&r.args).expect("strings serialise");
    let steps = r.steps.to_string();
    let checks = r.checks.to_string();
    use postgres::types::Type;
    let text = Type::TEXT;
    client
        .query_typed(
            &format!(
                "INSERT INTO {} (run_id, command, args, phase, started_at, duration_ms, client_host, os_user, verdict, exit_code, error, steps, checks, log_file,
                                 fleet_run, fleet_member)
                 VALUES ($1::text::uuid, $2, $3::text::jsonb, $4, $5::text::timestamptz, $6, $7, $8, $9, $10, $11, $12::text::jsonb, $13::text::jsonb, $14,
                         $15::text::uuid, $16)",
                t.runs
            ),
            // Typed, so the statement is not prepared first: one round trip.
            &[
                (&r.run_id, text.clone()),
                (&r.command, text.clone()),
                (&args, text.clone()),
                (&r.phase, Type::INT4),
                (&started, text.clone()),
                (&r.duration_ms, Type::INT8),
                (&r.client_host, text.clone()),
                (&r.os_user, text.clone()),
                (&r.verdict, text.clone()),
                (&r.exit_code, Type::INT4),
                (&r.error, text.clone()),
                (&steps, text.clone()),
                (&checks, text.clone()),
                (&r.log_file, text.clone()),
                (&r.fleet_run, text.clone()),
                (&r.fleet_member, text),
            ],
        )
        .map_err(db_err("writing the audit log"))?;
    Ok(())
}

/// A past run, for `history`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryRow {
    pub id: i64,
    pub run_id: String,
    pub command: String,
    pub phase: Option<i32>,
    pub started_at: String,
    pub duration_ms: i64,
    pub db_user: String,
    pub client_host: Option<String>,
    pub os_user: Option<String>,
    pub verdict: Option<String>,
    pub exit_code: i32,
    pub error: Option<String>,
    pub checks: serde_json::Value,
    pub log_file: Option<String>,
    /// The fleet run this run was part of, and the database's name in it.
    pub fleet_run: Option<String>,
    pub fleet_member: Option<String>,
    /// The tool a `migrate --adopt` run adopted the ledger of.
    pub adopted: Option<String>,
}

pub fn history(client: &mut impl GenericClient, limit: i64) -> Result<Vec<HistoryRow>> {
    let Some(t) = existing(client)? else {
        return Ok(Vec::new());
    };
    // Read-only, also on a ledger from before the fleet columns (no DDL
    // here: the role may not own the table, and history takes no lock).
    let rows = client
        .query(
            &format!(
                "SELECT id, run_id::text, command, phase, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), duration_ms,
                        db_user, client_host, os_user, verdict, exit_code, error, checks::text, log_file,
                        to_jsonb(r) ->> 'fleet_run', to_jsonb(r) ->> 'fleet_member',
                        (SELECT r.args ->> (e.i::int) FROM jsonb_array_elements_text(r.args) WITH ORDINALITY e(v, i) WHERE e.v = '--adopt' LIMIT 1)
                 FROM (SELECT * FROM {} ORDER BY id DESC LIMIT $1) r ORDER BY id",
                t.runs
            ),
            &[&limit],
        )
        .map_err(db_err("reading the audit log"))?;
    Ok(rows
        .into_iter()
        .map(|r| HistoryRow {
            id: r.get(0),
            run_id: r.get(1),
            command: r.get(2),
            phase: r.get(3),
            started_at: r.get(4),
            duration_ms: r.get(5),
            db_user: r.get(6),
            client_host: r.get(7),
            os_user: r.get(8),
            verdict: r.get(9),
            exit_code: r.get(10),
            error: r.get(11),
            checks: serde_json::from_str(r.get::<_, &str>(12)).unwrap_or_default(),
            log_file: r.get(13),
            fleet_run: r.get(14),
            fleet_member: r.get(15),
            adopted: r.get(16),
        })
        .collect())
}

/// A fresh run id (a random UUID).
pub fn new_run_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
