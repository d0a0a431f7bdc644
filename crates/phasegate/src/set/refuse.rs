//! What a phasegate migration or rollback file may not run, and why: its
//! own transaction control (the engine runs each step in a transaction of
//! its own, with its ledger rows and checks), and, in a rollback file,
//! anything that keeps phasegate's backup triggers from firing. `set::load`
//! refuses the first of these as a load error; `lint` reports every one as a
//! finding (`transaction-control`, `trigger-bypass`). The statements are
//! found by `sqltext::transaction_control` and `sqltext::trigger_bypass`.
//!
//! A forward file may disable triggers: no backup trigger of phasegate's is
//! in place while one runs (a rollback creates its own, enabled, in its own
//! transaction), so lint only warns that the table's own triggers are
//! skipped.

use std::path::Path;

use crate::error::{Error, LoadError, Location, Result};
use crate::sqltext;

pub(crate) const TRANSACTION_CONTROL: &str = "transaction-control";
pub(crate) const TRIGGER_BYPASS: &str = "trigger-bypass";

const TX_FIX: &str = "remove it; a statement PostgreSQL refuses inside a transaction goes alone in a file that starts with `-- phasegate: no-transaction`";
const ROLLBACK_BYPASS_FIX: &str =
    "let the rollback's statements fire the triggers; to keep one of your own triggers out of the way, drop it in the rollback (and re-create it) instead of disabling it";
const FORWARD_BYPASS_FIX: &str = "re-enable what you disable in the same file, and make sure nothing the skipped triggers maintain is left out of date";

/// A statement of a file that phasegate refuses or warns about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The lint rule: `TRANSACTION_CONTROL` or `TRIGGER_BYPASS`.
    pub rule: &'static str,
    /// Byte offset and 1-based line of the statement (or of the clause
    /// inside it).
    pub start: usize,
    pub line: usize,
    pub message: String,
    pub fix: &'static str,
    /// A load error; otherwise a lint warning only.
    pub refused: bool,
}

/// Every statement of a forward (`rollback` false) or rollback file (its
/// text lexed) that phasegate refuses or warns about, by position.
pub(crate) fn refusals(lexed: &sqltext::Lexed<'_>, rollback: bool) -> Vec<Refusal> {
    let what = if rollback { "rollback" } else { "migration" };
    let mut out: Vec<Refusal> = sqltext::transaction_control(lexed)
        .into_iter()
        .map(|f| Refusal {
            rule: TRANSACTION_CONTROL,
            start: f.start,
            line: f.line,
            message: format!(
                "`{}` in a {what} file: phasegate runs each {what} in a transaction of its own with its ledger rows and checks, and the file's own transaction control would commit or undo part of it whatever the checks say",
                f.kind
            ),
            fix: TX_FIX,
            refused: true,
        })
        .collect();
    out.extend(sqltext::trigger_bypass(lexed).into_iter().map(|f| {
        let (message, fix) = if rollback {
            (format!("{} in a rollback file keeps phasegate's backup triggers from seeing the rows the rollback changes, so they could not be restored", f.kind), ROLLBACK_BYPASS_FIX)
        } else {
            (format!("{} keeps triggers from firing: the rows this migration changes skip the table's own triggers (and, with session_replication_role, foreign-key checks)", f.kind), FORWARD_BYPASS_FIX)
        };
        Refusal { rule: TRIGGER_BYPASS, start: f.start, line: f.line, message, fix, refused: rollback }
    }));
    out.sort_by_key(|r| r.start);
    out
}

/// The first refused statement of a forward or rollback file, as a load
/// error at its line.
pub(super) fn check(path: &Path, lexed: &sqltext::Lexed<'_>, rollback: bool) -> Result<()> {
    match refusals(lexed, rollback).into_iter().find(|r| r.refused) {
        Some(r) => Err(Error::Load { at: Location::line(path, r.line), kind: LoadError::Refused { message: r.message, fix: r.fix.to_string() } }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_control_is_refused_in_both_and_bypasses_in_rollbacks_only() {
        let text = "UPDATE t SET a = 1;\nALTER TABLE t DISABLE TRIGGER USER;\nCOMMIT;\n";
        let lexed = sqltext::Lexed::new(text);
        let rules = |rollback| refusals(&lexed, rollback).into_iter().map(|r| (r.rule, r.line, r.refused)).collect::<Vec<_>>();
        assert_eq!(rules(true), [(TRIGGER_BYPASS, 2, true), (TRANSACTION_CONTROL, 3, true)]);
        assert_eq!(rules(false), [(TRIGGER_BYPASS, 2, false), (TRANSACTION_CONTROL, 3, true)]);
        let e = check(Path::new("rollback/V2__x.sql"), &lexed, true).unwrap_err().to_string();
        assert!(e.starts_with("rollback/V2__x.sql:2: `ALTER TABLE ... DISABLE TRIGGER USER` in a rollback file keeps phasegate's backup triggers"), "{e}");
        let e = check(Path::new("migrations/V2__x.sql"), &lexed, false).unwrap_err().to_string();
        assert!(e.starts_with("migrations/V2__x.sql:3: `COMMIT` in a migration file: phasegate runs each migration in a transaction of its own"), "{e}");
        assert!(!e.contains('\n'));
        assert!(check(Path::new("m.sql"), &sqltext::Lexed::new("DO $$ BEGIN COMMIT; END $$;\nSELECT 1;"), false).is_ok());
    }
}
