//! Backups and restore with hostile names and values: a table (in a schema
//! of its own, both named by the generator, with a `bigserial` key whose
//! sequence PostgreSQL names after them) is changed by a "rollback" that
//! updates and deletes rows, or truncates it; `backup::targets` reads it,
//! `Session::prepare` / `finish` back up what it changes, `restore` puts
//! it back. Every row comes back exactly and the key's sequence has moved
//! past the rows restored.

use std::path::Path;

use proptest::prelude::*;

use super::{case_schema, distinct, err, ident, nothing_after, text, Bench};
use crate::backup::{self, Session};
use crate::pg::quote_ident;

#[derive(Debug, Clone)]
struct Case {
    schema: String,
    table: String,
    /// Key, then two text columns.
    columns: Vec<String>,
    rows: Vec<(Option<String>, Option<String>)>,
    truncate: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (ident(), ident(), prop::collection::vec(ident(), 3), prop::collection::vec((prop::option::weighted(0.9, text(12)), prop::option::weighted(0.9, text(12))), 1..6), prop::bool::weighted(0.25))
        .prop_map(|(schema, table, mut columns, rows, truncate)| {
            distinct(&mut columns);
            Case { schema, table, columns, rows, truncate }
        })
}

type Row = (i64, Option<String>, Option<String>);

fn rows(tx: &mut postgres::Transaction, table: &str, c: &[String]) -> Result<Vec<Row>, String> {
    let sql = format!("SELECT {k}, {a}, {b} FROM {table} ORDER BY 1", k = quote_ident(&c[0]), a = quote_ident(&c[1]), b = quote_ident(&c[2]));
    Ok(tx.query(&sql, &[]).map_err(err)?.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// The case's table, quoted, and its columns.
fn names(i: usize, c: &Case) -> (String, String, String, String) {
    let table = format!("{}.{}", case_schema(&c.schema, i), quote_ident(&c.table));
    let [k, a, b] = [&c.columns[0], &c.columns[1], &c.columns[2]].map(|n| quote_ident(n));
    (table, k, a, b)
}

fn setup(i: usize, c: &Case) -> String {
    let (table, k, a, b) = names(i, c);
    format!("CREATE SCHEMA {}; CREATE TABLE {table} ({k} bigserial PRIMARY KEY, {a} text, {b} text)", case_schema(&c.schema, i))
}

fn one(tx: &mut postgres::Transaction, i: usize, c: &Case) -> Result<(), String> {
    let (table, k, a, b) = names(i, c);
    let keys: Vec<i64> = (1..=c.rows.len() as i64).collect();
    let (va, vb): (Vec<Option<String>>, Vec<Option<String>>) = c.rows.iter().cloned().unzip();
    tx.execute(&format!("INSERT INTO {table} ({k}, {a}, {b}) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])"), &[&keys, &va, &vb]).map_err(err)?;
    let before = rows(tx, &table, &c.columns)?;

    let sql = if c.truncate {
        format!("TRUNCATE {table};")
    } else {
        format!("UPDATE {table} SET {a} = {b}, {b} = NULL WHERE {k} % 2 = 1;\nDELETE FROM {table} WHERE {k} % 3 <> 1;")
    };
    let targets = backup::targets(&sql);
    if targets.first().map(|t| &t.table) != Some(&table) {
        return Err(format!("targets read {:?} from {sql}", targets));
    }
    let run = uuid::Uuid::new_v4().to_string();
    let session = Session::prepare(tx, &run, 1, Path::new("hostile.sql"), &targets, false).map_err(err)?;
    tx.batch_execute(&sql).map_err(err)?;
    let saved = session.finish(tx, &run).map_err(err)?;
    let short: String = run.chars().filter(|c| *c != '-').take(8).collect();
    if saved.iter().any(|s| !s.backup_table.trim_end_matches('"').ends_with(&short)) {
        return Err(format!("a backup lost its run's suffix: {saved:?}"));
    }

    let (_, stored) = backup::of_run(tx, &run).map_err(err)?;
    let restored = backup::restore_rows(tx, &stored, &uuid::Uuid::new_v4().to_string()).map_err(err)?;
    let after = rows(tx, &table, &c.columns)?;
    if after != before {
        return Err(format!("restored {after:?}, had {before:?}"));
    }
    // Rows inserted again move the key's sequence past them.
    if restored.iter().any(|r| r.inserted > 0) {
        let next: i64 = tx.query_one("SELECT pg_catalog.nextval(pg_catalog.pg_get_serial_sequence($1, $2))", &[&table, &c.columns[0]]).map_err(err)?.get(0);
        let max = before.last().map_or(0, |r| r.0);
        if next <= max {
            return Err(format!("the key's sequence gives {next}, not past the restored key {max}"));
        }
    }
    Ok(())
}

#[test]
fn backups_and_restore_round_trip_hostile_names_and_values() {
    Bench { what: "backups and restore", strategy: case(), per_tx: 5, setup, case: one, after: nothing_after }.run();
}
