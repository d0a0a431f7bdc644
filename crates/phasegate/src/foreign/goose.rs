//! goose: `<version>_<name>.sql` files, each with a `-- +goose Up` section
//! and an optional `-- +goose Down` section, read as goose's own parser reads
//! them: a statement ends at a line whose last word (before a `--` comment)
//! ends with `;`; `-- +goose StatementBegin` / `StatementEnd` make one
//! statement of everything between them, semicolons and all (sent whole,
//! as goose sends it); `-- +goose NO TRANSACTION` runs both sections
//! outside a transaction; `-- +goose ENVSUB ON` / `OFF` substitute
//! `${VAR}` from the placeholders. Annotations are case-insensitive and an
//! unknown one is an error, as in goose 3. Every statement goose would send is a
//! block of the section's file, so the engine sends exactly those.

use std::ops::Range;
use std::path::Path;

use super::text::{lines, substitute, Syntax};
use super::{bad_name, file_name, read, Down, Layout, Migration, Options, Origin};
use crate::error::{Error, LoadError, Location, Result};
use crate::set::SqlFile;

/// A goose file's two sections as statement blocks of its text.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Sections {
    pub up: Vec<Range<usize>>,
    pub down: Vec<Range<usize>>,
    pub up_line: usize,
    /// Line of `-- +goose Down`, if there is one.
    pub down_line: Option<usize>,
    pub no_transaction: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Up,
    UpBlock,
    Down,
    DownBlock,
}

/// goose's test for the end of a statement: the last word before a `--`
/// comment ends with `;`.
fn ends_with_semicolon(line: &str) -> bool {
    let mut prev = "";
    for word in line.split_whitespace() {
        if word.starts_with("--") {
            break;
        }
        prev = word;
    }
    prev.ends_with(';')
}

/// A goose annotation (`-- +goose Up`, case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Annotation {
    Up,
    Down,
    StatementBegin,
    StatementEnd,
    NoTransaction,
    EnvsubOn,
    EnvsubOff,
}

/// The annotation of a line, as goose 3 reads it: a comment line holding
/// `+goose`, with no leading whitespace and a known annotation after it.
fn annotation(line: &str) -> Option<std::result::Result<Annotation, String>> {
    if !line.trim_start().starts_with("--") || !line.contains("+goose") {
        return None;
    }
    if line.starts_with([' ', '\t']) {
        return Some(Err("a goose annotation must not be indented".into()));
    }
    let cmd = line.replace("--", "").replacen("+goose", "", 1);
    let cmd = cmd.trim();
    let known = [
        ("Up", Annotation::Up),
        ("Down", Annotation::Down),
        ("StatementBegin", Annotation::StatementBegin),
        ("StatementEnd", Annotation::StatementEnd),
        ("NO TRANSACTION", Annotation::NoTransaction),
        ("ENVSUB ON", Annotation::EnvsubOn),
        ("ENVSUB OFF", Annotation::EnvsubOff),
        // The spelling of goose before 3.20.
        ("ENVSUBST ON", Annotation::EnvsubOn),
        ("ENVSUBST OFF", Annotation::EnvsubOff),
    ];
    Some(known.iter().find(|(k, _)| k.eq_ignore_ascii_case(cmd)).map(|(_, a)| *a).ok_or_else(|| format!("unknown goose annotation `{}`", line.trim())))
}

/// Lines whose `${VAR}` goose substitutes: those after `ENVSUB ON` and
/// before `ENVSUB OFF`.
fn envsub_lines(text: &str) -> Vec<bool> {
    let mut on = false;
    let mut scope = vec![false];
    for line in lines(text) {
        match annotation(line.text) {
            Some(Ok(Annotation::EnvsubOn)) => on = true,
            Some(Ok(Annotation::EnvsubOff)) => on = false,
            _ => {}
        }
        scope.push(on);
    }
    scope
}

/// Parses a goose file into its sections (pure; errors name file and line).
pub(super) fn sections(path: &Path, text: &str) -> Result<Sections> {
    let err = |line: usize, message: &str| Error::Load { at: Location::line(path, line), kind: LoadError::Foreign { message: message.to_string() } };
    let mut s = Sections::default();
    let mut state = State::Start;
    // Start byte and line of the statement being read.
    let mut current: Option<(usize, usize)> = None;
    let mut block_line = 0;
    for line in lines(text) {
        if state == State::Start && line.text.trim().is_empty() {
            continue;
        }
        if let Some(a) = annotation(line.text) {
            match a.map_err(|m| err(line.number, &m))? {
                Annotation::Up => {
                    if state != State::Start {
                        return Err(err(line.number, "a second `-- +goose Up` annotation"));
                    }
                    state = State::Up;
                    s.up_line = line.number;
                    continue;
                }
                Annotation::Down => {
                    match state {
                        State::Up => {}
                        State::Start => return Err(err(line.number, "`-- +goose Down` before `-- +goose Up`")),
                        State::UpBlock | State::DownBlock => return Err(err(line.number, "`-- +goose Down` inside a StatementBegin/StatementEnd block")),
                        State::Down => return Err(err(line.number, "a second `-- +goose Down` annotation")),
                    }
                    if let Some((_, l)) = current {
                        return Err(err(l, "statement not terminated by `;` before `-- +goose Down`"));
                    }
                    state = State::Down;
                    s.down_line = Some(line.number);
                    continue;
                }
                Annotation::StatementBegin => {
                    state = match state {
                        State::Up => State::UpBlock,
                        State::Down => State::DownBlock,
                        _ => return Err(err(line.number, "`-- +goose StatementBegin` must follow `-- +goose Up` or `-- +goose Down` (and not another StatementBegin)")),
                    };
                    // An unterminated statement before it becomes part of
                    // the block, as in goose (its buffer carries on).
                    block_line = line.number;
                    continue;
                }
                Annotation::StatementEnd => {
                    let blocks = match state {
                        State::UpBlock => &mut s.up,
                        State::DownBlock => &mut s.down,
                        _ => return Err(err(line.number, "`-- +goose StatementEnd` without `-- +goose StatementBegin`")),
                    };
                    if let Some((start, _)) = current.take() {
                        blocks.push(start..line.span.start);
                    }
                    state = if state == State::UpBlock { State::Up } else { State::Down };
                    continue;
                }
                Annotation::NoTransaction => {
                    s.no_transaction = true;
                    continue;
                }
                Annotation::EnvsubOn | Annotation::EnvsubOff => continue,
            }
        }
        if current.is_none() && (line.text.trim_start().starts_with("--") || line.text.trim().is_empty()) {
            continue; // comments and blank lines before a statement
        }
        if state == State::Start {
            return Err(err(line.number, "SQL before `-- +goose Up`: a goose migration starts with `-- +goose Up`"));
        }
        let start = *current.get_or_insert((line.span.start, line.number));
        if matches!(state, State::Up | State::Down) && ends_with_semicolon(line.text) {
            let blocks = if state == State::Up { &mut s.up } else { &mut s.down };
            blocks.push(start.0..line.span.end);
            current = None;
        }
    }
    match state {
        State::Start => return Err(err(1, "no `-- +goose Up` annotation: a goose migration starts with `-- +goose Up`")),
        State::UpBlock | State::DownBlock => return Err(err(block_line, "`-- +goose StatementBegin` without `-- +goose StatementEnd`")),
        _ => {}
    }
    if let Some((_, l)) = current {
        return Err(err(l, "statement not terminated by `;` at the end of the file"));
    }
    Ok(s)
}

fn section_file(path: &Path, text: &str, blocks: Vec<Range<usize>>, no_transaction: bool) -> SqlFile {
    super::section_file(path, text, &blocks.clone(), blocks, no_transaction)
}

pub(super) fn load(dir: &Path, opts: &Options) -> Result<Vec<Migration>> {
    let mut found: Vec<(u128, Migration)> = Vec::new();
    for p in super::entries(dir)? {
        let f = file_name(&p);
        if !p.is_file() || f.starts_with('.') {
            continue;
        }
        if f.ends_with(".go") {
            return Err(Error::Load { at: Location::file(&p), kind: LoadError::Foreign { message: "a Go migration: phasegate rehearses SQL migrations only".into() } });
        }
        let Some(stem) = f.strip_suffix(".sql") else { continue };
        let expected = "<version>_<name>.sql";
        let (ver, name) = stem.split_once('_').ok_or_else(|| bad_name(&p, expected))?;
        let num: u128 = ver.parse().ok().filter(|n| *n > 0).ok_or_else(|| bad_name(&p, expected))?;
        if let Some((_, other)) = found.iter().find(|(n, _)| *n == num) {
            return Err(super::duplicate(&p, "version", num, &other.origin.file));
        }
        let raw = read(&p)?;
        let scope = envsub_lines(&raw);
        let text = substitute(&p, &raw, Syntax::Shell, &opts.placeholders, &|_| None, &|l| scope.get(l).copied().unwrap_or(false))?;
        let s = sections(&p, &text)?;
        let down = match s.down_line {
            None => Down::Missing("no `-- +goose Down` section".into()),
            Some(_) if s.down.is_empty() => Down::Missing("its `-- +goose Down` section holds no statement".into()),
            Some(_) => Down::Script(section_file(&p, &text, s.down.clone(), s.no_transaction)),
        };
        let origin = Origin { tool: Layout::Goose, id: ver.to_string(), name: name.to_string(), file: p.clone(), line: s.up_line };
        let up = section_file(&p, &text, s.up, s.no_transaction);
        found.push((num, Migration { origin, name: stem.to_string(), up, down, verify: None }));
    }
    found.sort_by_key(|(n, _)| *n);
    Ok(found.into_iter().map(|(_, m)| m).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foreign::{load_with, Layout, Options};

    fn parse(text: &str) -> Result<Sections> {
        sections(Path::new("00001_a.sql"), text)
    }

    fn slices<'a>(text: &'a str, r: &[Range<usize>]) -> Vec<&'a str> {
        r.iter().map(|r| text[r.clone()].trim()).collect()
    }

    #[test]
    fn statements_end_at_a_line_ending_with_a_semicolon() {
        let t = "-- +goose Up\n-- a comment\nCREATE TABLE t (\n  x int -- not; the end\n);\nINSERT INTO t VALUES (1); -- done\n\n-- +goose Down\nDROP TABLE t;\n";
        let s = parse(t).unwrap();
        assert_eq!(slices(t, &s.up), ["CREATE TABLE t (\n  x int -- not; the end\n);", "INSERT INTO t VALUES (1); -- done"]);
        assert_eq!(slices(t, &s.down), ["DROP TABLE t;"]);
        assert_eq!((s.up_line, s.down_line, s.no_transaction), (1, Some(8), false));
    }

    #[test]
    fn statement_blocks_keep_their_semicolons() {
        let t = "-- +goose NO TRANSACTION\n-- +goose Up\n-- +goose StatementBegin\nCREATE RULE r AS ON INSERT TO t DO ALSO (\n  INSERT INTO a VALUES (1);\n  INSERT INTO b VALUES (2)\n);\n-- +goose StatementEnd\n-- +goose Down\nDROP RULE r ON t;\n";
        let s = parse(t).unwrap();
        assert_eq!(s.up.len(), 1);
        assert!(t[s.up[0].clone()].contains("INSERT INTO b VALUES (2)\n);"));
        assert!(s.no_transaction);
    }

    #[test]
    fn malformed_files_name_the_line() {
        let e = |t: &str| parse(t).unwrap_err().to_string();
        assert_eq!(e("CREATE TABLE t(x int);\n"), "00001_a.sql:1: SQL before `-- +goose Up`: a goose migration starts with `-- +goose Up`");
        assert_eq!(e("-- +goose Up\nCREATE TABLE t(x int)\n-- +goose Down\nDROP TABLE t;\n"), "00001_a.sql:2: statement not terminated by `;` before `-- +goose Down`");
        assert_eq!(e("-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n"), "00001_a.sql:2: `-- +goose StatementBegin` without `-- +goose StatementEnd`");
        assert_eq!(e("-- +goose Down\nSELECT 1;\n"), "00001_a.sql:1: `-- +goose Down` before `-- +goose Up`");
        assert_eq!(e("-- +goose Up\nSELECT 1;\n-- +goose StatementEnd\n"), "00001_a.sql:3: `-- +goose StatementEnd` without `-- +goose StatementBegin`");
        assert_eq!(e(""), "00001_a.sql:1: no `-- +goose Up` annotation: a goose migration starts with `-- +goose Up`");
        assert_eq!(e("-- +goose Up\n-- +goose Sideways\n"), "00001_a.sql:2: unknown goose annotation `-- +goose Sideways`");
        assert_eq!(e("-- +goose Up\n  -- +goose Down\n"), "00001_a.sql:2: a goose annotation must not be indented");
        assert!(parse("-- +goose up\nSELECT 1;\n-- +goose DOWN\nSELECT 2;\n").is_ok(), "annotations are case-insensitive");
    }

    #[test]
    fn sections_keep_their_lines_in_the_real_file() {
        let d = tempfile::tempdir().unwrap();
        let text = "-- +goose Up\nCREATE TABLE t (x int);\n\n-- +goose Down\nDROP TABLE t;\nDROP INDEX nope;\n";
        std::fs::write(d.path().join("20240101000000_t.sql"), text).unwrap();
        std::fs::write(d.path().join("20240102000000_u.sql"), "-- +goose Up\nSELECT 1;\n").unwrap();
        std::fs::write(d.path().join("README.md"), "notes").unwrap();
        let set = load_with(Layout::Goose, d.path(), &Options::default()).unwrap();
        let down = set.phases[0].steps[0].rollback.as_ref().unwrap();
        let st = down.statements();
        assert_eq!(st.iter().map(|s| s.line).collect::<Vec<_>>(), [5, 6]);
        assert_eq!(down.text.lines().count(), text.lines().count());
        assert!(!down.text.contains("CREATE"));
        assert!(!set.phases[1].is_reversible());
        assert_eq!(set.phases[1].reason(), Some("no `-- +goose Down` section"));
        let origin = set.phases[0].steps[0].origin.as_ref().unwrap();
        assert_eq!((origin.id.as_str(), origin.name.as_str()), ("20240101000000", "t"));
    }

    #[test]
    fn envsubst_needs_a_value() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("1_t.sql"), "-- +goose ENVSUB ON\n-- +goose up\nCREATE SCHEMA ${SCHEMA};\n-- +goose Down\nDROP SCHEMA ${SCHEMA};\n").unwrap();
        let e = load_with(Layout::Goose, d.path(), &Options::default()).unwrap_err();
        assert!(e.to_string().ends_with("1_t.sql:3: no value for placeholder `SCHEMA`"), "{e}");
        let opts = Options { placeholders: [("SCHEMA".to_string(), "app".to_string())].into() };
        let set = load_with(Layout::Goose, d.path(), &opts).unwrap();
        assert!(set.phases[0].steps[0].forward.text.contains("CREATE SCHEMA app;"));
        std::fs::write(d.path().join("2_x.go"), "package migrations").unwrap();
        assert!(load_with(Layout::Goose, d.path(), &opts).unwrap_err().to_string().contains("a Go migration"));
    }
}
