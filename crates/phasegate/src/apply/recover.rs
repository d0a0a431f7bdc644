//! The way back from an irreversible phase. Before each of its migrations,
//! `migrate` keeps what the migration destroys ([`keep_before`], in a
//! transaction of its own, after [`measure_phase`] said how much and the
//! size guard let it). `recover --phase N` ([`recover`]) re-creates what
//! was dropped and restores the kept data, in one transaction with the
//! phase's before-migrate checks and the removal of its ledger rows, so the
//! database is back at the state the phase began from and `migrate`
//! re-applies it.

use std::time::Instant;

use postgres::{Client, GenericClient};
use serde::Serialize;

use super::exec::{run_checks, timeouts_sql};
use super::retry::{with_lock_retries, Watch};
use super::outcome::Options;
use super::{check_consistency, plan_rollback};
use crate::backup::{self, KeptStep, RecoveryPlan, Recovered, Size};
use crate::check::{self, CheckResult, Verdict, When};
use crate::error::{db_err, Confirmation, Error, Result};
use crate::ledger;
use crate::set::{MigrationSet, Phase, Step};
use crate::ui::Ui;

/// Whether `migrate` keeps what this phase's migrations destroy: every
/// irreversible phase except the baseline.
pub fn keeps(phase: &Phase) -> bool {
    !phase.is_reversible() && !phase.is_baseline()
}

/// How much keeping what `steps` destroy would copy, measured now.
pub fn measure_phase(client: &mut Client, steps: &[&Step]) -> Result<Size> {
    let mut size = Size::default();
    for s in steps {
        size += backup::measure(client, &s.forward.text)?;
    }
    Ok(size)
}

/// Keeps what `step` destroys, committed before the step runs.
pub(super) fn keep_before(client: &mut Client, step: &Step, opts: &Options, ui: &mut dyn Ui) -> Result<KeptStep> {
    let started = Instant::now();
    let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
    tx.batch_execute(&format!("SET LOCAL lock_timeout = '{}ms'", opts.lock_timeout.as_millis())).map_err(db_err("setting lock_timeout"))?;
    let kept = backup::keep(&mut tx, &opts.run_id, step.version, &step.forward.text)?;
    tx.commit().map_err(db_err("committing what was kept"))?;
    let things = kept.kept.iter().filter(|k| !matches!(k, backup::Kept::Step { .. } | backup::Kept::Unkept { .. })).count();
    ui.progress(&format!(
        "  kept before V{}: {things} definition(s), {} rows ({}) in {} backup table(s), in {} ms",
        step.version,
        kept.size.rows,
        human_bytes(kept.size.bytes),
        kept.backups.len(),
        started.elapsed().as_millis()
    ));
    for k in &kept.kept {
        if !matches!(k, backup::Kept::Step { .. }) {
            ui.progress(&format!("    {}", k.describe()));
        }
    }
    Ok(kept)
}

/// Forgets what was kept before a step that did not commit.
pub(super) fn discard_kept(client: &mut Client, run_id: &str, version: i32) -> Result<()> {
    let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
    backup::discard(&mut tx, run_id, version)?;
    tx.commit().map_err(db_err("forgetting what was kept"))
}

/// `12.3 MB`.
pub(crate) fn human_bytes(b: i64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b} B")
    }
}

/// A phase's recovery as planned: the applied migrations newest first and
/// the statements that bring back what they destroyed.
#[derive(Debug, Clone, Serialize)]
pub struct Recovery {
    pub phase: u32,
    pub name: String,
    /// Newest first.
    pub versions: Vec<i32>,
    /// The run that applied each migration (and kept what it destroys).
    pub runs: Vec<String>,
    /// Rows kept (in backup tables) for the phase.
    pub kept_rows: i64,
    pub plan: RecoveryPlan,
}

/// What `recover` did.
#[derive(Debug, Clone, Serialize)]
pub struct RecoveryOutcome {
    pub recovery: Recovery,
    /// The phase's before-migrate checks, run after the recovery.
    pub checks: Vec<CheckResult>,
    pub verdict: Verdict,
    /// The recovery committed (a ROLLBACK verdict undoes it).
    pub committed: bool,
    pub recovered: Option<Recovered>,
    pub duration_ms: f64,
    pub retries: u32,
}

/// Plans the recovery of `phase_id` from what was kept when it was applied;
/// refuses a reversible phase, a phase not applied, a phase a later one
/// came after, and a migration applied without keeping anything.
pub fn plan_recovery(client: &mut impl GenericClient, set: &MigrationSet, phase_id: u32) -> Result<Recovery> {
    let phase = set.phase(phase_id)?;
    if !keeps(phase) {
        return Err(Error::Reversible { phase: phase.id, name: phase.name.clone() });
    }
    let applied = ledger::applied(client)?;
    check_consistency(set, &applied)?;
    let steps = match plan_rollback(set, phase, &applied) {
        Err(Error::NotApplied { .. }) => return Err(Error::NothingToRecover { phase: phase.id, name: phase.name.clone() }),
        other => other?,
    };
    let mut kept_steps = Vec::new();
    let mut runs = Vec::new();
    let mut kept_rows = 0;
    let ledger = ledger::tables(client)?;
    for s in &steps {
        let run: Option<String> = client
            .query_opt(&format!("SELECT run_id::text FROM {} WHERE version = $1", ledger.applied), &[&s.version])
            .map_err(db_err("reading the ledger"))?
            .and_then(|r| r.get(0));
        let Some(run) = run else {
            return Err(Error::NothingKept { phase: phase.id, version: s.version, run: "unknown".into() });
        };
        let Some(kept) = backup::kept_of(client, &run, s.version)? else {
            return Err(Error::NothingKept { phase: phase.id, version: s.version, run });
        };
        kept_rows += client
            .query_one(&format!("SELECT coalesce(sum(rows), 0)::bigint FROM {} WHERE run_id = $1::text::uuid AND version = $2", ledger.backups), &[&run, &s.version])
            .map_err(db_err("reading the backup ledger"))?
            .get::<_, i64>(0);
        kept_steps.push((s.version, kept.into_iter().map(|k| k.kept).collect()));
        runs.push(run);
    }
    Ok(Recovery {
        phase: phase.id,
        name: phase.name.clone(),
        versions: steps.iter().map(|s| s.version).collect(),
        runs,
        kept_rows,
        plan: backup::recovery_plan(&kept_steps),
    })
}

/// Recovers `phase_id` (`recover`, the way back from an irreversible
/// phase: docs/safety.md): after the typed confirmation, in one transaction, re-creates what
/// its migrations dropped, restores the kept data, runs the phase's
/// before-migrate checks and removes its ledger rows. A ROLLBACK verdict
/// undoes it all. The caller holds the migration lock.
pub fn recover(client: &mut Client, set: &MigrationSet, phase_id: u32, opts: &Options, ui: &mut dyn Ui) -> Result<RecoveryOutcome> {
    ledger::ensure(client)?;
    let recovery = plan_recovery(client, set, phase_id)?;
    let prompt = format!(
        "this recovers phase {} ({}): migrations {} are undone from what was kept when they were applied ({} rows). Type `recover phase {}` to continue",
        recovery.phase,
        recovery.name,
        recovery.versions.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", "),
        recovery.kept_rows,
        recovery.phase
    );
    if !ui.confirm(&prompt, &format!("recover phase {}", recovery.phase)) {
        return Err(Error::NotConfirmed(Confirmation::Recover { phase: recovery.phase }));
    }
    let started = Instant::now();
    let watch = Watch::start(client, opts);
    let steps: Vec<&Step> = recovery.versions.iter().rev().filter_map(|v| set.step(*v)).collect();
    let what = format!("recover phase {}", recovery.phase);
    let (res, retries) = with_lock_retries(opts, ui, &what, &watch, |ui| {
        let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
        let directives = crate::set::Directives::default();
        tx.batch_execute(&timeouts_sql(&directives, opts, true)).map_err(db_err("setting timeouts"))?;
        ui.progress(&format!("  recovering phase {} ({}): {} statements", recovery.phase, recovery.name, recovery.plan.statements.len()));
        let recovered = recovery.plan.run(&mut tx)?;
        let mut checks = Vec::new();
        for s in &steps {
            checks.extend(run_checks(&mut tx, s.version, s.checks_when(When::BeforeMigrate), ui)?);
        }
        if check::worst(&checks) == Verdict::Rollback {
            tx.rollback().map_err(db_err("rolling back"))?;
            ui.progress(&format!("  recover phase {}: a before-migrate check failed; the recovery was undone, the phase stays applied", recovery.phase));
            return Ok((checks, recovered, false));
        }
        let ledger = ledger::tables(&mut tx)?;
        for (v, run) in recovery.versions.iter().zip(&recovery.runs) {
            ledger::record_rollback(&mut tx, *v)?;
            tx.execute(
                &format!("UPDATE {} SET recovered_at = pg_catalog.now(), recovered_by = $3::text::uuid WHERE run_id = $1::text::uuid AND version = $2", ledger.kept),
                &[run, v, &opts.run_id],
            )
            .map_err(db_err("recording the recovery"))?;
            tx.execute(
                &format!("UPDATE {} SET restored_at = pg_catalog.now(), restored_by = $3::text::uuid WHERE run_id = $1::text::uuid AND version = $2", ledger.backups),
                &[run, v, &opts.run_id],
            )
            .map_err(db_err("recording the recovery"))?;
        }
        tx.commit().map_err(db_err("committing the recovery"))?;
        Ok((checks, recovered, true))
    });
    let (checks, recovered, committed) = res?;
    let verdict = check::worst(&checks).max(if recovered.incomplete() { Verdict::Review } else { Verdict::Proceed });
    Ok(RecoveryOutcome { recovery, checks, verdict, committed, recovered: Some(recovered), duration_ms: started.elapsed().as_secs_f64() * 1000.0, retries })
}
