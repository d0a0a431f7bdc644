//! The generic layout, for names no tool claims: up/down pairs named
//! `<prefix><version><separator><name>.up.sql` / `.down.sql`, where the
//! prefix is letters (or nothing), the version numbers joined by `.`, `_`
//! or `-`, the separator one or more of those, e.g.
//! `V0001.Initial_Schema.up.sql` or `20240105-1200_init.up.sql`. Versions
//! compare numerically (`V2` before `V10`); each file runs in a transaction.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{bad_name, file_name, read, sql_file, sql_files, Down, Layout, Migration, Origin, Version};
use crate::error::{Error, LoadError, Location, Result};

const EXPECTED: &str = "<prefix><version><separator><name>.up.sql or .down.sql, e.g. V0001.Initial_Schema.up.sql";

/// A parsed file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Name {
    pub prefix: String,
    /// The version as written.
    pub version: String,
    pub name: String,
    pub up: bool,
}

fn is_sep(c: char) -> bool {
    matches!(c, '.' | '_' | '-')
}

/// Parses a file name of the generic layout.
pub(super) fn parse_name(file: &str) -> Option<Name> {
    let (stem, up) = match file.strip_suffix(".up.sql") {
        Some(s) => (s, true),
        None => (file.strip_suffix(".down.sql")?, false),
    };
    let prefix_len = stem.len() - stem.trim_start_matches(|c: char| c.is_ascii_alphabetic()).len();
    let (prefix, rest) = stem.split_at(prefix_len);
    // Where the version may end: after each run of digits, longest first.
    let mut ends = Vec::new();
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        ends.push(i);
        if i + 1 < b.len() && is_sep(b[i] as char) && b[i + 1].is_ascii_digit() {
            i += 1;
        } else {
            break;
        }
    }
    for &end in ends.iter().rev() {
        let tail = &rest[end..];
        let name = tail.trim_start_matches(is_sep);
        let named = !name.is_empty() && tail.len() > name.len() && !name.starts_with(|c: char| c.is_ascii_digit());
        if tail.is_empty() || named {
            return Some(Name { prefix: prefix.to_string(), version: rest[..end].to_string(), name: name.to_string(), up });
        }
    }
    None
}

pub(super) fn load(dir: &Path) -> Result<Vec<Migration>> {
    let mut ups: BTreeMap<(Version, String), (Name, PathBuf)> = BTreeMap::new();
    let mut downs: BTreeMap<(Version, String), PathBuf> = BTreeMap::new();
    for p in sql_files(dir)? {
        let n = parse_name(&file_name(&p)).ok_or_else(|| bad_name(&p, EXPECTED))?;
        let version = Version::parse(&n.version).ok_or_else(|| bad_name(&p, EXPECTED))?;
        let key = (version, n.name.clone());
        let clash = if n.up { ups.iter().find(|((v, _), _)| *v == key.0).map(|(_, (_, o))| o.clone()) } else { downs.get(&key).cloned() };
        if let Some(other) = clash {
            return Err(super::duplicate(&p, "version", &n.version, &other));
        }
        if n.up {
            ups.insert(key, (n, p));
        } else {
            downs.insert(key, p);
        }
    }
    let mut out = Vec::new();
    for (key, (n, up)) in ups {
        let down = match downs.remove(&key) {
            Some(d) => Down::Script(sql_file(&d, read(&d)?, false)),
            None => Down::Missing("no .down.sql file".into()),
        };
        let stem = file_name(&up).trim_end_matches(".up.sql").to_string();
        let origin = Origin { tool: Layout::Files, id: format!("{}{}", n.prefix, n.version), name: n.name, file: up.clone(), line: 1 };
        out.push(Migration { origin, name: stem, up: sql_file(&up, read(&up)?, false), down, verify: None });
    }
    if let Some((_, path)) = downs.into_iter().next() {
        return Err(Error::Load { at: Location::file(&path), kind: LoadError::MissingPair { message: "down migration has no up migration of the same version and name".into() } });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(file: &str) -> Option<(String, String, String, bool)> {
        parse_name(file).map(|n| (n.prefix, n.version, n.name, n.up))
    }

    #[test]
    fn names_split_into_prefix_version_and_name() {
        let t = |p: &str, v: &str, name: &str, up: bool| Some((p.to_string(), v.to_string(), name.to_string(), up));
        assert_eq!(n("V0001.Initial_Schema.up.sql"), t("V", "0001", "Initial_Schema", true));
        assert_eq!(n("V1.2.3_add-orders.down.sql"), t("V", "1.2.3", "add-orders", false));
        assert_eq!(n("20240105-1200_init.up.sql"), t("", "20240105-1200", "init", true));
        assert_eq!(n("m12__x.up.sql"), t("m", "12", "x", true));
        assert_eq!(n("0007.up.sql"), t("", "0007", "", true));
        assert_eq!(n("0001_2fa.up.sql"), None, "a name must not start with a digit");
        assert_eq!(n("init.up.sql"), None);
        assert_eq!(n("V1_a.sql"), None);
    }

    #[test]
    fn pairs_in_numeric_order() {
        let d = tempfile::tempdir().unwrap();
        for f in ["V10.Ten.up.sql", "V10.Ten.down.sql", "V9.Nine.up.sql", "V0001.Initial_Schema.up.sql", "V0001.Initial_Schema.down.sql"] {
            std::fs::write(d.path().join(f), "SELECT 1;").unwrap();
        }
        std::fs::write(d.path().join("README.md"), "").unwrap();
        let set = crate::foreign::load(Layout::Files, d.path()).unwrap();
        let names: Vec<&str> = set.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["V0001.Initial_Schema", "V9.Nine", "V10.Ten"]);
        assert!(!set.phases[1].is_reversible());
        assert_eq!(set.phases[0].steps[0].origin.as_ref().unwrap().id, "V0001");
        std::fs::write(d.path().join("V0009.Other.up.sql"), "SELECT 1;").unwrap();
        let e = crate::foreign::load(Layout::Files, d.path()).unwrap_err().to_string();
        assert!(e.contains("duplicate version"), "{e}");
        std::fs::remove_file(d.path().join("V0009.Other.up.sql")).unwrap();
        std::fs::write(d.path().join("notes.sql"), "SELECT 1;").unwrap();
        let e = crate::foreign::load(Layout::Files, d.path()).unwrap_err().to_string();
        assert!(e.ends_with(&format!("notes.sql: not a migration name this layout knows (expected {EXPECTED})")), "{e}");
    }
}
