//! squawk (squawk-linter 2.68) as a library, made phase-aware: which of
//! its rules are destructive, lock or advice rules, which are off and why,
//! and phasegate's fix texts where they are better than squawk's help.

use squawk_linter::{Linter, Rule, Violation};
use squawk_syntax::{SourceFile, SyntaxKind};

use super::created::Created;
use super::{file_name, Finding, Severity};
use crate::set::{Phase, SqlFile};
use crate::sqltext;

/// squawk rules phasegate turns off, and why.
const DISABLED: &[(Rule, &str)] = &[
    (Rule::RequireLockTimeout, "the engine sets lock_timeout for every migration and rollback (--lock-timeout, `-- phasegate: lock-timeout`); a SET in the file would override the operator's flag"),
    (Rule::RequireStatementTimeout, "the engine sets statement_timeout (--statement-timeout, `-- phasegate: statement-timeout`)"),
    (Rule::BanConcurrentIndexCreationInTransaction, "replaced by `concurrently-in-transaction`, which reads the no-transaction directive; squawk assumes a one-statement file runs outside a transaction, phasegate does not"),
    (Rule::TransactionNesting, "replaced by `transaction-control`, which `set::load` also refuses, knows every transaction-control statement and skips `BEGIN ATOMIC` function bodies"),
    (Rule::BanUncommittedTransaction, "replaced by `transaction-control`: phasegate refuses a file's own BEGIN, committed or not"),
    (Rule::PreferBigintOverInt, "a type choice of the schema's design, not a lock hazard of the migration"),
    (Rule::PreferBigintOverSmallint, "a type choice of the schema's design, not a lock hazard of the migration"),
    (Rule::PreferIdentity, "a type choice of the schema's design, not a lock hazard of the migration"),
    (Rule::PreferTextField, "a type choice of the schema's design, not a lock hazard of the migration"),
    (Rule::PreferTimestampTz, "a type choice of the schema's design, not a lock hazard of the migration"),
    (Rule::BanCharField, "a type choice of the schema's design, not a lock hazard of the migration"),
];

/// Rules that remove or rename what a running application uses: expected in
/// an irreversible cleanup phase, errors in a reversible one.
const DESTRUCTIVE: &[Rule] = &[
    Rule::BanDropColumn,
    Rule::BanDropTable,
    Rule::BanDropDatabase,
    Rule::BanDropType,
    Rule::BanDropView,
    Rule::BanDropFunction,
    Rule::BanDropSchema,
    Rule::BanDropSequence,
    Rule::BanDropDomain,
    Rule::BanDropConstraint,
    Rule::BanDropDefault,
    Rule::BanDropNotNull,
    Rule::BanDropGeneratedExpression,
    Rule::BanDropExtension,
    Rule::BanTruncateCascade,
    Rule::RenamingColumn,
    Rule::RenamingTable,
    Rule::RenamingObject,
    Rule::ChangingColumnType,
    Rule::BanSetSchema,
    Rule::BanAlterIdentity,
];

/// Rules about locks held on tables with rows: not applied to the baseline.
const LOCK: &[Rule] = &[
    Rule::RequireConcurrentIndexCreation,
    Rule::RequireConcurrentIndexDeletion,
    Rule::ConstraintMissingNotValid,
    Rule::AddingFieldWithDefault,
    Rule::AddingForeignKeyConstraint,
    Rule::AddingNotNullableField,
    Rule::AddingSerialPrimaryKeyField,
    Rule::AddingRequiredField,
    Rule::DisallowedUniqueConstraint,
    Rule::PreferRepack,
    Rule::RequireConcurrentPartitionDetach,
    Rule::RequireConcurrentReindex,
    Rule::BanCreateDomainWithConstraint,
    Rule::BanAlterDomainWithAddConstraint,
];

/// squawk rules reported as warnings (advice); all others are errors.
const ADVICE: &[Rule] = &[Rule::PreferRobustStmts, Rule::RequireEnumValueOrdering, Rule::UnusedIgnore];

pub(super) const NO_TX_FIX: &str = "put it alone in a migration file that starts with `-- phasegate: no-transaction`";
const NOT_VALID_FIX: &str =
    "add the constraint `NOT VALID`, then `ALTER TABLE ... VALIDATE CONSTRAINT` in a migration of its own (its scan then takes only SHARE UPDATE EXCLUSIVE)";
const DESTRUCTIVE_FIX: &str =
    "add the replacement beside the old object in this phase, and drop or rename the old one in an irreversible cleanup phase (`reversible = false` with a `reason`) once no application version uses it";

fn disabled() -> Vec<Rule> {
    DISABLED.iter().map(|(r, _)| *r).collect()
}

pub(super) fn findings(phase: &Phase, file: &SqlFile, created: &Created) -> Vec<Finding> {
    // A batch file's `:batch_size` placeholder becomes a number of the same
    // length, so squawk parses it and byte offsets stay the same.
    let text = &file.text.replace(":batch_size", "00000000001").replace(":last_key", "NULL     ");
    let parse = SourceFile::parse(text);
    let mut out = Vec::new();
    let lines = sqltext::LineIndex::new(text);
    let finding = |rule: String, severity, byte: usize, message: String, fix: Option<String>| {
        let (line, column) = lines.line_col(text, byte);
        Finding { rule, severity, file: file_name(file), line, column, message, fix, phase: Some(phase.id) }
    };
    for e in parse.errors() {
        out.push(finding(
            "syntax-error".into(),
            Severity::Error,
            usize::from(e.range().start()),
            format!("squawk cannot parse this SQL: {}", e.message()),
            Some("check the statement; PostgreSQL will most likely refuse it too".into()),
        ));
    }
    let mut linter = Linter::with_rules(&[], &disabled());
    linter.settings.assume_in_transaction = !file.directives.no_transaction;
    let root = parse.syntax_node();
    for v in linter.lint(&parse, text) {
        let Some(severity) = phase_severity(phase, &v, || {
            let target = target_text(&root, &v);
            created.covers(v.code, &sqltext::tokens(&target))
        }) else {
            continue;
        };
        let fix = fix_for(&v);
        out.push(finding(v.code.to_string(), severity, usize::from(v.text_range.start()), v.message.clone(), fix));
    }
    out
}

/// The severity of a squawk violation in `phase`, or `None` when it is
/// expected there. `undoes_own` says whether the violation only takes away
/// what the same migration's forward file created.
fn phase_severity(phase: &Phase, v: &Violation, undoes_own: impl FnOnce() -> bool) -> Option<Severity> {
    if DESTRUCTIVE.contains(&v.code) {
        let cleanup = !phase.is_reversible() && !phase.is_baseline();
        return if cleanup || undoes_own() { None } else { Some(Severity::Error) };
    }
    if LOCK.contains(&v.code) && phase.is_baseline() {
        return None;
    }
    Some(if ADVICE.contains(&v.code) { Severity::Warning } else { Severity::Error })
}

/// The text of the ALTER TABLE action or statement a violation sits in (the
/// violation's own range may hold only `DROP NOT NULL`, not the column).
fn target_text(root: &squawk_syntax::SyntaxNode, v: &Violation) -> String {
    for n in root.covering_element(v.text_range).ancestors() {
        if matches!(n.parent().map(|p| p.kind()), Some(SyntaxKind::ALTER_TABLE) | Some(SyntaxKind::SOURCE_FILE) | None) {
            return n.text().to_string();
        }
    }
    String::new()
}

/// phasegate's fix for a violation: its own where it knows better than
/// squawk's generic help, else squawk's help.
fn fix_for(v: &Violation) -> Option<String> {
    let own = match v.code {
        Rule::RequireConcurrentIndexCreation => Some(format!("use `CREATE INDEX CONCURRENTLY` and {NO_TX_FIX}")),
        Rule::RequireConcurrentIndexDeletion => Some(format!("use `DROP INDEX CONCURRENTLY` and {NO_TX_FIX}")),
        Rule::RequireConcurrentReindex => Some(format!("use `REINDEX ... CONCURRENTLY` and {NO_TX_FIX}")),
        Rule::ConstraintMissingNotValid if v.message.contains("same transaction") => {
            Some("move `VALIDATE CONSTRAINT` into a migration of its own: in its own transaction the scan takes only SHARE UPDATE EXCLUSIVE".into())
        }
        Rule::ConstraintMissingNotValid | Rule::AddingForeignKeyConstraint => Some(NOT_VALID_FIX.into()),
        Rule::AddingNotNullableField => Some(
            "add `CHECK (col IS NOT NULL) NOT VALID`, `VALIDATE CONSTRAINT` it in a migration of its own, then `SET NOT NULL` (PostgreSQL 12+ uses the validated check and skips the scan) and drop the check".into(),
        ),
        r if DESTRUCTIVE.contains(&r) => Some(DESTRUCTIVE_FIX.into()),
        _ => None,
    };
    own.or_else(|| v.help.clone())
}

