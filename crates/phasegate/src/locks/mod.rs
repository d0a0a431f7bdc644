//! Lock tracing (docs/safety.md): which relations each statement of a migration,
//! rollback or rehearsal locked in which mode, and how long each lock was
//! held, so a lock that blocks the application (SHARE and stronger block
//! writers, ACCESS EXCLUSIVE readers too) is measured, not guessed.
//!
//! **Method.** A second session (the *observer*, `trace::Tracer`) reads
//! `pg_locks` for the migrating session's backend pid (granted relation
//! locks, joined to `pg_class` for the name):
//!
//! * inside a transaction, once after each statement. A lock first seen
//!   after statement S is attributed to S and taken at the latest when S
//!   started; it is held until the transaction ends (commit or rollback), so
//!   `held_ms` = end of the transaction − start of S. In verify's
//!   rehearsal, where a phase's migrations share one transaction, a
//!   migration's locks end with that migration (its checks included), as
//!   they would in `migrate`, where each migration commits on its own.
//! * outside a transaction (`no-transaction` files), every lock is released
//!   when its statement returns: the observer samples `pg_locks` every
//!   [`trace::SAMPLE_EVERY`] while the statement runs, and each lock seen
//!   is held for the statement's duration.
//!
//! **Resolution.** Inside a transaction: one statement. `held_ms` is an
//! upper bound that includes the statement's own wait for the lock and,
//! for a lock taken late in a long statement, the part of the statement
//! before it; nothing held is missed. Outside one: a lock held less than
//! the sampling interval may not be seen at all (it was then held for less
//! than that interval), and a lock that is seen counts for the whole
//! statement.
//!
//! **What is left out.** Locks on relations the migrating transaction
//! created itself: the observer's snapshot cannot see their `pg_class` rows
//! until commit, and nobody else can wait for a relation they cannot see.
//! Catalogs, TOAST and temporary relations, and phasegate's own ledger
//! tables. Only the strongest new mode per relation and statement is
//! recorded, and a lock an earlier statement of the same transaction
//! already holds in the same or a stronger mode is not attributed again.
//! PostgreSQL lists a lock once per transaction and mode, so in the
//! rehearsal's shared transaction a later migration that takes a mode an
//! earlier one of the same transaction already holds shows nothing for it.

pub(crate) mod trace;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::error::Location;

/// The name of the REVIEW check a lock held longer than
/// `apply::Options::max_lock_hold` gets.
pub const MAX_LOCK_HOLD_CHECK: &str = "max-lock-hold";

/// PostgreSQL's table lock modes, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum LockMode {
    #[serde(rename = "ACCESS SHARE")]
    AccessShare,
    #[serde(rename = "ROW SHARE")]
    RowShare,
    #[serde(rename = "ROW EXCLUSIVE")]
    RowExclusive,
    #[serde(rename = "SHARE UPDATE EXCLUSIVE")]
    ShareUpdateExclusive,
    #[serde(rename = "SHARE")]
    Share,
    #[serde(rename = "SHARE ROW EXCLUSIVE")]
    ShareRowExclusive,
    #[serde(rename = "EXCLUSIVE")]
    Exclusive,
    #[serde(rename = "ACCESS EXCLUSIVE")]
    AccessExclusive,
}

impl LockMode {
    /// The mode as `pg_locks.mode` names it (`AccessExclusiveLock`).
    pub fn from_pg(mode: &str) -> Option<LockMode> {
        Some(match mode {
            "AccessShareLock" => LockMode::AccessShare,
            "RowShareLock" => LockMode::RowShare,
            "RowExclusiveLock" => LockMode::RowExclusive,
            "ShareUpdateExclusiveLock" => LockMode::ShareUpdateExclusive,
            "ShareLock" => LockMode::Share,
            "ShareRowExclusiveLock" => LockMode::ShareRowExclusive,
            "ExclusiveLock" => LockMode::Exclusive,
            "AccessExclusiveLock" => LockMode::AccessExclusive,
            _ => return None,
        })
    }

    /// The mode as `LOCK TABLE` and the documentation name it.
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::AccessShare => "ACCESS SHARE",
            LockMode::RowShare => "ROW SHARE",
            LockMode::RowExclusive => "ROW EXCLUSIVE",
            LockMode::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            LockMode::Share => "SHARE",
            LockMode::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            LockMode::Exclusive => "EXCLUSIVE",
            LockMode::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// Whom the mode keeps waiting: SHARE and stronger conflict with the
    /// ROW EXCLUSIVE every INSERT, UPDATE and DELETE takes; ACCESS
    /// EXCLUSIVE also with the ACCESS SHARE of a plain SELECT.
    pub fn blocks(self) -> Blocks {
        match self {
            LockMode::AccessExclusive => Blocks::Readers,
            m if m >= LockMode::Share => Blocks::Writers,
            _ => Blocks::None,
        }
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whom a lock keeps waiting (readers means writers too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Blocks {
    None,
    Writers,
    Readers,
}

/// One lock a statement took, and how long it was held.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LockHold {
    /// The statement's first line, trimmed (at most about 80 characters).
    pub statement: String,
    #[serde(serialize_with = "crate::error::serialize_display_path")]
    pub file: PathBuf,
    pub line: usize,
    /// `reservations`, or `schema.table` outside `public`.
    pub relation: String,
    pub mode: LockMode,
    /// From the statement's start to the end of its transaction (outside
    /// a transaction: the statement's duration).
    pub held_ms: f64,
    pub blocks: Blocks,
}

impl LockHold {
    /// Whether it keeps writers (or readers) waiting.
    pub fn is_blocking(&self) -> bool {
        self.blocks != Blocks::None
    }

    /// The statement's file and line.
    pub fn at(&self) -> Location {
        Location::line(&self.file, self.line)
    }

    /// `reservations ACCESS EXCLUSIVE 3 ms`.
    pub fn summary(&self) -> String {
        format!("{} {} {}", self.relation, self.mode, fmt_held(self.held_ms))
    }
}

/// `0.4 ms` under 10 ms, else whole milliseconds.
pub(crate) fn fmt_held(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// The blocking lock held longest (on a tie the stronger mode, then the
/// first), if any lock blocked anyone.
pub fn longest_blocking(holds: &[LockHold]) -> Option<&LockHold> {
    let mut best: Option<&LockHold> = None;
    for h in holds.iter().filter(|h| h.is_blocking()) {
        if best.is_none_or(|b| (h.held_ms, h.mode) > (b.held_ms, b.mode)) {
            best = Some(h);
        }
    }
    best
}

/// The blocking locks held longer than `limit`: of each statement, the
/// one [`longest_blocking`] picks (a `DROP INDEX` locks the table and the
/// index; it is one statement to review), in statement order.
pub(crate) fn over_limit(holds: &[LockHold], limit: Duration) -> Vec<&LockHold> {
    let ms = limit.as_secs_f64() * 1000.0;
    let mut out: Vec<&LockHold> = Vec::new();
    for h in holds.iter().filter(|h| h.is_blocking() && h.held_ms > ms) {
        match out.iter_mut().find(|o| o.file == h.file && o.line == h.line) {
            Some(o) if (h.held_ms, h.mode) > (o.held_ms, o.mode) => *o = h,
            Some(_) => {}
            None => out.push(h),
        }
    }
    out
}

/// The longest of each statement's locks, one entry per statement,
/// relation and mode (a batched backfill runs its statement once per batch,
/// a retried step its statements once per attempt), in first-seen order.
pub(crate) fn merge(holds: Vec<LockHold>) -> Vec<LockHold> {
    let mut out: Vec<LockHold> = Vec::new();
    for h in holds {
        match out.iter_mut().find(|o| o.file == h.file && o.line == h.line && o.relation == h.relation && o.mode == h.mode) {
            Some(o) => o.held_ms = o.held_ms.max(h.held_ms),
            None => out.push(h),
        }
    }
    out
}

/// The statement a lock is attributed to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Source {
    pub statement: String,
    pub file: PathBuf,
    pub line: usize,
}

/// How much of a statement's first line a hold keeps.
const STATEMENT_CHARS: usize = 80;

impl Source {
    /// A statement of a file: its first line, trimmed and shortened.
    pub fn new(file: &Path, sql: &str, line: usize) -> Source {
        let first = sql.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
        let statement = if first.chars().count() > STATEMENT_CHARS { first.chars().take(STATEMENT_CHARS - 1).collect::<String>() + "…" } else { first.to_string() };
        Source { statement, file: file.to_path_buf(), line }
    }

    /// A hold of this statement's (in hundredths of a millisecond: the
    /// method's resolution is far coarser).
    fn hold(&self, relation: String, mode: LockMode, held_ms: f64) -> LockHold {
        let held_ms = (held_ms * 100.0).round() / 100.0;
        LockHold { statement: self.statement.clone(), file: self.file.clone(), line: self.line, relation, mode, held_ms, blocks: mode.blocks() }
    }
}

/// A relation lock as `pg_locks` shows it: (relation, mode).
pub(crate) type Seen = (String, LockMode);

/// The strongest mode of each relation, in first-seen order.
fn strongest(seen: impl IntoIterator<Item = Seen>) -> Vec<Seen> {
    let mut out: Vec<Seen> = Vec::new();
    for (rel, mode) in seen {
        match out.iter_mut().find(|(r, _)| *r == rel) {
            Some((_, m)) => *m = (*m).max(mode),
            None => out.push((rel, mode)),
        }
    }
    out
}

/// A lock attributed to a statement, held since it started.
#[derive(Debug, Clone)]
struct Taken {
    source: Source,
    relation: String,
    mode: LockMode,
    since_ms: f64,
}

/// The attribution of one transaction's locks to its statements (pure:
/// times are milliseconds on the tracer's clock).
#[derive(Debug, Default)]
pub(crate) struct Unit {
    /// Every (relation, mode) seen so far, including what was held before
    /// the first statement (by checks, or earlier migrations of a
    /// rehearsal's transaction).
    known: BTreeSet<Seen>,
    taken: Vec<Taken>,
}

impl Unit {
    /// A transaction in which `held` is held before the first statement.
    pub fn new(held: impl IntoIterator<Item = Seen>) -> Unit {
        Unit { known: held.into_iter().collect(), taken: Vec::new() }
    }

    /// What `pg_locks` showed after `source`, which started at `since_ms`.
    pub fn after(&mut self, source: &Source, since_ms: f64, seen: Vec<Seen>) {
        let new: Vec<Seen> = seen.iter().filter(|s| !self.known.contains(*s)).cloned().collect();
        self.known.extend(seen);
        for (relation, mode) in strongest(new) {
            if self.taken.iter().any(|t| t.relation == relation && t.mode >= mode) {
                continue;
            }
            self.taken.push(Taken { source: source.clone(), relation, mode, since_ms });
        }
    }

    /// The transaction ended at `end_ms`: every lock is released.
    pub fn end(self, end_ms: f64) -> Vec<LockHold> {
        self.taken.into_iter().map(|t| t.source.hold(t.relation, t.mode, (end_ms - t.since_ms).max(0.0))).collect()
    }
}

/// The locks sampled while `source` ran outside a transaction for `ms`.
pub(crate) fn outside(source: &Source, seen: impl IntoIterator<Item = Seen>, ms: f64) -> Vec<LockHold> {
    strongest(seen).into_iter().map(|(rel, mode)| source.hold(rel, mode, ms)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use LockMode::*;

    fn seen(list: &[(&str, LockMode)]) -> Vec<Seen> {
        list.iter().map(|(r, m)| (r.to_string(), *m)).collect()
    }

    fn src(line: usize) -> Source {
        Source::new(Path::new("migrations/V5__x.sql"), &format!("STATEMENT {line}\n  more"), line)
    }

    fn brief(holds: &[LockHold]) -> Vec<(usize, String, LockMode, f64)> {
        holds.iter().map(|h| (h.line, h.relation.clone(), h.mode, h.held_ms)).collect()
    }

    #[test]
    fn locks_are_attributed_to_the_statement_after_which_they_appear_and_held_until_the_end() {
        // A check read reservations before the first statement.
        let mut u = Unit::new(seen(&[("reservations", AccessShare)]));
        // Statement 1 (from t=10): ALTER TABLE reservations, which also reads services.
        u.after(&src(1), 10.0, seen(&[("reservations", AccessShare), ("reservations", AccessExclusive), ("services", AccessShare)]));
        // Statement 2 (from t=40): CREATE TRIGGER on reservations (already held stronger) and an UPDATE of flags.
        u.after(&src(2), 40.0, seen(&[("reservations", AccessShare), ("reservations", AccessExclusive), ("reservations", ShareRowExclusive), ("services", AccessShare), ("flags", RowExclusive), ("flags", AccessShare)]));
        // Statement 3 (from t=50) takes nothing new.
        u.after(&src(3), 50.0, seen(&[("reservations", AccessExclusive)]));
        let holds = u.end(100.0);
        assert_eq!(
            brief(&holds),
            [(1, "reservations".into(), AccessExclusive, 90.0), (1, "services".into(), AccessShare, 90.0), (2, "flags".into(), RowExclusive, 60.0)]
        );
        assert_eq!(holds[0].statement, "STATEMENT 1");
        assert_eq!(holds[0].blocks, Blocks::Readers);
        assert_eq!(holds[2].blocks, Blocks::None);
    }

    #[test]
    fn a_stronger_mode_later_is_a_lock_of_its_own_and_a_carried_lock_is_attributed_anew_in_another_mode() {
        // An earlier migration of the same rehearsal transaction holds SHARE ROW EXCLUSIVE.
        let mut u = Unit::new(seen(&[("t", ShareRowExclusive)]));
        u.after(&src(1), 0.0, seen(&[("t", ShareRowExclusive), ("t", RowExclusive)]));
        u.after(&src(2), 5.0, seen(&[("t", ShareRowExclusive), ("t", RowExclusive), ("t", Share)]));
        u.after(&src(3), 7.0, seen(&[("t", ShareRowExclusive), ("t", RowExclusive), ("t", Share), ("t", AccessExclusive)]));
        assert_eq!(brief(&u.end(8.0)), [(1, "t".into(), RowExclusive, 8.0), (2, "t".into(), Share, 3.0), (3, "t".into(), AccessExclusive, 1.0)]);
    }

    #[test]
    fn outside_a_transaction_each_relation_counts_once_for_the_statement() {
        let holds = outside(&src(4), seen(&[("t", ShareUpdateExclusive), ("t_idx", AccessShare), ("t", AccessShare)]), 120.0);
        assert_eq!(brief(&holds), [(4, "t".into(), ShareUpdateExclusive, 120.0), (4, "t_idx".into(), AccessShare, 120.0)]);
        assert!(!holds[0].is_blocking());
    }

    #[test]
    fn batches_merge_into_their_longest_hold_and_the_longest_blocking_lock_wins() {
        let mut all = Vec::new();
        for (i, end) in [3.0, 9.0, 4.0].into_iter().enumerate() {
            let mut u = Unit::new([]);
            u.after(&src(2), i as f64 * 10.0, seen(&[("t", RowExclusive), ("t", ShareRowExclusive)]));
            all.extend(u.end(i as f64 * 10.0 + end));
        }
        let merged = merge(all);
        assert_eq!(brief(&merged), [(2, "t".into(), ShareRowExclusive, 9.0)]);
        let mut holds = merged.clone();
        holds.push(src(7).hold("u".into(), AccessExclusive, 9.0));
        holds.push(src(8).hold("v".into(), RowExclusive, 500.0));
        let longest = longest_blocking(&holds).unwrap();
        assert_eq!((longest.relation.as_str(), longest.mode), ("u", AccessExclusive), "a tie goes to the stronger mode; ROW EXCLUSIVE blocks nobody");
        assert_eq!(longest.summary(), "u ACCESS EXCLUSIVE 9.0 ms");
        assert_eq!(over_limit(&holds, Duration::from_millis(5)).len(), 2);
        assert!(over_limit(&holds, Duration::from_millis(9)).is_empty());
        // One statement locking a table and its index is one to review.
        holds.push(src(7).hold("u_idx".into(), AccessExclusive, 9.0));
        let over: Vec<&str> = over_limit(&holds, Duration::from_millis(5)).iter().map(|h| h.relation.as_str()).collect();
        assert_eq!(over, ["t", "u"]);
    }

    #[test]
    fn modes_read_from_pg_locks_and_whom_they_block() {
        assert_eq!(LockMode::from_pg("ShareRowExclusiveLock"), Some(ShareRowExclusive));
        assert_eq!(LockMode::from_pg("SIReadLock"), None);
        assert_eq!(ShareUpdateExclusive.blocks(), Blocks::None);
        assert_eq!(Share.blocks(), Blocks::Writers);
        assert_eq!(Exclusive.blocks(), Blocks::Writers);
        assert_eq!(serde_json::to_value(AccessExclusive).unwrap(), "ACCESS EXCLUSIVE");
        let long = Source::new(Path::new("f.sql"), &format!("\n  CREATE INDEX {} ON t (x);", "i".repeat(100)), 2);
        assert_eq!(long.statement.chars().count(), STATEMENT_CHARS);
        assert!(long.statement.starts_with("CREATE INDEX iii") && long.statement.ends_with('…'));
    }
}
