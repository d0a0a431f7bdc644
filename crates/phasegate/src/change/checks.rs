//! The catalog questions generated validations ask: is a column there (with
//! its type and nullability), a trigger enabled, a constraint validated, an
//! index valid; and the data questions of a backfill: the share of rows
//! not done yet and the rows where the old and new representations
//! disagree.

use super::model::{Schema, Table};
use super::sql::{lit, Check, Checks, Moment};

/// Column `col` of `t` exists; `type_sql` and `not_null` pin its type and
/// nullability when given.
pub fn column_present(v: &mut Checks, s: &Schema, t: &Table, col: &str, type_sql: Option<&str>, not_null: Option<bool>, name: &str) {
    let ty = type_sql.map(|ty| format!("\n    AND format_type(atttypid, atttypmod) = {}", lit(ty))).unwrap_or_default();
    let nn = match not_null {
        Some(true) => "\n    AND attnotnull",
        Some(false) => "\n    AND NOT attnotnull",
        None => "",
    };
    let what = format!(
        "{}{}{}",
        s.show(t, col),
        type_sql.map(|ty| format!(" is {ty}")).unwrap_or_default(),
        match not_null {
            Some(true) => ", NOT NULL",
            Some(false) => ", nullable",
            None => "",
        }
    );
    v.assert(
        name,
        Moment::AfterMigrate,
        &format!("{what} (returns it when not so)"),
        &format!(
            "SELECT {} AS column_name\nWHERE NOT EXISTS (\n  SELECT 1 FROM pg_attribute\n  WHERE attrelid = {} AND attname = {} AND NOT attisdropped{ty}{nn})",
            lit(&s.show(t, col)),
            s.regclass(t),
            lit(col)
        ),
    );
}

/// Column `col` of `t` is gone (at `when`).
pub fn column_absent(v: &mut Checks, s: &Schema, t: &Table, col: &str, when: Moment, name: &str) {
    v.assert(
        name,
        when,
        &format!("{} is gone", s.show(t, col)),
        &format!("SELECT attname AS still_exists\nFROM pg_attribute\nWHERE attrelid = {} AND attname = {} AND NOT attisdropped", s.regclass(t), lit(col)),
    );
}

/// Column `col` is (or is not) NOT NULL, at `when`.
pub fn nullability(v: &mut Checks, s: &Schema, t: &Table, col: &str, not_null: bool, when: Moment, name: &str) {
    v.assert(
        name,
        when,
        &format!("{} is {}", s.show(t, col), if not_null { "NOT NULL" } else { "nullable" }),
        &format!(
            "SELECT attname, attnotnull\nFROM pg_attribute\nWHERE attrelid = {} AND attname = {} AND NOT attisdropped AND attnotnull IS DISTINCT FROM {not_null}",
            s.regclass(t),
            lit(col)
        ),
    );
}

/// Column `col` has (or has no) default, at `when`.
pub fn has_default(v: &mut Checks, s: &Schema, t: &Table, col: &str, has: bool, when: Moment, name: &str) {
    let (cond, what) = if has { ("d.oid IS NULL", "has a default") } else { ("d.oid IS NOT NULL", "has no default") };
    v.assert(
        name,
        when,
        &format!("{} {what}", s.show(t, col)),
        &format!(
            "SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) AS default_expression\nFROM pg_attribute a\nLEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum\nWHERE a.attrelid = {} AND a.attname = {} AND NOT a.attisdropped AND {cond}",
            s.regclass(t),
            lit(col)
        ),
    );
}

/// Trigger `trigger` on `t` exists and is enabled (at `when`).
pub fn trigger_enabled(v: &mut Checks, s: &Schema, t: &Table, trigger: &str, when: Moment, name: &str) {
    v.assert(
        name,
        when,
        &format!("the sync trigger {trigger} on {} is in place and enabled", s.qname(&t.name)),
        &format!(
            "SELECT {} AS missing_trigger\nWHERE NOT EXISTS (\n  SELECT 1 FROM pg_trigger\n  WHERE tgrelid = {} AND tgname = {} AND tgenabled = 'O')",
            lit(trigger),
            s.regclass(t),
            lit(trigger)
        ),
    );
}

/// Trigger `trigger` on `t` and function `function` (a signature like
/// `f()`) are gone, at `when`.
pub fn trigger_absent(v: &mut Checks, s: &Schema, t: &Table, trigger: &str, function: &str, when: Moment, name: &str) {
    v.assert(
        name,
        when,
        &format!("the trigger {trigger} and its function {function} are gone"),
        &format!(
            "SELECT 'trigger ' || tgname AS still_exists FROM pg_trigger WHERE tgrelid = {} AND tgname = {}\nUNION ALL\nSELECT 'function ' || {} WHERE to_regprocedure({}) IS NOT NULL",
            s.regclass(t),
            lit(trigger),
            lit(function),
            lit(function)
        ),
    );
}

/// Constraint `constraint` of `t` exists (and, when `validated`, is), at `when`.
pub fn constraint_present(v: &mut Checks, s: &Schema, t: &Table, constraint: &str, validated: bool, when: Moment, name: &str) {
    v.push(constraint_exists(s, t, constraint, validated, name).at(when));
}

/// The check that constraint `constraint` of `t` exists (and is validated).
pub fn constraint_exists(s: &Schema, t: &Table, constraint: &str, validated: bool, name: &str) -> Check {
    let cond = if validated { " AND convalidated" } else { "" };
    Check::rows(
        name,
        &format!("constraint {constraint} on {} exists{}", s.qname(&t.name), if validated { " and is validated" } else { "" }),
        &format!(
            "SELECT {} AS missing_constraint\nWHERE NOT EXISTS (\n  SELECT 1 FROM pg_constraint\n  WHERE conrelid = {} AND conname = {}{cond})",
            lit(constraint),
            s.regclass(t),
            lit(constraint)
        ),
    )
}

/// The helper check `constraint` (`CHECK (col IS NOT NULL)`, added NOT
/// VALID) exists, or `col` is NOT NULL already: the next migration of the
/// phase replaces the check by the column's own NOT NULL, and this check
/// must hold after it too (`status` and `validate` run a phase's checks
/// together once the phase is applied).
pub fn not_null_helper_present(v: &mut Checks, s: &Schema, t: &Table, constraint: &str, col: &str, when: Moment, name: &str) {
    v.assert(
        name,
        when,
        &format!("constraint {constraint} on {} exists, or {} is NOT NULL already (the next migration replaces the one by the other)", s.qname(&t.name), s.show(t, col)),
        &format!(
            "SELECT {} AS missing_constraint\nWHERE NOT EXISTS (\n  SELECT 1 FROM pg_constraint\n  WHERE conrelid = {} AND conname = {})\n  AND NOT EXISTS (\n  SELECT 1 FROM pg_attribute\n  WHERE attrelid = {} AND attname = {} AND NOT attisdropped AND attnotnull)",
            lit(constraint),
            s.regclass(t),
            lit(constraint),
            s.regclass(t),
            lit(col)
        ),
    );
}

/// Constraint `constraint` of `t` is gone, at `when`.
pub fn constraint_absent(v: &mut Checks, s: &Schema, t: &Table, constraint: &str, when: Moment, name: &str) {
    v.assert(
        name,
        when,
        &format!("constraint {constraint} on {} is gone", s.qname(&t.name)),
        &format!("SELECT conname AS still_exists\nFROM pg_constraint\nWHERE conrelid = {} AND conname = {}", s.regclass(t), lit(constraint)),
    );
}

/// Index `index` (in the table's schema) exists and is valid; at `when`.
pub fn index_valid(v: &mut Checks, s: &Schema, t: &Table, index: &str, when: Moment, name: &str) {
    let q = s.qname(&super::model::QName { schema: t.name.schema.clone(), name: index.to_string() });
    v.assert(
        name,
        when,
        &format!("index {index} exists and is valid (a failed CONCURRENTLY build leaves it invalid)"),
        &format!("SELECT {} AS missing_index\nWHERE NOT EXISTS (\n  SELECT 1 FROM pg_index WHERE indexrelid = to_regclass({}) AND indisvalid)", lit(index), lit(&q)),
    );
}

/// Index `index` is gone, at `when`.
pub fn index_absent(v: &mut Checks, s: &Schema, t: &Table, index: &str, when: Moment, name: &str) {
    let q = s.qname(&super::model::QName { schema: t.name.schema.clone(), name: index.to_string() });
    v.assert(name, when, &format!("index {index} is gone"), &format!("SELECT {} AS still_exists\nWHERE to_regclass({}) IS NOT NULL", lit(index), lit(&q)));
}

/// The share of rows still to do (`pending` over the row, bare column
/// names): PROCEED at 0, REVIEW up to 1%, else ROLLBACK; no rows, nothing
/// to measure.
pub fn pending_percent(v: &mut Checks, s: &Schema, t: &Table, pending: &str, what: &str, name: &str) {
    v.push(Check::metric(
        name,
        "percent",
        ("= 0", Some("<= 1")),
        &format!("share of {} rows {what} (0 proceed, up to 1 review, more rollback); no rows, nothing to measure", s.qname(&t.name)),
        &format!("SELECT 100.0 * count(*) FILTER (WHERE {pending}) / NULLIF(count(*), 0)\nFROM {}", s.qname(&t.name)),
    ));
}

/// The rows of `t` where `cond` holds (bare column names), with their
/// key and the `shown` columns: a critical check (after the migration
/// unless `.at(...)` says otherwise).
pub fn rows_where(s: &Schema, t: &Table, shown: &[String], cond: &str, description: &str, name: &str) -> Check {
    let mut cols: Vec<String> = t.primary_key.iter().map(|k| s.ident(k)).collect();
    cols.extend(shown.iter().cloned());
    Check::rows(name, description, &format!("SELECT {}\nFROM {}\nWHERE {cond}", cols.join(", "), s.qname(&t.name)))
}
