//! `history`: the audit log of past runs and the backups each one took.

use serde::Serialize;

use super::{log_dir, Ctx, Report, Run};
use crate::exit::Exit;
use crate::cli::Shape;
use crate::cli::HistoryArgs;
use phasegate::{backup, ledger};

/// `history --format json`: each run with the backups it took.
#[derive(Serialize)]
struct HistoryJson<'a> {
    runs: Vec<RunJson<'a>>,
}

#[derive(Serialize)]
struct RunJson<'a> {
    #[serde(flatten)]
    run: &'a ledger::HistoryRow,
    backups: &'a [backup::Stored],
}

pub fn run(a: HistoryArgs, ctx: &mut Ctx) -> Exit {
    let mut run = Run::new(ctx, HistoryArgs::NAME, None, a.connect.set.format, log_dir(&a.connect));
    run.audit = false;
    let report = body(&a, &mut run);
    run.finish(report)
}

fn body(a: &HistoryArgs, run: &mut Run) -> anyhow::Result<Report> {
    let client = run.connect(&a.connect, None)?;
    let rows = phasegate::ledger::history(client, a.limit)?;
    let ids: Vec<String> = rows.iter().map(|r| r.run_id.clone()).collect();
    let backups = phasegate::backup::of_runs(client, &ids)?;
    let mut text = String::new();
    for r in &rows {
        text.push_str(&format!(
            "{:>5} {} {:<9} {:<8} {:<9} exit {} {:>7} ms  {}@{} (db {}){}{}{}\n",
            r.id,
            r.started_at,
            r.command,
            r.phase.map(|p| format!("phase {p}")).unwrap_or_default(),
            r.verdict.clone().unwrap_or_else(|| "-".into()),
            r.exit_code,
            r.duration_ms,
            r.os_user.clone().unwrap_or_default(),
            r.client_host.clone().unwrap_or_default(),
            r.db_user,
            fleet_note(r),
            r.adopted.as_ref().map(|t| format!("  adopted {t}'s ledger")).unwrap_or_default(),
            r.error.as_ref().map(|e| format!("  error: {e}")).unwrap_or_default()
        ));
        for b in backups.get(&r.run_id).into_iter().flatten() {
            let restored = b.restored_at.as_ref().map(|t| format!(", restored {t}")).unwrap_or_default();
            text.push_str(&format!(
                "      backup V{} {} ({}): {} rows in {}{restored}  ({} restore --run {})\n",
                b.version,
                b.table,
                b.changes.join(", "),
                b.rows,
                b.backup_table,
                run.bin(),
                &r.run_id[..8]
            ));
        }
    }
    if rows.is_empty() {
        text.push_str("no runs recorded\n");
    }
    let runs = rows.iter().map(|r| RunJson { run: r, backups: backups.get(&r.run_id).map(Vec::as_slice).unwrap_or_default() }).collect();
    Ok(Report { text, ..Default::default() }.with_body(&HistoryJson { runs }))
}

/// `  fleet 3f2a9c1e as tenant-a`: the fleet run a run was part of.
fn fleet_note(r: &ledger::HistoryRow) -> String {
    match (&r.fleet_run, &r.fleet_member) {
        (Some(run), member) => format!("  fleet {} as {}", &run[..8.min(run.len())], member.as_deref().unwrap_or("?")),
        (None, _) => String::new(),
    }
}
