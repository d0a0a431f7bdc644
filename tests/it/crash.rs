//! Crash safety (docs/targets.md): `migrate`, `rollback` and a batched backfill,
//! each a real `phasegate` process, are killed with SIGKILL at seeded random
//! points of the crash fixture (tests/fixtures/crash). After every kill the
//! ledger must match the schema, and one re-run must converge to the state of
//! an uninterrupted run (compared with `phasegate::snapshot`: schema text and row
//! fingerprints).
//!
//! The seed is printed; `PHASEGATE_CRASH_SEED=<n>` replays the same kill
//! points (where a delay lands still depends on the machine's speed). Half of
//! the kills also drop the killed process's server connections, as when the
//! host dies: the server then aborts the statement in flight (an interrupted
//! CREATE INDEX CONCURRENTLY leaves an INVALID index); otherwise the server
//! finishes the statement and only then notices the client is gone.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use postgres::Client;
use phasegate::Snapshot;

use crate::harness::{assert_same_state, exit, fixture, on, server, Cmd, Output, PROCESS_BOUND, TestDb};

pub const SEED_VAR: &str = "PHASEGATE_CRASH_SEED";

const MIGRATE_TRIALS: usize = 20;
const BACKFILL_TRIALS: usize = 16;
const ROLLBACK_TRIALS: usize = 16;
const _: () = assert!(MIGRATE_TRIALS + BACKFILL_TRIALS + ROLLBACK_TRIALS >= 50, "docs/targets.md asks for at least 50 kill trials");

/// xorshift64*: small and seedable, enough to pick kill points.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        // splitmix64 of the seed and stream, so nearby seeds diverge at once.
        let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
    fn millis(&mut self, max: Duration) -> Duration {
        Duration::from_millis(self.below(max.as_millis() as u64 + 1))
    }
}

/// The seed of this test process: PHASEGATE_CRASH_SEED, else the clock.
pub fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        let seed = match std::env::var(SEED_VAR) {
            Ok(s) => s.trim().parse().unwrap_or_else(|_| panic!("{SEED_VAR}={s} is not a number")),
            Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 % 1_000_000_007,
        };
        eprintln!("crash trials: seed {seed} (replay with {SEED_VAR}={seed})");
        seed
    })
}

/// How a probe reads one object a forward migration creates.
enum Probe {
    /// A boolean SQL expression: true when the object exists.
    Exists(&'static str),
    /// A query answering `present`, `absent` or a partial state.
    State(&'static str),
}

/// One forward migration of the crash fixture and what it creates.
struct Version {
    version: i32,
    /// Whether the forward file runs in one transaction with its ledger row.
    forward_in_tx: bool,
    rollback_in_tx: bool,
    objects: &'static [(&'static str, Probe)],
}

const COLUMN_TOTAL: &str =
    "EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass('public.items') AND attname = 'total' AND NOT attisdropped)";

/// The expected objects per version: tests/fixtures/crash/migrations.
const VERSIONS: &[Version] = &[
    Version { version: 1, forward_in_tx: true, rollback_in_tx: true, objects: &[("table items", Probe::Exists("to_regclass('public.items') IS NOT NULL"))] },
    Version {
        version: 2,
        forward_in_tx: true,
        rollback_in_tx: true,
        objects: &[("column items.total", Probe::Exists(COLUMN_TOTAL)), ("table item_notes", Probe::Exists("to_regclass('public.item_notes') IS NOT NULL"))],
    },
    Version {
        version: 3,
        forward_in_tx: false,
        rollback_in_tx: false,
        objects: &[(
            "index items_label_idx",
            Probe::State(
                "SELECT coalesce((SELECT CASE WHEN indisvalid THEN 'present' ELSE 'invalid' END FROM pg_index
                                  WHERE indexrelid = to_regclass('public.items_label_idx')), 'absent')",
            ),
        )],
    },
    Version {
        version: 4,
        forward_in_tx: false,
        rollback_in_tx: true,
        objects: &[(
            "items.total backfilled",
            // query_to_xml runs the count only when the column exists.
            Probe::State(
                "SELECT CASE WHEN NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass('public.items') AND attname = 'total' AND NOT attisdropped)
                        THEN 'absent'
                        ELSE (xpath('/row/s/text()', query_to_xml(
                            'SELECT CASE count(total) WHEN 0 THEN ''absent'' WHEN count(*) THEN ''present''
                                    ELSE ''partial '' || count(total) || ''/'' || count(*) END AS s FROM items', false, true, '')))[1]::text
                   END",
            ),
        )],
    },
    Version {
        version: 5,
        forward_in_tx: true,
        rollback_in_tx: true,
        objects: &[
            ("constraint items_total_is_double", Probe::Exists("EXISTS (SELECT FROM pg_constraint WHERE conname = 'items_total_is_double')")),
            (
                "items.total NOT NULL",
                Probe::Exists("EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass('public.items') AND attname = 'total' AND attnotnull AND NOT attisdropped)"),
            ),
        ],
    },
    Version {
        version: 6,
        forward_in_tx: true,
        rollback_in_tx: true,
        objects: &[
            ("function items_sync_total()", Probe::Exists("to_regproc('public.items_sync_total') IS NOT NULL")),
            ("trigger items_sync_total", Probe::Exists("EXISTS (SELECT FROM pg_trigger WHERE tgname = 'items_sync_total')")),
        ],
    },
];

/// Versions by phase, as tests/fixtures/crash/phases.toml has them.
fn phase_of(version: i32) -> u32 {
    match version {
        1..=3 => 1,
        4..=5 => 2,
        _ => 3,
    }
}

/// Which way the killed run was moving.
#[derive(Debug, Clone, Copy)]
enum Direction {
    Forward,
    Back(u32),
}

/// The versions the ledger records; refinery's history and
/// phasegate_applied must agree.
fn recorded(c: &mut Client) -> Result<Vec<i32>, String> {
    let exists: bool = c.query_one("SELECT to_regclass('refinery_schema_history') IS NOT NULL", &[]).map_err(|e| e.to_string())?.get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let versions = |c: &mut Client, q: &str| -> Result<Vec<i32>, String> { Ok(c.query(q, &[]).map_err(|e| e.to_string())?.iter().map(|r| r.get(0)).collect()) };
    let history = versions(c, "SELECT version FROM refinery_schema_history ORDER BY version")?;
    let applied = versions(c, "SELECT version FROM phasegate_applied ORDER BY version")?;
    if history != applied {
        return Err(format!("refinery_schema_history has {history:?} but phasegate_applied has {applied:?}"));
    }
    Ok(history)
}

/// Checks that the ledger matches the schema: the recorded versions are
/// 1..=k, every recorded version's objects exist, and no unrecorded
/// version's objects do. The one step in flight when the run died may be
/// partly done when it runs outside a transaction (no-transaction, batch);
/// such a state is returned as `V3 index items_label_idx: invalid`.
fn ledger_matches_schema(c: &mut Client, direction: Option<Direction>) -> Result<Option<String>, String> {
    let rec = recorded(c)?;
    let k = rec.len() as i32;
    if rec != (1..=k).collect::<Vec<_>>() {
        return Err(format!("the ledger has a gap: {rec:?}"));
    }
    let in_flight = match direction {
        Some(Direction::Forward) => VERSIONS.iter().find(|v| v.version == k + 1).filter(|v| !v.forward_in_tx),
        Some(Direction::Back(p)) => VERSIONS.iter().find(|v| v.version == k && phase_of(k) == p).filter(|v| !v.rollback_in_tx),
        None => None,
    };
    let mut partial = None;
    for v in VERSIONS {
        let is_recorded = rec.contains(&v.version);
        for (name, probe) in v.objects {
            let state: String = match probe {
                Probe::Exists(expr) => c.query_one(&format!("SELECT CASE WHEN {expr} THEN 'present' ELSE 'absent' END"), &[]),
                Probe::State(sql) => c.query_one(*sql, &[]),
            }
            .map_err(|e| format!("probing {name}: {e}"))?
            .get(0);
            let expected = if is_recorded { "present" } else { "absent" };
            if state == expected {
                continue;
            }
            if in_flight.is_some_and(|f| f.version == v.version) {
                partial = Some(format!("V{} {name}: {state}{}", v.version, if is_recorded { " (recorded)" } else { " (unrecorded)" }));
                continue;
            }
            return Err(format!(
                "V{} is {}recorded but {name} is {state} (ledger {rec:?})",
                v.version,
                if is_recorded { "" } else { "not " }
            ));
        }
    }
    // A backfill's recorded progress is exactly what its committed batches
    // did, and is forgotten once its migration is recorded.
    if batches_exist(c) {
        for r in c.query("SELECT version, rows_done FROM phasegate_batches", &[]).map_err(|e| e.to_string())? {
            let (v, done): (i32, i64) = (r.get(0), r.get(1));
            if rec.contains(&v) {
                return Err(format!("V{v} is recorded but phasegate_batches still holds its progress ({done} rows)"));
            }
            if v == 4 {
                let filled: i64 = c.query_one("SELECT count(total) FROM items", &[]).map_err(|e| e.to_string())?.get(0);
                if filled != done {
                    return Err(format!("phasegate_batches says V4 did {done} rows but {filled} are filled"));
                }
            }
        }
    }
    Ok(partial)
}

/// Where a trial kills its process.
#[derive(Debug, Clone)]
enum KillAt {
    /// This long after the process started.
    Delay(Duration),
    /// `delay` after the `nth` stdout line containing `matching`.
    AfterLine { matching: &'static str, nth: usize, delay: Duration },
    /// `delay` after the backfill's recorded progress (phasegate_batches)
    /// reaches `rows`.
    AfterRows { version: i32, rows: i64, delay: Duration },
}

/// The rows a batched backfill has recorded as done (0 before it starts).
fn rows_done(c: &mut Client, version: i32) -> i64 {
    if !batches_exist(c) {
        return 0;
    }
    c.query_one("SELECT coalesce(max(rows_done), 0) FROM phasegate_batches WHERE version = $1", &[&version]).map(|r| r.get(0)).unwrap_or(0)
}

fn batches_exist(c: &mut Client) -> bool {
    c.query_one("SELECT to_regclass('phasegate_batches') IS NOT NULL", &[]).map(|r| r.get(0)).unwrap_or(false)
}

/// An uninterrupted run: how long it took and what it printed.
#[derive(Debug, Clone)]
pub struct Timing {
    duration: Duration,
    lines: Vec<String>,
}

/// The uninterrupted reference runs, shared by every trial of this binary.
pub struct References {
    /// `templates[p]`: a template database with phases up to p applied (p >= 1).
    templates: [String; 4],
    /// `after[p]`: the state with phases up to p applied; `after[3]` comes
    /// from one uninterrupted `migrate` of an empty database.
    pub after: [Snapshot; 4],
    /// `rolled_back[p]`: the state after an uninterrupted rollback of phase p from `templates[p]`.
    rolled_back: [Option<Snapshot>; 4],
    migrate: Timing,
    backfill: Timing,
    rollback: [Option<Timing>; 4],
}

fn snapshot_of(url: &str) -> Snapshot {
    phasegate::take_snapshot(&mut phasegate::connect(url, "phasegate-test").expect("connect"), &Default::default()).expect("snapshot")
}

/// Runs a command to completion against `url` and the crash fixture, timed.
fn timed(url: &str, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = crash_cmd(url, args).process();
    (out, started.elapsed())
}

fn logs() -> std::path::PathBuf {
    crate::harness::log_dir().join("crash")
}

/// `args` against `url` with the crash fixture.
fn crash_cmd(url: &str, args: &[&str]) -> Cmd {
    on(url, &fixture("crash"), args).logs(logs())
}

#[track_caller]
fn must_succeed(what: &str, out: &Output) {
    assert_eq!(out.code, exit::OK, "{what} failed: {out:?}");
}

pub fn references() -> &'static References {
    static REFS: OnceLock<References> = OnceLock::new();
    REFS.get_or_init(|| {
        let s = server();
        let pid = std::process::id();
        let empty = TestDb::new("crash_ref_empty");
        let before = empty.snapshot();
        let (out, d) = timed(&empty.url, &["migrate"]);
        must_succeed("the uninterrupted reference migrate", &out);
        let migrate = Timing { duration: d, lines: out.stdout.lines().map(str::to_string).collect() };
        let full = empty.snapshot();

        let mut templates: [String; 4] = Default::default();
        let mut after: [Snapshot; 4] = [before.clone(), before.clone(), before.clone(), before];
        let mut backfill = None;
        for p in 1..=3usize {
            let name = format!("tpl_crash_p{p}_{pid}");
            let url = s.create_database(&name, (p > 1).then(|| templates[p - 1].as_str())).expect("create template");
            let (out, d) = timed(&url, &["migrate", "--phase", &p.to_string()]);
            must_succeed(&format!("migrate --phase {p}"), &out);
            if p == 2 {
                backfill = Some(Timing { duration: d, lines: out.stdout.lines().map(str::to_string).collect() });
            }
            after[p] = snapshot_of(&url);
            s.make_template(&name).expect("mark template");
            templates[p] = name;
        }
        assert_same_state(&full, &after[3], "phase by phase against one migrate");
        after[3] = full;

        let mut rolled_back: [Option<Snapshot>; 4] = Default::default();
        let mut rollback: [Option<Timing>; 4] = Default::default();
        for p in 1..=3usize {
            let db = TestDb::from_template("crash_ref_rb", &templates[p]);
            let (out, d) = timed(&db.url, &["rollback", "--phase", &p.to_string(), "--yes"]);
            must_succeed(&format!("rollback --phase {p}"), &out);
            rollback[p] = Some(Timing { duration: d, lines: out.stdout.lines().map(str::to_string).collect() });
            let snap = db.snapshot();
            assert_same_state(&after[p - 1], &snap, &format!("rollback of phase {p} against the state before it"));
            rolled_back[p] = Some(snap);
        }
        References { templates, after, rolled_back, migrate, backfill: backfill.expect("phase 2 ran"), rollback }
    })
}

/// What one trial does.
#[derive(Debug, Clone)]
struct Trial {
    n: usize,
    /// Phase of the template to start from (0: an empty database).
    start: usize,
    args: Vec<String>,
    direction: Direction,
    kill: KillAt,
    /// Also drop the killed process's server connections.
    drop_connection: bool,
}

/// How a trial ended, for the summary.
struct TrialReport {
    killed: bool,
    partial: Option<String>,
}

/// Ends the killed process's server sessions (when asked) and waits until
/// none is left, so the state no longer changes under the checks.
fn settle(db: &TestDb, pid: u32, drop_connection: bool) {
    let mut c = db.client();
    let pattern = format!("% pid {pid})");
    if drop_connection {
        c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1", &[&pattern]).expect("terminate");
    }
    let deadline = Instant::now() + PROCESS_BOUND;
    loop {
        let n: i64 = c.query_one("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE $1", &[&pattern]).expect("count sessions").get(0);
        if n == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the killed process's sessions outlived {PROCESS_BOUND:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills a process at `t.kill`, checks the ledger against the schema, re-runs
/// the command once and compares the result with `reference`.
fn trial(refs: &References, t: &Trial, reference: &Snapshot) -> TrialReport {
    let db = match t.start {
        0 => TestDb::new("crash"),
        p => TestDb::from_template("crash", &refs.templates[p]),
    };
    let args: Vec<&str> = t.args.iter().map(String::as_str).collect();
    let mut child = crash_cmd(&db.url, &args).spawn();
    let started = Instant::now();
    match &t.kill {
        KillAt::Delay(d) => std::thread::sleep(d.saturating_sub(started.elapsed())),
        KillAt::AfterLine { matching, nth, delay } => {
            let mut seen = 0;
            while let Some(line) = child.next_line(PROCESS_BOUND) {
                if line.contains(matching) {
                    seen += 1;
                    if seen == *nth {
                        break;
                    }
                }
            }
            std::thread::sleep(*delay);
        }
        KillAt::AfterRows { version, rows, delay } => {
            let mut c = db.client();
            while rows_done(&mut c, *version) < *rows && matches!(child.child.try_wait(), Ok(None)) {
                assert!(started.elapsed() < PROCESS_BOUND, "the backfill never reached {rows} rows");
                std::thread::sleep(Duration::from_millis(2));
            }
            std::thread::sleep(*delay);
        }
    }
    let killed = child.kill9();
    let pid = child.pid;
    let out = child.wait();
    if !killed {
        must_succeed("the run that finished before its kill", &out);
    }
    settle(&db, pid, t.drop_connection);

    let partial = ledger_matches_schema(&mut db.client(), Some(t.direction)).unwrap_or_else(|e| panic!("after the kill, the ledger does not match the schema: {e}"));

    let rerun = match t.direction {
        Direction::Back(p) => recorded(&mut db.client()).unwrap().iter().any(|v| phase_of(*v) == p),
        Direction::Forward => true,
    };
    if rerun {
        crash_cmd(&db.url, &args).args(&["--lock-wait", "30s"]).process().expect_exit(exit::OK);
    }
    if let Err(e) = ledger_matches_schema(&mut db.client(), None) {
        panic!("after the re-run, the ledger does not match the schema: {e}");
    }
    assert_same_state(reference, &db.snapshot(), "the re-run against an uninterrupted run");
    TrialReport { killed, partial }
}

/// Makes `count` trials from the seed's stream `stream` and runs them,
/// collecting failures; prints one summary line and fails when a trial
/// failed or too few ran.
fn run_trials(suite: &str, stream: u64, count: usize, mut make: impl FnMut(&mut Rng, usize) -> (Trial, &'static Snapshot)) {
    let refs = references();
    let seed = seed();
    let mut rng = Rng::new(seed, stream);
    let trials: Vec<(Trial, &Snapshot)> = (0..count).map(|n| make(&mut rng, n)).collect();
    let expected = count;
    let (mut killed, mut finished, mut failures) = (0, 0, Vec::new());
    let mut partial: BTreeMap<String, usize> = BTreeMap::new();
    let total = trials.len();
    for (t, reference) in trials {
        match catch_unwind(AssertUnwindSafe(|| trial(refs, &t, reference))) {
            Ok(r) => {
                if r.killed {
                    killed += 1;
                } else {
                    finished += 1;
                }
                if let Some(p) = r.partial {
                    // Counts by kind of state, without the row numbers.
                    let kind = p.split_whitespace().map(|w| if w.contains('/') { "n/m" } else { w }).collect::<Vec<_>>().join(" ");
                    *partial.entry(kind).or_default() += 1;
                }
            }
            Err(e) => {
                let msg = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
                eprintln!("crash/{suite}: trial {} failed (replay: {SEED_VAR}={seed}): {t:?}\n{msg}", t.n);
                failures.push(t.n);
            }
        }
    }
    eprintln!(
        "crash/{suite}: {total} trials, {killed} killed mid-run, {finished} finished before the kill, partial states seen {partial:?}, failures {} {failures:?}, seed {seed}",
        failures.len()
    );
    assert!(failures.is_empty(), "crash/{suite}: trials {failures:?} failed; replay with {SEED_VAR}={seed}");
    assert!(total >= expected, "crash/{suite}: only {total} of {expected} trials ran");
    assert!(killed > 0, "crash/{suite}: no trial killed its process mid-run");
}

fn to_strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// A kill anywhere in the run: after a random delay, a little after a
/// random line of what the uninterrupted run printed, or a little after the
/// run announces `step` (the step outside a transaction, which the other two
/// rarely hit).
fn anywhere(rng: &mut Rng, timing: &Timing, step: &'static str) -> KillAt {
    match rng.below(3) {
        0 => KillAt::Delay(rng.millis(timing.duration.mul_f64(1.1))),
        1 => KillAt::AfterLine { matching: "", nth: 1 + rng.below(timing.lines.len() as u64) as usize, delay: rng.millis(Duration::from_millis(40)) },
        _ => KillAt::AfterLine { matching: step, nth: 1, delay: rng.millis(Duration::from_millis(60)) },
    }
}

#[test]
fn migrate_killed_at_random_points_converges() {
    let refs = references();
    run_trials("migrate", 1, MIGRATE_TRIALS, |rng, n| {
        let kill = anywhere(rng, &refs.migrate, "apply V3 ");
        (Trial { n, start: 0, args: to_strings(&["migrate"]), direction: Direction::Forward, kill, drop_connection: rng.coin() }, &refs.after[3])
    });
}

#[test]
fn backfill_killed_mid_batch_resumes() {
    let refs = references();
    // tests/fixtures/crash: V4 fills 20000 rows, 500 a batch.
    let batches = 20000 / 500;
    run_trials("backfill", 2, BACKFILL_TRIALS, |rng, n| {
        let kill = if rng.below(4) == 0 {
            KillAt::Delay(rng.millis(refs.backfill.duration))
        } else {
            KillAt::AfterRows { version: 4, rows: 500 * (1 + rng.below(batches - 1) as i64), delay: rng.millis(Duration::from_millis(20)) }
        };
        (Trial { n, start: 1, args: to_strings(&["migrate", "--phase", "2"]), direction: Direction::Forward, kill, drop_connection: rng.coin() }, &refs.after[2])
    });
}

#[test]
fn rollback_killed_at_random_points_converges() {
    let refs = references();
    run_trials("rollback", 3, ROLLBACK_TRIALS, |rng, n| {
        let p = 1 + rng.below(3) as usize;
        let timing = refs.rollback[p].as_ref().expect("reference rollback");
        let kill = anywhere(rng, timing, if p == 1 { "rollback V3 " } else { "rollback V" });
        let args = to_strings(&["rollback", "--phase", &p.to_string(), "--yes"]);
        let t = Trial { n, start: p, args, direction: Direction::Back(p as u32), kill, drop_connection: rng.coin() };
        (t, refs.rolled_back[p].as_ref().expect("reference rollback"))
    });
}

/// An interruption set up exactly rather than by chance: the database is
/// migrated to `to_version`, `interrupted` leaves what a killed run leaves,
/// and one `migrate` must converge to the uninterrupted state.
#[track_caller]
fn recovers(name: &str, dir: &std::path::Path, to_version: i32, interrupted: &str, state: (&str, &str)) -> (Output, TestDb) {
    let refs = references();
    let db = TestDb::new("recover");
    let run = |args: &[&str]| on(&db, dir, args).logs(logs()).process();
    must_succeed(name, &run(&["migrate", "--to-version", &to_version.to_string()]));
    let mut c = db.client();
    let _ = c.batch_execute(interrupted);
    let (object, expected) = state;
    let probe = VERSIONS.iter().flat_map(|v| v.objects.iter()).find(|(n, _)| *n == object).map(|(_, p)| p).expect("a known object");
    let seen: String = match probe {
        Probe::Exists(expr) => c.query_one(&format!("SELECT CASE WHEN {expr} THEN 'present' ELSE 'absent' END"), &[]),
        Probe::State(sql) => c.query_one(*sql, &[]),
    }
    .unwrap()
    .get(0);
    assert!(seen.starts_with(expected), "{name}: the set-up should leave {object} {expected}, it is {seen}");
    let out = run(&["migrate"]);
    if out.code == exit::OK {
        ledger_matches_schema(&mut db.client(), None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_same_state(&refs.after[3], &db.snapshot(), name);
    }
    (out, db)
}

#[test]
fn rerun_drops_and_rebuilds_an_invalid_index_left_by_create_index_concurrently() {
    // A unique index over duplicates fails the way an interrupted build ends:
    // the index stays in the catalog, INVALID, under the step's name.
    let (out, _) = recovers(
        "invalid index",
        &fixture("crash"),
        2,
        "CREATE UNIQUE INDEX CONCURRENTLY items_label_idx ON items (qty)",
        ("index items_label_idx", "invalid"),
    );
    assert_eq!(out.code, exit::OK, "the re-run must drop the INVALID index and build it again: {out:?}");
}

#[test]
fn rerun_resumes_a_backfill_interrupted_mid_way() {
    let (out, _) = recovers("partial backfill", &fixture("crash"), 3, "UPDATE items SET total = qty * 2 WHERE id <= 7000", ("items.total backfilled", "partial 7000/20000"));
    assert_eq!(out.code, exit::OK, "{out:?}");
}

#[test]
fn rerun_after_a_no_transaction_step_ran_but_was_not_recorded() {
    // The fixture's IF NOT EXISTS makes the re-run a no-op for the index.
    let (out, _) = recovers("unrecorded index", &fixture("crash"), 2, "CREATE INDEX items_label_idx ON items (label)", ("index items_label_idx", "present"));
    assert_eq!(out.code, exit::OK, "{out:?}");
}

#[test]
fn without_if_not_exists_a_rerun_stops_at_the_existing_index_and_keeps_it() {
    // The engine cannot tell an index a killed run built from someone
    // else's: it stops with the file and line, and drops nothing valid.
    let set = crate::harness::copy_set(&fixture("crash"));
    let v3 = set.path().join("migrations/V3__index_label.sql");
    std::fs::write(&v3, std::fs::read_to_string(&v3).unwrap().replace(" IF NOT EXISTS", "")).unwrap();
    let (out, db) = recovers("unrecorded index, no IF NOT EXISTS", set.path(), 2, "CREATE INDEX items_label_idx ON items (label)", ("index items_label_idx", "present"));
    assert_eq!(out.code, exit::ERROR, "{out:?}");
    let err = out.stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_default().replace(&format!("{}/", set.path().display()), "");
    assert_eq!(err, "error: migrations/V3__index_label.sql:2: relation \"items_label_idx\" already exists (SQLSTATE 42P07)", "{out:?}");
    let valid: Option<bool> = db.client().query_one("SELECT (SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('items_label_idx'))", &[]).unwrap().get(0);
    assert_eq!(valid, Some(true), "the existing index is kept");
}
