//! Text helpers shared by the layouts that keep several things in one file
//! (goose and dbmate sections, Liquibase changesets): line spans, blanking
//! everything but a slice while keeping every line where it was, and
//! `${name}` substitution (Flyway placeholders, goose ENVSUBST).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use crate::error::{Error, Location, Result};

/// One line of a text: its 1-based number, its byte span including the line
/// break, and its content without the break (nor a `\r` before it).
pub(crate) struct Line<'a> {
    pub number: usize,
    pub span: Range<usize>,
    pub text: &'a str,
}

pub(crate) fn lines(text: &str) -> impl Iterator<Item = Line<'_>> {
    let mut offset = 0;
    text.split_inclusive('\n').enumerate().map(move |(i, raw)| {
        let span = offset..offset + raw.len();
        offset += raw.len();
        let content = raw.strip_suffix('\n').unwrap_or(raw);
        let content = content.strip_suffix('\r').unwrap_or(content);
        Line { number: i + 1, span, text: content }
    })
}

/// `text` with every byte outside `keep` replaced by a space, line breaks
/// kept: the kept SQL sits at the same line, column and byte offset as in
/// the real file, so PostgreSQL's error positions map back to it.
pub(crate) fn blank_outside(text: &str, keep: &[Range<usize>]) -> String {
    let mut out = text.as_bytes().to_vec();
    // One mark per byte, so the cost is the text's length plus the ranges'
    // (a Liquibase changelog keeps one range per line of every changeset).
    let mut kept = vec![false; out.len()];
    for r in keep {
        let end = r.end.min(kept.len());
        kept[r.start.min(end)..end].fill(true);
    }
    for (b, k) in out.iter_mut().zip(kept) {
        if !k && *b != b'\n' && *b != b'\r' {
            *b = b' ';
        }
    }
    // Only whole characters are replaced (each byte by an ASCII space), so
    // the result is valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// `text` with the bytes of `ranges` replaced by spaces (line breaks kept).
pub(crate) fn blank(text: &str, ranges: &[Range<usize>]) -> String {
    let mut keep = Vec::new();
    let mut from = 0;
    let mut sorted = ranges.to_vec();
    sorted.sort_by_key(|r| r.start);
    for r in sorted {
        keep.push(from..r.start.max(from));
        from = from.max(r.end);
    }
    keep.push(from..text.len());
    blank_outside(text, &keep)
}

/// How `${...}` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// Flyway: `${name}`, the whole name looked up.
    Placeholder,
    /// goose ENVSUBST: `${NAME}`, `${NAME:-default}` and `${NAME-default}`.
    Shell,
}

/// Replaces `${name}` on the lines of `text` for which `in_scope(line)`
/// holds with `values[name]`, else `builtin(name)`, else (shell syntax) the
/// default written after `:-`; a name with none of these is an error at its
/// line.
pub(crate) fn substitute(
    path: &Path,
    text: &str,
    syntax: Syntax,
    values: &BTreeMap<String, String>,
    builtin: &dyn Fn(&str) -> Option<String>,
    in_scope: &dyn Fn(usize) -> bool,
) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    for line in lines(text) {
        let raw = &text[line.span.clone()];
        if !in_scope(line.number) || !raw.contains("${") {
            out.push_str(raw);
            continue;
        }
        let mut rest = raw;
        while let Some(p) = rest.find("${") {
            out.push_str(&rest[..p]);
            let after = &rest[p + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[p..]);
                rest = "";
                break;
            };
            let inner = &after[..end];
            let (name, default) = match syntax {
                Syntax::Placeholder => (inner, None),
                Syntax::Shell => match inner.split_once(":-").or_else(|| inner.split_once('-')) {
                    Some((n, d)) => (n, Some(d)),
                    None => (inner, None),
                },
            };
            let value = values.get(name).cloned().or_else(|| builtin(name)).or(default.map(str::to_string));
            match value {
                Some(v) => out.push_str(&v),
                None => return Err(Error::MissingPlaceholder { at: Location::line(path, line.number), name: name.to_string() }),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanking_keeps_lines_and_offsets() {
        let text = "-- up\nCREATE TABLE é(x int);\n-- down\nDROP TABLE é;\n";
        let start = text.find("DROP").unwrap();
        let b = blank_outside(text, std::slice::from_ref(&(start..text.len())));
        assert_eq!(b.len(), text.len());
        assert_eq!(b.lines().count(), text.lines().count());
        assert_eq!(&b[start..], &text[start..]);
        assert!(b[..start].trim().is_empty());
    }

    #[test]
    fn placeholders_are_replaced_or_named() {
        let values: BTreeMap<String, String> = [("schema".to_string(), "app".to_string())].into();
        let none = |_: &str| None;
        let all = |_: usize| true;
        let got = substitute(Path::new("V1__a.sql"), "SET search_path = ${schema};\n", Syntax::Placeholder, &values, &none, &all).unwrap();
        assert_eq!(got, "SET search_path = app;\n");
        let e = substitute(Path::new("V1__a.sql"), "SELECT 1;\nSELECT '${owner}';\n", Syntax::Placeholder, &values, &none, &all).unwrap_err();
        assert_eq!(e.to_string(), "V1__a.sql:2: no value for placeholder `owner`");
        let got = substitute(Path::new("1_a.sql"), "SELECT '${REGION:-eu}', '${schema}';\n", Syntax::Shell, &values, &none, &all).unwrap();
        assert_eq!(got, "SELECT 'eu', 'app';\n");
        let only_two = |n: usize| n == 2;
        let got = substitute(Path::new("1_a.sql"), "SELECT '${X}';\nSELECT '${schema}';\n", Syntax::Shell, &values, &none, &only_two).unwrap();
        assert_eq!(got, "SELECT '${X}';\nSELECT 'app';\n");
    }
}
