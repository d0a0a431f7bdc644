//! `demo`: the product's whole story on a disposable database, in acts,
//! each a short heading and its table: the seed and the additive phase; a
//! gate saying ROLLBACK on a deliberately broken copy of a data migration
//! (the set's `demo/` folder) with its evidence, and nothing left behind;
//! forward to the last reversible phase; rolling two phases back with the
//! rows backed up and the Markdown report written; re-applying them; the
//! irreversible cleanup, confirmed by typing its name; and the way back
//! from it, `recover` (its plan, then the recovery). The acts are also one
//! HTML page beside the log.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use postgres::Client;
use serde::Serialize;

use super::{json, Ctx, Report, Run};
use crate::exit::Exit;
use crate::cli::Shape;
use crate::cli::DemoArgs;
use crate::report::{self, html, RollbackDoc};
use phasegate::{recover, BatchProgress, CheckResult, MigrationSet, Options, RunOutcome, Server, StepOutcome, Target, Ui, Verdict};

/// The folder of a set holding its deliberately broken copies (same
/// relative paths as the files they replace).
pub const DEMO_DIR: &str = "demo";

/// `demo --format json`: every act.
#[derive(Serialize)]
struct DemoJson {
    acts: Vec<Act>,
}

/// One act of the demo.
#[derive(Serialize)]
struct Act {
    title: String,
    verdict: Verdict,
    steps: Vec<StepOutcome>,
    checks: Vec<CheckResult>,
    /// What the reader should take from it.
    note: String,
    /// What the HTML page shows of it.
    #[serde(skip)]
    shown: Shown,
}

/// An act as the HTML page shows it.
enum Shown {
    Run(Box<RunOutcome>, html::RunExtras),
    /// The recovery and the command that applies the phase again.
    Recover(Box<recover::Outcome>, String),
}

pub fn run(a: DemoArgs, ctx: &mut Ctx) -> Exit {
    let mut run = Run::new(ctx, DemoArgs::NAME, None, a.set.format, super::logs_for(&a.set.dir, a.log_dir.as_ref()));
    run.yes = true;
    run.audit = false;
    let started = Instant::now();
    let mut acts = Vec::new();
    let result = body(&a, &mut run, &mut acts);
    let verdict = acts.iter().filter(|a| a.title != BROKEN_TITLE).map(|a| a.verdict).max().unwrap_or(Verdict::Proceed);
    let mut report = match result {
        Ok(()) => {
            let text = format!("\ndemo: {} acts in {:.1} s\n", acts.len(), started.elapsed().as_secs_f64());
            Report { verdict: Some(verdict), text, ..Default::default() }
        }
        Err(e) => Report { verdict: Some(verdict), error: Some(e), ..Default::default() },
    };
    report.steps = json(&acts.iter().flat_map(|a| a.steps.iter()).collect::<Vec<_>>());
    if let Some(page) = write_page(&mut run, &a.set.dir, verdict, &acts) {
        report.text.push_str(&format!("page: {page}\n"));
    }
    report.set_body(&DemoJson { acts });
    run.finish(Ok(report))
}

/// The acts as one HTML page beside the log; its path.
fn write_page(run: &mut Run, set_dir: &Path, verdict: Verdict, acts: &[Act]) -> Option<String> {
    let path = run.log_path()?.with_extension("html");
    run.html_to(None, set_dir);
    let shown: Vec<html::Act> = acts
        .iter()
        .map(|a| match &a.shown {
            Shown::Run(outcome, extras) => html::Act::Run { title: &a.title, note: &a.note, outcome, extras: extras.clone() },
            Shown::Recover(outcome, again) => html::Act::Recover { title: &a.title, note: &a.note, outcome, again: again.clone() },
        })
        .collect();
    let page = html::demo(&run.page_meta(None, None), verdict, &shown);
    match std::fs::write(&path, page) {
        Ok(()) => Some(phasegate::display_path(&path)),
        Err(e) => {
            run.note(&format!("warning: could not write the demo's page {}: {e}", phasegate::display_path(&path)));
            None
        }
    }
}

const BROKEN_TITLE: &str = "A gate says ROLLBACK";

fn body(a: &DemoArgs, run: &mut Run, acts: &mut Vec<Act>) -> anyhow::Result<()> {
    let set = phasegate::load_set(&a.set.dir)?;
    let backend = a.server.backend();
    let t = Instant::now();
    let server = Server::start(&backend)?;
    run.say(&format!("disposable PostgreSQL ({}) ready in {} ms", server.kind(), t.elapsed().as_millis()));
    let name = format!("phasegate_demo_{}", std::process::id());
    let url = server.create_database(&name, None)?;
    let result = acts_on(&url, &set, a, run, acts);
    if let Err(e) = server.drop_database(&name) {
        run.say(&format!("warning: {e}"));
    }
    result
}

/// The phases the story walks: the seed's, the last reversible one, and
/// the data phase the broken copy belongs to.
fn acts_on(url: &str, set: &MigrationSet, a: &DemoArgs, run: &mut Run, acts: &mut Vec<Act>) -> anyhow::Result<()> {
    let mut client = phasegate::connect(url, "phasegate demo")?;
    phasegate::acquire_lock(&mut client, std::time::Duration::ZERO)?;
    // Locks traced from a second session, as migrate and rollback trace them.
    let opts = Options { run_id: run.run_id.clone(), accept_review: true, monitor_url: Some(url.to_string()), ..Default::default() };
    let seed_phase = set.seed().map(|s| s.after_phase).unwrap_or(0);
    let last_reversible = set.phases.iter().filter(|p| p.is_reversible()).map(|p| p.id).max().ok_or_else(|| anyhow!("the set has no reversible phase to show"))?;
    let first_reversible = set.phases.iter().find(|p| p.is_reversible()).map(|p| p.id).expect("one exists");

    // Act 1: the existing schema, its data, and the first reversible phase.
    let t = Instant::now();
    let base = phasegate::migrate(&mut client, set, Target::Phase(seed_phase), &opts, &mut DemoUi::new(run))?;
    expect_proceed(&base)?;
    let seeded = phasegate::seed(&mut client, set, a.seed_rows)?;
    let forward = phasegate::migrate(&mut client, set, Target::Phase(first_reversible), &opts, &mut DemoUi::new(run))?;
    expect_proceed(&forward)?;
    let mut steps = base.steps;
    steps.extend(forward.steps.iter().cloned());
    let rows = rows_note(&mut client);
    act(run, acts, "The schema as it is, its data, and the additive phase", &RunOutcome { steps, ..forward }, format!("{seeded} seed file(s) loaded ({rows}); phase {first_reversible} applied in {:.1} s", t.elapsed().as_secs_f64()));

    // Act 2: a broken copy of a data migration, stopped at its gate.
    match broken_copy(set)? {
        Some((copy, broken, _dir)) => {
            let before_broken = phasegate::migrate(&mut client, set, Target::Version(broken - 1), &opts, &mut DemoUi::new(run))?;
            expect_proceed(&before_broken)?;
            let before = phasegate::take_snapshot(&mut client, &Default::default())?;
            let gate = phasegate::migrate(&mut client, &copy, Target::Version(broken), &opts, &mut DemoUi::new(run))?;
            if gate.verdict() != Verdict::Rollback {
                bail!("the broken copy of V{broken} in {DEMO_DIR}/ was expected to say ROLLBACK at its gate, it said {}", gate.verdict());
            }
            let after = phasegate::take_snapshot(&mut client, &Default::default())?;
            let same = after.schema == before.schema && after.tables == before.tables;
            let applied = phasegate::ledger::applied(&mut client)?;
            if !same || applied.contains_key(&broken) {
                bail!("the aborted V{broken} left something behind (a bug: please report it)");
            }
            let rows: i64 = before.tables.values().map(|t| t.rows).sum();
            let mut steps = before_broken.steps;
            steps.extend(gate.steps.iter().cloned());
            let note = format!(
                "V{broken} from {DEMO_DIR}/ (a deliberately broken copy) said ROLLBACK: its transaction was rolled back; schema and all {rows} rows are exactly as before it, and V{broken} is not in the ledger"
            );
            act(run, acts, BROKEN_TITLE, &RunOutcome { steps, ..gate }, note);
        }
        None => run.say(&format!("\n(no {DEMO_DIR}/ folder with a broken copy of a migration in this set: the act where a gate says ROLLBACK is skipped)")),
    }

    // Act 3: forward to the last reversible phase.
    let t = Instant::now();
    let forward = phasegate::migrate(&mut client, set, Target::Phase(last_reversible), &opts, &mut DemoUi::new(run))?;
    expect_proceed(&forward)?;
    act(run, acts, &format!("Forward to phase {last_reversible}"), &forward, format!("{:.1} s", t.elapsed().as_secs_f64()));

    // Act 4: two phases back, newest first, rows backed up, a report written.
    let back_to = set.phases.iter().filter(|p| p.is_reversible() && p.id < last_reversible).map(|p| p.id).max().unwrap_or(last_reversible);
    let mut backed_up = 0;
    let mut reports = Vec::new();
    let mut steps = Vec::new();
    let mut last = None;
    for phase in (back_to..=last_reversible).rev().filter(|p| set.phase(*p).is_ok_and(|p| p.is_reversible())) {
        let outcome = phasegate::rollback(&mut client, set, phase, &opts, &mut DemoUi::new(run))?;
        expect_proceed(&outcome)?;
        backed_up += outcome.backups().map(|b| b.rows).sum::<i64>();
        if let Some(path) = write_rollback_report(run, set, phase, &outcome, url)? {
            reports.push(path);
        }
        steps.extend(outcome.steps.iter().cloned());
        last = Some(outcome);
    }
    let last = last.expect("at least one phase rolled back");
    let note = format!(
        "{backed_up} rows backed up before the rollback changed them (restore --run {} puts them back); report{}: {}",
        &run.run_id[..8],
        if reports.len() == 1 { "" } else { "s" },
        if reports.is_empty() { "(no log folder: none written)".to_string() } else { reports.join(", ") }
    );
    act(run, acts, &format!("Roll back phase {last_reversible}, then phase {back_to}"), &RunOutcome { steps, ..last }, note);
    if let Some(Act { shown: Shown::Run(_, extras), .. }) = acts.last_mut() {
        extras.restore_command = Some(format!("{} restore --run {}{}", run.bin(), run.run_id, super::migrate::dir_flag(&set.dir)));
    }

    // Act 5: the same phases again.
    let again = phasegate::migrate(&mut client, set, Target::Phase(last_reversible), &opts, &mut DemoUi::new(run))?;
    expect_proceed(&again)?;
    act(run, acts, "Re-apply", &again, "the phases apply again on the rolled-back database".into());

    // Act 6: past the point of no return, confirmed by typing.
    if set.phases.iter().any(|p| p.needs_confirmation()) {
        let cleanup = phasegate::migrate(&mut client, set, Target::Latest, &opts, &mut DemoUi::new(run))?;
        expect_proceed(&cleanup)?;
        let kept: i64 = cleanup.kept.iter().map(|k| k.size.rows).sum();
        act(run, acts, "The irreversible cleanup", &cleanup, format!("entered only after its name was typed (the demo typed it); {kept} rows of what it drops were kept first"));
        // Act 7: the way back from it.
        if let Some(phase) = set.phases.iter().rev().find(|p| phasegate::recover::keeps_what_it_destroys(p)).map(|p| p.id) {
            recover_act(&mut client, set, phase, &opts, run, acts)?;
        }
    }
    Ok(())
}

/// `recover --phase N`: the plan (a dry run, nothing changed), then the
/// recovery, and what came back.
fn recover_act(client: &mut Client, set: &MigrationSet, phase: u32, opts: &Options, run: &mut Run, acts: &mut Vec<Act>) -> anyhow::Result<()> {
    let title = format!("The way back: recover phase {phase}");
    run.say(&format!("\n== {title} =="));
    let plan = phasegate::recover::plan(client, set, phase)?;
    run.log_line(&super::recover::plan_text(&plan));
    run.say(&format!(
        "{} recover --phase {phase} --dry-run: {} statements in one transaction would re-create what V{} dropped and restore {} kept rows; nothing was changed",
        run.bin(),
        plan.plan.statements.len(),
        plan.versions.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", V"),
        plan.kept_rows
    ));
    let o = phasegate::recover::run(client, set, phase, opts, &mut DemoUi::new(run))?;
    if !o.committed {
        bail!("recovering phase {phase}: a before-migrate check failed, the recovery was undone");
    }
    run.say(super::recover::recovered_text(&o).trim_end());
    let again = format!("{} migrate --phase {phase}{}", run.bin(), super::migrate::dir_flag(&set.dir));
    let rows: u64 = o.recovered.iter().flat_map(|r| r.tables.iter()).map(|t| t.restored + t.inserted).sum();
    let note = format!("recovered in {:.1} s: phase {phase} is no longer applied, what it dropped is back with {rows} kept rows, and its before-migrate checks pass; `{again}` applies it again", o.duration_ms / 1000.0);
    run.say(&format!("-> {note}"));
    acts.push(Act { title, verdict: o.verdict, steps: Vec::new(), checks: o.checks.clone(), note, shown: Shown::Recover(Box::new(o), again) });
    Ok(())
}

fn expect_proceed(o: &RunOutcome) -> anyhow::Result<()> {
    if let Some(e) = &o.error {
        bail!("{e}");
    }
    if o.verdict() == Verdict::Rollback {
        bail!("a check said ROLLBACK where the demo expected none");
    }
    Ok(())
}

/// `100000 rows in reservations, ...`: the biggest tables, counted by the
/// ANALYZE a bulk load deserves anyway.
fn rows_note(client: &mut Client) -> String {
    let _ = client.batch_execute("ANALYZE");
    let rows = client
        .query(
            "SELECT c.relname::text, c.reltuples::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'r' AND n.nspname = 'public' AND c.reltuples > 0 ORDER BY c.reltuples DESC LIMIT 2",
            &[],
        )
        .unwrap_or_default();
    let parts: Vec<String> = rows.iter().map(|r| format!("{} rows in {}", r.get::<_, i64>(1), r.get::<_, String>(0))).collect();
    if parts.is_empty() {
        "no rows".into()
    } else {
        parts.join(", ")
    }
}

/// The set with its `demo/` files in place of the ones they copy, and the
/// version of the broken migration (the first one there).
fn broken_copy(set: &MigrationSet) -> anyhow::Result<Option<(MigrationSet, i32, tempfile::TempDir)>> {
    let demo = set.dir.join(DEMO_DIR);
    let broken: Vec<PathBuf> = match std::fs::read_dir(demo.join(phasegate::MIGRATIONS)) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "sql")).collect(),
        Err(_) => return Ok(None),
    };
    let Some(first) = broken.iter().min() else { return Ok(None) };
    let version = set
        .steps()
        .find(|s| s.forward.path.file_name() == first.file_name())
        .map(|s| s.version)
        .ok_or_else(|| anyhow!("{}: no migration of the set has this name", phasegate::display_path(first)))?;
    let dir = tempfile::tempdir().context("a temporary folder for the broken copy")?;
    copy_tree(&set.dir, dir.path(), &[phasegate::MANIFEST], &[phasegate::MIGRATIONS, phasegate::ROLLBACK, phasegate::VALIDATIONS, phasegate::PROBES, phasegate::SEED])?;
    copy_tree(&demo, dir.path(), &[], &[phasegate::MIGRATIONS, phasegate::ROLLBACK, phasegate::VALIDATIONS])?;
    let copy = phasegate::load_set(dir.path())?;
    Ok(Some((copy, version, dir)))
}

/// Copies `files` and the `.sql` files of `folders` from `from` to `to`.
fn copy_tree(from: &Path, to: &Path, files: &[&str], folders: &[&str]) -> anyhow::Result<()> {
    for f in files {
        std::fs::copy(from.join(f), to.join(f)).with_context(|| phasegate::display_path(&from.join(f)))?;
    }
    for sub in folders {
        let Ok(rd) = std::fs::read_dir(from.join(sub)) else { continue };
        std::fs::create_dir_all(to.join(sub))?;
        for e in rd {
            let p = e?.path();
            if p.extension().is_some_and(|e| e == "sql") {
                std::fs::copy(&p, to.join(sub).join(p.file_name().expect("a file"))).with_context(|| phasegate::display_path(&p))?;
            }
        }
    }
    Ok(())
}

/// Prints an act: its heading, its steps and decision table, its note.
fn act(run: &mut Run, acts: &mut Vec<Act>, title: &str, outcome: &RunOutcome, note: String) {
    let mut table = Vec::new();
    let _ = report::run_summary(&mut table, outcome, run.style);
    run.say(&format!("\n== {} ==", title));
    run.say(String::from_utf8_lossy(&table).trim_end());
    run.say(&format!("-> {note}"));
    acts.push(Act {
        title: title.to_string(),
        verdict: outcome.verdict(),
        steps: outcome.steps.clone(),
        checks: outcome.checks().cloned().collect(),
        note,
        shown: Shown::Run(Box::new(outcome.summary()), html::RunExtras::default()),
    });
}

/// The rollback's Markdown report beside the demo's log, as `rollback`
/// writes it.
fn write_rollback_report(run: &mut Run, set: &MigrationSet, phase: u32, outcome: &RunOutcome, url: &str) -> anyhow::Result<Option<String>> {
    let Some(log) = run.log_path().map(Path::to_path_buf) else { return Ok(None) };
    let path = log.with_extension(format!("rollback-phase{phase}.md"));
    let p = set.phase(phase).expect("rolled back, so it exists");
    let (duration_s, started_at) = run.started();
    let dir = super::migrate::dir_flag(&set.dir);
    let restore = format!("{} restore --run {}{dir}", run.bin(), run.run_id);
    let health = format!("{} health{dir} --watch --interval 30s --duration 1h", run.bin());
    let (operator, database, set_dir) = (run.operator(), phasegate::redact(url), phasegate::display_path(&set.dir));
    let doc = RollbackDoc {
        run_id: &run.run_id,
        phase,
        phase_name: &p.name,
        phase_summary: &p.summary,
        set_dir: &set_dir,
        database: &database,
        operator: &operator,
        db_user: "postgres", // the demo's disposable server has only this user
        started_at: &started_at,
        duration_s,
        verdict: Some(report::RunVerdict::of(outcome.checks(), outcome.failure.is_some())),
        exit_code: 0,
        error: None,
        outcome: Some(outcome),
        no_backup: false,
        restore_command: &restore,
        health_command: &health,
        log_file: None,
    };
    std::fs::write(&path, report::rollback_markdown(&doc)).with_context(|| phasegate::display_path(&path))?;
    Ok(Some(phasegate::display_path(&path)))
}

/// The demo's `Ui`: step progress goes to the log (the acts print their own
/// tables), a backfill's bar is drawn, and confirmations are answered by
/// typing what is asked, shown as typed.
struct DemoUi<'r, 'c, 'a, 'b> {
    run: &'r mut Run<'c, 'a, 'b>,
}

impl<'r, 'c, 'a, 'b> DemoUi<'r, 'c, 'a, 'b> {
    fn new(run: &'r mut Run<'c, 'a, 'b>) -> Self {
        DemoUi { run }
    }
}

impl Ui for DemoUi<'_, '_, '_, '_> {
    fn confirm(&mut self, prompt: &str, expected: &str) -> bool {
        self.run.say(&format!("\n{prompt}\n> {expected}      (typed by the demo)"));
        true
    }
    fn progress(&mut self, line: &str) {
        self.run.log_line(line);
    }
    fn batch(&mut self, progress: BatchProgress<'_>) {
        self.run.batch(progress);
    }
}
