//! Normalised schema snapshots and row fingerprints, for `phasegate verify`.
//!
//! `verify` (SPEC section 8) takes a snapshot before each phase, migrates,
//! rolls back and snapshots again, and requires the two to be identical:
//! the same schema text, and every pre-existing table holding the same rows.
//! This module produces that snapshot:
//!
//! * [`Snapshot::schema`] is a deterministic, human-readable text rendering of
//!   every user object, read from the system catalogs with one query per
//!   catalog kind. It uses names, never OIDs, and is independent of the
//!   session's `search_path`, the database name and the time, so two databases
//!   built by the same SQL render byte-identically. Compare with `==`; show a
//!   difference with [`schema_diff`] and name it with [`changed_objects`].
//! * [`Snapshot::tables`] holds a [`TableFingerprint`] (row count plus a hash of
//!   the rows) for every ordinary and partitioned table. Hashing is done in SQL,
//!   so rows never cross the wire. [`fingerprint_table`] fingerprints only a
//!   given list of columns, i.e. those that existed before a phase.
//!
//! # Text format
//!
//! The text is a sequence of blocks sorted by header. A header is a line that
//! starts in column 0 and names one top-level object: `schema public`,
//! `extension plpgsql`, `table public.t`, `view public.v`,
//! `materialized view public.mv`, `foreign table public.f`,
//! `sequence public.s`, `function public.f(integer)`, `procedure public.p()`,
//! `aggregate public.a(integer)`, `type public.mood` (enum, composite, range,
//! base) and `domain public.d`. Identifiers are written as `quote_ident` would.
//! The block's detail lines follow, indented by two spaces and sorted; a value
//! that spans several lines (a function or view definition) continues on lines
//! indented by four spaces (blank lines inside it stay blank). Indexes,
//! constraints, triggers, policies, rules and extended statistics are detail
//! lines of the relation (or domain) they belong to. Examples:
//!
//! ```text
//! table public.t
//!   column id position 1
//!   column id: bigint NOT NULL GENERATED ALWAYS AS IDENTITY
//!   column name position 2
//!   column name: text NOT NULL DEFAULT ''::text
//!   constraint t_pkey: PRIMARY KEY (id)
//!   index t_pkey: CREATE UNIQUE INDEX t_pkey ON public.t USING btree (id)
//!   kind: ordinary
//!   persistence: permanent
//! ```
//!
//! A column's ordinal position (among the live columns, so a dropped column
//! leaves no gap) is a line of its own, `column <name> position <n>`, apart
//! from its definition line `column <name>: <definition>`. A difference in
//! column order alone therefore changes only position lines; see
//! [`column_order_only`]. Composite types use `attribute` instead of `column`.
//!
//! Covered: schemas; extensions (version, schema); tables (kind, persistence,
//! partition key and bound, inheritance, options, replica identity, access
//! method, tablespace, row-level security flags); columns (type, collation if
//! not the type's, NOT NULL, default, identity, generated expression,
//! position); constraints (`pg_get_constraintdef`, plus `NOT VALID` when not
//! validated); indexes (`pg_get_indexdef`, `INVALID`, `CLUSTER`, `REPLICA
//! IDENTITY`); sequences (type, start, increment, min, max, cache, cycle,
//! owner; never the current value); views and materialized views
//! (`pg_get_viewdef`); functions and procedures (`pg_get_functiondef`);
//! aggregates (transition function, state type, final function, initial
//! condition); triggers (`pg_get_triggerdef` and enabled state); rules;
//! extended statistics; enum, composite, range and base types; domains (base
//! type, collation, default, NOT NULL, constraints); policies; comments on
//! schemas, relations, columns, indexes, functions and types.
//!
//! Left out on purpose: owners and privileges (they name roles, which differ
//! between environments), operators, casts, collations, text-search objects,
//! event triggers, publications, foreign servers. Objects that belong to an
//! extension, the schemas `pg_catalog`, `information_schema`, `pg_toast`,
//! `pg_temp_*`, `pg_toast_temp_*` and `phasegate_backup`, and the tables named
//! in [`SnapshotOptions::exclude_tables`] (with everything attached to them
//! and the sequences they own) are never rendered.
//!
//! Catalog reads run in one read-only REPEATABLE READ transaction with
//! `search_path = pg_catalog` (so every user name is schema-qualified the same
//! way whatever the caller's path) and fixed output settings (`DateStyle`,
//! `IntervalStyle`, `TimeZone`, `extra_float_digits`, `bytea_output`,
//! `lc_monetary`), so the row text that is hashed does not depend on the
//! session either. Targets PostgreSQL 13 or newer.

use std::collections::{BTreeMap, HashMap, HashSet};

use postgres::{Client, IsolationLevel, SimpleQueryMessage, Transaction};
use sha2::{Digest, Sha256};

/// What [`take`] covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotOptions {
    /// Tables left out of both the schema text and the fingerprints, as
    /// `schema.table` (either plain names or `quote_ident` form). Everything
    /// attached to them (indexes, constraints, triggers, ...) and the
    /// sequences they own are left out too. The schema `phasegate_backup` is
    /// always left out, whatever this says.
    pub exclude_tables: Vec<String>,
    /// Other objects left out, by their block header (e.g. `function
    /// public.phasegate_runs_append_only()`).
    pub exclude_objects: Vec<String>,
    /// Whether to fingerprint table rows (count and hash).
    pub fingerprint_rows: bool,
    /// Also hash each column on its own (in the same scan), so a later
    /// comparison can name the columns whose values changed.
    pub column_hashes: bool,
}

impl Default for SnapshotOptions {
    /// Leaves out the ledgers (refinery's and phasegate's own, the backup
    /// ledger included) and
    /// fingerprints rows.
    fn default() -> Self {
        SnapshotOptions {
            exclude_tables: vec![
                "public.refinery_schema_history".to_string(),
                "public.phasegate_applied".to_string(),
                "public.phasegate_runs".to_string(),
                "public.phasegate_batches".to_string(),
                "public.phasegate_backups".to_string(),
                "public.phasegate_kept".to_string(),
            ],
            exclude_objects: vec!["function public.phasegate_runs_append_only()".to_string()],
            fingerprint_rows: true,
            column_hashes: false,
        }
    }
}

/// The state of a database at one moment: normalised schema text plus a
/// fingerprint of each table's rows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    /// The normalised schema text (see the module documentation).
    pub schema: String,
    /// Row fingerprints keyed by `schema.table` (each part as `quote_ident`
    /// writes it). Empty when fingerprinting was turned off.
    pub tables: BTreeMap<String, TableFingerprint>,
}

/// Row count and hash of one table's rows over some of its columns.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableFingerprint {
    /// Number of rows.
    pub rows: i64,
    /// The columns hashed, in attnum order (plain names, not quoted).
    pub columns: Vec<String>,
    /// Hex SHA-256 over the row count and the two 64-bit-lane sums (see
    /// `fingerprint_sql` in this module).
    pub hash: String,
    /// One order-free hash per column of `columns` (when asked for).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub column_hashes: Vec<String>,
}

/// Session settings that make the catalog deparsers and the row text output
/// independent of the caller's session.
const SESSION_SETTINGS: &str = "SET LOCAL search_path = pg_catalog; \
     SET LOCAL DateStyle = 'ISO, MDY'; \
     SET LOCAL IntervalStyle = 'postgres'; \
     SET LOCAL TimeZone = 'UTC'; \
     SET LOCAL extra_float_digits = 1; \
     SET LOCAL bytea_output = 'hex'; \
     SET LOCAL lc_monetary = 'C'; \
     SET LOCAL xmloption = 'content'";

/// Namespaces covered, for a `pg_namespace` aliased `n`.
const NS_OK: &str =
    "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'phasegate_backup') \
     AND n.nspname !~ '^pg_(toast_)?temp_'";

/// The block header of the relation `c` in namespace `n`.
const REL_HEADER: &str = "(CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view ' \
     WHEN 'f' THEN 'foreign table ' WHEN 'S' THEN 'sequence ' WHEN 'c' THEN 'type ' ELSE 'table ' END \
     || quote_ident(n.nspname) || '.' || quote_ident(c.relname))";

/// `NOT EXISTS` condition: object `oid_expr` of catalog `catalog` is not an
/// extension member.
fn not_extension_member(catalog: &str, oid_expr: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{catalog}'::regclass \
         AND e.objid = {oid_expr} AND e.deptype = 'e')"
    )
}

fn q_schemas() -> String {
    format!(
        "SELECT 'schema ' || quote_ident(n.nspname), \
                array_remove(ARRAY['comment: ' || d.description], NULL) \
         FROM pg_namespace n \
         LEFT JOIN pg_description d ON d.objoid = n.oid AND d.classoid = 'pg_namespace'::regclass AND d.objsubid = 0 \
         WHERE {NS_OK} AND {}",
        not_extension_member("pg_namespace", "n.oid")
    )
}

const Q_EXTENSIONS: &str = "SELECT 'extension ' || quote_ident(x.extname), \
            ARRAY['version ' || x.extversion || ', schema ' || quote_ident(n.nspname)] \
     FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace";

/// Tables, views, materialized views, foreign tables. Also returns the key,
/// the plain key and the relkind (for exclusion and fingerprinting).
fn q_relations() -> String {
    format!(
        "SELECT {REL_HEADER}, array_remove(ARRAY[ \
           CASE c.relkind WHEN 'r' THEN 'kind: ordinary' \
                          WHEN 'p' THEN 'kind: partitioned, ' || pg_get_partkeydef(c.oid) END, \
           CASE WHEN c.relkind IN ('r', 'p', 'm', 'f') THEN 'persistence: ' || \
                CASE c.relpersistence WHEN 'p' THEN 'permanent' WHEN 'u' THEN 'unlogged' ELSE 'temporary' END END, \
           CASE WHEN c.relispartition THEN 'partition of ' || \
                (SELECT quote_ident(pn.nspname) || '.' || quote_ident(pc.relname) \
                   FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent \
                   JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid) \
                || ' ' || pg_get_expr(c.relpartbound, c.oid) END, \
           CASE WHEN NOT c.relispartition THEN \
                (SELECT 'inherits: ' || string_agg(quote_ident(pn.nspname) || '.' || quote_ident(pc.relname), ', ' ORDER BY i.inhseqno) \
                   FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent \
                   JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid) END, \
           CASE WHEN c.relrowsecurity THEN 'row level security: enabled' END, \
           CASE WHEN c.relforcerowsecurity THEN 'row level security: forced' END, \
           CASE WHEN c.reloptions IS NOT NULL THEN \
                (SELECT 'options: ' || string_agg(o, ', ' ORDER BY o) FROM unnest(c.reloptions) o) END, \
           CASE WHEN c.relkind IN ('r', 'p', 'm') AND c.relreplident <> 'd' THEN 'replica identity: ' || \
                CASE c.relreplident WHEN 'n' THEN 'nothing' WHEN 'f' THEN 'full' ELSE 'index' END END, \
           CASE WHEN am.amname IS NOT NULL AND am.amname <> 'heap' THEN 'access method: ' || am.amname END, \
           CASE WHEN c.reltablespace <> 0 THEN \
                (SELECT 'tablespace: ' || quote_ident(spcname) FROM pg_tablespace WHERE oid = c.reltablespace) END, \
           CASE WHEN c.relkind IN ('v', 'm') THEN 'definition:' || E'\\n' || pg_get_viewdef(c.oid, true) END, \
           CASE WHEN c.relkind = 'm' AND NOT c.relispopulated THEN 'not populated' END, \
           CASE WHEN c.relkind = 'f' THEN \
                (SELECT 'server: ' || quote_ident(s.srvname) || coalesce(' options ' || array_to_string(ft.ftoptions, ', '), '') \
                   FROM pg_foreign_table ft JOIN pg_foreign_server s ON s.oid = ft.ftserver WHERE ft.ftrelid = c.oid) END, \
           'comment: ' || d.description], NULL), \
           quote_ident(n.nspname) || '.' || quote_ident(c.relname), \
           n.nspname || '.' || c.relname, \
           c.relkind::text \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_am am ON am.oid = c.relam \
         LEFT JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0 \
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {NS_OK} AND {}",
        not_extension_member("pg_class", "c.oid")
    )
}

/// Sequences, with the key and plain key of the owning table (if any).
fn q_sequences() -> String {
    format!(
        "SELECT {REL_HEADER}, array_remove(ARRAY[ \
           'type: ' || format_type(s.seqtypid, NULL), \
           'start ' || s.seqstart || ', increment ' || s.seqincrement || ', min ' || s.seqmin \
             || ', max ' || s.seqmax || ', cache ' || s.seqcache \
             || CASE WHEN s.seqcycle THEN ', cycle' ELSE ', no cycle' END, \
           CASE WHEN c.relpersistence = 'u' THEN 'persistence: unlogged' END, \
           CASE WHEN oc.oid IS NOT NULL THEN 'owned by ' || quote_ident(onn.nspname) || '.' || quote_ident(oc.relname) \
                || coalesce('.' || quote_ident(oa.attname), '') \
                || CASE WHEN dep.deptype = 'i' THEN ' (identity)' ELSE '' END END, \
           'comment: ' || d.description], NULL), \
           quote_ident(n.nspname) || '.' || quote_ident(c.relname), \
           n.nspname || '.' || c.relname, \
           quote_ident(onn.nspname) || '.' || quote_ident(oc.relname), \
           onn.nspname || '.' || oc.relname \
         FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_depend dep ON dep.classid = 'pg_class'::regclass AND dep.objid = c.oid \
              AND dep.refclassid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i') \
         LEFT JOIN pg_class oc ON oc.oid = dep.refobjid \
         LEFT JOIN pg_namespace onn ON onn.oid = oc.relnamespace \
         LEFT JOIN pg_attribute oa ON oa.attrelid = dep.refobjid AND oa.attnum = dep.refobjsubid AND dep.refobjsubid > 0 \
         LEFT JOIN pg_description d ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0 \
         WHERE {NS_OK} AND {}",
        not_extension_member("pg_class", "c.oid")
    )
}

/// Columns of relations and attributes of composite types, in attnum order.
/// Returns header, quoted name, plain name, definition, position, comment.
fn q_columns() -> String {
    format!(
        "SELECT {REL_HEADER}, quote_ident(a.attname), a.attname::text, \
           format_type(a.atttypid, a.atttypmod) \
           || CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation \
                   THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE '' END \
           || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END \
           || CASE WHEN a.attgenerated = 's' THEN ' GENERATED ALWAYS AS (' || pg_get_expr(ad.adbin, ad.adrelid) || ') STORED' \
                   WHEN a.attgenerated = 'v' THEN ' GENERATED ALWAYS AS (' || pg_get_expr(ad.adbin, ad.adrelid) || ') VIRTUAL' \
                   WHEN ad.adbin IS NOT NULL THEN ' DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid) ELSE '' END \
           || CASE a.attidentity WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY' \
                                 WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY' ELSE '' END, \
           row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum), \
           d.description \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum \
         LEFT JOIN pg_description d ON d.objoid = a.attrelid AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum \
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c') AND a.attnum > 0 AND NOT a.attisdropped AND {NS_OK} \
         ORDER BY a.attrelid, a.attnum"
    )
}

/// Table and domain constraints.
fn q_constraints() -> String {
    let line = "'constraint ' || quote_ident(k.conname) || ': ' || pg_get_constraintdef(k.oid) \
                || CASE WHEN NOT k.convalidated AND pg_get_constraintdef(k.oid) !~ 'NOT VALID$' \
                        THEN ' NOT VALID' ELSE '' END";
    format!(
        "SELECT {REL_HEADER}, {line} \
         FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {NS_OK} \
         UNION ALL \
         SELECT 'domain ' || quote_ident(n.nspname) || '.' || quote_ident(t.typname), {line} \
         FROM pg_constraint k JOIN pg_type t ON t.oid = k.contypid \
         JOIN pg_namespace n ON n.oid = t.typnamespace WHERE {NS_OK}"
    )
}

fn q_indexes() -> String {
    format!(
        "SELECT {REL_HEADER}, array_remove(ARRAY[ \
           'index ' || quote_ident(ic.relname) || ': ' || pg_get_indexdef(i.indexrelid) \
             || CASE WHEN NOT i.indisvalid THEN ' INVALID' ELSE '' END \
             || CASE WHEN i.indisclustered THEN ' CLUSTER' ELSE '' END \
             || CASE WHEN i.indisreplident THEN ' REPLICA IDENTITY' ELSE '' END, \
           'index ' || quote_ident(ic.relname) || ' comment: ' || d.description], NULL) \
         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
         JOIN pg_class c ON c.oid = i.indrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_description d ON d.objoid = ic.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0 \
         WHERE {NS_OK}"
    )
}

fn q_triggers() -> String {
    format!(
        "SELECT {REL_HEADER}, 'trigger ' || quote_ident(g.tgname) || ': ' || pg_get_triggerdef(g.oid) \
           || CASE g.tgenabled WHEN 'O' THEN ' (enabled)' WHEN 'D' THEN ' (disabled)' \
                               WHEN 'R' THEN ' (enabled replica)' WHEN 'A' THEN ' (enabled always)' END \
         FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE NOT g.tgisinternal AND {NS_OK}"
    )
}

fn q_policies() -> String {
    format!(
        "SELECT {REL_HEADER}, 'policy ' || quote_ident(p.polname) || ': ' \
           || CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END \
           || ' FOR ' || CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' \
                                      WHEN 'd' THEN 'DELETE' ELSE 'ALL' END \
           || ' TO ' || (SELECT string_agg(r, ', ' ORDER BY r) FROM \
                (SELECT CASE WHEN ro = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(ro)) END AS r \
                   FROM unnest(p.polroles) ro) s) \
           || coalesce(' USING (' || pg_get_expr(p.polqual, p.polrelid) || ')', '') \
           || coalesce(' WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')', '') \
         FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {NS_OK}"
    )
}

fn q_rules() -> String {
    format!(
        "SELECT {REL_HEADER}, 'rule ' || quote_ident(r.rulename) || ': ' || pg_get_ruledef(r.oid) \
           || CASE r.ev_enabled WHEN 'O' THEN '' WHEN 'D' THEN ' (disabled)' \
                                WHEN 'R' THEN ' (enabled replica)' WHEN 'A' THEN ' (enabled always)' ELSE '' END \
         FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE r.rulename <> '_RETURN' AND {NS_OK}"
    )
}

fn q_statistics() -> String {
    format!(
        "SELECT {REL_HEADER}, 'statistics ' || quote_ident(sn.nspname) || '.' || quote_ident(x.stxname) \
           || ': ' || pg_get_statisticsobjdef(x.oid) \
         FROM pg_statistic_ext x JOIN pg_class c ON c.oid = x.stxrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_namespace sn ON sn.oid = x.stxnamespace WHERE {NS_OK}"
    )
}

fn q_functions() -> String {
    format!(
        "SELECT CASE p.prokind WHEN 'p' THEN 'procedure ' WHEN 'a' THEN 'aggregate ' ELSE 'function ' END \
           || quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || oidvectortypes(p.proargtypes) || ')', \
           array_remove(ARRAY[ \
             CASE WHEN p.prokind = 'a' THEN \
               (SELECT 'aggregate: kind ' || g.aggkind::text || ', sfunc ' || g.aggtransfn::regproc::text \
                  || ', stype ' || format_type(g.aggtranstype, NULL) \
                  || CASE WHEN g.aggfinalfn <> 0 THEN ', finalfunc ' || g.aggfinalfn::regproc::text ELSE '' END \
                  || CASE WHEN g.aggcombinefn <> 0 THEN ', combinefunc ' || g.aggcombinefn::regproc::text ELSE '' END \
                  || coalesce(', initcond ' || quote_literal(g.agginitval), '') \
                  || ', arguments (' || pg_get_function_arguments(p.oid) || ')' \
                FROM pg_aggregate g WHERE g.aggfnoid = p.oid) \
             ELSE 'definition:' || E'\\n' || pg_get_functiondef(p.oid) END, \
             'comment: ' || d.description], NULL) \
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         LEFT JOIN pg_description d ON d.objoid = p.oid AND d.classoid = 'pg_proc'::regclass AND d.objsubid = 0 \
         WHERE {NS_OK} AND {} \
           AND NOT EXISTS (SELECT 1 FROM pg_depend i WHERE i.classid = 'pg_proc'::regclass \
                           AND i.objid = p.oid AND i.deptype = 'i')",
        not_extension_member("pg_proc", "p.oid")
    )
}

/// Enum, composite, range and base types and domains (not the row types of
/// tables, not automatic array and multirange types).
fn q_types() -> String {
    format!(
        "SELECT CASE WHEN t.typtype = 'd' THEN 'domain ' ELSE 'type ' END \
           || quote_ident(n.nspname) || '.' || quote_ident(t.typname), \
           array_remove(ARRAY[ \
             CASE t.typtype WHEN 'e' THEN 'kind: enum' WHEN 'c' THEN 'kind: composite' \
                            WHEN 'r' THEN 'kind: range' WHEN 'b' THEN 'kind: base' END, \
             CASE WHEN t.typtype = 'e' THEN \
               (SELECT 'labels: ' || coalesce(string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder), '') \
                  FROM pg_enum e WHERE e.enumtypid = t.oid) END, \
             CASE WHEN t.typtype = 'd' THEN 'base type: ' || format_type(t.typbasetype, t.typtypmod) \
               || CASE WHEN t.typcollation <> 0 AND t.typcollation <> bt.typcollation \
                       THEN ' COLLATE ' || t.typcollation::regcollation::text ELSE '' END END, \
             CASE WHEN t.typtype = 'd' AND t.typnotnull THEN 'not null' END, \
             'default: ' || pg_get_expr(t.typdefaultbin, 0), \
             CASE WHEN t.typtype = 'r' THEN \
               (SELECT 'subtype: ' || format_type(r.rngsubtype, NULL) \
                  || CASE WHEN r.rngcollation <> 0 THEN ', collation ' || r.rngcollation::regcollation::text ELSE '' END \
                  || ', opclass ' || quote_ident(oc.opcname) \
                  || CASE WHEN r.rngcanonical <> 0 THEN ', canonical ' || r.rngcanonical::regproc::text ELSE '' END \
                  || CASE WHEN r.rngsubdiff <> 0 THEN ', subdiff ' || r.rngsubdiff::regproc::text ELSE '' END \
                FROM pg_range r JOIN pg_opclass oc ON oc.oid = r.rngsubopc WHERE r.rngtypid = t.oid) END, \
             CASE WHEN t.typtype = 'b' THEN 'input ' || t.typinput::regproc::text || ', output ' \
               || t.typoutput::regproc::text || ', length ' || t.typlen || ', alignment ' || t.typalign::text END, \
             'comment: ' || d.description], NULL) \
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
         LEFT JOIN pg_type bt ON bt.oid = t.typbasetype \
         LEFT JOIN pg_class rc ON rc.oid = t.typrelid \
         LEFT JOIN pg_description d ON d.objoid = t.oid AND d.classoid = 'pg_type'::regclass AND d.objsubid = 0 \
         WHERE t.typtype IN ('e', 'c', 'r', 'b', 'd') \
           AND (t.typrelid = 0 OR rc.relkind = 'c') \
           AND NOT EXISTS (SELECT 1 FROM pg_type el WHERE el.typarray = t.oid) \
           AND {NS_OK} AND {}",
        not_extension_member("pg_type", "t.oid")
    )
}

/// Quote an identifier for SQL text (always quoted, so any name is safe).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The fingerprint query for one relation (`rel_sql` is already a valid,
/// quoted SQL name). It returns, as text: row count, and two sums.
///
/// Each row is turned into text with `ROW(c1, c2, ...)::text` (the record
/// output format, which quotes values and distinguishes NULL from the empty
/// string), hashed with md5, and the 128-bit digest split into two 64-bit
/// lanes, each read as a signed bigint (`('x' || hex)::bit(64)::bigint`).
/// The lanes are summed with `sum(bigint)`, which yields an exact `numeric`
/// and so never overflows or wraps. The result is a multiset hash: it does not
/// depend on row order (no ORDER BY, no sort, constant memory however large
/// the table: rows are streamed through the aggregate and never cross the
/// wire), duplicate rows count with their multiplicity (unlike XOR), and a
/// change to any value of any row changes both lane sums except with
/// probability about 2^-128 for non-adversarial data. Together with the row
/// count this identifies the multiset of rows, which is what "every
/// pre-existing row identical" means for a table. A table with no rows gives
/// count 0 and sums 0; a column list that is empty hashes `ROW()`.
///
/// Ordinary tables are read with `ONLY` (rows of inheritance children are
/// fingerprinted with the children); partitioned tables are read as a whole,
/// i.e. over all their partitions.
fn fingerprint_sql(rel_sql: &str, relkind: &str, columns: &[String], per_column: bool) -> String {
    let row = columns
        .iter()
        .map(|c| format!("r.{}", quote_ident(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let only = if relkind == "p" { "" } else { "ONLY " };
    // Per column: the same order-free sum, over md5 of the value's text (a
    // marker for NULL), computed in the same scan.
    let cols: String = if per_column {
        columns
            .iter()
            .map(|c| {
                format!(
                    ", coalesce(sum(('x' || substr(md5(coalesce(fp.{}::text, E'\\x01null')), 1, 15))::bit(60)::bigint), 0)::text",
                    quote_ident(c)
                )
            })
            .collect()
    } else {
        String::new()
    };
    let all = if per_column { ", r.*" } else { "" };
    format!(
        "SELECT count(*)::text, \
                coalesce(sum(('x' || substr(phasegate_h, 1, 16))::bit(64)::bigint), 0)::text, \
                coalesce(sum(('x' || substr(phasegate_h, 17, 16))::bit(64)::bigint), 0)::text{cols} \
         FROM (SELECT md5(ROW({row})::text) AS phasegate_h{all} FROM {only}{rel_sql} r) fp"
    )
}

/// One table's fingerprint sums: (count, lane 1, lane 2, per-column sums).
type Sums = (i64, String, String, Vec<String>);

/// Run many fingerprint statements in as few round trips as possible; returns
/// the sums of each statement, in order.
fn run_fingerprints(tx: &mut Transaction<'_>, statements: &[String]) -> Result<Vec<Sums>, postgres::Error> {
    let mut out = Vec::with_capacity(statements.len());
    for chunk in statements.chunks(100) {
        let sql = chunk.join(";\n");
        for msg in tx.simple_query(&sql)? {
            if let SimpleQueryMessage::Row(row) = msg {
                let count = row.get(0).unwrap_or("0").parse::<i64>().unwrap_or(-1);
                let s1 = row.get(1).unwrap_or("0").to_string();
                let s2 = row.get(2).unwrap_or("0").to_string();
                let cols = (3..row.len()).map(|i| row.get(i).unwrap_or("0").to_string()).collect();
                out.push((count, s1, s2, cols));
            }
        }
    }
    Ok(out)
}

fn fingerprint_from(columns: Vec<String>, (rows, s1, s2, column_hashes): Sums) -> TableFingerprint {
    let mut h = Sha256::new();
    h.update(format!("rows {rows}\nlane1 {s1}\nlane2 {s2}\n").as_bytes());
    let hash = h
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    TableFingerprint {
        column_hashes,
        rows,
        columns,
        hash,
    }
}

fn start(client: &mut Client) -> Result<Transaction<'_>, postgres::Error> {
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    tx.batch_execute(SESSION_SETTINGS)?;
    Ok(tx)
}

/// Take a snapshot of the database `client` is connected to: the normalised
/// schema text and (if `opts.fingerprint_rows`) a fingerprint of every
/// ordinary and partitioned table not excluded. All reads happen in one
/// read-only REPEATABLE READ transaction.
pub fn take(client: &mut Client, opts: &SnapshotOptions) -> Result<Snapshot, postgres::Error> {
    let excluded: HashSet<&str> = opts.exclude_tables.iter().map(String::as_str).collect();
    let is_excluded = |key: &str, raw: &str| excluded.contains(key) || excluded.contains(raw);

    let mut tx = start(client)?;
    // header -> detail entries (each possibly multi-line)
    let mut blocks: BTreeMap<String, Vec<String>> = BTreeMap::new();

    // Primary queries: they create blocks. Each row: header, lines.
    for sql in [
        q_schemas(),
        Q_EXTENSIONS.to_string(),
        q_functions(),
        q_types(),
    ] {
        for row in tx.query_typed(sql.as_str(), &[])? {
            let header: String = row.get(0);
            let lines: Vec<String> = row.get(1);
            blocks.entry(header).or_default().extend(lines);
        }
    }

    // Relations: (header, lines, key, raw key, relkind).
    let mut tables: Vec<(String, String)> = Vec::new(); // (key, relkind) to fingerprint
    for row in tx.query_typed(q_relations().as_str(), &[])? {
        let key: String = row.get(2);
        let raw: String = row.get(3);
        if is_excluded(&key, &raw) {
            continue;
        }
        let header: String = row.get(0);
        let lines: Vec<String> = row.get(1);
        let relkind: String = row.get(4);
        if relkind == "r" || relkind == "p" {
            tables.push((key, relkind));
        }
        blocks.entry(header).or_default().extend(lines);
    }

    // Sequences: skipped when excluded themselves or owned by an excluded table.
    for row in tx.query_typed(q_sequences().as_str(), &[])? {
        let key: String = row.get(2);
        let raw: String = row.get(3);
        let owner_key: Option<String> = row.get(4);
        let owner_raw: Option<String> = row.get(5);
        if is_excluded(&key, &raw) {
            continue;
        }
        let owner_excluded = match (&owner_key, &owner_raw) {
            (Some(ok), Some(or)) => is_excluded(ok, or),
            _ => false,
        };
        if owner_excluded {
            continue;
        }
        let header: String = row.get(0);
        let lines: Vec<String> = row.get(1);
        blocks.entry(header).or_default().extend(lines);
    }

    // Columns: attach to existing blocks; remember the column lists.
    let mut columns_of: HashMap<String, Vec<String>> = HashMap::new();
    for row in tx.query_typed(q_columns().as_str(), &[])? {
        let header: String = row.get(0);
        let Some(block) = blocks.get_mut(&header) else {
            continue;
        };
        let quoted: String = row.get(1);
        let raw: String = row.get(2);
        let def: String = row.get(3);
        let pos: i64 = row.get(4);
        let comment: Option<String> = row.get(5);
        let word = if header.starts_with("type ") {
            "attribute"
        } else {
            "column"
        };
        block.push(format!("{word} {quoted}: {def}"));
        block.push(format!("{word} {quoted} position {pos}"));
        if let Some(c) = comment {
            block.push(format!("{word} {quoted} comment: {c}"));
        }
        if let Some(key) = header.strip_prefix("table ") {
            columns_of.entry(key.to_string()).or_default().push(raw);
        }
    }

    // Secondary queries with a single line per row.
    // One round trip for all of them (lines are sorted when rendered).
    let secondary = [q_constraints(), q_triggers(), q_policies(), q_rules(), q_statistics()]
        .iter()
        .enumerate()
        .map(|(i, q)| format!("SELECT * FROM ({q}) q{i}"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    for row in tx.query_typed(secondary.as_str(), &[])? {
        let header: String = row.get(0);
        if let Some(block) = blocks.get_mut(&header) {
            block.push(row.get(1));
        }
    }
    // Indexes: several lines per row.
    for row in tx.query_typed(q_indexes().as_str(), &[])? {
        let header: String = row.get(0);
        if let Some(block) = blocks.get_mut(&header) {
            let lines: Vec<String> = row.get(1);
            block.extend(lines);
        }
    }

    blocks.retain(|header, _| !opts.exclude_objects.iter().any(|o| o == header));
    let schema = render(&blocks);

    let mut fingerprints = BTreeMap::new();
    if opts.fingerprint_rows {
        let cols: Vec<Vec<String>> = tables
            .iter()
            .map(|(key, _)| columns_of.remove(key).unwrap_or_default())
            .collect();
        let statements: Vec<String> = tables
            .iter()
            .zip(&cols)
            .map(|((key, relkind), c)| fingerprint_sql(key, relkind, c, opts.column_hashes))
            .collect();
        let results = run_fingerprints(&mut tx, &statements)?;
        for (((key, _), c), sums) in tables.into_iter().zip(cols).zip(results) {
            fingerprints.insert(key, fingerprint_from(c, sums));
        }
    }
    tx.commit()?;
    Ok(Snapshot {
        schema,
        tables: fingerprints,
    })
}

/// Render blocks: headers sorted, entries sorted and indented, multi-line
/// entries continued with a four-space indent, trailing whitespace removed.
fn render(blocks: &BTreeMap<String, Vec<String>>) -> String {
    let mut out = String::new();
    for (header, entries) in blocks {
        out.push_str(&header.replace('\n', "\\n"));
        out.push('\n');
        let mut rendered: Vec<String> = entries
            .iter()
            .map(|entry| {
                let mut text = String::new();
                for (i, part) in entry.trim_end().split('\n').enumerate() {
                    let part = part.trim_end();
                    if i == 0 {
                        text.push_str("  ");
                        text.push_str(part);
                    } else {
                        text.push('\n');
                        if !part.is_empty() {
                            text.push_str("    ");
                            text.push_str(part);
                        }
                    }
                }
                text
            })
            .collect();
        rendered.sort();
        for r in rendered {
            out.push_str(&r);
            out.push('\n');
        }
    }
    out
}

/// Fingerprint only the given columns of a table (those that existed before a
/// phase): row count and an order-independent multiset hash over those
/// columns (see `fingerprint_sql` in this module; because the hash is a sum over rows it
/// needs no ORDER BY, primary key or sort). `table` is `schema.table` as in
/// [`Snapshot::tables`] (any form `::regclass` accepts); `columns` are plain
/// column names. The result equals the one [`take`] gives for the table when
/// `columns` lists all its columns in attnum order.
pub fn fingerprint_table(
    client: &mut Client,
    table: &str,
    columns: &[String],
) -> Result<TableFingerprint, postgres::Error> {
    let mut tx = start(client)?;
    let row = tx.query_one(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relkind::text \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.oid = $1::text::regclass",
        &[&table],
    )?;
    let rel_sql: String = row.get(0);
    let relkind: String = row.get(1);
    let sql = fingerprint_sql(&rel_sql, &relkind, columns, true);
    let mut res = run_fingerprints(&mut tx, &[sql])?;
    tx.commit()?;
    let sums = res.pop().unwrap_or((0, "0".into(), "0".into(), Vec::new()));
    Ok(fingerprint_from(columns.to_vec(), sums))
}

/// A unified diff of two schema texts (`similar::TextDiff`, 3 lines of
/// context, headers `before_label`/`after_label`); empty string when equal.
pub fn schema_diff(before: &str, after: &str, before_label: &str, after_label: &str) -> String {
    if before == after {
        return String::new();
    }
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(before_label, after_label)
        .to_string()
}

/// Split a schema text into blocks: header -> the block's detail text.
fn blocks_of(text: &str) -> BTreeMap<&str, String> {
    let mut blocks: BTreeMap<&str, String> = BTreeMap::new();
    let mut current: Option<&str> = None;
    for line in text.lines() {
        if !line.is_empty() && !line.starts_with(char::is_whitespace) {
            current = Some(line);
            blocks.entry(line).or_default();
        } else if let Some(h) = current {
            let b = blocks.entry(h).or_default();
            b.push_str(line);
            b.push('\n');
        }
    }
    blocks
}

/// Names of the top-level objects whose lines differ (the block headers, e.g.
/// `table public.reservations`, `function public.f(integer)`), sorted; an
/// object present on one side only is named too.
pub fn changed_objects(before: &str, after: &str) -> Vec<String> {
    let b = blocks_of(before);
    let a = blocks_of(after);
    let mut names: Vec<String> = b
        .keys()
        .chain(a.keys())
        .filter(|k| b.get(*k) != a.get(*k))
        .map(|k| k.to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// True when the two texts differ and every differing line is a column (or
/// composite attribute) position line, `  column <name> position <n>`: the
/// objects are the same except for the order of their columns.
pub fn column_order_only(before: &str, after: &str) -> bool {
    if before == after {
        return false;
    }
    let is_position = |line: &str| {
        let Some(rest) = line
            .strip_prefix("  column ")
            .or_else(|| line.strip_prefix("  attribute "))
        else {
            return false;
        };
        match rest.rsplit_once(" position ") {
            Some((name, n)) => {
                !name.is_empty() && !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit())
            }
            None => false,
        }
    };
    let diff = similar::TextDiff::from_lines(before, after);
    diff.iter_all_changes()
        .filter(|c| c.tag() != similar::ChangeTag::Equal)
        .all(|c| is_position(c.value().trim_end_matches('\n')))
}

/// [`take`] for callers outside the engine: a database error becomes an
/// [`crate::Error`].
pub fn take_snapshot(client: &mut Client, opts: &SnapshotOptions) -> crate::Result<Snapshot> {
    take(client, opts).map_err(crate::error::db_err("taking a snapshot"))
}
