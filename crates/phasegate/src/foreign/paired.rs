//! sqlx and golang-migrate: `<version>_<desc>.up.sql` + `.down.sql`,
//! ordered by the integer version. sqlx pairs an up with the down of the
//! same version and description, reads simple `<version>_<desc>.sql` files
//! (no down) and a first line `-- no-transaction`. golang-migrate pairs by
//! version alone (its source driver keys each file by version and
//! direction, so `1_create.up.sql` goes with `1_drop.down.sql`) and sends
//! each file to PostgreSQL as it is: a file with its own `BEGIN`/`COMMIT`
//! or a lone `CREATE INDEX CONCURRENTLY` runs (see `txn`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{bad_name, file_name, read, sql_files, sql_file, Down, Layout, Migration, Origin};
use crate::error::{Error, LoadError, Location, Result};

pub(super) fn load(dir: &Path, sqlx: bool) -> Result<Vec<Migration>> {
    let mut ups: Vec<(u128, String, String, PathBuf)> = Vec::new();
    // golang-migrate keys downs by version alone: the description is ''.
    let key = |num: u128, desc: &str| (num, if sqlx { desc.to_string() } else { String::new() });
    let mut downs: BTreeMap<(u128, String), PathBuf> = BTreeMap::new();
    for p in sql_files(dir)? {
        let f = file_name(&p);
        let stem = f.trim_end_matches(".sql");
        let (stem, up) = if let Some(s) = stem.strip_suffix(".up") {
            (s, true)
        } else if let Some(s) = stem.strip_suffix(".down") {
            (s, false)
        } else if sqlx {
            (stem, true)
        } else {
            return Err(bad_name(&p, "<version>_<title>.up.sql or .down.sql"));
        };
        let (ver, desc) = stem.split_once('_').ok_or_else(|| bad_name(&p, "<version>_<description>.sql"))?;
        let num: u128 = ver.parse().map_err(|_| bad_name(&p, "an integer version"))?;
        if up {
            if let Some((_, _, _, other)) = ups.iter().find(|(n, ..)| *n == num) {
                return Err(super::duplicate(&p, "version", num, other));
            }
            ups.push((num, ver.to_string(), desc.to_string(), p));
        } else if let Some(other) = downs.insert(key(num, desc), p.clone()) {
            return Err(super::duplicate(&p, "down version", num, &other));
        }
    }
    ups.sort();
    let tool = if sqlx { Layout::Sqlx } else { Layout::GolangMigrate };
    let mut out = Vec::new();
    for (num, ver, desc, up) in ups {
        let first_line_says = |text: &str| sqlx && text.lines().next().is_some_and(|l| l.trim() == "-- no-transaction");
        let up_text = read(&up)?;
        let up_file = sql_file(&up, up_text.clone(), first_line_says(&up_text));
        let down = match downs.remove(&key(num, &desc)) {
            Some(d) => {
                let text = read(&d)?;
                let no_tx = first_line_says(&text);
                Down::Script(sql_file(&d, text, no_tx))
            }
            None => Down::Missing("no down script".into()),
        };
        let origin = Origin { tool, id: ver, name: desc.clone(), file: up.clone(), line: 1 };
        out.push(Migration { origin, name: format!("{num}_{desc}"), up: up_file, down, verify: None });
    }
    if let Some(((num, _), path)) = downs.into_iter().next() {
        return Err(Error::Load { at: Location::file(&path), kind: LoadError::MissingPair { message: format!("down migration {num} has no up migration") } });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::foreign::{load, Layout};
    use crate::foreign::write;


    #[test]
    fn sqlx_pairs_and_no_transaction() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "20240102000000_idx.up.sql", "-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t(x);");
        write(d.path(), "20240102000000_idx.down.sql", "DROP INDEX i;");
        write(d.path(), "20240101000000_t.up.sql", "CREATE TABLE t(x int);");
        write(d.path(), "20240101000000_t.down.sql", "DROP TABLE t;");
        write(d.path(), "20240103000000_simple.sql", "SELECT 1;");
        let set = load(Layout::Sqlx, d.path()).unwrap();
        assert_eq!(set.phases.len(), 3);
        assert!(set.phases[1].steps[0].forward.directives.no_transaction);
        assert!(!set.phases[1].steps[0].rollback.as_ref().unwrap().directives.no_transaction, "the flag is per file");
        assert!(!set.phases[2].is_reversible());
        write(d.path(), "20240109000000_orphan.down.sql", "SELECT 1;");
        assert!(load(Layout::Sqlx, d.path()).unwrap_err().to_string().contains("has no up migration"));
    }

    #[test]
    fn golang_migrate_needs_up_or_down_in_the_name() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "1_t.up.sql", "CREATE TABLE t(x int);");
        write(d.path(), "1_t.down.sql", "DROP TABLE t;");
        let set = load(Layout::GolangMigrate, d.path()).unwrap();
        assert_eq!(set.phases[0].steps[0].origin.as_ref().unwrap().id, "1");
        write(d.path(), "2_add_x.up.sql", "ALTER TABLE t ADD x2 int;");
        write(d.path(), "2_remove_x.down.sql", "ALTER TABLE t DROP x2;");
        let set = load(Layout::GolangMigrate, d.path()).unwrap();
        assert!(set.phases[1].is_reversible(), "paired by version, whatever the titles");
        assert!(set.phases[1].steps[0].rollback.as_ref().unwrap().path.ends_with("2_remove_x.down.sql"));
        write(d.path(), "2_other.down.sql", "SELECT 1;");
        let e = load(Layout::GolangMigrate, d.path()).unwrap_err().to_string();
        assert!(e.contains("duplicate down version 2"), "{e}");
        std::fs::remove_file(d.path().join("2_other.down.sql")).unwrap();
        write(d.path(), "2_u.sql", "SELECT 1;");
        let e = load(Layout::GolangMigrate, d.path()).unwrap_err().to_string();
        assert!(e.ends_with("2_u.sql: not a migration name this layout knows (expected <version>_<title>.up.sql or .down.sql)"), "{e}");
    }
}
