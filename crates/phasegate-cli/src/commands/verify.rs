//! `verify`: rehearse every phase in a disposable PostgreSQL and report, per
//! phase and step, timings, verdicts and what a rollback failed to restore.

use std::time::Instant;

use anyhow::anyhow;
use serde::Serialize;

use super::{failed, Ctx, Report, Run};
use crate::cli::{BackendArg, FromArg, VerifyArgs};
use crate::report;
use phasegate::{display_path, Backend, Layout, MigrationSet, Rehearsal, Server};

/// `verify --format json`.
#[derive(Serialize)]
struct VerifyJson<'a> {
    server_start_ms: f64,
    database_create_ms: f64,
    rehearsal: &'a Rehearsal,
}

pub fn run(a: VerifyArgs, ctx: &mut Ctx) -> i32 {
    let mut run = Run::new(ctx, "verify", a.phase, a.set.format, super::logs_for(&a.set.dir, a.log_dir.as_ref()));
    run.yes = true;
    run.audit = false;
    let report = body(&a, &mut run);
    run.finish(report)
}

fn backend(a: &VerifyArgs) -> anyhow::Result<Backend> {
    Ok(match a.backend {
        BackendArg::Docker => Backend::Docker { image: a.server.image.clone() },
        BackendArg::Local => Backend::Local,
        BackendArg::Url => Backend::Url(
            a.server.server_url.clone().ok_or_else(|| anyhow!("--backend url needs --server-url or PHASEGATE_TEST_DATABASE_URL"))?,
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
            phasegate::load_foreign(layout, dir).map_err(anyhow::Error::from)
        }
        (None, Some(dir)) => Err(anyhow!("{} given without --from; to verify a phasegate set use --dir", display_path(dir))),
        _ => phasegate::load_set(&a.set.dir).map_err(anyhow::Error::from),
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
            return failed(phasegate::Error::Io { path: path.clone(), source: e });
        }
    }
    let mut text = Vec::new();
    let _ = report::verify_table(&mut text, &rehearsal, run.style, &verify_command(a, run.bin()));
    Report {
        verdict: Some(rehearsal.verdict()),
        exit: Some(super::verify_exit(&rehearsal)),
        text: String::from_utf8_lossy(&text).into_owned(),
        ..Default::default()
    }
    .with_body(&VerifyJson { server_start_ms: start_ms, database_create_ms: create_ms, rehearsal: &rehearsal })
}

/// The command that reruns this verify (for "see it again" hints).
fn verify_command(a: &VerifyArgs, bin: &str) -> String {
    match (a.from, &a.from_dir) {
        (Some(k), Some(d)) => format!("{bin} verify --from {} {}", format!("{k:?}").to_lowercase().replace("golangmigrate", "golang-migrate"), display_path(d)),
        _ => format!("{bin} verify --dir {}", display_path(&a.set.dir)),
    }
}

fn rehearse_on(url: &str, set: &MigrationSet, a: &VerifyArgs, run: &mut Run) -> phasegate::Result<Rehearsal> {
    let mut client = phasegate::connect(url, "phasegate verify")?;
    phasegate::acquire_lock(&mut client, std::time::Duration::ZERO)?;
    let opts = phasegate::RehearseOptions {
        phase: a.phase,
        strict: a.strict,
        seed_rows: a.seed_rows,
        // Another tool's down scripts are audited for what they restore;
        // phasegate's own sets rehearse their rollbacks with backups, as
        // production runs them.
        apply: phasegate::ApplyOptions { run_id: run.run_id.clone(), accept_review: true, backup: a.from.is_none(), ..Default::default() },
    };
    phasegate::rehearse(&mut client, set, &opts, run)
}
