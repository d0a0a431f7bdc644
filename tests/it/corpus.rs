//! verify on generated histories of 250 migrations (diesel and sqlx
//! layouts) with defects planted among clean migrations: every migration is
//! rehearsed, whatever failed before it, and exactly the planted defects are
//! flagged, each with its own classification (no miss, no false alarm).

use phasegate_cli::bench::corpus::{self, Defect, Layout};

use crate::harness::exit;
use crate::verify::verify;

/// Where the defects sit (0-based): a re-apply that fails early (the 10th
/// migration), then one of each other kind spread over the history.
const PLANTED: [(usize, Defect); 6] = [
    (9, Defect::ReapplyFails),
    (41, Defect::DownFails),
    (87, Defect::LeavesObject),
    (133, Defect::LosesRows),
    (176, Defect::FoldedTime),
    (219, Defect::ColumnOrder),
];

const MIGRATIONS: usize = 250;

/// Generates the project, verifies it and checks every phase's findings.
#[track_caller]
fn rehearses_all_and_flags_exactly_the_planted_defects(layout: Layout, from: &str) {
    let dir = tempfile::tempdir().unwrap();
    corpus::write(&corpus::project(MIGRATIONS, &PLANTED), layout, dir.path()).unwrap();
    let out = verify(&["--from", from, dir.path().to_str().unwrap()]);
    assert_eq!(out.code, exit::MISMATCH, "defective downs exit 5: {}", out.stderr);
    let doc = out.json();
    let r = &doc["rehearsal"];
    let phases = r["phases"].as_array().unwrap();
    assert_eq!(phases.len(), MIGRATIONS, "every migration is in the report");
    let not_rehearsed: Vec<&str> = phases.iter().filter(|p| p["result"] == "not rehearsed").map(|p| p["name"].as_str().unwrap()).collect();
    assert!(not_rehearsed.is_empty(), "not rehearsed: {not_rehearsed:?}");
    assert_eq!(r["summary"]["not_rehearsed"], 0);
    assert_eq!(r["summary"]["failed"], 0);
    let found: Vec<(usize, String)> = phases
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            p["findings"].as_array().unwrap().iter().map(move |f| {
                let against = f["against"].as_str().map(|a| format!(" {a}")).unwrap_or_default();
                (i, format!("{}{against}", f["kind"].as_str().unwrap()))
            })
        })
        .collect();
    let planted: Vec<(usize, String)> = PLANTED
        .iter()
        .map(|(i, d)| {
            let (kind, against) = d.finding();
            (*i, format!("{kind}{}", against.map(|a| format!(" {a}")).unwrap_or_default()))
        })
        .collect();
    assert_eq!(found, planted, "findings per migration (0-based) equal the planted defects");
    // Only the real defects fail verify; the folded time and the column
    // order are warnings.
    let mismatched: Vec<usize> = phases.iter().enumerate().filter(|(_, p)| p["result"] == "mismatch").map(|(i, _)| i).collect();
    assert_eq!(mismatched, [9, 41, 87, 133]);
    let isolations: std::collections::BTreeSet<&str> = phases.iter().map(|p| p["isolation"].as_str().unwrap()).collect();
    assert_eq!(isolations.into_iter().collect::<Vec<_>>(), ["clone", "transaction"], "files outside a transaction are rehearsed on clones");
}

#[test]
fn diesel_history_of_250_migrations() {
    rehearses_all_and_flags_exactly_the_planted_defects(Layout::Diesel, "diesel");
}

#[test]
fn sqlx_history_of_250_migrations() {
    rehearses_all_and_flags_exactly_the_planted_defects(Layout::Sqlx, "sqlx");
}

/// A forward file that fails stops the chain: its phase is "failed" with the
/// file and line, every later one "not rehearsed", every earlier one
/// rehearsed as usual.
#[test]
fn a_failing_forward_file_ends_the_chain_at_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut migrations = corpus::project(30, &[]);
    migrations[11].up.push_str("SELECT 1;\nALTER TABLE no_such_table ADD COLUMN x int;\n");
    let broken_line = migrations[11].up.lines().count();
    corpus::write(&migrations, Layout::Diesel, dir.path()).unwrap();
    let out = verify(&["--from", "diesel", dir.path().to_str().unwrap()]);
    assert_eq!(out.code, exit::ERROR, "a forward migration failed: {}", out.stderr);
    let doc = out.json();
    let r = &doc["rehearsal"];
    let results: Vec<&str> = r["phases"].as_array().unwrap().iter().map(|p| p["result"].as_str().unwrap()).collect();
    assert_eq!(results[..11], ["restored"; 11]);
    assert_eq!(results[11], "failed");
    assert_eq!(results[12..], ["not rehearsed"; 18]);
    assert_eq!(r["summary"]["not_rehearsed"], 18);
    assert_eq!(r["summary"]["failed"], 1);
    let error = r["phases"][11]["findings"][0]["error"].as_str().unwrap();
    assert!(error.contains(&format!("up.sql:{broken_line}:")) && error.contains("no_such_table"), "{error}");
}
