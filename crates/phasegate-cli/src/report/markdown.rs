//! `--format markdown`: the decision table, a run's steps and the lint
//! findings as GitHub-flavoured Markdown, for `$GITHUB_STEP_SUMMARY` or a
//! pull-request comment. (The rollback report, a document of its own, is
//! `report::rollback_markdown`.)

use super::RunVerdict;
use phasegate::{locks, rehearse, CheckResult, RunOutcome, StepStatus, Verdict};

/// `reservations ACCESS EXCLUSIVE 3.1 ms` and the statement's `file:line`, or `-`.
fn lock(h: Option<&locks::LockHold>) -> String {
    match h {
        Some(h) => format!("{} (`{}`)", cell(&h.summary()), cell(&h.at().to_string())),
        None => "-".into(),
    }
}

/// A table cell: pipes escaped, one line.
pub fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn verdict(v: impl Into<RunVerdict>) -> String {
    let v = v.into();
    let mark = match v {
        RunVerdict::Proceed => "✅",
        RunVerdict::Review => "⚠️",
        RunVerdict::Rollback => "❌",
        RunVerdict::Error => "⛔",
    };
    format!("{mark} **{v}**")
}

/// The decision table: a row per check, then the run's verdict (`overall`:
/// the checks' worst, or ERROR when the run failed).
pub fn decision_table(results: &[CheckResult], overall: RunVerdict) -> String {
    if results.is_empty() {
        return if overall == RunVerdict::Error { format!("No check ran.\n\n**Verdict:** {}\n", verdict(overall)) } else { "No check ran.\n".into() };
    }
    let mut s = String::from("| migration | check | when | value | threshold | verdict |\n|---|---|---|---:|---|---|\n");
    for r in results {
        s.push_str(&format!(
            "| V{} | `{}` | {} | {} | {} | {} |\n",
            r.version,
            cell(&r.check),
            r.when.as_str(),
            cell(&super::fmt_value(r.value, &r.unit)),
            cell(&r.threshold),
            verdict(r.verdict)
        ));
    }
    for r in results.iter().filter(|r| r.verdict > Verdict::Proceed) {
        for e in r.evidence.iter().take(3) {
            s.push_str(&format!("\n- `{}` (`{}:{}`) evidence: `{}`", r.check, cell(&r.file), r.line, cell(&e.to_string())));
        }
    }
    s.push_str(&format!("\n\n**Verdict:** {}\n", verdict(overall)));
    s
}

/// A migrate or rollback run: its steps, then the decision table.
pub fn run(title: &str, outcome: &RunOutcome) -> String {
    let mut s = format!("### {title}\n\n");
    if outcome.steps.is_empty() {
        s.push_str("Nothing to do.\n\n");
    } else {
        s.push_str("| phase | migration | name | result | duration | lock retries | longest blocking lock |\n|---:|---|---|---|---:|---:|---|\n");
        for st in &outcome.steps {
            let status = match st.status {
                StepStatus::Done => "done",
                StepStatus::Baselined => "recorded, not run (baseline present)",
                StepStatus::Aborted => "ABORTED (transaction rolled back)",
                StepStatus::Failed => "FAILED (transaction rolled back)",
            };
            s.push_str(&format!("| {} | V{} | {} | {status} | {:.1} ms | {} | {} |\n", st.phase, st.version, cell(&st.name), st.duration_ms, st.retries, lock(st.longest_blocking_lock())));
        }
        s.push('\n');
    }
    let checks: Vec<CheckResult> = outcome.checks().cloned().collect();
    s.push_str(&decision_table(&checks, RunVerdict::of(&checks, outcome.failure.is_some())));
    if let Some(p) = outcome.stopped_for_review {
        s.push_str(&format!("\nStopped after phase {p}: REVIEW; a human must look before the next phase.\n"));
    }
    s
}

/// Lint findings as a table, then the counts.
pub fn lint(findings: &[phasegate::lint::Finding]) -> String {
    let (errors, warnings, files) = phasegate::lint::summary(findings);
    let mut s = String::from("### phasegate lint\n\n");
    if findings.is_empty() {
        s.push_str("No findings.\n");
        return s;
    }
    s.push_str("| file | line | severity | rule | finding | fix |\n|---|---:|---|---|---|---|\n");
    for f in findings {
        s.push_str(&format!(
            "| `{}` | {} | {} | `{}` | {} | {} |\n",
            cell(&f.file),
            f.line,
            f.severity,
            cell(&f.rule),
            cell(&f.message),
            cell(f.fix.as_deref().unwrap_or(""))
        ));
    }
    s.push_str(&format!("\n{errors} error(s), {warnings} warning(s) in {files} file(s).\n"));
    s
}

/// The verify report: a row per phase (its result, verdict and time), the
/// counts, then each finding with its diff.
pub fn verify(r: &rehearse::Rehearsal) -> String {
    let mut s = String::from("### phasegate verify\n\n");
    let origins = r.phases.iter().any(|p| p.origin.is_some());
    s.push_str(if origins { "| phase | name | origin | result | verdict | time |\n|---:|---|---|---|---|---:|\n" } else { "| phase | name | result | verdict | time |\n|---:|---|---|---|---:|\n" });
    for p in &r.phases {
        let origin = match &p.origin {
            Some(o) => format!(" `{}` |", cell(&o.label())),
            None if origins => " |".into(),
            None => String::new(),
        };
        s.push_str(&format!("| {} | {} |{origin} {} | {} | {:.0} ms |\n", p.phase, cell(&p.name), p.result.as_str(), verdict(p.verdict), p.ms));
    }
    s.push_str(&format!("\n{}, in {:.1} s.\n", super::counts(&r.summary), r.ms / 1000.0));
    let steps: Vec<_> = r.phases.iter().flat_map(|p| p.steps.iter().filter(|st| super::LOCK_STEPS.contains(&st.step)).map(move |st| (p, st))).collect();
    if !steps.is_empty() {
        s.push_str("\n| phase | step | longest blocking lock |\n|---:|---|---|\n");
        for (p, st) in steps {
            s.push_str(&format!("| {} | {} | {} |\n", p.phase, st.step, lock(st.longest_blocking_lock())));
        }
    }
    for p in &r.phases {
        for f in &p.findings {
            let level = if f.fails(r.strict) { "❌" } else { "⚠️" };
            s.push_str(&format!("\n{level} **phase {} {}**: {}\n", p.phase, cell(&p.name), cell(&f.summary())));
            if let Some(diff) = f.diff() {
                s.push_str(&format!("\n```diff\n{}\n```\n", diff.trim_end()));
            }
        }
    }
    s
}
