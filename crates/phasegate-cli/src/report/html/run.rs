//! The pages of runs that change a database: `migrate` and `rollback`
//! (steps, a timeline, checks, locks, and what a rollback backed up with
//! the command that restores it), `recover` (what came back), and the
//! demo, whose acts are such runs one after the other.

use maud::{html, Markup};
use phasegate::{backup, Action, RunOutcome, StepOutcome, StepStatus, Verdict};

use super::chart::{self, Bar, Bars, Paint};
use super::{badge, checks_table, fmt_ms, locks, page, Decision, Meta};

/// What a migrate or rollback page adds to the run's own results.
#[derive(Debug, Default, Clone)]
pub struct RunExtras {
    /// `cargo xtask restore --run <id>`: a rollback's backups come back with it.
    pub restore_command: Option<String>,
    /// The rollback ran with `--no-backup`.
    pub no_backup: bool,
    /// `cargo xtask recover --phase 4`: what an irreversible phase destroyed comes back with it.
    pub recover_command: Option<String>,
}

/// The page of a migrate or rollback run.
pub fn run(meta: &Meta, outcome: &RunOutcome, extras: &RunExtras) -> String {
    let toc = [("steps", "steps"), ("timeline", "timeline"), ("checks", "checks"), ("locks", "locks"), ("backups", "backups")];
    page(meta, &run_decision(outcome), &toc, run_body(outcome, extras, meta.lock_limit_ms, ""))
}

fn run_decision(o: &RunOutcome) -> Decision {
    let verdict = o.verdict();
    if let Some(e) = &o.error {
        return if verdict == Verdict::Rollback { Decision::verdict(verdict, e.clone()) } else { Decision::error(e.clone()) };
    }
    if let Some(aborted) = o.steps.iter().find(|s| !s.status.is_done()) {
        return Decision::verdict(verdict, format!("V{} {}: a check said ROLLBACK; its transaction was rolled back, nothing of it was kept", aborted.version, aborted.name));
    }
    let what = match o.steps.first().map(|s| s.action) {
        None => return Decision::verdict(verdict, "nothing to do"),
        Some(Action::Apply) => "applied",
        Some(Action::Rollback) => "rolled back",
    };
    let why = match (verdict, o.stopped_for_review) {
        (_, Some(p)) => format!("stopped after phase {p}: a human must look before the next phase (--accept-review continues)"),
        (Verdict::Proceed, None) => format!("{} migration(s) {what}; every check passed", o.steps.len()),
        (v, None) => format!("{} migration(s) {what}; verdict {v}", o.steps.len()),
    };
    Decision::verdict(verdict, why)
}

/// The sections of a run; `id` prefixes their anchors (the demo has several runs).
fn run_body(o: &RunOutcome, extras: &RunExtras, limit_ms: Option<f64>, id: &str) -> Markup {
    let rollback = o.steps.iter().any(|s| s.action == Action::Rollback);
    html! {
        section id=(format!("{id}steps")) { h2 { "Steps" } (steps_table(&o.steps)) }
        section id=(format!("{id}timeline")) { h2 { "Timeline" } (timeline(&o.steps)) }
        section id=(format!("{id}checks")) {
            h2 { "Checks" }
            (checks_table(o.steps.iter().flat_map(|s| s.checks.iter().map(move |c| (action(s).to_string(), c)))))
        }
        section id=(format!("{id}locks")) {
            h2 { "Locks" }
            (locks(&o.steps.iter().flat_map(|s| s.locks.iter().map(move |h| (format!("V{} {}", s.version, action(s)), h))).collect::<Vec<_>>(), limit_ms))
        }
        @if rollback || !o.kept.is_empty() {
            section id=(format!("{id}backups")) { h2 { "Backups" } (backups(o, extras)) }
        }
    }
}

fn action(s: &StepOutcome) -> &'static str {
    match s.action {
        Action::Apply => "apply",
        Action::Rollback => "rollback",
    }
}

fn steps_table(steps: &[StepOutcome]) -> Markup {
    if steps.is_empty() {
        return html! { p.note { "Nothing to do: every migration was already where it was asked to be." } };
    }
    let t0 = steps.iter().map(|s| s.started_unix_ms).fold(f64::INFINITY, f64::min);
    html! {
        div.scroll { table {
            thead { tr { th.num { "phase" } th { "migration" } th { "name" } th { "result" } th.num { "at" } th.num { "took" } th.num { "lock retries" } th.num { "rows" } th { "longest blocking lock" } } }
            tbody {
                @for s in steps {
                    tr.bad[!s.status.is_done()] {
                        td.num { (s.phase) } td { "V" (s.version) } td { (s.name) }
                        td { (status(s)) @if let Some(e) = &s.error { br; small { (e) } } }
                        td.num { (format!("+{:.2} s", (s.started_unix_ms - t0) / 1000.0)) }
                        td.num { (fmt_ms(s.duration_ms)) } td.num { (s.retries) }
                        td.num { @if let Some(r) = s.rows { (r) } @else { "-" } }
                        td { @match s.longest_blocking_lock() { Some(h) => { (h.summary()) br; small.at title=(h.at()) { (super::short_file(&h.file)) ":" (h.line) } }, None => "-" } }
                    }
                }
            }
        } }
    }
}

fn status(s: &StepOutcome) -> &'static str {
    match (s.status, s.action) {
        (StepStatus::Done, Action::Apply) => "applied",
        (StepStatus::Done, Action::Rollback) => "rolled back",
        (StepStatus::Baselined, _) => "recorded, not run (baseline present)",
        (StepStatus::Aborted, _) => "ABORTED (transaction rolled back)",
        (StepStatus::Failed, _) => "FAILED (transaction rolled back)",
    }
}

/// Each migration on one time axis, its checks drawn over its end; the
/// gaps between them are the run's own waits (a confirmation, keeping what
/// an irreversible migration destroys).
fn timeline(steps: &[StepOutcome]) -> Markup {
    if steps.is_empty() {
        return html! { p.note { "No step ran." } };
    }
    let t0 = steps.iter().map(|s| s.started_unix_ms).fold(f64::INFINITY, f64::min);
    let rows: Vec<String> = steps.iter().map(|s| format!("V{} {}", s.version, super::truncate(&s.name, 36))).collect();
    let mut bars = Vec::new();
    for (row, s) in steps.iter().enumerate() {
        let from = (s.started_unix_ms - t0) / 1000.0;
        let to = from + s.duration_ms / 1000.0;
        let paint = match (s.status, s.action) {
            (StepStatus::Done | StepStatus::Baselined, Action::Apply) => Paint::Migrate,
            (StepStatus::Done, Action::Rollback) => Paint::Rollback,
            _ => Paint::Failed,
        };
        bars.push(Bar { row, from, to, paint, tip: format!("phase {} V{} {}: {} at +{from:.2} s, {}", s.phase, s.version, s.name, status(s), fmt_ms(s.duration_ms)) });
        let checks_ms: f64 = s.checks.iter().map(|c| c.duration_ms).sum();
        if !s.checks.is_empty() {
            let tip = format!("V{}: {} checks, {} in all", s.version, s.checks.len(), fmt_ms(checks_ms));
            bars.push(Bar { row, from: (to - checks_ms / 1000.0).max(from), to, paint: Paint::Checks, tip });
        }
    }
    html! {
        figure {
            (chart::bars(&Bars { label: "each migration of the run on one time axis", rows, bars, x_desc: "seconds since the first migration started", limit: None }))
            (chart::legend(&[(Paint::Migrate, "applied"), (Paint::Rollback, "rolled back"), (Paint::Checks, "its checks"), (Paint::Failed, "aborted or failed")]))
        }
    }
}

/// What a rollback backed up (and how to restore it), or what a migrate
/// kept before an irreversible phase (and how to recover it).
fn backups(o: &RunOutcome, extras: &RunExtras) -> Markup {
    let backups: Vec<_> = o.backups().collect();
    let kept_rows: i64 = o.kept.iter().map(|k| k.size.rows).sum();
    html! {
        @if !backups.is_empty() {
            p { (backups.iter().map(|b| b.rows).sum::<i64>()) " rows were backed up in " (backups.len()) " table(s) before the rollback changed them." }
            div.scroll { table {
                thead { tr { th { "migration" } th { "table" } th { "backup table" } th { "kind" } th { "change" } th { "columns" } th.num { "rows" } } }
                tbody { @for b in &backups { tr {
                    td { "V" (b.version) } td { code { (b.table) } } td { code { (b.backup_table) } } td { (format!("{:?}", b.kind).to_lowercase()) }
                    td { (b.changes.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")) } td { (b.columns.join(", ")) } td.num { (b.rows) }
                } } }
            } }
            @if let Some(cmd) = &extras.restore_command { p { "Put them back with:" } pre { (cmd) } }
        } @else if extras.no_backup {
            p { "No backup was taken (--no-backup): the rows this rollback changed are not saved." }
        } @else if o.steps.iter().any(|s| s.action == Action::Rollback) {
            p { "No backup was needed: the rollback changed no existing rows." }
        }
        @if !o.kept.is_empty() {
            p { "Before the irreversible migrations ran, " (kept_rows) " rows and the definitions of what they drop were kept." }
            div.scroll { table {
                thead { tr { th { "migration" } th.num { "rows" } th.num { "size" } th { "backup tables" } } }
                tbody { @for k in &o.kept { tr {
                    td { "V" (k.version) } td.num { (k.size.rows) } td.num { (crate::fmt::bytes(k.size.bytes)) }
                    td { (k.backups.iter().map(|b| b.backup_table.as_str()).collect::<Vec<_>>().join(", ")) }
                } } }
            } }
            @if let Some(cmd) = &extras.recover_command { p { "The way back:" } pre { (cmd) } }
        }
    }
}

/// The page of a `recover` that ran; `again` is the command that applies
/// the phase again.
pub fn recover(meta: &Meta, o: &phasegate::recover::Outcome, again: &str) -> String {
    let toc = [("recovered", "what came back"), ("checks", "checks"), ("plan", "plan")];
    page(meta, &recover_decision(o), &toc, recover_body(o, again, ""))
}

fn recover_decision(o: &phasegate::recover::Outcome) -> Decision {
    let r = &o.recovery;
    if !o.committed {
        return Decision::verdict(Verdict::Rollback, format!("a before-migrate check of phase {} failed after the recovery: it was undone, the phase stays applied", r.phase));
    }
    Decision::verdict(o.verdict, format!("recovered phase {} ({}) in {}: it is no longer applied", r.phase, r.name, fmt_ms(o.duration_ms)))
}

fn recover_body(o: &phasegate::recover::Outcome, again: &str, id: &str) -> Markup {
    html! {
        section id=(format!("{id}recovered")) {
            h2 { "What came back" }
            @if let Some(r) = &o.recovered {
                div.scroll { table {
                    thead { tr {
                        th { "table" } th { "migration" } th.num { "restored" } th.num { "re-inserted" } th.num { "written since" }
                        th.num { "filled by the kept triggers" } th.num { "refused by them" } th.num { "kept values used" } th { "left NULL" }
                    } }
                    tbody { @for t in &r.tables { tr.warn[t.left_null.iter().any(|(_, n)| *n > 0)] {
                        td { code { (t.table) } } td { "V" (t.version) } td.num { (t.restored) } td.num { (t.inserted) } td.num { (t.written_since) }
                        td.num { (t.replayed) } td.num { (t.replay_refused) } td.num { (t.kept_values_used) }
                        td { (t.left_null.iter().filter(|(_, n)| *n > 0).map(|(c, n)| format!("{c}: {n}")).collect::<Vec<_>>().join(", ")) }
                    } } }
                } }
                @for t in r.tables.iter().filter(|t| t.first_refusal.is_some()) { p.note { (t.table) ": first refusal: " (t.first_refusal.as_deref().unwrap_or_default()) } }
                @for n in &r.not_null_skipped { p { "NOT NULL not restored on " code { (n) } " (rows are left NULL)" } }
                @for u in &r.unkept { p { "not kept, so not back: " (u) } }
            } @else { p.note { "Nothing was recovered." } }
            @if o.committed { p { "It applies again with:" } pre { (again) } }
        }
        section id=(format!("{id}checks")) { h2 { "Checks" } p.note { "The phase's before-migrate checks, after the recovery." } (checks_table(o.checks.iter().map(|c| ("after recovery".to_string(), c)))) }
        section id=(format!("{id}plan")) { h2 { "Plan" } (plan(&o.recovery)) }
    }
}

/// The page of `recover --dry-run`: the plan, nothing changed.
pub fn recover_plan(meta: &Meta, r: &phasegate::recover::Recovery) -> String {
    let why = format!("dry run: the plan to recover phase {} ({}) from {} kept rows; nothing was changed", r.phase, r.name, r.kept_rows);
    page(meta, &Decision { label: "PLAN".into(), why }, &[("plan", "plan")], html! { section #plan { h2 { "Plan" } (plan(r)) } })
}

fn plan(r: &phasegate::recover::Recovery) -> Markup {
    let stages = [
        (backup::Stage::Create, "1. re-create what was dropped"),
        (backup::Stage::Restore, "2. restore the kept data by key"),
        (backup::Stage::Replay, "3. rows written since: through the dropped sync triggers, else kept values, else NULL"),
        (backup::Stage::Finish, "4. defaults, NOT NULL, constraints, indexes, triggers"),
    ];
    html! {
        p { "Migrations " (r.versions.iter().map(|v| format!("V{v}")).collect::<Vec<_>>().join(", ")) " (newest first), " (r.kept_rows) " kept rows, " (r.plan.statements.len()) " statements in one transaction." }
        @for (stage, title) in stages {
            @let sql: Vec<String> = r.plan.statements.iter().filter(|s| s.stage == stage).map(|s| format!("{};  -- V{}", s.sql.trim_end(), s.version)).collect();
            @if !sql.is_empty() { details { summary { (title) " (" (sql.len()) ")" } pre { (sql.join("\n")) } } }
        }
        @for u in &r.plan.unkept { p.note { "not kept: " (u) } }
    }
}

/// One act of the demo.
pub enum Act<'a> {
    Run { title: &'a str, note: &'a str, outcome: &'a RunOutcome, extras: RunExtras },
    Recover { title: &'a str, note: &'a str, outcome: &'a phasegate::recover::Outcome, again: String },
}

/// The demo's page: its acts in order, each with its own sections.
pub fn demo(meta: &Meta, verdict: Verdict, acts: &[Act]) -> String {
    let titles: Vec<(String, &str)> = acts
        .iter()
        .enumerate()
        .map(|(i, a)| match a {
            Act::Run { title, .. } | Act::Recover { title, .. } => (format!("act{}", i + 1), *title),
        })
        .collect();
    let toc: Vec<(&str, &str)> = titles.iter().map(|(id, t)| (id.as_str(), *t)).collect();
    let body = html! {
        @for (i, a) in acts.iter().enumerate() {
            @let id = format!("act{}-", i + 1);
            @match a {
                Act::Run { title, note, outcome, extras } => {
                    section id=(format!("act{}", i + 1)) { h2 { "Act " (i + 1) ": " (title) " " (badge(outcome.verdict())) } p { (note) } }
                    (run_body(outcome, extras, meta.lock_limit_ms, &id))
                }
                Act::Recover { title, note, outcome, again } => {
                    section id=(format!("act{}", i + 1)) { h2 { "Act " (i + 1) ": " (title) " " (badge(outcome.verdict)) } p { (note) } }
                    (recover_body(outcome, again, &id))
                }
            }
        }
    };
    page(meta, &Decision::verdict(verdict, format!("{} acts of the story, on a disposable database", acts.len())), &toc, body)
}
