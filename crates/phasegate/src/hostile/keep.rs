//! Keep and recover with hostile names and values, one of two migrations
//! per case: one drops an enum type with generated labels with the enum
//! and text columns of a table, the other drops a table whose `bigserial`
//! key has a sequence (named by PostgreSQL after the generated names).
//! `keep` records them, the migration runs,
//! `recovery_plan(...).run` brings everything back: the labels in their
//! order, every value, every row, the sequence where it was. The plan's
//! `CREATE TYPE` as shown to people is the statement the server quotes.

use proptest::prelude::*;

use super::{case_schema, distinct, err, ident, nothing_after, text, Bench};
use crate::backup::{self, Kept, Stage};
use crate::pg::{quote_ident, MAX_IDENT_BYTES};

#[derive(Debug, Clone)]
struct Case {
    schema: String,
    /// The enum, the table, the dropped table, an index and a constraint on
    /// the dropped text column.
    names: Vec<String>,
    /// The dropped text column's default (and what its constraint names).
    default: String,
    /// Key, enum column, text column (the table); key, value (the dropped table).
    columns: Vec<String>,
    labels: Vec<String>,
    /// (label index, text) per row of the table.
    rows: Vec<(usize, Option<String>)>,
    values: Vec<Option<String>>,
    /// Drop the second table (else the enum and the columns).
    drop_table: bool,
}

/// An enum label: 1 to 63 bytes.
fn label() -> impl Strategy<Value = String> {
    text(10).prop_map(|t| {
        let t = crate::pg::clip_bytes(&t, MAX_IDENT_BYTES).to_string();
        if t.is_empty() {
            "'".to_string()
        } else {
            t
        }
    })
}

fn case() -> impl Strategy<Value = Case> {
    (
        (ident(), text(12)),
        prop::collection::vec(ident(), 5),
        prop::collection::vec(ident(), 5),
        prop::collection::vec(label(), 1..5),
        prop::collection::vec((0usize..4, prop::option::weighted(0.9, text(12))), 0..5),
        prop::collection::vec(prop::option::weighted(0.9, text(12)), 0..4),
        any::<bool>(),
    )
        .prop_map(|((schema, default), mut names, mut columns, mut labels, rows, values, drop_table)| {
            distinct(&mut names);
            distinct(&mut columns[..3]);
            distinct(&mut columns[3..]);
            let mut seen = Vec::new();
            labels.retain(|l| !seen.contains(l) && {
                seen.push(l.clone());
                true
            });
            let rows = rows.into_iter().map(|(l, v)| (l % labels.len(), v)).collect();
            Case { schema, names, default, columns, labels, rows, values, drop_table }
        })
}

/// The case's schema, its type, table and dropped table, and their columns.
fn names(i: usize, c: &Case) -> (String, [String; 3], [String; 5]) {
    let s = case_schema(&c.schema, i);
    let objects = [0, 1, 2].map(|n| format!("{s}.{}", quote_ident(&c.names[n])));
    (s, objects, [0, 1, 2, 3, 4].map(|n| quote_ident(&c.columns[n])))
}


fn setup(i: usize, c: &Case) -> String {
    let (s, [_, table, dropped], [k, e, t, dk, dv]) = names(i, c);
    if c.drop_table {
        format!("CREATE SCHEMA {s}; CREATE TABLE {dropped} ({dk} bigserial PRIMARY KEY, {dv} text)")
    } else {
        let (index, constraint, default) = (quote_ident(&c.names[3]), quote_ident(&c.names[4]), crate::pg::quote_literal(&c.default));
        format!(
            "CREATE SCHEMA {s}; CREATE TABLE {table} ({k} int PRIMARY KEY, {e} text,
               {t} text DEFAULT {default} CONSTRAINT {constraint} CHECK (length({t}) >= 0 OR {t} = {default} || 'x'));
             CREATE INDEX {index} ON {table} ({t})"
        )
    }
}

/// What a case's objects hold: enum labels and the table's rows, or the
/// dropped table's rows and its sequence's position.
#[derive(Debug, PartialEq)]
enum State {
    /// Labels, rows, and the text column's default, constraints and indexes.
    Columns(Vec<String>, Vec<(i32, String, Option<String>)>, Option<String>, Vec<String>),
    Table(Vec<(i64, Option<String>)>, (i64, bool)),
}

fn one(tx: &mut postgres::Transaction, i: usize, c: &Case) -> Result<(), String> {
    let (_, [ty, table, dropped], [k, e, t, dk, dv]) = names(i, c);
    let sql = if c.drop_table {
        // Keys from the sequence, so it has a position recover must set back.
        tx.execute(&format!("INSERT INTO {dropped} ({dv}) SELECT * FROM unnest($1::text[])"), &[&c.values]).map_err(err)?;
        format!("DROP TABLE {dropped};")
    } else {
        let create_type: String = tx
            .query_one("SELECT pg_catalog.format('CREATE TYPE %s AS ENUM (%s)', $1::text, (SELECT pg_catalog.string_agg(pg_catalog.quote_literal(l), ', ') FROM pg_catalog.unnest($2::text[]) l))", &[&ty, &c.labels])
            .map_err(err)?
            .get(0);
        tx.batch_execute(&format!("{create_type}; ALTER TABLE {table} ALTER COLUMN {e} TYPE {ty} USING {e}::{ty}")).map_err(err)?;
        let keys: Vec<i32> = (1..=c.rows.len() as i32).collect();
        let moods: Vec<&str> = c.rows.iter().map(|(l, _)| c.labels[*l].as_str()).collect();
        let texts: Vec<Option<String>> = c.rows.iter().map(|(_, v)| v.clone()).collect();
        tx.execute(&format!("INSERT INTO {table} SELECT k, m::{ty}, v FROM unnest($1::int[], $2::text[], $3::text[]) AS u(k, m, v)"), &[&keys, &moods, &texts]).map_err(err)?;
        format!("ALTER TABLE {table} DROP COLUMN {e}, DROP COLUMN {t};\nDROP TYPE {ty};")
    };
    let read = |tx: &mut postgres::Transaction| -> Result<State, String> {
        if c.drop_table {
            let rows = tx.query(&format!("SELECT {dk}, {dv} FROM {dropped} ORDER BY 1"), &[]).map_err(err)?.iter().map(|r| (r.get(0), r.get(1))).collect();
            let seq: String = tx.query_one("SELECT pg_catalog.pg_get_serial_sequence($1, $2)", &[&dropped, &c.columns[3]]).map_err(err)?.get(0);
            let at = tx.query_one(&format!("SELECT last_value, is_called FROM {seq}"), &[]).map_err(err)?;
            return Ok(State::Table(rows, (at.get(0), at.get(1))));
        }
        let labels: Vec<String> = tx.query_one("SELECT coalesce(array_agg(enumlabel::text ORDER BY enumsortorder), '{}') FROM pg_enum WHERE enumtypid = $1::text::regtype", &[&ty]).map_err(err)?.get(0);
        let rows = tx.query(&format!("SELECT {k}, {e}::text, {t} FROM {table} ORDER BY 1"), &[]).map_err(err)?.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
        let defs = tx
            .query_one(
                "SELECT (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
                         WHERE d.adrelid = $1::text::regclass AND a.attname = $2),
                        ARRAY(SELECT conname::text || ' ' || pg_catalog.pg_get_constraintdef(oid) FROM pg_catalog.pg_constraint WHERE conrelid = $1::text::regclass
                              UNION ALL SELECT pg_catalog.pg_get_indexdef(indexrelid) FROM pg_catalog.pg_index WHERE indrelid = $1::text::regclass ORDER BY 1)",
                &[&table, &c.columns[2]],
            )
            .map_err(err)?;
        Ok(State::Columns(labels, rows, defs.get(0), defs.get(1)))
    };
    let before = read(tx)?;

    let size = backup::measure(tx, &sql).map_err(err)?;
    let rows = if c.drop_table { c.values.len() } else { c.rows.len() };
    if size.rows != rows as i64 {
        return Err(format!("measured {} rows to keep, not {rows}", size.rows));
    }
    let run = uuid::Uuid::new_v4().to_string();
    let kept = backup::keep(tx, &run, 1, &sql).map_err(err)?;
    if let Some(u) = kept.kept.iter().find(|k| matches!(k, Kept::Unkept { .. })) {
        return Err(format!("not kept: {}", u.describe()));
    }
    tx.batch_execute(&sql).map_err(err)?;
    let plan = backup::recovery_plan(&[(1, kept.kept.clone())]);
    // The plan shown to people says what the server runs.
    if let Some(Kept::Enum { name, labels }) = kept.kept.iter().find(|k| matches!(k, Kept::Enum { .. })) {
        let shown = plan.statements.iter().find(|p| p.stage == Stage::Create && p.sql.starts_with("CREATE TYPE")).map(|p| p.sql.clone());
        let runs = backup::create_enum_sql(tx, name, labels).map_err(err)?;
        if shown.as_deref() != Some(runs.as_str()) {
            return Err(format!("the plan shows {shown:?}, the server runs {runs:?}"));
        }
    } else if !c.drop_table {
        return Err(format!("the enum was not kept: {:?}", kept.kept));
    }
    plan.run(tx).map_err(err)?;
    let after = read(tx)?;
    if after != before {
        return Err(format!("recovered {after:?}, had {before:?}"));
    }
    // Forgetting what was kept drops its backup tables.
    backup::discard(tx, &run, 1).map_err(err)?;
    let left: i64 = tx
        .query_one("SELECT count(*) FROM pg_catalog.unnest($1::text[]) AS b WHERE pg_catalog.to_regclass(b) IS NOT NULL", &[&kept.backups.iter().map(|b| b.backup_table.clone()).collect::<Vec<_>>()])
        .map_err(err)?
        .get(0);
    if left != 0 {
        return Err(format!("{left} kept backup table(s) left after discard"));
    }
    Ok(())
}

#[test]
fn keep_and_recover_round_trip_hostile_names_labels_and_values() {
    Bench { what: "keep and recover", strategy: case(), per_tx: 5, setup, case: one, after: nothing_after }.run();
}
