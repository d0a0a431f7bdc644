//! The writers' wait through every phase and every rollback of both
//! shipped sets (docs/targets.md: under 100 ms each, on the 100k-row seed): two
//! application writers and a reader run against a seeded clone while the
//! engine migrates phase by phase, rolls every reversible phase back, and
//! (clinic) enters the irreversible cleanup with only the new application
//! version writing. Each writer statement is timed and tagged with the stage
//! it ran in; a stage's figure is its writers' max wait.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use phasegate::{MigrationSet, Options, Server, Target};

use super::{figure, ms, percentile, seeded_template, Figure, Silent};
use crate::report::html::{Traffic, TrafficSample};

/// What the writers share with the driver.
struct Shared {
    stop: AtomicBool,
    /// 0: between stages; otherwise the index of the stage running.
    stage: AtomicUsize,
    /// The cleanup phase is next: the old application version is retired.
    new_app_only: AtomicBool,
    /// When the traffic started: samples and stages are timed from here.
    origin: Instant,
}

impl Shared {
    fn new() -> Shared {
        Shared { stop: AtomicBool::new(false), stage: AtomicUsize::new(0), new_app_only: AtomicBool::new(false), origin: Instant::now() }
    }
}

/// One writer statement: its stage, when it started (ms since the
/// traffic started), its wait, its error if it failed.
type Sample = (usize, f64, f64, Option<String>);

/// The statements one writer runs, by application version.
struct Workload {
    /// The table whose rows the figure counts.
    table: &'static str,
    /// What the old version's writers run (`$1`: 0-729, which spreads the
    /// bookings over a year's dates and periods, so the capacity check of the
    /// switchover phase has room for them).
    old: &'static [&'static str],
    /// What the new version's writers run once the old one is retired.
    new: &'static [&'static str],
}

const CLINIC: Workload = Workload {
    table: "reservations",
    old: &[
        "INSERT INTO reservations (\"patientName\", phone, \"birthDate\", gender, \"treatmentType\", service, \"preferredDate\", \"preferredTime\")
         VALUES ('벤치', '010-0000-0000', '1990-01-01', 'FEMALE', 'FIRST_VISIT', 'SKIN_CARE', current_date + 1 + $1::int / 2, CASE WHEN $1::int % 2 = 0 THEN '10:00' ELSE '2:30 PM' END)",
        "UPDATE reservations SET status = 'CONFIRMED' WHERE id = (SELECT max(id) FROM reservations) - $1::int",
    ],
    new: &[
        "INSERT INTO reservations (\"patientName\", phone, \"birthDate\", gender, \"treatmentType\", \"serviceId\", \"serviceName\", \"estimatedDuration\", period, \"preferredDate\")
         SELECT '벤치', '010-1111-1111', '1985-05-05', 'MALE', 'FOLLOW_UP', s.id, s.name, s.\"durationMinutes\" + s.\"bufferMinutes\",
                CASE WHEN $1::int % 2 = 0 THEN 'MORNING' ELSE 'AFTERNOON' END, current_date + 1 + $1::int / 2
         FROM services s WHERE s.code = 'SKIN_CARE'",
        "UPDATE reservations SET status = 'CONFIRMED' WHERE id = (SELECT max(id) FROM reservations) - $1::int",
    ],
};

const TENANT_KEYS: Workload = Workload {
    table: "api_keys",
    old: &[
        "UPDATE api_keys SET last_used_at = now() WHERE id = (SELECT id FROM api_keys ORDER BY id OFFSET $1::int % 1000 LIMIT 1)",
        "INSERT INTO leads (tenant_id, full_name, phone, source) SELECT id, 'Bench Lead', '555-0100', 'api' FROM tenants ORDER BY id OFFSET $1::int % 1000 LIMIT 1",
    ],
    new: &[],
};

fn writer(url: String, w: &'static Workload, shared: Arc<Shared>, seed: i32) -> std::thread::JoinHandle<Vec<Sample>> {
    std::thread::spawn(move || {
        let mut samples = Vec::new();
        let mut c = match phasegate::connect(&url, "bench writer") {
            Ok(c) => c,
            Err(e) => return vec![(0, 0.0, 0.0, Some(e.to_string()))],
        };
        let mut n = seed;
        while !shared.stop.load(Ordering::Relaxed) {
            let sqls = if shared.new_app_only.load(Ordering::Relaxed) { w.new } else { w.old };
            for sql in sqls {
                n = n.wrapping_mul(1_103_515_245).wrapping_add(12345) & 0x7fff;
                let stage = shared.stage.load(Ordering::Relaxed);
                let t = Instant::now();
                let r = if sql.contains("$1") { c.execute(*sql, &[&(n % 730)]) } else { c.execute(*sql, &[]) };
                samples.push((stage, ms(t.duration_since(shared.origin)), ms(t.elapsed()), r.err().map(|e| phasegate::pg_message(&e))));
            }
            std::thread::sleep(Duration::from_millis(3));
        }
        samples
    })
}

/// Every phase forward, every reversible phase back, every phase forward
/// again, then (when the set has one) the irreversible phase with only the
/// new version writing; `names` gets the stages' names, in order, and
/// `windows` when each ran (ms since the traffic started).
fn drive(c: &mut postgres::Client, set: &MigrationSet, shared: &Shared, names: &mut Vec<String>, windows: &mut Vec<(f64, f64)>) -> Result<()> {
    let opts = Options { accept_review: true, ..Default::default() };
    let reversible: Vec<u32> = set.phases.iter().filter(|p| p.is_reversible()).map(|p| p.id).collect();
    let mut stage = |name: String, f: &mut dyn FnMut(&mut postgres::Client) -> Result<phasegate::RunOutcome>| -> Result<()> {
        names.push(name.clone());
        let start = ms(shared.origin.elapsed());
        shared.stage.store(names.len() - 1, Ordering::Relaxed);
        let out = f(c);
        shared.stage.store(0, Ordering::Relaxed);
        windows.push((start, ms(shared.origin.elapsed())));
        std::thread::sleep(Duration::from_millis(100));
        let out = out?;
        if let Some(e) = out.failure {
            return Err(anyhow::Error::from(e).context(name));
        }
        Ok(())
    };
    for round in ["", " again"] {
        for &p in &reversible {
            stage(format!("migrate phase {p}{round}"), &mut |c| Ok(phasegate::migrate(c, set, Target::Phase(p), &opts, &mut Silent)?))?;
        }
        if round.is_empty() {
            for &p in reversible.iter().rev() {
                stage(format!("rollback phase {p}"), &mut |c| Ok(phasegate::rollback(c, set, p, &opts, &mut Silent)?))?;
            }
        }
    }
    if let Some(last) = set.phases.iter().filter(|p| !p.is_reversible() && !p.is_baseline()).map(|p| p.id).max() {
        shared.new_app_only.store(true, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(100));
        stage(format!("migrate phase {last} (new version only)"), &mut |c| Ok(phasegate::migrate(c, set, Target::Phase(last), &opts, &mut Silent)?))?;
    }
    Ok(())
}

/// One shipped set under traffic; `rows` seeds it (None: the seed's own size).
fn one(server: &Server, dir: &Path, label: &str, rows: Option<u64>, w: &'static Workload, say: &mut dyn FnMut(&str)) -> Result<Figure> {
    let set = phasegate::load_set(dir)?;
    let seed_phase = set.seed().map(|s| s.after_phase).unwrap_or(0);
    let last_seed_version = set.phase(seed_phase).ok().and_then(|p| p.steps.last()).map(|s| s.version);
    say(&format!("traffic: {label}: seeding"));
    let key = label.replace(' ', "_");
    let tpl = seeded_template(server, &set, rows, last_seed_version, &format!("traffic_{key}"))?;
    let name = format!("bench_traffic_{key}_{}", std::process::id());
    let url = server.create_database(&name, Some(&tpl))?;
    let seeded: i64 = {
        let mut c = phasegate::connect(&url, "phasegate bench")?;
        c.query_one(&format!("SELECT count(*) FROM {}", w.table), &[]).context("counting seeded rows")?.get(0)
    };
    let shared = Arc::new(Shared::new());
    let writers: Vec<_> = (0..2).map(|i| writer(url.clone(), w, shared.clone(), 7 + i)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut names = vec!["between stages".to_string()];
    let mut windows = Vec::new();
    say(&format!("traffic: {label}: every phase and rollback"));
    let mut c = phasegate::connect(&url, "phasegate bench")?;
    phasegate::acquire_lock(&mut c, Duration::ZERO)?;
    let driven = drive(&mut c, &set, &shared, &mut names, &mut windows);
    shared.stop.store(true, Ordering::Relaxed);
    let samples: Vec<Sample> = writers.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect();
    drop(c);
    server.drop_database(&name)?;
    server.drop_database(&tpl)?;
    driven?;
    let mut stages = Vec::new();
    let mut worst = 0.0f64;
    for (i, n) in names.iter().enumerate().skip(1) {
        let waits: Vec<f64> = samples.iter().filter(|s| s.0 == i).map(|s| s.2).collect();
        let max = percentile(waits.clone(), 1.0);
        worst = worst.max(max);
        let failed = samples.iter().filter(|s| s.0 == i && s.3.is_some()).count();
        stages.push(serde_json::json!({"stage": n, "statements": waits.len(), "failed": failed, "p50_ms": percentile(waits.clone(), 0.5), "p99_ms": percentile(waits, 0.99), "max_ms": max}));
    }
    let errors = samples.iter().filter(|s| s.3.is_some()).count();
    let first_errors: Vec<String> = samples.iter().filter_map(|s| s.3.as_ref().map(|e| format!("{}: {e}", names[s.0]))).take(3).collect();
    // The stages of the page's chart: every stage but "between stages" (index 0).
    let timed: Vec<(String, f64, f64)> = names.iter().skip(1).zip(&windows).map(|(n, w)| (n.clone(), w.0, w.1)).collect();
    let points: Vec<TrafficSample> = samples.iter().map(|s| TrafficSample { t_ms: s.1, wait_ms: s.2, stage: s.0.checked_sub(1), failed: s.3.is_some() }).collect();
    let traffic = Traffic::new(&format!("{label} ({seeded} rows)"), Some(100.0), &timed, &points);
    let text: Vec<String> = stages.iter().map(|s| format!("{} {:.0}", s["stage"].as_str().unwrap_or(""), s["max_ms"].as_f64().unwrap_or(0.0))).collect();
    Ok(figure(
        &format!("writers' max wait per phase and rollback, {label} ({seeded} rows)"),
        format!("{errors} errors{}; worst {worst:.0} ms; max ms per stage: {}", first_errors.first().map(|e| format!(" (first: {e})")).unwrap_or_default(), text.join(", ")),
        "< 100 ms in every stage, 0 errors",
        Some(worst < 100.0 && errors == 0 && !samples.is_empty()),
        serde_json::json!({"rows": seeded, "errors": errors, "first_errors": first_errors, "worst_ms": worst, "stages": stages, "traffic": traffic}),
    ))
}

/// Both shipped sets: the clinic set on `rows` reservations, the tenant
/// keys set on its seed's own size.
pub(super) fn both(server: &Server, clinic: &Path, rows: u64, say: &mut dyn FnMut(&str)) -> Result<Vec<Figure>> {
    Ok(vec![
        one(server, clinic, "clinic set", Some(rows), &CLINIC, say)?,
        one(server, &clinic.join("examples/tenant-keys"), "tenant keys set", None, &TENANT_KEYS, say)?,
    ])
}
