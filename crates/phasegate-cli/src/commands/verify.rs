//! `verify`: rehearse every phase in a disposable PostgreSQL and report, per
//! phase and step, timings, verdicts and what a rollback failed to restore.

use std::time::Instant;

use super::{failed, Ctx, Report, Run};
use crate::cli::{BackendArg, FromArg, VerifyArgs};
use phasegate::error::{display_path, Error};
use phasegate::foreign::{self, Layout};
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

fn body(a: &VerifyArgs, run: &mut Run) -> Report {
    let loaded = match (a.from, &a.from_dir) {
        (Some(kind), Some(dir)) => {
            let layout = match kind {
                FromArg::Diesel => Layout::Diesel,
                FromArg::Sqlx => Layout::Sqlx,
                FromArg::GolangMigrate => Layout::GolangMigrate,
                FromArg::Refinery => Layout::Refinery,
            };
            foreign::load(layout, dir)
        }
        (None, Some(dir)) => Err(Error::Refused(format!("{} given without --from; to verify a phasegate set use --dir", display_path(dir)))),
        _ => set::load(&a.set.dir),
    };
    let set = match loaded {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
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
        if let Err(e) = std::fs::write(path, report::junit(&rehearsal, &display_path(&set.dir))) {
            return failed(Error::Io { path: path.clone(), source: e });
        }
    }
    let mut text = Vec::new();
    let _ = report::verify_table(&mut text, &rehearsal, run.style, &verify_command(a));
    let mut json = serde_json::Map::new();
    json.insert("server_start_ms".into(), start_ms.into());
    json.insert("database_create_ms".into(), create_ms.into());
    json.insert("rehearsal".into(), serde_json::to_value(&rehearsal).unwrap_or_default());
    Report {
        verdict: Some(rehearsal.verdict()),
        exit: Some(super::verify_exit(&rehearsal)),
        text: String::from_utf8_lossy(&text).into_owned(),
        json,
        ..Default::default()
    }
}

/// The command that reruns this verify (for "see it again" hints).
fn verify_command(a: &VerifyArgs) -> String {
    match (a.from, &a.from_dir) {
        (Some(k), Some(d)) => format!("cargo xtask verify --from {} {}", format!("{k:?}").to_lowercase().replace("golangmigrate", "golang-migrate"), display_path(d)),
        _ => format!("cargo xtask verify --dir {}", display_path(&a.set.dir)),
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
        apply: apply::Options { run_id: run.run_id.clone(), accept_review: true, backup: a.from.is_none(), ..Default::default() },
    };
    rehearse::rehearse(&mut client, set, &opts, run)
}
