//! `validate`: run checks against the current database, print the decision table.

use super::{json, log_dir, Ctx, Report, Run};
use crate::exit::Exit;
use crate::cli::Shape;
use crate::cli::ValidateArgs;
use crate::report;

pub fn run(a: ValidateArgs, ctx: &mut Ctx) -> Exit {
    if let Some(file) = a.fleet.clone() {
        return super::fleet::run(super::fleet::Op::Validate(&a), &file, ctx);
    }
    let mut run = Run::new(ctx, ValidateArgs::NAME, a.phase, a.connect.set.format, log_dir(&a.connect));
    let report = body(&a, &mut run);
    run.finish(report)
}

fn body(a: &ValidateArgs, run: &mut Run) -> anyhow::Result<Report> {
    let set = phasegate::load_set(&a.connect.set.dir)?;
    run.connect(&a.connect, None)?;
    let mut client = run.client.take().expect("connected");
    let res = phasegate::validate(&mut client, &set, a.phase, a.when.map(Into::into));
    run.client = Some(client);
    let results = res?;
    let mut text = Vec::new();
    let overall = phasegate::worst_verdict(&results).into();
    let _ = report::decision_table(&mut text, &results, overall, run.style);
    Ok(Report {
        verdict: Some(phasegate::worst_verdict(&results)),
        checks: json(&results),
        text: String::from_utf8_lossy(&text).into_owned(),
        ci: run.ci(|| report::github::checks(&results), || format!("### phasegate validate\n\n{}", report::markdown::decision_table(&results, overall))),
        ..Default::default()
    })
}
