//! `plan`: each phase's risk, the locks it takes, whether data can be lost,
//! and its lint findings.

use serde::Serialize;

use super::{Ctx, Report, Run};
use crate::exit::Exit;
use crate::cli::Shape;
use crate::cli::PlanArgs;
use phasegate::{lint, PhasePlan};

/// `plan --format json`.
#[derive(Serialize)]
struct PlanJson<'a> {
    phases: &'a [PhasePlan],
}

pub fn run(a: PlanArgs, ctx: &mut Ctx) -> Exit {
    let mut run = Run::new(ctx, PlanArgs::NAME, None, a.set.format, None);
    run.audit = false;
    let report = body(&a);
    run.finish(report)
}

fn body(a: &PlanArgs) -> anyhow::Result<Report> {
    let set = phasegate::load_set(&a.set.dir)?;
    let plans: Vec<PhasePlan> = set.phases.iter().map(phasegate::plan_phase).collect();
    let mut text = String::new();
    // Names as long as `change` writes them keep the columns aligned.
    let wn = plans.iter().map(|p| p.name.chars().count()).max().unwrap_or(0).max(12);
    for p in &plans {
        text.push_str(&format!(
            "phase {} {:<wn$} risk {:<12} data loss {:<3} rollback discards data {:<3} lint {:<20} locks {}\n",
            p.id,
            p.name,
            format!("{:?}", p.risk).to_lowercase(),
            if p.data_loss { "yes" } else { "no" },
            if p.rollback_discards { "yes" } else { "no" },
            lint_count(&p.findings),
            if p.locks.is_empty() { "none".to_string() } else { p.locks.join(", ") }
        ));
        for e in &p.effects {
            if e.lock != "none" {
                text.push_str(&format!("    {}:{} {} -> {}\n", e.file, e.line, e.statement, e.lock));
            }
        }
        for f in &p.findings {
            text.push_str(&format!("    {f}\n"));
        }
        if !p.keeps.is_empty() {
            text.push_str("    kept before it runs (the way back: recover --phase N; sizes in migrate and recover --dry-run):\n");
            for k in &p.keeps {
                text.push_str(&format!("      {}:{} {}\n", k.file, k.line, k.kept));
            }
        }
    }
    Ok(Report { text, ..Default::default() }.with_body(&PlanJson { phases: &plans }))
}

/// `none`, or `2 errors, 1 warning`.
fn lint_count(findings: &[lint::Finding]) -> String {
    let (errors, warnings, _) = phasegate::lint::summary(findings);
    let mut parts = Vec::new();
    if errors > 0 {
        parts.push(format!("{errors} error{}", if errors == 1 { "" } else { "s" }));
    }
    if warnings > 0 {
        parts.push(format!("{warnings} warning{}", if warnings == 1 { "" } else { "s" }));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}
