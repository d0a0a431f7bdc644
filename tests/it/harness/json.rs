//! Typed readers for the JSON documents the CLI prints (`--format json`):
//! [`Report`], the document every command prints, with its [`Step`]s,
//! [`Check`]s and the command's own parts (a fleet run, a rehearsal, the
//! phases of `status`, the runs of `history`). They mirror what the CLI
//! serialises, so a renamed or retyped field fails here, once, instead of
//! as a `null` compared in a test. Fields no test reads are left out;
//! everything else of a document stays in [`Report::rest`].

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// A JSON `null` as the type's default (a command without steps prints
/// `"steps": null`).
fn or_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    Proceed,
    Review,
    Rollback,
}

/// The document every command prints with `--format json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Report {
    pub command: String,
    pub run_id: String,
    pub verdict: Option<Verdict>,
    pub exit_code: i32,
    pub error: Option<String>,
    #[serde(default, deserialize_with = "or_default")]
    pub steps: Vec<Step>,
    #[serde(default, deserialize_with = "or_default")]
    pub checks: Vec<Check>,
    /// migrate: the phase after which a REVIEW stopped the run.
    #[serde(default)]
    pub stopped_for_review: Option<u32>,
    /// `--fleet`: the fleet run.
    #[serde(default)]
    pub fleet: Option<Fleet>,
    /// verify: the rehearsal.
    #[serde(default)]
    pub rehearsal: Option<Rehearsal>,
    /// The command's other fields.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl Report {
    /// The step of migration `version`.
    #[track_caller]
    pub fn step(&self, version: i32) -> &Step {
        self.steps.iter().find(|s| s.version == version).unwrap_or_else(|| panic!("no V{version} in {self:#?}"))
    }

    /// The fleet run of a `--fleet` command.
    #[track_caller]
    pub fn fleet(&self) -> &Fleet {
        self.fleet.as_ref().unwrap_or_else(|| panic!("no fleet run in {self:#?}"))
    }

    /// verify's rehearsal.
    #[track_caller]
    pub fn rehearsal(&self) -> &Rehearsal {
        self.rehearsal.as_ref().unwrap_or_else(|| panic!("no rehearsal in {self:#?}"))
    }

    /// `status`: each phase's state.
    #[track_caller]
    pub fn phases(&self) -> Vec<PhaseStatus> {
        self.part("phases")
    }

    /// `status`: where the ledger and the files disagree.
    #[track_caller]
    pub fn drift(&self) -> Vec<Value> {
        self.part("drift")
    }

    /// `history`: the audit log, newest last.
    #[track_caller]
    pub fn runs(&self) -> Vec<AuditRun> {
        self.part("runs")
    }

    /// The command's own field `key`, as `T`.
    #[track_caller]
    pub fn part<T: serde::de::DeserializeOwned>(&self, key: &str) -> T {
        let value = self.rest.get(key).unwrap_or_else(|| panic!("no {key} in {self:#?}"));
        serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{key}: {e}: {value:#}"))
    }

    /// The log file of this run (found by its `run_id`).
    pub fn log(&self) -> String {
        super::log_of_run(&self.run_id)
    }
}

/// A command's JSON document as a [`Report`]: the report itself, or the
/// untyped `serde_json::Value` (`Output::json`) of tests that read it so.
pub trait AsReport {
    fn as_report(&self) -> Cow<'_, Report>;
}

impl AsReport for Report {
    fn as_report(&self) -> Cow<'_, Report> {
        Cow::Borrowed(self)
    }
}

impl AsReport for Value {
    #[track_caller]
    fn as_report(&self) -> Cow<'_, Report> {
        Cow::Owned(serde_json::from_value(self.clone()).unwrap_or_else(|e| panic!("not a command's JSON document ({e}): {self:#}")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Done,
    Aborted,
    Failed,
}

/// One migration applied or rolled back.
#[derive(Debug, Clone, Deserialize)]
pub struct Step {
    pub version: i32,
    pub name: String,
    pub phase: u32,
    /// `apply` or `rollback`.
    pub action: String,
    pub status: StepStatus,
    pub retries: u32,
    /// A batched file's rows.
    pub rows: Option<u64>,
    pub checks: Vec<Check>,
    pub backups: Vec<Backup>,
    pub locks: Vec<Lock>,
    pub error: Option<String>,
}

/// One check's result.
#[derive(Debug, Clone, Deserialize)]
pub struct Check {
    pub version: i32,
    pub check: String,
    /// `before-migrate`, `after-migrate`, `before-rollback`, `after-rollback`.
    pub when: String,
    /// `critical` or `warning`.
    pub severity: String,
    pub verdict: Verdict,
    /// A metric's value, an assertion's offending rows; `None` when a
    /// metric had nothing to measure.
    pub value: Option<f64>,
    pub empty: bool,
    pub threshold: String,
    pub evidence: Vec<Value>,
    pub file: String,
    pub line: usize,
}

impl Check {
    /// `V<version> <check>`.
    pub fn label(&self) -> String {
        format!("V{} {}", self.version, self.check)
    }
}

/// The rows a rollback backed up.
#[derive(Debug, Clone, Deserialize)]
pub struct Backup {
    pub table: String,
    pub backup_table: String,
    /// `rows` or `columns`.
    pub kind: String,
    pub changes: Vec<String>,
    pub columns: Vec<String>,
    pub rows: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Blocks {
    None,
    Writers,
    Readers,
}

/// A lock a statement took and how long it was held.
#[derive(Debug, Clone, Deserialize)]
pub struct Lock {
    pub statement: String,
    pub file: String,
    pub line: usize,
    pub relation: String,
    /// `SHARE`, `ACCESS EXCLUSIVE`, ...
    pub mode: String,
    pub held_ms: f64,
    pub blocks: Blocks,
}

/// A fleet run (`fleet` of a `--fleet` command's document).
#[derive(Debug, Clone, Deserialize)]
pub struct Fleet {
    pub fleet_run: String,
    pub databases: Vec<FleetDb>,
    pub halt: Option<Halt>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DbState {
    Done,
    AlreadyDone,
    Rollback,
    Failed,
    Unreachable,
    NotStarted,
}

/// Where a phase stands on a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseState {
    Applied,
    #[serde(rename = "partly applied")]
    PartlyApplied,
    Pending,
}

/// One database of a fleet run.
#[derive(Debug, Clone, Deserialize)]
pub struct FleetDb {
    pub database: String,
    pub state: DbState,
    pub verdict: Option<Verdict>,
    pub phases: Vec<PhaseCell>,
    pub checks: Vec<Check>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct PhaseCell {
    pub phase: u32,
    pub state: PhaseState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HaltReason {
    Rollback,
    Error,
    Review,
    NotConfirmed,
}

/// The group after which a fleet halted, and why.
#[derive(Debug, Clone, Deserialize)]
pub struct Halt {
    pub group: String,
    pub reason: HaltReason,
}

/// One phase in `status`.
#[derive(Debug, Clone, Deserialize)]
pub struct PhaseStatus {
    pub id: u32,
    pub name: String,
    pub state: PhaseState,
}

/// One row of `history`.
#[derive(Debug, Clone, Deserialize)]
pub struct AuditRun {
    pub command: String,
    pub exit_code: i32,
    pub os_user: Option<String>,
    pub verdict: Option<String>,
    pub fleet_run: Option<String>,
    pub fleet_member: Option<String>,
}

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
    pub steps: Vec<RehearsalStep>,
    pub findings: Vec<Finding>,
    pub result: PhaseResult,
}

impl PhaseRehearsal {
    /// Its step called `name` (`migrate`, `rollback`, `re-apply`, ...).
    #[track_caller]
    pub fn step(&self, name: &str) -> &RehearsalStep {
        self.steps.iter().find(|s| s.step == name).unwrap_or_else(|| panic!("phase {} has no step {name}: {self:#?}", self.phase))
    }
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
    FoldedConstant { against: Against, objects: Vec<String> },
    RowsChanged { against: Against, table: String, columns: Vec<String>, rows_before: i64, rows_after: i64 },
    RollbackFailed { error: String },
    ReapplyFailed { error: String },
    MigrateFailed { error: String },
    NoRollback { reason: String },
    LockHeld { step: String, relation: String, statement: String },
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
