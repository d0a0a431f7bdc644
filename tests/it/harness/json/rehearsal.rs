//! verify's rehearsal: each phase's result, steps, locks and findings.

use serde::Deserialize;

use super::Lock;

/// verify's rehearsal.
#[derive(Debug, Clone, Deserialize)]
pub struct Rehearsal {
    pub phases: Vec<PhaseRehearsal>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PhaseResult {
    #[serde(rename = "restored")]
    Restored,
    #[serde(rename = "mismatch")]
    Mismatch,
    #[serde(rename = "failed")]
    Failed,
    #[serde(rename = "forward only")]
    ForwardOnly,
    #[serde(rename = "not rehearsed")]
    NotRehearsed,
    #[serde(rename = "applied")]
    Applied,
}

/// The rehearsal of one phase.
#[derive(Debug, Clone, Deserialize)]
pub struct PhaseRehearsal {
    pub phase: u32,
    pub name: String,
    /// `verify --from`: the other tool's migration this phase is.
    pub origin: Option<Origin>,
    pub steps: Vec<RehearsalStep>,
    pub findings: Vec<Finding>,
    pub result: PhaseResult,
}

impl PhaseRehearsal {
    /// Its findings' kinds.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.findings.iter().map(Finding::kind).collect()
    }

    /// Its step called `name` (`migrate`, `rollback`, `re-apply`, ...).
    #[track_caller]
    pub fn step(&self, name: &str) -> &RehearsalStep {
        self.steps.iter().find(|s| s.step == name).unwrap_or_else(|| panic!("phase {} has no step {name}: {self:#?}", self.phase))
    }
}

/// Another tool's migration: its tool, its own label, where it starts.
#[derive(Debug, Clone, Deserialize)]
pub struct Origin {
    pub tool: String,
    pub id: String,
    pub line: usize,
}

/// One timed step of a phase's rehearsal.
#[derive(Debug, Clone, Deserialize)]
pub struct RehearsalStep {
    pub step: String,
    pub locks: Vec<Lock>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Against {
    BeforePhase,
    FirstForward,
}

impl Against {
    pub fn as_str(self) -> &'static str {
        match self {
            Against::BeforePhase => "before_phase",
            Against::FirstForward => "first_forward",
        }
    }
}

/// A difference the rehearsal found.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    SchemaDiffers { against: Against, objects: Vec<String> },
    ColumnOrderOnly { against: Against },
    FoldedConstant { against: Against },
    RowsChanged { against: Against, table: String, columns: Vec<String>, rows_before: i64, rows_after: i64 },
    RollbackFailed { error: String },
    ReapplyFailed { error: String },
    MigrateFailed { error: String },
    NoRollback {},
    LockHeld {},
    ProbeFailed { probe: String, after: String, state: u32, error: String, at: At },
}

/// A place in a file, as the document gives it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct At {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl Finding {
    /// Its `kind`, as the document names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Finding::SchemaDiffers { .. } => "schema_differs",
            Finding::ColumnOrderOnly { .. } => "column_order_only",
            Finding::FoldedConstant { .. } => "folded_constant",
            Finding::RowsChanged { .. } => "rows_changed",
            Finding::RollbackFailed { .. } => "rollback_failed",
            Finding::ReapplyFailed { .. } => "reapply_failed",
            Finding::MigrateFailed { .. } => "migrate_failed",
            Finding::NoRollback { .. } => "no_rollback",
            Finding::LockHeld { .. } => "lock_held",
            Finding::ProbeFailed { .. } => "probe_failed",
        }
    }

    /// The error of a failed rollback, re-apply or migrate.
    pub fn error(&self) -> Option<&str> {
        match self {
            Finding::RollbackFailed { error } | Finding::ReapplyFailed { error } | Finding::MigrateFailed { error } => Some(error),
            _ => None,
        }
    }

    /// What it was compared against, for the comparisons.
    pub fn against(&self) -> Option<Against> {
        match self {
            Finding::SchemaDiffers { against, .. }
            | Finding::ColumnOrderOnly { against }
            | Finding::FoldedConstant { against, .. }
            | Finding::RowsChanged { against, .. } => Some(*against),
            _ => None,
        }
    }
}
