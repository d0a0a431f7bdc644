//! The probes of a rehearsal (docs/probes.md): in each state the rehearsal
//! reaches (after a phase's migrate, its rollback, its re-apply), every
//! probe file that must work there runs, statement by statement, inside a
//! savepoint (or, on a connection with no transaction open, a transaction)
//! that is rolled back, so it never changes what is compared. The first
//! statement of a file that fails is a finding at its line and column, with
//! a ROLLBACK verdict; the rest of that file does not run in that state.

use std::time::Instant;

use postgres::GenericClient;

use super::{Finding, StepTiming};
use crate::check::Verdict;
use crate::error::{db_err, Error, Location, Result};
use crate::locks::trace::Tracer;
use crate::set::probe::Probe;
use crate::set::{MigrationSet, Phase};
use crate::ui::Ui;

/// Which run of a phase left the state the probes ran in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum After {
    Migrate,
    Rollback,
    Reapply,
}

impl After {
    /// The rehearsal step that runs the probes of this state.
    fn step(self) -> &'static str {
        match self {
            After::Migrate => "probes after migrate",
            After::Rollback => "probes after rollback",
            After::Reapply => "probes after re-apply",
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            After::Migrate => "migrate",
            After::Rollback => "rollback",
            After::Reapply => "re-apply",
        }
    }
}

/// What running the probes of one state gave: a step, and a finding per
/// failing probe file.
#[derive(Debug)]
pub(super) struct Probed {
    pub step: StepTiming,
    pub findings: Vec<Finding>,
}

/// The probes of the states a phase's rollback and re-apply leave.
pub(super) struct OfPhase<'a> {
    probes: &'a [Probe],
    /// The phase before (the state its rollback leaves; `None` for the
    /// first phase, whose rollback leaves an empty database where no probe
    /// must work) and the phase.
    before: Option<u32>,
    phase: u32,
    /// The seed loads after this phase: its re-apply leaves the phase's
    /// state without the seed's rows, which the probes' values may name
    /// (a generated probe takes them from a seeded row). That state is
    /// probed once the seed is in, by the after-migrate run on the chain.
    seed_follows: bool,
    /// When the rehearsal started.
    origin: Instant,
}

impl<'a> OfPhase<'a> {
    pub fn new(set: &'a MigrationSet, phase: &Phase, origin: Instant) -> OfPhase<'a> {
        let before = set.phases.iter().take_while(|p| p.id != phase.id).last().map(|p| p.id);
        OfPhase { probes: &set.probes, before, phase: phase.id, seed_follows: set.seeded_after(phase.id), origin }
    }

    /// Runs on `client` the probes of the state the phase's `after` run left.
    pub fn run(&self, client: &mut impl GenericClient, after: After, ui: &mut dyn Ui) -> Result<Option<Probed>> {
        if after == After::Reapply && self.seed_follows {
            return Ok(None);
        }
        let state = if after == After::Rollback { self.before } else { Some(self.phase) };
        run(client, self.probes, state, after, self.origin, ui)
    }
}

/// Runs on `client` every probe of `probes` that must work in the state
/// after phase `state` (`after` says which run left it); `origin` is when
/// the rehearsal started. `None` when no probe must work there. An error is
/// the connection failing, never a probe's statement.
pub(super) fn run(client: &mut impl GenericClient, probes: &[Probe], state: Option<u32>, after: After, origin: Instant, ui: &mut dyn Ui) -> Result<Option<Probed>> {
    let Some(state) = state else { return Ok(None) };
    let due: Vec<&Probe> = probes.iter().filter(|p| p.works_after(state)).collect();
    if due.is_empty() {
        return Ok(None);
    }
    let t = Instant::now();
    let mut findings = Vec::new();
    for p in due {
        let mut tx = client.transaction().map_err(db_err("starting a probe's savepoint"))?;
        let ran = crate::apply::exec_file(&mut tx, &p.file, &mut Tracer::off());
        tx.rollback().map_err(db_err("rolling back a probe"))?;
        match ran {
            Ok(()) => ui.progress(&format!("  {} after {} (phase {state}): ok", p.name, after.as_str())),
            Err(e) => {
                let f = failed(p, state, after, e);
                ui.progress(&format!("  {}", f.summary()));
                findings.push(f);
            }
        }
    }
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    let start_ms = t.duration_since(origin).as_secs_f64() * 1000.0;
    let verdict = if findings.is_empty() { Verdict::Proceed } else { Verdict::Rollback };
    Ok(Some(Probed { step: StepTiming::plain(after.step(), start_ms, ms, findings.is_empty(), Some(verdict)), findings }))
}

/// The finding of probe `p` whose statement raised `e` in the state after phase `state`.
fn failed(p: &Probe, state: u32, after: After, e: Error) -> Finding {
    let (at, error, sqlstate) = match e {
        Error::Sql { at, message, sqlstate } => (at, message, sqlstate.map(|c| c.code().to_string())),
        other => (other.location().cloned().unwrap_or_else(|| Location::file(&p.file.path)), other.to_string(), None),
    };
    Finding::ProbeFailed { probe: p.name.clone(), after: after.as_str().to_string(), state, error, sqlstate, at }
}
