//! `migrate`: apply pending migrations, each with its checks in one transaction.

use super::{apply_options, failed, log_dir, outcome_report, Ctx, Report, Run};
use phasegate::apply::{self, Target};
use crate::cli::MigrateArgs;
use phasegate::error::display_path;
use phasegate::{ledger, set};

pub fn run(a: MigrateArgs, ctx: &mut Ctx) -> i32 {
    let mut run = Run::new(ctx, "migrate", a.phase, a.connect.set.format, Some(log_dir(&a.connect)));
    run.yes = a.yes;
    run.audit = !a.dry_run;
    let report = body(&a, &mut run);
    run.finish(report)
}

fn body(a: &MigrateArgs, run: &mut Run) -> Report {
    let set = match set::load(&a.connect.set.dir) {
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
            return failed(phasegate::Error::Refused(format!("no phase {p} in {}", display_path(&set.dir.join(set::MANIFEST)))));
        }
    }
    if a.dry_run {
        return dry_run(a, run, &set, target);
    }
    let opts = apply_options(&a.timeouts, a.accept_review, &run.run_id, &a.connect.database_url);
    if let Err(e) = run.connect(&a.connect, Some(a.timeouts.lock_wait)) {
        return failed(e);
    }
    let mut client = run.client.take().expect("connected");
    let res = apply::migrate(&mut client, &set, target, &opts, run);
    run.client = Some(client);
    match res {
        Ok(outcome) => outcome_report(outcome, run.style),
        Err(e) => failed(e),
    }
}

/// Prints the SQL that would run; changes nothing (no ledger, no audit row).
fn dry_run(a: &MigrateArgs, run: &mut Run, set: &set::MigrationSet, target: Target) -> Report {
    if let Err(e) = run.connect(&a.connect, None) {
        return failed(e);
    }
    let client = run.client.as_mut().expect("connected");
    let applied = match ledger::applied(client) {
        Ok(a) => a,
        Err(e) => return failed(e),
    };
    if let Err(e) = apply::check_consistency(set, &applied) {
        return failed(e);
    }
    let todo = apply::pending(set, &applied, target);
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
    let mut json = serde_json::Map::new();
    json.insert("dry_run".into(), true.into());
    json.insert(
        "pending".into(),
        serde_json::json!(todo.iter().map(|s| serde_json::json!({"version": s.version, "name": s.name, "phase": s.phase, "sql": s.forward.text})).collect::<Vec<_>>()),
    );
    Report { text, json, ..Default::default() }
}
