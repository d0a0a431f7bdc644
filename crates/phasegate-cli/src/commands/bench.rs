//! `bench`: the measurements of docs/targets.md in one run, as a table of
//! figures beside their targets, and as JSON.

use anyhow::Context;
use serde::Serialize;

use super::{Ctx, Report, Run};
use crate::exit::Exit;
use crate::cli::Shape;
use crate::bench::{self, Figure};
use crate::cli::BenchArgs;
use phasegate::display_path;

/// `bench --format json`, and the file `--json` names.
#[derive(Serialize)]
struct BenchJson<'a> {
    figures: &'a [Figure],
}

pub fn run(a: BenchArgs, ctx: &mut Ctx) -> Exit {
    let mut run = Run::new(ctx, BenchArgs::NAME, None, a.set.format, None);
    run.audit = false;
    run.html_to(a.html.html.clone(), &a.set.dir);
    let report = body(&a, &mut run);
    run.finish(report)
}

fn body(a: &BenchArgs, run: &mut Run) -> anyhow::Result<Report> {
    let backend = a.server.backend();
    let report_dir = a.json.parent().map(|p| p.to_path_buf()).unwrap_or_default();
    let opts = bench::Options { backend, clinic_dir: &a.set.dir, only: a.only.clone(), backfill_rows: a.backfill_rows, verify_rows: a.verify_rows, report_dir };
    let figures = bench::run(&opts, &mut |line| run.say(line))?;
    let doc = BenchJson { figures: &figures };
    if let Some(parent) = a.json.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(&a.json, serde_json::to_string_pretty(&doc).expect("figures serialise")).with_context(|| display_path(&a.json))?;
    let w = figures.iter().map(|f| f.bench.len()).max().unwrap_or(10);
    let mut text = String::new();
    for f in &figures {
        text.push_str(&format!("{:<w$}  {:<7} target {:<28} {}\n", f.bench, f.result, f.target, f.measured));
    }
    text.push_str(&format!("results written to {}\n", display_path(&a.json)));
    let html = run.wants_html().then(|| crate::report::html::bench(&run.page_meta(None, None), &figures));
    Ok(Report { text, html, ..Default::default() }.with_body(&doc))
}
