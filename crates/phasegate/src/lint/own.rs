//! phasegate's own lint rules, which read the directives squawk does not
//! know: `concurrently-in-transaction`, `enum-value-in-transaction` and
//! `unbatched-update`; and the statements `set::load` refuses
//! (`transaction-control`, `trigger-bypass`) as findings.

use super::created::{qualified_last, words_at, Created};
use super::squawk::NO_TX_FIX;
use super::{file_name, Finding, Severity};
use crate::set::{Phase, SqlFile};
use crate::sqltext::{self, Token};

/// phasegate's own rules: transactions, enum values, unbatched updates.
pub(super) fn findings(phase: &Phase, file: &SqlFile, rollback: bool, created: &Created) -> Vec<Finding> {
    let mut out = Vec::new();
    let lines = sqltext::LineIndex::new(&file.text);
    for st in sqltext::statements(&file.text) {
        let t = sqltext::tokens(&file.text[st.start..st.end]);
        let (line, column) = lines.line_col(&file.text, st.start);
        let mut push = |rule: &str, severity, message: String, fix: String| {
            out.push(Finding { rule: rule.into(), severity, file: file_name(file), line, column, message, fix: Some(fix), phase: Some(phase.id) })
        };
        if !file.directives.no_transaction && needs_no_transaction(&t) {
            push(
                "concurrently-in-transaction",
                Severity::Error,
                "PostgreSQL refuses CONCURRENTLY inside a transaction block, and this file runs in one".into(),
                NO_TX_FIX.into(),
            );
        }
        if !file.directives.no_transaction && adds_enum_value(&t) {
            push(
                "enum-value-in-transaction",
                Severity::Warning,
                "a value added with ALTER TYPE ... ADD VALUE cannot be used until its transaction commits".into(),
                format!("{NO_TX_FIX}, before the migrations that use the value"),
            );
        }
        if !rollback && !phase.is_baseline() && file.directives.batch.is_none() {
            if let Some(table) = whole_table_update(&t) {
                if !created.objects.contains(&table) {
                    push(
                        "unbatched-update",
                        Severity::Warning,
                        format!("this UPDATE can change every row of `{table}` in one transaction, holding their row locks until it commits"),
                        "make it a batched backfill: `-- phasegate: batch 5000` and `UPDATE ... WHERE id = ANY (ARRAY(SELECT id ... LIMIT :batch_size))`".into(),
                    );
                }
            }
        }
    }
    out
}

/// Each statement `set::refuse` names: an error where `set::load` refuses
/// it, else a warning.
pub(super) fn refusals(phase: &Phase, file: &SqlFile, rollback: bool) -> Vec<Finding> {
    let lexed = sqltext::Lexed::new(&file.text);
    crate::set::refuse::refusals(&lexed, rollback)
        .into_iter()
        .map(|r| {
            let (line, column) = lexed.index.line_col(&file.text, r.start);
            let severity = if r.refused { Severity::Error } else { Severity::Warning };
            Finding { rule: r.rule.into(), severity, file: file_name(file), line, column, message: r.message, fix: Some(r.fix.into()), phase: Some(phase.id) }
        })
        .collect()
}

/// `CREATE/DROP INDEX CONCURRENTLY`, `REINDEX ... CONCURRENTLY`,
/// `ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY`.
fn needs_no_transaction(t: &[Token]) -> bool {
    let Some(first) = t.first() else { return false };
    if !["create", "drop", "reindex", "alter"].iter().any(|w| first.is_word(w)) {
        return false;
    }
    let mut depth = 0i32;
    for x in t {
        match x {
            Token::Punct('(') => depth += 1,
            Token::Punct(')') => depth -= 1,
            _ if depth == 0 && x.is_word("concurrently") => return true,
            _ => {}
        }
    }
    false
}

fn adds_enum_value(t: &[Token]) -> bool {
    words_at(t, &["alter", "type"]) && t.windows(2).any(|w| w[0].is_word("add") && w[1].is_word("value"))
}

/// The table of an `UPDATE` that may touch every row: no WHERE, or a WHERE
/// that never compares with a literal (`= 'x'`, `= 3`, `IN ('a', ...)`).
fn whole_table_update(t: &[Token]) -> Option<String> {
    if !t.first()?.is_word("update") {
        return None;
    }
    let mut i = 1;
    if t.get(i).is_some_and(|x| x.is_word("only")) {
        i += 1;
    }
    let table = qualified_last(&t[i.min(t.len())..])?;
    let mut depth = 0i32;
    let mut where_at = None;
    for (k, x) in t.iter().enumerate() {
        match x {
            Token::Punct('(') => depth += 1,
            Token::Punct(')') => depth -= 1,
            _ if depth == 0 && x.is_word("where") => {
                where_at = Some(k);
                break;
            }
            _ => {}
        }
    }
    let Some(w) = where_at else { return Some(table) };
    let cond = &t[w + 1..];
    let literal_eq = cond.windows(2).any(|p| {
        matches!((&p[0], &p[1]), (Token::Punct('='), Token::Literal) | (Token::Literal, Token::Punct('=')))
    });
    let literal_in = cond.windows(3).any(|p| p[0].is_word("in") && p[1] == Token::Punct('(') && p[2] == Token::Literal);
    if literal_eq || literal_in {
        None
    } else {
        Some(table)
    }
}

