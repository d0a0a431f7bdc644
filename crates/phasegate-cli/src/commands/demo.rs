//! `demo`: the whole job on a disposable database with no configuration:
//! start PostgreSQL, apply the set up to its seed phase, load the seed data,
//! apply the rest (irreversible phases included), print the decision table.

use super::{failed, outcome_report, Ctx, Report, Run};
use crate::cli::DemoArgs;
use phasegate::{MigrationSet, Server, Target};

pub fn run(a: DemoArgs, ctx: &mut Ctx) -> i32 {
    let mut run = Run::new(ctx, "demo", None, a.set.format, super::logs_for(&a.set.dir, None));
    run.yes = true;
    run.audit = false;
    let report = body(&a, &mut run);
    run.finish(report)
}

fn body(a: &DemoArgs, run: &mut Run) -> Report {
    let set = match phasegate::load_set(&a.set.dir) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let backend = a.server.backend();
    let started = std::time::Instant::now();
    let server = match Server::start(&backend) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    run.say(&format!("disposable PostgreSQL ready in {} ms", started.elapsed().as_millis()));
    let name = format!("phasegate_demo_{}", std::process::id());
    let url = match server.create_database(&name, None) {
        Ok(u) => u,
        Err(e) => return failed(e),
    };
    let report = migrate_with_seed(&url, &set, a.seed_rows, run);
    if let Err(e) = server.drop_database(&name) {
        run.say(&format!("warning: {e}"));
    }
    report
}

/// Applies the set up to the seed phase, loads the seed, applies the rest.
fn migrate_with_seed(url: &str, set: &MigrationSet, rows: Option<u64>, run: &mut Run) -> Report {
    let mut client = match phasegate::connect(url, "phasegate demo") {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    if let Err(e) = phasegate::acquire_lock(&mut client, std::time::Duration::ZERO) {
        return failed(e);
    }
    let opts = phasegate::ApplyOptions { run_id: run.run_id.clone(), accept_review: true, ..Default::default() };
    let mut steps = Vec::new();
    if let Some(seed) = &set.seed {
        match phasegate::migrate(&mut client, set, Target::Phase(seed.after_phase), &opts, run) {
            Ok(o) if o.failure.is_none() && o.verdict() < phasegate::Verdict::Rollback => steps.extend(o.steps),
            Ok(o) => return outcome_report(o, run.style, "phasegate demo"),
            Err(e) => return failed(e),
        }
        let t = std::time::Instant::now();
        if let Err(e) = phasegate::seed(&mut client, set, rows) {
            return failed(e);
        }
        let requested = rows.map(|r| format!("{r} rows requested")).unwrap_or_else(|| "default size".into());
        run.say(&format!("seed: {} file(s), {requested}, {} ms", seed.files.len(), t.elapsed().as_millis()));
    }
    match phasegate::migrate(&mut client, set, Target::Latest, &opts, run) {
        Ok(mut o) => {
            steps.append(&mut o.steps);
            o.steps = steps;
            outcome_report(o, run.style, "phasegate demo")
        }
        Err(e) => failed(e),
    }
}
