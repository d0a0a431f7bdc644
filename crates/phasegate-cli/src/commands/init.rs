//! `init [--dir DIR] [--baseline-from URL]`: write a new migration set
//! (`phasegate::init`), optionally with a live database's schema as its
//! baseline phase.

use serde::Serialize;

use super::{Ctx, Report, Run};
use crate::exit::Exit;
use crate::cli::Shape;
use crate::cli::InitArgs;
use phasegate::display_path;

/// `init --format json`: the files written, and the baseline's tables.
#[derive(Serialize)]
struct InitJson<'a> {
    files: &'a [String],
    baseline_tables: Option<&'a [String]>,
}

pub fn run(a: InitArgs, ctx: &mut Ctx) -> Exit {
    let mut run = Run::new(ctx, InitArgs::NAME, None, a.set.format, None);
    run.audit = false;
    let bin = run.bin().to_string();
    let report = match write(&a) {
        Ok((files, tables)) => {
            let mut text: String = files.iter().map(|f| format!("created {f}\n")).collect();
            let dir = super::migrate::dir_flag(&a.set.dir);
            if let (Some(t), Some(url)) = (&tables, &a.baseline_from) {
                text.push_str(&format!(
                    "phase 0 is the baseline read from {} ({} tables): `{bin} migrate{dir}` on that database records it as applied without running it, and applies phase 1; from then on `{bin} change ...{dir} --database-url URL` writes changes against that database's schema and rows\n",
                    phasegate::redact(url),
                    t.len()
                ));
            }
            text.push_str(&format!(
                "next: `{bin} new NAME --phase 1{dir}` (or `{bin} change ...{dir}`), then `{bin} lint{dir}`, `{bin} verify{dir}` and `{bin} migrate{dir}`\n"
            ));
            Ok(Report { text, ..Default::default() }.with_body(&InitJson { files: &files, baseline_tables: tables.as_deref() }))
        }
        Err(e) => Err(e.into()),
    };
    run.finish(report)
}

/// Checks the folder, reads the baseline when asked, writes the set.
fn write(a: &InitArgs) -> phasegate::Result<(Vec<String>, Option<Vec<String>>)> {
    let dir = &a.set.dir;
    phasegate::init::check(dir, a.baseline_from.is_some())?;
    let baseline = match &a.baseline_from {
        Some(url) => {
            let mut client = phasegate::connect(url, "phasegate init")?;
            let b = phasegate::init::read_baseline(&mut client, url);
            phasegate::end_session(client);
            Some(b?)
        }
        None => None,
    };
    let written = phasegate::init::init(dir, baseline.as_ref())?;
    Ok((written.iter().map(|p| display_path(p)).collect(), baseline.map(|b| b.tables)))
}
