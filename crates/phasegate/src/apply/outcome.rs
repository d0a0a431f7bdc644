//! What every part of `apply` shares: a run's `Options` and `Target`, and
//! what it returns (`StepOutcome` per step, `RunOutcome` per run).

use std::time::Duration;

use serde::Serialize;

use crate::backup::Backup;
use crate::check::{self, CheckResult, Verdict};
use crate::error::Error;
use crate::ledger;
use crate::locks::LockHold;

/// How a run treats timeouts and REVIEW verdicts.
#[derive(Debug, Clone)]
pub struct Options {
    /// `lock_timeout` for every migration and rollback (default 2s).
    pub lock_timeout: Duration,
    /// `statement_timeout`; `None` leaves the server's setting.
    pub statement_timeout: Option<Duration>,
    /// Retries after a lock timeout (SQLSTATE 55P03), with exponential
    /// backoff and jitter.
    pub lock_retries: u32,
    /// Continue past a phase whose verdict is REVIEW.
    pub accept_review: bool,
    pub run_id: String,
    /// A connection string for a second session that watches who blocks the
    /// migration, so a lock timeout names the blocker. `None`: no watcher.
    pub monitor_url: Option<String>,
    /// Back up the rows a rollback changes (docs/safety.md), and keep what an
    /// irreversible phase destroys before it runs; off with `--no-backup`.
    pub backup: bool,
    /// Refuse an irreversible phase whose kept data would exceed this many rows.
    pub max_backup_rows: u64,
    /// Before each batch of a batched backfill, wait while a streaming
    /// replica lags more than this ([`ReplicaGate`]); `None` (the default):
    /// never wait.
    pub max_replica_lag: Option<Duration>,
    /// A lock that blocks writers (SHARE or stronger) held longer than this
    /// makes the step's verdict REVIEW (a check named `max-lock-hold` at the
    /// statement's file and line). `None`: locks are recorded, not judged.
    pub max_lock_hold: Option<Duration>,
}

/// The default of [`Options::max_backup_rows`]: generous (ten million rows).
pub const DEFAULT_MAX_BACKUP_ROWS: u64 = 10_000_000;

impl Default for Options {
    fn default() -> Self {
        Options {
            lock_timeout: Duration::from_secs(2),
            statement_timeout: None,
            lock_retries: 5,
            accept_review: false,
            run_id: ledger::new_run_id(),
            monitor_url: None,
            backup: true,
            max_backup_rows: DEFAULT_MAX_BACKUP_ROWS,
            max_replica_lag: None,
            max_lock_hold: None,
        }
    }
}


/// Which migrations `migrate` applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Latest,
    /// Up to and including this phase.
    Phase(u32),
    /// Up to and including this version.
    Version(i32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Apply,
    Rollback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Committed.
    Done,
    /// A check said ROLLBACK: the step's transaction was rolled back.
    Aborted,
    /// An error: the step's transaction was rolled back.
    Failed,
    /// A baseline migration recorded as applied without running: the
    /// database already held its schema and its checks passed on it.
    Baselined,
}

impl StepStatus {
    /// The step's change is in the database (run, or there already).
    pub fn is_done(self) -> bool {
        matches!(self, StepStatus::Done | StepStatus::Baselined)
    }
}

/// What happened to one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepOutcome {
    pub version: i32,
    pub name: String,
    pub phase: u32,
    pub action: Action,
    pub status: StepStatus,
    /// When the step started, in milliseconds since the Unix epoch: steps
    /// of a run drawn on one time axis show the waits between them (a
    /// confirmation, keeping what an irreversible migration destroys).
    pub started_unix_ms: f64,
    pub duration_ms: f64,
    pub retries: u32,
    pub rows: Option<u64>,
    pub checks: Vec<CheckResult>,
    /// Rows a rollback saved before changing them (docs/safety.md).
    pub backups: Vec<Backup>,
    /// The relations each statement locked and for how long (docs/safety.md);
    /// empty when no observer session could connect (see `locks`).
    pub locks: Vec<LockHold>,
    pub error: Option<String>,
}

impl StepOutcome {
    /// The lock that blocked writers (or readers) longest, if any did.
    pub fn longest_blocking_lock(&self) -> Option<&LockHold> {
        crate::locks::longest_blocking(&self.locks)
    }
}

/// The result of a run: every step done before a failure is reported, and
/// the failure too.
#[derive(Debug, Default, Serialize)]
pub struct RunOutcome {
    pub steps: Vec<StepOutcome>,
    pub verdict: Option<Verdict>,
    /// The phase after which a REVIEW verdict stopped the run.
    pub stopped_for_review: Option<u32>,
    pub error: Option<String>,
    #[serde(skip)]
    pub failure: Option<Error>,
    /// What was kept before migrations of irreversible phases.
    pub kept: Vec<crate::backup::KeptStep>,
}

impl RunOutcome {
    pub fn checks(&self) -> impl Iterator<Item = &CheckResult> {
        self.steps.iter().flat_map(|s| s.checks.iter())
    }
    pub fn verdict(&self) -> Verdict {
        check::worst(self.checks())
    }
    /// A copy for reports (the error as text, not the error itself).
    pub fn summary(&self) -> RunOutcome {
        RunOutcome {
            steps: self.steps.clone(),
            verdict: self.verdict,
            stopped_for_review: self.stopped_for_review,
            error: self.error.clone(),
            failure: None,
            kept: self.kept.clone(),
        }
    }
    pub fn backups(&self) -> impl Iterator<Item = &Backup> {
        self.steps.iter().flat_map(|s| s.backups.iter())
    }
    pub(super) fn fail(mut self, e: Error) -> Self {
        self.error = Some(e.to_string());
        self.failure = Some(e);
        self.verdict = Some(self.verdict());
        self
    }
    pub(super) fn finish(mut self) -> Self {
        self.verdict = Some(self.verdict());
        self
    }
}
