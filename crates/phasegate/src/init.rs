//! `init`: a new migration set in a folder (docs/migration-set.md): the
//! manifest, the four folders and a first phase, which loads, lints and
//! verifies clean before anything is added; with a [`Baseline`] read from a
//! live database (`init --baseline-from URL`), that schema becomes phase 0,
//! which `migrate` records on that database without running it.
//!
//! The first phase holds one small migration because a set cannot be empty
//! (every phase lists versions, every migration has its checks): a trigger
//! function keeping `updated_at` columns current, as diesel's setup
//! migration writes one. It is harmless (no table is touched, no lock taken
//! on one), useful to most schemas, and shows the trio: forward, rollback,
//! validation with an after-rollback check.

use std::path::{Path, PathBuf};
use std::process::Command;

use postgres::Client;

use crate::error::{db_err, Error, Result};
use crate::set::{MANIFEST, MIGRATIONS, ROLLBACK, SEED, VALIDATIONS};

/// The live schema `init --baseline-from` writes as phase 0.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// The schema as SQL (pg_dump --schema-only, made to run in a migration's transaction).
    pub sql: String,
    /// Its tables, schema-qualified and quoted (`public.users`).
    pub tables: Vec<String>,
    /// Where it was read (the connection string without its password).
    pub source: String,
}

const SETUP: &str = "initial_setup";

const SETUP_FORWARD: &str = "\
-- The set's first migration, written by `init`: a trigger function that keeps
-- an updated_at column current, for later migrations to use, e.g.
--   CREATE TRIGGER accounts_set_updated_at BEFORE UPDATE ON accounts
--     FOR EACH ROW EXECUTE FUNCTION set_updated_at();
-- Creating a function locks no table: safe under live traffic.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW IS DISTINCT FROM OLD AND NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := current_timestamp;
    END IF;
    RETURN NEW;
END;
$$;
";

const SETUP_ROLLBACK: &str = "\
-- Reverses the first migration: the schema as it was before it.
DROP FUNCTION set_updated_at();
";

const SETUP_VALIDATION: &str = "\
-- check: set_updated_at_exists
-- severity: critical
-- description: the trigger function is there (returns it when missing)
SELECT 'set_updated_at()' AS missing_function
WHERE to_regprocedure('set_updated_at()') IS NULL;

-- check: set_updated_at_removed
-- when: after-rollback
-- description: the rollback removed the trigger function (returns it when left behind)
SELECT 'set_updated_at()' AS left_behind
WHERE to_regprocedure('set_updated_at()') IS NOT NULL;
";

const SEED_README: &str = "\
Rehearsal data: `verify`, `demo` and `phasegate::testing` run seed/*.sql (in
file-name order) right after the phase `[seed] after_phase` names in
phases.toml; `migrate` never does. Uncomment `[seed]` there when you add one.
";

/// The name of the first phase's trigger function: `set_updated_at`,
/// unless the baseline already has a function of that name (many schemas
/// do), whose `CREATE FUNCTION` would then fail on the database the
/// baseline was read from, and in every rehearsal after the baseline.
fn setup_function(baseline: Option<&Baseline>) -> &'static str {
    const NAMES: [&str; 3] = ["set_updated_at", "touch_updated_at", "phasegate_set_updated_at"];
    let taken = |name: &str| baseline.is_some_and(|b| b.sql.contains(&format!(".{name}()")) || b.sql.contains(&format!(" {name}()")));
    NAMES.into_iter().find(|n| !taken(n)).unwrap_or(NAMES[2])
}

/// The files `init` writes, relative to the set's folder, with their text.
pub fn files(baseline: Option<&Baseline>) -> Vec<(PathBuf, String)> {
    let setup_version = if baseline.is_some() { 2 } else { 1 };
    let setup_file = format!("V{setup_version}__{SETUP}.sql");
    let function = setup_function(baseline);
    let named = |text: &str| text.replace("set_updated_at", function);
    let mut out = vec![(PathBuf::from(MANIFEST), named(&manifest(baseline, setup_version)))];
    if let Some(b) = baseline {
        let file = "V1__baseline.sql";
        let forward = format!(
            "-- The schema that existed when `init --baseline-from` read it from {}.\n\
             -- `migrate` on a database that holds it records this migration as applied\n\
             -- without running it; on an empty database (verify, demo, tests) it builds it.\n\n{}",
            b.source, b.sql
        );
        out.push((Path::new(MIGRATIONS).join(file), forward));
        out.push((Path::new(VALIDATIONS).join(file), baseline_validation(&b.tables)));
    }
    out.push((Path::new(MIGRATIONS).join(&setup_file), named(SETUP_FORWARD)));
    out.push((Path::new(ROLLBACK).join(&setup_file), named(SETUP_ROLLBACK)));
    out.push((Path::new(VALIDATIONS).join(&setup_file), named(SETUP_VALIDATION)));
    out.push((Path::new(SEED).join("README.md"), SEED_README.to_string()));
    out
}

fn manifest(baseline: Option<&Baseline>, setup_version: i32) -> String {
    let mut s = String::from(
        "# The migration set: its phases in order, each listing its migrations'\n\
         # versions (docs/migration-set.md is the reference). Next:\n\
         #   new create_accounts --phase 1         a migration trio in the last phase\n\
         #   change add-column accounts.note text  a whole zero-downtime change, in new phases\n\
         #   lint, verify, then migrate\n\n",
    );
    if let Some(b) = baseline {
        s.push_str(&format!(
            "[[phase]]\nid = 0\nname = \"baseline\"\nsummary = \"the existing schema, read from {}\"\nversions = [1]\nreversible = false\nreason = \"the schema that existed before phasegate; restore from backup to go back\"\nbaseline = true\n\n",
            toml_escape(&b.source)
        ));
    }
    s.push_str(&format!(
        "[[phase]]\nid = 1\nname = \"setup\"\nsummary = \"the set_updated_at() trigger function later migrations can use\"\nversions = [{setup_version}]\n\n\
         # Rehearsal data (seed/*.sql) for verify, demo and phasegate::testing,\n\
         # loaded right after this phase; never on migrate.\n\
         # [seed]\n# after_phase = 1\n"
    ));
    s
}

/// One check: every table of the baseline exists (returns those missing).
fn baseline_validation(tables: &[String]) -> String {
    let list = if tables.is_empty() {
        "ARRAY[]::text[]".to_string()
    } else {
        let items: Vec<String> = tables.iter().map(|t| format!("\n    {}", crate::pg::quote_literal(t))).collect();
        format!("ARRAY[{}\n]", items.join(","))
    };
    format!(
        "-- check: baseline_tables_exist\n\
         -- severity: critical\n\
         -- description: every table of the schema init read is there (returns those missing)\n\
         SELECT t AS missing_table\nFROM unnest({list}) AS t\nWHERE to_regclass(t) IS NULL;\n"
    )
}

/// Writes a new set into `dir` (created when missing) and returns the paths
/// written. Refuses, writing nothing, when `dir` already holds a
/// `phases.toml`, a file init would write, or migrations of its own.
pub fn init(dir: &Path, baseline: Option<&Baseline>) -> Result<Vec<PathBuf>> {
    check(dir, baseline.is_some())?;
    write_files(dir, &files(baseline))
}

/// Writes `files` (relative to `dir`, folders created) and returns their
/// paths; on an error, removes what it wrote, so nothing half-written stays.
pub(crate) fn write_files(dir: &Path, files: &[(PathBuf, String)]) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let res = (|| -> Result<()> {
        for (rel, text) in files {
            let path = dir.join(rel);
            let parent = path.parent().expect("a file in the set has a folder");
            std::fs::create_dir_all(parent).map_err(|source| Error::Io { path: parent.to_path_buf(), source })?;
            std::fs::write(&path, text).map_err(|source| Error::Io { path: path.clone(), source })?;
            written.push(path);
        }
        Ok(())
    })();
    if let Err(e) = res {
        remove(&written);
        return Err(e);
    }
    Ok(written)
}

/// Removes files written by [`write_files`].
pub(crate) fn remove(written: &[PathBuf]) {
    for p in written {
        let _ = std::fs::remove_file(p);
    }
}

/// `s` as the inside of a TOML basic string.
pub(crate) fn toml_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Whether `init` may write into `dir` (with a baseline or not): the
/// refusal [`init`] gives, checked before anything is read or written.
pub fn check(dir: &Path, with_baseline: bool) -> Result<()> {
    let manifest = dir.join(MANIFEST);
    if manifest.exists() {
        return Err(Error::InitRefused { path: manifest, why: "a migration set is already here; init starts a new one (pass --dir for another folder)".into() });
    }
    let placeholder = Baseline { sql: String::new(), tables: Vec::new(), source: String::new() };
    for (rel, _) in &files(with_baseline.then_some(&placeholder)) {
        let path = dir.join(rel);
        if path.exists() || path.is_symlink() {
            return Err(Error::InitRefused { path, why: "already exists; init never overwrites a file".into() });
        }
    }
    for folder in [MIGRATIONS, ROLLBACK, VALIDATIONS, SEED] {
        if let Some(sql) = first_sql(&dir.join(folder)) {
            return Err(Error::InitRefused { path: sql, why: format!("{folder}/ already holds SQL files; init starts a set in a folder without them") });
        }
    }
    Ok(())
}

pub(crate) fn first_sql(folder: &Path) -> Option<PathBuf> {
    let mut sql: Vec<PathBuf> = std::fs::read_dir(folder).ok()?.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "sql")).collect();
    sql.sort();
    sql.into_iter().next()
}

/// The tables of the live schema, outside system schemas, phasegate's ledger
/// and extensions, as `schema.table` (quoted where needed).
const TABLES: &str = "
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'phasegate_backup')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
  AND c.relname <> 'refinery_schema_history' AND c.relname NOT LIKE 'phasegate\\_%'
  AND NOT c.relispartition
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1";

/// Reads the live schema of `url` (pg_dump --schema-only, which must be on
/// the PATH and at least the server's major version) and its tables.
pub fn read_baseline(client: &mut Client, url: &str) -> Result<Baseline> {
    let tables = client.query(TABLES, &[]).map_err(db_err("listing the tables"))?.iter().map(|r| r.get::<_, String>(0)).collect();
    let source = crate::db::redact(url);
    let (dbname, password) = without_password(url);
    let mut cmd = Command::new("pg_dump");
    cmd.args(["--schema-only", "--no-owner", "--no-privileges", "--exclude-table=refinery_schema_history", "--exclude-table=phasegate_*", "--exclude-schema=phasegate_backup"])
        .arg(format!("--dbname={dbname}"));
    // The password goes through the environment, not the process list.
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    let out = cmd
        .output()
        .map_err(|e| Error::SchemaDump { target: source.clone(), message: format!("running pg_dump: {e} (install the PostgreSQL client, e.g. Debian's postgresql-client)") })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("pg_dump failed").trim().to_string();
        return Err(Error::SchemaDump { target: source, message: line.replace(url, &crate::db::redact(url)) });
    }
    let dump = String::from_utf8(out.stdout).map_err(|_| Error::SchemaDump { target: source.clone(), message: "pg_dump wrote text that is not UTF-8".into() })?;
    Ok(Baseline { sql: transactional(&without_ledger_function(&dump)), tables, source })
}

/// pg_dump's output without the ledger's trigger function
/// (`phasegate_runs_append_only()`, in the ledger's schema beside its
/// tables, which `--exclude-table` leaves out; pg_dump has no option to
/// leave a function out): a baseline read from a database phasegate
/// already migrates would create it, and the set's own ledger set-up would
/// then find it there. Each object of the dump starts with its
/// `-- Name: ...; Type: ...` header; the function's part runs to the next.
pub fn without_ledger_function(dump: &str) -> String {
    let header = format!("--\n-- Name: {}(); Type: FUNCTION; ", crate::db::APPEND_ONLY);
    let Some(start) = dump.find(&header) else { return dump.to_string() };
    let rest = &dump[start + header.len()..];
    let end = rest.find("\n--\n-- ").map_or(dump.len(), |i| start + header.len() + i + 1);
    format!("{}{}", &dump[..start], &dump[end..])
}

/// A `postgres://` URL without its password, and the password (decoded);
/// any other connection string as it is.
fn without_password(url: &str) -> (String, Option<String>) {
    match url::Url::parse(url) {
        Ok(mut u) if matches!(u.scheme(), "postgres" | "postgresql") && u.password().is_some() => {
            let password = percent_encoding::percent_decode_str(u.password().unwrap_or_default()).decode_utf8_lossy().into_owned();
            if u.set_password(None).is_err() {
                return (url.to_string(), None);
            }
            (u.to_string(), Some(password))
        }
        _ => (url.to_string(), None),
    }
}

/// pg_dump's output made to run as one migration in its transaction: psql
/// meta-commands (`\restrict`) dropped, its session settings (`SET x = y;`
/// lines, the search_path too) made transaction-local, its timeouts left to
/// phasegate's.
pub fn transactional(dump: &str) -> String {
    let mut out = String::with_capacity(dump.len());
    let mut blank = 0;
    for line in dump.lines() {
        if line.starts_with('\\') {
            continue;
        }
        let mut line = line.to_string();
        if let Some(rest) = line.strip_prefix("SET ").filter(|r| r.ends_with(';') && r.contains(" = ")) {
            let name = rest.split(' ').next().unwrap_or("");
            if ["statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout", "transaction_timeout"].contains(&name) {
                continue;
            }
            line = format!("SET LOCAL {rest}");
        } else if line == "SELECT pg_catalog.set_config('search_path', '', false);" {
            line = "SELECT pg_catalog.set_config('search_path', '', true);".into();
        }
        if line.trim().is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dump_runs_in_a_transaction() {
        let dump = "\\restrict abc\n--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\nSET client_encoding = 'UTF8';\nSELECT pg_catalog.set_config('search_path', '', false);\nSET check_function_bodies = false;\n\n\n\nCREATE TABLE public.t (\n    id integer\n);\n\nSET x = 1;\n\\unrestrict abc\n";
        let out = transactional(dump);
        assert!(!out.contains("\\restrict") && !out.contains("\\unrestrict"), "{out}");
        assert!(!out.contains("statement_timeout"), "{out}");
        assert!(out.contains("SET LOCAL client_encoding = 'UTF8';\n"), "{out}");
        assert!(out.contains("SET LOCAL check_function_bodies = false;\n"), "{out}");
        assert!(out.contains("set_config('search_path', '', true);"), "{out}");
        assert!(out.contains("\nSET LOCAL x = 1;\n"), "{out}");
        assert!(!out.contains("\n\n\n"), "{out}");
    }

    #[test]
    fn the_first_phase_names_its_function_so_it_does_not_meet_the_baselines() {
        let file = |files: &[(PathBuf, String)], name: &str| files.iter().find(|(p, _)| p.ends_with(name)).map(|(_, t)| t.clone()).unwrap();
        let baseline = |sql: &str| Baseline { sql: sql.into(), tables: vec![], source: "postgres://a@h/db".into() };
        let plain = files(Some(&baseline("CREATE TABLE public.t (id int);\n")));
        assert!(file(&plain, "migrations/V2__initial_setup.sql").contains("CREATE FUNCTION set_updated_at() RETURNS trigger"));
        let taken = files(Some(&baseline("CREATE FUNCTION public.set_updated_at() RETURNS trigger\n    LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;\n")));
        for name in ["migrations/V2__initial_setup.sql", "rollback/V2__initial_setup.sql", "validations/V2__initial_setup.sql", "phases.toml"] {
            let text = file(&taken, name);
            assert!(text.contains("touch_updated_at()") && !text.contains("set_updated_at"), "{name}: {text}");
        }
    }

    #[test]
    fn the_ledgers_function_is_left_out_of_a_baseline() {
        let dump = "SET x = 1;\n\n--\n-- Name: phasegate_runs_append_only(); Type: FUNCTION; Schema: public; Owner: -\n--\n\nCREATE FUNCTION public.phasegate_runs_append_only() RETURNS trigger\n    LANGUAGE plpgsql\n    AS $$\nBEGIN\n  RAISE EXCEPTION 'x';\nEND $$;\n\n\n--\n-- Name: set_updated_at(); Type: FUNCTION; Schema: public; Owner: -\n--\n\nCREATE FUNCTION public.set_updated_at() RETURNS trigger AS $$ BEGIN RETURN NEW; END $$;\n";
        let out = without_ledger_function(dump);
        assert_eq!(out, "SET x = 1;\n\n--\n-- Name: set_updated_at(); Type: FUNCTION; Schema: public; Owner: -\n--\n\nCREATE FUNCTION public.set_updated_at() RETURNS trigger AS $$ BEGIN RETURN NEW; END $$;\n");
        // The last object of a dump runs to its end.
        let last = "A;\n--\n-- Name: phasegate_runs_append_only(); Type: FUNCTION; Schema: app; Owner: -\n--\n\nCREATE FUNCTION app.phasegate_runs_append_only() RETURNS trigger AS $$ BEGIN END $$;\n";
        assert_eq!(without_ledger_function(last), "A;\n");
        assert_eq!(without_ledger_function("CREATE TABLE t (id int);\n"), "CREATE TABLE t (id int);\n");
    }

    #[test]
    fn the_manifest_loads_with_and_without_a_baseline() {
        for baseline in [None, Some(Baseline { sql: "CREATE TABLE public.t (id int);\n".into(), tables: vec!["public.t".into()], source: "postgres://a@h/db".into() })] {
            let dir = tempfile::tempdir().unwrap();
            init(dir.path(), baseline.as_ref()).unwrap();
            let set = crate::set::load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(set.phases.last().unwrap().id, 1);
            assert_eq!(set.phases[0].is_baseline(), baseline.is_some());
            assert!(matches!(init(dir.path(), None), Err(Error::InitRefused { .. })));
        }
    }

    #[test]
    fn the_password_leaves_the_url() {
        assert_eq!(without_password("postgres://app:s%40cret@db:5432/app?sslmode=disable"), ("postgres://app@db:5432/app?sslmode=disable".into(), Some("s@cret".into())));
        assert_eq!(without_password("postgres://app@db/app"), ("postgres://app@db/app".into(), None));
        assert_eq!(without_password("host=db user=app"), ("host=db user=app".into(), None));
    }

    #[test]
    fn a_table_name_with_a_quote_stays_a_literal() {
        let v = baseline_validation(&["public.\"it's\"".into()]);
        assert!(v.contains("'public.\"it''s\"'"), "{v}");
        assert!(baseline_validation(&[]).contains("ARRAY[]::text[]"));
    }
}
