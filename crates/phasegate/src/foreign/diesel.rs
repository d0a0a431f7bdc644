//! diesel: `migrations/<version>_<name>/up.sql`, `down.sql` and an optional
//! `metadata.toml` whose `run_in_transaction = false` covers both scripts;
//! ordered by the version (the digits before the first `_`).

use std::path::Path;

use super::{bad_name, entries, file_name, read, sql_file, Down, Layout, Migration, Origin};
use crate::error::{Error, LoadError, Location, Result};

/// Digits of a version string as a number (`2024-01-05-101500` -> 20240105101500).
fn version_number(v: &str) -> Option<u128> {
    let digits: String = v.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() || !v.chars().all(|c| c.is_ascii_digit() || c == '-') {
        return None;
    }
    digits.parse().ok()
}

pub(super) fn load(dir: &Path) -> Result<Vec<Migration>> {
    let mut out = Vec::new();
    for p in entries(dir)? {
        if !p.is_dir() {
            continue; // diesel keeps .keep and similar files beside the folders
        }
        let name = file_name(&p);
        let (ver, desc) = name.split_once('_').ok_or_else(|| bad_name(&p, "<version>_<name>/"))?;
        let num = version_number(ver).ok_or_else(|| bad_name(&p, "<version>_<name>/"))?;
        let up = p.join("up.sql");
        if !up.is_file() {
            return Err(Error::Load { at: Location::file(&up), kind: LoadError::MissingPair { message: "missing up.sql".into() } });
        }
        let down = p.join("down.sql");
        let meta = p.join("metadata.toml");
        let mut no_transaction = false;
        if meta.is_file() {
            let text = read(&meta)?;
            let v: toml::Table = toml::from_str(&text).map_err(|e| Error::Load { at: Location::file(&meta), kind: LoadError::Toml { message: e.message().to_string() } })?;
            no_transaction = v.get("run_in_transaction").and_then(|x| x.as_bool()) == Some(false);
        }
        let down = if down.is_file() { Down::Script(sql_file(&down, read(&down)?, no_transaction)) } else { Down::Missing("no down script".into()) };
        let origin = Origin { tool: Layout::Diesel, id: ver.to_string(), name: desc.to_string(), file: up.clone(), line: 1 };
        out.push((num, Migration { origin, name: name.clone(), up: sql_file(&up, read(&up)?, no_transaction), down, verify: None }));
    }
    out.sort_by(|a, b| (a.0, &a.1.name).cmp(&(b.0, &b.1.name)));
    Ok(out.into_iter().map(|(_, m)| m).collect())
}

#[cfg(test)]
mod tests {
    use crate::foreign::{load, Layout};
    use crate::foreign::write;


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
        assert!(!set.phases[0].is_reversible(), "no down.sql: forward only, reported");
        assert!(set.phases[1].steps[0].forward.directives.no_transaction);
        let origin = set.phases[1].steps[0].origin.as_ref().unwrap();
        assert_eq!((origin.tool, origin.id.as_str(), origin.name.as_str()), (Layout::Diesel, "2024-02-01-000000", "b"));
    }
}
