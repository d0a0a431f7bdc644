//! `migrate`: apply pending migrations, each with its checks in one transaction.

use serde::Serialize;

use super::{log_dir, outcome_report, Ctx, Report, Run};
use crate::exit::Exit;
use crate::cli::Shape;
use crate::cli::MigrateArgs;
use phasegate::{backup, display_path, MigrationSet, Target};

pub fn run(a: MigrateArgs, ctx: &mut Ctx) -> Exit {
    if let Some(file) = a.fleet.clone() {
        return super::fleet::run(super::fleet::Op::Migrate(&a), &file, ctx);
    }
    let mut run = Run::new(ctx, MigrateArgs::NAME, a.phase, a.connect.set.format, log_dir(&a.connect));
    run.yes = a.confirm.yes;
    run.audit = !a.confirm.dry_run;
    run.args.extend(a.audit_args());
    if let Some(tool) = a.adopt {
        run.args.extend(["--adopt".into(), tool.name().into()]);
    }
    run.html_to(a.html.html.clone(), &a.connect.set.dir);
    let report = body(&a, &mut run);
    run.finish(report)
}

fn body(a: &MigrateArgs, run: &mut Run) -> anyhow::Result<Report> {
    let set = phasegate::load_set(&a.connect.set.dir)?;
    let target = match (a.phase, a.to_version) {
        (Some(p), _) => Target::Phase(p),
        (None, Some(v)) => Target::Version(v),
        (None, None) => Target::Latest,
    };
    if let Target::Phase(p) = target {
        set.phase(p)?;
    }
    if let Some(tool) = a.adopt {
        return adopt(a, run, &set, tool);
    }
    if a.confirm.dry_run {
        return dry_run(a, run, &set, target);
    }
    let opts = a.options(&run.run_id, a.connect.url());
    run.connect(&a.connect, Some(a.timeouts.lock_wait))?;
    if a.no_backup && set.phases.iter().any(phasegate::recover::keeps_what_it_destroys) {
        run.say("backups: off (--no-backup); an irreversible phase applied now cannot be recovered");
    }
    let mut client = run.client.take().expect("connected");
    let res = phasegate::migrate(&mut client, &set, target, &opts, run);
    run.client = Some(client);
    let outcome = res?;
    let kept = outcome.kept.clone();
    let stopped_for_review = outcome.stopped_for_review;
    let html = run.wants_html().then(|| {
        let recover = kept.first().and_then(|k| set.phase_of(k.version)).map(|p| format!("{} recover --phase {}{}", run.bin(), p.id, dir_flag(&a.connect.set.dir)));
        let extras = crate::report::html::RunExtras { recover_command: recover, ..Default::default() };
        crate::report::html::run(&run.page_meta(Some(a.connect.url()), a.locks.max_lock_hold), &outcome, &extras)
    });
    let mut report = outcome_report(outcome, run, "phasegate migrate");
    report.html = html;
    let mut phases: Vec<u32> = kept.iter().filter_map(|k| set.phase_of(k.version).map(|p| p.id)).collect();
    phases.dedup();
    for p in &phases {
        let of_phase: Vec<&backup::KeptStep> = kept.iter().filter(|k| set.phase_of(k.version).map(|x| x.id) == Some(*p)).collect();
        let rows: i64 = of_phase.iter().map(|k| k.size.rows).sum();
        let bytes: i64 = of_phase.iter().map(|k| k.size.bytes).sum();
        report.text.push_str(&format!(
            "kept what phase {p} drops: {rows} rows ({}) in {} backup table(s) and the definitions of what it dropped; the way back: {} recover --phase {p}{}\n",
            crate::fmt::bytes(bytes),
            of_phase.iter().map(|k| k.backups.len()).sum::<usize>(),
            run.bin(),
            dir_flag(&a.connect.set.dir)
        ));
    }
    Ok(report.with_body(&MigrateJson { stopped_for_review, backup: !a.no_backup, kept }))
}

/// `migrate --format json`.
#[derive(Serialize)]
struct MigrateJson {
    stopped_for_review: Option<u32>,
    /// Whether what irreversible phases destroy is kept first.
    backup: bool,
    /// What was kept, per migration of an irreversible phase.
    kept: Vec<backup::KeptStep>,
}

/// ` --dir D` unless the set is the current folder.
pub fn dir_flag(dir: &std::path::Path) -> String {
    let d = display_path(dir);
    if d == "." || d.is_empty() {
        String::new()
    } else {
        format!(" --dir {d}")
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
fn dry_run(a: &MigrateArgs, run: &mut Run, set: &MigrationSet, target: Target) -> anyhow::Result<Report> {
    run.connect(&a.connect, None)?;
    let client = run.client.as_mut().expect("connected");
    let applied = phasegate::ledger::applied(client)?;
    phasegate::check_consistency(set, &applied)?;
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
    Ok(Report { text, ..Default::default() }.with_body(&DryRunJson { dry_run: true, pending }))
}

/// `migrate --adopt TOOL`: records what the tool's ledger holds as applied
/// (`phasegate::adopt`), runs nothing; `--dry-run` records nothing either.
fn adopt(a: &MigrateArgs, run: &mut Run, set: &MigrationSet, tool: phasegate::foreign::Layout) -> anyhow::Result<Report> {
    let lock = (!a.confirm.dry_run).then_some(a.timeouts.lock_wait);
    let run_id = run.run_id.clone();
    let client = run.connect(&a.connect, lock)?;
    let got = phasegate::adopt(client, set, tool, a.confirm.dry_run, &run_id)?;
    let verb = if a.confirm.dry_run { "would record" } else { "recorded" };
    let mut text = String::new();
    for s in &got.adopted {
        let sum = if s.checksum_compared { ", checksum matches" } else { "" };
        text.push_str(&format!("{verb} V{} {} (phase {}) as applied: adopted from {}{sum}\n", s.version, s.name, s.phase, s.from));
    }
    let list = |v: &[i32]| v.iter().map(|n| format!("V{n}")).collect::<Vec<_>>().join(", ");
    if !got.already.is_empty() {
        text.push_str(&format!("already in phasegate's ledger: {}\n", list(&got.already)));
    }
    if let Some(why) = got.checksums_not_compared {
        text.push_str(&format!("note: {why}\n"));
    }
    text.push_str(&format!(
        "{} {} migration(s) from {tool}'s {}; {} pending{}\n",
        verb,
        got.adopted.len(),
        got.table,
        got.pending.len(),
        if got.pending.is_empty() { String::new() } else { format!(" ({}): `{} migrate` runs them", list(&got.pending), run.bin()) }
    ));
    if a.confirm.dry_run {
        text.push_str("dry run: nothing was recorded\n");
    }
    Ok(Report { text, exit: Some(Exit::Ok), ..Default::default() }.with_body(&got))
}
