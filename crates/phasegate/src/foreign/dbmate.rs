//! dbmate: `<version>_<name>.sql` files (the version is the leading digits)
//! with a `-- migrate:up` section and a `-- migrate:down` section after it,
//! as dbmate reads them: nothing but comments before `-- migrate:up`, both
//! markers required, options on the marker line (`transaction:false`).
//! dbmate sends a section as one query: in a transaction that is the same
//! as statement by statement, so the engine splits it (and names the line
//! of the failing statement); with `transaction:false` the section stays one
//! block, as dbmate sends it (several statements then form one implicit
//! transaction, where `CREATE INDEX CONCURRENTLY` is refused, as in dbmate).

use std::ops::Range;
use std::path::Path;

use super::text::lines;
use super::{file_name, has_sql, read, sql_files, Down, Layout, Migration, Origin};
use crate::error::{Error, LoadError, Location, Result};
use crate::set::SqlFile;

/// One marker line: its line number, the byte range of the section after
/// it, and whether its options say `transaction:false`.
#[derive(Debug, PartialEq)]
pub(super) struct Section {
    pub line: usize,
    pub body: Range<usize>,
    pub no_transaction: bool,
}

/// `-- migrate:up` / `-- migrate:down` and their options, if `line` is one.
fn marker(line: &str) -> Option<(&'static str, &str)> {
    let rest = line.strip_prefix("--")?.trim_start();
    for kind in ["up", "down"] {
        if let Some(opts) = rest.strip_prefix("migrate:").and_then(|r| r.strip_prefix(kind)) {
            if opts.is_empty() || opts.starts_with(char::is_whitespace) {
                return Some((kind, opts.trim()));
            }
        }
    }
    None
}

fn no_transaction(options: &str) -> bool {
    options.split_whitespace().filter_map(|kv| kv.split_once(':')).any(|(k, v)| k == "transaction" && v == "false")
}

/// Parses a dbmate file into its up and down sections.
pub(super) fn sections(path: &Path, text: &str) -> Result<(Section, Section)> {
    let err = |line: usize, message: &str| Error::Load { at: Location::line(path, line), kind: LoadError::Foreign { message: message.to_string() } };
    let mut up: Option<(usize, Range<usize>, bool)> = None;
    let mut down: Option<(usize, Range<usize>, bool)> = None;
    for line in lines(text) {
        match marker(line.text) {
            Some(("up", opts)) if up.is_none() => {
                if down.is_some() {
                    return Err(err(line.number, "`-- migrate:up` after `-- migrate:down`: dbmate requires the up section first"));
                }
                up = Some((line.number, line.span.end..text.len(), no_transaction(opts)));
            }
            Some(("down", opts)) if down.is_none() => {
                if let Some(u) = up.as_mut() {
                    u.1.end = line.span.start;
                }
                down = Some((line.number, line.span.end..text.len(), no_transaction(opts)));
            }
            Some((kind, _)) => return Err(err(line.number, &format!("a second `-- migrate:{kind}` marker"))),
            None => {
                let t = line.text.trim();
                if up.is_none() && down.is_none() && !t.is_empty() && !t.starts_with("--") {
                    return Err(err(line.number, "SQL before `-- migrate:up`: dbmate does not run statements outside its sections"));
                }
            }
        }
    }
    let Some((ul, ub, un)) = up else { return Err(err(1, "no `-- migrate:up` marker: dbmate requires an up section")) };
    let Some((dl, db, dn)) = down else { return Err(err(1, "no `-- migrate:down` marker: dbmate requires a down section")) };
    Ok((Section { line: ul, body: ub, no_transaction: un }, Section { line: dl, body: db, no_transaction: dn }))
}

fn section_file(path: &Path, text: &str, s: &Section) -> SqlFile {
    let blocks = if s.no_transaction { vec![s.body.clone()] } else { Vec::new() };
    super::section_file(path, text, std::slice::from_ref(&s.body), blocks, s.no_transaction)
}

pub(super) fn load(dir: &Path) -> Result<Vec<Migration>> {
    let mut found: Vec<(u128, String, Migration)> = Vec::new();
    for p in sql_files(dir)? {
        let f = file_name(&p);
        let stem = f.trim_end_matches(".sql");
        let digits = stem.len() - stem.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            continue; // dbmate reads only files whose name starts with a version
        }
        let (ver, rest) = stem.split_at(digits);
        let num: u128 = ver.parse().map_err(|_| super::bad_name(&p, "<version>_<name>.sql"))?;
        if let Some((_, _, other)) = found.iter().find(|(_, v, _)| v == ver) {
            return Err(super::duplicate(&p, "version", ver, &other.origin.file));
        }
        let text = read(&p)?;
        let (up, down) = sections(&p, &text)?;
        let down_file = if has_sql(&text[down.body.clone()]) {
            Down::Script(section_file(&p, &text, &down))
        } else {
            Down::Missing("its `-- migrate:down` section holds no statement".into())
        };
        let name = rest.trim_start_matches(['_', '-', '.']).to_string();
        let origin = Origin { tool: Layout::Dbmate, id: ver.to_string(), name, file: p.clone(), line: up.line };
        found.push((num, ver.to_string(), Migration { origin, name: stem.to_string(), up: section_file(&p, &text, &up), down: down_file, verify: None }));
    }
    found.sort_by(|a, b| (a.0, &a.2.name).cmp(&(b.0, &b.2.name)));
    Ok(found.into_iter().map(|(.., m)| m).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foreign::{load, Layout};

    #[test]
    fn sections_and_options() {
        let t = "-- a note\n-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (x);\n\n-- migrate:down\nDROP INDEX i;\n";
        let (up, down) = sections(Path::new("1_a.sql"), t).unwrap();
        assert_eq!(t[up.body.clone()].trim(), "CREATE INDEX CONCURRENTLY i ON t (x);");
        assert_eq!(t[down.body.clone()].trim(), "DROP INDEX i;");
        assert!(up.no_transaction && !down.no_transaction);
        assert_eq!((up.line, down.line), (2, 5));
    }

    #[test]
    fn malformed_files_name_the_line() {
        let e = |t: &str| sections(Path::new("1_a.sql"), t).unwrap_err().to_string();
        assert_eq!(e("CREATE TABLE t(x int);\n-- migrate:up\n-- migrate:down\n"), "1_a.sql:1: SQL before `-- migrate:up`: dbmate does not run statements outside its sections");
        assert_eq!(e("-- migrate:up\nSELECT 1;\n"), "1_a.sql:1: no `-- migrate:down` marker: dbmate requires a down section");
        assert_eq!(e("-- migrate:down\nSELECT 1;\n-- migrate:up\nSELECT 2;\n"), "1_a.sql:3: `-- migrate:up` after `-- migrate:down`: dbmate requires the up section first");
        assert_eq!(e("-- migrate:up\n-- migrate:down\n-- migrate:down\n"), "1_a.sql:3: a second `-- migrate:down` marker");
    }

    #[test]
    fn loads_in_version_order_with_lines_kept() {
        let d = tempfile::tempdir().unwrap();
        let text = "-- migrate:up\nCREATE TABLE t (x int);\n-- migrate:down\nDROP TABLE t;\n";
        std::fs::write(d.path().join("20240102_t.sql"), text).unwrap();
        std::fs::write(d.path().join("20240101_s.sql"), "-- migrate:up\nCREATE SCHEMA s;\n-- migrate:down\n").unwrap();
        std::fs::write(d.path().join("schema.sql"), "-- dbmate's dump, not a migration\nCREATE TABLE t (x int);\n").unwrap();
        let set = load(Layout::Dbmate, d.path()).unwrap();
        let names: Vec<&str> = set.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["20240101_s", "20240102_t"]);
        assert!(!set.phases[0].is_reversible(), "an empty down section");
        let down = set.phases[1].steps[0].rollback.as_ref().unwrap();
        assert_eq!(down.statements()[0].line, 4);
        assert_eq!(set.phases[1].steps[0].origin.as_ref().unwrap().id, "20240102");
    }
}
