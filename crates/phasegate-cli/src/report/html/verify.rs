//! The page of a `verify` rehearsal: the decision, the phases by steps,
//! a timeline of every step on one time axis, every check, the locks, and
//! the findings (schema differences side by side).

use maud::{html, Markup};
use phasegate::{rehearse, CheckResult, Verdict};

use super::chart::{self, Bar, Bars, Paint};
use super::{badge, checks_table, diff, fmt_ms, locks, page, truncate, Decision, Meta};
use crate::report::{conclusion, counts, LOCK_STEPS};

/// The page of rehearsal `r`; `rerun` is the command that rehearses it
/// again (`cargo xtask verify --dir .`).
pub fn verify(meta: &Meta, r: &rehearse::Rehearsal, rerun: &str) -> String {
    let findings: Vec<(&rehearse::PhaseRehearsal, usize, &rehearse::Finding)> = r.phases.iter().flat_map(|p| p.findings.iter().enumerate().map(move |(i, f)| (p, i, f))).collect();
    let mut toc = vec![("phases", "phases"), ("timeline", "timeline"), ("checks", "checks"), ("locks", "locks")];
    if !findings.is_empty() {
        toc.push(("findings", "findings"));
    }
    let body = html! {
        section #phases { h2 { "Phases" } p.note { (r.phases.len()) " phases in " (fmt_ms(r.ms)) ": " (counts(&r.summary)) } (phases(r)) }
        section #timeline { h2 { "Timeline" } (timeline(r)) }
        section #checks { h2 { "Checks" } (checks(r)) }
        section #locks {
            h2 { "Locks" }
            (locks(&r.phases.iter().flat_map(|p| p.steps.iter().filter(|s| LOCK_STEPS.contains(&s.step)).flat_map(move |s| s.locks.iter().map(move |h| (format!("phase {} {}", p.phase, s.step), h)))).collect::<Vec<_>>(), meta.lock_limit_ms))
        }
        @if !findings.is_empty() {
            section #findings {
                h2 { "Findings" }
                ol.findings { @for (p, i, f) in &findings { li { a href=(format!("#f{}-{i}", p.phase)) { "phase " (p.phase) " " (p.name) } ": " (level(r, f)) ": " (f.summary()) } } }
                @for (p, i, f) in &findings { (finding(r, p, *i, f, rerun)) }
            }
        }
    };
    page(meta, &decision(r), &toc, body)
}

fn decision(r: &rehearse::Rehearsal) -> Decision {
    let first = |pred: &dyn Fn(&rehearse::Finding) -> bool| r.phases.iter().find_map(|p| p.findings.iter().find(|f| pred(f)).map(|f| (p, f)));
    if let Some((p, f)) = first(&|f| f.is_mismatch(r.strict)) {
        return Decision { label: "MISMATCH".into(), why: format!("a rollback does not restore the prior state: phase {} {}: {}", p.phase, p.name, f.summary()) };
    }
    if let Some((p, f)) = first(&|f| matches!(f, rehearse::Finding::MigrateFailed { .. })) {
        let why = format!("phase {} {}: {}", p.phase, p.name, f.summary());
        return if r.verdict() == Verdict::Rollback { Decision::verdict(Verdict::Rollback, why) } else { Decision::error(why) };
    }
    if let Some((p, f)) = first(&|f| matches!(f, rehearse::Finding::ProbeFailed { .. })) {
        return Decision::verdict(Verdict::Rollback, format!("an application version breaks: phase {} {}: {}", p.phase, p.name, f.summary()));
    }
    let why = match r.verdict() {
        Verdict::Proceed => format!("{} and every check passed ({})", conclusion(r), counts(&r.summary)),
        Verdict::Review => format!("{}; a check or a lock asks a human to look", conclusion(r)),
        Verdict::Rollback => "a check said ROLLBACK".to_string(),
    };
    Decision::verdict(r.verdict(), why)
}

fn level(r: &rehearse::Rehearsal, f: &rehearse::Finding) -> &'static str {
    if f.fails(r.strict) {
        "error"
    } else {
        "warning"
    }
}

/// Migrate, rollback, compare, re-apply, compare: the columns of the table.
const STEPS: [&str; 5] = ["migrate", "rollback", "compare", "re-apply", "compare"];

/// Phases past which a history's phases that need no attention are folded.
const LONG_HISTORY: usize = 40;

/// Whether a phase needs a reader's attention: a finding, a verdict other
/// than PROCEED, or a result other than restored.
fn notable(p: &rehearse::PhaseRehearsal) -> bool {
    !p.findings.is_empty() || p.verdict > Verdict::Proceed || !matches!(p.result, rehearse::PhaseResult::Restored | rehearse::PhaseResult::Applied)
}

/// The phases by steps; in a long history, the phases that need attention
/// first and the others folded below them.
fn phases(r: &rehearse::Rehearsal) -> Markup {
    if r.phases.len() <= LONG_HISTORY {
        return phase_table(r.phases.iter());
    }
    let quiet = r.phases.iter().filter(|p| !notable(p)).count();
    html! {
        @if quiet < r.phases.len() { (phase_table(r.phases.iter().filter(|p| notable(p)))) }
        details {
            summary { "the other " (quiet) " phases: restored, every check PROCEED" }
            (phase_table(r.phases.iter().filter(|p| !notable(p))))
        }
    }
}

fn phase_table<'a>(phases: impl Iterator<Item = &'a rehearse::PhaseRehearsal>) -> Markup {
    html! {
        div.scroll { table {
            thead { tr {
                th.num { "phase" } th { "name" } th { "result" } th { "verdict" }
                @for s in STEPS { th.num { (s) } }
                th.num { "total" } th { "where" }
            } }
            tbody {
                @for p in phases {
                    tr.bad[matches!(p.result, rehearse::PhaseResult::Mismatch | rehearse::PhaseResult::Failed)] {
                        td.num { (p.phase) }
                        @match &p.origin {
                            Some(o) => td title=(format!("{} · {}:{}", o.label(), phasegate::display_path(&o.file), o.line)) { (p.name) },
                            None => td { (p.name) },
                        }
                        td { @if p.findings.is_empty() { (p.result.as_str()) } @else { a href=(format!("#f{}-0", p.phase)) { (p.result.as_str()) } } }
                        td { (badge(p.verdict)) }
                        @for cell in step_cells(p) { td.num { (cell) } }
                        td.num { (fmt_ms(p.ms)) }
                        td { (format!("{:?}", p.isolation).to_lowercase()) }
                    }
                }
            }
        } }
    }
}

/// Each of [`STEPS`] of a phase: its time and whether it failed, or `-`.
fn step_cells(p: &rehearse::PhaseRehearsal) -> Vec<String> {
    let mut compares = p.steps.iter().filter(|s| s.step == "compare");
    STEPS
        .iter()
        .map(|name| {
            let s = if *name == "compare" { compares.next() } else { p.steps.iter().find(|s| s.step == *name) };
            match s {
                None => "-".into(),
                Some(s) if s.ok => fmt_ms(s.ms),
                Some(s) => format!("{} FAILED", fmt_ms(s.ms)),
            }
        })
        .collect()
}

fn paint(s: &rehearse::StepTiming) -> Paint {
    if !s.ok {
        return Paint::Failed;
    }
    match s.step {
        "migrate" => Paint::Migrate,
        "rollback" => Paint::Rollback,
        "compare" => Paint::Compare,
        "re-apply" => Paint::Reapply,
        "seed" => Paint::Seed,
        s if s.starts_with("probes after") => Paint::Probes,
        _ => Paint::Snapshot,
    }
}

/// Every step of every phase on one time axis (a phase rehearsed on a
/// clone overlaps the next phases); the checks a step ran are drawn over
/// its end, as long as they took in all. In a long history each phase is
/// drawn from its own start, so its steps stay readable and phases compare.
fn timeline(r: &rehearse::Rehearsal) -> Markup {
    let relative = r.phases.len() > LONG_HISTORY;
    let rows: Vec<String> = r.phases.iter().map(|p| format!("{} {}", p.phase, truncate(&p.name, 28))).collect();
    let mut bars = Vec::new();
    for (row, p) in r.phases.iter().enumerate() {
        let origin = if relative { p.steps.iter().map(|s| s.start_ms).fold(f64::INFINITY, f64::min) } else { 0.0 };
        for s in &p.steps {
            let (from, to) = ((s.start_ms - origin) / 1000.0, (s.start_ms - origin + s.ms) / 1000.0);
            let state = if s.ok { "" } else { " (FAILED)" };
            bars.push(Bar { row, from, to, paint: paint(s), tip: format!("phase {} {}: {}{state} at {:.2} s, {}", p.phase, p.name, s.step, from, fmt_ms(s.ms)) });
            let checks_ms: f64 = s.checks.iter().map(|c| c.duration_ms).sum();
            if !s.checks.is_empty() {
                let from_checks = (to - checks_ms / 1000.0).max(from);
                let tip = format!("phase {} {}: {} checks of its {}, {} in all (they run after each migration, inside the step)", p.phase, p.name, s.checks.len(), s.step, fmt_ms(checks_ms));
                bars.push(Bar { row, from: from_checks, to, paint: Paint::Checks, tip });
            }
        }
    }
    if bars.is_empty() {
        return html! { p.note { "No step ran." } };
    }
    let x_desc = if relative { "seconds since the phase's rehearsal started" } else { "seconds since the rehearsal started" };
    html! {
        figure {
            (chart::bars(&Bars { label: "every rehearsal step on one time axis, a row per phase", rows, bars, x_desc, limit: None }))
            @if relative { figcaption { "Each phase is drawn from its own start (" (r.phases.len()) " phases in " (fmt_ms(r.ms)) ")." } }
            (chart::legend(&[
                (Paint::Snapshot, "snapshot"), (Paint::Migrate, "migrate"), (Paint::Checks, "checks"), (Paint::Rollback, "rollback"),
                (Paint::Compare, "compare"), (Paint::Reapply, "re-apply"), (Paint::Seed, "seed"), (Paint::Probes, "probes"), (Paint::Failed, "failed"),
            ]))
        }
    }
}

/// Each phase's checks (those of its migrate, rollback and re-apply),
/// folded when they all passed.
fn checks(r: &rehearse::Rehearsal) -> Markup {
    html! {
        @for p in &r.phases {
            @let checks: Vec<(String, &CheckResult)> = p.steps.iter().flat_map(|s| s.checks.iter().map(move |c| (s.step.to_string(), c))).collect();
            @let worst = checks.iter().map(|c| c.1.verdict).max().unwrap_or(Verdict::Proceed);
            @if !checks.is_empty() {
                details open[worst > Verdict::Proceed] {
                    summary { "phase " (p.phase) " " (p.name) ": " (checks.len()) @if checks.len() == 1 { " check " } @else { " checks " } (badge(worst)) }
                    (checks_table(checks))
                }
            }
        }
        @if r.phases.iter().all(|p| p.steps.iter().all(|s| s.checks.is_empty())) { p.note { "No check ran." } }
    }
}

fn finding(r: &rehearse::Rehearsal, p: &rehearse::PhaseRehearsal, i: usize, f: &rehearse::Finding, rerun: &str) -> Markup {
    html! {
        div.finding.warning[!f.fails(r.strict)] id=(format!("f{}-{i}", p.phase)) {
            h3 { "phase " (p.phase) " " (p.name) ": " (level(r, f)) }
            p { (f.summary()) }
            @if let Some(at) = f.location() { p { "at " code { (at) } } }
            @if let rehearse::Finding::RowsChanged { table, columns, rows_before, rows_after, .. } = f {
                div.scroll { table {
                    thead { tr { th { "table" } th { "columns whose values changed" } th.num { "rows before" } th.num { "rows after" } } }
                    tbody { tr { td { code { (table) } } td { (columns.join(", ")) } td.num { (rows_before) } td.num { (rows_after) } } }
                } }
                p.note { "Rows are compared by fingerprint (a hash per column over every row), so the page names the columns, not the rows." }
            }
            @if let Some(d) = f.diff() { (diff::side_by_side(d)) }
            @if f.is_mismatch(r.strict) { p { "see it again: " code { (rerun) " --phase " (p.phase) } } }
        }
    }
}
