//! `--format github`: GitHub Actions workflow commands
//! (`::error file=F,line=L,col=C,title=T::message`), so each finding shows on
//! the pull request's diff at its line. Lines that are not findings stay
//! plain log lines.

use phasegate::{rehearse, CheckResult, Error, MigrationSet, RunOutcome, StepStatus, Verdict};

/// A workflow command's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Notice,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        }
    }
}

/// Where an annotation points: a file and, when known, a line and column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct At {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

/// One workflow command. GitHub reads `%`, CR and LF as escapes in the
/// message, and also `:` and `,` in property values.
pub fn annotation(level: Level, at: Option<&At>, title: &str, message: &str) -> String {
    let mut props = Vec::new();
    if let Some(at) = at.filter(|a| !a.file.is_empty()) {
        props.push(format!("file={}", property(&at.file)));
        if at.line > 0 {
            props.push(format!("line={}", at.line));
            if at.column > 0 {
                props.push(format!("col={}", at.column));
            }
        }
    }
    if !title.is_empty() {
        props.push(format!("title={}", property(title)));
    }
    let props = if props.is_empty() { String::new() } else { format!(" {}", props.join(",")) };
    format!("::{}{props}::{}", level.as_str(), data(message))
}

fn data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

/// Lint findings, one annotation each.
pub fn lint(findings: &[phasegate::lint::Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let level = if f.severity == phasegate::lint::Severity::Error { Level::Error } else { Level::Warning };
        let at = At { file: f.file.clone(), line: f.line, column: f.column };
        let message = match &f.fix {
            Some(fix) => format!("{} (fix: {fix})", f.message),
            None => f.message.clone(),
        };
        out.push_str(&annotation(level, Some(&at), &format!("phasegate lint: {}", f.rule), &message));
        out.push('\n');
    }
    out
}

/// Checks that did not PROCEED, annotated at their validation file and line.
pub fn checks(results: &[CheckResult]) -> String {
    let mut out = String::new();
    for r in results.iter().filter(|r| r.verdict > Verdict::Proceed) {
        let level = if r.verdict == Verdict::Rollback { Level::Error } else { Level::Warning };
        let at = At { file: r.file.clone(), line: r.line, column: 0 };
        let value = super::fmt_value(r.value, &r.unit);
        let mut message = format!("V{} check `{}` says {}: {value} (threshold {})", r.version, r.check, r.verdict, r.threshold);
        for e in r.evidence.iter().take(3) {
            message.push_str(&format!("\nevidence: {e}"));
        }
        out.push_str(&annotation(level, Some(&at), &format!("phasegate: {} {}", r.verdict, r.check), &message));
        out.push('\n');
    }
    out
}

/// A migrate or rollback run: a plain line per step, then the checks that
/// did not PROCEED as annotations.
pub fn run(outcome: &RunOutcome) -> String {
    let mut out = String::new();
    for s in &outcome.steps {
        let status = match s.status {
            StepStatus::Done => "done",
            StepStatus::Baselined => "recorded, not run (baseline present)",
            StepStatus::Aborted => "aborted (its transaction was rolled back)",
            StepStatus::Failed => "failed (its transaction was rolled back)",
        };
        out.push_str(&format!("phase {} V{} {}: {status}\n", s.phase, s.version, s.name));
    }
    let checks: Vec<CheckResult> = outcome.checks().cloned().collect();
    out.push_str(&self::checks(&checks));
    // A plain log line (not an annotation): the run's verdict, ERROR when it failed.
    out.push_str(&format!("verdict: {}\n", super::RunVerdict::of(&checks, outcome.failure.is_some())));
    out
}

/// A rehearsal: a plain line per phase, then each finding as an
/// annotation at the place it is about: the failing statement or check when
/// the error names one, else another tool's migration file, else the
/// phase's rollback file (what a rollback left behind) or forward file (what
/// failed going forward).
pub fn verify(r: &rehearse::Rehearsal, set: &MigrationSet) -> String {
    let mut out = String::new();
    for p in &r.phases {
        out.push_str(&format!("phase {} {}: {} ({})\n", p.phase, p.name, p.result.as_str(), p.verdict));
    }
    for p in &r.phases {
        for f in &p.findings {
            let level = if f.fails(r.strict) {
                Level::Error
            } else if matches!(f, rehearse::Finding::NoRollback { .. }) {
                Level::Notice
            } else {
                Level::Warning
            };
            let at = match (f.location(), &p.origin) {
                (Some(l), _) => At { file: phasegate::display_path(&l.file), line: l.line, column: l.column },
                (None, Some(o)) => At { file: phasegate::display_path(&o.file), line: o.line, column: 0 },
                (None, None) => phase_file(set, p.phase, f),
            };
            let mut message = f.summary();
            if let Some(diff) = f.diff() {
                message.push('\n');
                message.push_str(diff);
            }
            out.push_str(&annotation(level, Some(&at), &format!("phasegate verify: phase {} {}", p.phase, p.name), &message));
            out.push('\n');
        }
    }
    out
}

/// The file a phase's finding is about when the finding names none.
fn phase_file(set: &MigrationSet, phase: u32, f: &rehearse::Finding) -> At {
    let Ok(p) = set.phase(phase) else { return At::default() };
    let backward = !matches!(f, rehearse::Finding::MigrateFailed { .. } | rehearse::Finding::ReapplyFailed { .. } | rehearse::Finding::NoRollback { .. });
    let file = match (backward, p.steps.last(), p.steps.first()) {
        (true, Some(last), _) => last.rollback.as_ref().unwrap_or(&last.forward),
        (false, _, Some(first)) => &first.forward,
        _ => return At::default(),
    };
    At { file: phasegate::display_path(&file.path), line: 1, column: 0 }
}

/// An error as one annotation, at its file and line when it has one.
pub fn error(e: &anyhow::Error, rendered: &str) -> String {
    let at = e.downcast_ref::<Error>().and_then(Error::location).map(|l| At { file: phasegate::display_path(&l.file), line: l.line, column: l.column });
    annotation(Level::Error, at.as_ref(), "phasegate", rendered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_escape_what_github_reads_as_syntax() {
        let at = At { file: "db/V1,a:b.sql".into(), line: 3, column: 7 };
        assert_eq!(annotation(Level::Error, Some(&at), "t", "50% done\nnext"), "::error file=db/V1%2Ca%3Ab.sql,line=3,col=7,title=t::50%25 done%0Anext");
        assert_eq!(annotation(Level::Warning, None, "", "plain"), "::warning::plain");
        let no_line = At { file: "f.sql".into(), line: 0, column: 4 };
        assert_eq!(annotation(Level::Notice, Some(&no_line), "", "m"), "::notice file=f.sql::m");
    }
}
