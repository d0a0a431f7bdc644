//! How another tool's file runs with respect to transactions, read from
//! the file itself, so the rehearsal runs it as its tool does instead of
//! failing inside a transaction of its own:
//!
//! * A file that starts with `BEGIN` and ends with `COMMIT` (Sqitch's
//!   scripts, many golang-migrate files) is one transaction: both
//!   statements are blanked (lines kept) and the rest runs in the
//!   rehearsal's transaction, which is what the file asked for.
//! * Any other transaction control (several transactions, a `COMMIT` in
//!   the middle, a `ROLLBACK`) runs outside a transaction, statement by
//!   statement, as psql or a driver sending the file as it is runs it.
//! * A statement PostgreSQL refuses inside a transaction block (`CREATE
//!   INDEX CONCURRENTLY`, `VACUUM`, ...) runs outside one for the tools
//!   that send a file as it is (golang-migrate, Flyway, the generic
//!   pairs); goose, dbmate, sqlx and diesel wrap files in a transaction
//!   unless the file opts out, so there it fails as it does in the tool.
//!
//! A file that runs outside a transaction is rehearsed on a clone of the
//! chain (see `rehearse`).

use std::ops::Range;

use super::text::blank;
use super::Layout;
use crate::set::SqlFile;
use crate::sqltext::Statement;

/// A statement's transaction control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Control {
    Begin,
    Commit,
    Rollback,
}

/// The transaction control a statement is, if any (`ROLLBACK TO SAVEPOINT`
/// and `BEGIN ATOMIC` bodies are not).
pub(super) fn control(statement: &str) -> Option<Control> {
    // A goose statement's range holds its `;`.
    let s = crate::sqltext::strip_comments(statement).trim_end().trim_end_matches(';').to_ascii_uppercase();
    let words: Vec<&str> = s.split_whitespace().collect();
    let only = |w: &[&str]| words.len() == 1 || (words.len() == 2 && w.contains(&words[1]));
    match words.first().copied() {
        Some("BEGIN") if only(&["TRANSACTION", "WORK"]) || words.get(1) == Some(&"ISOLATION") => Some(Control::Begin),
        Some("START") if words.get(1) == Some(&"TRANSACTION") => Some(Control::Begin),
        Some("COMMIT" | "END") if only(&["TRANSACTION", "WORK"]) => Some(Control::Commit),
        Some("ROLLBACK" | "ABORT") if only(&["TRANSACTION", "WORK"]) => Some(Control::Rollback),
        _ => None,
    }
}

/// The byte range of a statement with its terminating `;`.
pub(super) fn with_semicolon(text: &str, st: &Statement) -> Range<usize> {
    let end = if text[st.end..].starts_with(';') { st.end + 1 } else { st.end };
    st.start..end
}

/// How a file's own transaction control reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Shape {
    /// No transaction control.
    None,
    /// `BEGIN` first, `COMMIT` last, nothing else: these two ranges.
    Wrapped([Range<usize>; 2]),
    /// Anything else: the line of the first control statement.
    Other(usize),
}

/// Reads a file's transaction control.
pub(super) fn shape(text: &str, statements: &[Statement]) -> Shape {
    let controls: Vec<(usize, Control)> = statements.iter().enumerate().filter_map(|(i, st)| control(&text[st.start..st.end]).map(|c| (i, c))).collect();
    let Some(&(first, _)) = controls.first() else { return Shape::None };
    let last = statements.len() - 1;
    if controls.len() == 2 && controls[0] == (0, Control::Begin) && controls[1] == (last, Control::Commit) {
        return Shape::Wrapped([with_semicolon(text, &statements[0]), with_semicolon(text, &statements[last])]);
    }
    Shape::Other(statements[first].line)
}

/// Statements PostgreSQL refuses inside a transaction block.
pub(super) fn non_transactional(text: &str, statements: &[Statement]) -> bool {
    statements.iter().any(|st| {
        let s = crate::sqltext::strip_comments(&text[st.start..st.end]).to_ascii_uppercase();
        let words: Vec<&str> = s.split_whitespace().take(4).collect();
        let concurrently = words.contains(&"CONCURRENTLY");
        matches!(words.as_slice(), ["CREATE", "INDEX", ..] | ["CREATE", "UNIQUE", "INDEX", ..] | ["DROP", "INDEX", ..] | ["REINDEX", ..]) && concurrently
            || matches!(words.as_slice(), ["VACUUM", ..] | ["CREATE", "DATABASE", ..] | ["DROP", "DATABASE", ..] | ["ALTER", "SYSTEM", ..] | ["CREATE", "TABLESPACE", ..] | ["DROP", "TABLESPACE", ..])
    })
}

/// Whether the tool sends a file to PostgreSQL as it is, wrapping no
/// transaction around it.
fn sends_as_is(tool: Layout) -> bool {
    matches!(tool, Layout::GolangMigrate | Layout::Flyway | Layout::Files)
}

/// `file` as its tool runs it: a wrapping `BEGIN`/`COMMIT` blanked, other
/// transaction control or (for tools that send files as they are) a
/// statement that cannot run in a transaction marks it `no_transaction`.
/// A file already outside a transaction is left as it is.
pub(super) fn as_tool_runs(mut file: SqlFile, tool: Layout) -> SqlFile {
    if file.directives.no_transaction {
        return file;
    }
    let statements = file.statements();
    match shape(&file.text, &statements) {
        Shape::Wrapped(ranges) => {
            file.text = blank(&file.text, &ranges);
            return file;
        }
        Shape::Other(_) => file.directives.no_transaction = true,
        Shape::None => file.directives.no_transaction = sends_as_is(tool) && non_transactional(&file.text, &statements),
    }
    file
}

/// For a file its tool runs outside a transaction, statement by statement:
/// its text with every `BEGIN` and `COMMIT` blanked (lines kept), to run as
/// one transaction, when that is equivalent for a file that succeeds (no
/// `ROLLBACK`, no statement PostgreSQL refuses in a transaction); `None`
/// otherwise.
pub(crate) fn in_one_transaction(file: &SqlFile) -> Option<String> {
    let statements = file.statements();
    if non_transactional(&file.text, &statements) {
        return None;
    }
    let mut ranges = Vec::new();
    for st in &statements {
        match control(&file.text[st.start..st.end]) {
            Some(Control::Rollback) => return None,
            Some(_) => ranges.push(with_semicolon(&file.text, st)),
            None => {}
        }
    }
    Some(blank(&file.text, &ranges))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, tool: Layout) -> SqlFile {
        as_tool_runs(crate::foreign::sql_file(std::path::Path::new("m.sql"), text.to_string(), false), tool)
    }

    #[test]
    fn control_statements_are_recognised() {
        assert_eq!(control("BEGIN"), Some(Control::Begin));
        assert_eq!(control("start transaction isolation level serializable"), Some(Control::Begin));
        assert_eq!(control("-- done\nCOMMIT"), Some(Control::Commit));
        assert_eq!(control("ROLLBACK"), Some(Control::Rollback));
        assert_eq!(control("COMMIT;"), Some(Control::Commit), "a goose statement keeps its semicolon");
        assert_eq!(control("ROLLBACK TO SAVEPOINT a"), None);
        assert_eq!(control("BEGIN ATOMIC SELECT 1; END"), None);
    }

    #[test]
    fn files_run_as_their_tool_runs_them() {
        let wrapped = run("BEGIN;\nCREATE TABLE t (x int);\nCOMMIT;\n", Layout::Goose);
        assert!(!wrapped.directives.no_transaction);
        assert_eq!(wrapped.text.split_whitespace().collect::<Vec<_>>().join(" "), "CREATE TABLE t (x int);");
        assert_eq!(wrapped.statements()[0].line, 2, "lines are kept");
        let two = run("BEGIN;\nCREATE TABLE t (x int);\nCOMMIT;\nBEGIN;\nCREATE TABLE u (x int);\nCOMMIT;\n", Layout::Dbmate);
        assert!(two.directives.no_transaction && two.text.contains("COMMIT"), "two transactions run as they are");
        let cic = "CREATE INDEX CONCURRENTLY i ON t (x);";
        assert!(run(cic, Layout::GolangMigrate).directives.no_transaction);
        assert!(run(cic, Layout::Files).directives.no_transaction);
        assert!(!run(cic, Layout::Goose).directives.no_transaction, "goose wraps it unless NO TRANSACTION");
        assert!(!run("CREATE TABLE t (x int);", Layout::GolangMigrate).directives.no_transaction);
        assert_eq!(in_one_transaction(&two).unwrap().split_whitespace().collect::<Vec<_>>().join(" "), "CREATE TABLE t (x int); CREATE TABLE u (x int);");
        assert_eq!(in_one_transaction(&run("BEGIN;\nSELECT 1;\nROLLBACK;\nSELECT 2;", Layout::Dbmate)), None, "a ROLLBACK undoes");
        assert_eq!(in_one_transaction(&run("SELECT 1;\nCREATE INDEX CONCURRENTLY i ON t (x);", Layout::GolangMigrate)), None);
    }
}
