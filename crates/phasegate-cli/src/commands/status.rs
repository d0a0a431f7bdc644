//! `status`: per phase, applied / partly applied / pending / irreversible,
//! and drift between the ledger and the files.

use serde::Serialize;

use super::{failed, log_dir, Ctx, Report, Run};
use crate::cli::StatusArgs;
use phasegate::error::display_path;
use phasegate::{ledger, set};

#[derive(Debug, Serialize)]
pub struct PhaseStatus {
    pub id: u32,
    pub name: String,
    pub state: &'static str,
    pub reversible: bool,
    pub applied: Vec<i32>,
    pub pending: Vec<i32>,
}

#[derive(Debug, Serialize)]
pub struct Drift {
    pub version: i32,
    pub kind: &'static str,
    pub file: String,
    pub message: String,
}

pub fn run(a: StatusArgs, ctx: &mut Ctx) -> i32 {
    let mut run = Run::new(ctx, "status", None, a.connect.set.format, Some(log_dir(&a.connect)));
    let report = body(&a, &mut run);
    run.finish(report)
}

fn body(a: &StatusArgs, run: &mut Run) -> Report {
    let set = match set::load(&a.connect.set.dir) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let client = match run.connect(&a.connect, None) {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    let applied = match ledger::applied(client) {
        Ok(x) => x,
        Err(e) => return failed(e),
    };
    let (phases, drift) = compute(&set, &applied);
    // The applied migrations' checks, read-only, so status shows where each gate stands.
    let checks = match phasegate::apply::validate_applied(client, &set, &applied, None, None) {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    let mut text = String::new();
    for p in &phases {
        text.push_str(&format!(
            "phase {:<2} {:<12} {:<15} applied {:?} pending {:?}{}\n",
            p.id,
            p.name,
            p.state,
            p.applied,
            p.pending,
            if p.reversible { "" } else { "  (irreversible)" }
        ));
    }
    if drift.is_empty() {
        text.push_str("drift: none\n");
    }
    for d in &drift {
        text.push_str(&format!("drift: {}: {}\n", d.file, d.message));
    }
    if !checks.is_empty() {
        let mut table = Vec::new();
        let _ = crate::report::decision_table(&mut table, &checks, run.style);
        text.push_str(&String::from_utf8_lossy(&table));
    }
    let mut json = serde_json::Map::new();
    json.insert("phases".into(), serde_json::to_value(&phases).unwrap_or_default());
    json.insert("drift".into(), serde_json::to_value(&drift).unwrap_or_default());
    Report {
        verdict: Some(phasegate::check::worst(&checks)),
        exit: Some(if drift.is_empty() { 0 } else { 1 }),
        checks: serde_json::to_value(&checks).unwrap_or_default(),
        text,
        json,
        ..Default::default()
    }
}

pub fn compute(set: &set::MigrationSet, applied: &std::collections::BTreeMap<i32, ledger::Applied>) -> (Vec<PhaseStatus>, Vec<Drift>) {
    let mut phases = Vec::new();
    let mut drift = Vec::new();
    for p in &set.phases {
        let (done, todo): (Vec<i32>, Vec<i32>) = p.steps.iter().map(|s| s.version).partition(|v| applied.contains_key(v));
        let state = match (done.is_empty(), todo.is_empty()) {
            (false, true) => "applied",
            (false, false) => "partly applied",
            (true, _) => "pending",
        };
        phases.push(PhaseStatus { id: p.id, name: p.name.clone(), state, reversible: p.reversible, applied: done, pending: todo });
    }
    for (v, a) in applied {
        let Some(step) = set.step(*v) else {
            drift.push(Drift { version: *v, kind: "missing_file", file: format!("V{v}__{}.sql", a.name), message: format!("migration {v} was applied but its file is missing") });
            continue;
        };
        if a.forward_changed(step) {
            drift.push(Drift {
                version: *v,
                kind: "forward_changed",
                file: display_path(&step.forward.path),
                message: format!("migration {v} was applied but its file has changed since"),
            });
        }
        if let (Some(stored), Some(file)) = (&a.rollback_sha256, &step.rollback) {
            if stored != &file.sha256() {
                drift.push(Drift {
                    version: *v,
                    kind: "rollback_changed",
                    file: display_path(&file.path),
                    message: format!("rollback of migration {v} changed since it was applied (a rollback runs the SQL stored at apply time)"),
                });
            }
        }
        if let Some(stored) = &a.validation_sha256 {
            if stored != &step.validation.sha256() {
                drift.push(Drift {
                    version: *v,
                    kind: "validation_changed",
                    file: display_path(&step.validation.path),
                    message: format!("validation of migration {v} changed since it was applied"),
                });
            }
        }
    }
    (phases, drift)
}
