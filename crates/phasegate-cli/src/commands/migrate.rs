//! `migrate`: apply pending migrations, each with its checks in one transaction.

use serde::Serialize;

use super::{apply_options, failed, log_dir, outcome_report, Ctx, Report, Run};
use crate::cli::MigrateArgs;
use phasegate::{display_path, MigrationSet, Target};

pub fn run(a: MigrateArgs, ctx: &mut Ctx) -> i32 {
    if let Some(file) = a.fleet.clone() {
        return super::fleet::run(super::fleet::Op::Migrate(&a), &file, ctx);
    }
    let mut run = Run::new(ctx, "migrate", a.phase, a.connect.set.format, Some(log_dir(&a.connect)));
    run.yes = a.yes;
    run.audit = !a.dry_run;
    let report = body(&a, &mut run);
    run.finish(report)
}

fn body(a: &MigrateArgs, run: &mut Run) -> Report {
    let set = match phasegate::load_set(&a.connect.set.dir) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let target = match (a.phase, a.to_version) {
        (Some(p), _) => Target::Phase(p),
        (None, Some(v)) => Target::Version(v),
        (None, None) => Target::Latest,
    };
    if let Target::Phase(p) = target {
        if set.phase(p).is_none() {
            return failed(phasegate::Error::NoSuchPhase { phase: p, manifest: set.dir.join(phasegate::MANIFEST) });
        }
    }
    if a.dry_run {
        return dry_run(a, run, &set, target);
    }
    let opts = apply_options(&a.timeouts, a.accept_review, &run.run_id, a.connect.url());
    if let Err(e) = run.connect(&a.connect, Some(a.timeouts.lock_wait)) {
        return failed(e);
    }
    let mut client = run.client.take().expect("connected");
    let res = phasegate::migrate(&mut client, &set, target, &opts, run);
    run.client = Some(client);
    match res {
        Ok(outcome) => outcome_report(outcome, run.style),
        Err(e) => failed(e),
    }
}

/// `migrate --dry-run --format json`.
#[derive(Serialize)]
struct DryRunJson<'a> {
    dry_run: bool,
    pending: Vec<PendingJson<'a>>,
}

#[derive(Serialize)]
struct PendingJson<'a> {
    version: i32,
    name: &'a str,
    phase: u32,
    sql: &'a str,
}

/// Prints the SQL that would run; changes nothing (no ledger, no audit row).
fn dry_run(a: &MigrateArgs, run: &mut Run, set: &MigrationSet, target: Target) -> Report {
    if let Err(e) = run.connect(&a.connect, None) {
        return failed(e);
    }
    let client = run.client.as_mut().expect("connected");
    let applied = match phasegate::applied_migrations(client) {
        Ok(a) => a,
        Err(e) => return failed(e),
    };
    if let Err(e) = phasegate::check_consistency(set, &applied) {
        return failed(e);
    }
    let todo = phasegate::pending(set, &applied, target);
    let mut text = String::new();
    if todo.is_empty() {
        text.push_str("nothing to migrate\n");
    }
    for s in &todo {
        text.push_str(&format!("-- phase {} · V{} {} ({})\n", s.phase, s.version, s.name, display_path(&s.forward.path)));
        text.push_str(s.forward.text.trim_end());
        text.push_str("\n\n");
    }
    text.push_str("-- dry run: nothing was changed\n");
    let pending = todo.iter().map(|s| PendingJson { version: s.version, name: &s.name, phase: s.phase, sql: &s.forward.text }).collect();
    Report { text, ..Default::default() }.with_body(&DryRunJson { dry_run: true, pending })
}
