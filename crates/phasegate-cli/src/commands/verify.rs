//! `verify`: rehearse every phase in a disposable PostgreSQL and report, per
//! phase and step, timings, verdicts and what a rollback failed to restore.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail};
use serde::Serialize;

use super::{Ctx, Report, Run};
use crate::exit::Exit;
use crate::cli::Shape;
use crate::cli::{FromArg, VerifyArgs};
use crate::report;
use phasegate::{display_path, foreign, rehearse, MigrationSet, Server, SqlFile};

/// `verify --format json`.
#[derive(Serialize)]
struct VerifyJson<'a> {
    server_start_ms: f64,
    database_create_ms: f64,
    rehearsal: &'a rehearse::Rehearsal,
    /// For `--from`: the layout read, and whether it was detected.
    layout: Option<LayoutJson>,
}

#[derive(Serialize)]
struct LayoutJson {
    layout: foreign::Layout,
    detected: bool,
    evidence: Option<phasegate::foreign::Evidence>,
}

pub fn run(a: VerifyArgs, ctx: &mut Ctx) -> Exit {
    let mut run = Run::new(ctx, VerifyArgs::NAME, a.phase, a.set.format, super::logs_for(&a.set.dir, a.log_dir.as_ref()));
    run.yes = true;
    run.audit = false;
    run.html_to(a.html.html.clone(), &a.set.dir);
    let report = body(&a, &mut run);
    run.finish(report)
}

/// The foreign folder `--from` names and its layout (`None`: detect it).
pub(super) fn foreign_source(from: &Option<FromArg>, from_dir: &Option<PathBuf>) -> anyhow::Result<Option<(PathBuf, Option<foreign::Layout>)>> {
    let needs_dir = |what: &str| anyhow!("--from {what} needs the migrations folder: --from {what} DIR");
    Ok(match (from, from_dir) {
        (None, None) => None,
        (None, Some(dir)) => bail!("{} given without --from; to verify a phasegate set use --dir, to audit another tool's folder --from {}", display_path(dir), display_path(dir)),
        (Some(FromArg::Layout(l)), Some(dir)) => Some((dir.clone(), Some(*l))),
        (Some(FromArg::Auto), Some(dir)) => Some((dir.clone(), None)),
        (Some(FromArg::Dir(dir)), None) => Some((dir.clone(), None)),
        // `--from goose` alone, with a folder named `goose` here: that folder.
        (Some(FromArg::Layout(l)), None) if Path::new(l.name()).is_dir() => Some((PathBuf::from(l.name()), None)),
        (Some(FromArg::Layout(l)), None) => return Err(needs_dir(l.name())),
        (Some(FromArg::Auto), None) => return Err(needs_dir("auto")),
        (Some(FromArg::Dir(d)), Some(_)) => bail!("--from {}: a layout comes before the folder (--from LAYOUT DIR), or the folder alone (--from DIR)", display_path(d)),
    })
}

/// The layout of another tool's folder: the one `--from` named, else
/// detected; says which.
pub(super) fn layout_of(dir: &Path, named: Option<foreign::Layout>, run: &mut Run) -> phasegate::Result<(foreign::Layout, Option<foreign::Detection>)> {
    let detection = match named {
        Some(_) => None,
        None => Some(phasegate::foreign::detect(dir)?),
    };
    let layout = named.or(detection.as_ref().map(|d| d.layout)).expect("named or detected");
    match &detection {
        Some(d) => run.say(&format!("layout: {layout} (detected: {})", d.evidence)),
        None => run.say(&format!("layout: {layout}")),
    }
    Ok((layout, detection))
}

/// Loads another tool's folder, detecting its layout when `--from` did
/// not name one, and says which layout it read.
fn load_foreign(dir: &Path, named: Option<foreign::Layout>, a: &VerifyArgs, run: &mut Run) -> phasegate::Result<(MigrationSet, foreign::Layout, Option<foreign::Detection>)> {
    let (layout, detection) = layout_of(dir, named, run)?;
    let opts = foreign::Options { placeholders: a.placeholders.iter().cloned().collect() };
    let set = phasegate::foreign::load_with(layout, dir, &opts)?;
    Ok((set, layout, detection))
}

fn body(a: &VerifyArgs, run: &mut Run) -> anyhow::Result<Report> {
    let source = foreign_source(&a.from, &a.from_dir)?;
    let mut layout_json = None;
    let mut rerun = format!("{} verify --dir {}", run.bin(), display_path(&a.set.dir));
    let loaded = match &source {
        None => phasegate::load_set(&a.set.dir),
        Some((dir, named)) => load_foreign(dir, *named, a, run).map(|(set, layout, detection)| {
            rerun = format!("{} verify --from {layout} {}", run.bin(), display_path(dir));
            run.html_to(a.html.html.clone(), dir);
            layout_json = Some(LayoutJson { layout, detected: detection.is_some(), evidence: detection.map(|d| d.evidence) });
            set
        }),
    };
    let set = loaded?;
    let setup = setup_files(a, layout_json.as_ref().map(|l| l.layout))?;
    let backend = a.backend.backend(&a.server)?;
    let t = Instant::now();
    let server = Server::start(&backend)?;
    let start_ms = t.elapsed().as_secs_f64() * 1000.0;
    let name = format!("phasegate_verify_{}_{}", std::process::id(), &run.run_id[..8]);
    // Roles are cluster-wide: those the rehearsal creates are dropped after it.
    let roles = server.roles()?;
    let t = Instant::now();
    server.create_database(&name, None)?;
    let create_ms = t.elapsed().as_secs_f64() * 1000.0;
    run.say(&format!("disposable PostgreSQL ({}): server ready in {start_ms:.0} ms, database created in {create_ms:.0} ms", server.kind()));
    let created = phasegate::rehearse::roles_created_by(&set, &setup);
    let result = rehearse_on(&server, &name, &set, setup, a, run);
    if let Err(e) = server.drop_database(&name) {
        run.say(&format!("warning: {e}"));
    }
    match server.drop_roles_since(&roles, &created) {
        Ok((dropped, kept)) => {
            if !dropped.is_empty() {
                run.say(&format!("dropped the roles the rehearsal created: {}", dropped.join(", ")));
            }
            for k in kept {
                run.say(&format!("warning: {k}"));
            }
        }
        Err(e) => run.say(&format!("warning: {e}")),
    }
    let rehearsal = result?;
    if let Some(path) = &a.junit {
        std::fs::write(path, report::junit(&rehearsal, &display_path(&set.dir))).map_err(|e| phasegate::Error::Io { path: path.clone(), source: e })?;
    }
    let mut text = Vec::new();
    let _ = report::verify_table(&mut text, &rehearsal, run.style, &rerun);
    let html = run.wants_html().then(|| report::html::verify(&run.page_meta(None, a.locks.max_lock_hold), &rehearsal, &rerun));
    Ok(Report {
        html,
        verdict: Some(rehearsal.verdict()),
        exit: Some(super::verify_exit(&rehearsal)),
        text: String::from_utf8_lossy(&text).into_owned(),
        ci: run.ci(|| report::github::verify(&rehearsal, &set), || report::markdown::verify(&rehearsal)),
        ..Default::default()
    }
    .with_body(&VerifyJson { server_start_ms: start_ms, database_create_ms: create_ms, rehearsal: &rehearsal, layout: layout_json }))
}

/// What runs before the first migration: the `--setup` files, then the
/// tool's own ledger table (`--from`), as the tool creates it before its
/// first migration.
fn setup_files(a: &VerifyArgs, layout: Option<foreign::Layout>) -> phasegate::Result<Vec<SqlFile>> {
    let mut files = a.setup.iter().map(|p| SqlFile::read(p)).collect::<phasegate::Result<Vec<_>>>()?;
    files.extend(layout.and_then(phasegate::foreign::ledger));
    Ok(files)
}

fn rehearse_on(server: &Server, database: &str, set: &MigrationSet, setup: Vec<SqlFile>, a: &VerifyArgs, run: &mut Run) -> phasegate::Result<rehearse::Rehearsal> {
    let opts = phasegate::rehearse::Options {
        phase: a.phase,
        strict: a.strict,
        seed_rows: a.seed_rows,
        setup,
        full_compare: a.full_compare,
        // Another tool's down scripts are audited for what they restore;
        // phasegate's own sets rehearse their rollbacks with backups, as
        // production runs them.
        apply: phasegate::Options {
            run_id: run.run_id.clone(),
            accept_review: true,
            backup: a.from.is_none() && a.from_dir.is_none(),
            max_lock_hold: a.locks.max_lock_hold,
            ..Default::default()
        },
    };
    phasegate::rehearse(server, database, set, &opts, run)
}
