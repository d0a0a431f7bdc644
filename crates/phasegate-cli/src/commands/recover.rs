//! `recover --phase N`: the way back from an irreversible phase. Re-creates
//! what its migrations dropped and restores what `migrate` kept before they
//! ran, in one transaction under the migration lock, with the phase's
//! before-migrate checks; `--dry-run` prints the plan.

use serde::Serialize;

use super::migrate::dir_flag;
use crate::exit::Exit;
use crate::cli::Shape;
use super::{exit_for, json, log_dir, Ctx, Report, Run};
use crate::cli::RecoverArgs;
use crate::report::html;
use phasegate::{backup, recover, Verdict};

/// `recover --format json`.
#[derive(Serialize)]
struct RecoverJson<'a> {
    dry_run: bool,
    recovery: Option<&'a recover::Recovery>,
    committed: bool,
    recovered: Option<&'a backup::Recovered>,
}

pub fn run(a: RecoverArgs, ctx: &mut Ctx) -> Exit {
    let mut run = Run::new(ctx, RecoverArgs::NAME, Some(a.phase), a.connect.set.format, log_dir(&a.connect));
    run.yes = a.confirm.yes;
    run.audit = !a.confirm.dry_run;
    run.html_to(a.html.html.clone(), &a.connect.set.dir);
    let report = body(&a, &mut run);
    run.finish(report)
}

/// The plan of a recovery, as `--dry-run` prints it.
pub fn plan_text(r: &recover::Recovery) -> String {
    let mut text = format!(
        "-- recovery of phase {} ({}): migrations {} (newest first), {} kept rows\n",
        r.phase,
        r.name,
        r.versions.iter().map(|v| format!("V{v}")).collect::<Vec<_>>().join(", "),
        r.kept_rows
    );
    let mut stage = None;
    for s in &r.plan.statements {
        if stage != Some(s.stage) {
            stage = Some(s.stage);
            text.push_str(match s.stage {
                backup::Stage::Create => "\n-- 1. re-create what was dropped\n",
                backup::Stage::Restore => "\n-- 2. restore the kept data by key\n",
                backup::Stage::Replay => "\n-- 3. rows written since: through the dropped sync triggers, else kept values, else NULL (counted)\n",
                backup::Stage::Finish => "\n-- 4. defaults, NOT NULL, constraints, indexes, triggers\n",
            });
        }
        text.push_str(&format!("{};  -- V{}\n", s.sql.trim_end(), s.version));
    }
    for u in &r.plan.unkept {
        text.push_str(&format!("-- {u}\n"));
    }
    text.push_str("\n-- then: the phase's before-migrate checks, and its migrations removed from the ledger\n");
    text
}

fn body(a: &RecoverArgs, run: &mut Run) -> anyhow::Result<Report> {
    let set = phasegate::load_set(&a.connect.set.dir)?;
    let lock = if a.confirm.dry_run { None } else { Some(a.timeouts.lock_wait) };
    run.connect(&a.connect, lock)?;
    if a.confirm.dry_run {
        let client = run.client.as_mut().expect("connected");
        let recovery = phasegate::recover::plan(client, &set, a.phase)?;
        let mut text = plan_text(&recovery);
        text.push_str("-- dry run: nothing was changed\n");
        let html = run.wants_html().then(|| html::recover_plan(&run.page_meta(Some(a.connect.url()), None), &recovery));
        return Ok(Report { text, html, ..Default::default() }.with_body(&RecoverJson { dry_run: true, recovery: Some(&recovery), committed: false, recovered: None }));
    }
    let opts = super::apply_options(&a.timeouts, false, &run.run_id, a.connect.url());
    let mut client = run.client.take().expect("connected");
    let res = phasegate::recover::run(&mut client, &set, a.phase, &opts, run);
    run.client = Some(client);
    let o = res?;
    let mut text = recovered_text(&o);
    let again = format!("{} migrate --phase {}{}", run.bin(), o.recovery.phase, dir_flag(&a.connect.set.dir));
    if o.committed {
        text.push_str(&format!("recovered phase {} ({}) in {:.0} ms: it is no longer applied; `{again}` re-applies it\n", o.recovery.phase, o.recovery.name, o.duration_ms));
    } else {
        text.push_str(&format!("a before-migrate check of phase {} failed after the recovery: it was undone, the phase stays applied\n", o.recovery.phase));
    }
    let verdict = if o.committed { o.verdict } else { Verdict::Rollback };
    let html = run.wants_html().then(|| html::recover(&run.page_meta(Some(a.connect.url()), None), &o, &again));
    Ok(Report { verdict: Some(verdict), exit: Some(exit_for(verdict)), checks: json(&o.checks), text, html, ..Default::default() }.with_body(&RecoverJson {
        dry_run: false,
        recovery: Some(&o.recovery),
        committed: o.committed,
        recovered: o.recovered.as_ref(),
    }))
}

/// What came back, a line per table (and what did not).
pub fn recovered_text(o: &recover::Outcome) -> String {
    let mut text = String::new();
    if let Some(r) = &o.recovered {
        for t in &r.tables {
            text.push_str(&format!("  {} (V{}): {} rows restored from what was kept", t.table, t.version, t.restored + t.inserted));
            if t.written_since > 0 {
                text.push_str(&format!(
                    "; {} written or changed since: {} filled by the kept triggers, {} refused by them, {} given their kept values",
                    t.written_since, t.replayed, t.replay_refused, t.kept_values_used
                ));
            }
            if let Some(e) = &t.first_refusal {
                text.push_str(&format!(" (first refusal: {e})"));
            }
            let nulls: Vec<String> = t.left_null.iter().filter(|(_, n)| *n > 0).map(|(c, n)| format!("{c}: {n}")).collect();
            if !nulls.is_empty() {
                text.push_str(&format!("; rows written since left NULL ({})", nulls.join(", ")));
            }
            text.push('\n');
        }
        for n in &r.not_null_skipped {
            text.push_str(&format!("  NOT NULL not restored on {n}\n"));
        }
        for u in &r.unkept {
            text.push_str(&format!("  {u}\n"));
        }
    }
    text
}
