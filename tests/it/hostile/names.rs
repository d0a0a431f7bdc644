//! Identifiers at PostgreSQL's limit of 63 bytes: a table named with 21
//! CJK characters (63 bytes, the longest name it keeps) backed up by one
//! rollback after another, each backup named with its own run's suffix;
//! a 70-character column (PostgreSQL keeps its first 63) dropped by an
//! irreversible migration that names all 70: kept, shown by `plan`, and
//! brought back by `recover`.

use super::{manifest, Set, PASSES};
use crate::harness::TestDb;

#[test]
fn a_table_with_a_63_byte_cjk_name_is_backed_up_by_every_rollback_under_its_own_name() {
    let db = TestDb::new("cjk_backups");
    let table = "表".repeat(21);
    assert_eq!(table.len(), 63);
    let set = Set::new(&manifest(&[1], &[2], true))
        .step(1, "baseline", &format!("CREATE TABLE \"{table}\" (id int PRIMARY KEY, v int NOT NULL);\nINSERT INTO \"{table}\" SELECT g, g FROM generate_series(1, 50) g;\n"), None, PASSES)
        .step(2, "bump", &format!("UPDATE \"{table}\" SET v = v + 1;\n"), Some(&format!("UPDATE \"{table}\" SET v = v - 1;\n")), PASSES);
    let mut runs = Vec::new();
    for _ in 0..3 {
        set.run(&db, &["migrate"]).expect_exit(0);
        let out = set.run(&db, &["rollback", "--phase", "1", "--yes", "--format", "json"]);
        out.expect_exit(0);
        let doc = out.json();
        let backup = doc["backups"][0]["backup_table"].as_str().unwrap_or_else(|| panic!("a backup: {doc:#}")).to_string();
        let short: String = doc["run_id"].as_str().unwrap().chars().filter(|c| *c != '-').take(8).collect();
        assert!(backup.trim_end_matches('"').ends_with(&format!("_{short}")), "the backup keeps its run's suffix: {backup}");
        assert_eq!(doc["backups"][0]["rows"], 50, "{doc:#}");
        runs.push(doc["run_id"].as_str().unwrap().to_string());
    }
    assert_eq!(db.count("SELECT count(*) FROM pg_tables WHERE schemaname = 'phasegate_backup'"), 3, "three backups, three tables");
    let out = set.run(&db, &["restore", "--run", &runs[1], "--yes", "--format", "json"]);
    out.expect_exit(0);
}

#[test]
fn a_dropped_70_character_column_is_kept_shown_and_recovered() {
    let db = TestDb::new("long_column");
    let long = "c".repeat(70);
    let kept = "c".repeat(63);
    let set = Set::new(&manifest(&[1], &[2], false))
        .step(1, "baseline", &format!("CREATE TABLE wide (id int PRIMARY KEY, {long} text);\nINSERT INTO wide SELECT g, 'value ' || g FROM generate_series(1, 20) g;\n"), None, PASSES)
        .step(2, "drop_long", &format!("ALTER TABLE wide DROP COLUMN {long};\n"), None, PASSES);

    let plan = crate::harness::cli(&["plan", "--dir", set.path().to_str().unwrap()], "");
    plan.expect_exit(0);
    assert!(plan.stdout.contains(&kept), "plan names the column as PostgreSQL stores it: {}", plan.stdout);
    assert!(!plan.stdout.contains("NOT KEPT"), "{}", plan.stdout);

    set.run(&db, &["migrate", "--yes"]).expect_exit(0);
    assert_eq!(db.count("SELECT count(*) FROM phasegate_kept WHERE kind = 'columns'"), 1, "the column was kept");
    let out = set.run(&db, &["recover", "--phase", "1", "--yes", "--format", "json"]);
    out.expect_exit(0);
    assert_eq!(db.count(&format!("SELECT count(*) FROM wide WHERE {kept} = 'value ' || id")), 20, "every value back: {out:?}");
}
