//! A phase's rehearsal as it goes: its timed steps, findings and verdict.

use std::time::{Duration, Instant};

use super::probes::Probed;
use super::steps::Ran;
use super::{Finding, Isolation, PhaseRehearsal, PhaseResult, StepTiming};
use crate::check::Verdict;
use crate::set::Phase;

pub(super) fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// A phase's rehearsal as it goes.
pub(super) struct Record {
    /// When the rehearsal started: steps' `start_ms` count from here.
    pub(super) origin: Instant,
    pub(super) started: Instant,
    pub(super) steps: Vec<StepTiming>,
    pub(super) findings: Vec<Finding>,
    pub(super) verdict: Verdict,
    pub(super) isolation: Isolation,
    pub(super) clone_ms: Option<f64>,
}

impl Record {
    pub(super) fn new(origin: Instant) -> Record {
        Record { origin, started: Instant::now(), steps: Vec::new(), findings: Vec::new(), verdict: Verdict::Proceed, isolation: Isolation::None, clone_ms: None }
    }
    /// Milliseconds from the rehearsal's start to `t`.
    pub(super) fn at(&self, t: Instant) -> f64 {
        t.duration_since(self.origin).as_secs_f64() * 1000.0
    }
    pub(super) fn step(&mut self, step: &'static str, t: Instant, ok: bool, verdict: Option<Verdict>) {
        self.steps.push(StepTiming::plain(step, self.at(t), ms(t), ok, verdict));
    }
    /// A step that ran migrations (migrate, rollback, re-apply), started
    /// at `t` and took `ms`, with its locks and checks; a lock of migrate or rollback held over
    /// `limit` is a finding, and the phase's verdict REVIEW. (The re-apply
    /// passes no limit: its locks are the migrate's statements again,
    /// shown, not judged twice.)
    pub(super) fn ran(&mut self, step: &'static str, t: Instant, ms: f64, ran: &Ran, limit: Option<Duration>) {
        let start_ms = self.at(t);
        self.steps.push(StepTiming { step, start_ms, ms, ok: ran.error.is_none(), verdict: Some(ran.verdict), locks: ran.locks.clone(), checks: ran.checks.clone() });
        let Some(limit) = limit else { return };
        for h in crate::locks::over_limit(&ran.locks, limit) {
            self.verdict = self.verdict.max(Verdict::Review);
            self.findings.push(Finding::LockHeld {
                step: step.to_string(),
                relation: h.relation.clone(),
                mode: h.mode,
                held_ms: h.held_ms,
                limit_ms: limit.as_secs_f64() * 1000.0,
                statement: h.statement.clone(),
                at: h.at(),
            });
        }
    }
    /// The probes of a state: their step, their findings, and ROLLBACK
    /// for the phase when one failed.
    pub(super) fn probed(&mut self, probed: Option<Probed>) {
        let Some(p) = probed else { return };
        if !p.findings.is_empty() {
            self.verdict = self.verdict.max(Verdict::Rollback);
        }
        self.steps.push(p.step);
        self.findings.extend(p.findings);
    }
    /// A compare step: ok unless a finding fails verify.
    pub(super) fn compared(&mut self, t: Instant, found: Vec<Finding>, strict: bool) {
        let ok = found.iter().all(|f| !f.is_mismatch(strict));
        self.step("compare", t, ok, None);
        self.findings.extend(found);
    }
    pub(super) fn finish(self, phase: &Phase, result: Option<PhaseResult>, strict: bool) -> PhaseRehearsal {
        let result = result.unwrap_or(if self.findings.iter().any(|f| f.is_mismatch(strict)) {
            PhaseResult::Mismatch
        } else if !phase.is_reversible() {
            PhaseResult::ForwardOnly
        } else {
            PhaseResult::Restored
        });
        PhaseRehearsal {
            phase: phase.id,
            name: phase.name.clone(),
            origin: phase.steps.first().and_then(|s| s.origin.clone()),
            reversible: phase.is_reversible(),
            steps: self.steps,
            findings: self.findings,
            verdict: self.verdict,
            result,
            isolation: self.isolation,
            clone_ms: self.clone_ms,
            ms: ms(self.started),
        }
    }
}
