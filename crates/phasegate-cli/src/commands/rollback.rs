//! `rollback --phase N`: reverse one phase, newest migration first, backing
//! up the rows it changes, and write a Markdown report beside the log.

use serde::Serialize;

use super::{log_dir, outcome_report, Ctx, Report, Run};
use crate::exit::Exit;
use crate::cli::Shape;
use crate::cli::RollbackArgs;
use crate::report::{rollback_markdown, RollbackDoc};
use phasegate::{backup, display_path, MigrationSet, Phase, RunOutcome};

/// `rollback --format json`: the backups taken, whether backups were on,
/// and the Markdown report written.
#[derive(Serialize, Default)]
struct RollbackJson {
    backups: Vec<backup::Backup>,
    backup: bool,
    report_file: Option<String>,
}

pub fn run(a: RollbackArgs, ctx: &mut Ctx) -> Exit {
    if let Some(file) = a.fleet.clone() {
        return super::fleet::run(super::fleet::Op::Rollback(&a), &file, ctx);
    }
    let mut run = Run::new(ctx, RollbackArgs::NAME, Some(a.phase), a.connect.set.format, log_dir(&a.connect));
    run.yes = a.confirm.yes;
    run.audit = !a.confirm.dry_run;
    run.args.extend(a.audit_args());
    run.html_to(a.html.html.clone(), &a.connect.set.dir);
    let mut doc = RollbackJson { backup: !a.no_backup, ..Default::default() };
    let mut phase = None;
    let (mut report, outcome) = body(&a, &mut run, &mut doc, &mut phase).unwrap_or_else(|e| (Report::failed(e), None));
    // The rollback's own Markdown report is written whatever happened.
    if !a.confirm.dry_run {
        doc.report_file = write_markdown(&a, &mut run, &report, outcome.as_ref(), phase);
        report.set_body(&doc);
    }
    run.finish(Ok(report))
}

/// The rollback's report and what it did; `names` gets the phase's name and
/// summary as soon as the phase is known (the Markdown report heads with them).
fn body(a: &RollbackArgs, run: &mut Run, doc: &mut RollbackJson, names: &mut Option<(String, String)>) -> anyhow::Result<(Report, Option<RunOutcome>)> {
    let set = phasegate::load_set(&a.connect.set.dir)?;
    let phase = set.phase(a.phase)?;
    *names = Some((phase.name.clone(), phase.summary.clone()));
    phasegate::refuse_irreversible(phase)?;
    if a.confirm.dry_run {
        return Ok((dry_run(a, run, &set, phase)?, None));
    }
    let opts = a.options(&run.run_id, a.connect.url());
    run.connect(&a.connect, Some(a.timeouts.lock_wait))?;
    if a.no_backup {
        run.say("backups: skipped (--no-backup); the rows this rollback changes are not saved");
    }
    let mut client = run.client.take().expect("connected");
    let res = phasegate::rollback(&mut client, &set, a.phase, &opts, run);
    run.client = Some(client);
    let outcome = res?;
    let summary = outcome.summary();
    let failed_run = outcome.failure.is_some();
    let backups: Vec<_> = outcome.backups().cloned().collect();
    let html = run.wants_html().then(|| {
        let extras = crate::report::html::RunExtras { restore_command: Some(restore_command(a, run)), no_backup: a.no_backup, ..Default::default() };
        crate::report::html::run(&run.page_meta(Some(a.connect.url()), a.locks.max_lock_hold), &outcome, &extras)
    });
    let mut report = outcome_report(outcome, run, &format!("phasegate rollback --phase {}", a.phase));
    report.html = html;
    if !backups.is_empty() {
        let rows: i64 = backups.iter().map(|b| b.rows).sum();
        report.text.push_str(&format!(
            "backed up {rows} rows in {} table(s) before changing them; restore them with: {}\n",
            backups.len(),
            restore_command(a, run)
        ));
    } else if !a.no_backup && !failed_run {
        report.text.push_str("backups: none needed (the rollback changed no existing rows)\n");
    }
    doc.backups = backups;
    Ok((report, Some(summary)))
}

fn dry_run(a: &RollbackArgs, run: &mut Run, set: &MigrationSet, phase: &Phase) -> anyhow::Result<Report> {
    run.connect(&a.connect, None)?;
    let client = run.client.as_mut().expect("connected");
    let applied = phasegate::ledger::applied(client)?;
    let steps = phasegate::plan_rollback(set, phase, &applied)?;
    let mut text = String::new();
    for s in steps {
        let stored = applied[&s.version].rollback_sql.clone();
        let sql = stored.or_else(|| s.rollback.as_ref().map(|r| r.text.clone())).unwrap_or_default();
        text.push_str(&format!("-- rollback phase {} · V{} {} (SQL stored at apply time)\n{}\n", s.phase, s.version, s.name, sql.trim_end()));
        for t in phasegate::backup::targets(&sql) {
            let cols = if t.columns.is_empty() { String::new() } else { format!(" ({})", t.columns.join(", ")) };
            text.push_str(&format!("-- backs up first: {} {}{cols}\n", t.change.as_str(), t.table));
        }
        text.push('\n');
    }
    text.push_str("-- dry run: nothing was changed\n");
    Ok(Report { text, ..Default::default() })
}

/// `cargo xtask restore --run <id> [--dir D]`, under the caller's program name.
fn restore_command(a: &RollbackArgs, run: &Run) -> String {
    format!("{} restore --run {}{}", run.bin(), run.run_id, super::migrate::dir_flag(&a.connect.set.dir))
}

/// Writes `rollback-phaseN-<time>-<id>.md` beside the log file; returns its path.
fn write_markdown(a: &RollbackArgs, run: &mut Run, report: &Report, outcome: Option<&RunOutcome>, phase: Option<(String, String)>) -> Option<String> {
    let log = run.log_path().map(|p| p.to_path_buf())?;
    let path = log.with_extension("md");
    let db_user = run
        .client
        .as_mut()
        .and_then(|c| c.query_one("SELECT current_user::text", &[]).ok())
        .map(|r| r.get::<_, String>(0))
        .unwrap_or_else(|| "?".into());
    let (duration_s, started_at) = run.started();
    let error = report.error.as_ref().map(|e| crate::errors::render(e, run.bin()));
    let (phase_name, phase_summary) = phase.unwrap_or_default();
    let restore_command = restore_command(a, run);
    let health_command = format!("{} health{} --watch --interval 30s --duration 1h", run.bin(), super::migrate::dir_flag(&a.connect.set.dir));
    let log_file = display_path(&log);
    let database = phasegate::redact(a.connect.url());
    let operator = run.operator();
    let doc = RollbackDoc {
        run_id: &run.run_id,
        phase: a.phase,
        phase_name: &phase_name,
        phase_summary: &phase_summary,
        set_dir: &display_path(&a.connect.set.dir),
        database: &database,
        operator: &operator,
        db_user: &db_user,
        started_at: &started_at,
        duration_s,
        verdict: report.run_verdict(),
        exit_code: report.exit_code().code(),
        error: error.as_deref(),
        outcome,
        no_backup: a.no_backup,
        restore_command: &restore_command,
        health_command: &health_command,
        log_file: Some(&log_file),
    };
    let text = rollback_markdown(&doc);
    match std::fs::write(&path, text) {
        Ok(()) => {
            let shown = display_path(&path);
            run.note(&format!("report: {shown}"));
            Some(shown)
        }
        Err(e) => {
            run.note(&format!("warning: could not write the rollback report {}: {e}", display_path(&path)));
            None
        }
    }
}
