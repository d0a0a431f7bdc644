//! `rollback --phase N`: reverse one phase, newest migration first, backing
//! up the rows it changes, and write a Markdown report beside the log.

use super::{apply_options, failed, log_dir, outcome_report, Ctx, Report, Run};
use phasegate::apply;
use crate::cli::RollbackArgs;
use phasegate::error::{display_path, Error};
use crate::report::{rollback_markdown, RollbackDoc};
use phasegate::{db, ledger, set};

pub fn run(a: RollbackArgs, ctx: &mut Ctx) -> i32 {
    let mut run = Run::new(ctx, "rollback", Some(a.phase), a.connect.set.format, Some(log_dir(&a.connect)));
    run.yes = a.yes;
    run.audit = !a.dry_run;
    if a.no_backup {
        run.args.push("--no-backup".into());
    }
    let (mut report, outcome, phase) = body(&a, &mut run);
    if !a.dry_run {
        write_markdown(&a, &mut run, &mut report, outcome.as_ref(), phase);
    }
    run.finish(report)
}

fn set_dir_flag(a: &RollbackArgs) -> String {
    let dir = display_path(&a.connect.set.dir);
    if dir == "." || dir.is_empty() {
        String::new()
    } else {
        format!(" --dir {dir}")
    }
}

fn body(a: &RollbackArgs, run: &mut Run) -> (Report, Option<apply::RunOutcome>, Option<(String, String)>) {
    let set = match set::load(&a.connect.set.dir) {
        Ok(s) => s,
        Err(e) => return (failed(e), None, None),
    };
    let Some(phase) = set.phase(a.phase) else {
        return (failed(Error::Refused(format!("no phase {} in {}", a.phase, display_path(&set.dir.join(set::MANIFEST))))), None, None);
    };
    let names = Some((phase.name.clone(), phase.summary.clone()));
    if let Err(e) = apply::refuse_irreversible(phase) {
        return (failed(e), None, names);
    }
    if a.dry_run {
        return (dry_run(a, run, &set, phase), None, names);
    }
    let mut opts = apply_options(&a.timeouts, false, &run.run_id, &a.connect.database_url);
    opts.backup = !a.no_backup;
    if let Err(e) = run.connect(&a.connect, Some(a.timeouts.lock_wait)) {
        return (failed(e), None, names);
    }
    if a.no_backup {
        run.say("backups: skipped (--no-backup); the rows this rollback changes are not saved");
    }
    let mut client = run.client.take().expect("connected");
    let res = apply::rollback(&mut client, &set, a.phase, &opts, run);
    run.client = Some(client);
    match res {
        Ok(outcome) => {
            let summary = outcome.summary();
            let failed_run = outcome.failure.is_some();
            let backups: Vec<_> = outcome.backups().cloned().collect();
            let mut report = outcome_report(outcome, run.style);
            if !backups.is_empty() {
                let rows: i64 = backups.iter().map(|b| b.rows).sum();
                report.text.push_str(&format!(
                    "backed up {rows} rows in {} table(s) before changing them; restore them with: cargo xtask restore --run {}{}\n",
                    backups.len(),
                    run.run_id,
                    set_dir_flag(a)
                ));
            } else if !a.no_backup && !failed_run {
                report.text.push_str("backups: none needed (the rollback changed no existing rows)\n");
            }
            report.json.insert("backups".into(), serde_json::to_value(&backups).unwrap_or_default());
            report.json.insert("backup".into(), (!a.no_backup).into());
            (report, Some(summary), names)
        }
        Err(e) => (failed(e), None, names),
    }
}

fn dry_run(a: &RollbackArgs, run: &mut Run, set: &set::MigrationSet, phase: &set::Phase) -> Report {
    if let Err(e) = run.connect(&a.connect, None) {
        return failed(e);
    }
    let client = run.client.as_mut().expect("connected");
    let applied = match ledger::applied(client) {
        Ok(x) => x,
        Err(e) => return failed(e),
    };
    let steps = match apply::plan_rollback(set, phase, &applied) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
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
    Report { text, ..Default::default() }
}

/// Writes `rollback-phaseN-<time>-<id>.md` beside the log file.
fn write_markdown(a: &RollbackArgs, run: &mut Run, report: &mut Report, outcome: Option<&apply::RunOutcome>, phase: Option<(String, String)>) {
    let Some(log) = run.log_path().map(|p| p.to_path_buf()) else { return };
    let path = log.with_extension("md");
    let db_user = run
        .client
        .as_mut()
        .and_then(|c| c.query_one("SELECT current_user::text", &[]).ok())
        .map(|r| r.get::<_, String>(0))
        .unwrap_or_else(|| "?".into());
    let (duration_s, started_at) = run.started();
    let error = report.error.as_ref().map(|e| e.to_string());
    let (phase_name, phase_summary) = phase.unwrap_or_default();
    let restore_command = format!("cargo xtask restore --run {}{}", run.run_id, set_dir_flag(a));
    let health_command = format!("cargo xtask health{} --watch --interval 30s --duration 1h", set_dir_flag(a));
    let log_file = display_path(&log);
    let database = db::redact(&a.connect.database_url);
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
        verdict: report.verdict,
        exit_code: report.exit_code(),
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
            report.json.insert("report_file".into(), shown.clone().into());
            run.note(&format!("report: {shown}"));
        }
        Err(e) => run.note(&format!("warning: could not write the rollback report {}: {e}", display_path(&path))),
    }
}
