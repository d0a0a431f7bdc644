//! The ledger (docs/ledger.md): refinery's `refinery_schema_history` is the forward
//! ledger; `phasegate_applied` keeps the rollback and validation SQL stored at
//! apply time; `phasegate_runs` is the append-only audit of every command;
//! `phasegate_backups` records the rows rollbacks saved (see `backup`);
//! `phasegate_kept` what irreversible migrations destroyed (definitions, and
//! where their data was kept), for `recover`.

use std::collections::BTreeMap;

use postgres::types::Type;
use postgres::GenericClient;
use time::format_description::well_known::Rfc3339;

use crate::error::{db_err, display_path, Error, Result};
pub use crate::error::{Drift, DriftKind};
use crate::pg::{quote_ident, quote_literal};
use crate::set::{MigrationSet, Step};

mod runs;
mod setup;
pub use runs::{audit, history, new_run_id, HistoryRow, RunRecord};
pub(crate) use runs::audit_in;
pub use setup::ensure;
pub(crate) use setup::ensure_tables;

pub(crate) const HISTORY: &str = "refinery_schema_history";
pub(crate) const APPLIED: &str = "phasegate_applied";

/// Serialises ledger creation between concurrent first runs.
pub(super) const SETUP_LOCK_KEY: i64 = 0x7068_6173_6567_6175;

/// The session setting that holds the ledger's schema once a run found it.
pub(super) const PIN: &str = "phasegate.ledger_schema";

/// The ledger's tables, each schema-qualified and quoted
/// (`"public".phasegate_applied`), so the engine's own statements reach
/// them whatever `search_path` a migration file left the session with (a
/// pg_dump-style baseline runs `set_config('search_path', '', false)`).
#[derive(Debug, Clone)]
pub(crate) struct Tables {
    /// The schema, quoted.
    pub schema: String,
    pub history: String,
    pub applied: String,
    pub runs: String,
    pub batches: String,
    pub backups: String,
    pub kept: String,
    /// `refinery_schema_history` and `phasegate_applied` exist there.
    pub exists: bool,
    /// `phasegate_batches` exists there (a ledger older than backfills'
    /// progress table lacks it until a migrate completes the ledger).
    pub batches_exist: bool,
}

impl Tables {
    /// The same ledger, whole: after a setup made it, or a step recorded
    /// in it (which a migrate makes sure of first).
    pub(crate) fn whole(self) -> Tables {
        Tables { exists: true, batches_exist: true, ..self }
    }

    fn new(schema: &str, exists: bool, batches_exist: bool) -> Tables {
        let s = quote_ident(schema);
        let t = |name: &str| format!("{s}.{name}");
        Tables {
            history: t(HISTORY),
            applied: t(APPLIED),
            runs: t("phasegate_runs"),
            batches: t("phasegate_batches"),
            backups: t("phasegate_backups"),
            kept: t("phasegate_kept"),
            schema: s,
            exists,
            batches_exist,
        }
    }
}

/// Where the ledger lives, found once per session and pinned in it: the
/// schema of the `refinery_schema_history` the session's `search_path`
/// finds, else the schema a `CREATE TABLE` would use (`current_schema()`).
/// The first call of a run comes before any migration file runs (every
/// command reads the ledger first); later calls read the pinned schema, so
/// a file that empties or changes `search_path` does not move the ledger.
/// (A pin made in a transaction that rolls back is undone with it, and
/// found again by the next call.) One round trip, which also says whether
/// the ledger exists there.
pub(crate) fn tables(client: &mut impl GenericClient) -> Result<Tables> {
    let row = client
        .query_typed_one(TABLES_SQL, &[(&PIN, Type::TEXT), (&HISTORY, Type::TEXT), (&APPLIED, Type::TEXT)])
        .map_err(db_err("finding the ledger's schema"))?;
    found(row.get(0), row.get(1), row.get(2))
}

/// [`tables`]' query, its parameters `$1` to `$3` the pin, refinery's
/// table and phasegate's.
pub(super) const TABLES_SQL: &str = "WITH s AS (
       SELECT pg_catalog.set_config($1, coalesce(nullif(pg_catalog.current_setting($1, true), ''),
           (SELECT n.nspname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.oid = pg_catalog.to_regclass($2)),
           pg_catalog.current_schema()::text, ''), false) AS name)
     SELECT name, name <> '' AND pg_catalog.to_regclass(pg_catalog.quote_ident(name) || '.' || $2) IS NOT NULL
            AND pg_catalog.to_regclass(pg_catalog.quote_ident(name) || '.' || $3) IS NOT NULL,
            name <> '' AND pg_catalog.to_regclass(pg_catalog.quote_ident(name) || '.phasegate_batches') IS NOT NULL
     FROM s";

/// [`tables`]' query with its constants written in, to end a simple-query
/// message the caller sends anyway (a step's start): no round trip of its
/// own. [`tables_from`] reads the answer.
pub(crate) fn tables_query() -> &'static str {
    static QUERY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let quoted = |s: &str| format!("'{s}'");
        TABLES_SQL.replace("$1", &quoted(PIN)).replace("$2", &quoted(HISTORY)).replace("$3", &quoted(APPLIED))
    });
    &QUERY
}

/// [`tables`] from the answer to a message that ended with [`tables_query`].
pub(crate) fn tables_from(messages: &[postgres::SimpleQueryMessage]) -> Result<Tables> {
    let row = messages.iter().rev().find_map(|m| match m {
        postgres::SimpleQueryMessage::Row(r) => Some(r),
        _ => None,
    });
    let Some(row) = row else {
        return Err(Error::Unexpected { context: "finding the ledger's schema".into(), message: "no answer to the ledger's query".into() });
    };
    found(row.get(0).unwrap_or_default().to_string(), row.get(1) == Some("t"), row.get(2) == Some("t"))
}

pub(super) fn found(schema: String, exists: bool, batches_exist: bool) -> Result<Tables> {
    if schema.is_empty() {
        return Err(Error::Unexpected {
            context: "finding the ledger's schema".into(),
            message: "there is no ledger on the search_path and the search_path names no schema to create one in".into(),
        });
    }
    Ok(Tables::new(&schema, exists, batches_exist))
}

/// The ledger's tables, when they exist (a fresh database has none).
pub(crate) fn existing(client: &mut impl GenericClient) -> Result<Option<Tables>> {
    let t = tables(client)?;
    Ok(t.exists.then_some(t))
}

/// One applied migration as the ledger remembers it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Applied {
    pub version: i32,
    pub name: String,
    pub applied_on: String,
    /// refinery's checksum of the forward file at apply time.
    pub checksum: String,
    pub phase: Option<i32>,
    pub rollback_sql: Option<String>,
    pub rollback_sha256: Option<String>,
    pub validation_sql: Option<String>,
    pub validation_sha256: Option<String>,
    /// Recorded by `migrate --adopt` from another tool's ledger (`sqlx
    /// 20240105101500`), not run by phasegate.
    pub adopted_from: Option<String>,
}

impl Applied {
    /// The forward file changed since it was applied (refinery's checksum differs).
    pub fn forward_changed(&self, step: &Step) -> bool {
        self.checksum != step.refinery_checksum().to_string()
    }
}

/// Every disagreement between the ledger and the set's files, by version.
pub fn drift(set: &MigrationSet, applied: &BTreeMap<i32, Applied>) -> Vec<Drift> {
    let mut out = Vec::new();
    let mut push = |version: i32, kind: DriftKind, file: String, message: String| out.push(Drift { version, kind, file, message });
    for (&v, a) in applied {
        let Some(step) = set.step(v) else {
            let dir = set.dir.join(crate::set::MIGRATIONS);
            let message = format!("migration {v} ({}) was applied but its file is missing from {}", a.name, display_path(&dir));
            push(v, DriftKind::MissingFile, display_path(&dir.join(format!("V{v}__{}.sql", a.name))), message);
            continue;
        };
        if a.forward_changed(step) {
            push(v, DriftKind::ForwardChanged, display_path(&step.forward.path), format!("migration {v} was applied but its file has changed since"));
        }
        if let (Some(stored), Some(file)) = (&a.rollback_sha256, &step.rollback) {
            if stored != &file.sha256() {
                let message = format!("rollback of migration {v} changed since it was applied (a rollback runs the SQL stored at apply time)");
                push(v, DriftKind::RollbackChanged, display_path(&file.path), message);
            }
        }
        if a.validation_sha256.as_ref().is_some_and(|stored| stored != &step.validation.sha256()) {
            let message = format!("validation of migration {v} changed since it was applied");
            push(v, DriftKind::ValidationChanged, display_path(&step.validation.path), message);
        }
    }
    out
}

/// The applied migrations by version; empty when there is no ledger yet.
pub fn applied(client: &mut impl GenericClient) -> Result<BTreeMap<i32, Applied>> {
    match existing(client)? {
        Some(t) => applied_in(client, &t),
        None => Ok(BTreeMap::new()),
    }
}

/// [`applied`] from the ledger at `t`, found earlier in the session (by
/// [`tables`] or [`ensure`]): one round trip.
pub(crate) fn applied_in(client: &mut impl GenericClient, t: &Tables) -> Result<BTreeMap<i32, Applied>> {
    if !t.exists {
        return Ok(BTreeMap::new());
    }
    let rows = client
        .query_typed(
            &format!(
                "SELECT h.version, h.name, h.applied_on, h.checksum, a.phase, a.rollback_sql, a.rollback_sha256,
                        a.validation_sql, a.validation_sha256, to_jsonb(a) ->> 'adopted_from'
                 FROM {} h LEFT JOIN {} a ON a.version = h.version
                 ORDER BY h.version",
                t.history, t.applied
            ),
            &[],
        )
        .map_err(db_err("reading the ledger"))?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let a = Applied {
                version: r.get(0),
                name: r.get::<_, Option<String>>(1).unwrap_or_default(),
                applied_on: r.get::<_, Option<String>>(2).unwrap_or_default(),
                checksum: r.get::<_, Option<String>>(3).unwrap_or_default(),
                phase: r.get(4),
                rollback_sql: r.get(5),
                rollback_sha256: r.get(6),
                validation_sql: r.get(7),
                validation_sha256: r.get(8),
                adopted_from: r.get(9),
            };
            (a.version, a)
        })
        .collect())
}

/// Records an applied migration in refinery's history and in
/// `phasegate_applied` of the ledger `t` (found or made on the caller's
/// connection), inside the caller's transaction, and forgets its backfill's
/// progress (a recorded migration has no walk to resume).
pub(crate) fn record_apply_in(tx: &mut impl GenericClient, t: &Tables, step: &Step, run_id: &str) -> Result<()> {
    tx.batch_execute(&record_apply_sql(t, step, run_id)).map_err(db_err(format!("recording migration {} in {HISTORY} and {APPLIED}", step.version)))
}

/// The statement [`record_apply_in`] runs, its values written in as
/// literals (read back the same under either `standard_conforming_strings`,
/// see [`quote_literal`]), so it can ride in a message the caller sends
/// anyway: a step's first (`apply`). Both ledgers and the progress in one
/// statement (data-modifying CTEs).
pub(crate) fn record_apply_sql(t: &Tables, step: &Step, run_id: &str) -> String {
    let now = time::OffsetDateTime::now_utc().format(&Rfc3339).expect("RFC 3339 formats any time");
    let or_null = |v: Option<&str>| v.map_or_else(|| "NULL".to_string(), quote_literal);
    let (version, name, phase) = (step.version, quote_literal(&step.name), step.phase);
    let rollback_sql = or_null(step.rollback.as_ref().map(|r| r.text.as_str()));
    let rollback_sha = or_null(step.rollback.as_ref().map(|r| r.sha256()).as_deref());
    format!(
        "WITH history AS (INSERT INTO {} (version, name, applied_on, checksum) VALUES ({version}, {name}, {}, {})),
              progress AS (DELETE FROM {} WHERE version = {version})
         INSERT INTO {} (version, name, phase, forward_sha256, rollback_sql, rollback_sha256, validation_sql, validation_sha256, run_id)
         VALUES ({version}, {name}, {phase}, {}, {rollback_sql}, {rollback_sha}, {}, {}, {}::uuid);",
        t.history,
        quote_literal(&now),
        quote_literal(&step.refinery_checksum().to_string()),
        t.batches,
        t.applied,
        quote_literal(&step.forward.sha256()),
        quote_literal(&step.validation.text),
        quote_literal(&step.validation.sha256()),
        quote_literal(run_id),
    )
}

/// Marks a migration just recorded as adopted from another tool's ledger
/// (`label`: the tool and the migration's label there).
pub(crate) fn mark_adopted(tx: &mut impl GenericClient, t: &Tables, version: i32, label: &str) -> Result<()> {
    tx.execute(&format!("UPDATE {} SET adopted_from = $1 WHERE version = $2", t.applied), &[&label, &version])
        .map_err(db_err(format!("recording migration {version} as adopted")))?;
    Ok(())
}

/// Removes the rows of refinery's history that phasegate did not write (no
/// `phasegate_applied` row): a refinery database's own, which `migrate
/// --adopt refinery` replaces with phasegate's in the same transaction.
pub(crate) fn forget_foreign_history(tx: &mut impl GenericClient, t: &Tables) -> Result<()> {
    tx.execute(&format!("DELETE FROM {} h WHERE NOT EXISTS (SELECT 1 FROM {} a WHERE a.version = h.version)", t.history, t.applied), &[])
        .map_err(db_err(format!("replacing refinery's rows in {HISTORY}")))?;
    Ok(())
}

/// The key a batched rollback's progress is recorded under in
/// `phasegate_batches`: the version negated (versions are positive), so a
/// migration's backfill and its rollback's walk never share a row.
pub(crate) fn rollback_batch_key(version: i32) -> i32 {
    -version
}

/// Where a batched backfill stopped: (last key, rows done), if it started.
pub(crate) fn batch_progress(client: &mut impl GenericClient, version: i32) -> Result<Option<(Option<String>, i64)>> {
    let t = tables(client)?;
    let row = client
        .query_typed(&format!("SELECT last_key, rows_done FROM {} WHERE version = $1", t.batches), &[(&version, Type::INT4)])
        .map_err(db_err("reading backfill progress"))?;
    Ok(row.first().map(|r| (r.get(0), r.get(1))))
}

/// The statement that records a batch's progress inside the batch's
/// transaction, the ledger found once: a walk records every batch with it
/// ([`record_batch_with`]).
pub(crate) fn record_batch_sql(client: &mut impl GenericClient) -> Result<String> {
    Ok(format!(
        "INSERT INTO {} (version, last_key, rows_done) VALUES ($1, $2, $3)
         ON CONFLICT (version) DO UPDATE SET last_key = EXCLUDED.last_key, rows_done = EXCLUDED.rows_done, updated_at = pg_catalog.now()",
        tables(client)?.batches
    ))
}

/// Records a batch's progress with [`record_batch_sql`]'s statement: one round trip (its parameters'
/// types are given, so it is not prepared first).
pub(crate) fn record_batch_with(tx: &mut impl GenericClient, sql: &str, version: i32, last_key: Option<&str>, rows_done: i64) -> Result<()> {
    use postgres::types::Type;
    tx.query_typed(sql, &[(&version, Type::INT4), (&last_key, Type::TEXT), (&rows_done, Type::INT8)]).map_err(db_err("recording backfill progress"))?;
    Ok(())
}

/// Forgets a backfill's progress once its migration is recorded (or rolled back).
pub(crate) fn clear_batch(tx: &mut impl GenericClient, version: i32) -> Result<()> {
    let t = tables(tx)?;
    clear_batch_in(tx, &t, version)
}

fn clear_batch_in(tx: &mut impl GenericClient, t: &Tables, version: i32) -> Result<()> {
    tx.query_typed(&format!("DELETE FROM {} WHERE version = $1", t.batches), &[(&version, Type::INT4)]).map_err(db_err("clearing backfill progress"))?;
    Ok(())
}

/// Removes a migration from both ledgers, inside the rollback's transaction.
pub(crate) fn record_rollback(tx: &mut impl GenericClient, version: i32) -> Result<()> {
    let t = tables(tx)?;
    let n = tx
        .execute(&format!("DELETE FROM {} WHERE version = $1", t.history), &[&version])
        .map_err(db_err(format!("removing migration {version} from {HISTORY}")))?;
    if n != 1 {
        return Err(Error::LedgerChanged { version });
    }
    tx.execute(&format!("DELETE FROM {} WHERE version = $1", t.applied), &[&version])
        .map_err(db_err(format!("removing migration {version} from {APPLIED}")))?;
    clear_batch_in(tx, &t, version)?;
    clear_batch_in(tx, &t, rollback_batch_key(version))
}
