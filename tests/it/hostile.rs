//! Hostile names, values and server settings (issue 23), each case a set
//! written by the test and run through the real command line against a
//! real PostgreSQL: a database whose default is `standard_conforming_strings
//! = off` (legacy databases carry it per database or per role), enum labels
//! and batch keys that try to break out of a literal, text keys that look
//! like numbers, a baseline that empties `search_path`, a table named with
//! a quote. `bypass` holds rollbacks that try to change rows without their
//! backup, `names` identifiers at PostgreSQL's 63-byte limit. (The property
//! tests that drive every SQL builder with generated names and values, on
//! sessions with the setting on and off, are the engine's own: see
//! `crates/phasegate/src/hostile/`.)

mod bypass;
mod names;

use std::path::Path;

use crate::harness::{run, Output, TestDb};

/// A migration set written to a temporary folder.
pub struct Set {
    dir: tempfile::TempDir,
}

/// A check that always passes, for steps whose checks are not the point.
pub const PASSES: &str = "-- check: nothing_to_see\nSELECT 1 WHERE false;\n";

impl Set {
    /// A set whose phases.toml is `manifest`.
    pub fn new(manifest: &str) -> Set {
        let dir = tempfile::tempdir().expect("a temporary folder");
        for sub in ["migrations", "rollback", "validations"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("phases.toml"), manifest).unwrap();
        Set { dir }
    }

    /// Migration `V{version}__{name}`: its forward SQL, its rollback (none
    /// in an irreversible phase) and its validation file.
    pub fn step(self, version: u32, name: &str, forward: &str, rollback: Option<&str>, checks: &str) -> Set {
        let file = format!("V{version}__{name}.sql");
        std::fs::write(self.dir.path().join("migrations").join(&file), forward).unwrap();
        if let Some(r) = rollback {
            std::fs::write(self.dir.path().join("rollback").join(&file), r).unwrap();
        }
        std::fs::write(self.dir.path().join("validations").join(&file), checks).unwrap();
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `args` against `db` (answering prompts with `--yes` where asked).
    pub fn run(&self, db: &TestDb, args: &[&str]) -> Output {
        run(db, self.path(), args, "")
    }
}

/// `phases.toml` for a baseline (phase 0, versions `baseline`) and one more
/// phase (1, `versions`), reversible or not.
pub fn manifest(baseline: &[u32], versions: &[u32], reversible: bool) -> String {
    let list = |v: &[u32]| v.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ");
    let irreversible = if reversible { String::new() } else { "reversible = false\nreason = \"drops what the test keeps\"\n".to_string() };
    format!(
        "[[phase]]\nid = 0\nname = \"baseline\"\nsummary = \"the schema\"\nversions = [{}]\nreversible = false\nreason = \"the existing schema\"\nbaseline = true\n\n\
         [[phase]]\nid = 1\nname = \"change\"\nsummary = \"what the test does\"\nversions = [{}]\n{irreversible}",
        list(baseline),
        list(versions)
    )
}

/// A database whose sessions start with `standard_conforming_strings =
/// off` unless they set it themselves, as a legacy database configured
/// with `ALTER DATABASE ... SET` has them.
pub fn legacy_db(label: &str) -> TestDb {
    let db = TestDb::new(label);
    db.client().batch_execute(&format!("ALTER DATABASE {} SET standard_conforming_strings = off", phasegate::quote_ident(&db.name))).unwrap();
    let mut raw = postgres::Client::connect(&db.url, postgres::NoTls).expect("a plain session");
    let setting: String = raw.query_one("SHOW standard_conforming_strings", &[]).unwrap().get(0);
    assert_eq!(setting, "off", "the database's own default is off: the test is about such a database");
    db
}

/// The victim table an injection would drop, and the assertion that it did not.
pub const VICTIM: &str = "CREATE TABLE victim (id int PRIMARY KEY); INSERT INTO victim VALUES (1);\n";

#[track_caller]
pub fn victim_survived(db: &TestDb) {
    assert_eq!(db.count("SELECT count(*) FROM victim"), 1, "the victim table is intact");
}

/// Labels that break out of a literal quoted by doubling `'` alone when
/// the server reads backslash escapes, or that a careless quoting changes.
const LABELS: [&str; 6] = [r"q\'); DROP TABLE victim; --", r"back\slash", "it's", "$$ $a$ dollar", "表情 ラベル", r"\\double\\"];

/// A string literal in the files the tests write, as `E'...'`, which
/// means the same under either setting: what is under test is what
/// phasegate builds from the values, not how the test's own file is read.
fn sql_literal(s: &str) -> String {
    format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

#[test]
fn recover_brings_hostile_enum_labels_back_exactly_on_a_database_with_standard_conforming_strings_off() {
    let db = legacy_db("hostile_enum");
    let labels = LABELS.iter().map(|l| sql_literal(l)).collect::<Vec<_>>().join(", ");
    let rows = LABELS.iter().enumerate().map(|(i, l)| format!("({i}, {})", sql_literal(l))).collect::<Vec<_>>().join(", ");
    let set = Set::new(&manifest(&[1], &[2], false))
        .step(1, "baseline", &format!("{VICTIM}CREATE TYPE mood AS ENUM ({labels});\nCREATE TABLE feelings (id int PRIMARY KEY, m mood NOT NULL);\nINSERT INTO feelings VALUES {rows};\n"), None, PASSES)
        .step(2, "drop_mood", "ALTER TABLE feelings DROP COLUMN m;\nDROP TYPE mood;\n", None, PASSES);
    set.run(&db, &["migrate", "--yes"]).expect_exit(0);
    assert_eq!(db.count("SELECT count(*) FROM pg_type WHERE typname = 'mood'"), 0);

    let out = set.run(&db, &["recover", "--phase", "1", "--yes", "--format", "json"]);
    out.expect_exit(0);
    victim_survived(&db);
    let mut c = db.client();
    let back: Vec<String> = c.query_one("SELECT array_agg(enumlabel::text ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = 'mood'::regtype", &[]).unwrap().get(0);
    assert_eq!(back, LABELS, "every label back, byte for byte, in its order");
    let values: Vec<String> = c.query_one("SELECT array_agg(m::text ORDER BY id) FROM feelings", &[]).unwrap().get(0);
    assert_eq!(values, LABELS, "every row's value back");
}

#[test]
fn a_batch_walk_hands_hostile_text_keys_to_the_server_as_values() {
    let db = legacy_db("hostile_keys");
    // Spliced into the SQL as a literal quoted by doubling `'`, under
    // backslash escapes, this key ends the literal and calls drop_victim().
    let breakout = r"x\' || drop_victim() IS NOT NULL) --";
    let hostile = [breakout, "a'b", r"back\slash", "(SELECT 1)", "表", "$$", "e'\\x41'"];
    let mixed = ["00010", "10", "9", "0x1F", "1e3", "-1", "NaN", " 7"];
    let rows = |keys: &[&str]| keys.iter().map(|k| format!("({})", sql_literal(k))).collect::<Vec<_>>().join(", ");
    let walk = |table: &str, batch: u32| {
        format!(
            "-- phasegate: batch {batch}\nUPDATE {table} SET done = true WHERE code IN (\n  SELECT code FROM {table} WHERE (:last_key IS NULL OR code > :last_key) AND NOT done\n  ORDER BY code LIMIT :batch_size)\nRETURNING code;\n"
        )
    };
    let done = |table: &str| format!("-- check: every_code_done\nSELECT code FROM {table} WHERE NOT done;\n");
    let baseline = format!(
        "{VICTIM}CREATE FUNCTION drop_victim() RETURNS text LANGUAGE plpgsql AS $$ BEGIN DROP TABLE IF EXISTS victim; RETURN 'x'; END $$;\n\
         CREATE TABLE hostile (code text PRIMARY KEY, done bool NOT NULL DEFAULT false);\nINSERT INTO hostile (code) VALUES {};\n\
         CREATE TABLE mixed (code text PRIMARY KEY, done bool NOT NULL DEFAULT false);\nINSERT INTO mixed (code) VALUES {};\n",
        rows(&hostile),
        rows(&mixed)
    );
    let set = Set::new(&manifest(&[1], &[2, 3], true))
        .step(1, "baseline", &baseline, None, PASSES)
        .step(2, "hostile", &walk("hostile", 1), Some("UPDATE hostile SET done = false;\n"), &done("hostile"))
        .step(3, "mixed", &walk("mixed", 3), Some("UPDATE mixed SET done = false;\n"), &done("mixed"));
    let out = set.run(&db, &["migrate", "--format", "json"]);
    victim_survived(&db);
    out.expect_exit(0);
    assert_eq!(db.count("SELECT count(*) FROM hostile WHERE done"), hostile.len() as i64, "every key walked once: {out:?}");
    assert_eq!(db.count("SELECT count(*) FROM mixed WHERE done"), mixed.len() as i64, "every key walked once: {out:?}");
}

#[test]
fn text_keys_that_look_like_numbers_are_walked_as_text_with_or_without_a_cast() {
    let db = TestDb::new("numeric_text_keys");
    let walk = |column: &str, key: &str| {
        format!(
            "-- phasegate: batch 2\nUPDATE codes SET {column} = true WHERE code IN (\n  SELECT code FROM codes WHERE ({key} IS NULL OR code > {key}) AND NOT {column}\n  ORDER BY code LIMIT :batch_size)\nRETURNING code;\n"
        )
    };
    let check = |column: &str| format!("-- check: every_code_{column}\nSELECT code FROM codes WHERE NOT {column};\n");
    let set = Set::new(&manifest(&[1], &[2, 3], true))
        .step(
            1,
            "baseline",
            "CREATE TABLE codes (code text PRIMARY KEY, cast_walk bool NOT NULL DEFAULT false, plain_walk bool NOT NULL DEFAULT false);\n\
             INSERT INTO codes (code) SELECT lpad(g::text, 5, '0') FROM generate_series(10, 19) g;\n",
            None,
            PASSES,
        )
        .step(2, "cast_walk", &walk("cast_walk", ":last_key::text"), Some("UPDATE codes SET cast_walk = false;\n"), &check("cast_walk"))
        .step(3, "plain_walk", &walk("plain_walk", ":last_key"), Some("UPDATE codes SET plain_walk = false;\n"), &check("plain_walk"));
    let out = set.run(&db, &["migrate", "--format", "json"]);
    out.expect_exit(0);
    assert_eq!(db.count("SELECT count(*) FROM codes WHERE cast_walk AND plain_walk"), 10, "all ten codes '00010'..'00019' walked by both: {out:?}");
    let doc = out.json();
    for v in [2, 3] {
        assert_eq!(crate::harness::step(&doc, v)["rows"], 10, "{doc:#}");
    }
}

#[test]
fn a_baseline_that_empties_search_path_leaves_the_ledger_reachable() {
    let db = TestDb::new("empty_search_path");
    // What pg_dump writes at the top of a dump, then objects named in full.
    let baseline = "SELECT pg_catalog.set_config('search_path', '', false);\n\
                    CREATE TABLE public.items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, upper_name text);\n\
                    INSERT INTO public.items (name) SELECT 'item ' || g FROM pg_catalog.generate_series(1, 25) g;\n";
    let walk = "-- phasegate: batch 10\nUPDATE public.items SET upper_name = pg_catalog.upper(name) WHERE id IN (\n  SELECT id FROM public.items WHERE (:last_key IS NULL OR id > :last_key) ORDER BY id LIMIT :batch_size)\nRETURNING id;\n";
    let set = Set::new(&manifest(&[1], &[2, 3], true))
        .step(1, "baseline", baseline, None, "-- check: items_exist\nSELECT 1 WHERE NOT EXISTS (SELECT 1 FROM public.items);\n")
        .step(2, "note", "ALTER TABLE public.items ADD COLUMN note text;\n", Some("ALTER TABLE public.items DROP COLUMN note;\n"), PASSES)
        .step(3, "upper", walk, Some("UPDATE public.items SET upper_name = NULL;\n"), "-- check: all_upper\nSELECT id FROM public.items WHERE upper_name IS NULL;\n");
    set.run(&db, &["migrate"]).expect_exit(0);
    let ledger = db.ledger();
    assert!(ledger[0].starts_with("1 baseline") && ledger[0].contains(",2 note") && ledger[0].contains(",3 upper"), "{ledger:?}");
    assert_eq!(db.count("SELECT count(*) FROM phasegate_runs WHERE command = 'migrate' AND exit_code = 0"), 1, "the audit row was written");
    let status = set.run(&db, &["status", "--format", "json"]);
    status.expect_exit(0);
    assert!(status.stdout.contains("\"applied\""), "{status:?}");
    set.run(&db, &["rollback", "--phase", "1", "--yes"]).expect_exit(0);
    assert_eq!(db.count("SELECT count(*) FROM refinery_schema_history"), 1);
}

#[test]
fn restore_puts_rows_back_into_a_table_whose_name_has_a_quote() {
    let db = TestDb::new("quote_in_name");
    let set = Set::new(&manifest(&[1], &[2], true))
        .step(1, "baseline", "CREATE TABLE \"it's\" (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);\nINSERT INTO \"it's\" (v) VALUES ('a'), ('b'), ('c');\n", None, PASSES)
        .step(2, "nothing", "SELECT 1;\n", Some("DELETE FROM \"it's\" WHERE id > 1;\n"), PASSES);
    set.run(&db, &["migrate"]).expect_exit(0);
    let out = set.run(&db, &["rollback", "--phase", "1", "--yes", "--format", "json"]);
    out.expect_exit(0);
    assert_eq!(db.count("SELECT count(*) FROM \"it's\""), 1);
    let run_id = out.json()["run_id"].as_str().unwrap().to_string();
    let out = set.run(&db, &["restore", "--run", &run_id, "--yes", "--format", "json"]);
    out.expect_exit(0);
    assert_eq!(out.json()["restored"][0]["inserted"], 2, "{out:?}");
    assert_eq!(db.count("SELECT count(*) FROM \"it's\""), 3);
    db.client().execute("INSERT INTO \"it's\" (v) VALUES ('d')", &[]).expect("the identity sequence moved past the restored ids");
}
