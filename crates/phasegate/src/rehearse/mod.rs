//! The rehearsal behind `verify` (docs/verify.md). A *forward chain* (a database
//! of its own) applies every phase's forward files once, in order; each
//! phase is rehearsed where its failure cannot reach the chain (`chain`):
//!
//! * in a transaction that is rolled back (`steps`): the forward run is
//!   committed on the chain; then, in one more transaction, the rollback
//!   and (in a savepoint) the re-apply run, each compared with the state it
//!   must equal, and that transaction is rolled back. Used when every file
//!   of the phase runs in a transaction: it costs nothing beyond the SQL
//!   itself.
//! * on a clone: the forward is committed on the chain, the chain is cloned
//!   (`CREATE DATABASE ... TEMPLATE`, a file copy) and the rollback and
//!   re-apply run on the clone with `apply::rollback` / `apply::migrate`,
//!   exactly as in production (no-transaction files, batched backfills,
//!   backups). Used when a file must run outside a transaction.
//!
//! So a failing rollback, re-apply or check never stops the rehearsal or
//! taints a later phase: every phase is rehearsed, and only a forward file
//! that fails on the chain ends it (the later phases are then "not
//! rehearsed"). States are compared incrementally (`snapshot::observe`);
//! each difference is classified (`compare`) so the report says exactly
//! what a rollback failed to undo, and what is no defect at all.

mod chain;
mod compare;
mod probes;
mod record;
mod roles;
mod sides;
mod steps;
mod threaded;
mod vacuum;

use serde::Serialize;

use crate::check::{CheckResult, Verdict};
use crate::error::Location;
use crate::locks::{LockHold, LockMode};

pub use chain::rehearse;
pub use roles::created_by as roles_created_by;

#[derive(Debug, Clone)]
pub struct Options {
    /// Rehearse only this phase (earlier phases are applied without rehearsal).
    pub phase: Option<u32>,
    /// Treat a column-order-only difference (and time constants folded at
    /// creation) as a failure.
    pub strict: bool,
    /// `phasegate.seed_rows` for the seed files.
    pub seed_rows: Option<u64>,
    /// SQL run on the chain before the first phase, in order (`verify
    /// --setup FILE`, another tool's ledger table): part of the state every
    /// phase starts from. An error in one ends the rehearsal at its file
    /// and line.
    pub setup: Vec<crate::set::SqlFile>,
    /// Observe every state in full (`verify --full-compare`): each
    /// snapshot renders every object and hashes every table again, instead
    /// of re-reading only the objects whose catalog rows a step changed
    /// (and those depending on them). Slower on a large catalog; the
    /// default keeps one full snapshot as a check at the end of the run.
    pub full_compare: bool,
    pub apply: crate::apply::Options,
}

/// One timed step of a phase's rehearsal.
#[derive(Debug, Clone, Serialize)]
pub struct StepTiming {
    pub step: &'static str,
    /// When the step started, in ms since the rehearsal started (steps of
    /// a phase rehearsed on a clone overlap the next phases' on the chain).
    pub start_ms: f64,
    pub ms: f64,
    pub ok: bool,
    pub verdict: Option<Verdict>,
    /// The locks its statements took and how long each was held, each
    /// migration's ending with that migration (see `locks`); empty for
    /// steps that run no migration (snapshot, compare, seed).
    pub locks: Vec<LockHold>,
    /// The checks its migrations ran (each with its own `duration_ms`).
    pub checks: Vec<CheckResult>,
}

impl StepTiming {
    /// A step that runs no migration, started `start_ms` into the rehearsal.
    pub(crate) fn plain(step: &'static str, start_ms: f64, ms: f64, ok: bool, verdict: Option<Verdict>) -> StepTiming {
        StepTiming { step, start_ms, ms, ok, verdict, locks: Vec::new(), checks: Vec::new() }
    }

    /// The lock that blocked writers (or readers) longest, if any did.
    pub fn longest_blocking_lock(&self) -> Option<&LockHold> {
        crate::locks::longest_blocking(&self.locks)
    }
}

/// A difference the rehearsal found, classified.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// The schema after rollback (or re-apply) differs from the reference.
    SchemaDiffers { against: Against, objects: Vec<String>, diff: String },
    /// Only column positions differ: a warning unless `--strict`.
    ColumnOrderOnly { against: Against, diff: String },
    /// Only date and time constants differ, in definitions where
    /// PostgreSQL folds them when the object is created (`'now'::timestamp`
    /// in a view, a default, a function): every re-creation differs. A
    /// warning unless `--strict`.
    FoldedConstant { against: Against, objects: Vec<String>, diff: String },
    /// Rows of a table that existed before differ in these columns.
    RowsChanged { against: Against, table: String, columns: Vec<String>, rows_before: i64, rows_after: i64 },
    /// The rollback raised an error (file and line in the message, and in
    /// `at` when the error is about a place of a file).
    RollbackFailed {
        error: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        at: Option<Location>,
    },
    /// Applying the phase again after its rollback raised an error.
    ReapplyFailed {
        error: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        at: Option<Location>,
    },
    /// The forward migration raised an error or a check said ROLLBACK.
    MigrateFailed {
        error: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        at: Option<Location>,
    },
    /// The phase has no rollback (irreversible, or no down script): it is
    /// applied forward only and reported, never skipped silently.
    NoRollback { reason: String },
    /// A lock that blocks writers (SHARE or stronger) or readers was held
    /// longer than the limit (`max_lock_hold`) by the statement at `at`,
    /// in the rehearsal's `step` (migrate or rollback): REVIEW.
    LockHeld { step: String, relation: String, mode: LockMode, held_ms: f64, limit_ms: f64, statement: String, at: Location },
    /// A probe file (docs/probes.md) failed in a state where phases.toml
    /// says it must work: the state after phase `state`, left by the
    /// phase's `after` run (`migrate`, `rollback` or `re-apply`). `at` is
    /// the failing statement's line (and the column PostgreSQL reported).
    /// ROLLBACK: an application version breaks there.
    ProbeFailed {
        probe: String,
        after: String,
        state: u32,
        error: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        sqlstate: Option<String>,
        at: Location,
    },
}

/// Which snapshot a comparison was against.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Against {
    /// The state before the phase (after its rollback).
    BeforePhase,
    /// The state after the first forward run (after re-applying).
    FirstForward,
}

impl Finding {
    /// The file, line and column a failure is about, when it is about one.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Finding::RollbackFailed { at, .. } | Finding::ReapplyFailed { at, .. } | Finding::MigrateFailed { at, .. } => at.as_ref(),
            Finding::LockHeld { at, .. } | Finding::ProbeFailed { at, .. } => Some(at),
            _ => None,
        }
    }

    /// Whether this finding means a rollback does not restore the prior state.
    pub fn is_mismatch(&self, strict: bool) -> bool {
        match self {
            Finding::ColumnOrderOnly { .. } | Finding::FoldedConstant { .. } => strict,
            // Rows that differ between the first run and the re-run of a
            // phase (now() defaults, sequences) are not a rollback failing
            // to restore anything: reported, and failing only with --strict.
            Finding::RowsChanged { against: Against::FirstForward, .. } => strict,
            Finding::NoRollback { .. } | Finding::MigrateFailed { .. } | Finding::LockHeld { .. } | Finding::ProbeFailed { .. } => false,
            _ => true,
        }
    }

    /// Whether this finding fails verify: a rollback that does not restore
    /// the prior state, a forward migration that failed, or a probe that
    /// failed where it must work.
    pub fn fails(&self, strict: bool) -> bool {
        self.is_mismatch(strict) || matches!(self, Finding::MigrateFailed { .. } | Finding::ProbeFailed { .. })
    }

    /// One line for the report.
    pub fn summary(&self) -> String {
        let against = |a: &Against| match a {
            Against::BeforePhase => "after rollback, compared with before the phase",
            Against::FirstForward => "after re-apply, compared with the first forward run",
        };
        match self {
            Finding::SchemaDiffers { against: a, objects, .. } => format!("schema differs ({}): {}", against(a), objects.join(", ")),
            Finding::ColumnOrderOnly { against: a, .. } => format!("column order only ({})", against(a)),
            Finding::FoldedConstant { against: a, objects, .. } => {
                format!("only time constants folded at creation differ ({}): {}", against(a), objects.join(", "))
            }
            Finding::RowsChanged { against: a, table, columns, rows_before, rows_after } => {
                let count = if rows_before != rows_after { format!("{rows_before} -> {rows_after} rows, ") } else { String::new() };
                format!("rows changed in {table} ({}): {count}columns {}", against(a), columns.join(", "))
            }
            Finding::RollbackFailed { error, .. } => format!("rollback failed: {error}"),
            Finding::ReapplyFailed { error, .. } => format!("re-apply failed: {error}"),
            Finding::MigrateFailed { error, .. } => format!("migrate failed: {error}"),
            Finding::NoRollback { reason } => format!("no rollback: {reason}"),
            Finding::LockHeld { step, relation, mode, held_ms, limit_ms, statement, at } => format!(
                "lock held too long ({step}): {relation} {mode} for {} (limit {}) by `{statement}` at {at}",
                crate::locks::fmt_held(*held_ms),
                crate::locks::fmt_held(*limit_ms)
            ),
            Finding::ProbeFailed { probe, after, state, error, at, .. } => {
                format!("probe {probe} fails after {after} (the state after phase {state}) at {at}: {error}")
            }
        }
    }

    /// The unified diff a schema finding carries.
    pub fn diff(&self) -> Option<&str> {
        match self {
            Finding::SchemaDiffers { diff, .. } | Finding::ColumnOrderOnly { diff, .. } | Finding::FoldedConstant { diff, .. } => Some(diff),
            _ => None,
        }
    }
}

/// What the rehearsal of a phase concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PhaseResult {
    /// Rolled back to the exact prior state and re-applied.
    #[serde(rename = "restored")]
    Restored,
    /// The rollback or the re-apply failed, or left a difference.
    #[serde(rename = "mismatch")]
    Mismatch,
    /// The forward migration failed on the chain (the rehearsal ends here).
    #[serde(rename = "failed")]
    Failed,
    /// Irreversible (or no down script): applied forward only.
    #[serde(rename = "forward only")]
    ForwardOnly,
    /// Never reached: an earlier forward migration failed.
    #[serde(rename = "not rehearsed")]
    NotRehearsed,
    /// Applied without rehearsal (before the phase `--phase` selects).
    #[serde(rename = "applied")]
    Applied,
}

impl PhaseResult {
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseResult::Restored => "restored",
            PhaseResult::Mismatch => "mismatch",
            PhaseResult::Failed => "failed",
            PhaseResult::ForwardOnly => "forward only",
            PhaseResult::NotRehearsed => "not rehearsed",
            PhaseResult::Applied => "applied",
        }
    }
}

/// Where a phase's rollback and re-apply ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// In a transaction of the chain's, rolled back afterwards.
    Transaction,
    /// On a clone of the chain made after the forward run.
    Clone,
    /// Nowhere: the phase was only applied (or not reached).
    None,
}

/// The rehearsal of one phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseRehearsal {
    pub phase: u32,
    pub name: String,
    /// Another tool's migration this phase is (`verify --from`): its tool,
    /// label, file and line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<crate::foreign::Origin>,
    pub reversible: bool,
    pub steps: Vec<StepTiming>,
    pub findings: Vec<Finding>,
    /// The worst check verdict of the phase's runs.
    pub verdict: Verdict,
    pub result: PhaseResult,
    pub isolation: Isolation,
    /// Time spent making the clone (clone isolation only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clone_ms: Option<f64>,
    pub ms: f64,
}

/// How many phases ended how.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub restored: usize,
    pub mismatch: usize,
    pub failed: usize,
    pub forward_only: usize,
    pub not_rehearsed: usize,
    pub applied: usize,
}

impl Summary {
    fn of(phases: &[PhaseRehearsal]) -> Summary {
        let mut s = Summary::default();
        for p in phases {
            *match p.result {
                PhaseResult::Restored => &mut s.restored,
                PhaseResult::Mismatch => &mut s.mismatch,
                PhaseResult::Failed => &mut s.failed,
                PhaseResult::ForwardOnly => &mut s.forward_only,
                PhaseResult::NotRehearsed => &mut s.not_rehearsed,
                PhaseResult::Applied => &mut s.applied,
            } += 1;
        }
        s
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Rehearsal {
    pub phases: Vec<PhaseRehearsal>,
    pub summary: Summary,
    pub strict: bool,
    pub ms: f64,
}

impl Rehearsal {
    pub fn mismatch(&self) -> bool {
        self.phases.iter().any(|p| p.findings.iter().any(|f| f.is_mismatch(self.strict)))
    }
    pub fn verdict(&self) -> Verdict {
        self.phases.iter().map(|p| p.verdict).max().unwrap_or(Verdict::Proceed)
    }
    /// Whether a forward migration failed (an error, or a check said ROLLBACK).
    pub fn migrate_failed(&self) -> bool {
        self.phases.iter().any(|p| p.findings.iter().any(|f| matches!(f, Finding::MigrateFailed { .. })))
    }
    /// How many times a probe failed where it must work.
    pub fn probes_failed(&self) -> usize {
        self.phases.iter().flat_map(|p| &p.findings).filter(|f| matches!(f, Finding::ProbeFailed { .. })).count()
    }
}
