//! The forward chain and the rehearsal of each phase beside it: in a
//! transaction of the chain's that is rolled back when every file of the
//! phase runs in a transaction, else on a clone of the chain made after the
//! forward run (see the module documentation of `rehearse`).

use std::time::Instant;

use super::probes::{self, After};
use super::record::{ms, Record};
use super::steps::{self, Failure};
use super::sides::{apply_on, back_and_again, from, ran_of, vacuum_between_passes, Conn, Sides};
use super::threaded::{joined, CloneJob, Running};
use super::{Finding, Isolation, Options, PhaseRehearsal, PhaseResult, Rehearsal, StepTiming, Summary};
use crate::apply::{self, Target};
use crate::error::{db_err, pg_message, Error, Result};
use crate::locks::trace::Tracer;
use crate::pg::Server;
use crate::set::{MigrationSet, Phase};
use crate::snapshot::{diff_blocks, observe, Scope, SnapshotOptions, State};
use crate::ui::{Confirming, Ui};

/// The database that only ever applies forward files, and its state.
struct Chain<'a> {
    server: &'a Server,
    name: String,
    conn: Option<Conn>,
    /// The chain's state after the last forward run; `stale` when work was
    /// committed since without being observed.
    state: State,
    stale: bool,
    clones: usize,
    /// When the rehearsal started.
    started: Instant,
    /// `--full-compare`: every observation from nothing.
    full: bool,
}

impl Chain<'_> {
    /// The chain database's connection string.
    fn url(&self) -> String {
        self.server.url_for(&self.name)
    }

    fn conn(&mut self) -> Result<&mut Conn> {
        if self.conn.is_none() {
            self.conn = Some(Conn::open(&self.server.url_for(&self.name))?);
        }
        Ok(self.conn.as_mut().expect("opened above"))
    }

    /// The chain's state, observed afresh when it is stale.
    fn refresh(&mut self, opts: &SnapshotOptions) -> Result<()> {
        if self.stale {
            let base = std::mem::take(&mut self.state);
            let full = self.full;
            let c = self.conn()?;
            self.state = observe(&mut c.client, &mut c.obs, from(full, &base), Scope::Committed, opts, None)?;
            self.stale = false;
        }
        Ok(())
    }

    /// A clone of the chain as it is now (the chain's connection is closed
    /// first: PostgreSQL copies only a database nobody is connected to).
    fn clone_now(&mut self) -> Result<(String, Conn)> {
        self.conn = None;
        self.clones += 1;
        // Cut by bytes with the suffix kept: PostgreSQL would cut a longer
        // name itself, suffix first, and name the chain again.
        let name = crate::pg::fit_name(&self.name, &format!("_c{}", self.clones), crate::pg::MAX_IDENT_BYTES);
        let url = self.server.create_database(&name, Some(&self.name))?;
        match Conn::open(&url) {
            Ok(c) => Ok((name, c)),
            Err(e) => {
                let _ = self.server.drop_database(&name);
                Err(e)
            }
        }
    }
}



/// Rehearses the set on database `database` of `server`, which the caller
/// created empty and drops afterwards (clones are made and dropped here).
/// A rehearsal on a clone runs in a thread of its own while the chain goes
/// on with the next phases (one at a time: a rehearsal server has a core
/// for the chain and one for a clone); its progress lines are shown when
/// it ends.
pub fn rehearse(server: &Server, database: &str, set: &MigrationSet, opts: &Options, ui: &mut dyn Ui) -> Result<Rehearsal> {
    let started = Instant::now();
    let mut ui = Confirming { inner: ui };
    let snap = &SnapshotOptions::default();
    let mut chain = Chain { server, name: database.to_string(), conn: None, state: State::default(), stale: true, clones: 0, started, full: opts.full_compare };
    crate::ledger::ensure(&mut chain.conn()?.client)?;
    // The change log lets each observation read only what a step touched
    // (snapshot/touch.rs); without it (no superuser) it reads every root.
    crate::snapshot::install_change_log(&mut chain.conn()?.client);
    for file in &opts.setup {
        ui.progress(&format!("setup {}", crate::error::display_path(&file.path)));
        crate::apply::exec_file(&mut chain.conn()?.client, file, &mut Tracer::off())?;
    }
    let mut phases: Vec<Option<PhaseRehearsal>> = Vec::new();
    std::thread::scope(|scope| -> Result<()> {
        let mut running: Option<(usize, Running<'_>)> = None;
        let mut stopped = false;
        for phase in &set.phases {
            if opts.phase.is_some_and(|p| phase.id > p) {
                break;
            }
            if stopped {
                phases.push(Some(Record::new(started).finish(phase, Some(PhaseResult::NotRehearsed), opts.strict)));
                continue;
            }
            ui.progress(&format!("rehearse phase {} {}", phase.id, phase.name));
            let rehearsed = opts.phase.is_none_or(|p| p == phase.id);
            let mut outcome = if rehearsed {
                rehearse_phase(&mut chain, set, phase, opts, snap, &mut ui)?
            } else {
                apply_only(&mut chain, set, phase, opts, &mut ui)?
            };
            stopped = matches!(outcome, Outcome::Done(_, Some(PhaseResult::Failed)));
            if !stopped {
                // The chain is in the state after the phase (a clone, if
                // any, was made before): the seed, then the probes of that
                // state, which run on the data the later phases meet.
                let rec = outcome.record();
                seed_after(&mut chain, set, phase, opts, rec, &mut ui)?;
                if rehearsed {
                    let probed = probes::run(&mut chain.conn()?.client, &set.probes, Some(phase.id), After::Migrate, started, &mut ui)?;
                    rec.probed(probed);
                }
            }
            match outcome {
                Outcome::Done(rec, result) => phases.push(Some(rec.finish(phase, result, opts.strict))),
                Outcome::OnClone(job) => {
                    if let Some((i, h)) = running.take() {
                        phases[i] = Some(joined(h, &mut ui)?);
                    }
                    running = Some((phases.len(), scope.spawn(move || job.run(set, phase, opts, snap, server))));
                    phases.push(None);
                }
            }
        }
        if let Some((i, h)) = running.take() {
            phases[i] = Some(joined(h, &mut ui)?);
        }
        Ok(())
    })?;
    if !opts.full_compare {
        final_check(&mut chain, snap)?;
    }
    drop(chain.conn.take());
    let phases: Vec<PhaseRehearsal> = phases.into_iter().flatten().collect();
    let summary = Summary::of(&phases);
    Ok(Rehearsal { phases, summary, strict: opts.strict, ms: ms(started) })
}

/// The check at the end of the run: the chain's state as the rehearsal
/// kept it, object by object from what each step changed, against a full
/// observation of the chain (every object rendered, every table counted).
/// A difference means an incremental observation missed a change, and so
/// a comparison may have: the rehearsal fails rather than pass on it.
fn final_check(chain: &mut Chain, snap: &SnapshotOptions) -> Result<()> {
    chain.refresh(snap)?;
    let c = chain.conn()?;
    let full = observe(&mut c.client, &mut c.obs, from(true, &State::default()), Scope::Committed, snap, None)?;
    let d = diff_blocks(&chain.state.blocks(), &full.blocks());
    let mut missed: Vec<String> = d.real.into_iter().chain(d.folded).collect();
    let kept = chain.state.tables();
    for (key, t) in full.tables() {
        if kept.get(key).is_none_or(|k| k.sig.rows != t.sig.rows) {
            missed.push(format!("rows of {key}"));
        }
    }
    missed.extend(kept.keys().filter(|k| !full.tables().contains_key(*k)).map(|k| format!("table {k}")));
    if missed.is_empty() {
        return Ok(());
    }
    Err(Error::Unexpected {
        context: "the full snapshot at the end of the rehearsal".into(),
        message: format!("the incremental snapshots missed a change to {}; run verify --full-compare", missed.join(", ")),
    })
}

/// Loads the seed on the chain when it follows `phase`.
fn seed_after(chain: &mut Chain, set: &MigrationSet, phase: &Phase, opts: &Options, rec: &mut Record, ui: &mut dyn Ui) -> Result<()> {
    if !set.seeded_after(phase.id) {
        return Ok(());
    }
    let t = Instant::now();
    apply::seed(&mut chain.conn()?.client, set, opts.seed_rows)?;
    chain.stale = true;
    ui.progress(&format!("seed loaded after phase {} in {} ms", phase.id, t.elapsed().as_millis()));
    rec.step("seed", t, true, None);
    Ok(())
}

/// What the rehearsal of a phase on the chain leaves to do.
enum Outcome {
    /// Its record, and its result when the record alone does not decide it.
    Done(Record, Option<PhaseResult>),
    /// The rollback and re-apply, on a clone made after the forward run.
    OnClone(Box<CloneJob>),
}

impl Outcome {
    /// The record of the phase's rehearsal so far.
    fn record(&mut self) -> &mut Record {
        match self {
            Outcome::Done(rec, _) => rec,
            Outcome::OnClone(job) => &mut job.rec,
        }
    }
}


/// A phase before the one `--phase` selects: applied, not rehearsed.
fn apply_only(chain: &mut Chain, set: &MigrationSet, phase: &Phase, opts: &Options, ui: &mut dyn Ui) -> Result<Outcome> {
    let mut rec = Record::new(chain.started);
    let t = Instant::now();
    let apply = apply_on(opts, chain.url());
    let ran = ran_of(apply::migrate(&mut chain.conn()?.client, set, Target::Phase(phase.id), &apply, ui));
    chain.stale = true;
    rec.verdict = ran.verdict;
    rec.ran("migrate", t, ms(t), &ran, opts.apply.max_lock_hold);
    Ok(match ran.error {
        Some(error) => {
            rec.findings.push(Finding::MigrateFailed { error: error.message, at: error.at });
            Outcome::Done(rec, Some(PhaseResult::Failed))
        }
        None => Outcome::Done(rec, Some(PhaseResult::Applied)),
    })
}

fn rehearse_phase(chain: &mut Chain, set: &MigrationSet, phase: &Phase, opts: &Options, snap: &SnapshotOptions, ui: &mut dyn Ui) -> Result<Outcome> {
    let mut rec = Record::new(chain.started);
    let t = Instant::now();
    chain.refresh(snap)?;
    rec.step("snapshot", t, true, None);
    let result = if steps::transactional(phase) {
        in_transaction(chain, set, phase, opts, snap, &mut rec, ui)?
    } else {
        match on_clone(chain, set, phase, opts, snap, rec, ui)? {
            Ok(job) => return Ok(Outcome::OnClone(Box::new(job))),
            Err((r, result)) => {
                rec = r;
                result
            }
        }
    };
    if result.is_none() && !phase.is_reversible() && !phase.is_baseline() {
        rec.findings.push(Finding::NoRollback { reason: phase.reason().map(str::to_string).unwrap_or_else(|| "irreversible".into()) });
    }
    Ok(Outcome::Done(rec, result))
}

/// The forward run committed in a transaction of its own; the rollback and
/// the re-apply in a second transaction, which is rolled back. The re-apply
/// runs in another transaction than the first forward run, as it would in
/// production: `now()` differs between the two. Returns `Some(Failed)`
/// when the forward run failed.
fn in_transaction(chain: &mut Chain, set: &MigrationSet, phase: &Phase, opts: &Options, snap: &SnapshotOptions, rec: &mut Record, ui: &mut dyn Ui) -> Result<Option<PhaseResult>> {
    let before = std::mem::take(&mut chain.state);
    let url = chain.url();
    chain.conn()?;
    let Conn { client, obs } = chain.conn.as_mut().expect("connected above");
    let mut tracer = Tracer::start(client, &url);
    if let Some(why) = tracer.lost() {
        ui.progress(&format!("  lock tracing is off for this phase (no lock is recorded): {why}"));
    }
    let fwd_start = Instant::now();
    let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
    let mut fwd = steps::forward(&mut tx, phase, &opts.apply, true, &mut tracer, ui);
    let fwd_ms = ms(fwd_start);
    let t = Instant::now();
    let forward = match fwd.error {
        None => Some(observe(&mut tx, obs, from(opts.full_compare, &before), Scope::Transaction, snap, None)?),
        Some(_) => None,
    };
    let observe = (t, ms(t));
    let t = Instant::now();
    let commit = match fwd.error {
        None => tx.commit().err(),
        Some(_) => {
            // Nothing of a failed forward run is kept; the chain stops here.
            let _ = tx.rollback();
            None
        }
    };
    if let Some(e) = commit {
        fwd.error = Some(Failure::message(format!("committing the forward run: {}", pg_message(&e)))); // a deferred constraint
    }
    rec.verdict = fwd.verdict;
    // The migrate step is the forward run and its commit; the snapshot
    // between them is a step of its own.
    rec.ran("migrate", fwd_start, fwd_ms + ms(t), &fwd, opts.apply.max_lock_hold);
    let (Some(forward), None) = (forward, fwd.error.clone()) else {
        chain.state = before;
        chain.stale = true;
        let f = fwd.error.unwrap_or_else(|| Failure::message(String::new()));
        rec.findings.push(Finding::MigrateFailed { error: f.message, at: f.at });
        return Ok(Some(PhaseResult::Failed));
    };
    rec.steps.push(StepTiming::plain("snapshot", rec.at(observe.0), observe.1, true, None));
    if phase.is_reversible() {
        rec.isolation = Isolation::Transaction;
        let mut tx = client.transaction().map_err(db_err("starting a transaction"))?;
        let sides = Sides { before: &before, forward: &forward, scope: Scope::Transaction, probes: probes::OfPhase::new(set, phase, chain.started) };
        // Each file runs behind a savepoint of its own: the re-apply's
        // writes get transaction ids of their own.
        back_and_again(
            &mut tx,
            obs,
            &sides,
            snap,
            rec,
            opts,
            &mut tracer,
            ui,
            |tx, ui, tracer| steps::backward(tx, phase, &opts.apply, tracer, ui),
            |tx, ui, tracer| steps::forward(tx, phase, &opts.apply, false, tracer, ui),
        )?;
        tx.rollback().map_err(db_err("rolling back the rehearsal"))?;
    }
    chain.state = forward;
    Ok(None)
}

/// Forward committed on the chain, then a clone of it for the rollback
/// and the re-apply, which run through `apply` as production runs them.
/// Gives back the record when there is nothing to run on a clone (the
/// forward run failed, or the phase is irreversible).
#[allow(clippy::type_complexity)]
fn on_clone(
    chain: &mut Chain,
    set: &MigrationSet,
    phase: &Phase,
    opts: &Options,
    snap: &SnapshotOptions,
    mut rec: Record,
    ui: &mut dyn Ui,
) -> Result<std::result::Result<CloneJob, (Record, Option<PhaseResult>)>> {
    let t = Instant::now();
    let apply = apply_on(opts, chain.url());
    let fwd = ran_of(apply::migrate(&mut chain.conn()?.client, set, Target::Phase(phase.id), &apply, ui));
    rec.verdict = fwd.verdict;
    rec.ran("migrate", t, ms(t), &fwd, opts.apply.max_lock_hold);
    if let Some(error) = fwd.error {
        // Whatever the failing run committed is on the chain now.
        chain.stale = true;
        rec.findings.push(Finding::MigrateFailed { error: error.message, at: error.at });
        return Ok(Err((rec, Some(PhaseResult::Failed))));
    }
    let before = std::mem::take(&mut chain.state);
    let t = Instant::now();
    let c = chain.conn()?;
    let forward = observe(&mut c.client, &mut c.obs, from(opts.full_compare, &before), Scope::Committed, snap, None)?;
    rec.step("snapshot", t, true, None);
    chain.state = forward.clone();
    if !phase.is_reversible() {
        return Ok(Err((rec, None)));
    }
    rec.isolation = Isolation::Clone;
    // Once on the chain, for the clone's rollback and the next phases.
    vacuum_between_passes(&mut chain.conn()?.client, &mut rec, ui);
    let t = Instant::now();
    let (name, conn) = chain.clone_now()?;
    rec.clone_ms = Some(ms(t));
    Ok(Ok(CloneJob { name, conn, before, forward, rec }))
}
