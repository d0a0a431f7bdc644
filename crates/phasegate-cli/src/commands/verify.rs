//! `verify`: rehearse every phase in a disposable PostgreSQL and report, per
//! phase and step, timings, verdicts and what a rollback failed to restore.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{failed, Ctx, Report, Run};
use crate::cli::{BackendArg, FromArg, VerifyArgs};
use phasegate::error::{display_path, Error};
use phasegate::foreign::{self, Detection, Layout};
use phasegate::pg::{Backend, Server};
use phasegate::rehearse::{self, Rehearsal};
use crate::report;
use phasegate::{apply, db, set};

pub fn run(a: VerifyArgs, ctx: &mut Ctx) -> i32 {
    let log_dir = a.log_dir.clone().unwrap_or_else(|| a.set.dir.join("logs"));
    let mut run = Run::new(ctx, "verify", a.phase, a.set.format, Some(log_dir));
    run.yes = true;
    run.audit = false;
    let report = body(&a, &mut run);
    run.finish(report)
}

fn backend(a: &VerifyArgs) -> Result<Backend, Error> {
    Ok(match a.backend {
        BackendArg::Docker => Backend::Docker { image: a.server.image.clone() },
        BackendArg::Local => Backend::Local,
        BackendArg::Url => Backend::Url(
            a.server.server_url.clone().ok_or_else(|| Error::Refused("--backend url needs --server-url or PHASEGATE_TEST_DATABASE_URL".into()))?,
        ),
    })
}

/// The foreign folder `--from` names and its layout (`None`: detect it).
fn foreign_source(a: &VerifyArgs) -> Result<Option<(PathBuf, Option<Layout>)>, Error> {
    let needs_dir = |what: &str| Error::Refused(format!("--from {what} needs the migrations folder: --from {what} DIR"));
    Ok(match (&a.from, &a.from_dir) {
        (None, None) => None,
        (None, Some(dir)) => return Err(Error::Refused(format!("{} given without --from; to verify a phasegate set use --dir, to audit another tool's folder --from {}", display_path(dir), display_path(dir)))),
        (Some(FromArg::Layout(l)), Some(dir)) => Some((dir.clone(), Some(*l))),
        (Some(FromArg::Auto), Some(dir)) => Some((dir.clone(), None)),
        (Some(FromArg::Dir(dir)), None) => Some((dir.clone(), None)),
        // `--from goose` alone, with a folder named `goose` here: that folder.
        (Some(FromArg::Layout(l)), None) if Path::new(l.name()).is_dir() => Some((PathBuf::from(l.name()), None)),
        (Some(FromArg::Layout(l)), None) => return Err(needs_dir(l.name())),
        (Some(FromArg::Auto), None) => return Err(needs_dir("auto")),
        (Some(FromArg::Dir(d)), Some(_)) => return Err(Error::Refused(format!("--from {}: a layout comes before the folder (--from LAYOUT DIR), or the folder alone (--from DIR)", display_path(d)))),
    })
}

/// Loads another tool's folder, detecting its layout when `--from` did
/// not name one, and says which layout it read.
fn load_foreign(dir: &Path, named: Option<Layout>, a: &VerifyArgs, run: &mut Run) -> Result<(set::MigrationSet, Layout, Option<Detection>), Error> {
    let detection = match named {
        Some(_) => None,
        None => Some(foreign::detect(dir).inspect_err(|e| {
            if matches!(e, Error::UnknownLayout { .. }) {
                run.say(&format!("hint: name the layout: --from LAYOUT {} ({})", display_path(dir), Layout::ALL.map(|l| l.name()).join(", ")));
            }
        })?),
    };
    let layout = named.or(detection.as_ref().map(|d| d.layout)).expect("named or detected");
    match &detection {
        Some(d) => run.say(&format!("layout: {layout} (detected: {})", d.evidence)),
        None => run.say(&format!("layout: {layout}")),
    }
    let opts = foreign::Options { placeholders: a.placeholders.iter().cloned().collect() };
    let set = foreign::load_with(layout, dir, &opts).inspect_err(|e| {
        if let Error::MissingPlaceholder { name, .. } = e {
            run.say(&format!("hint: give it a value with --placeholder {name}=VALUE"));
        }
    })?;
    Ok((set, layout, detection))
}

fn body(a: &VerifyArgs, run: &mut Run) -> Report {
    let source = match foreign_source(a) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let mut layout_json = None;
    let mut rerun = format!("cargo xtask verify --dir {}", display_path(&a.set.dir));
    let loaded = match &source {
        None => set::load(&a.set.dir),
        Some((dir, named)) => load_foreign(dir, *named, a, run).map(|(set, layout, detection)| {
            rerun = format!("cargo xtask verify --from {layout} {}", display_path(dir));
            layout_json = Some(serde_json::json!({ "layout": layout, "detected": detection.is_some(), "evidence": detection.map(|d| d.evidence) }));
            set
        }),
    };
    let set = match loaded {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let origins = report::origins(&set);
    let backend = match backend(a) {
        Ok(b) => b,
        Err(e) => return failed(e),
    };
    let t = Instant::now();
    let server = match Server::start(&backend) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let start_ms = t.elapsed().as_secs_f64() * 1000.0;
    let name = format!("phasegate_verify_{}_{}", std::process::id(), &run.run_id[..8]);
    let t = Instant::now();
    let url = match server.create_database(&name, None) {
        Ok(u) => u,
        Err(e) => return failed(e),
    };
    let create_ms = t.elapsed().as_secs_f64() * 1000.0;
    run.say(&format!("disposable PostgreSQL: server ready in {start_ms:.0} ms, database created in {create_ms:.0} ms"));
    let result = rehearse_on(&url, &set, a, run);
    if let Err(e) = server.drop_database(&name) {
        run.say(&format!("warning: {e}"));
    }
    let rehearsal = match result {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    if let Some(path) = &a.junit {
        if let Err(e) = std::fs::write(path, report::junit(&rehearsal, &display_path(&set.dir), &origins)) {
            return failed(Error::Io { path: path.clone(), source: e });
        }
    }
    let mut text = Vec::new();
    let _ = report::verify_table(&mut text, &rehearsal, &origins, run.style, &rerun);
    let mut json = serde_json::Map::new();
    json.insert("server_start_ms".into(), start_ms.into());
    json.insert("database_create_ms".into(), create_ms.into());
    let mut rehearsal_json = serde_json::to_value(&rehearsal).unwrap_or_default();
    if let Some(phases) = rehearsal_json.get_mut("phases").and_then(|p| p.as_array_mut()) {
        for p in phases {
            let origin = p.get("phase").and_then(|id| id.as_u64()).and_then(|id| origins.get(&(id as u32)));
            if let (Some(o), Some(obj)) = (origin, p.as_object_mut()) {
                obj.insert("origin".into(), serde_json::to_value(o).unwrap_or_default());
            }
        }
    }
    json.insert("rehearsal".into(), rehearsal_json);
    if let Some(l) = layout_json {
        json.insert("layout".into(), l);
    }
    Report {
        verdict: Some(rehearsal.verdict()),
        exit: Some(super::verify_exit(&rehearsal)),
        text: String::from_utf8_lossy(&text).into_owned(),
        json,
        ..Default::default()
    }
}

fn rehearse_on(url: &str, set: &set::MigrationSet, a: &VerifyArgs, run: &mut Run) -> phasegate::Result<Rehearsal> {
    let mut client = db::connect(url, "phasegate verify")?;
    db::acquire_lock(&mut client, std::time::Duration::ZERO)?;
    let opts = rehearse::Options {
        phase: a.phase,
        strict: a.strict,
        seed_rows: a.seed_rows,
        // Another tool's down scripts are audited for what they restore;
        // phasegate's own sets rehearse their rollbacks with backups, as
        // production runs them.
        apply: apply::Options { run_id: run.run_id.clone(), accept_review: true, backup: a.from.is_none() && a.from_dir.is_none(), ..Default::default() },
    };
    rehearse::rehearse(&mut client, set, &opts, run)
}
