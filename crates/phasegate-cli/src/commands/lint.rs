//! `lint`: the set's structure and the lock safety of every SQL file,
//! phase-aware (`phasegate::lint`). Needs no database.

use serde::Serialize;

use super::{Ctx, Report, Run};
use crate::exit::Exit;
use crate::cli::Shape;
use crate::cli::LintArgs;
use phasegate::lint;

/// `lint --format json`.
#[derive(Serialize)]
struct LintJson<'a> {
    findings: &'a [lint::Finding],
    summary: Summary,
}

#[derive(Serialize)]
struct Summary {
    findings: usize,
    errors: usize,
    warnings: usize,
    files: usize,
}

pub fn run(a: LintArgs, ctx: &mut Ctx) -> Exit {
    let mut run = Run::new(ctx, LintArgs::NAME, None, a.set.format, None);
    run.audit = false;
    let findings = phasegate::lint::dir(&a.set.dir);
    let (errors, warnings, files) = phasegate::lint::summary(&findings);
    let mut text = String::new();
    for f in &findings {
        text.push_str(&format!("{f}\n"));
    }
    let noun = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    if findings.is_empty() {
        // Say what was read, so "nothing found" cannot be mistaken for
        // "nothing looked at".
        let read = phasegate::load_set(&a.set.dir).map(|set| {
            let files: usize = set.phases.iter().flat_map(|p| &p.steps).map(|s| 2 + usize::from(s.rollback.is_some())).sum();
            format!(" in {} of {}", noun(files, "SQL file", "SQL files"), noun(set.phases.len(), "phase", "phases"))
        });
        text.push_str(&format!("no findings{}\n", read.unwrap_or_default()));
    } else {
        text.push_str(&format!(
            "{} ({}, {}) in {}\n",
            noun(findings.len(), "finding", "findings"),
            noun(errors, "error", "errors"),
            noun(warnings, "warning", "warnings"),
            noun(files, "file", "files"),
        ));
    }
    let failed = errors > 0 || (a.strict && findings.iter().any(|f| f.severity == lint::Severity::Warning));
    let summary = Summary { findings: findings.len(), errors, warnings, files };
    let ci = run.ci(|| crate::report::github::lint(&findings), || crate::report::markdown::lint(&findings));
    let report = Report { exit: Some(if failed { Exit::Failed } else { Exit::Ok }), text, ci, ..Default::default() }.with_body(&LintJson { findings: &findings, summary });
    run.finish(Ok(report))
}
