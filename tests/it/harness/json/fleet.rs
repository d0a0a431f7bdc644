//! The fleet run of a `--fleet` command's document.

use serde::Deserialize;

use super::{Check, PhaseState, Verdict};

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
