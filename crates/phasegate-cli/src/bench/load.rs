//! Loading a large migration: a set whose data migration is 10 MB of
//! realistic statements (multi-row INSERTs with quotes and semicolons in
//! their strings, UPDATEs, comments, DO blocks, a SQL-standard function
//! body), written to a temporary folder, then `load_set` timed, and the
//! work `status` does before it asks the database anything (the load, then
//! `drift` against a ledger holding every migration). Loading must be
//! linear in the file's size: the target is 10 MB in under 2 s.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

use super::{figure, median, Figure};
use phasegate::{ledger, MigrationSet};

/// The data migration's size.
const BYTES: usize = 10 * 1000 * 1000;

/// The figure: `load_set` and `status`'s load path on a 10 MB migration.
pub fn ten_megabytes(say: &mut dyn FnMut(&str)) -> Result<Figure> {
    let dir = tempfile::tempdir().context("creating a temporary folder")?;
    let (bytes, statements) = write_set(dir.path(), BYTES)?;
    let mb = bytes as f64 / 1e6;
    say(&format!("load: a {mb:.1} MB migration of {statements} statements"));
    let set = phasegate::load_set(dir.path())?;
    let applied = ledger_of(&set);
    let (mut load, mut status) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let t = Instant::now();
        let set = phasegate::load_set(dir.path())?;
        load.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let set2 = phasegate::load_set(dir.path())?;
        let drift = phasegate::ledger::drift(&set2, &applied);
        status.push(t.elapsed().as_secs_f64());
        anyhow::ensure!(drift.is_empty(), "the generated set drifted from its own ledger: {drift:?}");
        drop(set);
    }
    let (load, status) = (median(load), median(status));
    Ok(figure(
        "load a 10 MB migration (median of 3)",
        format!("load_set {load:.2} s ({:.1} MB/s), status's load path {status:.2} s ({:.1} MB/s); {statements} statements", mb / load, mb / status),
        "< 2 s for 10 MB",
        Some(load < 2.0 && status < 2.0),
        serde_json::json!({"bytes": bytes, "statements": statements, "load_s": load, "status_s": status, "load_mb_per_s": mb / load, "status_mb_per_s": mb / status}),
    ))
}

/// A ledger in which every migration of `set` is applied with the files as
/// they are: what `status` compares the files with.
fn ledger_of(set: &MigrationSet) -> BTreeMap<i32, ledger::Applied> {
    set.steps()
        .map(|s| {
            let applied = ledger::Applied {
                version: s.version,
                name: s.name.clone(),
                applied_on: String::new(),
                checksum: s.refinery_checksum().to_string(),
                phase: Some(s.phase as i32),
                rollback_sql: s.rollback.as_ref().map(|r| r.text.clone()),
                rollback_sha256: s.rollback.as_ref().map(|r| r.sha256()),
                validation_sql: Some(s.validation.text.clone()),
                validation_sha256: Some(s.validation.sha256()),
                adopted_from: None,
            };
            (s.version, applied)
        })
        .collect()
}

/// Writes a set whose V2 is about `bytes` long; returns its size and
/// statement count.
fn write_set(dir: &Path, bytes: usize) -> Result<(usize, usize)> {
    let write = |rel: &str, text: &str| -> Result<()> {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("a parent")).with_context(|| p.display().to_string())?;
        std::fs::write(&p, text).with_context(|| p.display().to_string())
    };
    write("phases.toml", "[[phase]]\nid = 1\nname = \"data\"\nversions = [1, 2]\n")?;
    write("migrations/V1__products.sql", "CREATE TABLE products (id bigint PRIMARY KEY, sku text NOT NULL, name text, price numeric(10,2), note text);\n")?;
    write("rollback/V1__products.sql", "DROP TABLE products;\n")?;
    write("validations/V1__products.sql", "-- check: products_exist\nSELECT 1 WHERE to_regclass('products') IS NULL;\n")?;
    let (text, statements) = data_migration(bytes);
    write("migrations/V2__load_products.sql", &text)?;
    write("rollback/V2__load_products.sql", "DELETE FROM products;\n")?;
    write("validations/V2__load_products.sql", "-- check: no_negative_price\nSELECT id FROM products WHERE price < 0;\n")?;
    Ok((text.len(), statements))
}

/// About `bytes` of a data migration, in the shapes real ones take.
fn data_migration(bytes: usize) -> (String, usize) {
    let mut s = String::with_capacity(bytes + 4096);
    s.push_str("-- Products imported from the legacy catalogue.\n");
    s.push_str("CREATE FUNCTION price_with_tax(p numeric) RETURNS numeric LANGUAGE sql IMMUTABLE\nBEGIN ATOMIC\n  SELECT CASE WHEN p IS NULL THEN NULL ELSE round(p * 1.2, 2) END;\nEND;\n");
    let mut statements = 1;
    let mut id = 0u64;
    let mut batch = 0u64;
    while s.len() < bytes {
        batch += 1;
        let _ = writeln!(s, "\n/* batch {batch}: rows {}..{} */", id + 1, id + 50);
        s.push_str("INSERT INTO products (id, sku, name, price, note) VALUES\n");
        for row in 0..50 {
            id += 1;
            let sep = if row == 49 { ";" } else { "," };
            let _ = writeln!(s, "  ({id}, 'SKU-{id:08}', 'Product {id}; size ''L''', {}.{:02}, E'line one\\nline two -- not a comment'){sep}", id % 997, id % 100);
        }
        statements += 1;
        if batch.is_multiple_of(10) {
            let _ = writeln!(s, "UPDATE products SET note = 'discontinued; see ticket #{batch}' WHERE id BETWEEN {} AND {};", id - 20, id - 10);
            let _ = writeln!(s, "DO $body$\nBEGIN\n  PERFORM price_with_tax(price) FROM products WHERE id = {id};\nEND\n$body$;");
            statements += 2;
        }
    }
    (s, statements)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_set_loads_with_every_statement() {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, statements) = write_set(dir.path(), 200_000).unwrap();
        assert!(bytes >= 200_000);
        let set = phasegate::load_set(dir.path()).unwrap();
        assert_eq!(set.step(2).unwrap().forward.statements().len(), statements);
        assert!(phasegate::ledger::drift(&set, &ledger_of(&set)).is_empty());
    }
}
