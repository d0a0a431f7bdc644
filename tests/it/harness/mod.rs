//! The test harness: one disposable PostgreSQL per test binary and a
//! database per test (`server`), phasegate command lines run in-process or as
//! processes of their own (`cmd`, `child`), and assertions on whole database
//! states and schema snapshots (`state`).

mod child;
mod cmd;
mod server;
mod state;

use std::path::PathBuf;

pub use child::{Child, BIN, PROCESS_BOUND};
pub use cmd::{cli, on, run, Cmd, Output};
pub use server::{clinic_seeded_template, server, tenant_keys, tenant_keys_seeded_template, TestDb};
pub use state::{
    assert_all_proceed, assert_same_state, copy_set, empty_metrics, migrate_phase_by_phase, roll_back_phase_by_phase_and_reapply, schema_snapshot, walk_every_phase,
};

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

/// The step of migration `version` in a migrate or rollback JSON document.
pub fn step(doc: &serde_json::Value, version: i64) -> &serde_json::Value {
    doc["steps"].as_array().expect("a steps array").iter().find(|s| s["version"] == version).unwrap_or_else(|| panic!("no V{version} in {doc:#}"))
}

/// The log file of the run whose JSON document is `doc` (its `run_id`).
pub fn run_log(doc: &serde_json::Value) -> String {
    let run = format!("run {}", doc["run_id"].as_str().expect("a run id"));
    std::fs::read_dir(log_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .find(|t| t.contains(&run))
        .expect("the run's log file")
}

