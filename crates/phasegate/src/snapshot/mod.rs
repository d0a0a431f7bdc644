//! Normalised schema snapshots and row fingerprints, for `phasegate verify`.
//!
//! `verify` (docs/verify.md) takes a snapshot before each phase, migrates,
//! rolls back and snapshots again, and requires the two to be identical:
//! the same schema text, and every pre-existing table holding the same rows.
//! This module produces that snapshot:
//!
//! * [`Snapshot::schema`] is a deterministic, human-readable text rendering of
//!   every user object, read from the system catalogs in one statement
//!   (`catalog`). It uses names, never OIDs, and is independent of the
//!   session's `search_path`, the database name and the time, so two databases
//!   built by the same SQL render byte-identically. Compare with `==`; show a
//!   difference with [`schema_diff`].
//! * [`Snapshot::tables`] holds a [`TableFingerprint`] (row count plus a hash of
//!   the rows) for every ordinary and partitioned table. Hashing is done in SQL,
//!   so rows never cross the wire (`fingerprint`).
//!
//! A rehearsal does not take whole snapshots: `state` keeps the last one and
//! re-reads only the objects whose catalog rows changed since (and those
//! depending on them), and re-hashes only the tables whose rows changed.
//! `diff` compares schema texts.
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
//! schemas, relations, columns, indexes, functions and types; privileges
//! (`GRANT`) on schemas, relations, sequences, columns, functions and types,
//! as a `privileges: grantee PRIVILEGE, ...; ...` line (`column <name>
//! privileges: ...` for a column) when they differ from the object's default
//! (`acldefault`), grantees sorted, the owner written `owner` and grantors
//! left out, so a GRANT that a REVOKE undid reads as no grant at all. A
//! session with `phasegate.snapshot_privileges = off` renders none (schema
//! drift does so: the environment it compares with has other roles).
//!
//! Left out on purpose: owners (they name roles, which differ between
//! environments), default privileges (`ALTER DEFAULT PRIVILEGES`), operators, casts, collations, text-search objects,
//! event triggers, publications, foreign servers. Objects that belong to an
//! extension, the schemas `pg_catalog`, `information_schema`, `pg_toast`,
//! `pg_temp_*`, `pg_toast_temp_*` and `phasegate_backup`, and the tables named
//! in [`SnapshotOptions::exclude_tables`] (with everything attached to them
//! and the sequences they own) are never rendered.
//!
//! [`take_snapshot`] reads in one read-only REPEATABLE READ transaction with
//! `search_path = pg_catalog` (so every user name is schema-qualified the same
//! way whatever the caller's path) and fixed output settings (`DateStyle`,
//! `IntervalStyle`, `TimeZone`, `extra_float_digits`, `bytea_output`,
//! `lc_monetary`), so the row text that is hashed does not depend on the
//! session either. Targets PostgreSQL 13 or newer.

mod catalog;
mod diff;
mod fingerprint;
mod render;
mod scope;
mod state;
mod touch;

use std::collections::BTreeMap;

use postgres::{Client, IsolationLevel};
use sha2::{Digest, Sha256};

pub(crate) use diff::diff_blocks;
pub use diff::{column_order_only, schema_diff};
pub(crate) use state::{observe, rows_over, Observer, Scope, State, TableState};
pub(crate) use touch::install as install_change_log;
#[cfg(test)]
pub(crate) use {
    fingerprint::{data_sig, data_sigs_sql, fingerprint_sql, hashed, Request},
    state::whole,
};

/// What [`take_snapshot`] covers.
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
    /// ledger included) and fingerprints rows.
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
            exclude_objects: vec![format!("function public.{}()", crate::db::APPEND_ONLY)],
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
    /// Hex SHA-256 over the row count and the row lane (see `fingerprint`).
    pub hash: String,
    /// One order-free hash per column of `columns` (when asked for).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub column_hashes: Vec<String>,
}

impl TableFingerprint {
    pub(crate) fn new(rows: i64, columns: Vec<String>, lane: &str, column_hashes: Vec<String>) -> TableFingerprint {
        let hash = Sha256::digest(format!("rows {rows}\nlane {lane}\n").as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        TableFingerprint { rows, columns, hash, column_hashes }
    }
}

/// Session settings that make the catalog deparsers and the row text output
/// independent of the caller's session (and plan prepared statements once).
pub(crate) const SESSION_SETTINGS: &str = "SET LOCAL search_path = pg_catalog; \
     SET LOCAL DateStyle = 'ISO, MDY'; \
     SET LOCAL IntervalStyle = 'postgres'; \
     SET LOCAL TimeZone = 'UTC'; \
     SET LOCAL extra_float_digits = 1; \
     SET LOCAL bytea_output = 'hex'; \
     SET LOCAL lc_monetary = 'C'; \
     SET LOCAL xmloption = 'content'; \
     SET LOCAL plan_cache_mode = force_generic_plan";

/// The schema of the database `client` is connected to as blocks by
/// header (one object each, as the snapshot text writes them), read in one
/// read-only REPEATABLE READ transaction of its own; rows are not read.
pub(crate) fn schema_blocks(client: &mut Client, opts: &SnapshotOptions) -> crate::Result<BTreeMap<String, String>> {
    let opts = SnapshotOptions { fingerprint_rows: false, ..opts.clone() };
    Ok(observe(client, &mut Observer::default(), &State::default(), Scope::Committed, &opts, None)?.blocks())
}

/// Take a snapshot of the database `client` is connected to: the normalised
/// schema text and (if `opts.fingerprint_rows`) a fingerprint of every
/// ordinary and partitioned table not excluded. All reads happen in one
/// read-only REPEATABLE READ transaction.
pub fn take_snapshot(client: &mut Client, opts: &SnapshotOptions) -> crate::Result<Snapshot> {
    let start = crate::error::db_err("taking a snapshot");
    let mut tx = client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start().map_err(start)?;
    let snap = state::whole(&mut tx, opts)?;
    tx.commit().map_err(crate::error::db_err("taking a snapshot"))?;
    Ok(snap)
}

/// A block of the schema text: the header, then the entries sorted and
/// indented, multi-line entries continued with a four-space indent,
/// trailing whitespace removed.
pub(crate) fn render_block(header: &str, entries: &[String]) -> String {
    let mut out = header.replace('\n', "\\n");
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
    out
}
