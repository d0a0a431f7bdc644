//! `snapshot`: print the normalised schema (and optionally row fingerprints).

use serde::Serialize;

use super::{failed, log_dir, Ctx, Report, Run};
use crate::exit::Exit;
use crate::cli::Shape;
use crate::cli::SnapshotArgs;
use phasegate::{Snapshot, SnapshotOptions};

#[derive(Serialize)]
struct SnapshotJson<'a> {
    snapshot: &'a Snapshot,
}

pub fn run(a: SnapshotArgs, ctx: &mut Ctx) -> Exit {
    let mut run = Run::new(ctx, SnapshotArgs::NAME, None, a.connect.set.format, log_dir(&a.connect));
    run.audit = false;
    let client = match run.connect(&a.connect, None) {
        Ok(c) => c,
        Err(e) => return run.finish(failed(e)),
    };
    let opts = SnapshotOptions { fingerprint_rows: a.rows, ..Default::default() };
    let snap = match phasegate::take_snapshot(client, &opts) {
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
    let report = Report { text, ..Default::default() }.with_body(&SnapshotJson { snapshot: &snap });
    run.finish(report)
}
