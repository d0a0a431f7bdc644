//! What changed since an observation, without reading the whole catalog:
//! an event trigger in the disposable database records every object a
//! DDL command creates, alters, comments on or drops (`ddl_command_end`
//! through `pg_event_trigger_ddl_commands()`, `sql_drop` through
//! `pg_event_trigger_dropped_objects()`) in `phasegate_touch.log`, and an
//! observation reads the entries since the last one ([`CANDIDATES_SQL`]).
//! Those objects become *candidates*: the roots (see `catalog`) whose
//! blocks show them, read again with the signature statement restricted to
//! them. Besides the log, a candidate is:
//!
//! * every relation, function and type in a schema the log names (a
//!   renamed schema renames every header in it);
//! * a relation whose `pg_class` row, or one of whose `pg_index` rows, was
//!   written since the last observation (`TRUNCATE`, `CLUSTER` and
//!   partition attachment fire no event trigger for every table they touch);
//! * a table the current transaction wrote rows to (`pg_stat_xact_*`),
//!   and the root of its partition tree;
//! * a sequence owned by a candidate table.
//!
//! A GRANT or REVOKE fires `ddl_command_end` without naming its objects
//! (a table's is caught by its `pg_class` row; a column's, a function's,
//! a type's or a schema's would not be): the log records that one ran, and
//! the observation reads every signature.
//!
//! What fires no event trigger and is not caught above (roles, databases
//! and tablespaces are global and outside the snapshot; a superuser's
//! direct write to a catalog) is caught by the full observation at the end
//! of a rehearsal, which fails the run when the kept state differs. The
//! event trigger is `ENABLE ALWAYS`, so `session_replication_role =
//! replica` does not silence it.
//!
//! A dropped index or statistics object leaves no row naming its table:
//! the log keeps its schema and name, and the caller looks the name up in
//! the blocks of the last state (see [`Touched::dropped`]); when that
//! fails, the observation reads every signature, as without the log. So
//! does one after an extension was touched (see [`Touched::extension`]).

use postgres::{Client, GenericClient, Statement};


/// Installs the log and the event triggers (superuser only). One statement
/// batch in a transaction of its own.
const INSTALL_SQL: &str = "BEGIN; \
     CREATE SCHEMA phasegate_touch; \
     CREATE TABLE phasegate_touch.log (id bigserial PRIMARY KEY, objid oid, tab oid, \
       dropped_kind text, dropped_schema text, dropped_name text); \
     CREATE FUNCTION phasegate_touch.ddl() RETURNS event_trigger LANGUAGE plpgsql AS $f$ BEGIN \
       INSERT INTO phasegate_touch.log (objid) SELECT objid FROM pg_event_trigger_ddl_commands() WHERE objid <> 0; \
       INSERT INTO phasegate_touch.log (dropped_kind) SELECT 'grant' FROM pg_event_trigger_ddl_commands() \
         WHERE command_tag IN ('GRANT', 'REVOKE') LIMIT 1; \
     END $f$; \
     CREATE FUNCTION phasegate_touch.dropped() RETURNS event_trigger LANGUAGE plpgsql AS $f$ BEGIN \
       INSERT INTO phasegate_touch.log (objid, tab, dropped_kind, dropped_schema, dropped_name) \
       SELECT d.objid, \
              CASE WHEN d.object_type IN ('trigger', 'table constraint', 'policy', 'rule', 'default value') \
                        AND cardinality(d.address_names) >= 2 \
                   THEN to_regclass(format('%I.%I', d.address_names[1], d.address_names[2]))::oid END, \
              CASE WHEN d.object_type IN ('index', 'statistics object') THEN d.object_type END, \
              d.address_names[1], d.address_names[2] \
       FROM pg_event_trigger_dropped_objects() d; \
     END $f$; \
     CREATE EVENT TRIGGER phasegate_touch_ddl ON ddl_command_end EXECUTE FUNCTION phasegate_touch.ddl(); \
     CREATE EVENT TRIGGER phasegate_touch_drop ON sql_drop EXECUTE FUNCTION phasegate_touch.dropped(); \
     ALTER EVENT TRIGGER phasegate_touch_ddl ENABLE ALWAYS; \
     ALTER EVENT TRIGGER phasegate_touch_drop ENABLE ALWAYS; \
     COMMIT";

/// Installs the log in the database `client` is connected to, when it can
/// (event triggers need a superuser). Without it every observation reads
/// every signature, as it did before; so a failure is not an error.
pub(crate) fn install(client: &mut Client) -> bool {
    match client.batch_execute(INSTALL_SQL) {
        Ok(()) => true,
        Err(_) => {
            let _ = client.batch_execute("ROLLBACK");
            false
        }
    }
}

/// Whether the log exists in this database.
pub(crate) const EXISTS_SQL: &str = "SELECT to_regclass('phasegate_touch.log') IS NOT NULL";

/// Where an observation stands in the log: the last entry it read and the
/// next transaction id at its snapshot (a catalog row written later has
/// this id or a later one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    pub seen: i64,
    pub xid: i64,
}

/// The mark of an observation now (no entries read).
pub(crate) const MARK_SQL: &str = "SELECT coalesce((SELECT max(id) FROM phasegate_touch.log), 0)::bigint, \
     (pg_snapshot_xmax(pg_current_snapshot())::text::bigint % 4294967296)::bigint";

/// The candidates since a mark ($1 last entry read, $2 transaction id).
/// Columns: the new mark's two values, the candidate oids (text of an
/// `oid[]`), and the dropped indexes and statistics objects as
/// `kind|schema|name` lines (`quote_ident` form), and whether every
/// signature must be read: an extension was touched (`ALTER EXTENSION ...
/// DROP` makes a member a root of its own, and the event names the
/// extension only), or a GRANT or REVOKE ran (its event names no object).
pub(crate) const CANDIDATES_SQL: &str = "WITH log AS MATERIALIZED (SELECT * FROM phasegate_touch.log WHERE id > $1), \
     direct AS MATERIALIZED (SELECT ARRAY( \
       SELECT objid FROM log WHERE objid IS NOT NULL \
       UNION SELECT tab FROM log WHERE tab IS NOT NULL \
       UNION SELECT c.oid FROM pg_class c WHERE c.oid >= 16384 AND c.xmin::text::bigint >= $2 \
       UNION SELECT i.indrelid FROM pg_index i WHERE i.indrelid >= 16384 AND i.xmin::text::bigint >= $2 \
       UNION SELECT w.oid FROM (SELECT relid FROM pg_stat_xact_user_tables WHERE n_tup_ins + n_tup_upd + n_tup_del > 0) x, \
         LATERAL (VALUES (x.relid), (pg_partition_root(x.relid))) w(oid) WHERE w.oid IS NOT NULL) AS d), \
     spaces AS MATERIALIZED (SELECT ARRAY(SELECT oid FROM pg_namespace WHERE oid = ANY((SELECT d FROM direct)::oid[])) AS s), \
     cand AS MATERIALIZED (SELECT ARRAY( \
       SELECT unnest(d) FROM direct \
       UNION SELECT indrelid FROM pg_index WHERE indexrelid = ANY((SELECT d FROM direct)::oid[]) \
       UNION SELECT CASE WHEN conrelid <> 0 THEN conrelid ELSE contypid END FROM pg_constraint WHERE oid = ANY((SELECT d FROM direct)::oid[]) \
       UNION SELECT tgrelid FROM pg_trigger WHERE oid = ANY((SELECT d FROM direct)::oid[]) \
       UNION SELECT ev_class FROM pg_rewrite WHERE oid = ANY((SELECT d FROM direct)::oid[]) \
       UNION SELECT adrelid FROM pg_attrdef WHERE oid = ANY((SELECT d FROM direct)::oid[]) \
       UNION SELECT polrelid FROM pg_policy WHERE oid = ANY((SELECT d FROM direct)::oid[]) \
       UNION SELECT stxrelid FROM pg_statistic_ext WHERE oid = ANY((SELECT d FROM direct)::oid[]) \
       UNION SELECT typrelid FROM pg_type WHERE oid = ANY((SELECT d FROM direct)::oid[]) AND typrelid <> 0 \
       UNION SELECT typelem FROM pg_type WHERE oid = ANY((SELECT d FROM direct)::oid[]) AND typelem <> 0 \
       UNION SELECT c.oid FROM pg_class c WHERE cardinality((SELECT s FROM spaces)::oid[]) > 0 AND c.relnamespace = ANY((SELECT s FROM spaces)::oid[]) \
       UNION SELECT p.oid FROM pg_proc p WHERE cardinality((SELECT s FROM spaces)::oid[]) > 0 AND p.pronamespace = ANY((SELECT s FROM spaces)::oid[]) \
       UNION SELECT t.oid FROM pg_type t WHERE cardinality((SELECT s FROM spaces)::oid[]) > 0 AND t.typnamespace = ANY((SELECT s FROM spaces)::oid[])) AS c) \
     SELECT coalesce((SELECT max(id) FROM phasegate_touch.log), $1)::bigint, \
            (pg_snapshot_xmax(pg_current_snapshot())::text::bigint % 4294967296)::bigint, \
            ARRAY(SELECT unnest(c) FROM cand \
                  UNION SELECT d.objid FROM pg_depend d WHERE d.refclassid = 'pg_class'::regclass \
                    AND d.refobjid = ANY((SELECT c FROM cand)::oid[]) AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') \
                    AND EXISTS (SELECT 1 FROM pg_sequence s WHERE s.seqrelid = d.objid))::text, \
            (SELECT coalesce(string_agg(l.dropped_kind || '|' || quote_ident(l.dropped_schema) || '|' || quote_ident(l.dropped_name), E'\\n'), '') \
             FROM log l WHERE l.dropped_kind IS NOT NULL \
               AND l.dropped_schema NOT IN ('pg_toast', 'phasegate_backup', 'phasegate_touch') AND l.dropped_schema !~ '^pg_(toast_)?temp_'), \
            EXISTS (SELECT 1 FROM pg_extension WHERE oid = ANY((SELECT d FROM direct)::oid[])) \
              OR EXISTS (SELECT 1 FROM log WHERE dropped_kind = 'grant')";

/// What an observation reads from the log.
#[derive(Debug, Clone, Default)]
pub(crate) struct Touched {
    pub candidates: Vec<u32>,
    /// Dropped indexes and statistics objects: `(kind, schema, name)`,
    /// schema and name as `quote_ident` writes them.
    pub dropped: Vec<(String, String, String)>,
    /// An extension was created, altered or had members added or dropped,
    /// or a GRANT or REVOKE ran: the candidates are not known.
    pub read_all: bool,
}

/// Reads the candidates since `mark`; returns the new mark too.
pub(crate) fn candidates(client: &mut impl GenericClient, stmt: &Statement, mark: Mark) -> Result<(Mark, Touched), postgres::Error> {
    let row = client.query_one(stmt, &[&mark.seen, &mark.xid])?;
    let next = Mark { seen: row.get(0), xid: row.get(1) };
    let oids: String = row.get(2);
    let candidates = oids.trim_matches(|c| c == '{' || c == '}').split(',').filter_map(|s| s.parse().ok()).collect();
    let dropped: String = row.get(3);
    let dropped = dropped
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, '|');
            Some((it.next()?.to_string(), it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect();
    Ok((next, Touched { candidates, dropped, read_all: row.get(4) }))
}

/// In a transaction that has written: a transaction id newer than every id
/// it has used (a subtransaction's, rolled back at once), so a catalog row
/// written from now on has this id or a later one. The xmax of a snapshot
/// is not enough there: it may be older than the transaction's own ids.
pub(crate) fn next_xid(client: &mut impl GenericClient) -> Result<i64, postgres::Error> {
    let mut xid = 0;
    for m in client.simple_query(
        "SAVEPOINT phasegate_mark; INSERT INTO phasegate_touch.log (objid) VALUES (NULL) RETURNING xmin::text; \
         ROLLBACK TO SAVEPOINT phasegate_mark; RELEASE SAVEPOINT phasegate_mark",
    )? {
        if let postgres::SimpleQueryMessage::Row(r) = m {
            xid = r.get(0).and_then(|x| x.parse().ok()).unwrap_or(0);
        }
    }
    Ok(xid)
}
