//! `history`: the audit log of past runs and the backups each one took.

use super::{failed, log_dir, Ctx, Report, Run};
use crate::cli::HistoryArgs;
use phasegate::{backup, ledger};

pub fn run(a: HistoryArgs, ctx: &mut Ctx) -> i32 {
    let mut run = Run::new(ctx, "history", None, a.connect.set.format, Some(log_dir(&a.connect)));
    run.audit = false;
    let client = match run.connect(&a.connect, None) {
        Ok(c) => c,
        Err(e) => return run.finish(failed(e)),
    };
    let rows = match ledger::history(client, a.limit) {
        Ok(r) => r,
        Err(e) => return run.finish(failed(e)),
    };
    let ids: Vec<String> = rows.iter().map(|r| r.run_id.clone()).collect();
    let backups = match backup::of_runs(client, &ids) {
        Ok(b) => b,
        Err(e) => return run.finish(failed(e)),
    };
    let mut text = String::new();
    for r in &rows {
        text.push_str(&format!(
            "{:>5} {} {:<9} {:<8} {:<9} exit {} {:>7} ms  {}@{} (db {}){}\n",
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
            r.error.as_ref().map(|e| format!("  error: {e}")).unwrap_or_default()
        ));
        for b in backups.get(&r.run_id).into_iter().flatten() {
            let restored = b.restored_at.as_ref().map(|t| format!(", restored {t}")).unwrap_or_default();
            text.push_str(&format!(
                "      backup V{} {} ({}): {} rows in {}{restored}  (cargo xtask restore --run {})\n",
                b.version,
                b.table,
                b.changes.join(", "),
                b.rows,
                b.backup_table,
                &r.run_id[..8]
            ));
        }
    }
    if rows.is_empty() {
        text.push_str("no runs recorded\n");
    }
    let mut json = serde_json::Map::new();
    let runs: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            v["backups"] = serde_json::to_value(backups.get(&r.run_id).cloned().unwrap_or_default()).unwrap_or_default();
            v
        })
        .collect();
    json.insert("runs".into(), runs.into());
    run.finish(Report { text, json, ..Default::default() })
}
