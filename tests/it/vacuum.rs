//! A rehearsal on a clone vacuums what autovacuum would between its passes
//! over the same rows (docs/verify.md, "Between the passes"): before the
//! rollback and before the re-apply, the tables whose dead rows are over
//! autovacuum's threshold, none whose autovacuum is disabled.

use crate::harness::json::PhaseResult::{ForwardOnly, Restored};
use crate::harness::{copy_set, fixture};
use crate::verify::verify;

/// Phase 1's steps, and what the run said about vacuuming.
fn rehearse(dir: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let out = verify(&["--dir", dir.to_str().unwrap()]);
    assert_eq!(out.code, crate::harness::exit::OK, "{out:?}");
    let doc = out.report();
    let phases = &doc.rehearsal().phases;
    assert_eq!(phases.iter().map(|p| p.result).collect::<Vec<_>>(), [ForwardOnly, Restored], "{out:?}");
    let steps = phases[1].steps.iter().map(|s| s.step.clone()).filter(|s| !s.starts_with("probes after")).collect();
    let said = doc.log().lines().map(|l| l.trim().to_string()).filter(|l| l.starts_with("vacuumed") || l.starts_with("not vacuumed")).collect();
    (steps, said)
}

#[test]
fn a_backfill_and_its_rollback_each_meet_a_vacuumed_table() {
    // V3 backfills all 20000 events in batches and its rollback resets them:
    // each pass leaves 20000 dead rows, over 50 + 20% of the table.
    let (steps, said) = rehearse(&fixture("batched_rollback"));
    assert_eq!(steps, ["snapshot", "migrate", "snapshot", "vacuum", "rollback", "compare", "vacuum", "re-apply", "compare"]);
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(said.iter().all(|l| l.starts_with("vacuumed public.events between passes")), "{said:?}");
}

#[test]
fn a_table_whose_autovacuum_is_off_is_left_as_it_is() {
    let dir = copy_set(&fixture("batched_rollback"));
    let v1 = dir.path().join("migrations/V1__events.sql");
    let text = std::fs::read_to_string(&v1).unwrap();
    let off = text.replace("kind text);", "kind text) WITH (autovacuum_enabled = false);");
    assert_ne!(off, text);
    std::fs::write(&v1, off).unwrap();
    let (steps, said) = rehearse(dir.path());
    assert_eq!(steps, ["snapshot", "migrate", "snapshot", "rollback", "compare", "re-apply", "compare"]);
    assert!(said.is_empty(), "{said:?}");
}
