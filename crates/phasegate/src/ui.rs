//! What the engine asks of whoever drives it: confirmations, and a place to
//! say what it is doing. The engine never prints or draws; the caller (the
//! CLI, a test, an adopter's tool) decides what a line, a check result or a
//! backfill's progress looks like.

use std::fmt;
use std::time::Duration;

use crate::check::CheckResult;

/// The progress of a batched backfill (forward or rollback), for a bar.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchProgress<'a> {
    /// The walk starts: `total` rows remain to do when they can be counted,
    /// `done` were done by an earlier, interrupted run.
    Started { version: i32, label: &'a str, total: Option<u64>, done: u64 },
    /// A batch committed `rows` more rows: it asked for `size` (fixed by
    /// `batch N`, or sized by time) and held its row locks for `took`.
    Advanced { version: i32, rows: u64, size: u64, took: Duration },
    /// The next batch waits: `replica` (the one lagging most) lags `lag`,
    /// more than `limit`. Sent at every poll while the wait lasts.
    Waiting { version: i32, replica: &'a str, lag: ReplicaLag, limit: Duration },
    /// The wait is over after `waited`; the next batch runs.
    Waited { version: i32, waited: Duration },
    /// The walk is over (finished, or stopped by an error).
    Finished { version: i32 },
}

/// How far behind a replica is, as far as the samples tell (measured by
/// `apply/replica.rs`; here because a `BatchProgress::Waiting` carries it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaLag {
    /// The replica has not replayed what the primary had written this long
    /// ago (or PostgreSQL's `replay_lag` said as much).
    pub at_least: Duration,
    /// The replica has replayed everything the primary had written this long
    /// ago; `None` while it has replayed none of the sampled positions.
    pub at_most: Option<Duration>,
}

impl ReplicaLag {
    /// Whether a batch must wait for this replica: its lag is not known to
    /// be within `limit`.
    pub fn over(&self, limit: Duration) -> bool {
        self.at_most.is_none_or(|m| m > limit)
    }
}

impl fmt::Display for ReplicaLag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at_most {
            Some(m) => write!(f, "{:.1}s", m.as_secs_f64()),
            None if self.at_least < Duration::from_millis(100) => write!(f, "not measured yet"),
            None => write!(f, "at least {:.1}s", self.at_least.as_secs_f64()),
        }
    }
}

pub trait Ui {
    /// Asks the operator to type `expected`; true when they did.
    fn confirm(&mut self, prompt: &str, expected: &str) -> bool;
    /// A line of progress for humans.
    fn progress(&mut self, line: &str);
    /// A check ran; by default nothing is shown (the caller renders the
    /// results it gets back).
    fn check_done(&mut self, result: &CheckResult) {
        let _ = result;
    }
    /// A batched backfill moved; by default nothing is drawn.
    fn batch(&mut self, progress: BatchProgress<'_>) {
        let _ = progress;
    }
}

/// A `Ui` that says nothing and confirms nothing.
pub struct Quiet;

impl Ui for Quiet {
    fn confirm(&mut self, _prompt: &str, _expected: &str) -> bool {
        false
    }
    fn progress(&mut self, _line: &str) {}
}

/// A `Ui` that confirms everything (rehearsals on disposable databases) and
/// passes the rest on to another.
pub struct Confirming<'a> {
    pub inner: &'a mut dyn Ui,
}

impl Ui for Confirming<'_> {
    fn confirm(&mut self, _prompt: &str, _expected: &str) -> bool {
        true
    }
    fn progress(&mut self, line: &str) {
        self.inner.progress(line);
    }
    fn check_done(&mut self, result: &CheckResult) {
        self.inner.check_done(result);
    }
    fn batch(&mut self, progress: BatchProgress<'_>) {
        self.inner.batch(progress);
    }
}
