//! `status`: per phase, applied / partly applied / pending, the batch
//! walks (backfills, batched rollbacks) that stopped part way, and drift
//! between the ledger and the files (`phasegate::ledger::drift`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{json, log_dir, Ctx, Report, Run};
use crate::exit::Exit;
use crate::cli::Shape;
use crate::cli::StatusArgs;
use phasegate::{ledger, walks, MigrationSet, SchemaDrift, Server};

/// Where a phase stands (the engine's type; fleet runs show it too).
pub use phasegate::fleet;

#[derive(Debug, Serialize)]
pub struct PhaseStatus {
    pub id: u32,
    pub name: String,
    pub state: fleet::PhaseState,
    pub reversible: bool,
    pub applied: Vec<i32>,
    pub pending: Vec<i32>,
    /// ledger::Applied versions `migrate --adopt` recorded from another tool's
    /// ledger, with the tool and label they came from (`sqlx 20240105101500`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub adopted: Vec<(i32, String)>,
}

/// `status --format json`.
#[derive(Serialize)]
struct StatusJson<'a> {
    phases: &'a [PhaseStatus],
    /// Batch walks that stopped part way (rows done, the key they resume after).
    batches: &'a [walks::BatchWalk],
    drift: &'a [ledger::Drift],
    /// Why the applied migrations' checks could not run (status exits 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    checks_error: Option<&'a str>,
    /// With `--schema`: the live schema against the files (absent without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<&'a SchemaDrift>,
}

pub fn run(a: StatusArgs, ctx: &mut Ctx) -> Exit {
    if let Some(file) = a.fleet.clone() {
        return super::fleet::run(super::fleet::Op::Status(&a), &file, ctx);
    }
    let mut run = Run::new(ctx, StatusArgs::NAME, None, a.connect.set.format, log_dir(&a.connect));
    let report = body(&a, &mut run);
    run.finish(report)
}

fn body(a: &StatusArgs, run: &mut Run) -> anyhow::Result<Report> {
    let set = phasegate::load_set(&a.connect.set.dir)?;
    // --schema's disposable server, started before the session so the
    // session is not held open while it starts.
    let server = a.schema.then(|| start_server(a, run)).transpose()?;
    let client = run.connect(&a.connect, None)?;
    let applied = phasegate::ledger::applied(client)?;
    let walks = phasegate::walks::unfinished(client, &set)?;
    let phases = phase_states(&set, &applied, &walks);
    let drift = phasegate::ledger::drift(&set, &applied);
    // The applied migrations' checks, read-only, so status shows where each gate stands.
    // A check that cannot run (e.g. it reads a column dropped by hand) is
    // reported with the rest of the status, which is what shows why.
    let (checks, checks_error) = match phasegate::validate_applied(client, &set, &applied, None, None) {
        Ok(c) => (c, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let schema = server.as_ref().map(|server| phasegate::schema_drift(client, &set, server)).transpose()?;
    let mut text = String::new();
    // Names as long as `change` writes them ("rename customers.full_name:
    // expand") keep the columns after them aligned.
    let wn = phases.iter().map(|p| p.name.chars().count()).max().unwrap_or(0).max(12);
    for p in &phases {
        text.push_str(&format!(
            "phase {:<2} {:<wn$} {:<15} applied {:?} pending {:?}{}{}\n",
            p.id,
            p.name,
            p.state.as_str(),
            p.applied,
            p.pending,
            if p.reversible { "" } else { "  (irreversible)" },
            p.adopted.iter().map(|(v, f)| format!("  (V{v} adopted from {f})")).collect::<String>()
        ));
    }
    // Whether a migrator runs now (it would hold the migration lock): a
    // walk is then possibly moving, else it stopped and waits for a re-run.
    let holder = if walks.is_empty() { None } else { phasegate::lock_holder(client).ok().flatten() };
    for w in &walks {
        let phase = w.phase.map(|p| format!("phase {p}: ")).unwrap_or_default();
        let next = match (&holder, w.direction, w.phase) {
            (Some(h), _, _) => format!("a migrator holds the migration lock ({h}), so it may be running now"),
            (None, phasegate::walks::WalkDirection::Forward, _) => format!("not running: `{} migrate` resumes it", run.bin()),
            (None, phasegate::walks::WalkDirection::Rollback, Some(p)) => format!("not running: `{} rollback --phase {p}` resumes it", run.bin()),
            (None, phasegate::walks::WalkDirection::Rollback, None) => "not running: a rollback resumes it".to_string(),
        };
        text.push_str(&format!("{phase}{}; {next}\n", w.describe()));
    }
    if drift.is_empty() {
        text.push_str("drift: none\n");
    }
    for d in &drift {
        text.push_str(&format!("drift: {}: {}\n", d.file, d.message));
    }
    if let Some(s) = &schema {
        text.push_str(&schema_text(s));
    }
    if let Some(e) = &checks_error {
        text.push_str(&format!("checks: could not run: {e}\n"));
    }
    if !checks.is_empty() {
        let mut table = Vec::new();
        // ledger::Drift makes status exit 1: its verdict is ERROR, as in the JSON.
        let overall = crate::report::RunVerdict::of(&checks, !drift.is_empty() || checks_error.is_some());
        let _ = crate::report::decision_table(&mut table, &checks, overall, run.style);
        text.push_str(&String::from_utf8_lossy(&table));
    }
    Ok(Report {
        verdict: Some(phasegate::worst_verdict(&checks)),
        exit: Some(match (&schema, drift.is_empty() && checks_error.is_none()) {
            (_, false) => Exit::Failed,
            (Some(s), true) if !s.objects.is_empty() => Exit::Review,
            _ => Exit::Ok,
        }),
        checks: json(&checks),
        text,
        ..Default::default()
    }
    .with_body(&StatusJson { phases: &phases, batches: &walks, drift: &drift, checks_error: checks_error.as_deref(), schema: schema.as_ref() }))
}

/// Each phase's state from the ledger and the unfinished batch walks.
pub fn phase_states(set: &MigrationSet, applied: &BTreeMap<i32, ledger::Applied>, walks: &[walks::BatchWalk]) -> Vec<PhaseStatus> {
    set.phases
        .iter()
        .map(|p| {
            let (done, todo): (Vec<i32>, Vec<i32>) = p.steps.iter().map(|s| s.version).partition(|v| applied.contains_key(v));
            let state = fleet::PhaseState::of(p, applied, walks);
            let adopted = done.iter().filter_map(|v| applied[v].adopted_from.clone().map(|f| (*v, f))).collect();
            PhaseStatus { id: p.id, name: p.name.clone(), state, reversible: p.is_reversible(), applied: done, pending: todo, adopted }
        })
        .collect()
}

/// `--schema`'s disposable PostgreSQL (the set is applied to a database on
/// it up to the versions the ledger lists, then compared).
fn start_server(a: &StatusArgs, run: &mut Run) -> anyhow::Result<Server> {
    let server = Server::start(&a.backend.backend(&a.server)?)?;
    run.say(&format!("comparing the schema with the set's files applied to a disposable PostgreSQL ({})", server.kind()));
    Ok(server)
}

/// The text lines of `--schema`: a summary, then each object and its diff.
fn schema_text(s: &SchemaDrift) -> String {
    let upto = s.compared_versions.last().map_or("no migration".to_string(), |v| format!("the files up to V{v}"));
    let mut text = if s.objects.is_empty() {
        format!("schema: matches {upto} ({} migrations applied to a disposable database)\n", s.compared_versions.len())
    } else {
        let n = s.objects.len();
        let objects = if n == 1 { "1 object differs".to_string() } else { format!("{n} objects differ") };
        format!("schema: {objects} from {upto} ({} migrations applied to a disposable database)\n", s.compared_versions.len())
    };
    if !s.without_file.is_empty() {
        let v: Vec<String> = s.without_file.iter().map(|v| format!("V{v}")).collect();
        text.push_str(&format!("schema: not compared, applied without a file in the set: {}\n", v.join(", ")));
    }
    for o in &s.objects {
        text.push_str(&format!("schema: {}: {}\n", o.object, o.change.as_str()));
        for line in o.diff.lines() {
            text.push_str(&format!("    {line}\n"));
        }
    }
    text
}
