//! Live application traffic through a walk of phases (docs/targets.md,
//! issue 13): which application versions are deployed ([`Deployed`], a
//! handshake the workers read), the stages a walk runs (each migrate or
//! rollback, timed, [`Stages`]) and [`with_traffic`], which runs workers
//! beside a walk and prints, per stage, the statements run, the failed ones
//! and the writers' p50 / p99 / max wait, and fails on any failed statement.
//! The clinic and tenant-keys sets (tests/it/traffic.rs) and every `change`
//! operation (tests/it/change_traffic.rs) use it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use super::{exit, run, Output, Round, Sample, Tally, TestDb, Writer};

/// Which application versions are deployed; the workload reads it.
///
/// A deployment change is a handshake, not a pause: each round of a worker
/// holds `switch` for reading while it reads the flags and runs its
/// statements, and [`Deployed::set`] takes it for writing, so when `set`
/// returns no statement of the previous deployment is still running, however
/// slow the machine (a retired version's statement racing the migration that
/// removes what it uses would fail the test for the wrong reason).
#[derive(Default)]
pub struct Deployed {
    pub old_app: AtomicBool,
    pub new_app: AtomicBool,
    switch: RwLock<()>,
}

impl Deployed {
    /// Switches `flag` once no round that read the old value is running.
    pub fn set(&self, flag: impl Fn(&Deployed) -> &AtomicBool, on: bool) {
        let _rounds_done = self.switch.write().unwrap();
        flag(self).store(on, Ordering::SeqCst);
    }

    /// Switches a worker's own `flag` (see [`Deployed::set`]).
    pub fn switch(&self, flag: &AtomicBool, on: bool) {
        let _rounds_done = self.switch.write().unwrap();
        flag.store(on, Ordering::SeqCst);
    }

    /// Held by a worker's round while it reads the flags and runs its statements.
    pub fn round(&self) -> RwLockReadGuard<'_, ()> {
        self.switch.read().unwrap()
    }
}

/// A small deterministic generator per thread (no wall-clock randomness).
pub struct Gen(pub u64);
impl Gen {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// An application worker: its writer, started on `url`, seeded.
pub type Worker<'a> = &'a dyn Fn(&str, Arc<Deployed>, u64) -> Writer;

/// The pause between an application's requests.
pub const PACE: Duration = Duration::from_millis(5);

/// An application's writer, paced like a real one's requests.
pub fn app(name: &str, round: impl FnMut(&mut Round) -> bool + Send + 'static) -> Writer {
    Writer::new(name).pause(PACE).run(round)
}

/// Runs `workers` against `db` while `drive` walks the stages, then prints
/// the table per stage and fails on any failed statement. Returns each
/// worker's name and the statements it ran.
pub fn with_traffic(set: &str, db: &TestDb, workers: &[Worker], drive: impl FnOnce(&Stages)) -> Vec<(String, usize)> {
    let deployed = Arc::new(Deployed::default());
    deployed.old_app.store(true, Ordering::Relaxed);
    let writers: Vec<Writer> = workers.iter().enumerate().map(|(i, w)| w(&db.url, deployed.clone(), 0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1))).collect();
    let stages = Stages { db, deployed, ran: Mutex::new(Vec::new()) };
    std::thread::sleep(Duration::from_millis(300));
    drive(&stages);
    std::thread::sleep(Duration::from_millis(300));
    let names: Vec<String> = writers.iter().map(|w| w.name().to_string()).collect();
    let tallies: Vec<Tally> = writers.into_iter().map(Writer::stop).collect();
    let per_worker: Vec<(String, usize)> = names.into_iter().zip(tallies.iter().map(|t| t.samples.len())).collect();
    let tally = Tally::merge(tallies);
    let ran = stages.ran.into_inner().unwrap();
    let names: Vec<&str> = std::iter::once("between").chain(ran.iter().map(|(name, _, _)| name.as_str())).collect();
    // Each statement in the stage that ran when it started (0: between stages).
    let stage = |s: &Sample| ran.iter().position(|(_, from, to)| (*from..*to).contains(&s.at)).map_or(0, |i| i + 1);
    eprintln!("live traffic, {set}: per stage, the application statements run, the failed ones and the writers' wait");
    eprintln!("  {:<36} {:>10} {:>7} {:>10} {:>10} {:>10}", "stage", "statements", "failed", "p50 ms", "p99 ms", "max ms");
    for (i, name) in names.iter().enumerate() {
        let of: Vec<&Sample> = tally.samples.iter().filter(|s| stage(s) == i).collect();
        let mut waits: Vec<Duration> = of.iter().filter(|s| s.write).map(|s| s.wait).collect();
        waits.sort();
        let failed = of.iter().filter(|s| s.error.is_some()).count();
        eprintln!(
            "  {name:<36} {:>10} {failed:>7} {:>10.2} {:>10.2} {:>10.2}",
            of.len(),
            percentile(&waits, 0.5),
            percentile(&waits, 0.99),
            percentile(&waits, 1.0)
        );
    }
    let workers: Vec<String> = per_worker.iter().map(|(n, c)| format!("{n} {c}")).collect();
    eprintln!("  statements per worker: {}", workers.join(", "));
    let errors: Vec<String> = tally.samples.iter().filter_map(|s| s.error.as_ref().map(|e| format!("{}: {e}", names[stage(s)]))).take(10).collect();
    for (name, ran) in &per_worker {
        assert!(*ran >= 10, "{name} ran {ran} statements: the workload did not run");
    }
    assert!(errors.is_empty(), "failed application statements: {errors:?}");
    per_worker
}

/// The stages of a run: each migrate or rollback runs as a stage of its
/// own, from its start to its end.
pub struct Stages<'a> {
    pub db: &'a TestDb,
    deployed: Arc<Deployed>,
    ran: Mutex<Vec<(String, Instant, Instant)>>,
}

impl Stages<'_> {
    /// Runs the CLI with `args` as a stage named `name`; it must exit 0.
    pub fn run(&self, dir: &std::path::Path, name: &str, args: &[&str]) {
        self.attempt(dir, name, args, exit::OK);
    }
    /// Runs the CLI with `args` as a stage named `name`; it must exit `code`.
    pub fn attempt(&self, dir: &std::path::Path, name: &str, args: &[&str], code: i32) -> Output {
        let from = Instant::now();
        let out = run(self.db, dir, args, "");
        self.ran.lock().unwrap().push((name.to_string(), from, Instant::now()));
        assert_eq!(out.code, code, "{name} ({args:?}): {out:?}");
        std::thread::sleep(Duration::from_millis(200));
        out
    }
    /// Deploys (or undeploys) the new version; returns once no statement of
    /// the previous deployment runs, after a pause that lets traffic of the
    /// new deployment run before the next stage (the pause is not what
    /// makes the switch safe: [`Deployed::set`] is).
    pub fn deploy_new(&self, on: bool) {
        self.deployed.set(|d| &d.new_app, on);
        std::thread::sleep(Duration::from_millis(300));
    }
    /// Deploys (or retires) a worker that reads its own `flag`, as
    /// [`Stages::deploy_new`].
    pub fn switch(&self, flag: &AtomicBool, on: bool) {
        self.deployed.switch(flag, on);
        if on {
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    pub fn retire_old(&self) {
        self.deployed.set(|d| &d.old_app, false);
    }

    /// Every phase up to `last` migrated, the new version deployed and
    /// rolled back, every phase rolled back newest first and migrated again,
    /// and the new version deployed: a stage each.
    pub fn walk_there_and_back(&self, dir: &std::path::Path, last: u32) {
        let phases: Vec<String> = (1..=last).map(|p| p.to_string()).collect();
        for p in &phases {
            self.run(dir, &format!("migrate phase {p}"), &["migrate", "--phase", p]);
        }
        self.deploy_new(true);
        self.deploy_new(false); // the application is rolled back first
        for p in phases.iter().rev() {
            self.run(dir, &format!("rollback phase {p}"), &["rollback", "--phase", p, "--yes"]);
        }
        for p in &phases {
            self.run(dir, &format!("migrate phase {p} again"), &["migrate", "--phase", p]);
        }
        self.deploy_new(true);
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}
