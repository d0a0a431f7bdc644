//! `snapshot`: print the normalised schema (and optionally row fingerprints).

use super::{failed, log_dir, Ctx, Report, Run};
use crate::cli::SnapshotArgs;
use phasegate::error::db_err;
use phasegate::snapshot;

pub fn run(a: SnapshotArgs, ctx: &mut Ctx) -> i32 {
    let mut run = Run::new(ctx, "snapshot", None, a.connect.set.format, Some(log_dir(&a.connect)));
    run.audit = false;
    let client = match run.connect(&a.connect, None) {
        Ok(c) => c,
        Err(e) => return run.finish(failed(e)),
    };
    let opts = snapshot::SnapshotOptions { fingerprint_rows: a.rows, ..Default::default() };
    let snap = match snapshot::take(client, &opts).map_err(db_err("taking the snapshot")) {
        Ok(s) => s,
        Err(e) => return run.finish(failed(e)),
    };
    let mut text = snap.schema.clone();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    for (t, f) in &snap.tables {
        text.push_str(&format!("rows {t}: {} rows, hash {}\n", f.rows, f.hash));
    }
    let mut json = serde_json::Map::new();
    json.insert("snapshot".into(), serde_json::to_value(&snap).unwrap_or_default());
    run.finish(Report { text, json, ..Default::default() })
}
