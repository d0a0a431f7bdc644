//! `history`: the audit log of past runs.

use super::{failed, log_dir, Ctx, Report, Run};
use crate::cli::HistoryArgs;
use crate::ledger;

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
    }
    if rows.is_empty() {
        text.push_str("no runs recorded\n");
    }
    let mut json = serde_json::Map::new();
    json.insert("runs".into(), serde_json::to_value(&rows).unwrap_or_default());
    run.finish(Report { text, json, ..Default::default() })
}
