//! The ledger with hostile values, on a session whose `search_path` is
//! empty (what a pg_dump-style file leaves behind): a migration recorded
//! and read back (its name, rollback and validation SQL, checksum), a
//! batch's progress with a hostile key, an audit row with hostile text
//! everywhere (JSON included), then the migration removed again.

use std::path::PathBuf;

use proptest::prelude::*;

use super::{err, ident, nothing_after, text, Bench};
use crate::ledger::{self, RunRecord};
use crate::set::{Directives, SqlFile, Step};

#[derive(Debug, Clone)]
struct Case {
    name: String,
    forward: String,
    rollback: String,
    validation: String,
    key: String,
    words: Vec<String>,
}

fn case() -> impl Strategy<Value = Case> {
    (ident(), text(30), text(30), text(30), text(10), prop::collection::vec(text(10), 6))
        .prop_map(|(name, forward, rollback, validation, key, words)| Case { name, forward, rollback, validation, key, words })
}

fn file(text: &str) -> SqlFile {
    SqlFile::new(PathBuf::from("hostile.sql"), text.to_string(), Directives::default())
}

fn one(tx: &mut postgres::Transaction, i: usize, c: &Case) -> Result<(), String> {
    let version = i as i32 + 1;
    let step = Step {
        version,
        name: c.name.clone(),
        phase: 1,
        forward: file(&c.forward),
        rollback: Some(file(&c.rollback)),
        validation: file(&c.validation),
        checks: Vec::new(),
        origin: None,
    };
    let run_id = uuid::Uuid::new_v4().to_string();
    let t = ledger::tables(tx).map_err(err)?;
    ledger::record_apply_in(tx, &t, &step, &run_id).map_err(err)?;
    let applied = ledger::applied(tx).map_err(err)?;
    let a = applied.get(&version).ok_or("the migration is not in the ledger")?;
    let expected = (c.name.as_str(), Some(c.rollback.as_str()), Some(c.validation.as_str()), step.refinery_checksum().to_string());
    if (a.name.as_str(), a.rollback_sql.as_deref(), a.validation_sql.as_deref(), a.checksum.clone()) != expected {
        return Err(format!("recorded {a:?}"));
    }

    let record = ledger::record_batch_sql(tx).map_err(err)?;
    ledger::record_batch_with(tx, &record, version, Some(&c.key), 7).map_err(err)?;
    let progress = ledger::batch_progress(tx, version).map_err(err)?;
    if progress != Some((Some(c.key.clone()), 7)) {
        return Err(format!("batch progress {progress:?}"));
    }

    let w = &c.words;
    let record = RunRecord {
        run_id: run_id.clone(),
        command: w[0].clone(),
        args: w.clone(),
        phase: Some(1),
        started_at: time::OffsetDateTime::now_utc(),
        duration_ms: 1,
        client_host: w[1].clone(),
        os_user: w[2].clone(),
        verdict: Some(w[3].clone()),
        exit_code: 0,
        error: Some(w[4].clone()),
        steps: serde_json::json!([{ "name": w[5] }]),
        checks: serde_json::json!([{ "evidence": w }]),
        log_file: Some(c.key.clone()),
        fleet_run: None,
        fleet_member: Some(c.name.clone()),
    };
    ledger::audit(tx, &record).map_err(err)?;
    let h = ledger::history(tx, 1).map_err(err)?.pop().ok_or("no audit row")?;
    let got = (&h.run_id, &h.command, h.client_host.as_ref(), h.os_user.as_ref(), &h.verdict, &h.error, &h.checks, &h.log_file, &h.fleet_member);
    let want = (&run_id, &w[0], Some(&w[1]), Some(&w[2]), &record.verdict, &record.error, &record.checks, &record.log_file, &record.fleet_member);
    if got != want {
        return Err(format!("audited {h:?}"));
    }

    // It fails unless it removed the migration's row.
    ledger::record_rollback(tx, version).map_err(err)?;
    if ledger::batch_progress(tx, version).map_err(err)?.is_some() {
        return Err("the rolled-back migration's batch progress is still in the ledger".into());
    }
    Ok(())
}

#[test]
fn the_ledger_round_trips_hostile_values_whatever_the_search_path() {
    Bench { what: "ledger", strategy: case(), per_tx: 20, setup: |_, _: &Case| String::new(), case: one, after: nothing_after }.run();
}
