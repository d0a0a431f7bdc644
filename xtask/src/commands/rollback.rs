//! `rollback --phase N`: reverse one phase, newest migration first.

use super::{apply_options, failed, log_dir, outcome_report, Ctx, Report, Run};
use crate::apply;
use crate::cli::RollbackArgs;
use crate::error::{display_path, Error};
use crate::{ledger, set};

pub fn run(a: RollbackArgs, ctx: &mut Ctx) -> i32 {
    let mut run = Run::new(ctx, "rollback", Some(a.phase), a.connect.set.format, Some(log_dir(&a.connect)));
    run.yes = a.yes;
    run.audit = !a.dry_run;
    let report = body(&a, &mut run);
    run.finish(report)
}

fn body(a: &RollbackArgs, run: &mut Run) -> Report {
    let set = match set::load(&a.connect.set.dir) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let Some(phase) = set.phase(a.phase) else {
        return failed(Error::Refused(format!("no phase {} in {}", a.phase, display_path(&set.dir.join(set::MANIFEST)))));
    };
    if let Err(e) = apply::refuse_irreversible(phase) {
        return failed(e);
    }
    if a.dry_run {
        if let Err(e) = run.connect(&a.connect, None) {
            return failed(e);
        }
        let client = run.client.as_mut().expect("connected");
        let applied = match ledger::applied(client) {
            Ok(x) => x,
            Err(e) => return failed(e),
        };
        let steps = match apply::plan_rollback(&set, phase, &applied) {
            Ok(s) => s,
            Err(e) => return failed(e),
        };
        let mut text = String::new();
        for s in steps {
            let stored = applied[&s.version].rollback_sql.clone();
            let sql = stored.or_else(|| s.rollback.as_ref().map(|r| r.text.clone())).unwrap_or_default();
            text.push_str(&format!("-- rollback phase {} · V{} {} (SQL stored at apply time)\n{}\n\n", s.phase, s.version, s.name, sql.trim_end()));
        }
        text.push_str("-- dry run: nothing was changed\n");
        return Report { text, ..Default::default() };
    }
    let opts = apply_options(&a.timeouts, false, &run.run_id, &a.connect.database_url);
    if let Err(e) = run.connect(&a.connect, Some(a.timeouts.lock_wait)) {
        return failed(e);
    }
    let mut client = run.client.take().expect("connected");
    let res = apply::rollback(&mut client, &set, a.phase, &opts, run);
    run.client = Some(client);
    match res {
        Ok(outcome) => outcome_report(outcome, run.style),
        Err(e) => failed(e),
    }
}
