//! A phase rehearsed on a clone of the chain, in a thread of its own while
//! the chain goes on; what it says is kept until it is shown.

use super::sides::{apply_on, back_and_again, ran_of, Conn, Sides};
use super::probes;
use super::record::Record;
use super::{Options, PhaseRehearsal};
use crate::apply::{self, Target};
use crate::error::Result;
use crate::locks::trace::Tracer;
use crate::pg::Server;
use crate::set::{MigrationSet, Phase};
use crate::snapshot::{Scope, SnapshotOptions, State};
use crate::ui::Ui;

/// A rehearsal on a clone running in a thread.
pub(super) type Running<'scope> = std::thread::ScopedJoinHandle<'scope, Result<(PhaseRehearsal, Buffered)>>;

/// A rehearsal on a clone, ready to run in a thread of its own.
pub(super) struct CloneJob {
    pub(super) name: String,
    pub(super) conn: Conn,
    pub(super) before: State,
    pub(super) forward: State,
    pub(super) rec: Record,
}

impl CloneJob {
    pub(super) fn run(self: Box<Self>, set: &MigrationSet, phase: &Phase, opts: &Options, snap: &SnapshotOptions, server: &Server) -> Result<(PhaseRehearsal, Buffered)> {
        let CloneJob { name, mut conn, before, forward, mut rec } = *self;
        let mut ui = Buffered::default();
        let apply = apply_on(opts, server.url_for(&name));
        let outcome = rehearse_on_clone(&mut conn, set, phase, opts, &apply, snap, &before, &forward, &mut rec, &mut ui);
        drop(conn);
        let dropped = server.drop_database(&name);
        outcome?;
        dropped?;
        Ok((rec.finish(phase, None, opts.strict), ui))
    }
}

/// Waits for a rehearsal on a clone and shows what it said.
pub(super) fn joined(h: Running<'_>, ui: &mut dyn Ui) -> Result<PhaseRehearsal> {
    let (rec, said) = h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
    for e in said.events {
        match e {
            Said::Line(l) => ui.progress(&l),
            Said::Check(c) => ui.check_done(&c),
        }
    }
    Ok(rec)
}

/// What a rehearsal in a thread said, kept until it is shown.
pub(super) enum Said {
    Line(String),
    Check(crate::check::CheckResult),
}

/// The `Ui` of a rehearsal in a thread: confirms everything (a rehearsal
/// database is disposable) and keeps what it is told.
#[derive(Default)]
pub(super) struct Buffered {
    events: Vec<Said>,
}

impl Ui for Buffered {
    fn confirm(&mut self, _prompt: &str, _expected: &str) -> bool {
        true
    }
    fn progress(&mut self, line: &str) {
        self.events.push(Said::Line(line.to_string()));
    }
    fn check_done(&mut self, result: &crate::check::CheckResult) {
        self.events.push(Said::Check(result.clone()));
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn rehearse_on_clone(
    conn: &mut Conn,
    set: &MigrationSet,
    phase: &Phase,
    opts: &Options,
    apply: &apply::Options,
    snap: &SnapshotOptions,
    before: &State,
    forward: &State,
    rec: &mut Record,
    ui: &mut dyn Ui,
) -> Result<()> {
    let sides = Sides { before, forward, scope: Scope::Committed, probes: probes::OfPhase::new(set, phase, rec.origin) };
    back_and_again(
        &mut conn.client,
        &mut conn.obs,
        &sides,
        snap,
        rec,
        opts,
        &mut Tracer::off(),
        ui,
        |c, ui, _| ran_of(apply::rollback(c, set, phase.id, apply, ui)),
        |c, ui, _| ran_of(apply::migrate(c, set, Target::Phase(phase.id), apply, ui)),
    )
}
