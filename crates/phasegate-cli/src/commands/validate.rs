//! `validate`: run checks against the current database, print the decision table.

use super::{failed, json, log_dir, Ctx, Report, Run};
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

fn body(a: &ValidateArgs, run: &mut Run) -> Report {
    let set = match phasegate::load_set(&a.connect.set.dir) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    if let Err(e) = run.connect(&a.connect, None) {
        return failed(e);
    }
    let mut client = run.client.take().expect("connected");
    let res = phasegate::validate(&mut client, &set, a.phase, a.when.map(Into::into));
    run.client = Some(client);
    match res {
        Ok(results) => {
            let mut text = Vec::new();
            let overall = phasegate::worst_verdict(&results).into();
            let _ = report::decision_table(&mut text, &results, overall, run.style);
            Report {
                verdict: Some(phasegate::worst_verdict(&results)),
                checks: json(&results),
                text: String::from_utf8_lossy(&text).into_owned(),
                ci: run.ci(|| report::github::checks(&results), || format!("### phasegate validate\n\n{}", report::markdown::decision_table(&results, overall))),
                ..Default::default()
            }
        }
        Err(e) => failed(e),
    }
}
