//! Liquibase formatted SQL: every `.sql` file of the folder, in name order
//! (as `includeAll` reads them), starts with `--liquibase formatted sql`;
//! each `--changeset author:id` block is one migration, its `--rollback`
//! lines (or a `/* liquibase rollback ... */` comment) its down script.
//! Attributes read: `runInTransaction:false`, `splitStatements:false` (the
//! body runs as one statement), `endDelimiter:X` (a line holding only X
//! ends a statement), `dbms:` (a changeset excluded from PostgreSQL is not
//! one). `--rollback not required` / `empty` and a changeset without
//! rollback are migrations without a down script, as Liquibase treats them
//! (it has no inverse for raw SQL). Each script is the whole file with
//! everything else blanked, so errors name the line in the changelog.
//! A `.sql` file without the header is what `includeAll` hands its plain
//! SQL parser: one raw changeset (author `includeAll`, id `raw`) holding
//! the whole file, split on `;`, in a transaction, with no rollback.

use std::ops::Range;
use std::path::Path;

use super::text::lines;
use super::{file_name, has_sql, read, sql_file, sql_files, Down, Layout, Migration, Origin};
use crate::error::{Error, LoadError, Location, Result};
use crate::set::SqlFile;

/// One changeset of a changelog, as byte ranges of the file.
#[derive(Debug, Default)]
pub(super) struct Changeset {
    pub author: String,
    pub id: String,
    pub line: usize,
    pub body: Vec<Range<usize>>,
    /// Statement boundaries the attributes impose (`splitStatements:false`,
    /// `endDelimiter`); empty means split on `;`.
    pub blocks: Vec<Range<usize>>,
    pub rollback: Vec<Range<usize>>,
    pub rollback_not_required: bool,
    pub no_transaction: bool,
    pub split: bool,
    pub end_delimiter: Option<String>,
    pub on_postgres: bool,
}

/// Whether `line` is `--liquibase formatted sql`.
pub(super) fn is_header(line: &str) -> bool {
    let t = line.trim_start();
    t.strip_prefix("--").is_some_and(|r| r.trim_start().to_ascii_lowercase().starts_with("liquibase") && r.to_ascii_lowercase().contains("formatted"))
}

/// `--changeset author:id attrs...` -> (author, id, attributes).
fn changeset_line(line: &str) -> Option<(String, String, String)> {
    let rest = line.trim_start().strip_prefix("--")?.trim_start();
    if rest.len() < 10 || !rest[..9].eq_ignore_ascii_case("changeset") || !rest[9..].starts_with(char::is_whitespace) {
        return None;
    }
    let rest = rest[9..].trim_start();
    let (author, rest) = quoted_or_until(rest, ':')?;
    let rest = rest.strip_prefix(':')?.trim_start();
    let (id, attrs) = match rest.strip_prefix('"') {
        Some(r) => r.split_once('"').map(|(id, a)| (id.to_string(), a.to_string()))?,
        None => {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            (rest[..end].to_string(), rest[end..].to_string())
        }
    };
    (!author.trim().is_empty() && !id.is_empty()).then(|| (author.trim().to_string(), id, attrs))
}

fn quoted_or_until(s: &str, stop: char) -> Option<(String, &str)> {
    match s.strip_prefix('"') {
        Some(r) => r.split_once('"').map(|(q, rest)| (q.to_string(), rest)),
        None => s.find(stop).map(|i| (s[..i].to_string(), &s[i..])),
    }
}

/// The value of `key:value` among a changeset line's attributes.
fn attr<'a>(attrs: &'a str, key: &str) -> Option<&'a str> {
    attrs.split_whitespace().find_map(|w| w.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// Whether a `dbms:` list lets the changeset run on PostgreSQL.
fn runs_on_postgres(dbms: Option<&str>) -> bool {
    let Some(list) = dbms else { return true };
    let items: Vec<String> = list.split(',').map(|s| s.trim().to_ascii_lowercase()).collect();
    if items.iter().any(|i| i == "!postgresql") {
        return false;
    }
    let positive: Vec<&String> = items.iter().filter(|i| !i.starts_with('!')).collect();
    positive.is_empty() || positive.iter().any(|i| *i == "postgresql" || *i == "all")
}

/// `--rollback <sql>`: the byte offset of `<sql>` in the line.
fn rollback_payload(line: &str) -> Option<usize> {
    let lead = line.len() - line.trim_start().len();
    let rest = line[lead..].strip_prefix("--")?;
    let after_dashes = lead + 2;
    let ws = rest.len() - rest.trim_start().len();
    let word = &rest[ws..];
    if word.len() < 9 || !word[..8].eq_ignore_ascii_case("rollback") || !word[8..].starts_with(' ') {
        return None;
    }
    Some(after_dashes + ws + 9)
}

/// Parses one formatted SQL changelog into its changesets.
pub(super) fn changesets(path: &Path, text: &str) -> Result<Vec<Changeset>> {
    let err = |line: usize, message: String| Error::Load { at: Location::line(path, line), kind: LoadError::Foreign { message } };
    let mut out: Vec<Changeset> = Vec::new();
    let mut header = false;
    let mut in_multiline_rollback = false;
    let mut ignoring = false;
    for line in lines(text) {
        let t = line.text.trim();
        if !header {
            if t.is_empty() {
                continue;
            }
            if !is_header(line.text) {
                return Err(err(line.number, "not a Liquibase formatted SQL changelog: the first line must be `--liquibase formatted sql`".into()));
            }
            header = true;
            continue;
        }
        let lower = t.to_ascii_lowercase();
        if lower.starts_with("--") && lower.trim_start_matches('-').trim_start().starts_with("ignorelines:") {
            match lower.rsplit(':').next() {
                Some("start") => ignoring = true,
                Some("end") => ignoring = false,
                _ => return Err(err(line.number, "only `--ignoreLines:start` / `--ignoreLines:end` are supported".into())),
            }
            continue;
        }
        if ignoring {
            continue;
        }
        if let Some((author, id, attrs)) = changeset_line(line.text) {
            if in_multiline_rollback {
                return Err(err(line.number, "a changeset inside an unterminated `/* liquibase rollback` comment".into()));
            }
            if out.iter().any(|c| c.author == author && c.id == id) {
                return Err(err(line.number, format!("changeset {author}:{id} is defined twice in this file")));
            }
            if attr(&attrs, "rollbackEndDelimiter").is_some() {
                return Err(err(line.number, "`rollbackEndDelimiter` is not supported".into()));
            }
            let end_delimiter = attr(&attrs, "endDelimiter").filter(|d| !d.is_empty() && *d != ";").map(str::to_string);
            out.push(Changeset {
                author,
                id,
                line: line.number,
                no_transaction: attr(&attrs, "runInTransaction").is_some_and(|v| v.eq_ignore_ascii_case("false")),
                split: !attr(&attrs, "splitStatements").is_some_and(|v| v.eq_ignore_ascii_case("false")),
                end_delimiter,
                on_postgres: runs_on_postgres(attr(&attrs, "dbms")),
                ..Default::default()
            });
            continue;
        }
        if lower.starts_with("--") && lower.trim_start_matches('-').trim_start().starts_with("changeset") {
            return Err(err(line.number, "a `--changeset` line needs `author:id`".into()));
        }
        let Some(cs) = out.last_mut() else {
            if t.is_empty() || t.starts_with("--") {
                continue;
            }
            return Err(err(line.number, "SQL before the first `--changeset author:id`".into()));
        };
        let content_end = line.span.start + line.text.len();
        if in_multiline_rollback {
            match line.text.find("*/") {
                Some(p) => {
                    cs.rollback.push(line.span.start..line.span.start + p);
                    in_multiline_rollback = false;
                }
                None => cs.rollback.push(line.span.start..content_end),
            }
            continue;
        }
        if lower.starts_with("/*") && lower[2..].trim_start().starts_with("liquibase") && lower.ends_with("rollback") {
            in_multiline_rollback = true;
            continue;
        }
        if let Some(p) = rollback_payload(line.text) {
            let payload = line.text[p..].trim();
            if payload.eq_ignore_ascii_case("not required") || payload.eq_ignore_ascii_case("empty") {
                cs.rollback_not_required = true;
            } else if ["changesetid:", "changesetauthor:"].iter().any(|k| payload.to_ascii_lowercase().contains(k)) {
                return Err(err(line.number, "a rollback that refers to another changeset is not supported".into()));
            } else {
                cs.rollback.push(line.span.start + p..content_end);
            }
            continue;
        }
        if let Some(d) = &cs.end_delimiter {
            if t.eq_ignore_ascii_case(d) {
                let start = cs.blocks.last().map_or(cs.body.first().map_or(line.span.start, |b| b.start), |b| b.end);
                cs.blocks.push(start..line.span.start);
                continue; // the delimiter line itself is not SQL: it stays blank

            }
        }
        cs.body.push(line.span.clone());
    }
    if in_multiline_rollback {
        return Err(err(lines(text).count(), "unterminated `/* liquibase rollback` comment".into()));
    }
    for cs in &mut out {
        let (Some(first), Some(last)) = (cs.body.first(), cs.body.last()) else { continue };
        let whole = first.start..last.end;
        if !cs.split {
            cs.blocks = vec![whole];
        } else if cs.end_delimiter.is_some() {
            let from = cs.blocks.last().map_or(whole.start, |b| b.end);
            if from < whole.end {
                cs.blocks.push(from..whole.end);
            }
        }
    }
    Ok(out)
}

fn script(path: &Path, text: &str, keep: &[Range<usize>], blocks: Vec<Range<usize>>, no_transaction: bool) -> SqlFile {
    super::section_file(path, text, keep, blocks, no_transaction)
}

pub(super) fn load(dir: &Path) -> Result<Vec<Migration>> {
    let mut out = Vec::new();
    for p in sql_files(dir)? {
        let text = read(&p)?;
        if !text.lines().find(|l| !l.trim().is_empty()).is_some_and(is_header) {
            if has_sql(&text) {
                out.push(raw(&p, text));
            }
            continue;
        }
        for cs in changesets(&p, &text)? {
            if !cs.on_postgres {
                continue; // Liquibase does not run it on PostgreSQL
            }
            let label = format!("{}:{}", cs.author, cs.id);
            let down = if !cs.rollback.is_empty() {
                let rollback_blocks = Vec::new();
                Down::Script(script(&p, &text, &cs.rollback, rollback_blocks, cs.no_transaction))
            } else if cs.rollback_not_required {
                Down::Missing("`--rollback not required`".into())
            } else {
                Down::Missing("no `--rollback` (Liquibase has no inverse for raw SQL)".into())
            };
            let up = script(&p, &text, &cs.body, cs.blocks.clone(), cs.no_transaction);
            let origin = Origin { tool: Layout::Liquibase, id: label.clone(), name: file_name(&p), file: p.clone(), line: cs.line };
            out.push(Migration { origin, name: label, up, down, verify: None });
        }
    }
    Ok(out)
}

/// A file without the formatted-SQL header, as `includeAll` runs it.
fn raw(path: &Path, text: String) -> Migration {
    let origin = Origin { tool: Layout::Liquibase, id: "includeAll:raw".into(), name: file_name(path), file: path.to_path_buf(), line: 1 };
    let down = Down::Missing("a raw SQL file (no `--liquibase formatted sql` header): Liquibase has no rollback for it".into());
    Migration { origin, name: file_name(path), up: sql_file(path, text, false), down, verify: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foreign::text::blank_outside;

    fn parse(text: &str) -> Result<Vec<Changeset>> {
        changesets(Path::new("changelog.sql"), text)
    }

    fn joined(text: &str, r: &[Range<usize>]) -> String {
        blank_outside(text, r).split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn changesets_rollbacks_and_attributes() {
        let t = "--liquibase formatted sql\n\n--changeset alice:1\nCREATE TABLE t (x int);\n--rollback DROP TABLE t;\n\n--changeset \"Bob Smith\":two runInTransaction:false splitStatements:false\nCREATE INDEX CONCURRENTLY i ON t (x);\n/* liquibase rollback\nDROP INDEX CONCURRENTLY i;\n*/\n--changeset carol:3 dbms:oracle\nSELECT 1;\n--changeset carol:4\nSELECT 2;\n--rollback not required\n";
        let cs = parse(t).unwrap();
        assert_eq!(cs.len(), 4);
        assert_eq!((cs[0].author.as_str(), cs[0].id.as_str(), cs[0].line), ("alice", "1", 3));
        assert_eq!(joined(t, &cs[0].body), "CREATE TABLE t (x int);");
        assert_eq!(joined(t, &cs[0].rollback), "DROP TABLE t;");
        assert_eq!((cs[1].author.as_str(), cs[1].id.as_str()), ("Bob Smith", "two"));
        assert!(cs[1].no_transaction && !cs[1].split && cs[1].blocks.len() == 1);
        assert_eq!(joined(t, &cs[1].rollback), "DROP INDEX CONCURRENTLY i;");
        assert!(!cs[2].on_postgres && cs[3].on_postgres && cs[3].rollback_not_required);
    }

    #[test]
    fn end_delimiter_lines_split_the_body() {
        let t = "--liquibase formatted sql\n--changeset a:1 endDelimiter:/\nCREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2))\n/\nSELECT 1\n/\n";
        let cs = parse(t).unwrap();
        let up = blank_outside(t, &cs[0].body);
        let blocks: Vec<&str> = cs[0].blocks.iter().map(|b| up[b.clone()].trim()).filter(|s| !s.is_empty()).collect();
        assert_eq!(blocks.len(), 2, "{blocks:?}");
        assert!(blocks[0].ends_with("VALUES (2))") && blocks[1] == "SELECT 1");
        assert!(!up.contains('/'));
    }

    #[test]
    fn malformed_changelogs_name_the_line() {
        let e = |t: &str| parse(t).unwrap_err().to_string();
        assert_eq!(e("CREATE TABLE t (x int);\n"), "changelog.sql:1: not a Liquibase formatted SQL changelog: the first line must be `--liquibase formatted sql`");
        assert_eq!(e("--liquibase formatted sql\nCREATE TABLE t (x int);\n"), "changelog.sql:2: SQL before the first `--changeset author:id`");
        assert_eq!(e("--liquibase formatted sql\n--changeset a:1\nSELECT 1;\n--changeset a:1\nSELECT 2;\n"), "changelog.sql:4: changeset a:1 is defined twice in this file");
        assert_eq!(e("--liquibase formatted sql\n--changeset nobody\nSELECT 1;\n"), "changelog.sql:2: a `--changeset` line needs `author:id`");
        assert_eq!(e("--liquibase formatted sql\n--changeset a:1\nSELECT 1;\n/* liquibase rollback\nSELECT 2;\n"), "changelog.sql:5: unterminated `/* liquibase rollback` comment");
    }

    #[test]
    fn scripts_keep_their_lines_in_the_changelog() {
        let d = tempfile::tempdir().unwrap();
        let t = "--liquibase formatted sql\n--changeset a:1\nCREATE TABLE t (x int);\n--rollback DROP TABLE t;\n--rollback DROP INDEX nope;\n--changeset a:2\nSELECT 1;\n";
        std::fs::write(d.path().join("001.sql"), t).unwrap();
        let set = crate::foreign::load(Layout::Liquibase, d.path()).unwrap();
        let down = set.phases[0].steps[0].rollback.as_ref().unwrap();
        assert_eq!(down.statements().iter().map(|s| s.line).collect::<Vec<_>>(), [4, 5]);
        assert_eq!(down.text.find("DROP TABLE"), t.find("DROP TABLE"), "same column as in the changelog");
        assert_eq!(set.phases[1].reason(), Some("no `--rollback` (Liquibase has no inverse for raw SQL)"));
        let origin = set.phases[1].steps[0].origin.as_ref().unwrap();
        assert_eq!((origin.id.as_str(), origin.line), ("a:2", 6));
        std::fs::write(d.path().join("002-grants.sql"), "-- plain SQL, no header\nCREATE TABLE u (x int);\nCREATE INDEX ON u (x);\n").unwrap();
        let set = crate::foreign::load(Layout::Liquibase, d.path()).unwrap();
        let raw = &set.phases[2];
        assert_eq!((raw.name.as_str(), raw.is_reversible()), ("002-grants.sql", false));
        assert_eq!(raw.steps[0].forward.statements().len(), 2);
        assert_eq!(raw.steps[0].origin.as_ref().unwrap().id, "includeAll:raw");
    }
}
