//! Benchmarks of the performance targets (docs/targets.md), measured in one run on one machine so the
//! figures are comparable as ratios: fresh-database cost, verify of the
//! clinic set end to end, the framework's overhead over `psql -f`, snapshot
//! time on 500 tables, the batched backfill against a single UPDATE under a
//! concurrent writer, the writers' wait through every phase and rollback of
//! both shipped sets, `verify --from` against a pg_dump round trip, a
//! fleet of 50 databases against one (and, asked for by name, a thousand
//! databases over four servers through the real command line), loading a 10 MB migration, and the
//! write cost of a generated change's sync trigger.
//! Benchmarks print figures; they never pass or fail a test suite.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use anyhow::{anyhow, bail, Context, Result};

use phasegate::{Backend, MigrationSet, Server, SnapshotOptions, Target, Ui};

mod backfill;
mod change;
pub mod corpus;
#[cfg(unix)]
mod fleet;
pub mod history;
mod load;
mod traffic;
mod verify;
pub mod verify_history;

/// One measured figure beside its target.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub bench: String,
    pub measured: String,
    pub target: String,
    /// met, missed, or info (no target).
    pub result: &'static str,
    pub values: serde_json::Value,
}

fn figure(bench: &str, measured: String, target: &str, met: Option<bool>, values: serde_json::Value) -> Figure {
    let result = match met {
        Some(true) => "met",
        Some(false) => "missed",
        None => "info",
    };
    Figure { bench: bench.into(), measured, target: target.into(), result, values }
}

pub struct Options<'a> {
    pub backend: Backend,
    pub clinic_dir: &'a Path,
    pub only: Vec<String>,
    pub backfill_rows: u64,
    pub verify_rows: u64,
    /// Where pages the benchmarks render go (the corpus's HTML report).
    pub report_dir: std::path::PathBuf,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Progress goes nowhere during benchmarks (it would cost time); confirmations are granted.
struct Silent;
impl Ui for Silent {
    fn confirm(&mut self, _p: &str, _e: &str) -> bool {
        true
    }
    fn progress(&mut self, _line: &str) {}
}
impl phasegate::fleet::FleetUi for Silent {}

fn wanted(o: &Options, name: &str) -> bool {
    o.only.is_empty() || o.only.iter().any(|x| x == name)
}

/// Runs the selected benchmarks; `say` reports progress to the operator.
pub fn run(o: &Options, say: &mut dyn FnMut(&str)) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    if wanted(o, "load") {
        figures.push(load::ten_megabytes(say)?);
        if o.only.iter().all(|x| x == "load") {
            return Ok(figures);
        }
    }
    // Only when asked for by name: it starts four servers of its own and
    // makes three thousand databases.
    #[cfg(unix)]
    if o.only.iter().any(|x| x == "fleet-scale") {
        figures.extend(fleet::scale(o, say)?);
        if o.only.iter().all(|x| x == "load" || x == "fleet-scale") {
            return Ok(figures);
        }
    }
    let t = Instant::now();
    let server = Server::start(&o.backend)?;
    let start_ms = ms(t.elapsed());
    say(&format!("server ready in {start_ms:.0} ms"));
    let set = phasegate::load_set(o.clinic_dir)?;

    if wanted(o, "fresh-db") {
        let clone = clone_median(&server, None, "clone")?;
        figures.push(figure(
            "fresh database: CREATE DATABASE from a template (median of 20)",
            format!("{clone:.1} ms"),
            "< 100 ms",
            Some(clone < 100.0),
            serde_json::json!({"clone_ms": clone}),
        ));
        figures.push(figure(
            "fresh database: container start vs template clone",
            format!("start {start_ms:.0} ms, clone {clone:.1} ms ({:.0}x)", start_ms / clone.max(0.01)),
            "start + clone < 1.5 s",
            Some(start_ms + clone < 1500.0),
            serde_json::json!({"container_start_ms": start_ms, "clone_ms": clone}),
        ));
    }

    if wanted(o, "factory") {
        figures.push(factory(&server, &set, o, say)?);
    }

    if wanted(o, "verify") {
        figures.push(verify::clinic(&server, &set, o, start_ms, say)?);
    }

    if wanted(o, "overhead") {
        figures.push(overhead(&server, &set, o, say)?);
    }
    if wanted(o, "snapshot") {
        figures.push(snapshot_500(&server, say)?);
    }
    if wanted(o, "backfill") {
        figures.extend(backfill::clinic(&server, &set, o, say)?);
    }
    if wanted(o, "traffic") {
        figures.extend(traffic::both(&server, o.clinic_dir, o.verify_rows, say)?);
    }
    if wanted(o, "verify-from") {
        figures.extend(verify::from_corpus(&server, say)?);
    }
    if wanted(o, "verify-corpus") {
        figures.extend(verify_history::run(&server, say)?);
    }
    if wanted(o, "html") {
        figures.push(verify::html_report(&server, &o.report_dir, say)?);
    }
    if wanted(o, "change") {
        figures.extend(change::sync_trigger_cost(&server, say)?);
    }
    if wanted(o, "fleet") {
        figures.push(fleet(&server, &set, say)?);
    }
    Ok(figures)
}

/// A clinic database with phase 0 applied and `rows` reservations seeded, as a template.
fn seeded_template(server: &Server, set: &MigrationSet, rows: Option<u64>, to_version: Option<i32>, label: &str) -> Result<String> {
    let name = format!("bench_tpl_{label}_{}", std::process::id());
    let url = server.create_database(&name, None)?;
    let mut c = phasegate::connect(&url, "phasegate bench")?;
    let opts = phasegate::Options { accept_review: true, ..Default::default() };
    phasegate::migrate(&mut c, set, Target::Phase(0), &opts, &mut Silent)?;
    phasegate::seed(&mut c, set, rows)?;
    if let Some(v) = to_version {
        let o = phasegate::migrate(&mut c, set, Target::Version(v), &opts, &mut Silent)?;
        if let Some(e) = o.failure {
            return Err(e.into());
        }
    }
    c.batch_execute("VACUUM ANALYZE").context("vacuum")?;
    drop(c);
    server.make_template(&name)?;
    Ok(name)
}

/// The testing API's factory: the clinic set at its last reversible phase
/// with the seed, as a template (built once), then a database per test
/// cloned from it: the clone's cost is what a test waits for.
fn factory(server: &Server, set: &MigrationSet, o: &Options, say: &mut dyn FnMut(&str)) -> Result<Figure> {
    let phase = set.phases.iter().filter(|p| p.is_reversible()).map(|p| p.id).max().ok_or_else(|| anyhow!("the set has no reversible phase"))?;
    let last = set.phase(phase).ok().and_then(|p| p.steps.last()).map(|s| s.version).expect("a phase has steps");
    say(&format!("factory: template at phase {phase} with {} seed rows", o.verify_rows));
    let t = Instant::now();
    let template = seeded_template(server, set, Some(o.verify_rows), Some(last), "factory")?;
    let build = ms(t.elapsed());
    let clone = clone_median(server, Some(&template), "factory")?;
    server.drop_database(&template)?;
    Ok(figure(
        &format!("testing factory: a database at phase {phase} ({} rows) once the template exists (median of 20)", o.verify_rows),
        format!("{clone:.1} ms per database (the template took {:.1} s, once)", build / 1000.0),
        "< 100 ms",
        Some(clone < 100.0),
        serde_json::json!({"phase": phase, "rows": o.verify_rows, "clone_ms": clone, "template_ms": build}),
    ))
}

/// The median time of 20 `CREATE DATABASE`s (from `template`, or the
/// server's default), each dropped again.
fn clone_median(server: &Server, template: Option<&str>, label: &str) -> Result<f64> {
    let mut clones = Vec::new();
    for i in 0..20 {
        let name = format!("bench_{label}_{}_{i}", std::process::id());
        let t = Instant::now();
        server.create_database(&name, template)?;
        clones.push(ms(t.elapsed()));
        server.drop_database(&name)?;
    }
    Ok(median(clones))
}

fn clone_of(server: &Server, template: &str, label: &str) -> Result<(String, String)> {
    let name = format!("bench_{label}_{}", std::process::id());
    let url = server.create_database(&name, Some(template))?;
    Ok((name, url))
}

/// phasegate applying phases 1-4 (checks excluded) against `psql -f` of the
/// same files on clones of the same seeded database.
fn overhead(server: &Server, set: &MigrationSet, o: &Options, say: &mut dyn FnMut(&str)) -> Result<Figure> {
    say("overhead: phasegate migrate vs psql -f, phases 1-4");
    let tpl = seeded_template(server, set, Some(o.verify_rows), None, "overhead")?;
    let (a, url_a) = clone_of(server, &tpl, "ovh_pg")?;
    let mut c = phasegate::connect(&url_a, "phasegate bench")?;
    phasegate::acquire_lock(&mut c, Duration::ZERO)?;
    let t = Instant::now();
    // psql -f keeps nothing before phase 4: neither does phasegate here (like the checks, excluded).
    let out = phasegate::migrate(&mut c, set, Target::Latest, &phasegate::Options { accept_review: true, backup: false, ..Default::default() }, &mut Silent)?;
    let total = ms(t.elapsed());
    if let Some(e) = out.failure {
        return Err(e.into());
    }
    let checks: f64 = out.checks().map(|c| c.duration_ms).sum();
    let phasegate = total - checks;
    drop(c);
    server.drop_database(&a)?;

    let (b, url_b) = clone_of(server, &tpl, "ovh_psql")?;
    let dir = tempfile::tempdir().context("creating a temporary folder")?;
    let t = Instant::now();
    for step in set.steps().filter(|s| s.phase >= 1) {
        // The batch file as one statement doing the same work (one batch of every row).
        let sql = step.forward.text.replace(":batch_size", "2147483647").replace(":last_key", "NULL");
        let f = dir.path().join(format!("V{}.sql", step.version));
        std::fs::write(&f, sql).with_context(|| f.display().to_string())?;
        let mut cmd = Command::new("psql");
        cmd.args(["-q", "-X", "-v", "ON_ERROR_STOP=1"]);
        if !step.forward.directives.no_transaction {
            cmd.arg("-1");
        }
        let st = cmd.arg("-f").arg(&f).arg(&url_b).output().context("running psql (install postgresql-client)")?;
        if !st.status.success() {
            bail!("psql -f V{} failed: {}", step.version, String::from_utf8_lossy(&st.stderr).trim());
        }
    }
    let psql = ms(t.elapsed());
    server.drop_database(&b)?;
    server.drop_database(&tpl)?;
    let ratio = phasegate / psql;
    Ok(figure(
        "framework overhead over psql -f (phases 1-4, checks excluded)",
        format!("phasegate {:.2} s vs psql {:.2} s = {ratio:.2}x (checks took {:.2} s more)", phasegate / 1000.0, psql / 1000.0, checks / 1000.0),
        "<= 1.1x",
        Some(ratio <= 1.1),
        serde_json::json!({"phasegate_ms": phasegate, "checks_ms": checks, "psql_ms": psql, "ratio": ratio}),
    ))
}

/// snapshot::take on a schema of 500 tables.
fn snapshot_500(server: &Server, say: &mut dyn FnMut(&str)) -> Result<Figure> {
    say("snapshot: 500 tables");
    let name = format!("bench_snap_{}", std::process::id());
    let url = server.create_database(&name, None)?;
    let mut c = phasegate::connect(&url, "phasegate bench")?;
    c.batch_execute(
        "DO $$ BEGIN FOR i IN 1..500 LOOP
           EXECUTE format('CREATE TABLE t%s (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, code text NOT NULL UNIQUE, amount numeric(10,2) NOT NULL DEFAULT 0 CHECK (amount >= 0), created_at timestamptz NOT NULL DEFAULT now())', i);
           EXECUTE format('CREATE INDEX t%s_created_at_idx ON t%s (created_at)', i, i);
           EXECUTE format('INSERT INTO t%s (code) SELECT ''c'' || g FROM generate_series(1, 20) g', i);
         END LOOP; END $$;",
    )
    .context("creating 500 tables")?;
    let mut schema_only = Vec::new();
    let mut with_rows = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        phasegate::take_snapshot(&mut c, &SnapshotOptions { fingerprint_rows: false, ..Default::default() }).context("snapshot")?;
        schema_only.push(ms(t.elapsed()));
        let t = Instant::now();
        phasegate::take_snapshot(&mut c, &Default::default()).context("snapshot")?;
        with_rows.push(ms(t.elapsed()));
    }
    drop(c);
    server.drop_database(&name)?;
    let (s, r) = (median(schema_only), median(with_rows));
    Ok(figure(
        "snapshot of a 500-table schema (median of 5)",
        format!("schema {s:.0} ms, schema + row fingerprints {r:.0} ms"),
        "one round trip per catalog (no target)",
        None,
        serde_json::json!({"schema_ms": s, "with_rows_ms": r}),
    ))
}

/// What a concurrent writer saw during a backfill.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct WriterStats {
    pub statements: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// What a bench writer runs each round: an UPDATE of the row `$1` (an id
/// from 1 to the table's max) and an INSERT without parameters.
pub(crate) struct Writes {
    pub update: &'static str,
    pub insert: &'static str,
}

/// A writer running `w`'s UPDATE and INSERT in turn, with a 2 ms pause,
/// until stopped; every statement's wait is recorded.
pub(crate) fn writer(url: String, stop: Arc<AtomicBool>, max_id: i64, w: &'static Writes) -> std::thread::JoinHandle<WriterStats> {
    std::thread::spawn(move || {
        let mut c = match phasegate::connect(&url, "bench writer") {
            Ok(c) => c,
            Err(_) => return WriterStats { errors: 1, ..Default::default() },
        };
        let mut lat = Vec::new();
        let mut errors = 0u64;
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        while !stop.load(Ordering::Relaxed) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = (x % max_id.max(1) as u64) as i64 + 1;
            let t = Instant::now();
            let r = c.execute(w.update, &[&id]);
            lat.push(ms(t.elapsed()));
            if r.is_err() {
                errors += 1;
            }
            let t = Instant::now();
            let r = c.execute(w.insert, &[]);
            lat.push(ms(t.elapsed()));
            if r.is_err() {
                errors += 1;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let n = lat.len() as u64;
        WriterStats { statements: n, errors, p50_ms: percentile(lat.clone(), 0.5), p99_ms: percentile(lat.clone(), 0.99), max_ms: percentile(lat, 1.0) }
    })
}

/// One fleet run (the engine's scheduler, one group) migrating fresh
/// databases through phase 1; its time and the databases' states.
fn fleet_run(server: &Server, set: &MigrationSet, label: &str, n: usize, parallel: usize) -> Result<f64> {
    let mut members = Vec::new();
    for i in 0..n {
        let name = format!("bench_fleet_{label}_{}_{i}", std::process::id());
        let url = server.create_database(&name, None)?;
        members.push(phasegate::fleet::Member { name, url, url_env: None });
    }
    let plan = phasegate::fleet::Plan {
        file: "bench".into(),
        groups: vec![phasegate::fleet::PlannedGroup { name: label.into(), parallel, on_error: phasegate::fleet::OnError::Halt, members: members.clone() }],
    };
    let opts = phasegate::fleet::Options {
        command: phasegate::fleet::Command::Migrate(Target::Phase(1)),
        apply: phasegate::Options { accept_review: true, ..Default::default() },
        lock_wait: Duration::ZERO,
        application_name: "phasegate bench fleet".into(),
        fleet_run: phasegate::ledger::new_run_id(),
        audit: None,
    };
    let t = Instant::now();
    let outcome = phasegate::fleet::run(&plan, set, &opts, &mut Silent);
    let took = ms(t.elapsed());
    for m in &members {
        server.drop_database(&m.name)?;
    }
    if let Some(d) = outcome.databases.iter().find(|d| d.state != phasegate::fleet::DbState::Done) {
        bail!("fleet bench: database {} ended {}: {}", d.database, d.state.as_str(), d.error.as_deref().unwrap_or(""));
    }
    Ok(took)
}

/// docs/targets.md: a fleet of 50 databases on one server migrated through phase 1
/// with parallel 8, as a ratio to one database through the same path.
fn fleet(server: &Server, set: &MigrationSet, say: &mut dyn FnMut(&str)) -> Result<Figure> {
    const N: usize = 50;
    const PARALLEL: usize = 8;
    say(&format!("fleet: {N} databases through phase 1 with parallel {PARALLEL}, against one"));
    let one = median((0..3).map(|i| fleet_run(server, set, &format!("one{i}"), 1, 1)).collect::<Result<Vec<_>>>()?);
    let all = fleet_run(server, set, "fifty", N, PARALLEL)?;
    // The same fifty one at a time: what parallel 8 buys on this machine.
    let serial = fleet_run(server, set, "serial", N, 1)?;
    let ratio = all / one.max(0.01);
    Ok(figure(
        "fleet: 50 databases through phase 1 with parallel 8, as a ratio to one",
        format!(
            "one {one:.0} ms, fifty {all:.0} ms = {ratio:.1}x one database (fifty at parallel 1: {serial:.0} ms = {:.1}x; perfect parallel 8 would be {:.2}x)",
            serial / one.max(0.01),
            N as f64 / PARALLEL as f64
        ),
        "a ratio to one (no target)",
        None,
        serde_json::json!({"databases": N, "parallel": PARALLEL, "one_ms": one, "fleet_ms": all, "ratio": ratio, "serial_ms": serial}),
    ))
}
