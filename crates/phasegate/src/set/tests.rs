//! Loading a set: the pairing and manifest rules, directives, durations.

use super::*;
use std::fs;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

const CHECK: &str = "-- check: ok\nSELECT 1 WHERE false;\n";

fn base() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(p, "phases.toml", "[[phase]]\nid = 1\nname = \"additive\"\nversions = [1, 2]\n\n[[phase]]\nid = 2\nname = \"cleanup\"\nversions = [3]\nreversible = false\nreason = \"drops things\"\n");
    for (v, n) in [(1, "a"), (2, "b"), (3, "c")] {
        write(p, &format!("migrations/V{v}__{n}.sql"), "CREATE TABLE t(x int);\n");
        write(p, &format!("validations/V{v}__{n}.sql"), CHECK);
        if v < 3 {
            write(p, &format!("rollback/V{v}__{n}.sql"), "DROP TABLE t;\n");
        }
    }
    d
}

fn err(d: &tempfile::TempDir) -> String {
    load(d.path()).unwrap_err().to_string().replace(&format!("{}/", d.path().display()), "")
}

#[test]
fn loads_a_well_formed_set() {
    let d = base();
    let set = load(d.path()).unwrap();
    assert_eq!(set.phases.len(), 2);
    assert_eq!(set.phases[0].steps.len(), 2);
    assert!(set.phases[1].steps[0].rollback.is_none());
    assert!(set.phases[1].needs_confirmation());
    assert_eq!(set.phases[0].reversibility(), &Reversibility::Reversible);
    assert_eq!(set.phases[1].reversibility(), &Reversibility::Irreversible { reason: "drops things".into() });
    assert_eq!(set.phase(2).unwrap().reason(), Some("drops things"));
    assert!(matches!(set.phase(9), Err(Error::NoSuchPhase { phase: 9, .. })));
    assert!(set.phase(9).unwrap_err().to_string().ends_with("phases.toml (its phases are 1 to 2)"), "{}", set.phase(9).unwrap_err());
}

#[test]
fn a_baseline_is_irreversible_without_asking_for_confirmation() {
    let d = base();
    let manifest = fs::read_to_string(d.path().join(MANIFEST)).unwrap();
    fs::write(d.path().join(MANIFEST), manifest.replace("reason = \"drops things\"\n", "reason = \"drops things\"\nbaseline = true\n")).unwrap();
    let set = load(d.path()).unwrap();
    let baseline = set.phase(2).unwrap();
    assert_eq!(baseline.reversibility(), &Reversibility::Baseline { reason: "drops things".into() });
    assert!(baseline.is_baseline() && !baseline.is_reversible() && !baseline.needs_confirmation());
}

#[test]
fn load_errors_are_variants_carrying_their_data() {
    let d = base();
    write(d.path(), "migrations/V02__again.sql", "SELECT 1;");
    match load(d.path()).unwrap_err() {
        Error::Load { at, kind: LoadError::DuplicateVersion { what: "version", version, other } } => {
            assert_eq!(version, "2");
            assert!(at.file.ends_with("V2__b.sql") && other.ends_with("V02__again.sql"), "{at} {other:?}");
        }
        other => panic!("not a duplicate version: {other:?}"),
    }
}

#[test]
fn missing_rollback_names_the_file() {
    let d = base();
    fs::remove_file(d.path().join("rollback/V2__b.sql")).unwrap();
    assert_eq!(err(&d), "rollback/V2__b.sql: missing rollback for migration 2 of reversible phase 1 (create it, or mark the phase `reversible = false` with a `reason`)");
}

#[test]
fn missing_validation_names_the_file() {
    let d = base();
    fs::remove_file(d.path().join("validations/V1__a.sql")).unwrap();
    assert!(err(&d).starts_with("validations/V1__a.sql: missing validation for migration 1"));
}

#[test]
fn rollback_for_irreversible_phase_is_refused() {
    let d = base();
    write(d.path(), "rollback/V3__c.sql", "SELECT 1;");
    assert!(err(&d).starts_with("rollback/V3__c.sql: phase 2 is irreversible"));
}

#[test]
fn orphan_pair_and_bad_names_are_errors() {
    let d = base();
    write(d.path(), "validations/V9__zzz.sql", CHECK);
    assert!(err(&d).starts_with("validations/V9__zzz.sql: validations file has no forward migration"));
    let d = base();
    write(d.path(), "migrations/V4_bad.sql", "SELECT 1;");
    assert!(err(&d).starts_with("migrations/V4_bad.sql: file name must be"));
    let d = base();
    write(d.path(), "migrations/V02__dup.sql", "SELECT 1;");
    assert!(err(&d).contains("duplicate version 2"));
}

#[test]
fn manifest_rules_name_the_line() {
    let d = base();
    write(d.path(), "phases.toml", "[[phase]]\nid = 1\nname = \"a\"\nversions = [1, 3]\n[[phase]]\nid = 2\nname = \"b\"\nversions = [2]\n");
    assert!(err(&d).starts_with("phases.toml:4: phase 1 lists version 3 out of order"), "{}", err(&d));
    write(d.path(), "phases.toml", "[[phase]]\nid = 2\nname = \"a\"\nversions = [1, 2]\n[[phase]]\nid = 1\nname = \"b\"\nversions = [3]\n");
    assert!(err(&d).starts_with("phases.toml:6: phase ids must ascend"), "{}", err(&d));
    write(d.path(), "phases.toml", "[[phase]]\nid = 1\nname = \"a\"\nversions = [1, 2, 3]\ncolour = 1\n");
    assert!(err(&d).starts_with("phases.toml:5: unknown field `colour`"), "{}", err(&d));
    write(d.path(), "phases.toml", "[[phase]]\nid = 1\nname = \"a\"\nversions = [1, 2]\n[[phase]]\nid = 2\nname = \"b\"\nversions = [3]\nreversible = false\n");
    assert!(err(&d).starts_with("phases.toml:5: phase 2 is irreversible and needs a `reason`"), "{}", err(&d));
    write(d.path(), "phases.toml", "[[phase]]\nid = 1\nname = \"a\"\nversions = [1]\n");
    assert!(err(&d).contains("migration 2 belongs to no phase"), "{}", err(&d));
}

#[test]
fn directives_are_checked() {
    let d = base();
    write(d.path(), "migrations/V2__b.sql", "-- phasegate: no-transaction\nCREATE INDEX CONCURRENTLY i ON t(x);\n");
    let set = load(d.path()).unwrap();
    assert!(set.step(2).unwrap().forward.directives.no_transaction);
    write(d.path(), "migrations/V2__b.sql", "-- phasegate: fast\nSELECT 1;\n");
    assert!(err(&d).starts_with("migrations/V2__b.sql:1: unknown directive `fast`"));
    write(d.path(), "migrations/V2__b.sql", "-- phasegate: no-transaction\nSELECT 1;\nSELECT 2;\n");
    assert!(err(&d).starts_with("migrations/V2__b.sql:3: a `no-transaction` file holds exactly one statement"));
    write(d.path(), "migrations/V2__b.sql", "SELECT 1;\n-- phasegate: lock-timeout 2s\n");
    assert!(err(&d).starts_with("migrations/V2__b.sql:2: directives go at the top"));
    write(d.path(), "migrations/V2__b.sql", "-- only a comment\n");
    assert!(err(&d).starts_with("migrations/V2__b.sql:1: file holds no SQL statement"));
    fs::write(d.path().join("migrations/V2__b.sql"), b"SELECT 1;\n\xff\xfe").unwrap();
    assert!(err(&d).starts_with("migrations/V2__b.sql:2: file is not valid UTF-8"), "{}", err(&d));
}

/// A set whose V1 (forward and rollback) holds `n` statements; the work
/// the lexer and the line index did to load it, per byte of its SQL
/// files, and the number of line indexes built.
fn load_work(n: usize) -> (f64, f64, usize) {
    let d = base();
    let forward = "INSERT INTO t VALUES (1, 'a;b'), (2, $$c;$$); -- x;\nDO $$ BEGIN PERFORM 1; END $$;\n".repeat(n);
    write(d.path(), "migrations/V1__a.sql", &forward);
    write(d.path(), "rollback/V1__a.sql", &"DELETE FROM t WHERE x = 1;\n".repeat(n));
    let sql_bytes: usize = ["migrations", "rollback", "validations"]
        .iter()
        .flat_map(|sub| fs::read_dir(d.path().join(sub)).unwrap())
        .map(|e| fs::metadata(e.unwrap().path()).unwrap().len() as usize)
        .sum();
    sqltext::work::take();
    load(d.path()).unwrap();
    let (lexed, indexed, indexes) = sqltext::work::take();
    (lexed as f64 / sql_bytes as f64, indexed as f64 / sql_bytes as f64, indexes)
}

#[test]
fn loading_is_linear_in_the_size_of_a_file() {
    // Work counted, not timed: every SQL byte is lexed once (a DO block's
    // body twice: it is looked into for trigger bypasses) and indexed for
    // lines once, however many statements a file holds (mapping each
    // statement's offset to its line by counting the lines before it,
    // as loading once did, grew with the square of the file's size).
    let (small, large) = (load_work(50), load_work(5000));
    assert_eq!(small.2, large.2, "line indexes built: one per file or check, not per statement");
    assert!(large.0 <= small.0 * 1.01 && large.0 <= 2.0, "bytes lexed per byte of SQL: {small:?} for 50 statements, {large:?} for 5000");
    assert!(large.1 <= small.1 * 1.01 && large.1 <= 1.01, "bytes indexed per byte of SQL: {small:?} for 50 statements, {large:?} for 5000");
}

#[test]
fn durations_parse() {
    assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert!(parse_duration("fast").is_err());
}
