//! The fleet run of a `--fleet` command's document.

use serde::Deserialize;

use super::{Check, PhaseState, Verdict};

/// A fleet run (`fleet` of a `--fleet` command's document).
#[derive(Debug, Clone, Deserialize)]
pub struct Fleet {
    pub fleet_run: String,
    pub databases: Vec<FleetDb>,
    pub halt: Option<Halt>,
    pub servers: Vec<ServerLoad>,
}

/// A server of a fleet run and the most connections the run held to it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServerLoad {
    pub server: String,
    pub databases: usize,
    pub peak_connections: usize,
}

/// Where one database's time went (docs/fleet.md).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timings {
    pub connect_ms: f64,
    pub ledger_ms: f64,
    pub lock_ms: f64,
    pub migrate_ms: f64,
    pub checks_ms: f64,
    pub audit_ms: f64,
    pub close_ms: f64,
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

/// One database of a fleet run.
#[derive(Debug, Clone, Deserialize)]
pub struct FleetDb {
    pub database: String,
    pub state: DbState,
    pub verdict: Option<Verdict>,
    pub phases: Vec<PhaseCell>,
    pub checks: Vec<Check>,
    pub error: Option<String>,
    pub duration_ms: f64,
    pub timings: Timings,
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
