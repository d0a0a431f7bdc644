//! What a phase's rehearsal shares wherever it runs (in the chain's
//! transaction or on a clone in a thread of its own): the session it runs
//! in, the options of its `apply` runs, and the rollback, compare, re-apply
//! and compare that are the rehearsal proper.

use std::sync::OnceLock;
use std::time::Instant;

use postgres::Client;

use super::compare::compare;
use super::probes::{self, After};
use super::record::{ms, Record};
use super::steps::{checks_failed, Failure, Ran};
use super::{Against, Finding, Options};
use crate::apply::{self, RunOutcome};
use crate::error::{db_err, Result};
use crate::locks::trace::Tracer;
use crate::snapshot::{observe, Observer, Scope, SnapshotOptions, State};
use crate::ui::Ui;

/// Settings of every rehearsal session: JIT compilation costs more than it
/// saves on one-shot statements (the clinic seed takes several times
/// longer with it).
const SESSION: &str = "SET jit = off";

/// A connection with the migration lock and its prepared statements.
pub(super) struct Conn {
    pub(super) client: Client,
    pub(super) obs: Observer,
}

impl Conn {
    pub(super) fn open(url: &str) -> Result<Conn> {
        let mut client = crate::db::connect(url, "phasegate verify")?;
        crate::db::acquire_lock(&mut client, std::time::Duration::ZERO)?;
        client.batch_execute(SESSION).map_err(db_err("setting up the rehearsal session"))?;
        Ok(Conn { client, obs: Observer::fresh() })
    }
}

/// Why a run did not succeed: its error, or the checks that said ROLLBACK.
fn outcome_error(o: &RunOutcome) -> Option<Failure> {
    match (&o.failure, &o.error) {
        (Some(e), _) => Some(Failure::of(e)),
        (None, Some(message)) => Some(Failure::message(message.clone())),
        (None, None) => checks_failed(o.checks()),
    }
}

pub(super) fn ran_of(r: Result<RunOutcome>) -> Ran {
    match r {
        Ok(o) => Ran {
            verdict: o.verdict(),
            error: outcome_error(&o),
            locks: o.steps.iter().flat_map(|s| s.locks.iter().cloned()).collect(),
            checks: o.checks().cloned().collect(),
        },
        Err(e) => Ran { error: Some(Failure::of(&e)), ..Ran::default() },
    }
}

/// The options of an `apply` run on the database at `url`: its lock tracer
/// watches from there, and the rehearsal judges lock holds itself.
pub(super) fn apply_on(opts: &Options, url: String) -> apply::Options {
    apply::Options { monitor_url: Some(url), max_lock_hold: None, ..opts.apply.clone() }
}

/// The state to observe from: `base`, or with `--full-compare` nothing, so
/// every object is rendered and every table hashed again.
pub(super) fn from(full: bool, base: &State) -> &State {
    static NOTHING: OnceLock<State> = OnceLock::new();
    if full {
        NOTHING.get_or_init(State::default)
    } else {
        base
    }
}

/// Before a pass over rows an earlier pass wrote, outside a transaction:
/// what autovacuum would vacuum now (see `vacuum`), a step of its own when
/// there was any. A failure is said and the rehearsal goes on: the pass
/// then only meets more row versions.
pub(super) fn vacuum_between_passes(client: &mut impl postgres::GenericClient, rec: &mut Record, ui: &mut dyn Ui) {
    let t = Instant::now();
    match super::vacuum::due(client) {
        Ok(tables) if tables.is_empty() => {}
        Ok(tables) => {
            rec.step("vacuum", t, true, None);
            ui.progress(&format!("  vacuumed {} between passes in {} ms", tables.join(", "), t.elapsed().as_millis()));
        }
        Err(e) => ui.progress(&format!("  not vacuumed between passes: {e}")),
    }
}

/// The states a rehearsal compares with, and how it observes.
pub(super) struct Sides<'a> {
    /// Before the phase (what the rollback must restore).
    pub(super) before: &'a State,
    /// After the first forward run (what the re-apply must give again).
    pub(super) forward: &'a State,
    pub(super) scope: Scope,
    pub(super) probes: probes::OfPhase<'a>,
}

/// The rehearsal proper, wherever it runs: roll back, compare with the
/// state before the phase, apply again, compare with the first forward run.
/// `tracer` is handed to `back` and `again` (runs through `apply` trace
/// with their own).
#[allow(clippy::too_many_arguments)]
pub(super) fn back_and_again<C: postgres::GenericClient>(
    client: &mut C,
    obs: &mut Observer,
    sides: &Sides,
    snap: &SnapshotOptions,
    rec: &mut Record,
    opts: &Options,
    tracer: &mut Tracer,
    ui: &mut dyn Ui,
    back: impl FnOnce(&mut C, &mut dyn Ui, &mut Tracer) -> Ran,
    again: impl FnOnce(&mut C, &mut dyn Ui, &mut Tracer) -> Ran,
) -> Result<()> {
    let strict = opts.strict;
    let t = Instant::now();
    let ran = back(client, ui, tracer);
    rec.verdict = rec.verdict.max(ran.verdict);
    rec.ran("rollback", t, ms(t), &ran, opts.apply.max_lock_hold);
    if let Some(error) = ran.error {
        rec.findings.push(Finding::RollbackFailed { error: error.message, at: error.at });
        return Ok(());
    }
    let t = Instant::now();
    let rolled = observe(client, obs, from(opts.full_compare, sides.forward), sides.scope, snap, Some(sides.before))?;
    let found = compare(client, sides.scope, &rolled, sides.before, Against::BeforePhase)?;
    rec.compared(t, found, strict);
    rec.probed(sides.probes.run(client, After::Rollback, ui)?);
    if sides.scope == Scope::Committed {
        vacuum_between_passes(client, rec, ui);
    }
    let t = Instant::now();
    let ran = again(client, ui, tracer);
    rec.ran("re-apply", t, ms(t), &ran, None);
    if let Some(error) = ran.error {
        rec.findings.push(Finding::ReapplyFailed { error: error.message, at: error.at });
        return Ok(());
    }
    let t = Instant::now();
    let again_state = observe(client, obs, from(opts.full_compare, &rolled), sides.scope, snap, Some(sides.forward))?;
    let found = compare(client, sides.scope, &again_state, sides.forward, Against::FirstForward)?;
    rec.compared(t, found, strict);
    rec.probed(sides.probes.run(client, After::Reapply, ui)?);
    Ok(())
}
