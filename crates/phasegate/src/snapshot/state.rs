//! Snapshots taken incrementally, for rehearsals. A [`State`] holds every
//! root's rendered block with the signature of its catalog rows, and every
//! table's data signature and fingerprint. [`observe`] derives the state of
//! the database now from an earlier state of the same database (or of the
//! database it was cloned from): it re-renders only the roots whose
//! signature changed (and those depending on them), scans the data
//! signature only of tables whose rows may have changed, and hashes only
//! the tables whose rows did change. A whole snapshot ([`whole`]) is an
//! observation from the empty state.

use std::collections::{BTreeMap, HashMap, HashSet};

use postgres::{GenericClient, Statement};

use super::catalog::{self, Kind, Root, Selection, Signature};
use super::fingerprint::{self, DataSig, Hashed, Request};
use super::{render_block, Snapshot, SnapshotOptions, TableFingerprint, SESSION_SETTINGS};

/// The statements an observation runs, prepared once per connection.
#[derive(Default)]
pub(crate) struct Observer {
    signatures: Option<Statement>,
    render_some: Option<Statement>,
    render_all: Option<Statement>,
    columns: Option<Statement>,
}

fn prepared<'a>(client: &mut impl GenericClient, slot: &'a mut Option<Statement>, sql: impl FnOnce() -> String) -> Result<&'a Statement, postgres::Error> {
    if slot.is_none() {
        *slot = Some(client.prepare(&sql())?);
    }
    Ok(slot.as_ref().expect("prepared above"))
}

/// Whether the observation runs in the same transaction as the changes since
/// its base state (then `pg_stat_xact_*` counts every row a statement wrote,
/// and only tables with writes or catalog changes need a data scan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Transaction,
    Committed,
}

#[derive(Debug, Clone)]
struct RootState {
    rows: i64,
    xmin_sum: i64,
    namespace: u32,
    /// Header and rendered block; `None` for a root left out (excluded).
    block: Option<(String, String)>,
}

/// A table's rows as of a state.
#[derive(Debug, Clone)]
pub(crate) struct TableState {
    pub key: String,
    pub relkind: String,
    /// The live columns `(name, attnum)`, in attnum order.
    pub columns: Vec<(String, i16)>,
    pub sig: DataSig,
    /// The columns hashed (with their attnums at the time) and the sums.
    pub hashed: Vec<(String, i16)>,
    pub lane: String,
    pub column_sums: Vec<String>,
    /// The row lane over the columns of a reference state, when they differ.
    pub subset: Option<(Vec<String>, String)>,
}

impl TableState {
    pub fn hashed_names(&self) -> Vec<String> {
        self.hashed.iter().map(|(n, _)| n.clone()).collect()
    }
    /// The rows are those of `other` as far as `other` hashed them: the
    /// same tuples (signature), and every column `other` hashed is still
    /// here as the same physical column.
    pub fn same_rows_as(&self, other: &TableState) -> bool {
        self.sig == other.sig && other.hashed.iter().all(|c| self.columns.contains(c))
    }
}

/// The state of a database as far as a rehearsal compares it.
#[derive(Debug, Clone, Default)]
pub(crate) struct State {
    roots: HashMap<Root, RootState>,
    tables: HashMap<u32, TableState>,
}

impl State {
    /// Every block, by header.
    pub fn blocks(&self) -> BTreeMap<String, String> {
        self.roots.values().filter_map(|r| r.block.clone()).collect()
    }
    pub fn schema_text(&self) -> String {
        self.blocks().into_values().collect()
    }
    /// Tables by key (`schema.table` as `quote_ident` writes each part).
    pub fn tables(&self) -> BTreeMap<&str, &TableState> {
        self.tables.values().map(|t| (t.key.as_str(), t)).collect()
    }
}

fn excluded(sig: &Signature, opts: &SnapshotOptions) -> bool {
    let hit = |k: &Option<String>| k.as_ref().is_some_and(|k| opts.exclude_tables.iter().any(|e| e == k));
    hit(&sig.key) || hit(&sig.raw) || hit(&sig.owner_key) || hit(&sig.owner_raw)
}

fn is_table(sig: &Signature) -> bool {
    sig.root.kind == Kind::Relation && matches!(sig.relkind.as_deref(), Some("r" | "p"))
}

/// The state of the database now, derived from `base` (an earlier state of
/// this database or of the one it was cloned from). `lanes_for`: a state
/// this one will be compared with, whose hashed columns get a row lane of
/// their own where they differ from the current ones.
pub(crate) fn observe(
    client: &mut impl GenericClient,
    obs: &mut Observer,
    base: &State,
    scope: Scope,
    opts: &SnapshotOptions,
    lanes_for: Option<&State>,
) -> Result<State, postgres::Error> {
    let mut tx = client.transaction()?;
    tx.batch_execute(SESSION_SETTINGS)?;
    let state = observe_in(&mut tx, obs, base, scope, opts, lanes_for)?;
    // Nothing was written; rolling back also ends the session settings.
    tx.rollback()?;
    Ok(state)
}

fn observe_in(
    tx: &mut impl GenericClient,
    obs: &mut Observer,
    base: &State,
    scope: Scope,
    opts: &SnapshotOptions,
    lanes_for: Option<&State>,
) -> Result<State, postgres::Error> {
    let stmt = prepared(tx, &mut obs.signatures, catalog::signatures_sql)?;
    let sigs: Vec<Signature> = catalog::signatures(tx, stmt)?.into_iter().filter(|s| !excluded(s, opts)).collect();

    // Roots whose catalog rows changed, and the state's roots that are gone.
    let mut changed = Selection::default();
    let mut changed_set: HashSet<Root> = HashSet::new();
    for s in &sigs {
        let same = base.roots.get(&s.root).is_some_and(|b| b.rows == s.rows && b.xmin_sum == s.xmin_sum && b.namespace == s.namespace);
        if !same {
            changed.add(s.root);
            changed_set.insert(s.root);
        }
    }
    let mut roots: HashMap<Root, RootState> = HashMap::with_capacity(sigs.len());
    for s in &sigs {
        let block = base.roots.get(&s.root).and_then(|b| b.block.clone());
        roots.insert(s.root, RootState { rows: s.rows, xmin_sum: s.xmin_sum, namespace: s.namespace, block });
    }
    if !changed.is_empty() {
        let parts = if base.roots.is_empty() {
            let stmt = prepared(tx, &mut obs.render_all, || catalog::render_sql(false))?;
            catalog::render(tx, stmt, None)?
        } else {
            let stmt = prepared(tx, &mut obs.render_some, || catalog::render_sql(true))?;
            catalog::render(tx, stmt, Some(&changed))?
        };
        let mut rendered: HashMap<Root, (String, Vec<String>)> = HashMap::new();
        for p in parts {
            let e = rendered.entry(p.root).or_insert_with(|| (p.header.clone(), Vec::new()));
            e.1.extend(p.lines);
        }
        for (root, (header, lines)) in rendered {
            let Some(r) = roots.get_mut(&root) else { continue }; // not a root (or excluded)
            let shown = !opts.exclude_objects.iter().any(|o| *o == header);
            r.block = shown.then(|| {
                let text = render_block(&header, &lines);
                (header, text)
            });
        }
    }

    let mut tables = HashMap::new();
    if opts.fingerprint_rows {
        tables = observe_tables(tx, obs, base, scope, &sigs, &changed_set, lanes_for)?;
    }
    Ok(State { roots, tables })
}

fn observe_tables(
    tx: &mut impl GenericClient,
    obs: &mut Observer,
    base: &State,
    scope: Scope,
    sigs: &[Signature],
    changed: &HashSet<Root>,
    lanes_for: Option<&State>,
) -> Result<HashMap<u32, TableState>, postgres::Error> {
    let table_sigs: Vec<&Signature> = sigs.iter().filter(|s| is_table(s)).collect();
    // Columns of the tables whose catalog rows changed (or that are new).
    let need_columns: Vec<u32> =
        table_sigs.iter().filter(|s| changed.contains(&s.root) || !base.tables.contains_key(&s.root.oid)).map(|s| s.root.oid).collect();
    let mut columns: HashMap<u32, Vec<(String, i16)>> = HashMap::new();
    if !need_columns.is_empty() {
        let stmt = prepared(tx, &mut obs.columns, || catalog::COLUMNS_SQL.to_string())?;
        for row in tx.query(stmt, &[&need_columns])? {
            columns.entry(row.get(0)).or_default().push((row.get(1), row.get(2)));
        }
    }
    // Which known tables' rows may have changed: all of them after
    // committed work; in the same transaction, those written to or altered.
    // New tables are hashed straight away (the hash scan reads the
    // signature too).
    let scan: Vec<&Signature> = table_sigs
        .iter()
        .copied()
        .filter(|s| base.tables.contains_key(&s.root.oid) && (scope == Scope::Committed || s.dml > 0 || changed.contains(&s.root)))
        .collect();
    let keys: Vec<(&str, &str)> = scan.iter().map(|s| (s.key.as_deref().unwrap_or(""), s.relkind.as_deref().unwrap_or("r"))).collect();
    let scanned: HashMap<u32, DataSig> = scan.iter().map(|s| s.root.oid).zip(fingerprint::data_sigs(tx, &keys)?).collect();

    let mut out = HashMap::new();
    let mut to_hash: Vec<(u32, TableState)> = Vec::new();
    for s in table_sigs {
        let oid = s.root.oid;
        let prior = base.tables.get(&oid);
        let cols = match (columns.remove(&oid), prior) {
            (Some(c), _) => c,
            (None, Some(p)) => p.columns.clone(),
            (None, None) => Vec::new(),
        };
        let key = s.key.clone().unwrap_or_default();
        let relkind = s.relkind.clone().unwrap_or_else(|| "r".into());
        match prior {
            Some(p) if scanned.get(&oid).is_none_or(|sig| *sig == p.sig) && p.hashed.iter().all(|c| cols.contains(c)) => {
                out.insert(oid, TableState { key, relkind, columns: cols, ..p.clone() });
            }
            _ => to_hash.push((
                oid,
                TableState { key, relkind, hashed: cols.clone(), columns: cols, sig: DataSig::default(), lane: String::new(), column_sums: Vec::new(), subset: None },
            )),
        }
    }
    if !to_hash.is_empty() {
        let names: Vec<Vec<String>> = to_hash.iter().map(|(_, t)| t.hashed_names()).collect();
        let refs: Vec<Option<Vec<String>>> = to_hash
            .iter()
            .zip(&names)
            .map(|((_, t), n)| lanes_for.and_then(|l| l.tables().get(t.key.as_str()).map(|r| r.hashed_names())).filter(|r| r != n))
            .collect();
        let requests: Vec<Request> = to_hash
            .iter()
            .zip(&names)
            .zip(&refs)
            .map(|(((_, t), n), r)| Request { key: &t.key, relkind: &t.relkind, columns: n, subset: r.as_deref() })
            .collect();
        let hashed = fingerprint::hash(tx, &requests)?;
        for (((oid, mut t), r), h) in to_hash.into_iter().zip(refs).zip(hashed) {
            t.sig = h.sig;
            t.lane = h.lane;
            t.column_sums = h.column_sums;
            t.subset = r.zip(h.subset_lane);
            out.insert(oid, t);
        }
    }
    Ok(out)
}

/// Fingerprints `columns` of a table as it is now (for a comparison whose
/// reference hashed other columns than the current state did).
pub(crate) fn rows_over(client: &mut impl GenericClient, table: &TableState, columns: &[String]) -> Result<Hashed, postgres::Error> {
    let mut tx = client.transaction()?;
    tx.batch_execute(SESSION_SETTINGS)?;
    let mut h = fingerprint::hash(&mut tx, &[Request { key: &table.key, relkind: &table.relkind, columns, subset: None }])?;
    tx.rollback()?;
    Ok(h.pop().expect("one request, one result"))
}

/// A whole snapshot, in the caller's transaction (session settings are set
/// here, locally).
pub(crate) fn whole(tx: &mut impl GenericClient, opts: &SnapshotOptions) -> Result<Snapshot, postgres::Error> {
    tx.batch_execute(SESSION_SETTINGS)?;
    let mut obs = Observer::default();
    let state = observe_in(tx, &mut obs, &State::default(), Scope::Committed, opts, None)?;
    let tables = state
        .tables
        .values()
        .map(|t| {
            let sums = if opts.column_hashes { t.column_sums.clone() } else { Vec::new() };
            (t.key.clone(), TableFingerprint::new(t.sig.rows, t.hashed_names(), &t.lane, sums))
        })
        .collect();
    Ok(Snapshot { schema: state.schema_text(), tables })
}
