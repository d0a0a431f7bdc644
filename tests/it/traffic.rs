//! Zero downtime under live traffic (docs/targets.md, issue 13): writers and
//! readers of the old and the new application versions run against each
//! shipped set while it goes through every phase and every rollback. Every
//! application statement is tagged with the stage (the migrate or rollback
//! running, or `between` when none is) it ran in; per stage the test prints
//! the statements run, the failed ones and the writers' p50 / p99 / max
//! wait. Any failed statement fails the test; the waits are printed, not
//! asserted (tests do not time things; `cargo xtask bench --only traffic`
//! records them against the 100 ms target).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{clinic_seeded_template, repo, run, tenant_keys, tenant_keys_seeded_template, TestDb};

/// One application statement: the stage it ran in, whether a writer ran
/// it, how long it took, and its error if it failed.
struct Sample {
    stage: usize,
    writer: bool,
    wait: Duration,
    error: Option<String>,
}

/// What the workload threads share.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// The old application version is deployed.
    old_app: AtomicBool,
    /// The new application version is deployed.
    new_app: AtomicBool,
    /// The index of the stage running now (0: between stages).
    stage: AtomicUsize,
}

/// A worker's record of its statements.
struct Log<'a> {
    shared: &'a Shared,
    samples: Vec<Sample>,
}

impl Log<'_> {
    /// Runs one statement, timing it and tagging it with the current stage.
    fn time<T>(&mut self, writer: bool, f: impl FnOnce() -> Result<T, postgres::Error>) -> Option<T> {
        let stage = self.shared.stage.load(Ordering::Relaxed);
        let t = Instant::now();
        let res = f();
        let wait = t.elapsed();
        let (value, error) = match res {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(phasegate::pg_message(&e))),
        };
        self.samples.push(Sample { stage, writer, wait, error });
        value
    }
}

/// A small deterministic generator per thread (no wall-clock randomness).
struct Gen(u64);
impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[(self.next() % xs.len() as u64) as usize]
    }
}

type Worker = fn(String, &Shared, &mut Log, u64);

/// Runs `workers` against `db` while `drive` walks the stages, then prints
/// the table per stage and fails on any failed statement.
fn with_traffic(set: &str, db: &TestDb, workers: &[Worker], drive: impl FnOnce(&Stages)) {
    let shared = Arc::new(Shared::default());
    shared.old_app.store(true, Ordering::Relaxed);
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let mut threads = Vec::new();
    for (i, w) in workers.iter().copied().enumerate() {
        let (url, shared, samples) = (db.url.clone(), shared.clone(), samples.clone());
        threads.push(std::thread::spawn(move || {
            let mut log = Log { shared: &shared, samples: Vec::new() };
            w(url, &shared, &mut log, 0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1));
            samples.lock().unwrap().extend(log.samples);
        }));
    }
    let stages = Stages { db, shared: shared.clone(), names: Mutex::new(vec!["between".into()]) };
    std::thread::sleep(Duration::from_millis(300));
    drive(&stages);
    std::thread::sleep(Duration::from_millis(300));
    shared.stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let samples = samples.lock().unwrap();
    let names = stages.names.lock().unwrap();
    eprintln!("live traffic, {set}: per stage, the application statements run, the failed ones and the writers' wait");
    eprintln!("  {:<28} {:>10} {:>7} {:>10} {:>10} {:>10}", "stage", "statements", "failed", "p50 ms", "p99 ms", "max ms");
    for (i, name) in names.iter().enumerate() {
        let of: Vec<&Sample> = samples.iter().filter(|s| s.stage == i).collect();
        let mut waits: Vec<Duration> = of.iter().filter(|s| s.writer).map(|s| s.wait).collect();
        waits.sort();
        let failed = of.iter().filter(|s| s.error.is_some()).count();
        eprintln!(
            "  {name:<28} {:>10} {failed:>7} {:>10.2} {:>10.2} {:>10.2}",
            of.len(),
            percentile(&waits, 0.5),
            percentile(&waits, 0.99),
            percentile(&waits, 1.0)
        );
    }
    let errors: Vec<String> = samples.iter().filter_map(|s| s.error.as_ref().map(|e| format!("{}: {e}", names[s.stage]))).take(10).collect();
    assert!(samples.len() > 100, "the workload ran ({} statements)", samples.len());
    assert!(errors.is_empty(), "failed application statements: {errors:?}");
}

/// The stages of a run: each migrate or rollback runs as a stage of its own.
struct Stages<'a> {
    db: &'a TestDb,
    shared: Arc<Shared>,
    names: Mutex<Vec<String>>,
}

impl Stages<'_> {
    /// Runs the CLI with `args` as a stage named `name`; it must exit 0.
    fn run(&self, dir: &std::path::Path, name: &str, args: &[&str]) {
        let index = {
            let mut names = self.names.lock().unwrap();
            names.push(name.to_string());
            names.len() - 1
        };
        self.shared.stage.store(index, Ordering::Relaxed);
        let out = run(self.db, dir, args, "");
        self.shared.stage.store(0, Ordering::Relaxed);
        assert_eq!(out.code, 0, "{name} ({args:?}): {out:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    fn deploy_new(&self, on: bool) {
        self.shared.new_app.store(on, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(300));
    }
    fn retire_old(&self) {
        self.shared.old_app.store(false, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Sleeps between statements, and says whether the worker should stop.
fn pace(shared: &Shared) -> bool {
    std::thread::sleep(Duration::from_millis(5));
    shared.stop.load(Ordering::Relaxed)
}

/// Waits while `deployed` is off; false when the run stops meanwhile.
fn deployed(shared: &Shared, flag: &AtomicBool) -> bool {
    while !flag.load(Ordering::Relaxed) {
        if shared.stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

// ---- the clinic set -------------------------------------------------------

const SERVICES: [&str; 6] = ["WRINKLE_BOTOX", "VOLUME_LIFTING", "SKIN_CARE", "REMOVAL_PROCEDURE", "BODY_CARE", "OTHER_CONSULTATION"];
const TIMES: [&str; 6] = ["10:00", "2:30 PM", "오후 3시", "morning", "13:00~14:00", "10am"];

/// The old application: writes only the old columns (service enum, free-text
/// preferredTime) and confirms its own bookings; prepared statements with
/// explicit columns, as a real application caches them. It is retired
/// before the cleanup phase drops the old columns.
fn clinic_old_writer(url: String, shared: &Shared, log: &mut Log, seed: u64) {
    let mut c = phasegate::connect(&url, "app-v1-writer").unwrap();
    let insert = c
        .prepare(
            "INSERT INTO reservations (\"patientName\", phone, \"birthDate\", gender, \"treatmentType\", service, \"preferredDate\", \"preferredTime\")
             VALUES ($1, $2, '1990-01-01', 'FEMALE', 'FIRST_VISIT', $3::text::\"ServiceType\", current_date + $4::int, $5) RETURNING id",
        )
        .unwrap();
    let confirm = c.prepare("UPDATE reservations SET status = 'CONFIRMED' WHERE id = $1").unwrap();
    let mut g = Gen(seed);
    while !pace(shared) && shared.old_app.load(Ordering::Relaxed) {
        let day = (g.next() % 365 + 1) as i32;
        let (service, time) = (*g.pick(&SERVICES), *g.pick(&TIMES));
        let Some(row) = log.time(true, || c.query_one(&insert, &[&"김 라이브", &"010-0000-0000", &service, &day, &time])) else { continue };
        let id: i64 = row.get(0);
        log.time(true, || c.execute(&confirm, &[&id]));
    }
}

/// The new application: while deployed, books through services and period
/// (the dual-write trigger fills the old columns) and reads the new columns.
fn clinic_new_writer(url: String, shared: &Shared, log: &mut Log, seed: u64) {
    let mut g = Gen(seed);
    let mut conn: Option<(postgres::Client, postgres::Statement, postgres::Statement)> = None;
    while !pace(shared) {
        if !shared.new_app.load(Ordering::Relaxed) {
            conn = None; // undeployed: its processes are gone
            if !deployed(shared, &shared.new_app) {
                break;
            }
        }
        let (c, insert, read) = conn.get_or_insert_with(|| {
            let mut c = phasegate::connect(&url, "app-v2-writer").unwrap();
            let insert = c
                .prepare(
                    "INSERT INTO reservations (\"patientName\", phone, \"birthDate\", gender, \"treatmentType\", \"serviceId\", \"serviceName\", \"estimatedDuration\", period, \"preferredDate\")
                     SELECT $1, $2, '1985-05-05', 'MALE', 'FOLLOW_UP', s.id, s.name, s.\"durationMinutes\" + s.\"bufferMinutes\", $3, current_date + $4::int
                     FROM services s WHERE s.code = $5 RETURNING id",
                )
                .unwrap();
            let read = c.prepare("SELECT \"serviceName\", period FROM reservations WHERE id = $1").unwrap();
            (c, insert, read)
        });
        let day = (g.next() % 365 + 1) as i32;
        let period = if g.next().is_multiple_of(2) { "MORNING" } else { "AFTERNOON" };
        let service = *g.pick(&SERVICES);
        let Some(row) = log.time(true, || c.query_one(&*insert, &[&"이 신규", &"010-1111-1111", &period, &day, &service])) else { continue };
        let id: i64 = row.get(0);
        log.time(false, || c.query_one(&*read, &[&id]));
    }
}

/// A reader of the old version: a day's bookings, as the front desk sees them.
fn clinic_reader(url: String, shared: &Shared, log: &mut Log, seed: u64) {
    let mut c = phasegate::connect(&url, "app-v1-reader").unwrap();
    let q = c
        .prepare("SELECT id, \"patientName\", service::text, \"preferredTime\", status FROM reservations WHERE \"preferredDate\" = current_date + $1::int ORDER BY id LIMIT 50")
        .unwrap();
    let mut g = Gen(seed);
    while !pace(shared) && shared.old_app.load(Ordering::Relaxed) {
        let day = (g.next() % 365) as i32 - 200;
        log.time(false, || c.query(&q, &[&day]));
    }
}

#[test]
fn clinic_every_phase_and_rollback_under_traffic() {
    let db = TestDb::from_template("traffic", clinic_seeded_template());
    let dir = repo();
    let workers: [Worker; 4] = [clinic_old_writer, clinic_old_writer, clinic_new_writer, clinic_reader];
    with_traffic("clinic set (100k reservations)", &db, &workers, |s| {
        for p in ["1", "2", "3"] {
            s.run(&dir, &format!("migrate phase {p}"), &["migrate", "--phase", p]);
        }
        s.deploy_new(true);
        s.deploy_new(false); // the application is rolled back first
        for p in ["3", "2", "1"] {
            s.run(&dir, &format!("rollback phase {p}"), &["rollback", "--phase", p, "--yes"]);
        }
        for p in ["1", "2", "3"] {
            s.run(&dir, &format!("migrate phase {p} again"), &["migrate", "--phase", p]);
        }
        s.deploy_new(true);
        s.retire_old(); // only the new version runs once the old columns go
        s.run(&dir, "migrate phase 4", &["migrate", "--phase", "4", "--yes"]);
    });
    // Every booking carries the new columns (the old ones are gone).
    let incomplete: i64 = db
        .client()
        .query_one("SELECT count(*) FROM reservations WHERE \"serviceId\" IS NULL OR period IS NULL", &[])
        .unwrap()
        .get(0);
    assert_eq!(incomplete, 0);
}

// ---- the tenant keys set --------------------------------------------------

/// Tenants and their keys, read once from the seeded database.
fn tenants_and_keys(c: &mut postgres::Client) -> (Vec<String>, Vec<String>) {
    let tenants = c.query("SELECT id::text FROM tenants ORDER BY id LIMIT 500", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    let keys = c.query("SELECT id::text FROM api_keys ORDER BY id LIMIT 500", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    (tenants, keys)
}

/// The old API: each request authenticates a key (stamping last_used_at,
/// a write on the table the set alters) and records a lead.
fn keys_old_writer(url: String, shared: &Shared, log: &mut Log, seed: u64) {
    let mut c = phasegate::connect(&url, "api-v1-writer").unwrap();
    let (tenants, keys) = tenants_and_keys(&mut c);
    let touch = c.prepare("UPDATE api_keys SET last_used_at = now() WHERE id = $1::text::uuid").unwrap();
    let lead = c.prepare("INSERT INTO leads (tenant_id, full_name, phone, source) VALUES ($1::text::uuid, $2, $3, 'api') RETURNING id").unwrap();
    let mut g = Gen(seed);
    while !pace(shared) {
        let (key, tenant) = (g.pick(&keys).clone(), g.pick(&tenants).clone());
        log.time(true, || c.execute(&touch, &[&key]));
        log.time(true, || c.query_one(&lead, &[&tenant, &"Ana Live", &"555-0100"]));
    }
}

/// A key created through the old dashboard (tenant-wide, no scope columns
/// named), and a tenant's keys listed.
fn keys_old_dashboard(url: String, shared: &Shared, log: &mut Log, seed: u64) {
    let mut c = phasegate::connect(&url, "dashboard-v1").unwrap();
    let (tenants, _) = tenants_and_keys(&mut c);
    let create = c
        .prepare("INSERT INTO api_keys (id, tenant_id, name, key_prefix, key_hash) VALUES (gen_random_uuid(), $1::text::uuid, 'live key', 'pk_live', md5(random()::text || clock_timestamp()::text))")
        .unwrap();
    let list = c.prepare("SELECT id, name, metadata FROM api_keys WHERE tenant_id = $1::text::uuid AND revoked_at IS NULL").unwrap();
    let mut g = Gen(seed);
    let mut n = 0u64;
    while !pace(shared) {
        let tenant = g.pick(&tenants).clone();
        n += 1;
        if n.is_multiple_of(10) {
            log.time(true, || c.execute(&create, &[&tenant]));
        }
        log.time(false, || c.query(&list, &[&tenant]));
    }
}

/// The new API, once phase 2 is in: a key sees its own branch's leads only
/// when it is branch-scoped.
fn keys_new_reader(url: String, shared: &Shared, log: &mut Log, seed: u64) {
    let mut g = Gen(seed);
    let mut conn: Option<(postgres::Client, postgres::Statement, Vec<String>)> = None;
    while !pace(shared) {
        if !shared.new_app.load(Ordering::Relaxed) {
            conn = None;
            if !deployed(shared, &shared.new_app) {
                break;
            }
        }
        let (c, q, keys) = conn.get_or_insert_with(|| {
            let mut c = phasegate::connect(&url, "api-v2-reader").unwrap();
            let (_, keys) = tenants_and_keys(&mut c);
            let q = c
                .prepare(
                    "SELECT l.id FROM api_keys k JOIN leads l ON l.tenant_id = k.tenant_id
                     WHERE k.id = $1::text::uuid AND (k.scope = 'tenant' OR l.branch_id = k.branch_id) ORDER BY l.created_at DESC LIMIT 20",
                )
                .unwrap();
            (c, q, keys)
        });
        let key = g.pick(keys).clone();
        log.time(false, || c.query(&*q, &[&key]));
    }
}

#[test]
fn tenant_keys_every_phase_and_rollback_under_traffic() {
    let db = TestDb::from_template("traffic_tk", tenant_keys_seeded_template());
    let dir = tenant_keys();
    let workers: [Worker; 4] = [keys_old_writer, keys_old_writer, keys_old_dashboard, keys_new_reader];
    with_traffic("tenant keys set (3000 tenants)", &db, &workers, |s| {
        for p in ["1", "2", "3"] {
            s.run(&dir, &format!("migrate phase {p}"), &["migrate", "--phase", p]);
        }
        s.deploy_new(true);
        s.deploy_new(false);
        for p in ["3", "2", "1"] {
            s.run(&dir, &format!("rollback phase {p}"), &["rollback", "--phase", p, "--yes"]);
        }
        for p in ["1", "2", "3"] {
            s.run(&dir, &format!("migrate phase {p} again"), &["migrate", "--phase", p]);
        }
        s.deploy_new(true);
    });
}
