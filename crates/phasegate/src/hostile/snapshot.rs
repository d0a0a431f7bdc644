//! Snapshots with hostile names and values: per case, a table and its
//! copy (generated names, columns and rows) and an enum with generated
//! labels. The row fingerprint builders (`fingerprint_sql`, `hashed`,
//! `data_sigs_sql`) give a table and its copy the same fingerprint and a
//! changed copy another; after each batch a whole snapshot (`whole`, what
//! `verify` and `take_snapshot` render) names every table and type by its
//! `quote_ident` form and fingerprints each table like its copy.

use proptest::prelude::*;

use super::{case_schema, distinct, err, ident, server_ident, text, Bench};
use crate::pg::{fit_name, quote_ident, MAX_IDENT_BYTES};
use crate::snapshot::{data_sig, data_sigs_sql, fingerprint_sql, hashed, Request, SnapshotOptions};

#[derive(Debug, Clone)]
struct Case {
    schema: String,
    /// The table, its copy, the enum.
    names: Vec<String>,
    columns: Vec<String>,
    rows: Vec<(Option<String>, Option<String>)>,
    labels: Vec<String>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        ident(),
        prop::collection::vec(ident(), 3),
        prop::collection::vec(ident(), 2),
        prop::collection::vec((prop::option::weighted(0.9, text(12)), prop::option::weighted(0.9, text(12))), 0..5),
        prop::collection::btree_set(text(6).prop_filter("a label", |l| !l.is_empty() && l.len() <= MAX_IDENT_BYTES), 1..4),
    )
        .prop_map(|(schema, mut names, mut columns, rows, labels)| {
            distinct(&mut names);
            distinct(&mut columns);
            Case { schema, names, columns, rows, labels: labels.into_iter().collect() }
        })
}

fn schema_of(i: usize, c: &Case) -> String {
    fit_name(&c.schema, &format!("_{i}"), MAX_IDENT_BYTES)
}

/// (rows, lane) of a table, by the fingerprint builder, text protocol.
fn fingerprint(tx: &mut postgres::Transaction, key: &str, columns: &[String]) -> Result<(i64, String), String> {
    let sql = fingerprint_sql(&Request { key, relkind: "r", columns, subset: None });
    let rows: Vec<_> = tx.simple_query(&sql).map_err(err)?.into_iter().filter_map(|m| if let postgres::SimpleQueryMessage::Row(r) = m { Some(r) } else { None }).collect();
    let h = rows.first().and_then(|r| hashed(r, columns.len())).ok_or("no fingerprint row")?;
    Ok((h.sig.rows, h.lane))
}

fn setup(i: usize, c: &Case) -> String {
    let s = case_schema(&c.schema, i);
    let [c1, c2] = [0, 1].map(|n| quote_ident(&c.columns[n]));
    format!("CREATE SCHEMA {s}; CREATE TABLE {s}.{} ({c1} text, {c2} text)", quote_ident(&c.names[0]))
}

fn one(tx: &mut postgres::Transaction, i: usize, c: &Case) -> Result<(), String> {
    let s = case_schema(&c.schema, i);
    let [a, b, e] = [0, 1, 2].map(|n| format!("{s}.{}", quote_ident(&c.names[n])));
    let [c1, _] = [0, 1].map(|n| quote_ident(&c.columns[n]));
    let (v1, v2): (Vec<Option<String>>, Vec<Option<String>>) = c.rows.iter().cloned().unzip();
    tx.execute(&format!("INSERT INTO {a} SELECT * FROM unnest($1::text[], $2::text[])"), &[&v1, &v2]).map_err(err)?;
    tx.batch_execute(&format!("CREATE TABLE {b} (LIKE {a}); INSERT INTO {b} SELECT * FROM {a}")).map_err(err)?;
    let create_type: String = tx
        .query_one("SELECT pg_catalog.format('CREATE TYPE %s AS ENUM (%s)', $1::text, (SELECT pg_catalog.string_agg(pg_catalog.quote_literal(l), ', ') FROM pg_catalog.unnest($2::text[]) l))", &[&e, &c.labels])
        .map_err(err)?
        .get(0);
    tx.batch_execute(&create_type).map_err(err)?;

    let (fa, fb) = (fingerprint(tx, &a, &c.columns)?, fingerprint(tx, &b, &c.columns)?);
    if fa != fb || fa.0 != c.rows.len() as i64 {
        return Err(format!("a table and its copy fingerprint as {fa:?} and {fb:?}"));
    }
    let sigs: Vec<i64> = tx
        .simple_query(&data_sigs_sql(&[(&a, "r"), (&b, "r")]))
        .map_err(err)?
        .into_iter()
        .filter_map(|m| if let postgres::SimpleQueryMessage::Row(r) = m { data_sig(&r).map(|(_, d)| d.rows) } else { None })
        .collect();
    if sigs != [c.rows.len() as i64; 2] {
        return Err(format!("data signatures count {sigs:?}"));
    }
    if !c.rows.is_empty() {
        tx.batch_execute(&format!("SAVEPOINT changed; UPDATE {b} SET {c1} = coalesce({c1}, '') || 'x' WHERE ctid = (SELECT min(ctid) FROM {b})")).map_err(err)?;
        let changed = fingerprint(tx, &b, &c.columns)?;
        tx.batch_execute("ROLLBACK TO SAVEPOINT changed").map_err(err)?;
        if changed == fa {
            return Err("a changed row leaves the fingerprint as it was".into());
        }
    }
    Ok(())
}

/// After a batch: the whole snapshot names each object and fingerprints
/// each table like its copy.
fn whole(tx: &mut postgres::Transaction, batch: &[Case]) -> Result<(), String> {
    let snap = crate::snapshot::whole(tx, &SnapshotOptions::default()).map_err(err)?;
    let headers: std::collections::HashSet<&str> = snap.schema.lines().filter(|l| !l.starts_with(' ')).collect();
    for (i, c) in batch.iter().enumerate() {
        let s = server_ident(tx, &schema_of(i, c))?;
        let [a, b, e] = [0, 1, 2].map(|n| server_ident(tx, &c.names[n]).map(|x| format!("{s}.{x}")));
        let (a, b, e) = (a?, b?, e?);
        for header in [format!("table {a}"), format!("table {b}"), format!("type {e}")] {
            let header = header.replace('\n', "\\n");
            if !headers.contains(header.as_str()) {
                return Err(format!("the snapshot has no block {header:?}"));
            }
        }
        match (snap.tables.get(&a), snap.tables.get(&b)) {
            (Some(fa), Some(fb)) if fa.hash == fb.hash && fa.rows == c.rows.len() as i64 && fa.columns == c.columns => {}
            other => return Err(format!("fingerprints of {a} and {b}: {other:?}")),
        }
    }
    Ok(())
}

#[test]
fn snapshots_name_and_fingerprint_hostile_tables_and_types() {
    Bench { what: "snapshots", strategy: case(), per_tx: 50, setup, case: one, after: whole }.run();
}
