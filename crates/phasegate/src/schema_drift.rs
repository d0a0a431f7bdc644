//! Schema drift (`status --schema`, docs/commands.md): the live database's
//! schema against the set's files applied to a disposable database up to
//! the same versions. An index created by hand, a column dropped outside a
//! migration, a function edited in place: each object whose normalised
//! definition differs is listed with both definitions and their diff.
//!
//! The expected side runs the set's forward files as they are now (a file
//! changed since it was applied is the ledger's drift, reported beside this),
//! every step the live ledger lists as applied and no other, in the set's
//! order, without the seed (rows are not compared). The ledger's own tables
//! and the backup schema are left out on both sides.

use std::collections::{BTreeMap, BTreeSet};

use postgres::Client;
use serde::Serialize;

use crate::error::Result;
use crate::pg::Server;
use crate::set::MigrationSet;
use crate::snapshot::{schema_blocks, schema_diff, SnapshotOptions};

/// How one object differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectChange {
    /// In the live database only (e.g. an index created by hand).
    Unexpected,
    /// In the files only (e.g. a table dropped outside a migration).
    Missing,
    /// In both, defined differently (e.g. a column dropped or added).
    Differs,
}

impl ObjectChange {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectChange::Unexpected => "only in the database",
            ObjectChange::Missing => "missing from the database",
            ObjectChange::Differs => "differs",
        }
    }
}

/// One object whose definition differs.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectDrift {
    /// The object, as the snapshot names it (`table public.accounts`).
    pub object: String,
    pub change: ObjectChange,
    /// Its definition from the files (empty when missing there).
    pub expected: String,
    /// Its definition in the live database (empty when missing there).
    pub live: String,
    /// A unified diff, expected to live.
    pub diff: String,
}

/// What `status --schema` found.
#[derive(Debug, Clone, Serialize)]
pub struct SchemaDrift {
    /// The versions applied on both sides (the live ledger's, with a file).
    pub compared_versions: Vec<i32>,
    /// Versions the live ledger lists without a file in the set: not
    /// rehearsed, so whatever they created shows as unexpected.
    pub without_file: Vec<i32>,
    /// Every object that differs, by name.
    pub objects: Vec<ObjectDrift>,
}

/// Compares the schema `live` is connected to with the set applied to a new
/// database on `server` up to the versions `live`'s ledger lists (the
/// database is dropped afterwards, also on an error).
pub fn schema_drift(live: &mut Client, set: &MigrationSet, server: &Server) -> Result<SchemaDrift> {
    let applied = crate::ledger::applied(live)?;
    let mut expected_set = set.clone();
    for p in &mut expected_set.phases {
        p.steps.retain(|s| applied.contains_key(&s.version));
    }
    expected_set.phases.retain(|p| !p.steps.is_empty());
    expected_set.seed = None;
    let compared: BTreeSet<i32> = expected_set.steps().map(|s| s.version).collect();
    let without_file: Vec<i32> = applied.keys().copied().filter(|v| !compared.contains(v)).collect();

    let name = format!("phasegate_schema_{}_{}", std::process::id(), &crate::ledger::new_run_id()[..8]);
    let url = server.create_database(&name, None)?;
    let expected = (|| {
        let mut client = crate::db::connect(&url, "phasegate status --schema")?;
        if !expected_set.phases.is_empty() {
            crate::apply::migrate_to(&mut client, &expected_set, None, None)?;
        }
        let blocks = blocks_of(&mut client);
        crate::db::end_session(client);
        blocks
    })();
    let dropped = server.drop_database(&name);
    let expected = expected?;
    dropped?;
    let live_blocks = blocks_of(live)?;
    Ok(SchemaDrift { compared_versions: compared.into_iter().collect(), without_file, objects: compare(&expected, &live_blocks) })
}

/// The schema's blocks by header, the ledger's tables left out, and
/// without privileges: the two sides run as different roles, and grants
/// to an environment's own roles (a read-only role for reporting, made by
/// hand) are not the set's business.
fn blocks_of(client: &mut Client) -> Result<BTreeMap<String, String>> {
    let mut opts = SnapshotOptions { fingerprint_rows: false, ..Default::default() };
    let t = crate::ledger::tables(client)?;
    opts.exclude_tables.extend([t.history, t.applied, t.runs, t.batches, t.backups, t.kept]);
    client.batch_execute("SET phasegate.snapshot_privileges = off").map_err(crate::error::db_err("reading the schema"))?;
    let blocks = schema_blocks(client, &opts);
    // The snapshot's own error first: a failed RESET after it (an aborted
    // transaction, a lost connection) would only hide it.
    let reset = client.batch_execute("RESET phasegate.snapshot_privileges").map_err(crate::error::db_err("reading the schema"));
    let blocks = blocks?;
    reset?;
    Ok(blocks)
}

/// Every header whose block differs between `expected` and `live`.
fn compare(expected: &BTreeMap<String, String>, live: &BTreeMap<String, String>) -> Vec<ObjectDrift> {
    let headers: BTreeSet<&String> = expected.keys().chain(live.keys()).collect();
    headers
        .into_iter()
        .filter_map(|h| {
            let (e, l) = (expected.get(h), live.get(h));
            let change = match (e, l) {
                (Some(e), Some(l)) if e == l => return None,
                (Some(_), Some(_)) => ObjectChange::Differs,
                (Some(_), None) => ObjectChange::Missing,
                (None, _) => ObjectChange::Unexpected,
            };
            let (e, l) = (e.cloned().unwrap_or_default(), l.cloned().unwrap_or_default());
            let diff = schema_diff(&e, &l, "files", "database");
            Some(ObjectDrift { object: h.trim().to_string(), change, expected: e, live: l, diff })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_names_what_is_only_on_one_side_and_what_differs() {
        let m = |xs: &[(&str, &str)]| xs.iter().map(|(h, b)| (h.to_string(), b.to_string())).collect::<BTreeMap<_, _>>();
        let expected = m(&[("table public.a", "table public.a\n  id integer\n  x text\n"), ("table public.gone", "table public.gone\n"), ("view public.same", "view public.same\n")]);
        let live = m(&[("table public.a", "table public.a\n  id integer\n"), ("index public.by_hand", "index public.by_hand\n"), ("view public.same", "view public.same\n")]);
        let found: Vec<(String, ObjectChange)> = compare(&expected, &live).into_iter().map(|o| (o.object, o.change)).collect();
        assert_eq!(
            found,
            vec![
                ("index public.by_hand".to_string(), ObjectChange::Unexpected),
                ("table public.a".to_string(), ObjectChange::Differs),
                ("table public.gone".to_string(), ObjectChange::Missing),
            ]
        );
        let a = compare(&expected, &live).into_iter().find(|o| o.object == "table public.a").unwrap();
        assert!(a.diff.contains("-  x text"), "{}", a.diff);
    }
}
