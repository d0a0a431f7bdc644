//! `migrate --adopt TOOL`: for each tool, a fixture history is imported, a
//! database is migrated the way that tool migrates it (its forward files
//! run, then its ledger rows written as the tool writes them, with its real
//! checksums), and adopted: `status` shows every version applied (and
//! adopted), and the next `migrate` runs only a migration added after the
//! import, re-creating nothing. Drift (a ledger version without a file, a
//! file changed after the tool ran it) refuses, one line per problem,
//! recording nothing. One server for all of it, a database per tool.

use std::path::{Path, PathBuf};

use postgres::Client;
use sha1::Digest as _;

use crate::harness::json::PhaseState;
use crate::harness::{cli, exit, fixture, run, server, Output, TestDb};

/// A tool's fixture and what importing it needs.
struct Tool {
    layout: &'static str,
    fixture: &'static str,
    placeholders: &'static [(&'static str, &'static str)],
}

const TOOLS: [Tool; 8] = [
    Tool { layout: "diesel", fixture: "foreign/diesel/migrations", placeholders: &[] },
    Tool { layout: "sqlx", fixture: "foreign/sqlx/migrations", placeholders: &[] },
    Tool { layout: "golang-migrate", fixture: "foreign/quirks/golang-migrate", placeholders: &[] },
    Tool { layout: "goose", fixture: "foreign/goose/migrations", placeholders: &[] },
    Tool { layout: "dbmate", fixture: "foreign/quirks/dbmate", placeholders: &[] },
    Tool { layout: "flyway", fixture: "foreign/flyway/sql", placeholders: &[("default_currency", "EUR")] },
    Tool { layout: "sqitch", fixture: "foreign/sqitch", placeholders: &[] },
    Tool { layout: "liquibase", fixture: "foreign/liquibase/changelog", placeholders: &[] },
];

fn tool(layout: &str) -> &'static Tool {
    TOOLS.iter().find(|t| t.layout == layout).expect("a tool of TOOLS")
}

/// A fixture copied (so a test may change a file, and the golang-migrate
/// quirk's role gets a name of its own on the shared server), the set
/// imported from it, and a database.
struct Case {
    tool: &'static Tool,
    tmp: tempfile::TempDir,
    db: TestDb,
    role: String,
}

impl Case {
    fn new(layout: &str) -> Case {
        let tool = tool(layout);
        let tmp = tempfile::tempdir().unwrap();
        copy(&fixture(tool.fixture), &tmp.path().join("from"));
        let db = TestDb::new(&format!("adopt_{}", layout.replace('-', "_")));
        let role = format!("{}_reporting", db.name);
        for f in files_under(&tmp.path().join("from")) {
            let text = std::fs::read_to_string(&f).unwrap();
            if text.contains("quirks_reporting") {
                std::fs::write(&f, text.replace("quirks_reporting", &role)).unwrap();
            }
        }
        Case { tool, tmp, db, role }
    }
    fn from(&self) -> PathBuf {
        self.tmp.path().join("from")
    }
    fn set(&self) -> PathBuf {
        self.tmp.path().join("db")
    }
    fn import(&self) {
        let (from, set) = (self.from(), self.set());
        let mut args = vec!["import", "--from", self.tool.layout, from.to_str().unwrap(), "--dir", set.to_str().unwrap()];
        let ph: Vec<String> = self.tool.placeholders.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for p in &ph {
            args.extend(["--placeholder", p.as_str()]);
        }
        cli(&args, "").expect_exit(exit::OK);
    }
    fn cmd(&self, args: &[&str]) -> Output {
        run(&self.db, &self.set(), args, "")
    }
    /// The foreign set as phasegate reads it from the copy.
    fn foreign(&self) -> phasegate::MigrationSet {
        let mut opts = phasegate::foreign::Options::default();
        for (k, v) in self.tool.placeholders {
            opts.placeholders.insert(k.to_string(), v.to_string());
        }
        phasegate::foreign::load_with(phasegate::foreign::Layout::parse(self.tool.layout).unwrap(), &self.from(), &opts).unwrap()
    }
    /// Migrates the database as the tool does, its first `n` migrations:
    /// its ledger table, each forward file statement by statement, then
    /// its ledger rows.
    fn migrate_as_tool(&self, n: usize) {
        let foreign = self.foreign();
        let mut c = self.db.client();
        let layout = phasegate::foreign::Layout::parse(self.tool.layout).unwrap();
        c.batch_execute(&phasegate::foreign::ledger(layout).unwrap().text).unwrap();
        let steps: Vec<&phasegate::Step> = foreign.steps().take(n).collect();
        for s in &steps {
            for st in phasegate::split_statements(&s.forward.text) {
                let sql = &s.forward.text[st.start..st.end];
                c.batch_execute(sql).unwrap_or_else(|e| panic!("{}: {sql}: {e}", s.forward.path.display()));
            }
        }
        for (i, s) in steps.iter().enumerate() {
            let o = s.origin().unwrap();
            write_row(&mut c, self.tool.layout, i, o, &self.from(), i + 1 == steps.len());
        }
    }
    /// The whole history migrated by the tool, then adopted.
    fn adopted(layout: &str) -> Case {
        let case = Case::new(layout);
        case.import();
        let n = case.foreign().steps().count();
        case.migrate_as_tool(n);
        let out = case.cmd(&["migrate", "--adopt", layout, "--format", "json"]);
        out.expect_exit(exit::OK);
        let adopted = out.json()["adopted"].as_array().unwrap().clone();
        assert_eq!(adopted.len(), n, "{}", out.stdout);
        // sqlx, Flyway and Sqitch keep checksums: each was compared with its file's.
        let keeps = ["sqlx", "flyway", "sqitch"].contains(&layout);
        assert!(adopted.iter().all(|a| a["checksum_compared"] == keeps), "{layout}: {}", out.stdout);
        case
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let mut c = phasegate::connect(server().admin_url(), "phasegate-test").unwrap();
        let _ = c.batch_execute(&format!("DROP OWNED BY \"{0}\" CASCADE", self.role));
        let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS \"{}\"", self.role));
    }
}

/// Every file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// java.util.zip.CRC32 over each line's bytes without its line break, as
/// Flyway's ChecksumCalculator reads a file (written here bit by bit, apart
/// from the engine's).
fn flyway_crc(bytes: &[u8]) -> i32 {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let mut crc = 0xffff_ffffu32;
    for line in text.trim_start_matches('\u{feff}').replace("\r\n", "\n").replace('\r', "\n").split('\n') {
        for b in line.bytes() {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
    }
    !crc as i32
}

/// One ledger row as the tool writes it after running migration `i`.
fn write_row(c: &mut Client, layout: &str, i: usize, o: &phasegate::foreign::Origin, from: &Path, last: bool) {
    let bytes = std::fs::read(&o.file).unwrap();
    let rel = o.file.strip_prefix(from).unwrap().to_string_lossy().into_owned();
    let exec = |c: &mut Client, sql: &str, params: &[&(dyn postgres::types::ToSql + Sync)]| {
        c.execute(sql, params).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    };
    match layout {
        "diesel" => exec(c, "INSERT INTO __diesel_schema_migrations (version) VALUES ($1)", &[&o.id.replace('-', "")]),
        "sqlx" => exec(
            c,
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES ($1::text::bigint, $2, true, sha384($3), 1)",
            &[&o.id, &o.name.replace('_', " "), &bytes],
        ),
        "golang-migrate" if last => exec(c, "INSERT INTO schema_migrations (version, dirty) VALUES ($1::text::bigint, false)", &[&o.id]),
        "golang-migrate" => {}
        "goose" => exec(c, "INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1::text::bigint, true)", &[&o.id]),
        "dbmate" => exec(c, "INSERT INTO schema_migrations (version) VALUES ($1)", &[&o.id]),
        "flyway" => {
            let version = (!o.id.starts_with("R__")).then(|| o.id.clone());
            exec(
                c,
                "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, checksum, installed_by, execution_time, success)
                 VALUES ($1, $2, $3, 'SQL', $4, $5, 'flyway', 1, true)",
                &[&(i as i32 + 1), &version, &o.name.replace('_', " "), &rel, &flyway_crc(&bytes)],
            );
        }
        "sqitch" => {
            exec(c, "INSERT INTO sqitch.projects (project, creator_name, creator_email) VALUES ('shop', 'Ann', 'ann@example.com') ON CONFLICT DO NOTHING", &[]);
            let hex = |b: &[u8]| sha1::Sha1::digest(b).iter().map(|x| format!("{x:02x}")).collect::<String>();
            exec(
                c,
                "INSERT INTO sqitch.changes (change_id, script_hash, change, project, committer_name, committer_email, planned_at, planner_name, planner_email)
                 VALUES ($1, $2, $3, 'shop', 'Ann', 'ann@example.com', now(), 'Ann', 'ann@example.com')",
                &[&hex(o.id.as_bytes()), &hex(&bytes), &o.id.split('@').next().unwrap()],
            );
        }
        "liquibase" => {
            let (author, id) = o.id.split_once(':').unwrap();
            exec(
                c,
                "INSERT INTO databasechangelog (id, author, filename, dateexecuted, orderexecuted, exectype, md5sum)
                 VALUES ($1, $2, $3, now(), $4, 'EXECUTED', '9:' || md5(random()::text))",
                &[&id, &author, &format!("changelog/{rel}"), &(i as i32 + 1)],
            );
        }
        other => panic!("no ledger for {other}"),
    }
}

/// A phase added to the imported set after the import: one migration
/// creating `adopt_added`.
fn add_phase(set: &Path) -> i32 {
    let loaded = phasegate::load_set(set).unwrap();
    let v = loaded.steps().map(|s| s.version).max().unwrap() + 1;
    let id = loaded.phases.iter().map(|p| p.id).max().unwrap() + 1;
    let file = format!("V{v}__added.sql");
    for folder in ["migrations", "rollback", "validations"] {
        std::fs::create_dir_all(set.join(folder)).unwrap();
    }
    std::fs::write(set.join("migrations").join(&file), "CREATE TABLE adopt_added (id int);\n").unwrap();
    std::fs::write(set.join("rollback").join(&file), "DROP TABLE adopt_added;\n").unwrap();
    std::fs::write(
        set.join("validations").join(&file),
        "-- check: added_exists\n-- severity: critical\n-- description: the added table is there\nSELECT 'adopt_added' WHERE to_regclass('adopt_added') IS NULL;\n",
    )
    .unwrap();
    let mut m = std::fs::read_to_string(set.join("phases.toml")).unwrap();
    m.push_str(&format!("\n[[phase]]\nid = {id}\nname = \"added\"\nsummary = \"added after the import\"\nversions = [{v}]\n"));
    std::fs::write(set.join("phases.toml"), m).unwrap();
    v
}

/// Every row of every table outside the ledgers, and the number of relations.
fn state(db: &TestDb) -> (i64, i64) {
    let rows = db.count(
        "SELECT coalesce(sum((xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', schemaname, tablename), false, true, '')))[1]::text::bigint), 0)::bigint
         FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'phasegate%' AND tablename <> 'refinery_schema_history'",
    );
    let rels = db.count("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname NOT LIKE 'phasegate%' AND relname NOT LIKE 'refinery%'");
    (rows, rels)
}

/// Adopted: every phase applied, each version adopted from the tool;
/// adopting again records nothing; a migration added after the import is
/// the only one `migrate` runs, and no old table is re-created or re-filled.
#[track_caller]
fn adopts(layout: &str) {
    let case = Case::adopted(layout);
    let status = case.cmd(&["status", "--format", "json"]);
    let phases = status.report().phases();
    assert!(!phases.is_empty());
    for p in &phases {
        assert_eq!(p.state, PhaseState::Applied, "{layout}: {}", status.stdout);
        assert!(p.pending.is_empty() && !p.applied.is_empty(), "{layout}: {}", status.stdout);
        let adopted: Vec<i32> = p.adopted.iter().map(|a| a.0).collect();
        assert_eq!(adopted, p.applied, "{layout}: every version adopted: {}", status.stdout);
        assert!(p.adopted.iter().all(|a| a.1.starts_with(&format!("{layout} "))), "{layout}: {}", status.stdout);
    }
    let again = case.cmd(&["migrate", "--adopt", layout, "--format", "json"]);
    again.expect_exit(exit::OK);
    assert_eq!(again.json()["adopted"].as_array().unwrap().len(), 0, "idempotent: {}", again.stdout);
    assert_eq!(again.json()["already"].as_array().unwrap().len(), phases.iter().map(|p| p.applied.len()).sum::<usize>());

    let v = add_phase(&case.set());
    let before = state(&case.db);
    let out = case.cmd(&["migrate", "--yes", "--format", "json"]);
    out.expect_exit(exit::OK);
    let ran: Vec<i32> = out.report().steps.iter().map(|s| s.version).collect();
    assert_eq!(ran, vec![v], "{layout}: only the added migration runs: {}", out.stdout);
    assert_eq!(state(&case.db), (before.0, before.1 + 1), "{layout}: old tables kept their rows; one table added");
    let history = case.cmd(&["history"]);
    assert!(history.stdout.contains(&format!("adopted {layout}'s ledger")), "{}", history.stdout);
}

#[test]
fn diesel_sqlx_and_golang_migrate_ledgers_are_adopted() {
    adopts("diesel");
    adopts("sqlx");
    adopts("golang-migrate");
}

#[test]
fn goose_dbmate_and_flyway_ledgers_are_adopted() {
    adopts("goose");
    adopts("dbmate");
    adopts("flyway");
}

#[test]
fn sqitch_and_liquibase_ledgers_are_adopted() {
    adopts("sqitch");
    let case = Case::adopted("liquibase");
    let status = case.cmd(&["status", "--format", "json"]);
    assert!(status.report().phases().iter().all(|p| p.state == PhaseState::Applied), "{}", status.stdout);
    // Liquibase's md5sum is not rebuilt: the adoption says so, never pretends.
    let again = case.cmd(&["migrate", "--adopt", "liquibase"]);
    assert!(again.stdout.contains("checksums are not compared"), "{}", again.stdout);
    adopts("liquibase");
}

/// The tool ran part of the history: those versions are adopted, the rest
/// (and only the rest) runs on the next `migrate`. `--dry-run` first
/// records nothing.
#[test]
fn a_partly_migrated_database_is_adopted_and_migrate_runs_the_rest() {
    let case = Case::new("goose");
    case.import();
    let n = case.foreign().steps().count();
    case.migrate_as_tool(n - 2);
    let dry = case.cmd(&["migrate", "--adopt", "goose", "--dry-run"]);
    dry.expect_exit(exit::OK);
    assert!(dry.stdout.contains("would record V1 ") && dry.stdout.contains("dry run: nothing was recorded"), "{}", dry.stdout);
    assert_eq!(case.db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'phasegate_applied'"), 0, "a dry run creates no ledger");
    let out = case.cmd(&["migrate", "--adopt", "goose", "--format", "json"]);
    out.expect_exit(exit::OK);
    assert_eq!(out.json()["adopted"].as_array().unwrap().len(), n - 2, "{}", out.stdout);
    assert_eq!(out.json()["pending"].as_array().unwrap().len(), 2, "{}", out.stdout);
    let ran = case.cmd(&["migrate", "--yes", "--format", "json"]);
    ran.expect_exit(exit::OK);
    let versions: Vec<i32> = ran.report().steps.iter().map(|s| s.version).collect();
    assert_eq!(versions, vec![n as i32 - 1, n as i32], "{}", ran.stdout);
}

/// What a refusal leaves: an error line per problem, exit 1, no ledger rows.
#[track_caller]
fn refused(case: &Case, want: &[&str]) {
    let out = case.cmd(&["migrate", "--adopt", case.tool.layout]);
    out.expect_exit(exit::ERROR);
    for w in want {
        assert!(out.stderr.lines().any(|l| l.contains(w)), "{w:?} in {}", out.stderr);
    }
    let recorded = case.db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'phasegate_applied'");
    if recorded > 0 {
        assert_eq!(case.db.count("SELECT count(*) FROM phasegate_applied"), 0, "nothing recorded");
    }
}

#[test]
fn a_ledger_version_without_a_file_is_drift() {
    let case = Case::new("goose");
    case.import();
    case.migrate_as_tool(3);
    case.db.client().batch_execute("INSERT INTO goose_db_version (version_id, is_applied) VALUES (99999, true)").unwrap();
    case.db.client().batch_execute("INSERT INTO goose_db_version (version_id, is_applied) VALUES (88888, true)").unwrap();
    refused(&case, &["goose 88888: in goose_db_version but no migration", "goose 99999: in goose_db_version but no migration of the imported set comes from it"]);
    let errors = case.cmd(&["migrate", "--adopt", "goose"]).stderr.lines().filter(|l| l.starts_with("error: ")).count();
    assert_eq!(errors, 2, "one line per problem");
    // Another tool's name, a database that tool never migrated, a set import did not write.
    let other = case.cmd(&["migrate", "--adopt", "dbmate"]);
    other.expect_exit(exit::ERROR);
    assert!(other.error_line().contains("imported.toml: the set was imported from goose"), "{}", other.stderr);
    let fresh = TestDb::new("adopt_fresh");
    let none = run(&fresh, &case.set(), &["migrate", "--adopt", "goose"], "");
    none.expect_exit(exit::ERROR);
    assert!(none.error_line().starts_with("goose's ledger table goose_db_version is not in this database"), "{}", none.stderr);
    std::fs::remove_file(case.set().join("imported.toml")).unwrap();
    let unrecorded = case.cmd(&["migrate", "--adopt", "goose"]);
    unrecorded.expect_exit(exit::ERROR);
    assert!(unrecorded.error_line().contains("imported.toml: not found: `migrate --adopt` adopts the ledger of a set `phasegate import` wrote"), "{}", unrecorded.stderr);

    // golang-migrate's one row names a version no file has.
    let gm = Case::new("golang-migrate");
    gm.import();
    gm.migrate_as_tool(2);
    gm.db.client().batch_execute("UPDATE schema_migrations SET version = 40").unwrap();
    refused(&gm, &["golang-migrate 40: the current version in schema_migrations but no migration"]);
    gm.db.client().batch_execute("UPDATE schema_migrations SET version = 2, dirty = true").unwrap();
    refused(&gm, &["golang-migrate version 2 is dirty"]);
}

/// The tool ran a file that changed afterwards (then was imported): its
/// checksum in the ledger is not the file's. sqlx, Flyway and Sqitch keep one.
#[test]
fn a_file_changed_after_its_tool_ran_it_is_drift() {
    for (layout, rel) in [
        ("sqlx", "20240108090000_create_currencies.up.sql"),
        ("flyway", "V2__create_order_items.sql"),
        ("sqitch", "deploy/orders.sql"),
    ] {
        let case = Case::new(layout);
        let n = case.foreign().steps().count();
        case.migrate_as_tool(n);
        let file = case.from().join(rel);
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, format!("{text}-- changed after it ran\n")).unwrap();
        case.import();
        refused(&case, &[&format!("{rel}: {layout} "), "the file changed after"]);
        let errors: Vec<String> = case.cmd(&["migrate", "--adopt", layout]).stderr.lines().filter(|l| l.starts_with("error: ")).map(String::from).collect();
        assert_eq!(errors.len(), 1, "{layout}: one problem, one line: {errors:#?}");
    }
}

/// refinery's ledger is the table phasegate keeps its own in: refinery
/// itself migrates the database (its real rows and checksums), adoption
/// replaces its rows with phasegate's, and a file changed after refinery
/// ran it is refused.
#[test]
fn a_refinery_ledger_is_adopted_in_the_table_phasegate_shares_with_it() {
    let files = [
        ("V1__customers", "CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL);\nINSERT INTO customers VALUES (1, 'a@example.com');\n"),
        ("V2__orders", "CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers);\n"),
        ("V5__orders_customer_idx", "CREATE INDEX orders_customer_idx ON orders (customer_id);\n"),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let from = tmp.path().join("refinery");
    std::fs::create_dir_all(&from).unwrap();
    for (name, sql) in files {
        std::fs::write(from.join(format!("{name}.sql")), sql).unwrap();
    }
    let by_refinery = |db: &TestDb| {
        let migrations: Vec<refinery::Migration> = files.iter().map(|(n, s)| refinery::Migration::unapplied(n, s).unwrap()).collect();
        refinery::Runner::new(&migrations).run(&mut db.client()).unwrap();
    };
    let import = |set: &Path| cli(&["import", "--from", "refinery", from.to_str().unwrap(), "--dir", set.to_str().unwrap()], "").expect_exit(exit::OK).stdout.clone();

    let db = TestDb::new("adopt_refinery");
    by_refinery(&db);
    let set = tmp.path().join("db");
    import(&set);
    let out = run(&db, &set, &["migrate", "--adopt", "refinery", "--format", "json"], "");
    out.expect_exit(exit::OK);
    let adopted = out.json()["adopted"].as_array().unwrap().clone();
    assert_eq!(adopted.len(), 3, "{}", out.stdout);
    assert!(adopted.iter().all(|a| a["checksum_compared"] == true), "refinery's checksums compared: {}", out.stdout);
    assert_eq!(db.count("SELECT count(*) FROM refinery_schema_history h JOIN phasegate_applied a USING (version)"), 3, "phasegate's rows replace refinery's");
    assert_eq!(db.count("SELECT count(*) FROM refinery_schema_history"), 3);
    let status = run(&db, &set, &["status", "--format", "json"], "");
    assert!(status.report().phases().iter().all(|p| p.state == PhaseState::Applied && p.adopted.len() == 1), "{}", status.stdout);
    let v = add_phase(&set);
    let ran = run(&db, &set, &["migrate", "--yes", "--format", "json"], "");
    ran.expect_exit(exit::OK);
    assert_eq!(ran.report().steps.iter().map(|s| s.version).collect::<Vec<_>>(), vec![v], "{}", ran.stdout);
    assert_eq!(db.count("SELECT count(*) FROM customers"), 1, "V1 did not run again");

    // V2 changed after refinery ran it.
    let drifted = TestDb::new("adopt_refinery_drift");
    by_refinery(&drifted);
    std::fs::write(from.join("V2__orders.sql"), format!("{}-- changed\n", files[1].1)).unwrap();
    let set2 = tmp.path().join("db2");
    import(&set2);
    let out = run(&drifted, &set2, &["migrate", "--adopt", "refinery"], "");
    out.expect_exit(exit::ERROR);
    assert!(out.stderr.contains("V2__orders.sql: refinery 2: its checksum in refinery_schema_history"), "{}", out.stderr);
    assert_eq!(drifted.count("SELECT count(*) FROM refinery_schema_history"), 3, "refinery's rows untouched");
}
