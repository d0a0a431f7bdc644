//! Other tools' migration layouts, read as phasegate sets so `verify --from`
//! can rehearse an existing project's down migrations without converting
//! anything: each migration is its own phase, its down script its rollback,
//! and it has no checks. A migration without a down script becomes an
//! irreversible phase, which the rehearsal reports (never skips).

use std::path::{Path, PathBuf};

use crate::error::{Error, Location, Result};
use crate::set::{Directives, MigrationSet, Phase, SqlFile, Step};

/// The layouts `verify --from` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `migrations/<version>_<name>/up.sql, down.sql[, metadata.toml]`
    Diesel,
    /// `<version>_<desc>.up.sql / .down.sql`, or `<version>_<desc>.sql`;
    /// `-- no-transaction` on the first line.
    Sqlx,
    /// `<version>_<title>.up.sql / .down.sql`
    GolangMigrate,
    /// `V<n>__<name>.sql` (refinery has no down migrations).
    Refinery,
}

/// One migration of a foreign project before it becomes a step.
struct Foreign {
    /// Sort key, as the tool orders migrations.
    key: (u128, String),
    name: String,
    up: PathBuf,
    down: Option<PathBuf>,
    no_transaction: bool,
}

fn read(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
    String::from_utf8(bytes).map_err(|_| Error::Load { at: Location::file(path), message: "file is not valid UTF-8".into() })
}

fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |e| Error::Io { path: dir.to_path_buf(), source: e };
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io)? {
        v.push(e.map_err(io)?.path());
    }
    v.sort();
    Ok(v)
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Digits of a version string as a number (diesel's `2024-01-05-101500` -> 20240105101500).
fn version_number(v: &str) -> Option<u128> {
    let digits: String = v.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() || !v.chars().all(|c| c.is_ascii_digit() || c == '-') {
        return None;
    }
    digits.parse().ok()
}

fn bad_name(path: &Path, expected: &str) -> Error {
    Error::Load { at: Location::file(path), message: format!("not a migration name this layout knows (expected {expected})") }
}

fn diesel(dir: &Path) -> Result<Vec<Foreign>> {
    let mut out = Vec::new();
    for p in entries(dir)? {
        if !p.is_dir() {
            continue; // diesel keeps .keep and similar files beside the folders
        }
        let name = file_name(&p);
        let (ver, _) = name.split_once('_').ok_or_else(|| bad_name(&p, "<version>_<name>/"))?;
        let num = version_number(ver).ok_or_else(|| bad_name(&p, "<version>_<name>/"))?;
        let up = p.join("up.sql");
        if !up.is_file() {
            return Err(Error::Load { at: Location::file(&up), message: "missing up.sql".into() });
        }
        let down = Some(p.join("down.sql")).filter(|d| d.is_file());
        let meta = p.join("metadata.toml");
        let mut no_transaction = false;
        if meta.is_file() {
            let text = read(&meta)?;
            let v: toml::Table = toml::from_str(&text).map_err(|e| Error::Load { at: Location::file(&meta), message: e.message().to_string() })?;
            no_transaction = v.get("run_in_transaction").and_then(|x| x.as_bool()) == Some(false);
        }
        out.push(Foreign { key: (num, name.clone()), name, up, down, no_transaction });
    }
    Ok(out)
}

/// sqlx and golang-migrate: `<version>_<desc>.up.sql` + `.down.sql`, and
/// (sqlx only) simple `<version>_<desc>.sql`.
fn paired_files(dir: &Path, sqlx: bool) -> Result<Vec<Foreign>> {
    let mut ups: Vec<(u128, String, PathBuf)> = Vec::new();
    let mut downs: std::collections::BTreeMap<(u128, String), PathBuf> = Default::default();
    for p in entries(dir)? {
        let f = file_name(&p);
        if !p.is_file() || !f.ends_with(".sql") {
            continue;
        }
        let stem = f.trim_end_matches(".sql");
        let (stem, kind) = if let Some(s) = stem.strip_suffix(".up") {
            (s, "up")
        } else if let Some(s) = stem.strip_suffix(".down") {
            (s, "down")
        } else if sqlx {
            (stem, "up")
        } else {
            return Err(bad_name(&p, "<version>_<title>.up.sql or .down.sql"));
        };
        let (ver, desc) = stem.split_once('_').ok_or_else(|| bad_name(&p, "<version>_<description>.sql"))?;
        let num: u128 = ver.parse().map_err(|_| bad_name(&p, "an integer version"))?;
        if kind == "up" {
            if let Some((_, _, other)) = ups.iter().find(|(n, _, _)| *n == num) {
                return Err(Error::Load { at: Location::file(&p), message: format!("duplicate version {num}: also {}", crate::error::display_path(other)) });
            }
            ups.push((num, desc.to_string(), p));
        } else {
            downs.insert((num, desc.to_string()), p);
        }
    }
    let mut out = Vec::new();
    for (num, desc, up) in ups {
        let down = downs.remove(&(num, desc.clone()));
        let no_transaction = sqlx && read(&up)?.lines().next().is_some_and(|l| l.trim() == "-- no-transaction");
        out.push(Foreign { key: (num, desc.clone()), name: format!("{num}_{desc}"), up, down, no_transaction });
    }
    if let Some(((num, _), path)) = downs.into_iter().next() {
        return Err(Error::Load { at: Location::file(&path), message: format!("down migration {num} has no up migration") });
    }
    Ok(out)
}

fn refinery_files(dir: &Path) -> Result<Vec<Foreign>> {
    let mut out = Vec::new();
    for p in entries(dir)? {
        let f = file_name(&p);
        if !p.is_file() || !f.ends_with(".sql") {
            continue;
        }
        let (version, name) = crate::set::parse_file_name(&f).ok_or_else(|| bad_name(&p, "V<n>__<name>.sql"))?;
        out.push(Foreign { key: (version as u128, name.clone()), name: format!("V{version}__{name}"), up: p, down: None, no_transaction: false });
    }
    Ok(out)
}

/// Reads a foreign project's migrations folder as a set.
pub fn load(layout: Layout, dir: &Path) -> Result<MigrationSet> {
    if !dir.is_dir() {
        return Err(Error::Load { at: Location::file(dir), message: "folder not found".into() });
    }
    let mut migrations = match layout {
        Layout::Diesel => diesel(dir)?,
        Layout::Sqlx => paired_files(dir, true)?,
        Layout::GolangMigrate => paired_files(dir, false)?,
        Layout::Refinery => refinery_files(dir)?,
    };
    migrations.sort_by(|a, b| a.key.cmp(&b.key));
    let mut phases = Vec::new();
    for (i, m) in migrations.into_iter().enumerate() {
        let id = i as u32 + 1;
        let directives = Directives { no_transaction: m.no_transaction, ..Default::default() };
        let up = SqlFile { path: m.up.clone(), text: read(&m.up)?, directives: directives.clone() };
        let down = match &m.down {
            Some(d) => Some(SqlFile { path: d.clone(), text: read(d)?, directives: directives.clone() }),
            None => None,
        };
        let safe: String = m.name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let reversible = down.is_some();
        phases.push(Phase {
            id,
            name: m.name.clone(),
            summary: crate::error::display_path(&m.up),
            reversible,
            reason: (!reversible).then(|| "no down script".to_string()),
            baseline: false,
            steps: vec![Step {
                version: id as i32,
                name: safe,
                phase: id,
                validation: SqlFile { path: m.up.clone(), text: String::new(), directives: Directives::default() },
                forward: up,
                rollback: down,
                checks: Vec::new(),
            }],
        });
    }
    Ok(MigrationSet { dir: dir.to_path_buf(), phases, seed: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn diesel_orders_by_version_and_reads_metadata() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "2024-02-01-000000_b/up.sql", "SELECT 2;");
        write(d.path(), "2024-02-01-000000_b/down.sql", "SELECT 2;");
        write(d.path(), "2024-02-01-000000_b/metadata.toml", "run_in_transaction = false\n");
        write(d.path(), "2024-01-01-000000_a/up.sql", "SELECT 1;");
        write(d.path(), ".keep", "");
        let set = load(Layout::Diesel, d.path()).unwrap();
        let names: Vec<&str> = set.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["2024-01-01-000000_a", "2024-02-01-000000_b"]);
        assert!(!set.phases[0].reversible, "no down.sql: forward only, reported");
        assert!(set.phases[1].steps[0].forward.directives.no_transaction);
    }

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
        assert!(!set.phases[2].reversible);
        write(d.path(), "20240109000000_orphan.down.sql", "SELECT 1;");
        assert!(load(Layout::Sqlx, d.path()).unwrap_err().to_string().contains("has no up migration"));
    }
}
