//! The probe statements of a change (docs/probes.md): what the old and the
//! new application version send, with literal values taken from a real row
//! of the table (so its checks and foreign keys hold), unique columns made
//! distinct, identity and generated columns left to the database. The old
//! version's statements are tried on the schema as it is now and a
//! statement that fails there is left out, with a note saying why.

use std::collections::BTreeMap;

use postgres::Client;

use super::learn::{probe_tx, try_statements};
use super::model::{Column, ConstraintKind, QName, Schema, Table};
use super::plan::Builder;
use super::sql::{comment, lit};
use crate::error::{db_err, Result};

/// A row of the table: its key and every column's value as text.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The primary key's columns and their literals.
    pub key: Vec<(String, String)>,
    pub values: BTreeMap<String, Option<String>>,
}

/// Types whose values are written without quotes.
fn numeric(ty: &str) -> bool {
    ["smallint", "integer", "bigint", "numeric", "real", "double precision"].iter().any(|n| ty == *n || ty.starts_with(&format!("{n}(")))
}

/// A value of column `c` as a literal.
pub fn literal(c: &Column, v: Option<&str>) -> String {
    match v {
        None => "NULL".into(),
        Some(v) if numeric(&c.type_sql) && v.parse::<f64>().is_ok_and(f64::is_finite) => v.to_string(),
        Some(v) => lit(v),
    }
}

/// A plausible literal of a type, for a table without rows.
pub fn typed_literal(schema: &Schema, c: &Column) -> Option<String> {
    if let Some(e) = c.enum_type.as_ref().and_then(|e| schema.enum_type(e)) {
        return e.labels.first().map(|l| lit(l));
    }
    let ty = c.type_sql.as_str();
    Some(match ty {
        _ if numeric(ty) => "1".into(),
        "text" | "citext" => "'probe'".into(),
        _ if ty.starts_with("character") => "'p'".into(),
        "boolean" => "true".into(),
        "date" => "'2026-01-05'".into(),
        _ if ty.starts_with("timestamp") => "'2026-01-05 10:00:00+00'".into(),
        "uuid" => "'00000000-0000-4000-8000-00000000beef'".into(),
        "json" | "jsonb" => "'{}'".into(),
        _ => return None,
    })
}

/// The first row of `t` by its key (`None` for an empty table).
pub fn sample(client: &mut Client, schema: &Schema, t: &Table) -> Result<Option<Sample>> {
    let cols: Vec<&Column> = t.columns.iter().collect();
    let select = cols.iter().map(|c| format!("{}::text", schema.ident(&c.name))).collect::<Vec<_>>().join(", ");
    let order = if t.primary_key.is_empty() { String::new() } else { format!(" ORDER BY {}", t.primary_key.iter().map(|k| schema.ident(k)).collect::<Vec<_>>().join(", ")) };
    let q = format!("SELECT {select} FROM {}{order} LIMIT 1", schema.qname(&t.name));
    let mut tx = probe_tx(client)?;
    let row = tx.query_opt(q.as_str(), &[]).map_err(db_err("reading a row for the probes"))?;
    let _ = tx.rollback();
    let Some(row) = row else { return Ok(None) };
    let values: BTreeMap<String, Option<String>> = cols.iter().enumerate().map(|(i, c)| (c.name.clone(), row.get::<_, Option<String>>(i))).collect();
    let key = t.primary_key.iter().filter_map(|k| t.find_column(k).map(|c| (k.clone(), literal(c, values.get(k).cloned().flatten().as_deref())))).collect();
    Ok(Some(Sample { key, values }))
}

/// The columns and values an application's INSERT writes: the sample's
/// values (or typed placeholders when the table is empty), without
/// identity, serial and generated columns, and with one column of every
/// unique key made distinct. `None` when no row can be made, noted in `b`.
pub fn insert_values(client: &mut Client, b: &mut Builder, schema: &Schema, t: &Table, sample: Option<&Sample>) -> Result<Option<Vec<(String, String)>>> {
    let table = schema.qname(&t.name);
    let mut none = |why: String| {
        b.note(format!("no probe INSERT into {table}: {why}"));
        Ok(None)
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for c in t.columns.iter().filter(|c| !c.generated && !c.sequence_backed()) {
        let v = match sample {
            Some(s) => literal(c, s.values.get(&c.name).cloned().flatten().as_deref()),
            None => match typed_literal(schema, c) {
                Some(v) => v,
                None if !c.not_null || c.default.is_some() => continue,
                None => return none(format!("no placeholder value for {} ({})", schema.ident(&c.name), c.type_sql)),
            },
        };
        out.push((c.name.clone(), v));
    }
    if let Err(why) = reference_rows(client, schema, t, &mut out)? {
        return none(why);
    }
    for idx in t.indexes.iter().filter(|i| i.unique) {
        if idx.columns.iter().any(|k| !out.iter().any(|(n, _)| n == k)) {
            continue; // a key column is left to the database (identity): distinct already
        }
        // A key of an empty table holds no value yet: a foreign key's
        // column keeps the row it names.
        if sample.is_none() && idx.columns.iter().any(|k| in_foreign_key(t, k)) {
            continue;
        }
        let Some(col) = idx.columns.iter().filter_map(|k| t.find_column(k)).find(|c| numeric(&c.type_sql) || c.type_sql == "text" || c.type_sql.starts_with("character") || c.type_sql == "uuid") else {
            return none(format!("no distinct value for the unique index {}", idx.name));
        };
        let q = if numeric(&col.type_sql) {
            format!("SELECT (coalesce(max({c}), 0) + 1000)::text FROM {}", schema.qname(&t.name), c = schema.ident(&col.name))
        } else if col.type_sql == "uuid" {
            "SELECT md5(random()::text)::uuid::text".to_string()
        } else {
            let v = out.iter().find(|(n, _)| n == &col.name).map(|(_, v)| v.clone()).unwrap_or_default();
            format!("SELECT 'probe-' || coalesce({v}::text, '')")
        };
        let mut tx = probe_tx(client)?;
        let fresh: String = tx.query_one(q.as_str(), &[]).map_err(db_err("making a distinct probe value"))?.get(0);
        let _ = tx.rollback();
        let value = literal(col, Some(&fresh));
        if let Some(slot) = out.iter_mut().find(|(n, _)| n == &col.name) {
            slot.1 = value;
        }
    }
    Ok(Some(out))
}

/// A value for column `i` of a foreign key to `cols` of `target` that
/// names a row of it when the probe runs: its first key, as a subquery
/// (`(SELECT id FROM accounts ORDER BY id LIMIT 1)`); every column of one
/// key reads the same row.
pub fn referenced(schema: &Schema, target: &QName, cols: &[String], i: usize) -> String {
    let order = cols.iter().map(|c| schema.ident(c)).collect::<Vec<_>>().join(", ");
    format!("(SELECT {} FROM {} ORDER BY {order} LIMIT 1)", schema.ident(&cols[i]), schema.qname(target))
}

/// The foreign key columns of `t` among `out`, given values that name a
/// row of the referenced table wherever the probe runs: a typed
/// placeholder (a table without rows) would point at nothing (`1` names no
/// account), and a live database's row names one the rehearsal's seed may
/// not hold. A NULL (a nullable key) stays. `Err` says why no INSERT can
/// succeed: a required key references a table without rows.
fn reference_rows(client: &mut Client, schema: &Schema, t: &Table, out: &mut [(String, String)]) -> Result<std::result::Result<(), String>> {
    for fk in t.constraints.iter().filter(|c| c.kind == ConstraintKind::ForeignKey) {
        let Some((target, cols)) = &fk.references else { continue };
        if cols.len() != fk.columns.len() || !fk.columns.iter().any(|c| out.iter().any(|(n, _)| n == c)) {
            continue;
        }
        let required = fk.columns.iter().filter_map(|k| t.find_column(k)).any(|c| c.not_null);
        let mut tx = probe_tx(client)?;
        let rows: bool = tx.query_one(format!("SELECT EXISTS (SELECT 1 FROM {})", schema.qname(target)).as_str(), &[]).map_err(db_err("reading a referenced table for the probes"))?.get(0);
        let _ = tx.rollback();
        if !rows && required {
            let cols = fk.columns.iter().map(|c| schema.ident(c)).collect::<Vec<_>>().join(", ");
            return Ok(Err(format!("{cols} must name a row of {}, which has none (seed rows there give the probes one)", schema.qname(target))));
        }
        for (i, name) in fk.columns.iter().enumerate() {
            if let Some(slot) = out.iter_mut().find(|(n, v)| n == name && v != "NULL") {
                slot.1 = if rows { referenced(schema, target, cols, i) } else { "NULL".into() };
            }
        }
    }
    Ok(Ok(()))
}

/// Whether `col` of `t` is a foreign key's column.
fn in_foreign_key(t: &Table, col: &str) -> bool {
    t.constraints.iter().any(|c| c.kind == ConstraintKind::ForeignKey && c.columns.iter().any(|k| k == col))
}

/// `SELECT cols FROM t WHERE key` (the first row when the table has no key).
pub fn select(schema: &Schema, t: &Table, cols: &[String], key: &[(String, String)]) -> String {
    let list = cols.iter().map(|c| schema.ident(c)).collect::<Vec<_>>().join(", ");
    format!("SELECT {list} FROM {}{}", schema.qname(&t.name), where_key(schema, key, " LIMIT 1"))
}

pub fn insert(schema: &Schema, t: &Table, values: &[(String, String)]) -> String {
    let cols = values.iter().map(|(c, _)| schema.ident(c)).collect::<Vec<_>>().join(", ");
    let vals = values.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>().join(", ");
    format!("INSERT INTO {} ({cols}) VALUES ({vals})", schema.qname(&t.name))
}

/// `UPDATE t SET ... WHERE key`; `None` for a table without a key (an
/// application updates rows by key).
pub fn update(schema: &Schema, t: &Table, set: &[(String, String)], key: &[(String, String)]) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let sets = set.iter().map(|(c, v)| format!("{} = {v}", schema.ident(c))).collect::<Vec<_>>().join(", ");
    Some(format!("UPDATE {} SET {sets}{}", schema.qname(&t.name), where_key(schema, key, "")))
}

fn where_key(schema: &Schema, key: &[(String, String)], none: &str) -> String {
    if key.is_empty() {
        return none.to_string();
    }
    format!(" WHERE {}", key.iter().map(|(c, v)| format!("{} = {v}", schema.ident(c))).collect::<Vec<_>>().join(" AND "))
}

pub use super::plan::Version;

/// Writes a probe file for `version` into the change. The old version's
/// statements are tried first on the database as it is (they must work
/// there today); one that fails is left out and noted.
pub fn add(b: &mut Builder, client: &mut Client, version: Version, statements: Vec<String>, from: u32, until: Option<u32>) -> Result<()> {
    let statements: Vec<String> = statements.into_iter().filter(|s| !s.is_empty()).collect();
    let mut kept = Vec::new();
    let mut left_out = Vec::new();
    if version == Version::Old {
        for (s, err) in statements.iter().zip(try_statements(client, &statements)?) {
            match err {
                None => kept.push(s.clone()),
                Some(e) => left_out.push(format!("{s} (fails on the schema today: {e})")),
            }
        }
    } else {
        kept = statements;
    }
    let who = match version {
        Version::Old => "before",
        Version::New => "after",
    };
    let which = version.suffix();
    let range = match until {
        Some(u) => format!("phases {from} to {u}"),
        None => format!("phase {from} and every later phase"),
    };
    let mut text = comment(&format!(
        "What the application version {who} `{}` sends (docs/probes.md): reads and writes of the changed table with literal values from one of its rows. phases.toml declares that it must work after {range}; verify runs it there inside a savepoint that is rolled back.",
        b.title
    ));
    for s in &left_out {
        text.push_str(&comment(&format!("Left out: {s}")));
        b.note(format!("probes/{}_{which}.sql: left out {s}", b.slug));
    }
    if kept.is_empty() {
        kept.push("SELECT 1".into());
    }
    for s in &kept {
        text.push_str(s);
        text.push_str(";\n");
    }
    b.probe(version, text, from, until);
    Ok(())
}

/// The statements of one application version: read `read` by key, insert
/// a row (when one can be made), update `update` by key.
pub fn statements(s: &Schema, t: &Table, key: &[(String, String)], read: &[String], insert_row: Option<&[(String, String)]>, update_set: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut cols: Vec<String> = t.primary_key.clone();
    cols.extend(read.iter().filter(|c| !t.primary_key.contains(c)).cloned());
    out.push(select(s, t, &cols, key));
    if let Some(row) = insert_row {
        out.push(insert(s, t, row));
    }
    if !update_set.is_empty() {
        out.extend(update(s, t, update_set, key));
    }
    out
}
