//! `init`: in an empty folder, the set a new user starts from (init, new,
//! lint, verify, migrate, in the README's order); refused, with nothing
//! changed, where a set or its files already are; and `--baseline-from` on
//! a seeded database, whose schema `migrate` records without running it.

use std::collections::BTreeMap;
use std::path::Path;

use crate::harness::{exit, fixture, log_dir, server, step, Cmd, Output, TestDb};

/// A command on the set in `dir` that writes no log (lint, new, init).
fn on_set(dir: &Path, args: &[&str]) -> Output {
    Cmd::new(args).dir(dir).run()
}

fn init(dir: &Path, more: &[&str]) -> Output {
    on_set(dir, &[&["init"], more].concat())
}

/// verify on the shared test server.
fn verify(dir: &Path) -> Output {
    Cmd::new(&["verify", "--backend", "url", "--server-url", server().admin_url()]).dir(dir).logs(log_dir()).run()
}

#[track_caller]
fn lints_clean(dir: &Path) {
    let out = on_set(dir, &["lint", "--strict", "--format", "json"]);
    out.expect_exit(exit::OK);
    assert_eq!(out.json()["summary"]["findings"], 0, "{}", out.stdout);
}

/// Every file under `dir` with its bytes (logs left out).
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, at: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(at).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn an_empty_folder_goes_through_init_new_lint_verify_and_migrate() {
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("db");
    let out = init(&set, &[]);
    out.expect_exit(exit::OK);
    assert!(out.stdout.contains("created"), "{}", out.stdout);
    for f in ["phases.toml", "migrations/V1__initial_setup.sql", "rollback/V1__initial_setup.sql", "validations/V1__initial_setup.sql"] {
        assert!(set.join(f).is_file(), "init wrote {f}");
    }
    // What init writes is clean before anything is added.
    lints_clean(&set);
    verify(&set).expect_exit(exit::OK);

    let out = on_set(&set, &["new", "create_accounts", "--phase", "1"]);
    out.expect_exit(exit::OK);
    std::fs::write(set.join("migrations/V2__create_accounts.sql"), "CREATE TABLE accounts (id bigint PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now());\nCREATE TRIGGER accounts_set_updated_at BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION set_updated_at();\n").unwrap();
    std::fs::write(set.join("rollback/V2__create_accounts.sql"), "DROP TABLE accounts;\n").unwrap();
    std::fs::write(
        set.join("validations/V2__create_accounts.sql"),
        "-- check: accounts_exists\nSELECT 'accounts' WHERE to_regclass('accounts') IS NULL;\n\n-- check: accounts_gone\n-- when: after-rollback\nSELECT 'accounts' WHERE to_regclass('accounts') IS NOT NULL;\n",
    )
    .unwrap();
    lints_clean(&set);
    let out = verify(&set);
    out.expect_exit(exit::OK);
    assert!(out.stdout.contains("1 restored, 0 mismatch"), "{}", out.stdout);

    let db = TestDb::new("init_empty_folder");
    Cmd::new(&["migrate"]).url(&db.url).dir(&set).logs(log_dir()).run().expect_exit(exit::OK);
    assert_eq!(db.count("SELECT count(*) FROM refinery_schema_history"), 2);
    // The first migration's function works: an update moves updated_at.
    let mut c = db.client();
    c.batch_execute("INSERT INTO accounts (id, updated_at) VALUES (1, '2000-01-01'); UPDATE accounts SET id = 2").unwrap();
    assert_eq!(db.count("SELECT count(*) FROM accounts WHERE updated_at > '2000-01-01'"), 1);
}

#[test]
fn init_refuses_a_folder_holding_a_set_or_its_files_and_changes_nothing() {
    struct Case {
        name: &'static str,
        prepare: fn(&Path),
        error: &'static str,
    }
    let cases = [
        Case { name: "a set", prepare: |d| copy(&fixture("accounts"), d), error: "phases.toml: a migration set is already here" },
        Case {
            name: "another tool's migrations",
            prepare: |d| write(d, "migrations/V1__x.sql", "CREATE TABLE x (id int);\n"),
            error: "migrations/V1__x.sql: migrations/ already holds SQL files",
        },
        Case { name: "a file init writes", prepare: |d| write(d, "seed/README.md", "ours\n"), error: "seed/README.md: already exists; init never overwrites a file" },
    ];
    for c in cases {
        let tmp = tempfile::tempdir().unwrap();
        (c.prepare)(tmp.path());
        let before = tree(tmp.path());
        let out = init(tmp.path(), &[]);
        out.expect_exit(exit::ERROR);
        assert!(out.error_line().contains(c.error), "{}: {}", c.name, out.stderr);
        assert!(out.stdout.is_empty(), "{}: {}", c.name, out.stdout);
        assert_eq!(tree(tmp.path()), before, "{}: nothing changed", c.name);
    }
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn copy(from: &Path, to: &Path) {
    for (rel, bytes) in tree(from) {
        let p = to.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

/// Tables, an index, a view and a function, with rows.
const EXISTING: &str = "
CREATE TABLE customers (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL UNIQUE);
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers (id), total numeric(12, 2) NOT NULL CHECK (total >= 0));
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE VIEW customer_totals AS SELECT c.id, sum(o.total) AS total FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id;
CREATE FUNCTION order_count(cid bigint) RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT count(*) FROM orders WHERE customer_id = cid $$;
INSERT INTO customers (email) VALUES ('a@example.com'), ('b@example.com');
INSERT INTO orders (customer_id, total) VALUES (1, 10), (1, 5), (2, 7);
";

#[test]
fn a_baseline_from_a_seeded_database_is_recorded_without_running_and_a_later_phase_applies() {
    let db = TestDb::new("init_baseline_from");
    db.client().batch_execute(EXISTING).unwrap();
    let before = db.snapshot();
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("db");
    let out = init(&set, &["--baseline-from", &db.url]);
    out.expect_exit(exit::OK);
    // What comes next on that database: migrate it, then write changes against it.
    assert!(out.stdout.contains("records it as applied without running it, and applies phase 1; from then on `cargo xtask change ... --dir "), "{}", out.stdout);
    let change = |set: &Path| Cmd::new(&["change", "add-column", "customers.nickname", "text", "--database-url", &db.url]).dir(set).logs(log_dir()).run();
    let refused = change(&set);
    refused.expect_exit(exit::ERROR);
    assert!(refused.error_line().starts_with("the database has not applied migration 1 of the set (2 pending)"), "{}", refused.error_line());
    let forward = std::fs::read_to_string(set.join("migrations/V1__baseline.sql")).unwrap();
    for object in ["CREATE TABLE public.customers", "CREATE INDEX orders_customer_idx", "CREATE VIEW public.customer_totals", "CREATE FUNCTION public.order_count"] {
        assert!(forward.contains(object), "the baseline holds {object}:\n{forward}");
    }
    assert!(!forward.contains("refinery_schema_history") && !forward.contains("\\restrict"), "{forward}");
    let checks = std::fs::read_to_string(set.join("validations/V1__baseline.sql")).unwrap();
    assert!(checks.contains("'public.customers'") && checks.contains("'public.orders'"), "{checks}");
    lints_clean(&set);
    // On an empty database (verify's) the baseline builds the schema.
    verify(&set).expect_exit(exit::OK);

    // On the database it was read from, it is recorded, not run.
    let out = Cmd::new(&["migrate", "--phase", "0", "--format", "json"]).url(&db.url).dir(&set).logs(log_dir()).run();
    out.expect_exit(exit::OK);
    let doc = out.json();
    assert_eq!(step(&doc, 1)["status"], "baselined", "{doc:#}");
    assert_eq!(db.ledger()[0].split(',').count(), 1, "{:?}", db.ledger());
    assert!(db.ledger()[0].starts_with("1 baseline "), "{:?}", db.ledger());
    crate::harness::assert_same_state(&before, &db.snapshot(), "the objects and rows after the baseline was recorded");

    // A later phase applies as usual.
    let out = Cmd::new(&["migrate", "--format", "json"]).url(&db.url).dir(&set).logs(log_dir()).run();
    out.expect_exit(exit::OK);
    assert_eq!(step(&out.json(), 2)["status"], "done");
    assert_eq!(db.count("SELECT count(*) FROM pg_proc WHERE proname = 'set_updated_at'"), 1);
    assert_eq!(db.count("SELECT count(*) FROM orders"), 3);
    // Migrated, the database is what changes are written against.
    change(&set).expect_exit(exit::OK);
    let manifest = std::fs::read_to_string(set.join("phases.toml")).unwrap();
    assert!(manifest.contains("customers.nickname"), "{manifest}");
}

#[test]
fn a_baseline_that_does_not_describe_the_database_is_refused_and_nothing_is_recorded() {
    let source = TestDb::new("init_baseline_source");
    source.client().batch_execute(EXISTING).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path(), &["--baseline-from", &source.url]).expect_exit(exit::OK);

    let other = TestDb::new("init_baseline_other");
    other.client().batch_execute("CREATE TABLE unrelated (id int)").unwrap();
    let before = other.snapshot();
    let out = Cmd::new(&["migrate"]).url(&other.url).dir(tmp.path()).logs(log_dir()).run();
    out.expect_exit(exit::ERROR);
    let line = out.error_line();
    assert!(line.contains("validations/V1__baseline.sql:1: the database already holds a schema, but check `baseline_tables_exist`"), "{line}");
    assert_eq!(other.count("SELECT count(*) FROM refinery_schema_history"), 0);
    crate::harness::assert_same_state(&before, &other.snapshot(), "a refused baseline");
}

/// A database phasegate already migrates (its ledger, and the ledger's
/// trigger function beside it), with a `set_updated_at()` of its own, read
/// as the baseline of a new set: the baseline holds the application's
/// schema, not phasegate's function, which the new set's ledger creates
/// itself (verify would fail on "function phasegate_runs_append_only()
/// already exists"), and the first phase's function takes another name.
#[test]
fn a_baseline_from_a_database_phasegate_migrates_leaves_its_ledger_out() {
    let db = TestDb::new("init_baseline_managed");
    db.client().batch_execute(EXISTING).unwrap();
    // A function of the name init's first phase would create.
    db.client().batch_execute("CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$").unwrap();
    Cmd::new(&["migrate", "--yes"]).url(&db.url).dir(&fixture("accounts")).logs(log_dir()).run().expect_exit(exit::OK);
    assert_eq!(db.count("SELECT count(*) FROM pg_proc WHERE proname = 'phasegate_runs_append_only'"), 1);
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("db");
    init(&set, &["--baseline-from", &db.url]).expect_exit(exit::OK);
    let forward = std::fs::read_to_string(set.join("migrations/V1__baseline.sql")).unwrap();
    assert!(forward.contains("CREATE TABLE public.customers") && forward.contains("CREATE TABLE public.accounts"), "{forward}");
    assert!(!forward.contains("phasegate_"), "{forward}");
    verify(&set).expect_exit(exit::OK);
    let setup = std::fs::read_to_string(set.join("migrations/V2__initial_setup.sql")).unwrap();
    assert!(setup.contains("CREATE FUNCTION touch_updated_at()"), "{setup}");
}

/// A schema with a `set_updated_at()` of its own (a common name): the new
/// set's first phase creates its function under another name, so `migrate`
/// on the database the baseline was read from applies it.
#[test]
fn a_baseline_with_its_own_set_updated_at_migrates() {
    let db = TestDb::new("init_baseline_set_updated_at");
    db.client().batch_execute(EXISTING).unwrap();
    db.client().batch_execute("CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path(), &["--baseline-from", &db.url]).expect_exit(exit::OK);
    lints_clean(tmp.path());
    Cmd::new(&["migrate"]).url(&db.url).dir(tmp.path()).logs(log_dir()).run().expect_exit(exit::OK);
    assert_eq!(db.count("SELECT count(*) FROM pg_proc WHERE proname IN ('set_updated_at', 'touch_updated_at')"), 2);
}
