//! Comparing the state after a rollback (or a re-apply) with the state it
//! must equal, and classifying what differs: the schema (a real difference,
//! columns in another order, or time constants folded at creation) and the
//! rows of every table the reference holds, naming the columns whose
//! values changed.

use std::collections::HashMap;

use postgres::GenericClient;

use super::{Against, Finding};
use crate::error::Result;
use crate::snapshot::{column_order_only, diff_blocks, rows_over, schema_diff, Scope, State, TableState};

/// The findings of comparing `now` (the database `client` is on, as it is)
/// with `reference`.
pub(super) fn compare(client: &mut impl GenericClient, scope: Scope, now: &State, reference: &State, against: Against) -> Result<Vec<Finding>> {
    let mut findings = Vec::new();
    let d = diff_blocks(&reference.blocks(), &now.blocks());
    if !d.real.is_empty() {
        let diff = schema_diff(&d.real_before, &d.real_after, "before", "after");
        if column_order_only(&d.real_before, &d.real_after) {
            findings.push(Finding::ColumnOrderOnly { against, diff });
        } else {
            findings.push(Finding::SchemaDiffers { against, objects: d.real, diff });
        }
    }
    if !d.folded.is_empty() {
        let diff = schema_diff(&d.folded_before, &d.folded_after, "before", "after");
        findings.push(Finding::FoldedConstant { against, objects: d.folded, diff });
    }
    let current = now.tables();
    for (key, r) in reference.tables() {
        let Some(cur) = current.get(key) else {
            continue; // the table is gone: the schema difference names it
        };
        if cur.same_rows_as(r) {
            continue;
        }
        if let Some(f) = rows_differ(client, scope, key, cur, r, against)? {
            findings.push(f);
        }
    }
    Ok(findings)
}

/// Compares a table's rows now with the reference's, over the columns the
/// reference hashed that still exist; `None` when they are the same.
fn rows_differ(client: &mut impl GenericClient, scope: Scope, key: &str, cur: &TableState, r: &TableState, against: Against) -> Result<Option<Finding>> {
    let ref_cols = r.hashed_names();
    let cols: Vec<String> = ref_cols.iter().filter(|c| cur.columns.iter().any(|(n, _)| n == *c)).cloned().collect();
    let cur_names = cur.hashed_names();
    let mut sums: HashMap<String, String> = cur_names.iter().cloned().zip(cur.column_sums.iter().cloned()).collect();
    let mut rows = cur.sig.rows;
    let lane = if cur_names == cols {
        Some(cur.lane.clone())
    } else {
        cur.subset.as_ref().filter(|(names, _)| *names == ref_cols).map(|(_, lane)| lane.clone())
    };
    let lane = match lane {
        Some(l) if cols.iter().all(|c| sums.contains_key(c)) => l,
        _ => {
            let h = rows_over(client, scope, cur, &cols)?;
            rows = h.sig.rows;
            sums = cols.iter().cloned().zip(h.column_sums).collect();
            h.lane
        }
    };
    if cols.len() == ref_cols.len() && rows == r.sig.rows && lane == r.lane {
        return Ok(None); // only columns added since differ: the schema difference names them
    }
    let mut changed = Vec::new();
    for (i, c) in ref_cols.iter().enumerate() {
        match sums.get(c) {
            None => changed.push(format!("{c} (dropped)")),
            Some(s) if Some(s) != r.column_sums.get(i) => changed.push(c.clone()),
            Some(_) => {}
        }
    }
    Ok(Some(Finding::RowsChanged { against, table: key.to_string(), columns: changed, rows_before: r.sig.rows, rows_after: rows }))
}
