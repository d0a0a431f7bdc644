//! The verify benchmarks of docs/targets.md: the clinic set end to end, and
//! `verify --from` on a generated project of 250 migrations against a
//! `pg_dump --schema-only` round trip and against applying every forward
//! file once with `psql -1 -f`, all on the same server in the same run.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::corpus::{self, Defect, Layout};
use super::{figure, ms, Figure, Options, Silent};
use phasegate::{rehearse, MigrationSet, Server};

/// Migrations in the generated project.
const MIGRATIONS: usize = 250;

/// The defects planted in the benchmark's project: those a schema dump
/// sees, one it cannot see (rows), and one that is no defect.
const PLANTED: [(usize, Defect); 5] =
    [(30, Defect::DownFails), (80, Defect::LeavesObject), (130, Defect::LosesRows), (180, Defect::ColumnOrder), (220, Defect::FoldedTime)];

/// `verify` of the clinic set on a database of the running server: the
/// whole rehearsal, plus the server start measured before.
pub(super) fn clinic(server: &Server, set: &MigrationSet, o: &Options, start_ms: f64, say: &mut dyn FnMut(&str)) -> Result<Figure> {
    say(&format!("verify: clinic set with {} seeded rows", o.verify_rows));
    let name = format!("bench_verify_{}", std::process::id());
    let t = Instant::now();
    server.create_database(&name, None)?;
    let opts = rehearse::Options { phase: None, strict: false, seed_rows: Some(o.verify_rows), setup: Vec::new(), full_compare: false, apply: phasegate::Options { accept_review: true, ..Default::default() } };
    let r = phasegate::rehearse(server, &name, set, &opts, &mut Silent);
    let total = start_ms + ms(t.elapsed());
    server.drop_database(&name)?;
    let r = r?;
    let steps: Vec<serde_json::Value> = r
        .phases
        .iter()
        .map(|p| serde_json::json!({"phase": p.phase, "name": p.name, "ms": p.ms, "isolation": p.isolation, "clone_ms": p.clone_ms, "steps": p.steps}))
        .collect();
    let per_phase = r.phases.iter().map(|p| format!("{} {:.1}s", p.name, p.ms / 1000.0)).collect::<Vec<_>>().join(", ");
    let splits: Vec<Split> = r.phases.iter().map(Split::of).collect();
    let slowest = splits.iter().zip(&r.phases).max_by(|a, b| a.1.ms.total_cmp(&b.1.ms)).map(|(s, p)| format!("; {} = {}", p.name, s.line())).unwrap_or_default();
    Ok(figure(
        "verify of the clinic set end to end (container start included)",
        format!(
            "{:.1} s (container {:.1}s, {per_phase}{slowest}; {})",
            total / 1000.0,
            start_ms / 1000.0,
            if r.mismatch() { "MISMATCH" } else { "all restored" }
        ),
        "< 10 s on 2 cores",
        Some(total < 10_000.0 && !r.mismatch()),
        serde_json::json!({
            "total_ms": total, "container_start_ms": start_ms, "phases": steps, "rows": o.verify_rows,
            "split": r.phases.iter().zip(&splits).map(|(p, s)| serde_json::json!({"phase": p.phase, "name": p.name, "split": s})).collect::<Vec<_>>(),
            "slowest_checks": slowest_checks(&r, 10),
        }),
    ))
}

/// Where a phase's rehearsal time went: the migrations' own SQL (each run's
/// time less its checks'), the checks, the snapshots and comparisons, the
/// probes, the seed, the clone and the vacuums. The runs are `migrate`, `rollback` and
/// `re-apply`; a phase rehearsed on a clone overlaps the next phases' on the
/// chain, so the parts are summed per phase, not over the run.
#[derive(Debug, Default, serde::Serialize)]
struct Split {
    /// Per run (`migrate`, `rollback`, `re-apply`): its SQL and its checks.
    runs: Vec<RunSplit>,
    checks_ms: f64,
    sql_ms: f64,
    observe_ms: f64,
    probes_ms: f64,
    seed_ms: f64,
    clone_ms: f64,
    vacuum_ms: f64,
}

#[derive(Debug, serde::Serialize)]
struct RunSplit {
    run: &'static str,
    sql_ms: f64,
    checks_ms: f64,
    checks: usize,
}

impl Split {
    fn of(p: &phasegate::rehearse::PhaseRehearsal) -> Split {
        let mut s = Split { clone_ms: p.clone_ms.unwrap_or(0.0), ..Split::default() };
        for st in &p.steps {
            let checks: f64 = st.checks.iter().map(|c| c.duration_ms).sum();
            match st.step {
                "migrate" | "rollback" | "re-apply" => {
                    let sql = (st.ms - checks).max(0.0);
                    s.runs.push(RunSplit { run: st.step, sql_ms: sql, checks_ms: checks, checks: st.checks.len() });
                    s.sql_ms += sql;
                    s.checks_ms += checks;
                }
                "snapshot" | "compare" => s.observe_ms += st.ms,
                "seed" => s.seed_ms += st.ms,
                "vacuum" => s.vacuum_ms += st.ms,
                step if step.starts_with("probes") => s.probes_ms += st.ms,
                _ => {}
            }
        }
        s
    }

    /// `SQL 9.8s (migrate 3.1, rollback 3.4, re-apply 3.3) + checks 1.9s + ...`
    fn line(&self) -> String {
        let runs = self.runs.iter().map(|r| format!("{} {:.1}", r.run, r.sql_ms / 1000.0)).collect::<Vec<_>>().join(", ");
        format!(
            "SQL {:.1}s ({runs}) + checks {:.1}s + snapshots and compares {:.1}s + clone {:.1}s + vacuum {:.1}s",
            self.sql_ms / 1000.0,
            self.checks_ms / 1000.0,
            self.observe_ms / 1000.0,
            self.clone_ms / 1000.0,
            self.vacuum_ms / 1000.0
        )
    }
}

/// The `n` checks that took longest over the whole rehearsal, each with
/// its runs' total time and how many times it ran.
fn slowest_checks(r: &rehearse::Rehearsal, n: usize) -> Vec<serde_json::Value> {
    let mut by: std::collections::BTreeMap<(i32, &str), (f64, usize)> = std::collections::BTreeMap::new();
    for c in r.phases.iter().flat_map(|p| &p.steps).flat_map(|s| &s.checks) {
        let e = by.entry((c.version, c.check.as_str())).or_default();
        e.0 += c.duration_ms;
        e.1 += 1;
    }
    let mut all: Vec<_> = by.into_iter().collect();
    all.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
    all.into_iter().take(n).map(|((v, name), (ms, runs))| serde_json::json!({"version": v, "check": name, "ms": ms, "runs": runs})).collect()
}

/// `verify --from diesel` on the generated project, the pg_dump round trip
/// and `psql -1 -f` of every forward file, each on a fresh database.
pub(super) fn from_corpus(server: &Server, say: &mut dyn FnMut(&str)) -> Result<Vec<Figure>> {
    say(&format!("verify --from: {MIGRATIONS} generated diesel migrations"));
    let (dir, set) = corpus_set()?;
    let (r, phasegate) = rehearse_corpus(server, &set)?;
    say("verify --from: pg_dump --schema-only round trip per migration");
    let (round, round_trip_ms) = on_fresh(server, "vf_dump", |_, url| round_trip(&set, url, dir.path()))?;
    say("verify --from: psql -1 -f of every forward file");
    let ((), psql_ms) = on_fresh(server, "vf_psql", |_, url| set.phases.iter().try_for_each(|p| psql_file(url, &p.steps[0].forward, dir.path()).map(|_| ())))?;

    let ours = as_round_trip(&r);
    let same = ours == round;
    let differing = |v: &[&str]| v.iter().filter(|x| **x != "identical").count();
    let rehearsed = r.phases.iter().filter(|p| p.result != rehearse::PhaseResult::NotRehearsed).count();
    let speedup = round_trip_ms / phasegate;
    let overhead = phasegate / psql_ms;
    let values = serde_json::json!({
        "migrations": MIGRATIONS, "rehearsed": rehearsed, "summary": r.summary,
        "phasegate_ms": phasegate, "pg_dump_round_trip_ms": round_trip_ms, "psql_apply_ms": psql_ms,
        "speedup": speedup, "overhead": overhead, "same_verdicts": same,
        "phasegate_differing": differing(&ours), "pg_dump_differing": differing(&round),
    });
    Ok(vec![
        figure(
            "verify --from on 250 migrations vs a pg_dump --schema-only round trip",
            format!(
                "phasegate {:.1} s vs round trip {:.1} s = {speedup:.1}x faster; {rehearsed}/{MIGRATIONS} rehearsed; verdicts {} ({} vs {} not identical)",
                phasegate / 1000.0,
                round_trip_ms / 1000.0,
                if same { "the same" } else { "DIFFER" },
                differing(&ours),
                differing(&round)
            ),
            ">= 10x faster, same verdicts",
            Some(speedup >= 10.0 && same && rehearsed == MIGRATIONS),
            values.clone(),
        ),
        figure(
            "verify --from on 250 migrations vs psql -1 -f of every forward file",
            format!("phasegate {:.1} s vs psql {:.1} s = {overhead:.2}x", phasegate / 1000.0, psql_ms / 1000.0),
            "none: the <= 3x target is measured by verify-corpus, on a history shaped like a real one",
            None,
            values,
        ),
    ])
}

/// The generated project (in a temporary folder) and its set.
fn corpus_set() -> Result<(tempfile::TempDir, MigrationSet)> {
    let dir = tempfile::tempdir().context("creating a temporary folder")?;
    let migrations = corpus::project(MIGRATIONS, &PLANTED);
    corpus::write(&migrations, Layout::Diesel, dir.path()).context("writing the generated project")?;
    let set = phasegate::foreign::load(phasegate::foreign::Layout::Diesel, dir.path())?;
    Ok((dir, set))
}

/// `verify --from` of the generated project on a fresh database, timed.
fn rehearse_corpus(server: &Server, set: &MigrationSet) -> Result<(rehearse::Rehearsal, f64)> {
    // As `verify --from` runs: another tool's down scripts, without backups.
    let apply = phasegate::Options { backup: false, ..Default::default() };
    let opts = rehearse::Options { phase: None, strict: false, seed_rows: None, setup: Vec::new(), full_compare: false, apply };
    on_fresh(server, "vf_pg", |name, _| Ok(phasegate::rehearse(server, name, set, &opts, &mut Silent)?))
}

/// The HTML report of `verify --from` on the generated project: its size,
/// and how long headless Chromium takes to open it (load and lay out the
/// whole page), written to `dir`.
pub(super) fn html_report(server: &Server, dir: &Path, say: &mut dyn FnMut(&str)) -> Result<Figure> {
    say(&format!("html: the verify report of {MIGRATIONS} generated migrations"));
    let (project, set) = corpus_set()?;
    let (r, ms_taken) = rehearse_corpus(server, &set)?;
    let meta = crate::report::html::Meta {
        command: format!("phasegate verify --from diesel {}", phasegate::display_path(project.path())),
        set: format!("{MIGRATIONS} generated diesel migrations"),
        started_at: "bench".into(),
        duration_s: ms_taken / 1000.0,
        operator: "bench".into(),
        ..Default::default()
    };
    let t = Instant::now();
    let page = crate::report::html::verify(&meta, &r, "phasegate verify --from diesel");
    let render_ms = ms(t.elapsed());
    std::fs::create_dir_all(dir).with_context(|| phasegate::display_path(dir))?;
    let path = dir.join("bench-corpus-verify.html");
    std::fs::write(&path, &page).with_context(|| phasegate::display_path(&path))?;
    let mb = page.len() as f64 / 1e6;
    let opened = open_in_browser(&path);
    let (measured, met, values) = match &opened {
        Ok(o) => (
            format!(
                "{mb:.2} MB, opened in {:.2} s as a browser's first page and {:.2} s as its second (load event {:.2} s), headless Chromium; rendered in {render_ms:.0} ms; {}",
                o.first_open_ms / 1000.0,
                o.open_ms / 1000.0,
                o.load_ms / 1000.0,
                phasegate::display_path(&path)
            ),
            Some(o.open_ms.max(o.first_open_ms) < 2000.0 && mb < 5.0),
            serde_json::json!({"bytes": page.len(), "open_ms": o.open_ms, "load_ms": o.load_ms, "first_open_ms": o.first_open_ms, "render_ms": render_ms, "phases": r.phases.len(), "page": phasegate::display_path(&path)}),
        ),
        Err(e) => (format!("{mb:.2} MB; not opened: {e}"), Some(false), serde_json::json!({"bytes": page.len(), "render_ms": render_ms, "error": e})),
    };
    Ok(figure(&format!("HTML report of verify --from on {MIGRATIONS} migrations: size, and opening it in headless Chromium"), measured, "< 2 s and < 5 MB", met, values))
}

/// How long opening the page took, in ms.
struct Opening {
    /// To the load event and the whole page laid out, in a browser that
    /// already showed a page.
    open_ms: f64,
    load_ms: f64,
    /// The same, as the first page of a browser just started.
    first_open_ms: f64,
}

/// Opens the page in headless Chromium twice: the first page a fresh
/// browser opens also pays for starting its renderer.
#[cfg(feature = "browser")]
fn open_in_browser(page: &Path) -> std::result::Result<Opening, String> {
    let browser = crate::report::html::browser::Browser::launch(1280, 900)?;
    let first = browser.open(page)?;
    let o = browser.open(page)?;
    Ok(Opening { open_ms: o.open_ms, load_ms: o.load_ms, first_open_ms: first.open_ms })
}

#[cfg(not(feature = "browser"))]
fn open_in_browser(_page: &Path) -> std::result::Result<Opening, String> {
    Err("phasegate-cli was built without its `browser` feature".into())
}

/// Runs `f` on a fresh database of the server (its name and URL), timed;
/// the database is dropped afterwards.
pub(super) fn on_fresh<T>(server: &Server, label: &str, f: impl FnOnce(&str, &str) -> Result<T>) -> Result<(T, f64)> {
    let name = format!("bench_{label}_{}", std::process::id());
    let url = server.create_database(&name, None)?;
    let t = Instant::now();
    let out = f(&name, &url);
    let took = ms(t.elapsed());
    server.drop_database(&name)?;
    Ok((out?, took))
}

/// What a schema-only round trip concludes per migration, from phasegate's
/// findings: it sees no rows, and any column-order change is a difference.
fn as_round_trip(r: &rehearse::Rehearsal) -> Vec<&'static str> {
    r.phases
        .iter()
        .map(|p| {
            let kinds: Vec<&str> = p.findings.iter().map(finding_kind).collect();
            if kinds.contains(&"rollback_failed") {
                "down failed"
            } else if kinds.iter().any(|k| matches!(*k, "schema_differs" | "column_order_only")) {
                "differs"
            } else {
                "identical"
            }
        })
        .collect()
}

fn finding_kind(f: &phasegate::rehearse::Finding) -> &'static str {
    use phasegate::rehearse;
    match f {
        rehearse::Finding::SchemaDiffers { against: phasegate::rehearse::Against::BeforePhase, .. } => "schema_differs",
        rehearse::Finding::ColumnOrderOnly { against: phasegate::rehearse::Against::BeforePhase, .. } => "column_order_only",
        rehearse::Finding::RollbackFailed { .. } => "rollback_failed",
        _ => "other",
    }
}

/// Runs a migration file with psql, in one transaction unless it must run
/// outside one; `Ok(false)` when it failed.
pub(super) fn psql_file(url: &str, f: &phasegate::SqlFile, scratch: &Path) -> Result<bool> {
    let path = scratch.join("bench_file.sql");
    std::fs::write(&path, &f.text).with_context(|| path.display().to_string())?;
    let mut cmd = Command::new("psql");
    cmd.args(["-q", "-X", "-v", "ON_ERROR_STOP=1"]);
    if !f.directives.no_transaction {
        cmd.arg("-1");
    }
    let out = cmd.arg("-f").arg(&path).arg(url).output().context("running psql (install postgresql-client)")?;
    Ok(out.status.success())
}

/// `pg_dump --schema-only` without the per-run `\restrict` keys.
fn dump(url: &str) -> Result<String> {
    let o = Command::new("pg_dump").args(["--schema-only", "--no-owner", "--no-privileges", url]).output().context("running pg_dump (install postgresql-client)")?;
    if !o.status.success() {
        bail!("pg_dump failed: {}", String::from_utf8_lossy(&o.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&o.stdout).lines().filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict")).collect::<Vec<_>>().join("\n"))
}

/// The round trip per migration on a scratch database: dump, up, down,
/// dump, compare, then up again to go on.
fn round_trip(set: &MigrationSet, url: &str, scratch: &Path) -> Result<Vec<&'static str>> {
    let mut out = Vec::new();
    let mut before = dump(url)?;
    for p in &set.phases {
        let s = &p.steps[0];
        if !psql_file(url, &s.forward, scratch)? {
            bail!("{}: the up script failed", p.name);
        }
        let Some(down) = &s.rollback else {
            out.push("no down");
            before = dump(url)?;
            continue;
        };
        if !psql_file(url, down, scratch)? {
            out.push("down failed");
            before = dump(url)?;
            continue;
        }
        let after = dump(url)?;
        out.push(if after == before { "identical" } else { "differs" });
        if !psql_file(url, &s.forward, scratch)? {
            bail!("{}: applying the up script again failed", p.name);
        }
        before = dump(url)?;
    }
    Ok(out)
}
