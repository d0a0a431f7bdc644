//! Making sure of the ledger: finding it and whether it is whole in one
//! query, and creating or completing it under the setup lock.

use postgres::types::Type;
use postgres::Client;
use refinery::Migrate;

use super::{found, Tables, APPLIED, HISTORY, PIN, SETUP_LOCK_KEY, TABLES_SQL};
use crate::db::APPEND_ONLY;
use crate::error::{db_err, Result};

/// The ledger's tables in `{schema}` (a quoted schema name).
const SETUP_SQL: &str = r#"
CREATE TABLE IF NOT EXISTS {schema}.phasegate_applied (
    version integer PRIMARY KEY,
    name text NOT NULL,
    phase integer NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    forward_sha256 text NOT NULL,
    rollback_sql text,
    rollback_sha256 text,
    validation_sql text NOT NULL,
    validation_sha256 text NOT NULL,
    run_id uuid
);
CREATE TABLE IF NOT EXISTS {schema}.phasegate_runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id uuid NOT NULL UNIQUE,
    command text NOT NULL,
    args jsonb NOT NULL DEFAULT '[]',
    phase integer,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now(),
    duration_ms bigint NOT NULL,
    db_user text NOT NULL DEFAULT current_user,
    client_host text,
    os_user text,
    verdict text,
    exit_code integer NOT NULL,
    error text,
    steps jsonb NOT NULL DEFAULT '[]',
    checks jsonb NOT NULL DEFAULT '[]',
    log_file text
);
CREATE TABLE IF NOT EXISTS {schema}.phasegate_batches (
    version integer PRIMARY KEY,
    last_key text,
    rows_done bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS {schema}.phasegate_backups (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id uuid NOT NULL,
    version integer NOT NULL,
    table_name text NOT NULL,
    backup_table text NOT NULL UNIQUE,
    kind text NOT NULL CHECK (kind IN ('rows', 'columns')),
    changes text[] NOT NULL,
    columns text[] NOT NULL,
    key_columns text[] NOT NULL,
    rows bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    restored_at timestamptz,
    restored_by uuid
);
CREATE INDEX IF NOT EXISTS phasegate_backups_run_id_idx ON {schema}.phasegate_backups (run_id);
CREATE TABLE IF NOT EXISTS {schema}.phasegate_kept (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id uuid NOT NULL,
    version integer NOT NULL,
    ord integer NOT NULL,
    kind text NOT NULL,
    object text NOT NULL,
    definition jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    recovered_at timestamptz,
    recovered_by uuid,
    UNIQUE (run_id, version, ord)
);

-- The other tool's migration a version was adopted from (`migrate --adopt`).
ALTER TABLE {schema}.phasegate_applied ADD COLUMN IF NOT EXISTS adopted_from text;
-- The fleet run (and the database's name in it) a run belonged to.
ALTER TABLE {schema}.phasegate_runs ADD COLUMN IF NOT EXISTS fleet_run uuid;
ALTER TABLE {schema}.phasegate_runs ADD COLUMN IF NOT EXISTS fleet_member text;
CREATE OR REPLACE FUNCTION {schema}.{append_only}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'phasegate_runs is an append-only audit log';
END $$;
"#;

/// Creates the ledger tables if they do not exist (refinery's own DDL for
/// its history table), in the ledger's schema (see [`tables`]), and says
/// where they are: one round trip when the ledger is whole, two when it
/// is missing or older (the check, then one message that takes the setup
/// lock, creates and completes the ledger in a transaction and unlocks).
pub fn ensure(client: &mut Client) -> Result<()> {
    ensure_tables(client).map(|_| ())
}

/// [`ensure`], returning where the ledger is.
pub(crate) fn ensure_tables(client: &mut Client) -> Result<Tables> {
    let row = client
        .query_typed_one(&COMPLETE_SQL, &[(&PIN, Type::TEXT), (&HISTORY, Type::TEXT), (&APPLIED, Type::TEXT)])
        .map_err(db_err("reading the ledger"))?;
    let t = found(row.get(0), row.get(1), row.get(2))?;
    if row.get::<_, bool>(3) {
        return Ok(t);
    }
    let body = format!(
        "BEGIN \
           IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = pg_catalog.to_regclass({}) AND tgname = '{APPEND_ONLY}') THEN \
             CREATE TRIGGER {APPEND_ONLY} BEFORE UPDATE OR DELETE ON {} FOR EACH ROW EXECUTE FUNCTION {}.{APPEND_ONLY}(); \
           END IF; END",
        crate::pg::quote_literal(&t.runs),
        t.runs,
        t.schema,
    );
    // A dollar quote whose tag the body (a schema's name) does not hold.
    let tag = (0..).map(|i| format!("$phasegate{i}$")).find(|tag| !body.contains(tag.as_str())).expect("a free tag");
    let trigger = format!("DO {tag}{body}{tag}");
    // The setup lock taken (waiting for a session setting the ledger up
    // now), refinery's history table from refinery's own statement, the
    // tables and the trigger when it is missing, in one transaction, and
    // the lock released, in one message: each statement sees what commits
    // before it starts, so the tables a session created while this one
    // waited are found, not made again. Unlocked after the COMMIT: an
    // advisory unlock takes effect at once, and a session that took the
    // lock before this transaction committed would not see its tables and
    // create them again (a duplicate key in the catalog). A failure skips
    // the unlock, done again below.
    let history = <Client as Migrate>::assert_migrations_table_query(&t.history);
    let sql = format!(
        "SELECT pg_catalog.pg_advisory_lock({SETUP_LOCK_KEY}); BEGIN; {}; {}; {trigger}; COMMIT; SELECT pg_catalog.pg_advisory_unlock({SETUP_LOCK_KEY})",
        history.trim_end().trim_end_matches(';'),
        SETUP_SQL.replace("{schema}", &t.schema).replace("{append_only}", APPEND_ONLY)
    );
    let res = client.batch_execute(&sql).map_err(db_err("creating the phasegate ledger tables"));
    if res.is_err() {
        // A failed statement left the transaction open (aborted).
        let _ = client.batch_execute("ROLLBACK");
        client.query_typed_one("SELECT pg_catalog.pg_advisory_unlock($1)", &[(&SETUP_LOCK_KEY, Type::INT8)]).map_err(db_err("unlocking ledger setup"))?;
    }
    res.map(|_| t.whole())
}

/// [`tables`]' query and a fourth column: whether the whole ledger is there
/// as this version makes it (every table, the columns added since the
/// first version, the trigger that keeps `phasegate_runs` append-only), so
/// a run on a database that has it makes sure of it in one round trip.
static COMPLETE_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let table = |name: &str| format!("pg_catalog.to_regclass(pg_catalog.quote_ident(t.name) || '.{name}')");
    let tables = ["phasegate_runs", "phasegate_batches", "phasegate_backups", "phasegate_kept"].map(|n| format!("{} IS NOT NULL", table(n))).join(" AND ");
    format!(
        "SELECT t.name, t.found, t.batches, t.found AND {tables} \
           AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = {runs} AND attname = 'fleet_member') \
           AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = {applied} AND attname = 'adopted_from') \
           AND EXISTS (SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = {runs} AND tgname = '{APPEND_ONLY}') \
         FROM ({TABLES_SQL}) t(name, found, batches)",
        runs = table("phasegate_runs"),
        applied = table(APPLIED),
    )
});
