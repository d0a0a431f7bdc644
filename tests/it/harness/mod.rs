//! The test harness: one disposable PostgreSQL per test binary and a
//! database per test (`server`), phasegate command lines run in-process or as
//! processes of their own (`cmd`, `child`) with typed readers of their JSON
//! documents (`json`) and named exit codes (`exit`), assertions on whole
//! database states and schema snapshots (`state`), and application traffic
//! running beside a command (`writer`).

mod child;
mod cmd;
pub mod exit;
pub mod json;
mod server;
mod state;
pub mod traffic;
mod writer;

use std::path::PathBuf;

pub use child::{Child, BIN, PROCESS_BOUND};
pub use cmd::{cli, on, run, Cmd, Output};
pub use server::{clinic_seeded_template, server, tenant_keys, tenant_keys_seeded_template, TestDb};
pub use state::{
    assert_all_proceed, assert_same_state, copy_set, empty_metrics, migrate_phase_by_phase, roll_back_phase_by_phase_and_reapply, schema_snapshot, walk_every_phase,
};
pub use json::{AsReport, Report};
pub use writer::{Round, Sample, Tally, Writer};

/// The repository root (the clinic set lives there).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures").join(name)
}

/// Where test runs write their logs.
pub fn log_dir() -> PathBuf {
    let d = repo().join("target/test-logs");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The step of migration `version` in a migrate or rollback JSON document
/// (untyped; `Report::step` is the typed one).
#[allow(dead_code)] // kept for tests that read the untyped document
pub fn step(doc: &serde_json::Value, version: i64) -> &serde_json::Value {
    doc["steps"].as_array().expect("a steps array").iter().find(|s| s["version"] == version).unwrap_or_else(|| panic!("no V{version} in {doc:#}"))
}

/// The log file of the run whose JSON document is `doc` (its `run_id`;
/// `Report::log` for a typed one).
#[allow(dead_code)] // kept for tests that read the untyped document
pub fn run_log(doc: &serde_json::Value) -> String {
    log_of_run(doc["run_id"].as_str().expect("a run id"))
}

/// The log file of run `run_id`.
pub fn log_of_run(run_id: &str) -> String {
    let run = format!("run {run_id}");
    std::fs::read_dir(log_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .find(|t| t.contains(&run))
        .expect("the run's log file")
}

