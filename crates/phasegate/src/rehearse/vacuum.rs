//! What autovacuum would do between two passes over the same rows.
//!
//! A rehearsal on a clone runs a phase forward, back and forward again
//! within seconds; production runs them hours apart, and autovacuum cleans
//! a table between a backfill and its rollback. Without it every pass
//! walks all the row versions the earlier ones left (the clinic set's
//! re-apply met three versions of each of 100k rows and took 3.5 s instead
//! of 2.2 s by hand with `psql`, for a 0.17 s `VACUUM`), so the rehearsal
//! measures a bloat production rarely has. Before the rollback and before
//! the re-apply, the tables over autovacuum's own threshold (its settings,
//! a table's storage parameters first; none whose autovacuum is disabled)
//! are vacuumed. `VACUUM` changes no row and no definition: the snapshots
//! and compares read the same state with or without it.

use postgres::GenericClient;

use crate::error::{db_err, Result};

/// The backend's pending statistics flushed now (PostgreSQL 15 flushes
/// them when idle at most once a second otherwise; older servers send them
/// to their collector on their own, and this does nothing there).
const FLUSH_SQL: &str = "DO $$ BEGIN \
       IF current_setting('server_version_num')::int >= 150000 THEN PERFORM pg_stat_force_next_flush(); END IF; \
     END $$";

/// The tables autovacuum would vacuum now: dead rows over
/// `threshold + scale_factor * reltuples`.
const DUE_SQL: &str = "SELECT format('%I.%I', s.schemaname, s.relname) \
     FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid, \
     LATERAL (SELECT \
         (SELECT option_value FROM pg_options_to_table(c.reloptions) WHERE option_name = 'autovacuum_enabled') AS enabled, \
         coalesce((SELECT option_value FROM pg_options_to_table(c.reloptions) WHERE option_name = 'autovacuum_vacuum_threshold'), \
                  current_setting('autovacuum_vacuum_threshold'))::float8 AS threshold, \
         coalesce((SELECT option_value FROM pg_options_to_table(c.reloptions) WHERE option_name = 'autovacuum_vacuum_scale_factor'), \
                  current_setting('autovacuum_vacuum_scale_factor'))::float8 AS scale) o \
     WHERE c.relkind IN ('r', 'm') AND o.enabled IS DISTINCT FROM 'false' \
       AND s.n_dead_tup > o.threshold + o.scale * greatest(c.reltuples, 0) \
     ORDER BY 1";

/// Vacuums the tables autovacuum would vacuum now, in one statement, and
/// returns them. Outside a transaction only (`VACUUM` cannot run in one).
pub(super) fn due(client: &mut impl GenericClient) -> Result<Vec<String>> {
    client.batch_execute(FLUSH_SQL).map_err(db_err("flushing the statistics before a vacuum"))?;
    let tables: Vec<String> = client.query_typed(DUE_SQL, &[]).map_err(db_err("reading which tables autovacuum would vacuum"))?.iter().map(|r| r.get(0)).collect();
    if !tables.is_empty() {
        client.batch_execute(&format!("VACUUM {}", tables.join(", "))).map_err(db_err("vacuuming between the rehearsal's passes"))?;
    }
    Ok(tables)
}
