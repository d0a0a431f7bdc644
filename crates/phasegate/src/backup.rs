//! Backups before data-changing rollbacks (SPEC 7.3) and `restore`.
//!
//! Before a rollback script runs, [`targets`] reads which tables it changes
//! (UPDATE, DELETE, TRUNCATE, DROP TABLE, ALTER TABLE ... DROP COLUMN, also
//! inside data-modifying CTEs). In the rollback's own transaction,
//! [`Session::prepare`] then
//!
//! * for UPDATE / DELETE targets creates `phasegate_backup."<table>_<run>"`
//!   (`LIKE` the table, plus its primary key) and a statement-level AFTER
//!   trigger with a transition table that copies the old version of exactly
//!   the rows the statements changed (only the first version of a row
//!   updated twice is kept);
//! * for TRUNCATE / DROP TABLE copies the whole table, and for DROP COLUMN
//!   the primary key and the dropped columns of rows where any of them is set,
//!   before the script runs.
//!
//! [`Session::finish`] drops the triggers, counts what was saved, drops empty
//! backup tables and records the rest in the `phasegate_backups` ledger, all
//! before the rollback commits: the backup exists exactly when the rollback
//! committed. [`restore`] puts the rows back.

use std::collections::BTreeMap;

use postgres::{Client, GenericClient};
use serde::Serialize;

use crate::error::{db_err, Error, Result};
use crate::pg::quote_ident;
use crate::sqltext;

/// The schema holding backup tables (snapshots ignore it).
pub const SCHEMA: &str = "phasegate_backup";
/// The ledger of backups.
pub const LEDGER: &str = "phasegate_backups";

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

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// An unquoted word, lower-cased (identifiers fold to lower case).
    Word(String),
    /// A double-quoted identifier, as written.
    Quoted(String),
    Sym(char),
}

fn tokens(s: &str) -> Vec<Tok> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if let Some(end) = sqltext::comment_end(b, i) {
            i = end;
        } else if c == b'\'' || c == b'"' {
            let start = i + 1;
            let mut text = String::new();
            i += 1;
            let mut seg = start;
            while i < b.len() {
                if b[i] == c {
                    if b.get(i + 1) == Some(&c) {
                        text.push_str(&s[seg..=i]);
                        i += 2;
                        seg = i;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            text.push_str(&s[seg..i.min(b.len())]);
            i += 1;
            if c == b'"' {
                out.push(Tok::Quoted(text));
            } else {
                out.push(Tok::Sym('\''));
            }
        } else if let Some(n) = (c == b'$').then(|| sqltext::dollar_tag(&b[i..])).flatten() {
            let tag = &s[i..i + n];
            i += n;
            i = match s[i..].find(tag) {
                Some(p) => i + p + n,
                None => b.len(),
            };
            out.push(Tok::Sym('$'));
        } else if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80) {
                i += 1;
            }
            out.push(Tok::Word(s[start..i].to_lowercase()));
        } else {
            out.push(Tok::Sym(c as char));
            i += 1;
        }
    }
    out
}

struct Parser<'a> {
    t: &'a [Tok],
    i: usize,
}

impl Parser<'_> {
    fn word(&self, k: usize) -> Option<&str> {
        match self.t.get(self.i + k) {
            Some(Tok::Word(w)) => Some(w),
            _ => None,
        }
    }
    fn eat(&mut self, w: &str) -> bool {
        if self.word(0) == Some(w) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn sym(&mut self, c: char) -> bool {
        if self.t.get(self.i) == Some(&Tok::Sym(c)) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn ident(&mut self) -> Option<String> {
        let s = match self.t.get(self.i)? {
            Tok::Word(w) => w.clone(),
            Tok::Quoted(q) => q.replace("\"\"", "\""),
            Tok::Sym(_) => return None,
        };
        self.i += 1;
        Some(s)
    }
    /// `name` or `schema.name`, in quoted form for `to_regclass`.
    fn qualified(&mut self) -> Option<String> {
        let first = self.ident()?;
        if self.sym('.') {
            let second = self.ident()?;
            return Some(format!("{}.{}", quote(&first), quote(&second)));
        }
        Some(quote(&first))
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The tables a SQL text changes, statement by statement.
pub fn targets(sql: &str) -> Vec<Target> {
    let mut out = Vec::new();
    for st in sqltext::statements(sql) {
        let toks = tokens(&sql[st.start..st.end]);
        statement_targets(&toks, st.line, &mut out);
    }
    out
}

fn statement_targets(toks: &[Tok], line: usize, out: &mut Vec<Target>) {
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
                    Tok::Sym('(') => depth += 1,
                    Tok::Sym(')') => depth -= 1,
                    Tok::Word(w) if w == "update" || w == "delete" => {
                        let after_paren = k > 0 && toks[k - 1] == Tok::Sym('(');
                        let after_cte_list = depth == 0 && k > 0 && toks[k - 1] == Tok::Sym(')');
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
            p.i = 2;
            if p.word(0) == Some("if") && p.word(1) == Some("exists") {
                p.i += 2;
            }
            p.eat("only");
            let Some(name) = p.qualified() else { return };
            p.sym('*');
            let mut columns = Vec::new();
            // Actions are separated by commas at parenthesis depth 0.
            let mut depth = 0i32;
            let mut action_start = true;
            while p.i < toks.len() {
                if action_start {
                    action_start = false;
                    if p.eat("drop") {
                        if p.word(0) == Some("constraint") {
                            continue;
                        }
                        p.eat("column");
                        if p.word(0) == Some("if") && p.word(1) == Some("exists") {
                            p.i += 2;
                        }
                        if let Some(c) = p.ident() {
                            columns.push(c);
                        }
                        continue;
                    }
                }
                match &toks[p.i] {
                    Tok::Sym('(') => depth += 1,
                    Tok::Sym(')') => depth -= 1,
                    Tok::Sym(',') if depth == 0 => action_start = true,
                    _ => {}
                }
                p.i += 1;
            }
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

/// A backup taken by a rollback.
#[derive(Debug, Clone, Serialize)]
pub struct Backup {
    pub version: i32,
    /// The source table, `schema.table` in `quote_ident` form.
    pub table: String,
    /// `phasegate_backup.<name>` in `quote_ident` form.
    pub backup_table: String,
    /// `rows` (whole rows) or `columns` (primary key plus dropped columns).
    pub kind: &'static str,
    /// What the rollback did to the table: UPDATE, DELETE, ...
    pub changes: Vec<Change>,
    pub columns: Vec<String>,
    pub key_columns: Vec<String>,
    pub rows: i64,
}

/// A table resolved in the catalogs.
struct Table {
    oid: u32,
    qualified: String,
    relname: String,
    columns: Vec<String>,
    key: Vec<String>,
}

fn resolve(client: &mut impl GenericClient, name: &str) -> Result<Option<Table>> {
    let row = client
        .query_opt(
            "SELECT c.oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relname
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
               AND n.nspname <> $2",
            &[&name, &SCHEMA],
        )
        .map_err(db_err(format!("looking up table {name}")))?;
    let Some(row) = row else { return Ok(None) };
    let oid: u32 = row.get(0);
    let (columns, key) = columns_and_key(client, oid)?;
    Ok(Some(Table { oid, qualified: row.get(1), relname: row.get(2), columns, key }))
}

fn columns_and_key(client: &mut impl GenericClient, oid: u32) -> Result<(Vec<String>, Vec<String>)> {
    let columns = client
        .query("SELECT attname::text FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum", &[&oid])
        .map_err(db_err("reading columns"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let key = client
        .query(
            "SELECT a.attname::text FROM pg_index i
             CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord",
            &[&oid],
        )
        .map_err(db_err("reading the primary key"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok((columns, key))
}

/// A generated name (`<table>_<run>`, never a keyword), quoted only when
/// it must be, so messages show `phasegate_backup.api_keys_3f2a9c1e`.
fn generated_ident(s: &str) -> String {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_') && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        s.to_string()
    } else {
        quote_ident(s)
    }
}

fn idents(cols: &[String], prefix: &str) -> String {
    cols.iter().map(|c| format!("{prefix}{}", quote_ident(c))).collect::<Vec<_>>().join(", ")
}

/// The backups of one rollback step while its transaction is open.
pub struct Session {
    version: i32,
    short: String,
    pending: Vec<Backup>,
    /// (trigger name, table, function) to drop before commit.
    triggers: Vec<(String, String, String)>,
}

impl Session {
    /// Creates the backup tables, copies and triggers for `targets` inside
    /// the caller's transaction. With `copy_only`, UPDATE and DELETE targets
    /// are copied whole instead of watched by a trigger (for rollback files
    /// that run outside a transaction).
    pub fn prepare(tx: &mut impl GenericClient, run_id: &str, version: i32, targets: &[Target], copy_only: bool) -> Result<Session> {
        let short: String = run_id.chars().filter(|c| *c != '-').take(8).collect();
        let mut s = Session { version, short, pending: Vec::new(), triggers: Vec::new() };
        if targets.is_empty() {
            return Ok(s);
        }
        // Group by table, in the order the script names them.
        let mut by_table: BTreeMap<u32, (Table, Vec<Change>, Vec<String>, usize)> = BTreeMap::new();
        for (n, t) in targets.iter().enumerate() {
            let Some(table) = resolve(tx, &t.table)? else { continue };
            let e = by_table.entry(table.oid).or_insert_with(|| (table, Vec::new(), Vec::new(), n));
            if !e.1.contains(&t.change) {
                e.1.push(t.change);
            }
            for c in &t.columns {
                if !e.2.contains(c) {
                    e.2.push(c.clone());
                }
            }
        }
        if by_table.is_empty() {
            return Ok(s);
        }
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {SCHEMA}")).map_err(db_err("creating the phasegate_backup schema"))?;
        let mut tables: Vec<_> = by_table.into_values().collect();
        tables.sort_by_key(|t| t.3);
        for (table, changes, dropped, _) in tables {
            let whole = changes.iter().any(|c| matches!(c, Change::Truncate | Change::DropTable));
            let dml = changes.iter().any(|c| matches!(c, Change::Update | Change::Delete));
            if whole || (dml && copy_only) {
                let name = s.create_table(tx, &table, &format!("SELECT * FROM {}", table.qualified), "rows", changes.clone(), table.columns.clone())?;
                let _ = name;
                continue;
            }
            if dml {
                s.watch(tx, &table, changes.iter().copied().filter(|c| matches!(c, Change::Update | Change::Delete)).collect())?;
            }
            let dropped: Vec<String> = dropped.into_iter().filter(|c| table.columns.contains(c) && !table.key.contains(c)).collect();
            if !dropped.is_empty() {
                let mut cols = table.key.clone();
                cols.extend(dropped.iter().cloned());
                let any_set = dropped.iter().map(|c| format!("{} IS NOT NULL", quote_ident(c))).collect::<Vec<_>>().join(" OR ");
                let select = format!("SELECT {} FROM {} WHERE {any_set}", idents(&cols, ""), table.qualified);
                s.create_table(tx, &table, &select, "columns", vec![Change::DropColumn], cols)?;
            }
        }
        Ok(s)
    }

    /// A free name `<table>_<run>` (then `_2`, `_3`, ...) in the backup schema.
    fn free_name(&self, tx: &mut impl GenericClient, relname: &str) -> Result<String> {
        let base: String = relname.chars().take(40).collect();
        for n in 1.. {
            let name = if n == 1 { format!("{base}_{}", self.short) } else { format!("{base}_{}_{n}", self.short) };
            let taken: bool = tx
                .query_one("SELECT to_regclass(quote_ident($1) || '.' || quote_ident($2)) IS NOT NULL", &[&SCHEMA, &name])
                .map_err(db_err("naming a backup table"))?
                .get(0);
            if !taken && !self.pending.iter().any(|b| b.backup_table == format!("{SCHEMA}.{}", generated_ident(&name))) {
                return Ok(name);
            }
        }
        unreachable!("some name is free")
    }

    fn create_table(&mut self, tx: &mut impl GenericClient, table: &Table, select: &str, kind: &'static str, changes: Vec<Change>, columns: Vec<String>) -> Result<String> {
        let name = self.free_name(tx, &table.relname)?;
        let qualified = format!("{SCHEMA}.{}", generated_ident(&name));
        tx.batch_execute(&format!("CREATE TABLE {qualified} AS {select}"))
            .map_err(db_err(format!("backing up {} to {qualified}", table.qualified)))?;
        textify(tx, &qualified)?;
        self.pending.push(Backup {
            version: self.version,
            table: table.qualified.clone(),
            backup_table: qualified,
            kind,
            changes,
            columns,
            key_columns: table.key.clone(),
            rows: 0,
        });
        Ok(name)
    }

    /// A backup table LIKE the source and AFTER triggers with transition
    /// tables that copy the old rows of every UPDATE / DELETE statement.
    fn watch(&mut self, tx: &mut impl GenericClient, table: &Table, changes: Vec<Change>) -> Result<()> {
        let name = self.free_name(tx, &table.relname)?;
        let qualified = format!("{SCHEMA}.{}", generated_ident(&name));
        let function = format!("{SCHEMA}.{}", generated_ident(&format!("copy_{name}")));
        let mut sql = format!("CREATE TABLE {qualified} (LIKE {});", table.qualified);
        if !table.key.is_empty() {
            sql.push_str(&format!(" ALTER TABLE {qualified} ADD PRIMARY KEY ({});", idents(&table.key, "")));
        }
        let conflict = if table.key.is_empty() { "" } else { " ON CONFLICT DO NOTHING" };
        sql.push_str(&format!(
            " CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $phasegate$
BEGIN
  INSERT INTO {qualified} SELECT * FROM phasegate_old{conflict};
  RETURN NULL;
END $phasegate$;"
        ));
        for c in &changes {
            let (event, suffix) = if *c == Change::Update { ("UPDATE", "u") } else { ("DELETE", "d") };
            let trigger = format!("phasegate_backup_{}_{suffix}", self.short);
            sql.push_str(&format!(
                " CREATE TRIGGER {} AFTER {event} ON {} REFERENCING OLD TABLE AS phasegate_old FOR EACH STATEMENT EXECUTE FUNCTION {function}();",
                quote_ident(&trigger),
                table.qualified
            ));
            self.triggers.push((trigger, table.qualified.clone(), function.clone()));
        }
        tx.batch_execute(&sql).map_err(db_err(format!("preparing the backup of {} ({})", table.qualified, qualified)))?;
        textify(tx, &qualified)?;
        self.pending.push(Backup {
            version: self.version,
            table: table.qualified.clone(),
            backup_table: qualified,
            kind: "rows",
            changes,
            columns: table.columns.clone(),
            key_columns: table.key.clone(),
            rows: 0,
        });
        Ok(())
    }

    /// Drops the triggers, counts the saved rows, drops empty backups and
    /// records the rest in the ledger; still inside the caller's transaction.
    pub fn finish(mut self, tx: &mut impl GenericClient, run_id: &str) -> Result<Vec<Backup>> {
        let mut sql = String::new();
        let mut functions: Vec<&str> = Vec::new();
        for (trigger, table, function) in &self.triggers {
            sql.push_str(&format!("DROP TRIGGER {} ON {table};", quote_ident(trigger)));
            if !functions.contains(&function.as_str()) {
                functions.push(function);
            }
        }
        for f in functions {
            sql.push_str(&format!("DROP FUNCTION {f}();"));
        }
        if !sql.is_empty() {
            tx.batch_execute(&sql).map_err(db_err("removing the backup triggers"))?;
        }
        let mut kept = Vec::new();
        for mut b in std::mem::take(&mut self.pending) {
            b.rows = tx.query_one(&format!("SELECT count(*) FROM {}", b.backup_table), &[]).map_err(db_err("counting backed-up rows"))?.get(0);
            if b.rows == 0 {
                tx.batch_execute(&format!("DROP TABLE {}", b.backup_table)).map_err(db_err("dropping an empty backup"))?;
                continue;
            }
            let changes: Vec<&str> = b.changes.iter().map(|c| c.as_str()).collect();
            tx.execute(
                "INSERT INTO phasegate_backups (run_id, version, table_name, backup_table, kind, changes, columns, key_columns, rows)
                 VALUES ($1::text::uuid, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[&run_id, &b.version, &b.table, &b.backup_table, &b.kind, &changes, &b.columns, &b.key_columns, &b.rows],
            )
            .map_err(db_err(format!("recording the backup {} in {LEDGER}", b.backup_table)))?;
            kept.push(b);
        }
        Ok(kept)
    }
}

/// A backup as the ledger remembers it.
#[derive(Debug, Clone, Serialize)]
pub struct Stored {
    pub id: i64,
    pub run_id: String,
    pub version: i32,
    pub table: String,
    pub backup_table: String,
    pub kind: String,
    pub changes: Vec<String>,
    pub columns: Vec<String>,
    pub key_columns: Vec<String>,
    pub rows: i64,
    pub created_at: String,
    pub restored_at: Option<String>,
    pub restored_by: Option<String>,
}

fn ledger_exists(client: &mut impl GenericClient) -> Result<bool> {
    Ok(client.query_one("SELECT to_regclass('phasegate_backups') IS NOT NULL", &[]).map_err(db_err("reading the backup ledger"))?.get(0))
}

const STORED_SQL: &str = "SELECT id, run_id::text, version, table_name, backup_table, kind, changes, columns, key_columns, rows,
        to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
        to_char(restored_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), restored_by::text
 FROM phasegate_backups";

fn stored(rows: Vec<postgres::Row>) -> Vec<Stored> {
    rows.iter()
        .map(|r| Stored {
            id: r.get(0),
            run_id: r.get(1),
            version: r.get(2),
            table: r.get(3),
            backup_table: r.get(4),
            kind: r.get(5),
            changes: r.get(6),
            columns: r.get(7),
            key_columns: r.get(8),
            rows: r.get(9),
            created_at: r.get(10),
            restored_at: r.get(11),
            restored_by: r.get(12),
        })
        .collect()
}

/// The backups of the given runs (for `history`), by run id.
pub fn of_runs(client: &mut impl GenericClient, run_ids: &[String]) -> Result<BTreeMap<String, Vec<Stored>>> {
    let mut out: BTreeMap<String, Vec<Stored>> = BTreeMap::new();
    if run_ids.is_empty() || !ledger_exists(client)? {
        return Ok(out);
    }
    let rows = client
        .query(&format!("{STORED_SQL} WHERE run_id::text = ANY($1) ORDER BY id"), &[&run_ids])
        .map_err(db_err("reading the backup ledger"))?;
    for b in stored(rows) {
        out.entry(b.run_id.clone()).or_default().push(b);
    }
    Ok(out)
}

/// The full run id and backups of the run whose id is or starts with `run`.
pub fn of_run(client: &mut impl GenericClient, run: &str) -> Result<(String, Vec<Stored>)> {
    let run = run.trim().to_lowercase();
    if run.len() < 8 || !run.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        return Err(Error::Refused(format!("`{run}` is not a run id: give the id `rollback` printed (at least its first 8 characters; `cargo xtask history` lists them)")));
    }
    if !ledger_exists(client)? {
        return Err(Error::Refused("this database has no backups: no rollback has backed up rows here".into()));
    }
    let rows = client
        .query(&format!("{STORED_SQL} WHERE run_id::text LIKE $1 || '%' ORDER BY id"), &[&run])
        .map_err(db_err("reading the backup ledger"))?;
    let found = stored(rows);
    let mut ids: Vec<&str> = found.iter().map(|b| b.run_id.as_str()).collect();
    ids.dedup();
    match ids.as_slice() {
        [] => Err(Error::Refused(format!(
            "run {run} has no backups: it changed no rows, ran with --no-backup, or is not a rollback (`cargo xtask history` lists runs and their backups)"
        ))),
        [one] => Ok((one.to_string(), found.clone())),
        many => Err(Error::Refused(format!("run id {run} is ambiguous: it starts {}; give more characters", many.join(", ")))),
    }
}

/// What restoring one backup did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub table: String,
    pub backup_table: String,
    /// Live rows set back to their backed-up values.
    pub updated: u64,
    /// Backed-up rows that no longer existed and were inserted again.
    pub inserted: u64,
    /// Backed-up rows already identical to the live ones.
    pub unchanged: u64,
    /// Rows of a column backup whose row no longer exists.
    pub skipped: u64,
}

/// Stores the backup's columns of user-defined types (enums, domains,
/// composites, their arrays) as text: a backup must not depend on a type
/// that a later migration drops (an irreversible cleanup's `DROP TYPE` would
/// fail on it). Rows reach these columns by assignment casts to text;
/// `restore` casts them back to the live column's type.
fn textify(tx: &mut impl GenericClient, backup_table: &str) -> Result<()> {
    let cols: Vec<String> = tx
        .query(
            "SELECT a.attname::text FROM pg_attribute a
             JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
            &[&backup_table],
        )
        .map_err(db_err(format!("reading the column types of {backup_table}")))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if cols.is_empty() {
        return Ok(());
    }
    let alters = cols.iter().map(|c| format!("ALTER COLUMN {c} TYPE text USING {c}::text", c = quote_ident(c))).collect::<Vec<_>>().join(", ");
    tx.batch_execute(&format!("ALTER TABLE {backup_table} {alters}")).map_err(db_err(format!("storing user-typed columns of {backup_table} as text")))
}

struct Col {
    name: String,
    generated: bool,
    identity_always: bool,
    /// The live column's type, to cast backed-up values back to it.
    type_sql: String,
}

fn live_columns(client: &mut impl GenericClient, table: &str) -> Result<Option<Vec<Col>>> {
    let oid: Option<u32> = client.query_one("SELECT to_regclass($1)::oid", &[&table]).map_err(db_err(format!("looking up {table}")))?.get(0);
    let Some(oid) = oid else { return Ok(None) };
    let rows = client
        .query(
            "SELECT attname::text, attgenerated <> '', attidentity = 'a', format_type(atttypid, atttypmod) FROM pg_attribute
             WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[&oid],
        )
        .map_err(db_err(format!("reading the columns of {table}")))?;
    Ok(Some(rows.iter().map(|r| Col { name: r.get(0), generated: r.get(1), identity_always: r.get(2), type_sql: r.get(3) }).collect()))
}

/// Puts back the rows of `backups` (one run's), newest backup first, in the
/// caller's transaction: UPDATE by primary key where the row still exists,
/// INSERT where it does not (whole-row backups), UPDATE of the saved columns
/// (column backups). Refuses, changing nothing, when a table or column the
/// backup needs is gone or the table has no primary key.
pub fn restore(tx: &mut impl GenericClient, backups: &[Stored], restore_run_id: &str) -> Result<Vec<Restored>> {
    let mut out = Vec::new();
    for b in backups.iter().rev() {
        let Some(live) = live_columns(tx, &b.table)? else {
            return Err(Error::Refused(format!(
                "cannot restore {}: table {} no longer exists; re-apply the phase that creates it (cargo xtask migrate --phase N) and restore again",
                b.backup_table, b.table
            )));
        };
        let missing: Vec<&str> = b.columns.iter().filter(|c| !live.iter().any(|l| &l.name == *c)).map(String::as_str).collect();
        if !missing.is_empty() {
            return Err(Error::Refused(format!(
                "cannot restore {}: {} has no column {} any more (a later rollback dropped it); re-apply the phase that adds it (cargo xtask migrate --phase N) and restore again",
                b.backup_table,
                b.table,
                missing.join(", ")
            )));
        }
        if b.key_columns.is_empty() {
            return Err(Error::Refused(format!(
                "cannot restore {}: {} has no primary key, so its rows cannot be matched; copy them back by hand from {}",
                b.backup_table, b.table, b.backup_table
            )));
        }
        let gen = |c: &str| live.iter().any(|l| l.name == c && l.generated);
        let ident_always = |c: &str| live.iter().any(|l| l.name == c && l.identity_always);
        // Backed-up values as the live column's type (user types are stored as text).
        let val = |c: &str| match live.iter().find(|l| l.name == c) {
            Some(l) => format!("CAST(b.{} AS {})", quote_ident(c), l.type_sql),
            None => format!("b.{}", quote_ident(c)),
        };
        let key_match = b.key_columns.iter().map(|k| format!("t.{} = {}", quote_ident(k), val(k))).collect::<Vec<_>>().join(" AND ");
        let set_cols: Vec<&String> = b.columns.iter().filter(|c| !b.key_columns.contains(c) && !gen(c) && !ident_always(c)).collect();
        let differs = if set_cols.is_empty() {
            "false".to_string()
        } else {
            set_cols.iter().map(|c| format!("t.{c}::text IS DISTINCT FROM b.{c}::text", c = quote_ident(c))).collect::<Vec<_>>().join(" OR ")
        };
        let total: i64 = tx.query_one(&format!("SELECT count(*) FROM {}", b.backup_table), &[]).map_err(db_err(format!("reading {}", b.backup_table)))?.get(0);
        let updated = if set_cols.is_empty() {
            0
        } else {
            let assign = set_cols.iter().map(|c| format!("{} = {}", quote_ident(c), val(c))).collect::<Vec<_>>().join(", ");
            tx.execute(&format!("UPDATE {} AS t SET {assign} FROM {} AS b WHERE {key_match} AND ({differs})", b.table, b.backup_table), &[])
                .map_err(db_err(format!("restoring {} from {}", b.table, b.backup_table)))?
        };
        let absent: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {} AS b WHERE NOT EXISTS (SELECT 1 FROM {} AS t WHERE {key_match})", b.backup_table, b.table), &[])
            .map_err(db_err(format!("reading {}", b.backup_table)))?
            .get(0);
        let (inserted, skipped) = if b.kind == "rows" && absent > 0 {
            let cols: Vec<String> = b.columns.iter().filter(|c| !gen(c)).cloned().collect();
            let overriding = if cols.iter().any(|c| ident_always(c)) { " OVERRIDING SYSTEM VALUE" } else { "" };
            let n = tx
                .execute(
                    &format!(
                        "INSERT INTO {} ({}){overriding} SELECT {} FROM {} AS b WHERE NOT EXISTS (SELECT 1 FROM {} AS t WHERE {key_match})",
                        b.table,
                        idents(&cols, ""),
                        cols.iter().map(|c| val(c)).collect::<Vec<_>>().join(", "),
                        b.backup_table,
                        b.table
                    ),
                    &[],
                )
                .map_err(db_err(format!("re-inserting deleted rows of {} from {}", b.table, b.backup_table)))?;
            advance_sequences(tx, &b.table, &cols)?;
            (n, 0)
        } else {
            (0, absent as u64)
        };
        tx.execute("UPDATE phasegate_backups SET restored_at = now(), restored_by = $2::text::uuid WHERE id = $1", &[&b.id, &restore_run_id])
            .map_err(db_err("recording the restore"))?;
        let unchanged = (total as u64).saturating_sub(updated + inserted + skipped);
        out.push(Restored { table: b.table.clone(), backup_table: b.backup_table.clone(), updated, inserted, unchanged, skipped });
    }
    Ok(out)
}

/// Moves the sequences behind identity and serial columns past the values
/// re-inserted rows brought back, so the next insert does not collide.
fn advance_sequences(tx: &mut impl GenericClient, table: &str, cols: &[String]) -> Result<()> {
    for c in cols {
        let seq: Option<String> = tx
            .query_one("SELECT pg_get_serial_sequence($1, $2)", &[&table, c])
            .map_err(db_err(format!("looking up the sequence of {table}.{c}")))?
            .get(0);
        let Some(seq) = seq else { continue };
        tx.batch_execute(&format!(
            "SELECT setval('{seq}', m) FROM (SELECT max({col})::bigint AS m FROM {table}) AS x, {seq} AS s
             WHERE m > CASE WHEN s.is_called THEN s.last_value ELSE s.last_value - 1 END",
            seq = seq.replace('\'', "''"),
            col = quote_ident(c)
        ))
        .map_err(db_err(format!("advancing {seq} past the restored rows")))?;
    }
    Ok(())
}

/// Convenience for callers holding a `Client`: restore in one transaction.
pub fn restore_in_tx(client: &mut Client, backups: &[Stored], restore_run_id: &str, lock_timeout_ms: u128) -> Result<Vec<Restored>> {
    let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
    tx.batch_execute(&format!("SET LOCAL lock_timeout = '{lock_timeout_ms}ms'")).map_err(db_err("setting lock_timeout"))?;
    let out = restore(&mut tx, backups, restore_run_id)?;
    tx.commit().map_err(db_err("committing the restore"))?;
    Ok(out)
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
    fn statements_that_change_no_rows_have_no_targets() {
        assert!(t("CREATE TABLE x (a int); ALTER TABLE x DROP CONSTRAINT c; SELECT 'UPDATE t SET a = 1'; DROP FUNCTION f(); DROP TRIGGER tr ON t").is_empty());
    }
}
