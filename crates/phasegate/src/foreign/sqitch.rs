//! Sqitch: the changes of `sqitch.plan` in plan order, each with
//! `deploy/<change>.sql`, `revert/<change>.sql` and `verify/<change>.sql`
//! beside the plan. A reworked change's earlier instance uses the scripts
//! named after the first tag between it and its rework that has them
//! (`deploy/<change>@<tag>.sql`), as Sqitch looks them up.
//!
//! Sqitch scripts own their transactions (psql runs them): a script that
//! starts with `BEGIN` and ends with `COMMIT` runs in one transaction (the
//! engine's, with those two statements blanked out); a script without
//! transaction control runs statement by statement outside one, as psql
//! in autocommit does, and so does one with any other transaction control
//! (`txn`). The verify script becomes an after-migrate check
//! (`CheckKind::Script`), so it also runs after every re-apply; a verify
//! that raises fails the migration at its file and line. Its own
//! `BEGIN`/`ROLLBACK` are blanked: the check always rolls back.

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::text::{blank, lines};
use super::txn::{self, control, with_semicolon};
use super::{has_sql, read, sql_file, Down, Layout, Migration, Origin};
use crate::check::{Check, CheckKind, Severity, When};
use crate::error::{Error, LoadError, Location, Result};
use crate::set::SqlFile;

pub const PLAN: &str = "sqitch.plan";

/// An entry of the plan: a change or a tag, at its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Entry {
    Change { name: String, line: usize },
    Tag { name: String },
}

/// Parses `sqitch.plan`: pragmas (`%...`), comments (`#`), tags (`@tag`) and
/// changes (`name [deps] timestamp planner <email> # note`).
pub(super) fn parse_plan(path: &Path, text: &str) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for line in lines(text) {
        let t = line.text.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with('%') {
            continue;
        }
        let first = t.split_whitespace().next().unwrap_or_default();
        if let Some(tag) = first.strip_prefix('@') {
            out.push(Entry::Tag { name: tag.to_string() });
            continue;
        }
        if first.starts_with('-') {
            return Err(Error::Load { at: Location::line(path, line.number), kind: LoadError::Foreign { message: format!("`{first}`: a revert operation in the plan; phasegate reads plans of deployed changes only") } });
        }
        let name = first.trim_start_matches('+');
        if name.is_empty() || name.contains(['[', ':', '@', '#', '\\']) {
            return Err(Error::Load { at: Location::line(path, line.number), kind: LoadError::Foreign { message: format!("`{first}` is not a change name") } });
        }
        out.push(Entry::Change { name: name.to_string(), line: line.number });
    }
    Ok(out)
}

/// A deploy or revert script: without transaction control it runs
/// statement by statement outside a transaction, as psql in autocommit
/// does; with it, as `txn` reads it (`BEGIN` first and `COMMIT` last is
/// one transaction; anything else runs as it is, outside one).
fn script(path: &Path) -> Result<SqlFile> {
    let text = read(path)?;
    refuse_meta_commands(path, &text)?;
    let none = txn::shape(&text, &crate::sqltext::statements(&text)) == txn::Shape::None;
    Ok(txn::as_tool_runs(sql_file(path, text, none), Layout::Sqitch))
}

/// psql meta-commands (`\set`, `\i`) are not SQL the engine can send.
fn refuse_meta_commands(path: &Path, text: &str) -> Result<()> {
    match lines(text).find(|l| l.text.trim_start().starts_with('\\')) {
        Some(l) => Err(Error::Load { at: Location::line(path, l.number), kind: LoadError::Foreign { message: "a psql meta-command: phasegate sends SQL statements only".into() } }),
        None => Ok(()),
    }
}

/// A verify script as a check; `None` when it holds no SQL.
fn verify_check(path: &Path) -> Result<Option<(SqlFile, Check)>> {
    let text = read(path)?;
    refuse_meta_commands(path, &text)?;
    let statements = crate::sqltext::statements(&text);
    let controls: Vec<Range<usize>> = statements.iter().filter(|st| control(&text[st.start..st.end]).is_some()).map(|st| with_semicolon(&text, st)).collect();
    let sql = blank(&text, &controls);
    if !has_sql(&sql) {
        return Ok(None);
    }
    let check = Check {
        name: "sqitch_verify".into(),
        description: Some("Sqitch verify script: passes when it raises no error".into()),
        severity: Severity::Critical,
        kind: CheckKind::Script,
        when: When::AfterMigrate,
        sql,
        file: path.to_path_buf(),
        line: 1,
        sql_line: 1,
        timeout: crate::check::DEFAULT_TIMEOUT,
        until_next_migration: false,
    };
    Ok(Some((sql_file(path, text, false), check)))
}

/// The script base name of the change at `index` of the plan: `name`, or
/// `name@tag` for an instance that was reworked later.
fn base_name(dir: &Path, plan: &Path, entries: &[Entry], index: usize) -> Result<String> {
    let Entry::Change { name, line } = &entries[index] else { unreachable!("called for changes only") };
    let rework = entries[index + 1..].iter().position(|e| matches!(e, Entry::Change { name: n, .. } if n == name));
    let Some(offset) = rework else { return Ok(name.clone()) };
    let tags: Vec<&str> = entries[index + 1..index + 1 + offset].iter().filter_map(|e| match e { Entry::Tag { name } => Some(name.as_str()), _ => None }).collect();
    for t in &tags {
        if dir.join("deploy").join(format!("{name}@{t}.sql")).is_file() {
            return Ok(format!("{name}@{t}"));
        }
    }
    let message = if tags.is_empty() {
        format!("change `{name}` is reworked later without a tag between the two")
    } else {
        format!("change `{name}` is reworked later but none of deploy/{name}@{{{}}}.sql exists", tags.join(","))
    };
    Err(Error::Load { at: Location::line(plan, *line), kind: LoadError::Foreign { message } })
}

pub(super) fn load(dir: &Path) -> Result<Vec<Migration>> {
    let plan = dir.join(PLAN);
    let entries = parse_plan(&plan, &read(&plan)?)?;
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let Entry::Change { line, .. } = e else { continue };
        let base = base_name(dir, &plan, &entries, i)?;
        let file = |kind: &str| -> PathBuf { dir.join(kind).join(format!("{base}.sql")) };
        let deploy = file("deploy");
        if !deploy.is_file() {
            return Err(Error::Load { at: Location::line(&plan, *line), kind: LoadError::MissingPair { message: format!("change `{base}` has no deploy script {}", crate::error::display_path(&deploy)) } });
        }
        let revert = file("revert");
        let down = if revert.is_file() { Down::Script(script(&revert)?) } else { Down::Missing("no revert script".into()) };
        let verify = file("verify");
        let verify = if verify.is_file() { verify_check(&verify)? } else { None };
        let origin = Origin { tool: Layout::Sqitch, id: base.clone(), name: String::new(), file: deploy.clone(), line: 1 };
        out.push(Migration { origin, name: base, up: script(&deploy)?, down, verify });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foreign::write;
    use crate::foreign::{load as load_set, Layout};


    const PLAN_TEXT: &str = "%syntax-version=1.0.0\n%project=shop\n\nschema 2024-01-01T00:00:00Z Ann <ann@example.com> # app schema\nusers [schema] 2024-01-02T00:00:00Z Ann <ann@example.com> # users\n@v1.0 2024-01-03T00:00:00Z Ann <ann@example.com> # first release\nusers [users@v1.0] 2024-01-04T00:00:00Z Ann <ann@example.com> # reworked\n";

    #[test]
    fn the_plan_reads_changes_and_tags_in_order() {
        let e = parse_plan(Path::new("sqitch.plan"), PLAN_TEXT).unwrap();
        assert_eq!(e.len(), 4);
        assert_eq!(e[1], Entry::Change { name: "users".into(), line: 5 });
        assert_eq!(e[2], Entry::Tag { name: "v1.0".into() });
        let err = parse_plan(Path::new("sqitch.plan"), "-users 2024-01-01T00:00:00Z A <a@b>\n").unwrap_err().to_string();
        assert!(err.starts_with("sqitch.plan:1: `-users`: a revert operation"), "{err}");
    }

    #[test]
    fn reworked_changes_use_the_tagged_scripts_and_transactions_are_read() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        write(p, "sqitch.plan", PLAN_TEXT);
        write(p, "deploy/schema.sql", "-- Deploy shop:schema\nBEGIN;\nCREATE SCHEMA shop;\nCOMMIT;\n");
        write(p, "revert/schema.sql", "BEGIN;\nDROP SCHEMA shop;\nCOMMIT;\n");
        write(p, "verify/schema.sql", "BEGIN;\nSELECT pg_catalog.has_schema_privilege('shop', 'usage');\nROLLBACK;\n");
        write(p, "deploy/users@v1.0.sql", "CREATE TABLE shop.users (id int);\n");
        write(p, "deploy/users.sql", "BEGIN;\nALTER TABLE shop.users ADD COLUMN name text;\nCOMMIT;\n");
        write(p, "revert/users.sql", "BEGIN;\nALTER TABLE shop.users DROP COLUMN name;\nCOMMIT;\n");
        let set = load_set(Layout::Sqitch, p).unwrap();
        let names: Vec<&str> = set.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["schema", "users@v1.0", "users"]);
        let schema = &set.phases[0].steps[0];
        assert!(!schema.forward.directives.no_transaction);
        assert!(!schema.forward.text.contains("BEGIN") && !schema.forward.text.contains("COMMIT"));
        assert_eq!(schema.forward.statements()[0].line, 3, "lines are kept");
        assert_eq!(schema.checks.len(), 1);
        assert!(!schema.checks[0].sql.contains("ROLLBACK"));
        assert_eq!(schema.checks[0].kind, CheckKind::Script);
        let first_users = &set.phases[1];
        assert!(first_users.steps[0].forward.directives.no_transaction, "no BEGIN/COMMIT: autocommit, as psql runs it");
        assert!(!first_users.is_reversible() && first_users.steps[0].checks.is_empty());
        write(p, "revert/users.sql", "BEGIN;\nALTER TABLE shop.users DROP COLUMN name;\nCOMMIT;\nSELECT 1;\n");
        let set = load_set(Layout::Sqitch, p).unwrap();
        let revert = set.phases[2].steps[0].rollback.as_ref().unwrap();
        assert!(revert.directives.no_transaction && revert.text.contains("COMMIT"), "other transaction control runs as psql runs it");
        std::fs::remove_file(p.join("deploy/users@v1.0.sql")).unwrap();
        let e = load_set(Layout::Sqitch, p).unwrap_err().to_string();
        assert!(e.ends_with("sqitch.plan:5: change `users` is reworked later but none of deploy/users@{v1.0}.sql exists"), "{e}");
    }
}
