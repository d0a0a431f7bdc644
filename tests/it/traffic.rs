//! Zero downtime under live traffic (SPEC 10): while writers and readers of
//! the old and the new application versions run against the clinic schema,
//! migrate through phases 1-3, roll back 3, 2 and 1, and migrate again.
//! Every failed application statement is counted; there must be none. Each
//! workload's latency is printed (tests do not assert on time).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{clinic_seeded_template, repo, run, TestDb};

/// What the workload threads share.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// The new application version is deployed (phase 3 applied).
    new_app: AtomicBool,
    statements: AtomicU64,
    failures: AtomicU64,
    errors: Mutex<Vec<String>>,
}

impl Shared {
    fn record(&self, res: Result<(), postgres::Error>) {
        self.statements.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = res {
            self.failures.fetch_add(1, Ordering::Relaxed);
            let mut errs = self.errors.lock().unwrap();
            if errs.len() < 10 {
                errs.push(phasegate::pg_message(&e));
            }
        }
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
}

const SERVICES: [&str; 6] = ["WRINKLE_BOTOX", "VOLUME_LIFTING", "SKIN_CARE", "REMOVAL_PROCEDURE", "BODY_CARE", "OTHER_CONSULTATION"];
const TIMES: [&str; 6] = ["10:00", "2:30 PM", "오후 3시", "morning", "13:00~14:00", "10am"];

type Latencies = Arc<Mutex<Vec<(String, Vec<Duration>)>>>;

/// The old application: writes only the old columns (service enum, free-text
/// preferredTime) and confirms its own bookings; prepared statements with
/// explicit columns, as a real application caches them.
fn old_writer(url: String, shared: Arc<Shared>, lat: Latencies, seed: u64) {
    let mut c = phasegate::connect(&url, "app-v1-writer").unwrap();
    let insert = c
        .prepare(
            "INSERT INTO reservations (\"patientName\", phone, \"birthDate\", gender, \"treatmentType\", service, \"preferredDate\", \"preferredTime\")
             VALUES ($1, $2, '1990-01-01', 'FEMALE', 'FIRST_VISIT', $3::text::\"ServiceType\", current_date + $4::int, $5) RETURNING id",
        )
        .unwrap();
    let confirm = c.prepare("UPDATE reservations SET status = 'CONFIRMED' WHERE id = $1").unwrap();
    let mut g = Gen(seed);
    let mut times = Vec::new();
    while !shared.stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let day = (g.next() % 365 + 1) as i32;
        let res = c.query_one(&insert, &[&"김 라이브", &"010-0000-0000", &SERVICES[(g.next() % 6) as usize], &day, &TIMES[(g.next() % 6) as usize]]);
        times.push(t.elapsed());
        match res {
            Ok(row) => {
                shared.record(Ok(()));
                let id: i64 = row.get(0);
                let t = Instant::now();
                shared.record(c.execute(&confirm, &[&id]).map(|_| ()));
                times.push(t.elapsed());
            }
            Err(e) => shared.record(Err(e)),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    lat.lock().unwrap().push(("old writer".into(), times));
}

/// The new application: while deployed, books through services and period
/// (the dual-write trigger fills the old columns) and reads the new columns.
fn new_writer(url: String, shared: Arc<Shared>, lat: Latencies, seed: u64) {
    let mut g = Gen(seed);
    let mut times = Vec::new();
    let mut conn: Option<(postgres::Client, postgres::Statement, postgres::Statement)> = None;
    while !shared.stop.load(Ordering::Relaxed) {
        if !shared.new_app.load(Ordering::Relaxed) {
            conn = None; // undeployed: the old version's processes are all that run
            std::thread::sleep(Duration::from_millis(20));
            continue;
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
        let t = Instant::now();
        let day = (g.next() % 365 + 1) as i32;
        let period = if g.next().is_multiple_of(2) { "MORNING" } else { "AFTERNOON" };
        let res = c.query_one(&*insert, &[&"이 신규", &"010-1111-1111", &period, &day, &SERVICES[(g.next() % 6) as usize]]);
        times.push(t.elapsed());
        match res {
            Ok(row) => {
                shared.record(Ok(()));
                let id: i64 = row.get(0);
                let t = Instant::now();
                shared.record(c.query_one(&*read, &[&id]).map(|_| ()));
                times.push(t.elapsed());
            }
            Err(e) => shared.record(Err(e)),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    lat.lock().unwrap().push(("new writer".into(), times));
}

/// A reader of the old version: a day's bookings, as the clinic's front desk sees them.
fn reader(url: String, shared: Arc<Shared>, lat: Latencies, seed: u64) {
    let mut c = phasegate::connect(&url, "app-v1-reader").unwrap();
    let q = c
        .prepare("SELECT id, \"patientName\", service::text, \"preferredTime\", status FROM reservations WHERE \"preferredDate\" = current_date + $1::int ORDER BY id LIMIT 50")
        .unwrap();
    let mut g = Gen(seed);
    let mut times = Vec::new();
    while !shared.stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let day = (g.next() % 365) as i32 - 200;
        shared.record(c.query(&q, &[&day]).map(|_| ()));
        times.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(5));
    }
    lat.lock().unwrap().push(("old reader".into(), times));
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[test]
fn zero_failed_statements_through_every_phase_and_rollback() {
    let db = TestDb::from_template("traffic", clinic_seeded_template());
    let dir = repo();
    let shared = Arc::new(Shared::default());
    let lat: Latencies = Arc::default();
    let mut threads = Vec::new();
    for (i, f) in [old_writer as fn(String, Arc<Shared>, Latencies, u64), old_writer, new_writer, reader].into_iter().enumerate() {
        let (url, shared, lat) = (db.url.clone(), shared.clone(), lat.clone());
        threads.push(std::thread::spawn(move || f(url, shared, lat, 0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1))));
    }
    let step = |args: &[&str]| {
        let out = run(&db, &dir, args, "");
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
    };
    let pause = || std::thread::sleep(Duration::from_millis(500));

    pause();
    step(&["migrate", "--phase", "3"]);
    shared.new_app.store(true, Ordering::Relaxed); // deploy the new version
    pause();
    shared.new_app.store(false, Ordering::Relaxed); // roll the application back first
    pause();
    step(&["rollback", "--phase", "3", "--yes"]);
    step(&["rollback", "--phase", "2", "--yes"]);
    step(&["rollback", "--phase", "1", "--yes"]);
    pause();
    step(&["migrate", "--phase", "3"]);
    shared.new_app.store(true, Ordering::Relaxed);
    pause();
    shared.stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }

    let statements = shared.statements.load(Ordering::Relaxed);
    let failures = shared.failures.load(Ordering::Relaxed);
    eprintln!("live traffic: {statements} application statements, {failures} failed");
    for (name, times) in lat.lock().unwrap().iter_mut() {
        times.sort();
        eprintln!(
            "  {name:<10} {:>6} statements  p50 {:>7.2} ms  p99 {:>8.2} ms  max {:>8.2} ms",
            times.len(),
            percentile(times, 0.5),
            percentile(times, 0.99),
            percentile(times, 1.0)
        );
    }
    assert!(statements > 100, "the workload ran ({statements} statements)");
    assert_eq!(failures, 0, "failed application statements: {:?}", shared.errors.lock().unwrap());
    // The new version's bookings carry the old columns too (dual write) and vice versa.
    let incomplete: i64 = db
        .client()
        .query_one("SELECT count(*) FROM reservations WHERE service IS NULL OR \"preferredTime\" IS NULL OR \"serviceId\" IS NULL OR period IS NULL", &[])
        .unwrap()
        .get(0);
    assert_eq!(incomplete, 0);
}
