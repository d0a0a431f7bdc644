//! `import`: another tool's history written as a phasegate set on disk
//! (docs/migration-set.md), read by the same foreign readers `verify
//! --from` uses, so `verify` on the imported set rehearses what `verify
//! --from` rehearses on the original:
//!
//! * every migration is a step and a phase of its own (`V{n}__{name}.sql`,
//!   numbered in the tool's order), its down script the rollback;
//! * a migration without a down is an irreversible phase with the reader's
//!   `reason`;
//! * a file its tool runs outside a transaction gets `-- phasegate:
//!   no-transaction` when it holds one statement; with several (its own
//!   transactions, a diesel folder's `run_in_transaction = false`), they
//!   run in the migration's transaction with their `BEGIN`/`COMMIT`
//!   removed, unless one cannot or a `ROLLBACK` undoes (refused); a file's
//!   own outer `BEGIN; ... COMMIT;` is already blanked by the reader
//!   (`foreign::txn`): phasegate files hold no transaction control;
//! * each step's validation asserts what the forward file creates exists
//!   (`creates`);
//! * each phase's summary names the tool, the migration's label and its
//!   original file(s);
//! * `imported.toml` (`record`) maps each version to its label and file in
//!   the tool, with the tool's checksum of the file, for `migrate --adopt`.
//!
//! Refused, writing nothing, when the folder already holds a set (or SQL
//! files in its folders), or when a file cannot be written as a phasegate
//! file (see above; statement boundaries the lexer would not find). The written set is loaded before returning;
//! a set that does not load is removed again.

pub(crate) mod creates;
pub mod record;

use std::path::{Path, PathBuf};

use crate::error::{Error, LoadError, Location, Result, display_path};
use crate::foreign::{self, Layout, Options};
use crate::init::{first_sql, remove, toml_escape, write_files};
use crate::set::{MigrationSet, SqlFile, Step, MANIFEST, MIGRATIONS, ROLLBACK, SEED, VALIDATIONS};

/// What `import` wrote.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The files written, the manifest first.
    pub files: Vec<PathBuf>,
    /// Migrations imported (one phase each).
    pub migrations: usize,
    /// Of them, without a down (irreversible phases).
    pub irreversible: usize,
    /// Of them, run outside a transaction (`no-transaction`).
    pub no_transaction: usize,
    /// The tool's ledger table as the tool creates it, written to
    /// `setup/{tool}_ledger.sql` when a migration refers to it (a `GRANT ...
    /// ON schema_migrations`): `verify --setup` it, as `verify --from` creates it.
    pub setup: Option<PathBuf>,
}

/// Reads the history in `from` (as `verify --from layout` does) and writes it
/// as a set into `dir` (created when missing).
pub fn import(layout: Layout, from: &Path, opts: &Options, dir: &Path) -> Result<Imported> {
    refuse_existing(dir)?;
    let set = foreign::load_with(layout, from, opts)?;
    let mut files = render(layout, from, &set)?;
    files.push((PathBuf::from(record::RECORD), record::of(layout, from, &set)?.text()));
    let setup = ledger_setup(layout, &set);
    files.extend(setup.clone());
    if let Some((rel, _)) = files.iter().find(|(rel, _)| dir.join(rel).exists() || dir.join(rel).is_symlink()) {
        return Err(Error::InitRefused { path: dir.join(rel), why: "already exists; import never overwrites a file".into() });
    }
    let written = write_files(dir, &files)?;
    if let Err(e) = crate::set::load(dir) {
        remove(&written);
        return Err(Error::Load { at: Location::file(dir), kind: LoadError::Import { message: format!("the imported set does not load, so nothing was kept: {e}") } });
    }
    let steps = || set.phases.iter().flat_map(|p| &p.steps);
    Ok(Imported {
        files: written,
        migrations: set.phases.len(),
        irreversible: set.phases.iter().filter(|p| !p.is_reversible()).count(),
        no_transaction: steps().filter(|s| s.forward.directives.no_transaction && s.forward.statements().len() == 1).count(),
        setup: setup.map(|(rel, _)| dir.join(rel)),
    })
}

/// The tool's ledger DDL as `setup/{tool}_ledger.sql`, when a forward or
/// rollback file names a table it creates.
fn ledger_setup(layout: Layout, set: &MigrationSet) -> Option<(PathBuf, String)> {
    let ledger = foreign::ledger(layout)?;
    let tables: Vec<String> = creates::created(&ledger.text).into_iter().map(|o| o.name).collect();
    let names = |f: &SqlFile| crate::sqltext::tokens(&f.text).iter().filter_map(crate::sqltext::Token::ident).any(|w| tables.contains(&w));
    let refers = set.phases.iter().flat_map(|p| &p.steps).any(|s| names(&s.forward) || s.rollback.as_ref().is_some_and(names));
    refers.then(|| {
        let text = format!(
            "-- {layout}'s ledger table, as {layout} creates it before its first migration: some\n\
             -- imported migrations refer to it. `verify --setup` this file on an empty database.\n{}\n",
            ledger.text
        );
        (Path::new("setup").join(format!("{}_ledger.sql", layout.name().replace('-', "_"))), text)
    })
}

/// Refuses a folder that holds a set, or SQL files where the set's go.
fn refuse_existing(dir: &Path) -> Result<()> {
    let manifest = dir.join(MANIFEST);
    if manifest.exists() || manifest.is_symlink() {
        return Err(Error::InitRefused { path: manifest, why: "a migration set is already here; import writes a new one (pass --dir for another folder)".into() });
    }
    for folder in [MIGRATIONS, ROLLBACK, VALIDATIONS, SEED] {
        if let Some(sql) = first_sql(&dir.join(folder)) {
            return Err(Error::InitRefused { path: sql, why: format!("{folder}/ already holds SQL files; import writes a set in a folder without them") });
        }
    }
    Ok(())
}

/// A path relative to the imported folder, for summaries and headers.
fn rel(from: &Path, p: &Path) -> String {
    display_path(p.strip_prefix(from).unwrap_or(p))
}

/// The set's files, relative to its folder, the manifest first.
fn render(layout: Layout, from: &Path, set: &MigrationSet) -> Result<Vec<(PathBuf, String)>> {
    let mut manifest = format!(
        "# Written by `phasegate import` from the {layout} history in {}:\n\
         # one phase per migration, in {layout}'s order; each summary names the original\n\
         # file. Validations assert what each forward file creates exists; add checks\n\
         # of your own to them.\n",
        display_path(from)
    );
    let mut out = vec![(PathBuf::from(MANIFEST), String::new())];
    for phase in &set.phases {
        let [step] = phase.steps.as_slice() else { unreachable!("a foreign set has one step per phase") };
        let origin = step.origin.as_ref().expect("a foreign step keeps its origin");
        let name = if step.name.trim_matches('_').is_empty() { "migration".to_string() } else { step.name.clone() };
        let file = format!("V{}__{name}.sql", step.version);
        let mut summary = format!("imported from {} {}: {}", origin.tool, origin.id, rel(from, &origin.file));
        let header = format!("-- Imported from {} {}: {}", origin.tool, origin.id, rel(from, &origin.file));
        out.push((Path::new(MIGRATIONS).join(&file), sql_text(&step.forward, &header)?));
        if let Some(down) = &step.rollback {
            if down.path != origin.file {
                summary.push_str(&format!(" (down: {})", rel(from, &down.path)));
            }
            out.push((Path::new(ROLLBACK).join(&file), sql_text(down, &format!("-- The down of {} {}: {}", origin.tool, origin.id, rel(from, &down.path)))?));
        }
        let validation = creates::validation(step.version, &body(&step.forward.text)) + &script_checks(from, step);
        out.push((Path::new(VALIDATIONS).join(&file), validation));
        manifest.push_str(&phase_toml(phase.id, &phase.name, &summary, step, phase.reason()));
    }
    out[0].1 = manifest;
    Ok(out)
}

/// A Sqitch verify script as checks, one per statement, so `verify` on the
/// set fails where `verify --from` does: Sqitch passes a verify script that
/// raises no error, so a query's rows are discarded (`SELECT 1 FROM (...)
/// WHERE false`) and any other statement (a `DO` block) runs as it is.
fn script_checks(from: &Path, step: &Step) -> String {
    let mut out = String::new();
    for c in step.checks.iter().filter(|c| matches!(c.kind, crate::check::CheckKind::Script)) {
        for (i, st) in crate::sqltext::statements(&c.sql).iter().enumerate() {
            let sql = c.sql[st.start..st.end].trim().trim_end_matches(';').trim_end();
            let first = sql.split(|ch: char| !ch.is_ascii_alphabetic()).next().unwrap_or("").to_ascii_lowercase();
            let query = match first.as_str() {
                "select" | "with" | "values" | "table" => format!("SELECT 1 FROM (\n{sql}\n) AS sqitch_verify WHERE false;"),
                _ => format!("{sql};"),
            };
            out.push_str(&format!(
                "\n-- check: sqitch_verify_{}\n-- severity: critical\n-- description: Sqitch verify script {} line {}: passes when it raises no error\n{query}\n",
                i + 1,
                rel(from, &c.file),
                st.line
            ));
        }
    }
    out
}

fn phase_toml(id: u32, name: &str, summary: &str, step: &Step, reason: Option<&str>) -> String {
    let mut s = format!("\n[[phase]]\nid = {id}\nname = \"{}\"\nsummary = \"{}\"\nversions = [{}]\n", toml_escape(name), toml_escape(summary), step.version);
    if step.rollback.is_none() {
        let reason = reason.filter(|r| !r.trim().is_empty()).unwrap_or("no down migration");
        s.push_str(&format!("reversible = false\nreason = \"{}\"\n", toml_escape(reason)));
    }
    s
}

/// A forward or rollback file: the directive its tool's way of running it
/// needs, a header naming the original, and the SQL.
fn sql_text(file: &SqlFile, header: &str) -> Result<String> {
    let statements = file.statements();
    let plain = crate::sqltext::statements(&file.text);
    if statements.len() != plain.len() {
        let line = statements.iter().zip(&plain).find(|(a, b)| a != b).map(|(a, _)| a.line).unwrap_or(1);
        return Err(Error::Load {
            at: Location::line(&file.path, line),
            kind: LoadError::Import {
                message: "a statement here holds semicolons its tool was told to keep together (StatementBegin/End, splitStatements:false) that phasegate would split; dollar-quote the body, then import again".into(),
            },
        });
    }
    let mut text = String::new();
    let mut sql = file.text.clone();
    if file.directives.no_transaction && statements.len() > 1 {
        // Its tool runs it statement by statement; phasegate's
        // no-transaction files hold one statement. Run as one transaction
        // when that is the same for a file that succeeds.
        sql = foreign::txn::in_one_transaction(file).ok_or_else(|| Error::Load {
            at: Location::line(&file.path, statements[1].line),
            kind: LoadError::Import {
                message: format!(
                    "runs outside a transaction as its tool runs it, with {} statements, one that cannot run in a transaction or a ROLLBACK; a phasegate no-transaction file holds one statement: split this migration, then import again",
                    statements.len()
                ),
            },
        })?;
        text.push_str("-- Its tool runs this file outside a transaction, statement by statement; every\n-- statement can run in one, so phasegate runs it in its migration's transaction.\n");
    } else if file.directives.no_transaction {
        text.push_str("-- phasegate: no-transaction\n");
    }
    text.push_str(header);
    text.push('\n');
    text.push_str(&body(&sql));
    Ok(text)
}

/// The text without trailing spaces (the readers blank what is not this
/// migration's), blank lines at its ends, or more than one in a row.
fn body(text: &str) -> String {
    let mut s = String::new();
    let mut blank = false;
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() {
            blank = !s.is_empty();
            continue;
        }
        if blank {
            s.push('\n');
            blank = false;
        }
        s.push_str(line);
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_holding_a_set_is_refused_and_nothing_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let from = tmp.path().join("goose");
        foreign::write(&from, "00001_a.sql", "-- +goose Up\nCREATE TABLE a (x int);\n-- +goose Down\nDROP TABLE a;\n");
        let set = tmp.path().join("set");
        foreign::write(&set, MANIFEST, "# mine\n");
        let e = import(Layout::Goose, &from, &Options::default(), &set).unwrap_err();
        assert!(e.to_string().ends_with("phases.toml: a migration set is already here; import writes a new one (pass --dir for another folder)"), "{e}");
        assert!(!set.join(MIGRATIONS).exists());
        std::fs::remove_file(set.join(MANIFEST)).unwrap();
        foreign::write(&set, "setup/goose_ledger.sql", "-- mine\n");
        foreign::write(&from, "00002_b.sql", "-- +goose Up\nGRANT SELECT ON goose_db_version TO PUBLIC;\n");
        let e = import(Layout::Goose, &from, &Options::default(), &set).unwrap_err();
        assert!(e.to_string().ends_with("setup/goose_ledger.sql: already exists; import never overwrites a file"), "{e}");
        assert!(!set.join(MANIFEST).exists() && !set.join(MIGRATIONS).exists());
    }

    #[test]
    fn a_goose_history_is_written_as_a_set_that_loads() {
        let tmp = tempfile::tempdir().unwrap();
        let from = tmp.path().join("goose");
        foreign::write(&from, "00001_a.sql", "-- +goose Up\nBEGIN;\nCREATE TABLE a (x int);\nCOMMIT;\n-- +goose Down\nDROP TABLE a;\n");
        foreign::write(&from, "00002_b.sql", "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY a_x ON a (x);\n");
        let dir = tmp.path().join("set");
        let got = import(Layout::Goose, &from, &Options::default(), &dir).unwrap();
        assert_eq!((got.migrations, got.irreversible, got.no_transaction), (2, 1, 1));
        let set = crate::set::load(&dir).unwrap();
        assert_eq!(set.phases[0].summary, "imported from goose 00001: 00001_a.sql");
        assert!(!set.phases[1].is_reversible() && set.phases[1].steps[0].forward.directives.no_transaction);
        let forward = std::fs::read_to_string(dir.join("migrations/V1__00001_a.sql")).unwrap();
        assert!(!forward.contains("BEGIN") && !forward.contains("COMMIT"), "{forward}");
        assert!(std::fs::read_to_string(dir.join("validations/V2__00002_b.sql")).unwrap().contains("index a_x"));
        assert_eq!(body("\n  \nA  \n\n\n  B\n\n"), "A\n\n  B\n", "blank runs fold to one line");
        let rec = record::Record::read(&dir).unwrap();
        assert_eq!((rec.tool.as_str(), rec.migrations.len()), ("goose", 2));
        assert_eq!((rec.migrations[1].version, rec.migrations[1].id.as_str(), rec.migrations[1].file.as_str()), (2, "00002", "00002_b.sql"));
        assert!(rec.migrations.iter().all(|m| m.checksum.is_none()), "goose keeps no checksum");
    }
}
