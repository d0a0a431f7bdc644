//! `restore --run ID`: put back the rows a rollback backed up, in one
//! transaction under the migration lock, audited like every command.

use serde::Serialize;

use super::{log_dir, Ctx, Report, Run};
use crate::exit::Exit;
use crate::cli::Shape;
use crate::cli::RestoreArgs;
use phasegate::{backup, Confirmation, Error, Ui};

/// `restore --format json`.
#[derive(Serialize, Default)]
struct RestoreJson {
    restored_run: String,
    backups: Vec<backup::Stored>,
    restored: Option<Vec<backup::Restored>>,
}

pub fn run(a: RestoreArgs, ctx: &mut Ctx) -> Exit {
    let mut run = Run::new(ctx, RestoreArgs::NAME, None, a.connect.set.format, log_dir(&a.connect));
    run.yes = a.confirm.yes;
    run.audit = !a.confirm.dry_run;
    run.args = vec!["--run".into(), a.run.clone()];
    let report = body(&a, &mut run);
    run.finish(report)
}

fn body(a: &RestoreArgs, run: &mut Run) -> anyhow::Result<Report> {
    let lock = if a.confirm.dry_run { None } else { Some(a.timeouts.lock_wait) };
    run.connect(&a.connect, lock)?;
    let client = run.client.as_mut().expect("connected");
    let (run_id, backups) = phasegate::backup::of_run(client, &a.run)?;
    let mut text = String::new();
    let total: i64 = backups.iter().map(|b| b.rows).sum();
    run.say(&format!("run {run_id} backed up {total} rows in {} table(s):", backups.len()));
    for b in &backups {
        let restored = b.restored_at.as_ref().map(|t| format!("  (restored before, at {t})")).unwrap_or_default();
        run.say(&format!("  V{} {} ({}): {} rows in {}{restored}", b.version, b.table, b.changes.join(", "), b.rows, b.backup_table));
    }
    if a.confirm.dry_run {
        text.push_str("dry run: nothing was changed\n");
        return Ok(Report { text, ..Default::default() }.with_body(&RestoreJson { restored_run: run_id, backups, restored: None }));
    }
    let short = &run_id[..8];
    let prompt = format!("this writes {total} backed-up rows back into {} table(s). Type `restore {short}` to continue", backups.len());
    if !run.confirm(&prompt, &format!("restore {short}")) {
        return Err(Error::NotConfirmed(Confirmation::Restore { run: run_id.clone(), short: short.to_string() }).into());
    }
    let client = run.client.as_mut().expect("connected");
    let mut doc = RestoreJson { restored_run: run_id.clone(), ..Default::default() };
    let restored = match phasegate::backup::restore(client, &backups, &run.run_id.clone(), a.timeouts.lock_timeout.as_millis()) {
        Ok(r) => r,
        // The report still lists the backups it could not restore.
        Err(e) => return Ok(Report::failed(e).with_body(&RestoreJson { backups, ..doc })),
    };
    for r in &restored {
        text.push_str(&format!(
            "restored {}: {} rows updated, {} inserted, {} already as backed up{}\n",
            r.table,
            r.updated,
            r.inserted,
            r.unchanged,
            if r.skipped > 0 { format!(", {} skipped (their rows no longer exist)", r.skipped) } else { String::new() }
        ));
    }
    doc.backups = backups;
    doc.restored = Some(restored);
    Ok(Report { text, ..Default::default() }.with_body(&doc))
}
