//! What the engine asks of whoever drives it: confirmations, and a place to
//! say what it is doing. The engine never prints or draws; the caller (the
//! CLI, a test, an adopter's tool) decides what a line, a check result or a
//! backfill's progress looks like.

use std::time::Duration;

use crate::apply::ReplicaLag;
use crate::check::CheckResult;
use crate::fleet::Event as FleetEvent;

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
    /// A fleet run moved (a group or a database started or finished, a
    /// database said a line); always on the thread that called the fleet
    /// run. By default nothing is shown.
    fn fleet(&mut self, event: FleetEvent<'_>) {
        let _ = event;
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
    fn fleet(&mut self, event: FleetEvent<'_>) {
        self.inner.fleet(event);
    }
}
