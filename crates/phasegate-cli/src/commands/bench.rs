//! `bench`: the SPEC section 10 measurements in one run, as a table of
//! figures beside their targets, and as JSON.

use super::{failed, Ctx, Report, Run};
use crate::bench;
use crate::cli::BenchArgs;
use phasegate::error::{display_path, Error};

pub fn run(a: BenchArgs, ctx: &mut Ctx) -> i32 {
    let mut run = Run::new(ctx, "bench", None, a.set.format, None);
    run.audit = false;
    let backend = a.server.backend();
    let opts = bench::Options { backend, clinic_dir: &a.set.dir, only: a.only.clone(), backfill_rows: a.backfill_rows, verify_rows: a.verify_rows };
    let figures = match bench::run(&opts, &mut |line| run.say(line)) {
        Ok(f) => f,
        Err(e) => return run.finish(failed(e)),
    };
    let doc = serde_json::json!({ "figures": figures });
    if let Some(parent) = a.json.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    if let Err(e) = std::fs::write(&a.json, serde_json::to_string_pretty(&doc).unwrap_or_default()) {
        return run.finish(failed(Error::Io { path: a.json.clone(), source: e }));
    }
    let w = figures.iter().map(|f| f.bench.len()).max().unwrap_or(10);
    let mut text = String::new();
    for f in &figures {
        text.push_str(&format!("{:<w$}  {:<7} target {:<28} {}\n", f.bench, f.result, f.target, f.measured));
    }
    text.push_str(&format!("results written to {}\n", display_path(&a.json)));
    let mut json = serde_json::Map::new();
    json.insert("figures".into(), serde_json::to_value(&figures).unwrap_or_default());
    run.finish(Report { text, json, ..Default::default() })
}
