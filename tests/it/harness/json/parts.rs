//! The parts of single commands' documents: `status` phases, `plan`,
//! `health` rounds, `lint` findings, `restore`, `history`, what `migrate`
//! kept and what `recover` did.

use serde::Deserialize;
use serde_json::Value;

use super::{Backup, Check, PhaseState};

/// One phase in `status`.
#[derive(Debug, Clone, Deserialize)]
pub struct PhaseStatus {
    pub state: PhaseState,
    pub applied: Vec<i32>,
    pub pending: Vec<i32>,
    /// Versions `migrate --adopt` recorded, and the tool's label of each.
    #[serde(default)]
    pub adopted: Vec<(i32, String)>,
}

/// One phase in `plan`.
#[derive(Debug, Clone, Deserialize)]
pub struct PhasePlan {
    pub name: String,
    /// `low`, `medium`, `high` or `catastrophic`.
    pub risk: String,
    pub data_loss: bool,
    pub rollback_discards: bool,
    pub locks: Vec<String>,
    pub findings: Vec<LintFinding>,
    /// What an irreversible phase keeps before it runs (`kept`: what).
    pub keeps: Vec<Value>,
}

/// One round of `health`.
#[derive(Debug, Clone, Deserialize)]
pub struct HealthRound {
    pub findings: Vec<HealthFinding>,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HealthFinding {
    /// `ok`, `warn` or `fail`.
    pub level: String,
}

/// A lint finding.
#[derive(Debug, Clone, Deserialize)]
pub struct LintFinding {
    pub rule: String,
    /// `error` or `warning`.
    pub severity: String,
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
    pub fix: Option<String>,
}

/// What restoring one backup did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Restored {
    pub updated: u64,
    pub inserted: u64,
    pub unchanged: u64,
}

/// One row of `history`.
#[derive(Debug, Clone, Deserialize)]
pub struct AuditRun {
    pub run_id: String,
    pub command: String,
    pub exit_code: i32,
    pub os_user: Option<String>,
    pub fleet_run: Option<String>,
    pub fleet_member: Option<String>,
    /// The backups the run took.
    #[serde(default)]
    pub backups: Vec<Backup>,
}

/// What was kept before a migration of an irreversible phase.
#[derive(Debug, Clone, Deserialize)]
pub struct KeptStep {
    pub version: i32,
    pub size: Size,
    /// Each thing kept (`kind`: step, trigger, function, columns, enum, ...).
    pub kept: Vec<Value>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Size {
    pub rows: i64,
    pub bytes: i64,
}

/// What a recovery did.
#[derive(Debug, Clone, Deserialize)]
pub struct Recovered {
    pub tables: Vec<TableRecovery>,
    /// `table.column` whose NOT NULL was not restored.
    pub not_null_skipped: Vec<String>,
}

/// What recovering one table did.
#[derive(Debug, Clone, Deserialize)]
pub struct TableRecovery {
    pub restored: u64,
    pub written_since: u64,
    pub replay_refused: u64,
    pub first_refusal: Option<String>,
    /// Per re-created column, the rows left NULL.
    pub left_null: Vec<(String, i64)>,
}
