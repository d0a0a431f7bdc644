//! The incremental compare (each observation re-reads only the objects
//! whose catalog rows a step changed, and those depending on them) finds
//! exactly what the full compare (`verify --full-compare`: every object
//! rendered, every table hashed, at every observation) finds: on the
//! realistic generated history, on both shipped sets, and on down scripts
//! broken in the ways an incremental compare could miss (a CASCADE drop, a
//! view depending on a renamed table, an ALTER TYPE, a function body, a
//! comment, a trigger dropped with its function, a grant), and in the ways
//! the change log (an event trigger, see crates/phasegate/src/snapshot/touch.rs)
//! could miss: DDL run by a DO block or by a function the migration calls,
//! ALTER EXTENSION, comments on sub-objects, an object dropped and created
//! again under the same name, a dropped index (whose drop names no table),
//! a view changed through its base view, TRUNCATE (no event trigger) and
//! DDL under `session_replication_role = replica`.

use phasegate::rehearse::PhaseResult;
use phasegate::{MigrationSet, Options};
use phasegate_cli::bench::corpus::{self, Layout, Migration};
use phasegate_cli::bench::verify_history::{found, history_set};

use crate::harness::{repo, server, tenant_keys, TestDb};

/// Rehearses `set` on a fresh database, incrementally or in full.
fn rehearse(set: &MigrationSet, full_compare: bool, foreign: bool, seed_rows: Option<u64>) -> phasegate::rehearse::Rehearsal {
    let db = TestDb::new(if full_compare { "full_cmp" } else { "incr_cmp" });
    let apply = Options { accept_review: true, backup: !foreign, ..Default::default() };
    let opts = phasegate::rehearse::Options { phase: None, strict: false, seed_rows, setup: Vec::new(), full_compare, apply };
    phasegate::rehearse(server(), &db.name, set, &opts, &mut phasegate::Quiet).expect("the rehearsal runs")
}

/// Each phase's result and findings, as JSON (diffs and object lists included).
fn findings(r: &phasegate::rehearse::Rehearsal) -> Vec<(String, String, serde_json::Value)> {
    r.phases.iter().map(|p| (p.name.clone(), format!("{:?}", p.result), serde_json::to_value(&p.findings).unwrap())).collect()
}

/// Both compares on `set`; their findings, which must be identical.
#[track_caller]
fn same_findings(set: &MigrationSet, foreign: bool, seed_rows: Option<u64>) -> phasegate::rehearse::Rehearsal {
    let incremental = rehearse(set, false, foreign, seed_rows);
    let full = rehearse(set, true, foreign, seed_rows);
    let (a, b) = (findings(&incremental), findings(&full));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "the incremental and the full compare differ on {}", x.0);
    }
    incremental
}

#[test]
fn the_realistic_history_gives_the_same_findings_both_ways_and_every_broken_migration_is_found() {
    let (h, _dir, set) = history_set(250).unwrap();
    let r = same_findings(&set, true, None);
    let f = found(&h, &r);
    assert!(f.broken_missed.is_empty(), "broken migrations missed: {:?}", f.broken_missed);
    assert!(f.false_alarms.is_empty(), "clean migrations flagged: {:?}", f.false_alarms);
    assert_eq!(f.broken_found.len(), 25);
    assert_eq!(r.summary.failed, 0, "every forward file applies");
}

#[test]
fn the_clinic_set_gives_the_same_findings_both_ways() {
    let set = phasegate::load_set(&repo()).unwrap();
    let r = same_findings(&set, false, Some(2000));
    assert!(!r.mismatch(), "the clinic set restores every phase");
}

#[test]
fn the_tenant_keys_set_gives_the_same_findings_both_ways() {
    let set = phasegate::load_set(&tenant_keys()).unwrap();
    let r = same_findings(&set, false, Some(500));
    assert!(!r.mismatch(), "the tenant keys set restores every phase");
}

/// A diesel project of a base migration and one change whose down script
/// is given, and what verify finds on the change both ways (identical).
#[track_caller]
fn change(base: &str, base_down: &str, up: &str, down: &str) -> (phasegate::rehearse::PhaseResult, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let m = |name: &str, up: &str, down: &str| Migration { name: name.into(), up: up.into(), down: down.into(), no_transaction: false };
    corpus::write(&[m("base", base, base_down), m("change", up, down)], Layout::Diesel, dir.path()).unwrap();
    let set = phasegate::foreign::load(phasegate::foreign::Layout::Diesel, dir.path()).unwrap();
    let r = same_findings(&set, true, None);
    let p = &r.phases[1];
    let objects = p
        .findings
        .iter()
        .flat_map(|f| serde_json::to_value(f).unwrap()["objects"].as_array().cloned().unwrap_or_default())
        .map(|o| o.as_str().unwrap().to_string())
        .collect();
    (p.result, objects)
}

const BASE: &str = "CREATE TYPE mood AS ENUM ('calm', 'busy');\n\
    CREATE TABLE t (id int PRIMARY KEY, a int, b text, m mood);\n\
    INSERT INTO t SELECT g, g, 'b' || g, 'calm' FROM generate_series(1, 10) g;\n\
    CREATE VIEW v AS SELECT id, a, b FROM t;\n\
    CREATE VIEW w AS SELECT id, b FROM t;\n\
    CREATE FUNCTION f(x mood) RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n\
    CREATE FUNCTION g() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;\n\
    CREATE TRIGGER t_g BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION g();\n";

const BASE_DOWN: &str = "DROP VIEW w;\nDROP VIEW v;\nDROP TABLE t;\nDROP FUNCTION f(mood);\nDROP FUNCTION g();\nDROP TYPE mood;\n";

#[track_caller]
fn differs(up: &str, down: &str, objects: &[&str]) {
    let (result, found) = change(BASE, BASE_DOWN, up, down);
    assert_eq!(result, phasegate::rehearse::PhaseResult::Mismatch, "{up} / {down}");
    for o in objects {
        assert!(found.iter().any(|f| f == o), "{o} is among the objects that differ: {found:?}");
    }
}

#[test]
fn a_cascade_drop_the_down_does_not_undo() {
    // The view goes with the column; the down brings the column back only.
    differs("ALTER TABLE t DROP COLUMN a CASCADE;\n", "ALTER TABLE t ADD COLUMN a int;\n", &["view public.v", "table public.t"]);
}

#[test]
fn views_depending_on_a_table_renamed_back_to_another_name() {
    // The views' catalog rows do not change; their text does.
    differs("ALTER TABLE t RENAME TO t2;\n", "ALTER TABLE t2 RENAME TO t_old;\n", &["view public.v", "view public.w"]);
}

#[test]
fn alter_type_left_undone() {
    differs("ALTER TYPE mood ADD VALUE 'tired';\n", "SELECT 1;\n", &["type public.mood"]);
    // The function's and the table's rows do not change; how they name the type does.
    differs("ALTER TYPE mood RENAME TO feeling;\n", "ALTER TYPE feeling RENAME TO mood_old;\n", &["function public.f(public.mood)", "table public.t"]);
}

#[test]
fn a_function_body_restored_wrongly() {
    differs(
        "CREATE OR REPLACE FUNCTION f(x mood) RETURNS int LANGUAGE sql AS $$ SELECT 2 $$;\n",
        "CREATE OR REPLACE FUNCTION f(x mood) RETURNS int LANGUAGE sql AS $$ SELECT 3 $$;\n",
        &["function public.f(public.mood)"],
    );
}

#[test]
fn comments_restored_wrongly() {
    differs("COMMENT ON COLUMN t.a IS 'amount';\n", "COMMENT ON COLUMN t.a IS 'old';\n", &["table public.t"]);
    differs("COMMENT ON VIEW v IS 'report';\n", "SELECT 1;\n", &["view public.v"]);
}

#[test]
fn a_comment_on_a_composite_type_left_behind() {
    // The comment's row names the type; the block showing it is the
    // composite type's relation (once missed by the incremental snapshot).
    let (result, found) = change("CREATE TYPE address AS (street text, city text);\n", "DROP TYPE address;\n", "COMMENT ON TYPE address IS 'postal';\n", "SELECT 1;\n");
    assert_eq!(result, phasegate::rehearse::PhaseResult::Mismatch);
    assert_eq!(found, ["type public.address"]);
}

#[test]
fn a_trigger_dropped_with_its_function_by_cascade_or_left_disabled() {
    // The trigger is a line of its table's block: the table's rows in
    // pg_class do not change when it goes.
    differs(
        "DROP FUNCTION g() CASCADE;\n",
        "CREATE FUNCTION g() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;\n",
        &["table public.t"],
    );
    differs("ALTER TABLE t DISABLE TRIGGER t_g;\n", "SELECT 1;\n", &["table public.t"]);
}

#[test]
fn grants_the_down_does_not_give_back() {
    // A GRANT's event names no object: a column's, a function's, a type's
    // or a schema's privileges change no row the observation would
    // otherwise look at. Both compares find each, in the block it shows in.
    differs("GRANT SELECT ON t TO PUBLIC;\n", "SELECT 1;\n", &["table public.t"]);
    differs("GRANT UPDATE (b) ON t TO PUBLIC;\n", "SELECT 1;\n", &["table public.t"]);
    differs("REVOKE EXECUTE ON FUNCTION f(mood) FROM PUBLIC;\n", "SELECT 1;\n", &["function public.f(public.mood)"]);
    differs("REVOKE USAGE ON TYPE mood FROM PUBLIC;\n", "SELECT 1;\n", &["type public.mood"]);
    differs("GRANT CREATE ON SCHEMA public TO PUBLIC;\n", "SELECT 1;\n", &["schema public"]);
    // A down that takes back what the up granted restores the state,
    // though the ACL it leaves is written out where it was the default.
    let (result, found) = change(BASE, BASE_DOWN, "GRANT SELECT ON t TO PUBLIC;\nGRANT UPDATE (b) ON t TO PUBLIC;\n", "REVOKE UPDATE (b) ON t FROM PUBLIC;\nREVOKE SELECT ON t FROM PUBLIC;\n");
    assert_eq!((result, found), (PhaseResult::Restored, Vec::<String>::new()));
}

#[test]
fn ddl_run_by_a_do_block_or_by_a_function_the_migration_calls() {
    differs("DO $$ BEGIN EXECUTE 'ALTER TABLE t ADD COLUMN c int'; END $$;\n", "SELECT 1;\n", &["table public.t"]);
    differs(
        "CREATE FUNCTION mk() RETURNS void LANGUAGE plpgsql AS $$ BEGIN ALTER TABLE t ALTER COLUMN b SET DEFAULT 'x'; END $$;\n\
         SELECT mk();\nDROP FUNCTION mk();\n",
        "SELECT 1;\n",
        &["table public.t"],
    );
}

#[test]
fn alter_extension_left_undone() {
    let base = "CREATE EXTENSION citext;\nCREATE SCHEMA ext;\n";
    let base_down = "DROP SCHEMA ext;\nDROP EXTENSION citext;\n";
    let (result, found) = change(base, base_down, "ALTER EXTENSION citext SET SCHEMA ext;\n", "SELECT 1;\n");
    assert_eq!((result, found), (PhaseResult::Mismatch, vec!["extension citext".to_string()]));
    // The event names the extension; the function that is no member any
    // more is a root of its own.
    let (result, found) = change(base, base_down, "ALTER EXTENSION citext DROP FUNCTION citext_eq(citext, citext);\n", "SELECT 1;\n");
    assert_eq!(result, PhaseResult::Mismatch);
    assert!(found.iter().any(|f| f.starts_with("function public.citext_eq(")), "{found:?}");
}

#[test]
fn comments_on_an_index_left_behind() {
    differs("COMMENT ON INDEX t_pkey IS 'the key';\n", "SELECT 1;\n", &["table public.t"]);
}

#[test]
fn objects_dropped_and_created_again_under_the_same_name() {
    differs(
        "DROP VIEW w;\nCREATE VIEW w AS SELECT id, b, a FROM t;\n",
        "DROP VIEW w;\nCREATE VIEW w AS SELECT id, a FROM t;\n",
        &["view public.w"],
    );
    let base = format!("{BASE}CREATE INDEX t_a ON t (a);\n");
    let (result, found) = change(&base, BASE_DOWN, "DROP INDEX t_a;\nCREATE INDEX t_a ON t (b);\n", "SELECT 1;\n");
    assert_eq!((result, found), (PhaseResult::Mismatch, vec!["table public.t".to_string()]));
}

#[test]
fn dropped_indexes_whose_drop_names_no_table() {
    // A DROP INDEX reports the index only; the table is found by the
    // index's name in the last state.
    let base = format!("{BASE}CREATE INDEX t_a ON t (a);\n");
    let (result, found) = change(&base, BASE_DOWN, "DROP INDEX t_a;\n", "SELECT 1;\n");
    assert_eq!((result, found), (PhaseResult::Mismatch, vec!["table public.t".to_string()]));
    // Dropped with a function its expression calls: nothing names the table.
    let base = format!("{BASE}CREATE FUNCTION lo(x text) RETURNS text IMMUTABLE LANGUAGE sql AS $$ SELECT lower(x) $$;\nCREATE INDEX t_lo ON t (lo(b));\n");
    let recreate = "CREATE FUNCTION lo(x text) RETURNS text IMMUTABLE LANGUAGE sql AS $$ SELECT lower(x) $$;\n";
    let (result, found) = change(&base, "DROP INDEX t_lo;\nDROP FUNCTION lo(text);\nDROP VIEW w;\nDROP VIEW v;\nDROP TABLE t;\nDROP FUNCTION f(mood);\nDROP FUNCTION g();\nDROP TYPE mood;\n", "DROP FUNCTION lo(text) CASCADE;\n", recreate);
    assert_eq!((result, found), (PhaseResult::Mismatch, vec!["table public.t".to_string()]));
}

#[test]
fn a_view_changed_through_its_base_view() {
    let base = format!("{BASE}CREATE VIEW vv AS SELECT id, a FROM v;\n");
    let base_down = format!("DROP VIEW vv;\n{BASE_DOWN}");
    // vv's catalog rows do not change; its text (which names v's column) does.
    let (result, found) = change(&base, &base_down, "ALTER VIEW v RENAME COLUMN a TO amount;\n", "ALTER VIEW v RENAME COLUMN amount TO a_old;\n");
    assert_eq!(result, PhaseResult::Mismatch);
    assert!(found.iter().any(|f| f == "view public.vv") && found.iter().any(|f| f == "view public.v"), "{found:?}");
    let (result, found) = change(&base, &base_down, "CREATE OR REPLACE VIEW v AS SELECT id, a, b, a + 1 AS a1 FROM t;\n", "SELECT 1;\n");
    assert_eq!((result, found), (PhaseResult::Mismatch, vec!["view public.v".to_string()]));
}

#[test]
fn truncate_and_ddl_under_replica_role() {
    // TRUNCATE fires no event trigger: its table's pg_class row changes.
    let (result, _) = change(BASE, BASE_DOWN, "TRUNCATE t;\n", "SELECT 1;\n");
    assert_eq!(result, PhaseResult::Mismatch);
    differs("SET LOCAL session_replication_role = replica;\nALTER TABLE t ADD COLUMN z int;\n", "SELECT 1;\n", &["table public.t"]);
}
