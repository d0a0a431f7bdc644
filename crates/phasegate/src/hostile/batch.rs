//! Batch keys of every kind handed from batch to batch: hostile text,
//! text that looks like numbers, bigint, numeric, uuid and a named
//! composite type holding hostile text, each walked with the statement a
//! batched file holds (`:last_key`, `:batch_size`, optionally `::text`) by
//! the builders `run_batches` uses (`key_type`, `keyset_sql`, `KeyText`):
//! every row is done exactly once, in as many batches as it takes.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::{case_schema, err, ident, nothing_after, text, Bench};
use crate::apply::{key_type, keyset_sql, KeyText};
use crate::pg::quote_ident;

#[derive(Debug, Clone)]
enum Keys {
    /// Hostile text; `cast` writes `:last_key::text`.
    Text { keys: BTreeSet<String>, cast: bool },
    /// Text such as `00010`, `1e3`, ` 7`.
    Digits(BTreeSet<String>),
    Bigint(BTreeSet<i64>),
    /// Mantissas and a scale.
    Numeric(BTreeSet<i64>, u32),
    Uuid(BTreeSet<u128>),
    /// `(a int, b text)` in a type of the case's schema.
    Pair(BTreeSet<(i16, String)>),
}

#[derive(Debug, Clone)]
struct Case {
    schema: String,
    table: String,
    keys: Keys,
    batch: u64,
}

fn digits() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..100_000, 1usize..7).prop_map(|(n, w)| format!("{n:0w$}")),
        prop::sample::select(vec!["1e3", "-1", " 7", "0x1F", "NaN", "Infinity", "1.50", "+3", "٣", "00010", "10", "9"]).prop_map(str::to_string),
    ]
}

fn keys() -> impl Strategy<Value = Keys> {
    prop_oneof![
        3 => (prop::collection::btree_set(text(8), 1..8), any::<bool>()).prop_map(|(keys, cast)| Keys::Text { keys, cast }),
        2 => prop::collection::btree_set(digits(), 1..8).prop_map(Keys::Digits),
        1 => prop::collection::btree_set(any::<i64>(), 1..8).prop_map(Keys::Bigint),
        1 => (prop::collection::btree_set(-1_000_000_000i64..1_000_000_000, 1..8), 0u32..6).prop_map(|(m, s)| Keys::Numeric(m, s)),
        1 => prop::collection::btree_set(any::<u128>(), 1..8).prop_map(Keys::Uuid),
        2 => prop::collection::btree_set((-3i16..3, text(6)), 1..8).prop_map(Keys::Pair),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (ident(), ident(), keys(), 1u64..4).prop_map(|(schema, table, keys, batch)| Case { schema, table, keys, batch })
}

/// A numeric's text from its mantissa and scale.
fn decimal(m: i64, scale: u32) -> String {
    let digits = format!("{:0width$}", m.unsigned_abs(), width = scale as usize + 1);
    let (int, frac) = digits.split_at(digits.len() - scale as usize);
    let sign = if m < 0 { "-" } else { "" };
    if scale == 0 {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

/// The case's table and the type of its key column.
fn names(i: usize, c: &Case) -> (String, String) {
    let s = case_schema(&c.schema, i);
    let column = match c.keys {
        Keys::Text { .. } | Keys::Digits(_) => "text".to_string(),
        Keys::Bigint(_) => "bigint".into(),
        Keys::Numeric(..) => "numeric".into(),
        Keys::Uuid(_) => "uuid".into(),
        Keys::Pair(_) => format!("{s}.pair"),
    };
    (format!("{s}.{}", quote_ident(&c.table)), column)
}

fn setup(i: usize, c: &Case) -> String {
    let s = case_schema(&c.schema, i);
    let (table, column) = names(i, c);
    let pair = if matches!(c.keys, Keys::Pair(_)) { format!("CREATE TYPE {column} AS (a int, b text);") } else { String::new() };
    format!("CREATE SCHEMA {s}; {pair} CREATE TABLE {table} (k {column} PRIMARY KEY, done bool NOT NULL DEFAULT false)")
}

fn one(tx: &mut postgres::Transaction, i: usize, c: &Case) -> Result<(), String> {
    let (table, column) = names(i, c);
    let key = "k";
    // The keys as text, and a cast after :last_key.
    let (values, cast): (Vec<String>, &str) = match &c.keys {
        Keys::Text { keys, cast } => (keys.iter().cloned().collect(), if *cast { "::text" } else { "" }),
        Keys::Digits(keys) => (keys.iter().cloned().collect(), ""),
        Keys::Bigint(keys) => (keys.iter().map(i64::to_string).collect(), ""),
        Keys::Numeric(keys, scale) => (keys.iter().map(|m| decimal(*m, *scale)).collect(), ""),
        Keys::Uuid(keys) => (keys.iter().map(|u| uuid::Uuid::from_u128(*u).to_string()).collect(), ""),
        Keys::Pair(keys) => (keys.iter().map(|(a, b)| format!("({a},\"{}\")", b.replace('\\', "\\\\").replace('"', "\\\""))).collect(), ""),
    };
    tx.execute(&format!("INSERT INTO {table} (k) SELECT v::{column} FROM unnest($1::text[]) AS v"), &[&values]).map_err(err)?;

    let template = format!(
        "UPDATE {table} SET done = true WHERE {key} IN (\n  SELECT {key} FROM {table} WHERE (:last_key{cast} IS NULL OR {key} > :last_key{cast}) AND NOT done\n  ORDER BY {key} LIMIT :batch_size)\nRETURNING {key}"
    );
    let ty = key_type_of(tx, &template, c.batch)?;
    let q = keyset_sql(&template, c.batch);
    let (mut last, mut done, mut batches) = (None::<String>, 0u64, 0usize);
    loop {
        let row = tx.query_typed_one(&q, &[(&KeyText(last.as_deref()), ty.clone())]).map_err(|e| format!("{} after key {last:?}", crate::error::pg_message(&e)))?;
        let (n, next): (i64, Option<String>) = (row.get(0), row.get(1));
        if n == 0 {
            break;
        }
        done += n as u64;
        last = next;
        batches += 1;
        if batches > values.len() + 1 {
            return Err(format!("the walk does not end: {batches} batches for {} keys", values.len()));
        }
    }
    let all: i64 = tx.query_one(&format!("SELECT count(*) FILTER (WHERE done) FROM {table}"), &[]).map_err(err)?.get(0);
    if done != values.len() as u64 || all != values.len() as i64 {
        return Err(format!("walked {done} rows, {all} done, of {} keys", values.len()));
    }
    Ok(())
}

fn key_type_of(tx: &mut postgres::Transaction, template: &str, batch: u64) -> Result<postgres::types::Type, String> {
    match key_type(tx, template, batch) {
        Ok(Ok(ty)) => Ok(ty),
        Ok(Err(name)) => Err(format!("key type {name} refused")),
        Err(e) => Err(crate::error::pg_message(&e)),
    }
}

#[test]
fn batch_keys_of_every_kind_walk_every_row_once() {
    Bench { what: "batch keys", strategy: case(), per_tx: 20, setup, case: one, after: nothing_after }.run();
}

#[test]
fn decimals_are_written_from_mantissa_and_scale() {
    assert_eq!(decimal(150, 2), "1.50");
    assert_eq!(decimal(-5, 3), "-0.005");
    assert_eq!(decimal(42, 0), "42");
}
