//! Row fingerprints, computed in SQL so rows never cross the wire.
//!
//! Each value is turned into text (`value::text`, so two values are equal
//! exactly when PostgreSQL prints them the same) and hashed with
//! `hashtextextended`, seeded by the column's name; NULL gets a constant of
//! its own per column. A row's hash is the XOR of its columns' hashes, and
//! the table's *row lane* is the sum of its rows' hashes over `bigint`,
//! which `sum` returns as an exact `numeric`: a multiset hash, independent
//! of row order and of column order, counting duplicate rows with their
//! multiplicity, in one streaming scan with constant memory. The same scan
//! sums each column's hashes on its own (to name the columns whose values
//! changed) and the rows' `xmin` (the *data signature*, see [`DataSig`]).
//! A change to any value of any row changes the lane except with
//! probability about 2^-64 for data that is not crafted to collide.
//!
//! Ordinary tables are read with `ONLY` (rows of inheritance children are
//! fingerprinted with the children); partitioned tables are read as a whole.

use postgres::SimpleQueryRow;

use crate::pg::quote_ident;

/// Row count and sum of the rows' `xmin`. A row that is inserted or updated
/// gets the id of the transaction writing it, later than every id before,
/// so while the signature of a table is unchanged, so are its rows (a
/// dropped column, which rewrites nothing, is the one change the caller
/// must look for in the catalog).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct DataSig {
    pub rows: i64,
    pub xmin_sum: i64,
}

/// What one fingerprint scan of a table returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hashed {
    pub sig: DataSig,
    /// The row lane over all the columns asked for.
    pub lane: String,
    /// One lane per column (same order as asked).
    pub column_sums: Vec<String>,
    /// The row lane over a subset of the columns, when asked for.
    pub subset_lane: Option<String>,
}

/// A table to fingerprint: its SQL name (`quote_ident` form), relkind,
/// the columns to hash, and optionally a subset to compute a second lane
/// over (the columns of a reference state).
pub(crate) struct Request<'a> {
    pub key: &'a str,
    pub relkind: &'a str,
    pub columns: &'a [String],
    pub subset: Option<&'a [String]>,
}

/// The seed of a column's hashes: FNV-1a of its name.
fn seed(name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h >> 1) as i64
}

fn only(relkind: &str) -> &'static str {
    if relkind == "p" {
        ""
    } else {
        "ONLY "
    }
}

/// The XOR of the hash columns of `names` (hash column `h<i>` for the
/// i-th column of `all`), or `0` for none.
fn row_xor(all: &[String], names: &[String]) -> String {
    let parts: Vec<String> = names.iter().filter_map(|n| all.iter().position(|c| c == n)).map(|i| format!("h{i}")).collect();
    if parts.is_empty() {
        "0::bigint".into()
    } else {
        parts.join(" # ")
    }
}

pub(crate) fn fingerprint_sql(r: &Request) -> String {
    let hashes: String = r
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let s = seed(c);
            format!(", coalesce(hashtextextended(t.{}::text, {s}), {}) AS h{i}", quote_ident(c), s ^ 0x5bd1_e995)
        })
        .collect();
    let sums: String = (0..r.columns.len()).map(|i| format!(", coalesce(sum(h{i}), 0)::text")).collect();
    let subset = match r.subset {
        Some(s) => format!(", coalesce(sum({}), 0)::text", row_xor(r.columns, s)),
        None => ", NULL::text".into(),
    };
    format!(
        "SELECT count(*)::bigint, coalesce(sum(x), 0)::bigint, coalesce(sum({}), 0)::text{subset}{sums} \
         FROM (SELECT t.xmin::text::bigint AS x{hashes} FROM {}{} t) f",
        row_xor(r.columns, r.columns),
        only(r.relkind),
        r.key
    )
}

/// Reads a row of [`fingerprint_sql`] (text protocol).
pub(crate) fn hashed(row: &SimpleQueryRow, columns: usize) -> Option<Hashed> {
    let text = |i: usize| row.get(i).map(str::to_string);
    Some(Hashed {
        sig: DataSig { rows: row.get(0)?.parse().ok()?, xmin_sum: row.get(1)?.parse().ok()? },
        lane: text(2)?,
        subset_lane: text(3),
        column_sums: (0..columns).map(|i| text(4 + i)).collect::<Option<Vec<_>>>()?,
    })
}

/// One statement giving the data signature of every table (`(key,
/// relkind)`), as rows `(index, rows, xmin sum)`.
pub(crate) fn data_sigs_sql(tables: &[(&str, &str)]) -> String {
    tables
        .iter()
        .enumerate()
        .map(|(i, (key, relkind))| format!("SELECT {i}, count(*)::bigint, coalesce(sum(xmin::text::bigint), 0)::bigint FROM {}{key}", only(relkind)))
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// Reads a row of [`data_sigs_sql`].
pub(crate) fn data_sig(row: &SimpleQueryRow) -> Option<(usize, DataSig)> {
    Some((row.get(0)?.parse().ok()?, DataSig { rows: row.get(1)?.parse().ok()?, xmin_sum: row.get(2)?.parse().ok()? }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_cover_the_columns_asked_for() {
        let cols = vec!["id".to_string(), "Name".to_string()];
        let subset = vec!["Name".to_string(), "gone".to_string()];
        let sql = fingerprint_sql(&Request { key: "public.t", relkind: "r", columns: &cols, subset: Some(&subset) });
        assert!(sql.contains("coalesce(sum(h0 # h1), 0)::text, coalesce(sum(h1), 0)::text, coalesce(sum(h0), 0)::text, coalesce(sum(h1), 0)::text FROM"), "{sql}");
        assert!(sql.contains("t.\"Name\"::text"), "{sql}");
        assert!(sql.contains("FROM ONLY public.t t"), "{sql}");
        let none = fingerprint_sql(&Request { key: "public.p", relkind: "p", columns: &[], subset: None });
        assert!(none.contains("sum(0::bigint)") && none.contains("FROM public.p t"), "{none}");
        assert_ne!(seed("a"), seed("b"));
    }
}
