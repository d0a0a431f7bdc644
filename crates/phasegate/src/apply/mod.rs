//! Applying and reversing migrations (docs/commands.md, docs/safety.md): each
//! step and its checks in one transaction, the ledger written in that same
//! transaction, lock and statement timeouts on every step, and bounded
//! retries when a lock cannot be had.
//!
//! This file is the orchestration (which steps, in which order, where a run
//! stops); `outcome` the types every part shares (`Options`, `Target`,
//! `StepOutcome`, `RunOutcome`); `forward` and `reverse` run one step, `exec` holds what both
//! share (a file's statements, checks, timeouts), `retry` the lock-timeout
//! retries, `batch` batched backfills (`replica`: the gate before each
//! batch that waits for lagging replicas) and `validate` read-only checks.
//!
//! The caller holds the migration lock (see `db::acquire_lock`) for the
//! whole run; nothing here takes it.

mod adopt;
mod baseline;
mod batch;
mod exec;
mod forward;
mod keyset;
mod outcome;
mod recover;
mod replica;
mod retry;
mod reverse;
mod sizing;
mod validate;

use std::collections::BTreeMap;

use postgres::Client;

use crate::check::{self, Verdict};
use crate::error::{db_err, Confirmation, Error, Result};
use crate::locks::trace::Tracer;
use exec::record_locks;
use forward::apply_step;
use retry::Watch;
use reverse::rollback_step;
use crate::ledger::{self, Applied};
use crate::set::{MigrationSet, Phase, Step};
use crate::ui::Ui;

pub(crate) use exec::{exec_file, forward_in_tx, run_checks, timeouts_sql};
pub(crate) use reverse::backup_source;
#[cfg(test)]
pub(crate) use forward::concurrent_index_name;
#[cfg(test)]
pub(crate) use keyset::{key_type, keyset_sql, KeyText};
pub use adopt::{adopt, AdoptedStep, Adoption};
pub use recover::{keeps as keeps_what_it_destroys, measure_phase, plan_recovery, recover, Recovery, RecoveryOutcome};
pub use outcome::{Action, Options, RunOutcome, StepOutcome, StepStatus, Target, DEFAULT_MAX_BACKUP_ROWS};
pub use validate::{current_phase, validate, validate_applied};

/// Refuses to work on a database whose ledger disagrees with the files:
/// an applied migration whose file changed or vanished, or a gap.
pub fn check_consistency(set: &MigrationSet, applied: &BTreeMap<i32, Applied>) -> Result<()> {
    if let Some(d) = ledger::drift(set, applied).into_iter().find(ledger::Drift::blocks_migrate) {
        return Err(Error::Drift(d));
    }
    if let Some(&later) = applied.keys().max() {
        if let Some(gap) = set.steps().find(|s| s.version < later && !applied.contains_key(&s.version)) {
            return Err(Error::LedgerGap { missing: gap.version, later });
        }
    }
    Ok(())
}

/// The steps `migrate` would apply, in order.
pub fn pending<'a>(set: &'a MigrationSet, applied: &BTreeMap<i32, Applied>, target: Target) -> Vec<&'a Step> {
    set.steps()
        .filter(|s| !applied.contains_key(&s.version))
        .filter(|s| match target {
            Target::Latest => true,
            Target::Phase(p) => s.phase <= p,
            Target::Version(v) => s.version <= v,
        })
        .collect()
}

/// Applies pending migrations in order. Stops at the first error, at a
/// ROLLBACK verdict (that step's transaction is rolled back), or at the end
/// of a phase whose verdict is REVIEW unless `accept_review`.
pub fn migrate(client: &mut Client, set: &MigrationSet, target: Target, opts: &Options, ui: &mut dyn Ui) -> Result<RunOutcome> {
    let ledger = ledger::ensure_tables(client)?;
    let applied = ledger::applied_in(client, &ledger)?;
    check_consistency(set, &applied)?;
    let todo = pending(set, &applied, target);
    let mut out = RunOutcome::default();
    if todo.is_empty() {
        ui.progress("nothing to migrate: every selected migration is applied");
        return Ok(out.finish());
    }
    let watch = Watch::start(client, opts);
    let mut tracer = start_tracer(client, opts, ui);
    for phase in &set.phases {
        let steps: Vec<&Step> = todo.iter().copied().filter(|s| s.phase == phase.id).collect();
        if steps.is_empty() {
            continue;
        }
        let entering = !phase.steps.iter().any(|s| applied.contains_key(&s.version));
        let keeping = recover::keeps(phase) && opts.backup;
        if keeping {
            // The size first, and the guard, before anything changes.
            let size = match recover::measure_phase(client, &steps) {
                Ok(s) => s,
                Err(e) => return Ok(out.fail(e)),
            };
            if size.rows > 0 && size.rows as u64 > opts.max_backup_rows {
                return Ok(out.fail(Error::BackupTooLarge { phase: phase.id, name: phase.name.clone(), rows: size.rows, limit: opts.max_backup_rows }));
            }
            ui.progress(&format!(
                "phase {} ({}) destroys data: what each migration drops is kept first, about {} rows ({})",
                phase.id,
                phase.name,
                size.rows,
                recover::human_bytes(size.bytes)
            ));
        } else if recover::keeps(phase) {
            ui.progress(&format!("phase {} ({}) destroys data and backups are off: nothing is kept, it cannot be recovered", phase.id, phase.name));
        }
        if entering && phase.needs_confirmation() {
            let prompt = format!(
                "phase {} ({}) is irreversible: {}. Type the phase name to continue",
                phase.id,
                phase.name,
                phase.reason().unwrap_or("")
            );
            if !ui.confirm(&prompt, &phase.name) {
                return Ok(out.fail(Error::NotConfirmed(Confirmation::EnterIrreversible { phase: phase.id, name: phase.name.clone() })));
            }
        }
        ui.progress(&format!("phase {} {}: {}", phase.id, phase.name, phase.summary));
        let adopt = match entering && phase.is_baseline() {
            true => match baseline::holds_objects(client) {
                Ok(b) => b,
                Err(e) => return Ok(out.fail(e)),
            },
            false => false,
        };
        for step in steps {
            if adopt {
                let (so, err) = baseline::record_step(client, step, &ledger, opts, ui);
                out.steps.push(so);
                if let Some(e) = err {
                    return Ok(out.fail(e));
                }
                continue;
            }
            if keeping {
                match recover::keep_before(client, step, opts, ui) {
                    Ok(k) => out.kept.push(k),
                    Err(e) => return Ok(out.fail(e)),
                }
            }
            let (mut so, err) = apply_step(client, step, &ledger, opts, &watch, &mut tracer, ui);
            record_locks(&mut so, &mut tracer, opts, ui);
            let done = so.status == StepStatus::Done;
            // What was kept is forgotten only when the step's one
            // transaction rolled back: SQL outside a transaction (or a
            // batch) may have destroyed its part before the step failed.
            let undone = !step.forward.directives.no_transaction && step.forward.directives.batch.is_none();
            if keeping && !done && undone {
                out.kept.retain(|k| k.version != step.version);
                if let Err(e) = recover::discard_kept(client, &opts.run_id, step.version) {
                    ui.progress(&format!("  warning: what was kept before V{} could not be discarded: {e}", step.version));
                }
            } else if keeping && !done {
                ui.progress(&format!("  V{} ran outside a transaction and did not finish: what was kept before it stays, for recover", step.version));
            }
            out.steps.push(so);
            if let Some(e) = err {
                return Ok(out.fail(e));
            }
            if !done {
                return Ok(out.finish());
            }
        }
        let phase_verdict = check::worst(out.steps.iter().filter(|s| s.phase == phase.id).flat_map(|s| s.checks.iter()));
        let more = todo.iter().any(|s| s.phase > phase.id);
        if phase_verdict == Verdict::Review && !opts.accept_review && more {
            ui.progress(&format!("phase {} ended with REVIEW: a human must look before the next phase", phase.id));
            out.stopped_for_review = Some(phase.id);
            return Ok(out.finish());
        }
    }
    Ok(out.finish())
}

/// Reverses phase `phase_id`, newest migration first.
pub fn rollback(client: &mut Client, set: &MigrationSet, phase_id: u32, opts: &Options, ui: &mut dyn Ui) -> Result<RunOutcome> {
    let phase = set.phase(phase_id)?;
    refuse_irreversible(phase)?;
    let ledger = ledger::ensure_tables(client)?;
    let applied = ledger::applied_in(client, &ledger)?;
    let to_reverse = plan_rollback(set, phase, &applied)?;
    let prompt = format!(
        "this reverses phase {} ({}): migrations {}. Type `rollback phase {}` to continue",
        phase.id,
        phase.name,
        to_reverse.iter().map(|s| s.version.to_string()).collect::<Vec<_>>().join(", "),
        phase.id
    );
    if !ui.confirm(&prompt, &format!("rollback phase {}", phase.id)) {
        return Err(Error::NotConfirmed(Confirmation::Rollback { phase: phase.id }));
    }
    let mut out = RunOutcome::default();
    let watch = Watch::start(client, opts);
    let mut tracer = start_tracer(client, opts, ui);
    for step in to_reverse {
        let a = &applied[&step.version];
        let (mut so, err) = rollback_step(client, step, a, opts, &watch, &mut tracer, ui);
        record_locks(&mut so, &mut tracer, opts, ui);
        let done = so.status == StepStatus::Done && check::worst(&so.checks) < Verdict::Rollback;
        out.steps.push(so);
        if let Some(e) = err {
            return Ok(out.fail(e));
        }
        if !done {
            return Ok(out.finish());
        }
    }
    Ok(out.finish())
}

/// The lock tracer of a run, on a second connection to `monitor_url`
/// (none: nothing is traced); says so when it cannot start.
fn start_tracer(client: &mut Client, opts: &Options, ui: &mut dyn Ui) -> Tracer {
    let Some(url) = &opts.monitor_url else { return Tracer::off() };
    let mut tracer = Tracer::start(client, url);
    if let Some(why) = tracer.lost() {
        ui.progress(&format!("lock tracing is off (no lock is recorded): {why}"));
    }
    tracer
}

/// Refuses to roll back an irreversible phase, saying what to do instead.
pub fn refuse_irreversible(phase: &Phase) -> Result<()> {
    if phase.is_reversible() {
        return Ok(());
    }
    Err(Error::Irreversible { phase: phase.id, name: phase.name.clone(), reason: phase.reason().map(str::to_string).unwrap_or_else(|| "no reason given".into()) })
}

/// The applied steps of `phase` in the order they will be reversed, after
/// checking that no later phase is applied.
pub fn plan_rollback<'a>(set: &'a MigrationSet, phase: &Phase, applied: &BTreeMap<i32, Applied>) -> Result<Vec<&'a Step>> {
    for later in set.phases.iter().filter(|p| p.id > phase.id) {
        if later.steps.iter().any(|s| applied.contains_key(&s.version)) {
            if !later.is_reversible() {
                return Err(Error::PastPointOfNoReturn { phase: phase.id, later: later.id, later_name: later.name.clone() });
            }
            return Err(Error::LaterPhaseApplied { phase: phase.id, later: later.id, later_name: later.name.clone() });
        }
    }
    let mut steps: Vec<&Step> = set
        .phase(phase.id)
        .map(|p| p.steps.iter().filter(|s| applied.contains_key(&s.version)).collect())
        .ok()
        .unwrap_or_default();
    if steps.is_empty() {
        return Err(Error::NotApplied { phase: phase.id, name: phase.name.clone() });
    }
    steps.reverse();
    Ok(steps)
}

/// Loads the set's seed files (rehearsals only): `rows` sets
/// `phasegate.seed_rows` for files that read it.
pub fn seed(client: &mut Client, set: &MigrationSet, rows: Option<u64>) -> Result<usize> {
    let Some(seed) = &set.seed else { return Ok(0) };
    let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
    if let Some(n) = rows {
        tx.batch_execute(&format!("SET LOCAL phasegate.seed_rows = '{n}'")).map_err(db_err("setting phasegate.seed_rows"))?;
    }
    for f in &seed.files {
        exec_file(&mut tx, f, &mut Tracer::off())?;
    }
    tx.commit().map_err(db_err("committing the seed"))?;
    Ok(seed.files.len())
}

/// Migrates `set` up to `phase` (all of it when `None`), entering
/// irreversible phases, loading the seed after its phase when `seed` is
/// `Some(rows)`. Fails on an error or a ROLLBACK verdict.
pub(crate) fn migrate_to(client: &mut Client, set: &MigrationSet, phase: Option<u32>, seed: Option<Option<u64>>) -> Result<()> {
    let opts = Options { accept_review: true, ..Default::default() };
    let mut ui = crate::ui::Confirming { inner: &mut crate::ui::Quiet };
    let last = phase.unwrap_or_else(|| set.phases.last().map(|p| p.id).unwrap_or(0));
    let mut run = |client: &mut Client, target: Target| -> Result<()> {
        let o = migrate(client, set, target, &opts, &mut ui)?;
        match o.failure {
            Some(e) => Err(e),
            None if o.verdict() == Verdict::Rollback => {
                let failing: Vec<String> = o.checks().filter(|c| c.verdict == Verdict::Rollback).map(|c| format!("V{} {}", c.version, c.check)).collect();
                Err(Error::Unexpected { context: format!("migrating {}", crate::error::display_path(&set.dir)), message: format!("checks said ROLLBACK: {}", failing.join(", ")) })
            }
            None => Ok(()),
        }
    };
    if let (Some(rows), Some(s)) = (seed, &set.seed) {
        if s.after_phase <= last {
            run(client, Target::Phase(s.after_phase))?;
            self::seed(client, set, rows)?;
        }
    }
    run(client, Target::Phase(last))
}
