//! Statements that take control away from the engine, found lexically:
//! transaction control (the engine owns each step's transaction, with its
//! ledger rows and checks) and the ways around phasegate's backup triggers
//! (`ALTER TABLE ... DISABLE TRIGGER`, a change of
//! `session_replication_role`). `set` refuses them at load and `lint`
//! reports them; an importer of another tool's files can use
//! `transaction_control` to find a file's own `BEGIN; ... COMMIT;`.

use std::fmt;

use super::{lex, LineIndex, Lexed, Lexeme, Token};

/// A statement found in a text: what it is, its byte offset and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<K> {
    pub kind: K,
    pub start: usize,
    pub line: usize,
}

/// A transaction-control statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxControl {
    /// `BEGIN`, `START TRANSACTION`.
    Begin,
    /// `COMMIT`, `END`.
    Commit,
    /// `ROLLBACK`, `ABORT`.
    Rollback,
    Savepoint,
    /// `RELEASE [SAVEPOINT]`.
    Release,
    /// `ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT]`.
    RollbackTo,
    PrepareTransaction,
    CommitPrepared,
    RollbackPrepared,
}

impl fmt::Display for TxControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TxControl::Begin => "BEGIN",
            TxControl::Commit => "COMMIT",
            TxControl::Rollback => "ROLLBACK",
            TxControl::Savepoint => "SAVEPOINT",
            TxControl::Release => "RELEASE SAVEPOINT",
            TxControl::RollbackTo => "ROLLBACK TO SAVEPOINT",
            TxControl::PrepareTransaction => "PREPARE TRANSACTION",
            TxControl::CommitPrepared => "COMMIT PREPARED",
            TxControl::RollbackPrepared => "ROLLBACK PREPARED",
        })
    }
}

/// Every top-level transaction-control statement of a text (lexed with
/// `Lexed::new`), in order. A `BEGIN` inside a DO block or a function body
/// (a dollar-quoted literal) is not one, nor is the `BEGIN ATOMIC ... END`
/// of a SQL-standard function body (part of its `CREATE FUNCTION`).
pub fn transaction_control(lexed: &Lexed<'_>) -> Vec<Found<TxControl>> {
    lexed
        .statements
        .iter()
        .filter_map(|(st, r)| tx_control(&lexed.lexemes[r.clone()]).map(|kind| Found { kind, start: st.start, line: st.line }))
        .collect()
}

fn tx_control(t: &[Lexeme]) -> Option<TxControl> {
    let word = |i: usize, w: &str| t.get(i).is_some_and(|x| x.token.is_word(w));
    let Some(Token::Word(first)) = t.first().map(|l| &l.token) else { return None };
    let after_noise = if word(1, "work") || word(1, "transaction") { 2 } else { 1 };
    Some(match first.as_str() {
        "begin" if !word(1, "atomic") => TxControl::Begin,
        "start" if word(1, "transaction") => TxControl::Begin,
        "commit" if word(1, "prepared") => TxControl::CommitPrepared,
        "commit" | "end" => TxControl::Commit,
        "rollback" if word(1, "prepared") => TxControl::RollbackPrepared,
        "rollback" if word(after_noise, "to") => TxControl::RollbackTo,
        "rollback" | "abort" => TxControl::Rollback,
        "savepoint" => TxControl::Savepoint,
        "release" => TxControl::Release,
        "prepare" if word(1, "transaction") && t.get(2).is_some_and(|l| l.token == Token::Literal) => TxControl::PrepareTransaction,
        _ => return None,
    })
}

/// A statement that keeps triggers from firing, so phasegate's backup
/// triggers would not see the rows a rollback changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bypass {
    /// `ALTER TABLE ... DISABLE TRIGGER name | ALL | USER`, or `ENABLE
    /// REPLICA TRIGGER name` (which fires only on a replica); `clause` is
    /// the clause as SQL writes it.
    DisableTrigger { clause: String },
    /// `SET [SESSION | LOCAL] session_replication_role`,
    /// `set_config('session_replication_role', ...)`, or a role, database
    /// or function made to set it (`ALTER ROLE ... SET
    /// session_replication_role`).
    ReplicationRole,
}

impl fmt::Display for Bypass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bypass::DisableTrigger { clause } => write!(f, "`ALTER TABLE ... {clause}`"),
            Bypass::ReplicationRole => f.write_str("a change of `session_replication_role`"),
        }
    }
}

/// Every statement of a text (lexed with `Lexed::new`) that keeps triggers
/// from firing, in order: at the top level, and inside DO blocks (including
/// the dynamic SQL strings they hold). A function body is not looked into:
/// creating a function runs nothing (and calling one that does this is
/// caught only when it runs).
pub fn trigger_bypass(lexed: &Lexed<'_>) -> Vec<Found<Bypass>> {
    let mut out = Vec::new();
    for (_, r) in &lexed.statements {
        scan(lexed.text, &lexed.lexemes[r.clone()], &|o| o, false, &lexed.index, &mut out, 0);
    }
    out
}

/// How deep DO blocks and the strings inside them are looked into.
const MAX_NESTING: usize = 4;

/// Looks for bypasses in the statement whose lexemes `lx` are (offsets in
/// `sql`); `at` maps an offset in `sql` to the byte of the file it comes
/// from. Inside a DO body (`code`), every string literal may be dynamic SQL
/// and is looked into as well, `depth` levels deep.
fn scan(sql: &str, lx: &[Lexeme], at: &dyn Fn(usize) -> usize, code: bool, index: &LineIndex, out: &mut Vec<Found<Bypass>>, depth: usize) {
    let word = |i: usize, w: &str| lx.get(i).is_some_and(|l| l.token.is_word(w));
    let text_of = |i: usize| lx.get(i).map_or("", |l| &sql[l.start..l.end]);
    let is_do = word(0, "do");
    // `SET [SESSION | LOCAL] session_replication_role`, also in `ALTER ROLE
    // ... SET`, or `set_config('session_replication_role', ...)`.
    let sets_replication_role = |i: usize| {
        let set = word(i, "set") && (word(i + 1, "session_replication_role") || ((word(i + 1, "session") || word(i + 1, "local")) && word(i + 2, "session_replication_role")));
        let call = word(i, "set_config")
            && lx.get(i + 1).is_some_and(|x| x.token == Token::Punct('('))
            && lx.get(i + 2).is_some_and(|x| x.token == Token::Literal && literal_value(text_of(i + 2)).is_some_and(|v| v.trim().eq_ignore_ascii_case("session_replication_role")));
        set || call
    };
    for (i, l) in lx.iter().enumerate() {
        let mut push = |kind: Bypass| {
            let start = at(l.start);
            out.push(Found { kind, start, line: index.line(start) });
        };
        if word(i, "disable") && word(i + 1, "trigger") {
            push(Bypass::DisableTrigger { clause: format!("DISABLE TRIGGER {}", clause_name(text_of(i + 2))) });
        } else if word(i, "enable") && word(i + 1, "replica") && word(i + 2, "trigger") {
            push(Bypass::DisableTrigger { clause: format!("ENABLE REPLICA TRIGGER {}", clause_name(text_of(i + 3))) });
        } else if sets_replication_role(i) {
            push(Bypass::ReplicationRole);
        }
        if l.token == Token::Literal && (code || is_do) && depth < MAX_NESTING {
            let raw = &sql[l.start..l.end];
            match dollar_body(raw) {
                Some((from, to)) => {
                    let body = &raw[from..to];
                    scan(body, &lex(body), &|o| at(l.start + from + o), true, index, out, depth + 1);
                }
                None => {
                    if let Some(v) = literal_value(raw) {
                        let here = at(l.start);
                        scan(&v, &lex(&v), &|_| here, true, index, out, depth + 1);
                    }
                }
            }
        }
    }
}

/// The trigger a DISABLE clause names, as SQL writes it (`ALL`, `USER`, or
/// the name).
fn clause_name(raw: &str) -> String {
    match raw.to_ascii_lowercase().as_str() {
        "all" => "ALL".into(),
        "user" => "USER".into(),
        _ => raw.to_string(),
    }
}

/// The byte range of a dollar-quoted literal's body inside `raw` (the
/// literal with its tags), or `None` when `raw` is not dollar-quoted.
fn dollar_body(raw: &str) -> Option<(usize, usize)> {
    let tag = super::dollar_tag(raw.as_bytes())?;
    let end = if raw.len() >= 2 * tag && raw.ends_with(&raw[..tag]) { raw.len() - tag } else { raw.len() };
    Some((tag, end.max(tag)))
}

/// The value of a string literal (`'...'`, `E'...'`, `$tag$...$tag$`);
/// `None` for a number.
fn literal_value(raw: &str) -> Option<String> {
    if let Some((from, to)) = dollar_body(raw) {
        return Some(raw[from..to].to_string());
    }
    let (body, backslash) = match raw.as_bytes().first()? {
        b'\'' => (&raw[1..], false),
        b'e' | b'E' if raw.as_bytes().get(1) == Some(&b'\'') => (&raw[2..], true),
        _ => return None,
    };
    let body = body.strip_suffix('\'').unwrap_or(body);
    let mut v = body.replace("''", "'");
    if backslash {
        v = v.replace("\\'", "'").replace("\\\\", "\\");
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn controls(text: &str) -> Vec<(TxControl, usize)> {
        transaction_control(&Lexed::new(text)).into_iter().map(|f| (f.kind, f.line)).collect()
    }

    #[test]
    fn transaction_control_is_found_at_the_top_level_only() {
        use TxControl::*;
        let text = "BEGIN;\nALTER TABLE t ADD c int;\nCOMMIT;\nstart transaction isolation level serializable;\nend work;\nabort;\n\
                    SAVEPOINT a;\nrelease savepoint a;\nrollback transaction to a;\nROLLBACK TO SAVEPOINT a;\nPREPARE TRANSACTION 'x';\nCOMMIT PREPARED 'x';\nROLLBACK PREPARED 'x';\nROLLBACK AND CHAIN;\n";
        assert_eq!(
            controls(text),
            [(Begin, 1), (Commit, 3), (Begin, 4), (Commit, 5), (Rollback, 6), (Savepoint, 7), (Release, 8), (RollbackTo, 9), (RollbackTo, 10), (PrepareTransaction, 11), (CommitPrepared, 12), (RollbackPrepared, 13), (Rollback, 14)]
        );
        let fine = "DO $$ BEGIN PERFORM 1; COMMIT; END $$;\n\
                    CREATE FUNCTION f() RETURNS int AS $f$ BEGIN RETURN 1; END $f$ LANGUAGE plpgsql;\n\
                    CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END;\n\
                    PREPARE q AS SELECT 1;\n-- COMMIT;\n/* BEGIN; */ SELECT 'COMMIT;';\n";
        assert_eq!(controls(fine), []);
        assert_eq!(RollbackTo.to_string(), "ROLLBACK TO SAVEPOINT");
    }

    fn bypasses(text: &str) -> Vec<(String, usize)> {
        trigger_bypass(&Lexed::new(text)).into_iter().map(|f| (f.kind.to_string(), f.line)).collect()
    }

    #[test]
    fn every_way_around_the_triggers_is_found_with_its_line() {
        let text = "ALTER TABLE t DISABLE TRIGGER USER;\nALTER TABLE ONLY s.t\n  ADD COLUMN c int,\n  DISABLE TRIGGER all;\nALTER TABLE t DISABLE TRIGGER \"Audit\";\n\
                    SET session_replication_role = replica;\nSET LOCAL session_replication_role TO 'replica';\n\
                    SELECT pg_catalog.set_config('session_replication_role', 'replica', true);\n\
                    ALTER ROLE me SET session_replication_role = replica;\nALTER TABLE t ENABLE REPLICA TRIGGER audit;\n";
        assert_eq!(
            bypasses(text),
            [
                ("`ALTER TABLE ... DISABLE TRIGGER USER`".to_string(), 1),
                ("`ALTER TABLE ... DISABLE TRIGGER ALL`".to_string(), 4),
                ("`ALTER TABLE ... DISABLE TRIGGER \"Audit\"`".to_string(), 5),
                ("a change of `session_replication_role`".to_string(), 6),
                ("a change of `session_replication_role`".to_string(), 7),
                ("a change of `session_replication_role`".to_string(), 8),
                ("a change of `session_replication_role`".to_string(), 9),
                ("`ALTER TABLE ... ENABLE REPLICA TRIGGER audit`".to_string(), 10),
            ]
        );
    }

    #[test]
    fn do_blocks_and_their_dynamic_sql_are_looked_into_function_bodies_are_not() {
        let text = "UPDATE t SET a = 1;\nDO $$\nBEGIN\n  ALTER TABLE t DISABLE TRIGGER ALL;\n  PERFORM set_config('session_replication_role', 'replica', true);\n  EXECUTE 'ALTER TABLE t DISABLE TRIGGER USER';\nEND $$;\n";
        assert_eq!(bypasses(text).iter().map(|b| b.1).collect::<Vec<_>>(), [4, 5, 6]);
        let body = "CREATE FUNCTION f() RETURNS void AS $$ BEGIN ALTER TABLE t DISABLE TRIGGER ALL; END $$ LANGUAGE plpgsql;\n";
        assert_eq!(bypasses(body), []);
        let harmless = "RESET session_replication_role;\nSELECT current_setting('session_replication_role');\nALTER TABLE t ENABLE TRIGGER ALL;\nCOMMENT ON TABLE t IS 'we never DISABLE TRIGGER here';\n-- ALTER TABLE t DISABLE TRIGGER ALL;\n";
        assert_eq!(bypasses(harmless), []);
    }
}
