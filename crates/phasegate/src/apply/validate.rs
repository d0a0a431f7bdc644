//! Read-only validation: checks run against the current database in a
//! transaction that is rolled back, so validating never changes anything.

use std::collections::BTreeMap;

use postgres::Client;

use super::exec::run_checks;
use crate::check::{self, Check, CheckResult, When};
use crate::error::{db_err, Result};
use crate::ledger::{self, Applied};
use crate::set::MigrationSet;
use crate::ui::Quiet;

/// The latest phase with an applied migration.
pub fn current_phase(set: &MigrationSet, applied: &BTreeMap<i32, Applied>) -> Option<u32> {
    set.phases.iter().rev().find(|p| p.steps.iter().any(|s| applied.contains_key(&s.version))).map(|p| p.id)
}

/// Runs checks against the current database in a read-only transaction that
/// is rolled back, so validation never changes anything. Without a phase,
/// the after-migrate checks of the current phase run.
pub fn validate(client: &mut Client, set: &MigrationSet, phase: Option<u32>, when: Option<When>) -> Result<Vec<CheckResult>> {
    let applied = ledger::applied(client)?;
    validate_applied(client, set, &applied, phase, when)
}

/// `validate` for a caller that has just read the ledger.
pub fn validate_applied(client: &mut Client, set: &MigrationSet, applied: &BTreeMap<i32, Applied>, phase: Option<u32>, when: Option<When>) -> Result<Vec<CheckResult>> {
    // By default, the current phase's checks: a later phase may drop what an
    // earlier phase's checks look at (a cleanup drops the old columns).
    let phase = match (phase, when) {
        (Some(p), _) => Some(p),
        (None, None | Some(When::AfterMigrate)) => current_phase(set, applied),
        (None, _) => None,
    };
    let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
    tx.batch_execute("SET TRANSACTION READ ONLY").map_err(db_err("starting a read-only transaction"))?;
    let mut results = Vec::new();
    for step in set.steps().filter(|s| phase.is_none_or(|p| s.phase == p)) {
        let is_applied = applied.contains_key(&step.version);
        let w = match (when, is_applied) {
            (Some(w), _) => w,
            (None, true) => When::AfterMigrate,
            (None, false) => continue,
        };
        // after-migrate and before-rollback checks describe applied steps;
        // after-rollback and before-migrate checks steps that are not applied.
        if matches!(w, When::AfterMigrate | When::BeforeRollback) != is_applied {
            continue;
        }
        let checks: Vec<Check> = match applied.get(&step.version).and_then(|a| a.validation_sql.as_ref()) {
            Some(stored) if stored != &step.validation.text => check::parse_file(&step.validation.path, stored)?,
            _ => step.checks.clone(),
        };
        // A check that holds until the next migration of its phase is
        // skipped once a later migration of the phase is applied.
        let later = set.phase(step.phase).ok().and_then(|p| p.steps.iter().filter(|s| s.version > step.version).map(|s| s.version).find(|v| applied.contains_key(v)));
        let (run, skip): (Vec<&Check>, Vec<&Check>) = checks.iter().filter(|c| c.when == w).partition(|c| !(c.until_next_migration && w == When::AfterMigrate && later.is_some()));
        results.extend(run_checks(&mut tx, step.version, run.into_iter(), &mut Quiet)?);
        if let Some(v) = later {
            results.extend(skip.into_iter().map(|c| CheckResult::skipped(step.version, c, format!("holds until the next migration; V{v} is applied"))));
        }
    }
    tx.rollback().map_err(db_err("ending the read-only transaction"))?;
    Ok(results)
}

