//! `snapshot`: print the normalised schema (and optionally row fingerprints).

use serde::Serialize;

use super::{log_dir, Ctx, Report, Run};
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
    let report = body(&a, &mut run);
    run.finish(report)
}

fn body(a: &SnapshotArgs, run: &mut Run) -> anyhow::Result<Report> {
    let client = run.connect(&a.connect, None)?;
    let opts = SnapshotOptions { fingerprint_rows: a.rows, ..Default::default() };
    let snap = phasegate::take_snapshot(client, &opts)?;
    let mut text = snap.schema.clone();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    for (t, f) in &snap.tables {
        text.push_str(&format!("rows {t}: {} rows, hash {}\n", f.rows, f.hash));
    }
    Ok(Report { text, ..Default::default() }.with_body(&SnapshotJson { snapshot: &snap }))
}
