//! Typed readers for the JSON documents the CLI prints (`--format json`):
//! [`Report`], the document every command prints, with its [`Step`]s,
//! [`Check`]s and the command's own parts (a fleet run, a rehearsal, the
//! phases of `status`, the runs of `history`). They mirror what the CLI
//! serialises, so a renamed or retyped field fails here, once, instead of
//! as a `null` compared in a test. They are written apart from the CLI's
//! `Serialize` types on purpose: reading the documents with the CLI's own
//! types would let a changed field pass unnoticed. Fields no test reads are
//! left out; the command's other top-level fields stay in [`Report::rest`]
//! and are read with [`Report::part`].

mod fleet;
mod parts;
mod rehearsal;

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

pub use fleet::{DbState, Fleet, HaltReason, PhaseCell};
pub use parts::{AuditRun, HealthRound, KeptStep, LintFinding, PhasePlan, PhaseStatus, Recovered, Restored};
pub use rehearsal::{Against, At, Finding, Origin, PhaseRehearsal, PhaseResult, Rehearsal};

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
    /// A run that failed (exit 1): the document's verdict, never a check's.
    Error,
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

    /// The check called `name` (the first, when several migrations have one).
    #[track_caller]
    pub fn check(&self, name: &str) -> &Check {
        self.checks.iter().find(|c| c.check == name).unwrap_or_else(|| panic!("no check {name} in {self:#?}"))
    }

    /// rollback: the rows it backed up.
    #[track_caller]
    pub fn backups(&self) -> Vec<Backup> {
        self.part("backups")
    }

    /// restore: what restoring each backup did.
    #[track_caller]
    pub fn restored(&self) -> Vec<Restored> {
        self.part("restored")
    }

    /// plan: each phase's risk, locks, findings and what it keeps.
    #[track_caller]
    pub fn plan(&self) -> Vec<PhasePlan> {
        self.part("phases")
    }

    /// health: each round's findings and checks.
    #[track_caller]
    pub fn rounds(&self) -> Vec<HealthRound> {
        self.part("rounds")
    }

    /// lint: its findings.
    #[track_caller]
    pub fn findings(&self) -> Vec<LintFinding> {
        self.part("findings")
    }

    /// lint: how many findings are errors (its summary).
    #[track_caller]
    pub fn lint_errors(&self) -> u64 {
        self.part::<Value>("summary")["errors"].as_u64().unwrap_or_else(|| panic!("no summary.errors in {self:#?}"))
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

    /// migrate: what was kept before each migration of an irreversible phase.
    #[track_caller]
    pub fn kept(&self) -> Vec<KeptStep> {
        self.part("kept")
    }

    /// recover: what the recovery did.
    #[track_caller]
    pub fn recovered(&self) -> Recovered {
        self.part("recovered")
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
    pub status: StepStatus,
    /// A batched file's rows.
    pub rows: Option<u64>,
    pub backups: Vec<Backup>,
    pub locks: Vec<Lock>,
}

/// One check's result.
#[derive(Debug, Clone, Deserialize)]
pub struct Check {
    pub version: i32,
    pub check: String,
    /// `before-migrate`, `after-migrate`, `before-rollback`, `after-rollback`.
    pub when: String,
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

/// Where a phase stands on a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseState {
    Applied,
    #[serde(rename = "partly applied")]
    PartlyApplied,
    Pending,
}
