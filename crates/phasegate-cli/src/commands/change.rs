//! `change OPERATION ARGS`: writes a zero-downtime change into the set (the
//! engine's `change::generate` and `change::write`), prints what it wrote
//! and the next commands, or with `--dry-run` the files themselves.

use serde::Serialize;

use super::{Ctx, Report, Run};
use crate::exit::Exit;
use crate::cli::Shape;
use crate::cli::{ChangeArgs, ChangeCommon, ChangeOp};
use phasegate::{change, display_path, Server};

/// `change --format json`.
#[derive(Serialize)]
struct ChangeJson<'a> {
    change: &'a change::Change,
    dry_run: bool,
    /// What was written (absent for a dry run).
    written: Option<change::Written>,
}

pub fn run(a: ChangeArgs, ctx: &mut Ctx) -> Exit {
    let common = a.op.common().clone();
    let mut run = Run::new(ctx, ChangeArgs::NAME, None, common.set.format, super::logs_for(&common.set.dir, common.log_dir.as_ref()));
    run.audit = false;
    let report = body(&a.op, &common, &mut run);
    run.finish(report)
}

/// A command-line word, quoted for a POSIX shell when it needs it.
fn shell_word(w: &str) -> String {
    if !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,".contains(c)) {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// The operation as the engine takes it, and its words for the record in
/// phases.toml (`change rename-column accounts.full_name display_name`).
fn operation(op: &ChangeOp) -> anyhow::Result<(Option<change::Operation>, Vec<String>)> {
    let col = |s: &str| change::ColumnRef::parse(s).map_err(anyhow::Error::from);
    let table = |s: &str| change::TableRef::parse(s).map_err(anyhow::Error::from);
    let flag = |name: &str, v: &Option<String>| v.as_ref().map(|v| vec![format!("--{name}"), v.clone()]).unwrap_or_default();
    let words = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    Ok(match op {
        ChangeOp::AddColumn { column, type_sql, default, not_null, fill, .. } => {
            let mut w = words(&["add-column", column, type_sql]);
            w.extend(flag("default", default));
            if *not_null {
                w.push("--not-null".into());
            }
            w.extend(flag("fill", fill));
            (Some(change::Operation::AddColumn { column: col(column)?, type_sql: type_sql.clone(), default: default.clone(), not_null: *not_null, fill: fill.clone() }), w)
        }
        ChangeOp::RenameColumn { column, new_name, .. } => (Some(change::Operation::RenameColumn { column: col(column)?, new_name: new_name.clone() }), words(&["rename-column", column, new_name])),
        ChangeOp::ChangeType { column, type_sql, up, down, new_name, .. } => {
            let mut w = words(&["change-type", column, type_sql, "--up", up, "--down", down]);
            w.extend(flag("as", new_name));
            (Some(change::Operation::ChangeType { column: col(column)?, type_sql: type_sql.clone(), up: up.clone(), down: down.clone(), new_name: new_name.clone() }), w)
        }
        ChangeOp::SetNotNull { column, fill, .. } => {
            let mut w = words(&["set-not-null", column]);
            w.extend(flag("fill", fill));
            (Some(change::Operation::SetNotNull { column: col(column)?, fill: fill.clone() }), w)
        }
        ChangeOp::DropNotNull { column, .. } => (Some(change::Operation::DropNotNull { column: col(column)? }), words(&["drop-not-null", column])),
        ChangeOp::SetDefault { column, default, .. } => (Some(change::Operation::SetDefault { column: col(column)?, default: default.clone() }), words(&["set-default", column, default])),
        ChangeOp::DropDefault { column, .. } => (Some(change::Operation::DropDefault { column: col(column)? }), words(&["drop-default", column])),
        ChangeOp::DropColumn { column, .. } => (Some(change::Operation::DropColumn { column: col(column)? }), words(&["drop-column", column])),
        ChangeOp::SplitToLookup { column, lookup, reference, .. } => {
            let mut w = words(&["split-to-lookup", column, lookup]);
            w.extend(flag("reference", reference));
            (Some(change::Operation::SplitToLookup { column: col(column)?, lookup: lookup.clone(), reference: reference.clone() }), w)
        }
        ChangeOp::AddCheck { table: t, name, expr, .. } => (Some(change::Operation::AddCheck { table: table(t)?, name: name.clone(), expr: expr.clone() }), words(&["add-check", t, name, expr])),
        ChangeOp::AddUnique { columns, name, .. } => {
            let mut w = words(&["add-unique", columns]);
            w.extend(flag("name", name));
            (Some(change::Operation::AddUnique { columns: change::ColumnsRef::parse(columns)?, name: name.clone() }), w)
        }
        ChangeOp::AddForeignKey { column, references, on_delete, name, .. } => {
            let mut w = words(&["add-foreign-key", column, references]);
            w.extend(flag("on-delete", on_delete));
            w.extend(flag("name", name));
            (Some(change::Operation::AddForeignKey { column: col(column)?, references: col(references)?, on_delete: on_delete.clone(), name: name.clone() }), w)
        }
        ChangeOp::CreateIndex { table: t, keys, unique, predicate, name, .. } => {
            let mut w = words(&["create-index", t, keys]);
            if *unique {
                w.push("--unique".into());
            }
            w.extend(flag("where", predicate));
            w.extend(flag("name", name));
            (Some(change::Operation::CreateIndex { table: table(t)?, keys: keys.clone(), unique: *unique, predicate: predicate.clone(), name: name.clone() }), w)
        }
        ChangeOp::DropIndex { index, .. } => (Some(change::Operation::DropIndex { index: table(index)? }), words(&["drop-index", index])),
        ChangeOp::CreateTable { table: t, columns, .. } => (Some(change::Operation::CreateTable { table: table(t)?, columns: columns.clone() }), words(&["create-table", t, columns])),
        ChangeOp::RenameTable { table: t, new_name, .. } => (Some(change::Operation::RenameTable { table: table(t)?, new_name: new_name.clone() }), words(&["rename-table", t, new_name])),
        ChangeOp::DropTable { table: t, .. } => (Some(change::Operation::DropTable { table: table(t)? }), words(&["drop-table", t])),
        ChangeOp::DropConstraint { table: t, name, .. } => (Some(change::Operation::DropConstraint { table: table(t)?, name: name.clone() }), words(&["drop-constraint", t, name])),
        ChangeOp::RenameConstraint { table: t, name, new_name, .. } => {
            (Some(change::Operation::RenameConstraint { table: table(t)?, name: name.clone(), new_name: new_name.clone() }), words(&["rename-constraint", t, name, new_name]))
        }
        ChangeOp::Raw { name, irreversible, .. } => {
            let mut w = words(&["raw", name]);
            w.extend(flag("irreversible", irreversible));
            (None, w)
        }
    })
}

fn generate(op: &ChangeOp, operation: Option<change::Operation>, c: &ChangeCommon, set: &phasegate::MigrationSet, run: &mut Run) -> anyhow::Result<change::Change> {
    let Some(operation) = operation else {
        let ChangeOp::Raw { name, irreversible, .. } = op else { unreachable!("only raw has no operation") };
        return Ok(phasegate::change::raw(set, name, irreversible.as_deref())?);
    };
    let request = change::Request { operation, batch: c.batch };
    if let Some(url) = &c.database_url {
        run.say(&format!("learning the schema from {}", phasegate::redact(url)));
        return Ok(phasegate::change::generate(set, change::Source::Live { url }, &request)?);
    }
    let server = Server::start(&c.backend.backend(&c.server)?)?;
    run.say(&format!("learning the schema: the set applied to a disposable PostgreSQL ({})", server.kind()));
    Ok(phasegate::change::generate(set, change::Source::Disposable { server: &server, seed_rows: c.seed_rows }, &request)?)
}

fn body(op: &ChangeOp, c: &ChangeCommon, run: &mut Run) -> anyhow::Result<Report> {
    let (operation, words) = operation(op)?;
    let set = phasegate::load_set(&c.set.dir)?;
    let change = generate(op, operation, c, &set, run)?;
    let command = format!("{} change {}", run.bin(), words.iter().map(|w| shell_word(w)).collect::<Vec<_>>().join(" "));
    let dir = display_path(&c.set.dir);
    let mut text = String::new();
    let written = if c.dry_run {
        for (rel, body) in phasegate::change::files(&change) {
            text.push_str(&format!("==> {} <==\n{body}\n", display_path(&c.set.dir.join(rel))));
        }
        text.push_str(&format!("==> {} (appended) <==\n{}\n", display_path(&c.set.dir.join(phasegate::MANIFEST)), phasegate::change::render(&change, &command)));
        text.push_str("dry run: nothing was written\n");
        None
    } else {
        Some(phasegate::change::write(&c.set.dir, &change, &command)?)
    };
    if written.is_some() {
        text.push_str(&format!("{}: {} phases, {} migrations\n", change.title, change.phases.len(), change.phases.iter().map(|p| p.migrations.len()).sum::<usize>()));
        for p in &change.phases {
            let kind = if p.irreversible.is_some() { " (irreversible)" } else { "" };
            text.push_str(&format!("  phase {} {}{kind}: {}\n", p.id, p.name, p.summary));
            for m in &p.migrations {
                let f = m.file_name();
                let pairs = if m.rollback.is_some() { "migrations, rollback, validations" } else { "migrations, validations" };
                text.push_str(&format!("    {f}  ({pairs})\n"));
            }
        }
        for pr in &change.probes {
            let range = pr.until.map_or(format!("from phase {}", pr.from), |u| format!("phases {} to {u}", pr.from));
            text.push_str(&format!("  {}  ({range})\n", pr.file));
        }
        text.push_str(&format!("  {} gained the phases and probes above\n", display_path(&c.set.dir.join(phasegate::MANIFEST))));
    }
    for n in &change.notes {
        text.push_str(&format!("note: {n}\n"));
    }
    if written.is_some() {
        text.push_str(&format!("next:\n  {bin} lint --dir {dir}\n  {bin} verify --dir {dir}\n", bin = run.bin()));
    }
    Ok(Report { text, ..Default::default() }.with_body(&ChangeJson { change: &change, dry_run: c.dry_run, written }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn words_are_quoted_for_the_shell_only_when_needed() {
        assert_eq!(super::shell_word("accounts.full_name"), "accounts.full_name");
        assert_eq!(super::shell_word("numeric(12,2)"), "'numeric(12,2)'");
        assert_eq!(super::shell_word("'x'"), "''\\''x'\\'''");
    }
}
