//! Where a change learns the schema (and the rows) it is written against:
//! the set applied to a disposable database (every forward file, the seed
//! after its phase, as `verify`'s chain applies them), or a live database
//! that has applied every migration of the set. Also the questions a
//! change asks the data, each in a transaction that is rolled back: does
//! an expression give a value of the new type for every row (and which row
//! does not), and do a probe's statements run.

use postgres::{Client, Transaction};

use super::error::{ChangeError, Input};
use super::model::{self, Schema, Table};
use crate::error::{db_err, Error, Result};
use crate::pg::Server;
use crate::set::MigrationSet;

/// Where to learn the schema.
pub enum Source<'a> {
    /// Apply the set (and its seed, with `phasegate.seed_rows` when given)
    /// to a new database on this server, dropped afterwards.
    Disposable { server: &'a Server, seed_rows: Option<u64> },
    /// A live database (it must have applied every migration of the set).
    Live { url: &'a str },
}

/// The database the change was learned from, and its schema.
pub struct Learned<'a> {
    pub client: Client,
    pub schema: Schema,
    /// "the set (phases 0-3 applied to a disposable database)" or "the database".
    pub described: String,
    /// The disposable database to drop when done.
    disposable: Option<(&'a Server, String)>,
}

impl Drop for Learned<'_> {
    fn drop(&mut self) {
        if let Some((server, name)) = self.disposable.take() {
            let _ = server.drop_database(&name);
        }
    }
}

/// Connects to (or builds) the database the change is written against and
/// reads its schema.
pub fn learn<'a>(set: &MigrationSet, source: Source<'a>) -> Result<Learned<'a>> {
    match source {
        Source::Disposable { server, seed_rows } => {
            let name = format!("phasegate_change_{}_{}", std::process::id(), &crate::ledger::new_run_id()[..8]);
            let url = server.create_database(&name, None)?;
            let mut learned = Learned { client: crate::db::connect(&url, "phasegate change")?, schema: Schema::default(), described: String::new(), disposable: Some((server, name)) };
            crate::apply::migrate_to(&mut learned.client, set, None, Some(seed_rows))?;
            learned.client.batch_execute("ANALYZE").map_err(db_err("analysing the rehearsed database"))?;
            learned.schema = model::read(&mut learned.client)?;
            let (first, last) = (set.phases.first().map_or(0, |p| p.id), set.phases.last().map_or(0, |p| p.id));
            learned.described = format!("the set (phases {first}-{last} applied to a disposable database)");
            Ok(learned)
        }
        Source::Live { url } => {
            let mut client = crate::db::connect(url, "phasegate change")?;
            let applied = crate::ledger::applied(&mut client)?;
            let pending: Vec<i32> = set.steps().map(|s| s.version).filter(|v| !applied.contains_key(v)).collect();
            if let Some(first) = pending.first() {
                return Err(ChangeError::Behind { version: *first, pending: pending.len() }.into());
            }
            // Rollback and validation files do not make the schema; a
            // forward file that differs, or a migration the set lacks, does.
            let schema_drift: Vec<_> = crate::ledger::drift(set, &applied)
                .into_iter()
                .filter(|d| matches!(d.kind, crate::error::DriftKind::MissingFile | crate::error::DriftKind::ForwardChanged))
                .collect();
            if let Some(first) = schema_drift.first() {
                return Err(ChangeError::Drifted { first: first.message.clone(), more: schema_drift.len() - 1 }.into());
            }
            let schema = model::read(&mut client)?;
            Ok(Learned { client, schema, described: format!("the database {}", crate::db::redact(url)), disposable: None })
        }
    }
}

/// A transaction that is always rolled back, with short lock waits: what
/// a change asks of a live database never changes it or queues behind it.
pub fn probe_tx(client: &mut Client) -> Result<Transaction<'_>> {
    let mut tx = client.transaction().map_err(db_err("starting a read-only check"))?;
    tx.batch_execute("SET LOCAL lock_timeout = '2s'").map_err(db_err("starting a read-only check"))?;
    Ok(tx)
}

/// How a row is named in messages: `id = 17`, `(a, b) = (1, 'x')`, or its ctid.
pub fn key_text_sql(schema: &Schema, t: &Table, alias: &str) -> String {
    match t.primary_key.as_slice() {
        [] => format!("'ctid ' || {alias}.ctid::text"),
        [k] => format!("{} || ' = ' || {alias}.{}::text", super::sql::lit(&schema.ident(k)), schema.ident(k)),
        ks => {
            let names = ks.iter().map(|k| schema.ident(k)).collect::<Vec<_>>().join(", ");
            let vals = ks.iter().map(|k| format!("{alias}.{}::text", schema.ident(k))).collect::<Vec<_>>().join(" || ', ' || ");
            format!("{} || {vals} || ')'", super::sql::lit(&format!("({names}) = (")))
        }
    }
}

/// What an expression over a table's rows gives, checked against the type
/// it must fit.
pub struct Fit<'a> {
    /// Which input of the operation it is.
    pub input: Input,
    /// As the operator wrote it.
    pub shown: &'a str,
    /// The expression over the row, aliased `t` (`t.amount::numeric(12,2)`).
    pub expr: &'a str,
    /// The type it is assigned to (`numeric(12,2)`).
    pub ty: &'a str,
    /// A condition over `t` under which the result must not be NULL.
    pub not_null_when: Option<String>,
}

/// Checks that `fit.expr`, assigned to a column of type `fit.ty`, works for
/// every row of `table` (and is not NULL where `not_null_when` holds),
/// inside a transaction that is rolled back; the first failing row is an
/// error naming its key. A set-based pass first; only when it fails, a
/// row-by-row pass (a subtransaction per row) finds the row.
pub fn check_fits(client: &mut Client, schema: &Schema, table: &Table, fit: &Fit) -> Result<()> {
    let t = schema.qname(&table.name);
    let mut tx = probe_tx(client)?;
    let bad_expr = |e: &postgres::Error| ChangeError::BadExpression { input: fit.input, expr: fit.shown.to_string(), message: crate::error::pg_message(e) };
    tx.batch_execute(&format!("CREATE TEMP TABLE phasegate_fit (v {}) ON COMMIT DROP", fit.ty)).map_err(|e| bad_expr(&e))?;
    tx.batch_execute("SAVEPOINT phasegate_fit").map_err(db_err("checking the rows"))?;
    let insert = format!("INSERT INTO phasegate_fit SELECT {} FROM {t} AS t", fit.expr);
    if let Err(e) = tx.batch_execute(&insert) {
        // Not a row's fault: the expression itself does not parse or type.
        if matches!(e.code().map(|c| c.code()), Some(c) if c.starts_with("42")) {
            return Err(bad_expr(&e).into());
        }
        tx.batch_execute("ROLLBACK TO SAVEPOINT phasegate_fit").map_err(db_err("checking the rows"))?;
        let finder = format!(
            "CREATE FUNCTION pg_temp.phasegate_first_misfit() RETURNS text LANGUAGE plpgsql AS $phasegate$
             DECLARE r record;
             BEGIN
               FOR r IN SELECT t.ctid AS c, {key} AS k FROM {t} AS t LOOP
                 BEGIN
                   INSERT INTO phasegate_fit SELECT {expr} FROM {t} AS t WHERE t.ctid = r.c;
                 EXCEPTION WHEN OTHERS THEN
                   RETURN r.k || E'\\n' || SQLERRM;
                 END;
               END LOOP;
               RETURN NULL;
             END $phasegate$",
            key = key_text_sql(schema, table, "t"),
            expr = fit.expr,
        );
        tx.batch_execute(&finder).map_err(db_err("checking the rows"))?;
        let found: Option<String> = tx.query_one("SELECT pg_temp.phasegate_first_misfit()", &[]).map_err(db_err("checking the rows"))?.get(0);
        let (key, message) = match found.as_deref().and_then(|f| f.split_once('\n')) {
            Some((k, m)) => (k.to_string(), m.to_string()),
            None => ("(not found again: a concurrent change?)".to_string(), crate::error::pg_message(&e)),
        };
        return Err(misfit(fit, table, schema, key, "fails", message));
    }
    if let Some(cond) = &fit.not_null_when {
        let q = format!("SELECT {} FROM {t} AS t WHERE ({cond}) AND ({}) IS NULL LIMIT 1", key_text_sql(schema, table, "t"), fit.expr);
        if let Some(row) = tx.query_opt(q.as_str(), &[]).map_err(|e| bad_expr(&e))? {
            return Err(misfit(fit, table, schema, row.get(0), "gives NULL", String::new()));
        }
    }
    let _ = tx.rollback();
    Ok(())
}

fn misfit(fit: &Fit, table: &Table, schema: &Schema, key: String, failure: &'static str, message: String) -> Error {
    ChangeError::DataDoesNotFit { input: fit.input, expr: fit.shown.to_string(), table: schema.qname(&table.name), key, failure, message }.into()
}

/// Whether `expr` is a default PostgreSQL stores without rewriting the
/// table (not volatile: PostgreSQL 11+ keeps it as the column's "missing
/// value"), tried on a temporary table in a transaction that is rolled back.
/// An expression that does not fit `ty` is an error.
pub fn is_catalog_only_default(client: &mut Client, input: Input, expr: &str, ty: &str) -> Result<bool> {
    let mut tx = probe_tx(client)?;
    let bad = |e: postgres::Error| -> Error { ChangeError::BadExpression { input, expr: expr.to_string(), message: crate::error::pg_message(&e) }.into() };
    tx.batch_execute("CREATE TEMP TABLE phasegate_default (k int) ON COMMIT DROP; INSERT INTO phasegate_default VALUES (1)").map_err(db_err("checking a default"))?;
    tx.batch_execute(&format!("ALTER TABLE phasegate_default ADD COLUMN v {ty} DEFAULT {expr}")).map_err(bad)?;
    let fast: bool = tx
        .query_one("SELECT atthasmissing FROM pg_attribute WHERE attrelid = 'phasegate_default'::regclass AND attname = 'v'", &[])
        .map_err(db_err("checking a default"))?
        .get(0);
    let _ = tx.rollback();
    Ok(fast)
}

/// Runs each statement in a savepoint of a transaction that is rolled
/// back; returns, per statement, the error it raised (if any).
pub fn try_statements(client: &mut Client, statements: &[String]) -> Result<Vec<Option<String>>> {
    let mut tx = probe_tx(client)?;
    let mut out = Vec::new();
    for s in statements {
        tx.batch_execute("SAVEPOINT phasegate_probe").map_err(db_err("trying a probe"))?;
        match tx.batch_execute(s) {
            Ok(()) => out.push(None),
            Err(e) => {
                out.push(Some(crate::error::pg_message(&e)));
                tx.batch_execute("ROLLBACK TO SAVEPOINT phasegate_probe").map_err(db_err("trying a probe"))?;
            }
        }
    }
    let _ = tx.rollback();
    Ok(out)
}

/// The type as PostgreSQL names it (`varchar(200)` -> `character
/// varying(200)`, what `format_type` prints and validations compare with);
/// a type PostgreSQL does not know is refused.
pub fn check_type(client: &mut Client, ty: &str) -> Result<String> {
    let mut tx = probe_tx(client)?;
    tx.batch_execute(&format!("CREATE TEMP TABLE phasegate_type (v {ty}) ON COMMIT DROP"))
        .map_err(|e| -> Error { ChangeError::BadExpression { input: Input::Type, expr: ty.to_string(), message: crate::error::pg_message(&e) }.into() })?;
    let canonical: String = tx
        .query_one("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'phasegate_type'::regclass AND attname = 'v'", &[])
        .map_err(db_err("reading a type"))?
        .get(0);
    let _ = tx.rollback();
    Ok(canonical)
}

/// One number from a query, in a transaction that is rolled back.
pub fn count(client: &mut Client, sql: &str) -> Result<i64> {
    let mut tx = probe_tx(client)?;
    let n: i64 = tx.query_one(sql, &[]).map_err(db_err("counting rows for the change"))?.get(0);
    let _ = tx.rollback();
    Ok(n)
}

/// One text value from a query (NULL as `None`), in a transaction that is rolled back.
pub fn text(client: &mut Client, sql: &str) -> Result<Option<String>> {
    let mut tx = probe_tx(client)?;
    let v = tx.query_opt(sql, &[]).map_err(db_err("reading a value for the change"))?.and_then(|r| r.get::<_, Option<String>>(0));
    let _ = tx.rollback();
    Ok(v)
}

/// The first row of a query over the operator's SQL (`input`, written
/// `shown`), its columns as text, in a transaction that is rolled back; an
/// error of the query is the input's fault.
pub fn first_row(client: &mut Client, sql: &str, input: Input, shown: &str) -> Result<Option<Vec<Option<String>>>> {
    let mut tx = probe_tx(client)?;
    let row = tx.query_opt(sql, &[]).map_err(|e| -> Error { ChangeError::BadExpression { input, expr: shown.to_string(), message: crate::error::pg_message(&e) }.into() })?;
    let _ = tx.rollback();
    Ok(row.map(|r| (0..r.len()).map(|i| r.get::<_, Option<String>>(i)).collect()))
}

/// Runs `ddl` (the operator's SQL) in a transaction that is rolled back, then
/// `read` in the same transaction: what the DDL would make, without making it.
pub fn try_ddl<T>(client: &mut Client, ddl: &str, input: Input, shown: &str, read: impl FnOnce(&mut Transaction) -> Result<T>) -> Result<T> {
    let mut tx = probe_tx(client)?;
    tx.batch_execute(ddl).map_err(|e| -> Error { ChangeError::BadExpression { input, expr: shown.to_string(), message: crate::error::pg_message(&e) }.into() })?;
    let out = read(&mut tx)?;
    let _ = tx.rollback();
    Ok(out)
}
