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

use postgres::{GenericClient, SimpleQueryMessage, SimpleQueryRow, Statement};

use super::catalog::{self, Kind, Root, Selection, Signature};
use super::fingerprint::{self, DataSig, Hashed, Request};
use super::touch::{self, Mark};
use super::{render_block, Snapshot, SnapshotOptions, TableFingerprint, SESSION_SETTINGS};
use crate::error::{db_err, Error, Result};

/// The statements an observation runs, prepared once per connection.
#[derive(Default)]
pub(crate) struct Observer {
    signatures: Option<Statement>,
    /// The signature statement restricted to candidates, the candidates
    /// statement and the mark statement (`touch`).
    some_signatures: Option<Statement>,
    candidates: Option<Statement>,
    mark: Option<Statement>,
    /// Whether the database has the log of `touch` (`None`: not known yet).
    log: Option<bool>,
    /// Whether the SQL-level prepared statements exist in this session
    /// (`None`: not known yet).
    sql_prepared: Option<bool>,
}

impl Observer {
    /// For a connection that has never observed anything.
    pub fn fresh() -> Observer {
        Observer { sql_prepared: Some(false), ..Observer::default() }
    }
}

fn prepared<'a>(client: &mut impl GenericClient, slot: &'a mut Option<Statement>, sql: impl FnOnce() -> String) -> Result<&'a Statement, postgres::Error> {
    if slot.is_none() {
        *slot = Some(client.prepare(&sql())?);
    }
    Ok(slot.as_ref().expect("prepared above"))
}

/// Statements sent in one round trip (the simple query protocol); each
/// statement's rows come back apart.
#[derive(Default)]
struct Batch {
    sql: String,
    statements: usize,
}

impl Batch {
    /// Adds `sql` (`count` statements); returns the index of its last one.
    fn push(&mut self, sql: &str, count: usize) -> usize {
        self.sql.push_str(sql);
        self.sql.push_str(";\n");
        self.statements += count;
        self.statements - 1
    }
    fn one(&mut self, sql: &str) -> usize {
        self.push(sql, 1)
    }
    fn run(self, client: &mut impl GenericClient) -> Result<Vec<Vec<SimpleQueryRow>>, postgres::Error> {
        let mut out: Vec<Vec<SimpleQueryRow>> = (0..self.statements).map(|_| Vec::new()).collect();
        let mut at = 0;
        for m in client.simple_query(&self.sql)? {
            match m {
                SimpleQueryMessage::Row(r) => out[at.min(self.statements - 1)].push(r),
                SimpleQueryMessage::CommandComplete(_) => at += 1,
                _ => {}
            }
        }
        Ok(out)
    }
}

/// How an observation isolates its reads: in a savepoint of the caller's
/// transaction, or in a read-only transaction of its own. Either way it
/// ends rolled back, which also ends its session settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wrap {
    Savepoint,
    Begin,
}

impl Wrap {
    fn open(self, b: &mut Batch) {
        match self {
            Wrap::Savepoint => b.one("SAVEPOINT phasegate_observe"),
            Wrap::Begin => b.one("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
        };
        b.push(SESSION_SETTINGS, SESSION_SETTINGS.matches(';').count() + 1);
    }
    fn close(self, b: &mut Batch) {
        match self {
            Wrap::Savepoint => b.push("ROLLBACK TO SAVEPOINT phasegate_observe; RELEASE SAVEPOINT phasegate_observe", 2),
            Wrap::Begin => b.one("ROLLBACK"),
        };
    }
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
    /// The root's signature row (`dml` as read then).
    sig: Signature,
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
    /// Where this observation stands in the log of `touch`, when the
    /// database has one.
    mark: Option<Mark>,
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
/// their own where they differ from the current ones. Usually two round
/// trips: the signatures, then what changed (and a third to hash tables
/// whose rows changed).
pub(crate) fn observe(
    client: &mut impl GenericClient,
    obs: &mut Observer,
    base: &State,
    scope: Scope,
    opts: &SnapshotOptions,
    lanes_for: Option<&State>,
) -> Result<State> {
    let wrap = match scope {
        Scope::Transaction => Wrap::Savepoint,
        Scope::Committed => Wrap::Begin,
    };
    observe_in(client, obs, base, scope, wrap, opts, lanes_for)
}

/// Which tables of a state this observation must look at again.
struct TablePlan<'a> {
    tables: Vec<&'a Signature>,
    /// Tables whose catalog rows changed (or that are new): their columns.
    columns: Vec<u32>,
    /// Known tables whose rows may have changed: their data signature.
    scan: Vec<&'a Signature>,
}

fn plan_tables<'a>(sigs: &'a [Signature], base: &State, scope: Scope, changed: &HashSet<Root>) -> TablePlan<'a> {
    let tables: Vec<&Signature> = sigs.iter().filter(|s| is_table(s)).collect();
    let columns = tables.iter().filter(|s| changed.contains(&s.root) || !base.tables.contains_key(&s.root.oid)).map(|s| s.root.oid).collect();
    // All of them after committed work; in the same transaction, those
    // written to or altered. New tables are hashed straight away (the hash
    // scan reads the signature too).
    let scan = tables
        .iter()
        .copied()
        .filter(|s| base.tables.contains_key(&s.root.oid) && (scope == Scope::Committed || s.dml > 0 || changed.contains(&s.root)))
        .collect();
    TablePlan { tables, columns, scan }
}

#[allow(clippy::too_many_arguments)]
fn observe_in(
    client: &mut impl GenericClient,
    obs: &mut Observer,
    base: &State,
    scope: Scope,
    wrap: Wrap,
    opts: &SnapshotOptions,
    lanes_for: Option<&State>,
) -> Result<State> {
    let (sigs, mark) = signatures_since(client, obs, base, scope, opts)?;

    let mut changed = Selection::default();
    let mut changed_set: HashSet<Root> = HashSet::new();
    let mut roots: HashMap<Root, RootState> = HashMap::with_capacity(sigs.len());
    for s in &sigs {
        let prior = base.roots.get(&s.root);
        if !prior.is_some_and(|b| b.sig.rows == s.rows && b.sig.xmin_sum == s.xmin_sum && b.sig.namespace == s.namespace) {
            changed.add(s.root);
            changed_set.insert(s.root);
        }
        let block = prior.and_then(|b| b.block.clone());
        roots.insert(s.root, RootState { sig: Signature { dml: 0, ..s.clone() }, block });
    }
    let plan = if opts.fingerprint_rows { plan_tables(&sigs, base, scope, &changed_set) } else { TablePlan { tables: vec![], columns: vec![], scan: vec![] } };

    // The second round trip: render what changed, read columns and data
    // signatures.
    let mut columns: HashMap<u32, Vec<(String, i16)>> = HashMap::new();
    let mut scanned: HashMap<u32, DataSig> = HashMap::new();
    if !changed.is_empty() || !plan.columns.is_empty() || !plan.scan.is_empty() {
        let mut b = Batch::default();
        wrap.open(&mut b);
        if obs.sql_prepared.is_none() {
            let n: i64 = client.query_one(catalog::PREPARED_SQL, &[]).map_err(db_err("reading prepared statements"))?.get(0);
            obs.sql_prepared = Some(n > 0);
        }
        if obs.sql_prepared == Some(false) {
            for p in catalog::prepare_statements() {
                b.one(&p);
            }
        }
        let render = (!changed.is_empty()).then(|| b.one(&catalog::execute_render((!base.roots.is_empty()).then_some(&changed))));
        let cols = (!plan.columns.is_empty()).then(|| b.one(&catalog::execute_columns(&plan.columns)));
        let keys: Vec<(&str, &str)> = plan.scan.iter().map(|s| (s.key.as_deref().unwrap_or(""), s.relkind.as_deref().unwrap_or("r"))).collect();
        let data = (!keys.is_empty()).then(|| b.one(&fingerprint::data_sigs_sql(&keys)));
        wrap.close(&mut b);
        let results = b.run(client).map_err(db_err("reading the catalogs"))?;
        obs.sql_prepared = Some(true);
        if let Some(i) = render {
            let mut rendered: HashMap<Root, (String, Vec<String>)> = HashMap::new();
            for p in results[i].iter().filter_map(catalog::part) {
                let e = rendered.entry(p.root).or_insert_with(|| (p.header.clone(), Vec::new()));
                e.1.extend(p.line);
            }
            for (root, (header, lines)) in rendered {
                let Some(r) = roots.get_mut(&root) else { continue }; // not a root (or excluded)
                let shown = !opts.exclude_objects.contains(&header);
                r.block = shown.then(|| {
                    let text = render_block(&header, &lines);
                    (header, text)
                });
            }
        }
        if let Some(i) = cols {
            for (oid, name, attnum) in results[i].iter().filter_map(catalog::column) {
                columns.entry(oid).or_default().push((name, attnum));
            }
        }
        if let Some(i) = data {
            for (at, sig) in results[i].iter().filter_map(fingerprint::data_sig) {
                scanned.insert(plan.scan[at].root.oid, sig);
            }
        }
    }
    let tables = if opts.fingerprint_rows { tables_now(client, base, wrap, &plan, columns, &scanned, lanes_for)? } else { HashMap::new() };
    Ok(State { roots, tables, mark })
}

/// Every root's signature now, and the mark of this observation: read for
/// every root of the catalog, or (when `base` has a mark in the log of
/// `touch`) for the candidates only, the other roots carried from `base`.
fn signatures_since(client: &mut impl GenericClient, obs: &mut Observer, base: &State, scope: Scope, opts: &SnapshotOptions) -> Result<(Vec<Signature>, Option<Mark>)> {
    let (sigs, mark) = signatures_read(client, obs, base, opts)?;
    match (mark, scope) {
        // The snapshot's xmax may not be past this transaction's own ids.
        (Some(m), Scope::Transaction) => Ok((sigs, Some(Mark { xid: touch::next_xid(client).map_err(db_err("reading the change log"))?, ..m }))),
        _ => Ok((sigs, mark)),
    }
}

fn signatures_read(client: &mut impl GenericClient, obs: &mut Observer, base: &State, opts: &SnapshotOptions) -> Result<(Vec<Signature>, Option<Mark>)> {
    if obs.log.is_none() {
        obs.log = Some(client.query_one(touch::EXISTS_SQL, &[]).map_err(db_err("looking for the change log"))?.get(0));
    }
    let mut mark = None;
    if obs.log == Some(true) {
        if let (Some(m), false) = (base.mark, base.roots.is_empty()) {
            let stmt = prepared(client, &mut obs.candidates, || touch::CANDIDATES_SQL.to_string()).map_err(db_err("preparing the change log query"))?;
            let (next, touched) = touch::candidates(client, stmt, m).map_err(db_err("reading the change log"))?;
            if let Some(cands) = candidates_in(base, touched) {
                let stmt = prepared(client, &mut obs.some_signatures, || catalog::signatures_sql(true)).map_err(db_err("preparing the catalog signatures"))?;
                let read = catalog::signatures_of(client, stmt, &cands).map_err(db_err("reading the catalog signatures"))?;
                let cands: HashSet<u32> = cands.into_iter().collect();
                let mut sigs: Vec<Signature> = read.into_iter().filter(|s| !excluded(s, opts)).collect();
                sigs.extend(base.roots.iter().filter(|(r, _)| !cands.contains(&r.oid)).map(|(_, b)| b.sig.clone()));
                return Ok((sigs, Some(next)));
            }
            mark = Some(next);
        } else {
            let stmt = prepared(client, &mut obs.mark, || touch::MARK_SQL.to_string()).map_err(db_err("preparing the change log query"))?;
            let row = client.query_one(stmt, &[]).map_err(db_err("reading the change log"))?;
            mark = Some(Mark { seen: row.get(0), xid: row.get(1) });
        }
    }
    let stmt = prepared(client, &mut obs.signatures, || catalog::signatures_sql(false)).map_err(db_err("preparing the catalog signatures"))?;
    let sigs = catalog::signatures(client, stmt).map_err(db_err("reading the catalog signatures"))?.into_iter().filter(|s| !excluded(s, opts)).collect();
    Ok((sigs, mark))
}

/// The candidates' oids, with the tables of the dropped indexes found in
/// `base`'s blocks; `None` when a dropped object's table is not found
/// there, or an extension was touched or a GRANT or REVOKE ran (then
/// every signature is read).
fn candidates_in(base: &State, touched: touch::Touched) -> Option<Vec<u32>> {
    if touched.read_all {
        return None;
    }
    let mut out = touched.candidates;
    for (kind, schema, name) in &touched.dropped {
        if kind != "index" {
            return None;
        }
        let prefix = format!("{schema}.");
        let line = format!("\n  index {name}: ");
        let table = base.roots.iter().find(|(r, b)| {
            r.kind == Kind::Relation && b.block.as_ref().is_some_and(|(h, text)| h.rsplit(' ').next().is_some_and(|q| q.starts_with(&prefix)) && text.contains(&line))
        });
        out.push(table?.0.oid);
    }
    Some(out)
}

/// The tables' states: carried from `base` where their rows are known to be
/// the same, hashed again (one more round trip) where not.
fn tables_now(
    client: &mut impl GenericClient,
    base: &State,
    wrap: Wrap,
    plan: &TablePlan,
    mut columns: HashMap<u32, Vec<(String, i16)>>,
    scanned: &HashMap<u32, DataSig>,
    lanes_for: Option<&State>,
) -> Result<HashMap<u32, TableState>> {
    let mut out = HashMap::new();
    let mut to_hash: Vec<(u32, TableState)> = Vec::new();
    for s in &plan.tables {
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
    if to_hash.is_empty() {
        return Ok(out);
    }
    let names: Vec<Vec<String>> = to_hash.iter().map(|(_, t)| t.hashed_names()).collect();
    let reference = lanes_for.map(State::tables);
    let refs: Vec<Option<Vec<String>>> = to_hash
        .iter()
        .zip(&names)
        .map(|((_, t), n)| reference.as_ref().and_then(|r| r.get(t.key.as_str()).map(|r| r.hashed_names())).filter(|r| r != n))
        .collect();
    let mut b = Batch::default();
    wrap.open(&mut b);
    let at: Vec<usize> = to_hash
        .iter()
        .zip(&names)
        .zip(&refs)
        .map(|(((_, t), n), r)| b.one(&fingerprint::fingerprint_sql(&Request { key: &t.key, relkind: &t.relkind, columns: n, subset: r.as_deref() })))
        .collect();
    wrap.close(&mut b);
    let results = b.run(client).map_err(db_err("fingerprinting rows"))?;
    for ((((oid, mut t), r), i), n) in to_hash.into_iter().zip(refs).zip(at).zip(&names) {
        let h = results[i].first().and_then(|row| fingerprint::hashed(row, n.len())).ok_or_else(unreadable)?;
        t.sig = h.sig;
        t.lane = h.lane;
        t.column_sums = h.column_sums;
        t.subset = r.zip(h.subset_lane);
        out.insert(oid, t);
    }
    Ok(out)
}

/// A fingerprint row that could not be read (never expected).
fn unreadable() -> Error {
    Error::Unexpected { context: "reading a row fingerprint".into(), message: "the server returned no readable row".into() }
}

/// Fingerprints `columns` of a table as it is now (for a comparison whose
/// reference hashed other columns than the current state did).
pub(crate) fn rows_over(client: &mut impl GenericClient, scope: Scope, table: &TableState, columns: &[String]) -> Result<Hashed> {
    let wrap = match scope {
        Scope::Transaction => Wrap::Savepoint,
        Scope::Committed => Wrap::Begin,
    };
    let mut b = Batch::default();
    wrap.open(&mut b);
    let i = b.one(&fingerprint::fingerprint_sql(&Request { key: &table.key, relkind: &table.relkind, columns, subset: None }));
    wrap.close(&mut b);
    let results = b.run(client).map_err(db_err(format!("fingerprinting {}", table.key)))?;
    results[i].first().and_then(|row| fingerprint::hashed(row, columns.len())).ok_or_else(unreadable)
}

/// A whole snapshot, in the caller's transaction.
pub(crate) fn whole(tx: &mut impl GenericClient, opts: &SnapshotOptions) -> Result<Snapshot> {
    let mut obs = Observer::default();
    let state = observe_in(tx, &mut obs, &State::default(), Scope::Committed, Wrap::Savepoint, opts, None)?;
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
