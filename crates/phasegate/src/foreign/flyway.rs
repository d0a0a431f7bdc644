//! Flyway: `V<version>__<desc>.sql` versioned migrations (in sub-folders
//! too, as Flyway scans its locations), `U<version>__<desc>.sql` undo
//! scripts paired by version, `R__<desc>.sql` repeatable migrations applied
//! after the versioned ones, ordered by description. Versions are numbers
//! separated by `.` or `_` and compare numerically (`1.2.3` < `1.10`, `1.0`
//! == `1`). `${name}` placeholders are replaced from the options (and
//! `flyway:defaultSchema`, `flyway:table`, `flyway:filename`); one without a
//! value is an error at its line, as in Flyway. A script runs outside a
//! transaction when its `<script>.conf` says `executeInTransaction=false`
//! or, as Flyway decides for PostgreSQL, when it holds a statement that
//! cannot run in one (`CREATE INDEX CONCURRENTLY`, `VACUUM`, ...).
//!
//! Also refinery, which names its files like Flyway's versioned migrations
//! and has no down migrations.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::text::{substitute, Syntax};
use super::{bad_name, entries, file_name, is_sql, read, sql_file, Down, Layout, Migration, Options, Origin, Version};
use crate::error::{Error, LoadError, Location, Result};
use crate::set::SqlFile;

/// What a Flyway file name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Name {
    Versioned { version: Version, label: String, desc: String },
    Undo { version: Version, label: String, desc: String },
    Repeatable { desc: String },
}

/// Parses `V1.2__desc.sql`, `U1.2__desc.sql`, `R__desc.sql`.
pub(super) fn parse_name(file: &str) -> Option<Name> {
    let stem = file.strip_suffix(".sql")?;
    let (head, desc) = stem.split_once("__")?;
    let desc = desc.replace('_', " ");
    if head == "R" {
        return Some(Name::Repeatable { desc });
    }
    let (kind, raw) = head.split_at_checked(1)?;
    let version = Version::parse(raw).filter(|_| !raw.contains('-'))?;
    let label = raw.replace('_', ".");
    match kind {
        "V" => Some(Name::Versioned { version, label, desc }),
        "U" => Some(Name::Undo { version, label, desc }),
        _ => None,
    }
}

/// Every `.sql` file under `dir`, sub-folders included, sorted by path.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for p in entries(dir)? {
        if p.is_dir() && !file_name(&p).starts_with('.') {
            walk(&p, out)?;
        } else if p.is_file() && is_sql(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// `executeInTransaction=false` in the script's `.conf` file.
fn conf_says_no_transaction(script: &Path) -> Result<bool> {
    let conf = PathBuf::from(format!("{}.conf", script.display()));
    if !conf.is_file() {
        return Ok(false);
    }
    let text = read(&conf)?;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
            Some(("executeInTransaction", v)) => return Ok(v.eq_ignore_ascii_case("false")),
            Some(_) => {}
            None => return Err(Error::Load { at: Location::line(&conf, i + 1), kind: LoadError::Foreign { message: format!("`{line}` is not a `key=value` setting") } }),
        }
    }
    Ok(false)
}

fn script(path: &Path, opts: &Options) -> Result<SqlFile> {
    let fname = file_name(path);
    let builtin = |name: &str| match name {
        "flyway:defaultSchema" => Some("public".to_string()),
        "flyway:table" => Some("flyway_schema_history".to_string()),
        "flyway:filename" => Some(fname.clone()),
        _ => None,
    };
    let text = substitute(path, &read(path)?, Syntax::Placeholder, &opts.placeholders, &builtin, &|_| true)?;
    // Statements that cannot run in a transaction run outside one (`txn`).
    let no_transaction = conf_says_no_transaction(path)?;
    Ok(sql_file(path, text, no_transaction))
}

pub(super) fn load(dir: &Path, opts: &Options) -> Result<Vec<Migration>> {
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    let mut versioned: BTreeMap<Version, (String, String, PathBuf)> = BTreeMap::new();
    let mut undo: BTreeMap<Version, (String, PathBuf)> = BTreeMap::new();
    let mut repeatable: BTreeMap<String, PathBuf> = BTreeMap::new();
    for p in files {
        let f = file_name(&p);
        let name = parse_name(&f).ok_or_else(|| bad_name(&p, "V<version>__<description>.sql, U<version>__<description>.sql or R__<description>.sql"))?;
        let dup = |other: &Path, what: String| Error::Load { at: Location::file(&p), kind: LoadError::Clash { what, other: other.to_path_buf() } };
        match name {
            Name::Versioned { version, label, desc } => {
                if let Some((l, _, other)) = versioned.get(&version) {
                    return Err(dup(other, format!("more than one migration with version {l}")));
                }
                versioned.insert(version, (label, desc, p));
            }
            Name::Undo { version, label, .. } => {
                if let Some((_, other)) = undo.get(&version) {
                    return Err(dup(other, format!("more than one undo migration with version {label}")));
                }
                undo.insert(version, (label, p));
            }
            Name::Repeatable { desc } => {
                if let Some(other) = repeatable.get(&desc) {
                    return Err(dup(other, format!("more than one repeatable migration `{desc}`")));
                }
                repeatable.insert(desc, p);
            }
        }
    }
    if let Some((label, path)) = undo.iter().find(|(v, _)| !versioned.contains_key(v)).map(|(_, u)| u) {
        return Err(Error::Load { at: Location::file(path), kind: LoadError::MissingPair { message: format!("undo migration {label} has no versioned migration V{label}__*.sql") } });
    }
    let mut out = Vec::new();
    for (version, (label, desc, path)) in versioned {
        let down = match undo.remove(&version) {
            Some((_, u)) => Down::Script(script(&u, opts)?),
            None => Down::Missing("no undo script (U file)".into()),
        };
        let origin = Origin { tool: Layout::Flyway, id: label, name: desc, file: path.clone(), line: 1 };
        let name = file_name(&path).trim_end_matches(".sql").to_string();
        out.push(Migration { origin, name, up: script(&path, opts)?, down, verify: None });
    }
    for (desc, path) in repeatable {
        let origin = Origin { tool: Layout::Flyway, id: format!("R__{}", desc.replace(' ', "_")), name: desc, file: path.clone(), line: 1 };
        let down = Down::Missing("a repeatable migration: Flyway re-applies it when its checksum changes and has no undo for it".into());
        let name = file_name(&path).trim_end_matches(".sql").to_string();
        out.push(Migration { origin, name, up: script(&path, opts)?, down, verify: None });
    }
    Ok(out)
}

/// refinery: `V<n>__<name>.sql`, forward only.
pub(super) fn load_refinery(dir: &Path) -> Result<Vec<Migration>> {
    let mut out = Vec::new();
    for p in super::sql_files(dir)? {
        let f = file_name(&p);
        let (version, name) = crate::set::parse_file_name(&f).ok_or_else(|| bad_name(&p, "V<n>__<name>.sql"))?;
        let origin = Origin { tool: Layout::Refinery, id: version.to_string(), name: name.clone(), file: p.clone(), line: 1 };
        out.push((version, Migration { origin, name: format!("V{version}__{name}"), up: sql_file(&p, read(&p)?, false), down: Down::Missing("no down script".into()), verify: None }));
    }
    out.sort_by_key(|(v, _)| *v);
    Ok(out.into_iter().map(|(_, m)| m).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foreign::write;
    use crate::foreign::load_with;


    #[test]
    fn names_parse_as_flyway_reads_them() {
        let v = |s: &str| Version::parse(s).unwrap();
        assert_eq!(parse_name("V1_1__add_users.sql"), Some(Name::Versioned { version: v("1.1"), label: "1.1".into(), desc: "add users".into() }));
        assert_eq!(parse_name("U2__x.sql"), Some(Name::Undo { version: v("2"), label: "2".into(), desc: "x".into() }));
        assert_eq!(parse_name("R__views.sql"), Some(Name::Repeatable { desc: "views".into() }));
        for bad in ["V1_add.sql", "X1__a.sql", "V__a.sql", "Va__b.sql", "V1-2__a.sql"] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn orders_numerically_pairs_undo_and_puts_repeatables_last() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "V10__ten.sql", "SELECT 10;");
        write(d.path(), "V2__two.sql", "SELECT 2;");
        write(d.path(), "sub/V1.2.3__deep.sql", "SELECT 123;");
        write(d.path(), "U2__two.sql", "SELECT -2;");
        write(d.path(), "R__b_view.sql", "SELECT 'b';");
        write(d.path(), "R__a_view.sql", "SELECT 'a';");
        write(d.path(), "V11__idx.sql", "CREATE INDEX CONCURRENTLY i ON t (x);");
        write(d.path(), "V12__conf.sql", "SELECT 12;");
        write(d.path(), "V12__conf.sql.conf", "# per-script settings\nexecuteInTransaction=false\n");
        let set = load_with(Layout::Flyway, d.path(), &Options::default()).unwrap();
        let ids: Vec<String> = set.steps().map(|s| s.origin.as_ref().unwrap().id.clone()).collect();
        assert_eq!(ids, ["1.2.3", "2", "10", "11", "12", "R__a_view", "R__b_view"]);
        assert!(set.phases[1].is_reversible() && !set.phases[0].is_reversible() && !set.phases[5].is_reversible());
        assert!(set.phases[3].steps[0].forward.directives.no_transaction, "CONCURRENTLY runs outside a transaction");
        assert!(set.phases[4].steps[0].forward.directives.no_transaction, "executeInTransaction=false");
        assert!(!set.phases[2].steps[0].forward.directives.no_transaction);
        write(d.path(), "U7__orphan.sql", "SELECT 1;");
        let e = load_with(Layout::Flyway, d.path(), &Options::default()).unwrap_err().to_string();
        assert!(e.ends_with("U7__orphan.sql: undo migration 7 has no versioned migration V7__*.sql"), "{e}");
    }

    #[test]
    fn placeholders_come_from_the_options() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "V1__a.sql", "-- ${flyway:filename}\nCREATE SCHEMA ${schema};\nSET search_path = ${flyway:defaultSchema};\n");
        let e = load_with(Layout::Flyway, d.path(), &Options::default()).unwrap_err().to_string();
        assert!(e.ends_with("V1__a.sql:2: no value for placeholder `schema`"), "{e}");
        let opts = Options { placeholders: [("schema".to_string(), "app".to_string())].into() };
        let set = load_with(Layout::Flyway, d.path(), &opts).unwrap();
        assert_eq!(set.phases[0].steps[0].forward.text, "-- V1__a.sql\nCREATE SCHEMA app;\nSET search_path = public;\n");
    }

    #[test]
    fn refinery_is_forward_only() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "V2__b.sql", "SELECT 2;");
        write(d.path(), "V1__a.sql", "SELECT 1;");
        let set = load_with(Layout::Refinery, d.path(), &Options::default()).unwrap();
        assert_eq!(set.phases.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["V1__a", "V2__b"]);
        assert!(set.phases.iter().all(|p| !p.is_reversible()));
    }
}
