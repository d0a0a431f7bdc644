//! Rendering results for people (an aligned decision table) and machines
//! (stable JSON). The JSON shapes are documented in docs/json.md.

pub mod github;
pub mod html;
pub mod markdown;
mod verdict;

pub use verdict::RunVerdict;

use std::io::Write;

use phasegate::{backup, locks, rehearse, Action, CheckResult, RunOutcome, StepOutcome, StepStatus, Verdict, When};

/// Formats a check value with its unit: `0 rows`, `0.4 percent`; a metric
/// with nothing to measure (its query returned NULL) is `no rows`.
pub fn fmt_value(v: Option<f64>, unit: &str) -> String {
    let Some(v) = v else { return EMPTY_VALUE.to_string() };
    let n = if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v:.3}").trim_end_matches('0').trim_end_matches('.').to_string() };
    format!("{n} {unit}")
}

/// How a metric with nothing to measure shows in every human-readable output.
pub const EMPTY_VALUE: &str = "no rows";

/// ANSI colours, off unless the output is a terminal and NO_COLOR is unset
/// (the CLI decides).
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
}

impl Style {
    /// A verdict (a check's, or a run's, which may be ERROR), coloured.
    pub fn verdict(&self, v: impl Into<RunVerdict>) -> String {
        let v = v.into();
        if !self.color {
            return v.to_string();
        }
        let code = match v {
            RunVerdict::Proceed => "32",
            RunVerdict::Review => "33",
            RunVerdict::Rollback | RunVerdict::Error => "31;1",
        };
        format!("\x1b[{code}m{v}\x1b[0m")
    }
}

/// The decision table: one line per check, then the run's verdict
/// (`overall`: the checks' worst, or ERROR when the run failed).
pub fn decision_table(out: &mut dyn Write, results: &[CheckResult], overall: RunVerdict, style: Style) -> std::io::Result<()> {
    if results.is_empty() {
        return writeln!(out, "no checks ran");
    }
    let w_check = results.iter().map(|r| r.check.len()).max().unwrap_or(5).max(5);
    let vals: Vec<String> = results.iter().map(|r| fmt_value(r.value, &r.unit)).collect();
    let w_val = vals.iter().map(|v| v.len()).max().unwrap_or(5).max(5);
    let w_thr = results.iter().map(|r| r.threshold.len()).max().unwrap_or(9).max(9);
    writeln!(out, "{:<5} {:<w_check$}  {:<15} {:>w_val$}  {:<w_thr$}  VERDICT", "V", "CHECK", "WHEN", "VALUE", "THRESHOLD")?;
    for (r, v) in results.iter().zip(&vals) {
        let verdict = match &r.skipped {
            Some(why) => format!("skipped ({why})"),
            None => style.verdict(r.verdict).to_string(),
        };
        writeln!(out, "{:<5} {:<w_check$}  {:<15} {:>w_val$}  {:<w_thr$}  {verdict}", format!("V{}", r.version), r.check, r.when.as_str(), v, r.threshold)?;
        for e in r.evidence.iter().take(3) {
            writeln!(out, "      evidence: {e}")?;
        }
    }
    writeln!(out, "verdict: {}", style.verdict(overall))
}

/// A blocking lock held at least this long gets a line under its step in
/// migrate's and rollback's text output (shorter ones are in the JSON).
pub const LOCK_LINE_MS: f64 = 10.0;

/// One line per step of a run (and one for its longest blocking lock, when
/// it was held for [`LOCK_LINE_MS`] or over `--max-lock-hold`), then the
/// decision table of its checks.
pub fn run_summary(out: &mut dyn Write, outcome: &RunOutcome, style: Style) -> std::io::Result<()> {
    for s in &outcome.steps {
        writeln!(out, "{}", step_line(s))?;
        let over_limit = s.checks.iter().any(|c| c.check == phasegate::locks::MAX_LOCK_HOLD_CHECK);
        if let Some(h) = s.longest_blocking_lock().filter(|h| h.held_ms >= LOCK_LINE_MS || over_limit) {
            writeln!(out, "        longest blocking lock: {} (blocks {}) by `{}` at {}", h.summary(), blocks(h), h.statement, h.at())?;
        }
    }
    let checks: Vec<CheckResult> = outcome.checks().cloned().collect();
    let overall = RunVerdict::of(&checks, outcome.failure.is_some());
    if !checks.is_empty() {
        decision_table(out, &checks, overall, style)?;
    } else if overall == RunVerdict::Error {
        writeln!(out, "verdict: {}", style.verdict(overall))?;
    }
    if let Some(p) = outcome.stopped_for_review {
        writeln!(out, "stopped after phase {p}: REVIEW; a human must look before the next phase (--accept-review continues)")?;
    }
    Ok(())
}

fn step_line(s: &StepOutcome) -> String {
    let action = match s.action {
        Action::Apply => "applied",
        Action::Rollback => "rolled back",
    };
    let status = match s.status {
        StepStatus::Done => action.to_string(),
        StepStatus::Baselined => "recorded, not run (baseline present)".to_string(),
        StepStatus::Aborted => "ABORTED (transaction rolled back)".to_string(),
        StepStatus::Failed => "FAILED (transaction rolled back)".to_string(),
    };
    let mut line = format!("phase {} V{:<3} {:<40} {:<34} {:>9.1} ms", s.phase, s.version, s.name, status, s.duration_ms);
    if s.retries > 0 {
        line.push_str(&format!("  ({} lock retries)", s.retries));
    }
    if let Some(r) = s.rows {
        line.push_str(&format!("  {r} rows"));
    }
    line
}

/// `writers` or `readers and writers`.
pub(crate) fn blocks(h: &locks::LockHold) -> &'static str {
    match h.blocks {
        locks::Blocks::Readers => "readers and writers",
        locks::Blocks::Writers => "writers",
        locks::Blocks::None => "nobody",
    }
}

/// `reservations ACCESS EXCLUSIVE 3.1 ms`, or `-` when no lock blocked anyone.
pub fn lock_cell(h: Option<&locks::LockHold>) -> String {
    h.map(|h| h.summary()).unwrap_or_else(|| "-".into())
}

const VERIFY_STEPS: [&str; 5] = ["migrate", "rollback", "compare", "re-apply", "compare "];

/// The rehearsal steps whose longest blocking lock verify shows. The
/// re-apply runs the migrate's statements again (its locks are in the
/// JSON): in a transaction rehearsal it shares the rollback's transaction,
/// where a lock the rollback took hides the same lock taken again.
pub const LOCK_STEPS: [&str; 2] = ["migrate", "rollback"];

/// `phase 3 V1.2__add (flyway 1.2, db/V1.2__add.sql:1)`: a phase with its
/// origin, for another tool's migrations.
fn phase_title(p: &rehearse::PhaseRehearsal) -> String {
    match &p.origin {
        Some(o) => format!("phase {} {} ({}, {}:{})", p.phase, p.name, o.label(), phasegate::display_path(&o.file), o.line),
        None => format!("phase {} {}", p.phase, p.name),
    }
}

/// The verify report: phases by steps with timings and verdicts (and, for
/// another tool's migrations, each one's tool and label), then each finding
/// with its diff and the command that shows it again.
pub fn verify_table(out: &mut dyn Write, r: &rehearse::Rehearsal, style: Style, rerun: &str) -> std::io::Result<()> {
    let w_name = r.phases.iter().map(|p| p.name.len()).max().unwrap_or(5).clamp(5, 40);
    let w_origin = r.phases.iter().filter_map(|p| p.origin.as_ref()).map(|o| o.label().len()).max().unwrap_or(0).clamp(0, 40);
    write!(out, "{:<4} {:<w_name$}", "", "PHASE")?;
    if w_origin > 0 {
        write!(out, " {:<w_origin$}", "ORIGIN", w_origin = w_origin.max(6))?;
    }
    for s in VERIFY_STEPS {
        write!(out, " {:>16}", s.trim().to_uppercase())?;
    }
    writeln!(out, " {:>10}  {:<8} RESULT", "TOTAL", "VERDICT")?;
    for p in &r.phases {
        write!(out, "{:<4} {:<w_name$}", p.phase, truncate(&p.name, w_name))?;
        if w_origin > 0 {
            let label = p.origin.as_ref().map(|o| o.label()).unwrap_or_default();
            write!(out, " {:<w_origin$}", truncate(&label, w_origin), w_origin = w_origin.max(6))?;
        }
        // Steps in order; "compare" appears twice (after rollback, after re-apply).
        let mut compares = p.steps.iter().filter(|s| s.step == "compare");
        for s in VERIFY_STEPS {
            let step = if s.starts_with("compare") { compares.next() } else { p.steps.iter().find(|x| x.step == s) };
            let cell = match step {
                None => "-".to_string(),
                Some(x) => format!("{:.0} ms {}", x.ms, if x.ok { "ok" } else { "FAIL" }),
            };
            write!(out, " {cell:>16}")?;
        }
        writeln!(out, " {:>7.0} ms  {:<8} {}", p.ms, style.verdict(p.verdict), p.result.as_str())?;
    }
    lock_table(out, r, w_name)?;
    let mut any = false;
    for p in &r.phases {
        for f in &p.findings {
            any = true;
            let level = if f.fails(r.strict) { "error" } else { "warning" };
            writeln!(out, "\n{level}: {}: {}", phase_title(p), f.summary())?;
            if let Some(diff) = f.diff() {
                writeln!(out, "{diff}")?;
            }
            if f.is_mismatch(r.strict) {
                writeln!(out, "  see it again: {rerun} --phase {}", p.phase)?;
            }
        }
    }
    if any {
        writeln!(out)?;
    }
    let probes = match r.probes_failed() {
        0 => String::new(),
        n => format!("; {n} probe run(s) failed: an application version breaks"),
    };
    writeln!(out, "verify: {} phases in {:.1} s ({}); {}{probes}", r.phases.len(), r.ms / 1000.0, counts(&r.summary), conclusion(r))
}

/// What a rehearsal showed about rollbacks, in words that are true of it:
/// "every rollback restores the prior state" only when every phase was
/// rehearsed, its rollback run, compared and found to restore; otherwise
/// how many were and what happened to the others.
pub fn conclusion(r: &rehearse::Rehearsal) -> String {
    let s = &r.summary;
    let n = r.phases.len();
    if r.mismatch() {
        return "a rollback does not restore the prior state".into();
    }
    if n == 0 {
        return "nothing was rehearsed".into();
    }
    if s.restored == n {
        return "every rollback restores the prior state".into();
    }
    let others: Vec<String> = [(s.forward_only, "without a rollback (applied forward only)"), (s.failed, "failed forward"), (s.not_rehearsed, "not rehearsed"), (s.applied, "applied without rehearsal")]
        .iter()
        .filter(|(k, _)| *k > 0)
        .map(|(k, what)| format!("{k} {what}"))
        .collect();
    format!("{} of {n} rollbacks rehearsed, compared and restored; not checked: {}", s.restored, others.join(", "))
}

/// A rehearsal's counts, as text and Markdown summaries show them.
pub fn counts(s: &phasegate::rehearse::Summary) -> String {
    let mut counts = format!("{} restored, {} mismatch, {} failed, {} forward only, {} not rehearsed", s.restored, s.mismatch, s.failed, s.forward_only, s.not_rehearsed);
    if s.applied > 0 {
        counts.push_str(&format!(", {} applied without rehearsal", s.applied));
    }
    counts
}

/// Each rehearsal step that ran migrations, with the lock that blocked
/// writers (or readers) longest and the statement that took it.
fn lock_table(out: &mut dyn Write, r: &rehearse::Rehearsal, w_name: usize) -> std::io::Result<()> {
    let rows: Vec<(&rehearse::PhaseRehearsal, &rehearse::StepTiming, String)> = r
        .phases
        .iter()
        .flat_map(|p| p.steps.iter().filter(|s| LOCK_STEPS.contains(&s.step)).map(move |s| (p, s, lock_cell(s.longest_blocking_lock()))))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let w_lock = rows.iter().map(|r| r.2.chars().count()).max().unwrap_or(0).max(21);
    writeln!(out, "\n{:<4} {:<w_name$} {:<8} {:<w_lock$}  STATEMENT", "", "PHASE", "STEP", "LONGEST BLOCKING LOCK")?;
    for (p, s, cell) in rows {
        let at = s.longest_blocking_lock().map(|h| h.at().to_string()).unwrap_or_default();
        let line = format!("{:<4} {:<w_name$} {:<8} {cell:<w_lock$}  {at}", p.phase, truncate(&p.name, w_name), s.step);
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// `s`, cut to `n` characters with an ellipsis.
pub(crate) fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

/// JUnit XML: one test case per phase, failing when its rollback does not
/// restore the prior state or its migration failed.
pub fn junit(r: &rehearse::Rehearsal, set_name: &str) -> String {
    use quick_junit::{NonSuccessKind, Report as JReport, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new(format!("phasegate verify {set_name}"));
    for p in &r.phases {
        let failing: Vec<&rehearse::Finding> = p
            .findings
            .iter()
            .filter(|f| f.fails(r.strict))
            .collect();
        let status = if p.result == rehearse::PhaseResult::NotRehearsed {
            let mut st = TestCaseStatus::skipped();
            st.set_message("not rehearsed: an earlier forward migration failed");
            st
        } else if failing.is_empty() {
            TestCaseStatus::success()
        } else {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            st.set_message(failing.iter().map(|f| f.summary()).collect::<Vec<_>>().join("; "));
            let detail: Vec<String> = failing
                .iter()
                .map(|f| match f.diff() {
                    Some(diff) => format!("{}\n{diff}", f.summary()),
                    None => f.summary(),
                })
                .collect();
            st.set_description(detail.join("\n\n"));
            st
        };
        let mut case = TestCase::new(phase_title(p), status);
        case.set_classname(format!("verify.{}", set_name.replace(['/', '.'], "_")));
        if let Some(o) = &p.origin {
            case.extra.insert("file".into(), phasegate::display_path(&o.file).into());
            case.extra.insert("line".into(), o.line.to_string().into());
            case.add_property(quick_junit::Property::new("tool", o.tool.name()));
            case.add_property(quick_junit::Property::new("migration", o.id.as_str()));
        }
        case.set_time(std::time::Duration::from_secs_f64(p.ms / 1000.0));
        let out: Vec<String> = p.findings.iter().filter(|f| !f.fails(r.strict)).map(|f| f.summary()).collect();
        if !out.is_empty() {
            case.set_system_out(out.join("\n"));
        }
        suite.add_test_case(case);
    }
    let mut rep = JReport::new("phasegate");
    rep.add_test_suite(suite);
    rep.to_string().unwrap_or_default()
}

/// What the Markdown report of a rollback says (docs/commands.md on run logs, the seed
/// document's after-rollback checklist).
#[derive(Debug)]
pub struct RollbackDoc<'a> {
    pub run_id: &'a str,
    pub phase: u32,
    pub phase_name: &'a str,
    pub phase_summary: &'a str,
    pub set_dir: &'a str,
    pub database: &'a str,
    pub operator: &'a str,
    pub db_user: &'a str,
    pub started_at: &'a str,
    pub duration_s: f64,
    /// The run's verdict (ERROR when it failed).
    pub verdict: Option<RunVerdict>,
    pub exit_code: i32,
    pub error: Option<&'a str>,
    pub outcome: Option<&'a RunOutcome>,
    pub no_backup: bool,
    pub restore_command: &'a str,
    pub health_command: &'a str,
    pub log_file: Option<&'a str>,
}

/// The rollback report: what ran, when, by whom, every check's value and
/// verdict, the rows backed up, and the after-rollback checklist, ready to
/// paste into an incident channel.
pub fn rollback_markdown(d: &RollbackDoc) -> String {
    let mut s = String::new();
    let verdict = d.verdict.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    let result = if d.verdict == Some(RunVerdict::Error) || d.error.is_some() { "FAILED".to_string() } else { verdict.clone() };
    s.push_str(&format!("# Rollback of phase {} ({}): {}\n\n", d.phase, d.phase_name, result));
    s.push_str("| | |\n|---|---|\n");
    s.push_str(&format!("| run | `{}` |\n", d.run_id));
    s.push_str(&format!("| started | {} (took {:.1} s) |\n", d.started_at, d.duration_s));
    s.push_str(&format!("| by | {} (database user `{}`) |\n", markdown::cell(d.operator), markdown::cell(d.db_user)));
    s.push_str(&format!("| database | `{}` |\n", markdown::cell(d.database)));
    s.push_str(&format!("| migration set | `{}` |\n", markdown::cell(d.set_dir)));
    s.push_str(&format!("| phase | {} {}: {} |\n", d.phase, markdown::cell(d.phase_name), markdown::cell(d.phase_summary)));
    s.push_str(&format!("| verdict | {} (exit {}) |\n", verdict, d.exit_code));
    if let Some(l) = d.log_file {
        s.push_str(&format!("| log | `{}` |\n", markdown::cell(l)));
    }
    if let Some(e) = d.error {
        s.push_str(&format!("\n## Error\n\n```\n{e}\n```\n"));
    }
    let steps = d.outcome.map(|o| o.steps.as_slice()).unwrap_or_default();
    s.push_str("\n## What ran\n\n");
    if steps.is_empty() {
        s.push_str("Nothing: the rollback stopped before its first migration.\n");
    } else {
        s.push_str("| migration | name | result | duration | lock retries | longest blocking lock |\n|---|---|---|---:|---:|---|\n");
        for st in steps {
            let status = match st.status {
                StepStatus::Done => "rolled back",
                StepStatus::Baselined => "recorded, not run (baseline present)",
                StepStatus::Aborted => "ABORTED (transaction rolled back)",
                StepStatus::Failed => "FAILED (transaction rolled back)",
            };
            let lock = match st.longest_blocking_lock() {
                Some(h) => format!("{} (blocks {}; `{}`)", markdown::cell(&h.summary()), blocks(h), markdown::cell(&h.at().to_string())),
                None => "-".into(),
            };
            s.push_str(&format!("| V{} | {} | {} | {:.1} ms | {} | {lock} |\n", st.version, markdown::cell(&st.name), status, st.duration_ms, st.retries));
        }
    }
    let checks: Vec<&CheckResult> = d.outcome.map(|o| o.checks().collect()).unwrap_or_default();
    s.push_str("\n## Checks\n\n");
    if checks.is_empty() {
        s.push_str("No check ran.\n");
    } else {
        s.push_str("| migration | check | when | value | threshold | verdict |\n|---|---|---|---:|---|---|\n");
        for c in &checks {
            s.push_str(&format!(
                "| V{} | `{}` | {} | {} | {} | **{}** |\n",
                c.version,
                markdown::cell(&c.check),
                c.when.as_str(),
                fmt_value(c.value, &c.unit),
                markdown::cell(&c.threshold),
                c.verdict
            ));
        }
        for c in checks.iter().filter(|c| c.verdict != Verdict::Proceed) {
            for e in c.evidence.iter().take(3) {
                s.push_str(&format!("\n- `{}` evidence: `{}`", c.check, markdown::cell(&e.to_string())));
            }
        }
        s.push('\n');
    }
    let backups: Vec<&backup::Backup> = d.outcome.map(|o| o.backups().collect()).unwrap_or_default();
    let backed_up: i64 = backups.iter().map(|b| b.rows).sum();
    s.push_str("\n## Rows backed up\n\n");
    if d.no_backup {
        s.push_str("None: the rollback ran with `--no-backup`.\n");
    } else if backups.is_empty() {
        s.push_str("None needed: the rollback changed no rows that existed before it.\n");
    } else {
        s.push_str("| table | changed by | rows | backup table |\n|---|---|---:|---|\n");
        for b in &backups {
            let changes: Vec<&str> = b.changes.iter().map(|c| c.as_str()).collect();
            s.push_str(&format!("| `{}` | {} | {} | `{}` |\n", markdown::cell(&b.table), changes.join(", "), b.rows, markdown::cell(&b.backup_table)));
        }
        s.push_str(&format!("\nRestore them with `{}`.\n", d.restore_command));
    }
    let affected: Vec<String> = checks
        .iter()
        .filter(|c| c.when == When::BeforeRollback)
        .map(|c| format!("`{}` = {}", c.check, fmt_value(c.value, &c.unit)))
        .collect();
    let ok = d.error.is_none() && d.verdict == Some(RunVerdict::Proceed);
    let tick = |b: bool| if b { "x" } else { " " };
    s.push_str("\n## After the rollback\n\n");
    s.push_str(&format!("- [{}] Rollback committed and its after-rollback checks say PROCEED\n", tick(ok)));
    if d.no_backup {
        s.push_str("- [ ] Affected rows backed up: skipped (`--no-backup`)\n");
    } else {
        s.push_str(&format!("- [{}] Affected rows backed up: {} rows in {} table(s)\n", tick(ok), backed_up, backups.len()));
    }
    s.push_str("- [ ] Internal team notified (within 5 minutes)\n");
    s.push_str("- [ ] Engineering lead informed\n");
    if affected.is_empty() {
        s.push_str("- [ ] Customer email sent if customers are affected (within 30 minutes)\n");
    } else {
        s.push_str(&format!("- [ ] Customer email sent (within 30 minutes): affected {}\n", affected.join(", ")));
    }
    s.push_str("- [ ] Status page updated\n");
    s.push_str("- [ ] Customer Success briefed\n");
    s.push_str(&format!("- [ ] Health watched for 1 hour: `{}`\n", d.health_command));
    s.push_str("- [ ] Postmortem scheduled (within 72 hours)\n");
    s
}

#[cfg(test)]
mod tests;
