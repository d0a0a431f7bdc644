//! `validate`: run checks against the current database, print the decision table.

use super::{failed, log_dir, Ctx, Report, Run};
use phasegate::apply;
use crate::cli::ValidateArgs;
use crate::report;
use phasegate::{check, set};

pub fn run(a: ValidateArgs, ctx: &mut Ctx) -> i32 {
    let mut run = Run::new(ctx, "validate", a.phase, a.connect.set.format, Some(log_dir(&a.connect)));
    let report = body(&a, &mut run);
    run.finish(report)
}

fn body(a: &ValidateArgs, run: &mut Run) -> Report {
    let set = match set::load(&a.connect.set.dir) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    if let Err(e) = run.connect(&a.connect, None) {
        return failed(e);
    }
    let mut client = run.client.take().expect("connected");
    let res = apply::validate(&mut client, &set, a.phase, a.when.map(Into::into));
    run.client = Some(client);
    match res {
        Ok(results) => {
            let mut text = Vec::new();
            let _ = report::decision_table(&mut text, &results, run.style);
            Report {
                verdict: Some(check::worst(&results)),
                checks: serde_json::to_value(&results).unwrap_or_default(),
                text: String::from_utf8_lossy(&text).into_owned(),
                ..Default::default()
            }
        }
        Err(e) => failed(e),
    }
}
