//! `lint` (SPEC 4): the set's structure (SPEC 3, enforced by `set::load`)
//! plus lock-safety rules on every forward and rollback file, with the squawk
//! linter (squawk-linter 2.68, PostgreSQL 15 semantics) used as a library,
//! made phase-aware with what the set knows and squawk does not.
//!
//! How squawk is run: each file is parsed with `SourceFile::parse` and linted
//! with `Linter::with_rules(&[], DISABLED)`; `assume_in_transaction` is set
//! unless the file says `-- phasegate: no-transaction`, because the engine
//! runs every other file in one transaction. A violation's byte range becomes
//! a line and column; its rule name, message and help become a `Finding`
//! (phasegate's own fix text replaces squawk's help where phasegate has a
//! better one, e.g. the no-transaction file for CONCURRENTLY).
//!
//! Phase awareness:
//! - destructive rules (drops, renames, type changes, `DESTRUCTIVE`) are
//!   expected in an irreversible cleanup phase (`!reversible && !baseline`),
//!   expected in a rollback file when they undo what the same migration's
//!   forward file created (a rollback dropping the column its forward file
//!   added, or dropping the NOT NULL its forward file set), expected in a
//!   forward file when the object was created in that same file, and errors
//!   everywhere else: in a reversible phase they destroy what the rollback
//!   cannot bring back, and break the application version still running;
//! - lock rules (`LOCK`) do not apply to the baseline phase, which describes
//!   a schema that already exists; squawk itself skips tables created in the
//!   same transaction (they have no rows yet);
//! - squawk rules that conflict with phasegate's model are off (`DISABLED`,
//!   each with its reason: the timeout rules, because the engine sets the
//!   timeouts; squawk's CONCURRENTLY-in-transaction rule, replaced by one that
//!   reads the directive; the type-preference rules, which judge the schema's
//!   design rather than what a migration does to a live table);
//! - kept on purpose: `transaction-nesting` (a BEGIN or COMMIT in a file
//!   would break the step's one transaction with its ledger rows and checks)
//!   and `prefer-robust-stmts` as a warning (it only speaks outside a
//!   transaction, i.e. in no-transaction files, where a failed statement is
//!   not undone and a re-run should not trip over what it left);
//! - a squawk parse error is a `syntax-error` finding; a batch file's
//!   `:batch_size` is replaced by a number of the same length first, and
//!   `:last_key` by a NULL of the same length.
//!
//! phasegate's own rules, which need the directives squawk does not know:
//! - `set-structure`: a load error (SPEC 3); linting stops there;
//! - `concurrently-in-transaction`: `CREATE/DROP INDEX CONCURRENTLY`,
//!   `REINDEX ... CONCURRENTLY` or `DETACH PARTITION ... CONCURRENTLY` in a
//!   file without `-- phasegate: no-transaction` (PostgreSQL refuses them in a
//!   transaction block); squawk's own rule assumes a one-statement file runs
//!   outside a transaction, which is not so here;
//! - `enum-value-in-transaction`: `ALTER TYPE ... ADD VALUE` in a transactional
//!   file (the value cannot be used until the transaction commits);
//! - `unbatched-update`: an UPDATE that can touch every row of a table that
//!   existed before the migration (no WHERE, or none comparing with a
//!   literal), outside the baseline and without `-- phasegate: batch N`: it
//!   holds the row locks of the whole table until it commits. Forward files
//!   only: the engine runs a rollback file in one transaction and does not
//!   batch it, so there is no fix to offer there yet.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;
use squawk_linter::{Linter, Rule, Violation};
use squawk_syntax::{SourceFile, SyntaxKind};

use crate::error::{display_path, Error, Location};
use crate::set::{self, MigrationSet, Phase, SqlFile};
use crate::sqltext;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One lint finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// squawk's rule name (`require-concurrent-index-creation`) or one of
    /// phasegate's (`set-structure`, `concurrently-in-transaction`, ...).
    pub rule: String,
    pub severity: Severity,
    pub file: String,
    /// 1-based; 0 when the finding is about the file as a whole.
    pub line: usize,
    /// 1-based; 0 when unknown.
    pub column: usize,
    pub message: String,
    pub fix: Option<String>,
    /// The phase of the file; `None` for a set that does not load.
    pub phase: Option<u32>,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = Location { file: self.file.clone().into(), line: self.line, column: self.column };
        write!(f, "{at}: {} {}: {}", self.severity, self.rule, self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, " (fix: {fix})")?;
        }
        Ok(())
    }
}

/// squawk rules phasegate turns off, and why.
const DISABLED: &[(Rule, &str)] = &[
    (Rule::RequireLockTimeout, "the engine sets lock_timeout for every migration and rollback (--lock-timeout, `-- phasegate: lock-timeout`); a SET in the file would override the operator's flag"),
    (Rule::RequireStatementTimeout, "the engine sets statement_timeout (--statement-timeout, `-- phasegate: statement-timeout`)"),
    (Rule::BanConcurrentIndexCreationInTransaction, "replaced by `concurrently-in-transaction`, which reads the no-transaction directive; squawk assumes a one-statement file runs outside a transaction, phasegate does not"),
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

const NO_TX_FIX: &str = "put it alone in a migration file that starts with `-- phasegate: no-transaction`";
const NOT_VALID_FIX: &str =
    "add the constraint `NOT VALID`, then `ALTER TABLE ... VALIDATE CONSTRAINT` in a migration of its own (its scan then takes only SHARE UPDATE EXCLUSIVE)";
const DESTRUCTIVE_FIX: &str =
    "add the replacement beside the old object in this phase, and drop or rename the old one in an irreversible cleanup phase (`reversible = false` with a `reason`) once no application version uses it";

/// Lints the set in `dir`: a set that does not load is one `set-structure`
/// finding naming the file and line.
pub fn lint_dir(dir: &Path) -> Vec<Finding> {
    match set::load(dir) {
        Ok(set) => lint_set(&set),
        Err(e) => vec![load_finding(dir, &e)],
    }
}

fn load_finding(dir: &Path, e: &Error) -> Finding {
    let (file, line, column, message) = match e {
        Error::Load { at, message } => (display_path(&at.file), at.line, at.column, message.clone()),
        Error::Io { path, source } => (display_path(path), 0, 0, source.to_string()),
        other => (display_path(dir), 0, 0, other.to_string()),
    };
    Finding { rule: "set-structure".into(), severity: Severity::Error, file, line, column, message, fix: None, phase: None }
}

/// Every finding of a loaded set, phase by phase, file by file, in order.
pub fn lint_set(set: &MigrationSet) -> Vec<Finding> {
    set.phases.iter().flat_map(lint_phase).collect()
}

/// The findings of one phase's forward and rollback files.
pub fn lint_phase(phase: &Phase) -> Vec<Finding> {
    let mut out = Vec::new();
    for step in &phase.steps {
        let created = Created::of(&step.forward.text);
        out.extend(lint_file(phase, &step.forward, false, &created));
        if let Some(rb) = &step.rollback {
            out.extend(lint_file(phase, rb, true, &created));
        }
    }
    out
}

/// What a forward file brings into being, so its rollback may take it away.
#[derive(Debug, Default)]
struct Created {
    /// Tables, columns, constraints, indexes, types, functions, triggers, ...
    objects: BTreeSet<String>,
    /// Columns the file sets NOT NULL on.
    not_null: BTreeSet<String>,
    /// Columns the file sets a default on.
    defaults: BTreeSet<String>,
}

impl Created {
    fn of(text: &str) -> Created {
        let mut c = Created::default();
        for st in sqltext::statements(text) {
            let t = tokens(&text[st.start..st.end]);
            if t.first().is_some_and(|x| x.is_word("create")) {
                if let Some(name) = created_name(&t[1..]) {
                    c.objects.insert(name);
                }
            }
            for (i, tok) in t.iter().enumerate() {
                let rest = &t[i + 1..];
                if tok.is_word("add") {
                    if let Some(name) = added_name(rest) {
                        c.objects.insert(name);
                    }
                }
                // A migration that only VALIDATEs a constraint is undone by
                // dropping it and adding it back NOT VALID: PostgreSQL has no
                // other way to mark it unvalidated again.
                if tok.is_word("validate") && rest.first().is_some_and(|x| x.is_word("constraint")) {
                    if let Some(name) = rest.get(1).and_then(Tok::ident) {
                        c.objects.insert(name);
                    }
                }
                if tok.is_word("alter") && rest.first().is_some_and(|x| x.is_word("column")) {
                    if let Some(col) = rest.get(1).and_then(Tok::ident) {
                        if words_at(&rest[2..], &["set", "not", "null"]) {
                            c.not_null.insert(col.clone());
                        }
                        if words_at(&rest[2..], &["set", "default"]) {
                            c.defaults.insert(col);
                        }
                    }
                }
            }
        }
        c
    }

    /// Whether undoing what a `rule` finding targets (the identifiers in
    /// `target`) takes away only what this file created.
    fn covers(&self, rule: Rule, target: &[Tok]) -> bool {
        let extra = match rule {
            Rule::BanDropNotNull => Some(&self.not_null),
            Rule::BanDropDefault => Some(&self.defaults),
            _ => None,
        };
        target.iter().filter_map(Tok::ident).any(|n| self.objects.contains(&n) || extra.is_some_and(|e| e.contains(&n)))
    }
}

const CREATE_MODIFIERS: &[&str] = &["or", "replace", "unique", "temp", "temporary", "unlogged", "materialized", "recursive", "constraint", "global", "local"];
const CREATE_KINDS: &[&str] = &[
    "table", "index", "type", "function", "procedure", "trigger", "view", "sequence", "domain", "schema", "extension", "aggregate", "policy", "rule",
];

/// The name after `CREATE [modifiers] KIND [CONCURRENTLY] [IF NOT EXISTS]`.
fn created_name(t: &[Tok]) -> Option<String> {
    let mut i = 0;
    while t.get(i).is_some_and(|x| CREATE_MODIFIERS.iter().any(|m| x.is_word(m))) {
        i += 1;
    }
    if !t.get(i).is_some_and(|x| CREATE_KINDS.iter().any(|k| x.is_word(k))) {
        return None;
    }
    i += 1;
    if t.get(i).is_some_and(|x| x.is_word("concurrently")) {
        i += 1;
    }
    if words_at(&t[i.min(t.len())..], &["if", "not", "exists"]) {
        i += 3;
    }
    if t.get(i).is_some_and(|x| x.is_word("on")) {
        return None; // an unnamed index
    }
    qualified_last(&t[i.min(t.len())..])
}

/// The column or constraint name after `ADD [COLUMN [IF NOT EXISTS]]` or `ADD CONSTRAINT`.
fn added_name(t: &[Tok]) -> Option<String> {
    let mut i = 0;
    if t.first().is_some_and(|x| x.is_word("column") || x.is_word("constraint")) {
        i = 1;
    } else if t.first().is_some_and(|x| ["primary", "unique", "check", "foreign", "exclude", "value", "attribute"].iter().any(|k| x.is_word(k))) {
        return None;
    }
    if words_at(&t[i.min(t.len())..], &["if", "not", "exists"]) {
        i += 3;
    }
    t.get(i).and_then(Tok::ident)
}

/// The last segment of `a.b.c`.
fn qualified_last(t: &[Tok]) -> Option<String> {
    let mut name = t.first()?.ident()?;
    let mut i = 1;
    while t.get(i) == Some(&Tok::Punct('.')) {
        name = t.get(i + 1)?.ident()?;
        i += 2;
    }
    Some(name)
}

fn words_at(t: &[Tok], words: &[&str]) -> bool {
    words.len() <= t.len() && words.iter().zip(t).all(|(w, x)| x.is_word(w))
}

/// A SQL token, just enough to find names and keywords.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// An unquoted word, lower-cased (PostgreSQL folds it).
    Word(String),
    /// A quoted identifier, exactly as written.
    Quoted(String),
    /// A string or number literal.
    Literal,
    Punct(char),
}

impl Tok {
    fn is_word(&self, w: &str) -> bool {
        matches!(self, Tok::Word(x) if x == w)
    }
    /// The identifier this token names, normalised as PostgreSQL would.
    fn ident(&self) -> Option<String> {
        match self {
            Tok::Word(w) => Some(w.clone()),
            Tok::Quoted(q) => Some(q.clone()),
            _ => None,
        }
    }
}

/// Tokens of one statement; comments and dollar-quoted bodies are skipped.
/// Works on bytes: every byte it splits on is ASCII, so the pieces between
/// are whole UTF-8 characters.
fn tokens(sql: &str) -> Vec<Tok> {
    let b = sql.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if let Some(end) = sqltext::comment_end(b, i) {
            i = end;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'\'' || c == b'"' {
            let start = i + 1;
            i = start;
            while i < b.len() && !(b[i] == c && b.get(i + 1) != Some(&c)) {
                i += if b[i] == c { 2 } else { 1 };
            }
            let q = if c == b'"' { "\"\"" } else { "''" };
            let text = String::from_utf8_lossy(&b[start..i.min(b.len())]).replace(q, &q[..1]);
            i += 1;
            out.push(if c == b'"' { Tok::Quoted(text) } else { Tok::Literal });
        } else if let Some(tag_len) = sqltext::dollar_tag(&b[i..]) {
            let tag = &sql[i..i + tag_len];
            i += tag_len;
            i = sql[i..].find(tag).map_or(b.len(), |p| i + p + tag_len);
            out.push(Tok::Literal);
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            out.push(Tok::Literal);
        } else if word(c) {
            let start = i;
            while i < b.len() && word(b[i]) {
                i += 1;
            }
            out.push(Tok::Word(String::from_utf8_lossy(&b[start..i]).to_ascii_lowercase()));
        } else {
            out.push(Tok::Punct(c as char));
            i += 1;
        }
    }
    out
}

fn file_name(f: &SqlFile) -> String {
    display_path(&f.path)
}

fn lint_file(phase: &Phase, file: &SqlFile, rollback: bool, created: &Created) -> Vec<Finding> {
    let mut out = squawk_findings(phase, file, created);
    out.extend(own_findings(phase, file, rollback, created));
    out.sort_by_key(|f| (f.line, f.column));
    out
}

fn disabled() -> Vec<Rule> {
    DISABLED.iter().map(|(r, _)| *r).collect()
}

fn squawk_findings(phase: &Phase, file: &SqlFile, created: &Created) -> Vec<Finding> {
    // A batch file's `:batch_size` placeholder becomes a number of the same
    // length, so squawk parses it and byte offsets stay the same.
    let text = &file.text.replace(":batch_size", "00000000001").replace(":last_key", "NULL     ");
    let parse = SourceFile::parse(text);
    let mut out = Vec::new();
    let finding = |rule: String, severity, byte: usize, message: String, fix: Option<String>| {
        let (line, column) = sqltext::line_col_of(text, byte);
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
            created.covers(v.code, &tokens(&target))
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
        let cleanup = !phase.reversible && !phase.baseline;
        return if cleanup || undoes_own() { None } else { Some(Severity::Error) };
    }
    if LOCK.contains(&v.code) && phase.baseline {
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

/// phasegate's own rules: transactions, enum values, unbatched updates.
fn own_findings(phase: &Phase, file: &SqlFile, rollback: bool, created: &Created) -> Vec<Finding> {
    let mut out = Vec::new();
    for st in sqltext::statements(&file.text) {
        let t = tokens(&file.text[st.start..st.end]);
        let (line, column) = sqltext::line_col_of(&file.text, st.start);
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
        if !rollback && !phase.baseline && file.directives.batch.is_none() {
            if let Some(table) = whole_table_update(&t) {
                if !created.objects.contains(&table) {
                    push(
                        "unbatched-update",
                        Severity::Warning,
                        format!("this UPDATE can change every row of `{table}` in one transaction, holding their row locks until it commits"),
                        "make it a batched backfill: `-- phasegate: batch 5000` and `UPDATE ... WHERE id IN (SELECT id ... LIMIT :batch_size)`".into(),
                    );
                }
            }
        }
    }
    out
}

/// `CREATE/DROP INDEX CONCURRENTLY`, `REINDEX ... CONCURRENTLY`,
/// `ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY`.
fn needs_no_transaction(t: &[Tok]) -> bool {
    let Some(first) = t.first() else { return false };
    if !["create", "drop", "reindex", "alter"].iter().any(|w| first.is_word(w)) {
        return false;
    }
    let mut depth = 0i32;
    for x in t {
        match x {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => depth -= 1,
            _ if depth == 0 && x.is_word("concurrently") => return true,
            _ => {}
        }
    }
    false
}

fn adds_enum_value(t: &[Tok]) -> bool {
    words_at(t, &["alter", "type"]) && t.windows(2).any(|w| w[0].is_word("add") && w[1].is_word("value"))
}

/// The table of an `UPDATE` that may touch every row: no WHERE, or a WHERE
/// that never compares with a literal (`= 'x'`, `= 3`, `IN ('a', ...)`).
fn whole_table_update(t: &[Tok]) -> Option<String> {
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
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => depth -= 1,
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
        matches!((&p[0], &p[1]), (Tok::Punct('='), Tok::Literal) | (Tok::Literal, Tok::Punct('=')))
    });
    let literal_in = cond.windows(3).any(|p| p[0].is_word("in") && p[1] == Tok::Punct('(') && p[2] == Tok::Literal);
    if literal_eq || literal_in {
        None
    } else {
        Some(table)
    }
}

/// Counts of a list of findings: (errors, warnings, files).
pub fn summary(findings: &[Finding]) -> (usize, usize, usize) {
    let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
    let files: BTreeSet<&str> = findings.iter().map(|f| f.file.as_str()).collect();
    (errors, findings.len() - errors, files.len())
}


#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const CHECK: &str = "-- check: ok\nSELECT 1 WHERE false;\n";

    /// A set whose phase 0 is a baseline creating `t(a, b)`, then phase 1
    /// (`reversible`, or an irreversible cleanup) holding V2 = `forward` with
    /// `rollback`. Returns the findings as (rule, file name, line, severity).
    fn lint(forward: &str, rollback: Option<&str>) -> Vec<(String, String, usize, Severity)> {
        let d = tempfile::tempdir().unwrap();
        let w = |rel: &str, text: &str| {
            let p = d.path().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        };
        let phase1 = match rollback {
            Some(_) => "[[phase]]\nid = 1\nname = \"additive\"\nversions = [2]\n",
            None => "[[phase]]\nid = 1\nname = \"cleanup\"\nversions = [2]\nreversible = false\nreason = \"drops\"\n",
        };
        w("phases.toml", &format!("[[phase]]\nid = 0\nname = \"baseline\"\nversions = [1]\nreversible = false\nreason = \"exists\"\nbaseline = true\n\n{phase1}"));
        w("migrations/V1__base.sql", "CREATE TABLE t (a int, b text);\nCREATE TABLE u (a int);\n");
        w("validations/V1__base.sql", CHECK);
        w("migrations/V2__change.sql", forward);
        w("validations/V2__change.sql", CHECK);
        if let Some(rb) = rollback {
            w("rollback/V2__change.sql", rb);
        }
        lint_dir(d.path())
            .into_iter()
            .map(|f| {
                let name = Path::new(&f.file).file_name().unwrap().to_string_lossy().to_string();
                let dir = Path::new(&f.file).parent().unwrap().file_name().unwrap().to_string_lossy().to_string();
                (f.rule, format!("{dir}/{name}"), f.line, f.severity)
            })
            .collect()
    }

    fn rules(found: &[(String, String, usize, Severity)]) -> Vec<&str> {
        found.iter().map(|f| f.0.as_str()).collect()
    }

    #[test]
    fn dropping_a_column_is_an_error_in_a_reversible_phase_and_expected_in_cleanup() {
        let found = lint("ALTER TABLE t DROP COLUMN b;\n", Some("ALTER TABLE t ADD COLUMN b text;\n"));
        assert_eq!(found, vec![("ban-drop-column".into(), "migrations/V2__change.sql".into(), 1, Severity::Error)]);
        assert_eq!(lint("ALTER TABLE t DROP COLUMN b;\n", None), vec![]);
        let ignored = "-- squawk-ignore ban-drop-column -- b was never read\nALTER TABLE t DROP COLUMN b;\n";
        assert_eq!(lint(ignored, Some("ALTER TABLE t ADD COLUMN b text;\n")), vec![]);
        assert_eq!(rules(&lint("DROP TABLE u;\n", Some("CREATE TABLE u (a int);\n"))), vec!["ban-drop-table"]);
    }

    #[test]
    fn a_rollback_may_drop_what_its_forward_file_created_and_nothing_else() {
        let forward = "ALTER TABLE t ADD COLUMN c int;\nCREATE TABLE v (x int);\n";
        assert_eq!(lint(forward, Some("ALTER TABLE t DROP COLUMN IF EXISTS c;\nDROP TABLE v;\n")), vec![]);
        let found = lint(forward, Some("ALTER TABLE t DROP COLUMN c, DROP COLUMN b;\nDROP TABLE v;\n"));
        assert_eq!(found, vec![("ban-drop-column".into(), "rollback/V2__change.sql".into(), 1, Severity::Error)]);
        // Undoing a NOT NULL the forward file set, or a constraint it added.
        let forward = "ALTER TABLE t ADD CONSTRAINT t_a_nn CHECK (a IS NOT NULL) NOT VALID;\n";
        assert_eq!(lint(forward, Some("ALTER TABLE t DROP CONSTRAINT t_a_nn;\n")), vec![]);
        assert_eq!(rules(&lint("SELECT 1;\n", Some("ALTER TABLE t DROP CONSTRAINT other;\n"))), vec!["ban-drop-constraint"]);
    }

    #[test]
    fn lock_rules_apply_outside_the_baseline_only() {
        // The baseline itself creates an index on an existing table without a finding.
        let found = lint("CREATE INDEX t_a_idx ON t (a);\n", Some("DROP INDEX CONCURRENTLY t_a_idx;\n"));
        assert_eq!(rules(&found), vec!["require-concurrent-index-creation", "concurrently-in-transaction"]);
        let fix = lint_dir_first_fix("CREATE INDEX t_a_idx ON t (a);\n");
        assert!(fix.contains("-- phasegate: no-transaction"), "{fix}");
        // A table created in the same file has no rows: no lock finding.
        assert_eq!(lint("CREATE TABLE w (a int);\nCREATE INDEX w_a_idx ON w (a);\n", Some("DROP TABLE w;\n")), vec![]);
    }

    fn lint_dir_first_fix(forward: &str) -> String {
        let d = tempfile::tempdir().unwrap();
        for (rel, text) in [
            ("phases.toml", "[[phase]]\nid = 1\nname = \"additive\"\nversions = [1]\n"),
            ("migrations/V1__a.sql", forward),
            ("rollback/V1__a.sql", "SELECT 1;\n"),
            ("validations/V1__a.sql", CHECK),
        ] {
            let p = d.path().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        lint_dir(d.path()).remove(0).fix.unwrap()
    }

    #[test]
    fn not_null_and_foreign_keys_need_the_not_valid_pattern() {
        let found = lint("ALTER TABLE t ALTER COLUMN a SET NOT NULL;\n", Some("ALTER TABLE t ALTER COLUMN a DROP NOT NULL;\n"));
        assert_eq!(rules(&found), vec!["adding-not-nullable-field"]);
        let found = lint("ALTER TABLE t ADD CONSTRAINT t_u FOREIGN KEY (a) REFERENCES u (a);\n", Some("ALTER TABLE t DROP CONSTRAINT t_u;\n"));
        assert!(rules(&found).contains(&"adding-foreign-key-constraint"), "{found:?}");
        let safe = "ALTER TABLE t ADD CONSTRAINT t_u FOREIGN KEY (a) REFERENCES u (a) NOT VALID;\n";
        assert_eq!(lint(safe, Some("ALTER TABLE t DROP CONSTRAINT t_u;\n")), vec![]);
    }

    #[test]
    fn concurrently_needs_the_no_transaction_directive() {
        let sql = "CREATE INDEX CONCURRENTLY t_a_idx ON t (a);\n";
        assert_eq!(rules(&lint(sql, Some("DROP INDEX t_a_idx;\n"))), vec!["prefer-robust-stmts", "concurrently-in-transaction", "require-concurrent-index-deletion"]);
        let ok = "-- phasegate: no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_a_idx ON t (a);\n";
        assert_eq!(lint(ok, Some("-- phasegate: no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS t_a_idx;\n")), vec![]);
        let found = lint("ALTER TYPE mood ADD VALUE 'ok' AFTER 'fine';\n", Some("SELECT 1;\n"));
        assert_eq!(found, vec![("enum-value-in-transaction".into(), "migrations/V2__change.sql".into(), 1, Severity::Warning)]);
    }

    #[test]
    fn whole_table_updates_outside_a_batch_are_warnings() {
        let found = lint("UPDATE t SET b = 'x' WHERE b IS NULL;\n", Some("SELECT 1;\n"));
        assert_eq!(found, vec![("unbatched-update".into(), "migrations/V2__change.sql".into(), 1, Severity::Warning)]);
        assert_eq!(lint("UPDATE t SET b = 'x' WHERE a = 3;\n", Some("SELECT 1;\n")), vec![]);
        assert_eq!(lint("UPDATE t SET b = 'x' WHERE a IN (1, 2);\n", Some("SELECT 1;\n")), vec![]);
        let batched = "-- phasegate: batch 100\nUPDATE t SET b = 'x' WHERE a IN (SELECT a FROM t WHERE b IS NULL LIMIT :batch_size);\n";
        assert_eq!(lint(batched, Some("SELECT 1;\n")), vec![]);
        assert_eq!(lint("CREATE TABLE w (a int);\nUPDATE w SET a = 1;\n", Some("DROP TABLE w;\n")), vec![]);
    }

    #[test]
    fn a_set_that_does_not_load_is_one_finding_with_file_and_line() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("phases.toml"), "[[phase]]\nid = 1\nname = \"a\"\nversions = [1]\ncolour = 2\n").unwrap();
        fs::create_dir(d.path().join("migrations")).unwrap();
        let found = lint_dir(d.path());
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].rule.as_str(), found[0].line, found[0].severity, found[0].phase), ("set-structure", 5, Severity::Error, None));
        assert!(found[0].file.ends_with("phases.toml"));
    }

    #[test]
    fn created_names_are_read_like_postgresql_folds_them() {
        let c = Created::of(
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"Idx\" ON t (a);\nCREATE OR REPLACE FUNCTION s.f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\nALTER TABLE t ADD COLUMN IF NOT EXISTS Col int, ADD CONSTRAINT \"C\" CHECK (a > 0), ALTER COLUMN b SET NOT NULL;\n",
        );
        assert_eq!(c.objects.iter().map(String::as_str).collect::<Vec<_>>(), vec!["C", "Idx", "col", "f"]);
        assert_eq!(c.not_null.iter().map(String::as_str).collect::<Vec<_>>(), vec!["b"]);
    }
}
