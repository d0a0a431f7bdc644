//! Which tables a rollback script changes, read from its statements: UPDATE,
//! DELETE (also in data-modifying CTEs), TRUNCATE, DROP TABLE and ALTER
//! TABLE ... DROP COLUMN at the top level of a statement. Lexical: changes
//! made inside DO blocks, functions or triggers are not seen.

use serde::Serialize;

use super::statement::Parser;
use crate::sqltext::{self, Token};

/// What a statement does to a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Change {
    Update,
    Delete,
    Truncate,
    /// Serialised as in SQL (and as the ledger stores it).
    #[serde(rename = "DROP TABLE")]
    DropTable,
    #[serde(rename = "DROP COLUMN")]
    DropColumn,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Update => "UPDATE",
            Change::Delete => "DELETE",
            Change::Truncate => "TRUNCATE",
            Change::DropTable => "DROP TABLE",
            Change::DropColumn => "DROP COLUMN",
        }
    }
}


/// A table a rollback script changes, as the script names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The name in `quote_ident` form (`"public"."api_keys"`), for `to_regclass`.
    pub table: String,
    pub change: Change,
    /// The dropped columns (DROP COLUMN only).
    pub columns: Vec<String>,
    /// 1-based line of the statement.
    pub line: usize,
}


/// The tables a SQL text changes, statement by statement.
pub fn targets(sql: &str) -> Vec<Target> {
    let mut out = Vec::new();
    for st in sqltext::statements(sql) {
        let toks = sqltext::tokens(&sql[st.start..st.end]);
        statement_targets(&toks, st.line, &mut out);
    }
    out
}

fn statement_targets(toks: &[Token], line: usize, out: &mut Vec<Target>) {
    let mut p = Parser { t: toks, i: 0 };
    let push = |out: &mut Vec<Target>, table: String, change: Change, columns: Vec<String>| out.push(Target { table, change, columns, line });
    match p.word(0) {
        Some("update") | Some("delete") => dml_target(&mut p, line, out),
        Some("with") => {
            // Data-modifying CTEs: `( UPDATE ...` / `( DELETE ...` anywhere,
            // and the main statement at depth 0.
            let mut depth = 0i32;
            for k in 0..toks.len() {
                match &toks[k] {
                    Token::Punct('(') => depth += 1,
                    Token::Punct(')') => depth -= 1,
                    Token::Word(w) if w == "update" || w == "delete" => {
                        let after_paren = k > 0 && toks[k - 1] == Token::Punct('(');
                        let after_cte_list = depth == 0 && k > 0 && toks[k - 1] == Token::Punct(')');
                        if after_paren || after_cte_list {
                            dml_target(&mut Parser { t: toks, i: k }, line, out);
                        }
                    }
                    _ => {}
                }
            }
        }
        Some("truncate") => {
            p.i = 1;
            p.eat("table");
            loop {
                p.eat("only");
                let Some(name) = p.qualified() else { break };
                push(out, name, Change::Truncate, Vec::new());
                p.sym('*');
                if !p.sym(',') {
                    break;
                }
            }
        }
        Some("drop") if p.word(1) == Some("table") => {
            p.i = 2;
            if p.word(0) == Some("if") && p.word(1) == Some("exists") {
                p.i += 2;
            }
            while let Some(name) = p.qualified() {
                push(out, name, Change::DropTable, Vec::new());
                if !p.sym(',') {
                    break;
                }
            }
        }
        Some("alter") if p.word(1) == Some("table") => {
            let Some((name, actions)) = super::statement::alter_table(toks) else { return };
            let columns: Vec<String> = actions
                .into_iter()
                .filter_map(|a| match a {
                    super::statement::AlterAction::DropColumn(c) => Some(c),
                    _ => None,
                })
                .collect();
            if !columns.is_empty() {
                push(out, name, Change::DropColumn, columns);
            }
        }
        _ => {}
    }
}

fn dml_target(p: &mut Parser, line: usize, out: &mut Vec<Target>) {
    let change = if p.eat("update") {
        Change::Update
    } else if p.eat("delete") && p.eat("from") {
        Change::Delete
    } else {
        return;
    };
    p.eat("only");
    if let Some(table) = p.qualified() {
        out.push(Target { table, change, columns: Vec::new(), line });
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    fn t(sql: &str) -> Vec<(String, Change, Vec<String>)> {
        targets(sql).into_iter().map(|t| (t.table, t.change, t.columns)).collect()
    }

    #[test]
    fn finds_the_tables_a_rollback_changes() {
        let sql = "-- undo\nUPDATE api_keys SET scope = 'tenant' WHERE scope = 'branch';\n\
                   DELETE FROM ONLY public.\"Feature Flags\" WHERE key = 'x';\n\
                   TRUNCATE TABLE a, ONLY b.c *;\n\
                   DROP TABLE IF EXISTS services, clinic_time_slots CASCADE;\n\
                   ALTER TABLE reservations DROP COLUMN \"serviceId\", DROP CONSTRAINT r_fk, ALTER COLUMN x DROP DEFAULT, DROP IF EXISTS period;\n\
                   ALTER TABLE t ADD COLUMN y int;\n\
                   DROP INDEX CONCURRENTLY i;\n\
                   WITH gone AS (DELETE FROM leads WHERE x RETURNING id) UPDATE appointments SET lead_id = NULL FROM gone;\n\
                   DO $$ BEGIN UPDATE hidden SET x = 1; END $$;";
        assert_eq!(
            t(sql),
            vec![
                ("\"api_keys\"".into(), Change::Update, vec![]),
                ("\"public\".\"Feature Flags\"".into(), Change::Delete, vec![]),
                ("\"a\"".into(), Change::Truncate, vec![]),
                ("\"b\".\"c\"".into(), Change::Truncate, vec![]),
                ("\"services\"".into(), Change::DropTable, vec![]),
                ("\"clinic_time_slots\"".into(), Change::DropTable, vec![]),
                ("\"reservations\"".into(), Change::DropColumn, vec!["serviceId".into(), "period".into()]),
                ("\"leads\"".into(), Change::Delete, vec![]),
                ("\"appointments\"".into(), Change::Update, vec![]),
            ]
        );
    }

    #[test]
    fn names_are_read_as_the_server_stores_them() {
        let long = "c".repeat(70);
        let cjk = "表".repeat(22);
        let got = t(&format!("ALTER TABLE \"{cjk}\" DROP COLUMN {long}; UPDATE \"{cjk}\" SET x = 1"));
        let table = format!("\"{}\"", "表".repeat(21));
        assert_eq!(got, vec![(table.clone(), Change::DropColumn, vec!["c".repeat(63)]), (table, Change::Update, vec![])]);
    }

    #[test]
    fn statements_that_change_no_rows_have_no_targets() {
        assert!(t("CREATE TABLE x (a int); ALTER TABLE x DROP CONSTRAINT c; SELECT 'UPDATE t SET a = 1'; DROP FUNCTION f(); DROP TRIGGER tr ON t").is_empty());
    }
}

