//! `lint`: the set's structure and the lock safety of every SQL file,
//! phase-aware (`phasegate::lint`). Needs no database.

use super::{Ctx, Report, Run};
use crate::cli::LintArgs;
use phasegate::lint::{self, Severity};

pub fn run(a: LintArgs, ctx: &mut Ctx) -> i32 {
    let mut run = Run::new(ctx, "lint", None, a.set.format, None);
    run.audit = false;
    let findings = lint::lint_dir(&a.set.dir);
    let (errors, warnings, files) = lint::summary(&findings);
    let mut text = String::new();
    for f in &findings {
        text.push_str(&format!("{f}\n"));
    }
    let noun = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    text.push_str(&format!(
        "{} ({}, {}) in {}\n",
        noun(findings.len(), "finding", "findings"),
        noun(errors, "error", "errors"),
        noun(warnings, "warning", "warnings"),
        noun(files, "file", "files"),
    ));
    let failed = errors > 0 || (a.strict && findings.iter().any(|f| f.severity == Severity::Warning));
    let mut json = serde_json::Map::new();
    json.insert("findings".into(), serde_json::to_value(&findings).unwrap_or_default());
    json.insert("summary".into(), serde_json::json!({ "findings": findings.len(), "errors": errors, "warnings": warnings, "files": files }));
    run.finish(Report { exit: Some(i32::from(failed)), text, json, ..Default::default() })
}
