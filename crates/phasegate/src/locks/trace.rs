//! The observer of lock tracing: a second session that reads `pg_locks`
//! for the migrating session's pid after each statement of a transaction,
//! and samples it while a statement runs outside one (see the module
//! documentation of `locks` for the method and its resolution).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use postgres::{Client, GenericClient};

use super::{merge, outside, LockHold, LockMode, Seen, Source, Unit};
use crate::error::pg_message;

/// How often a statement outside a transaction is sampled.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// The granted relation locks of one backend, by name, tables first; not
/// catalogs, TOAST, temporary relations, backups or phasegate's ledger.
/// Relations the backend's open transaction created are not visible to
/// this session, so they drop out of the join.
const HELD: &str = "SELECT CASE WHEN n.nspname = 'public' THEN c.relname::text ELSE n.nspname || '.' || c.relname END, l.mode
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE l.pid = $1 AND l.granted AND l.locktype = 'relation'
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'phasegate_backup', 'phasegate_touch')
  AND n.nspname !~ '^pg_(toast|temp_)'
  AND c.relname !~ '^(phasegate_(applied|runs|batches|backups|kept)|refinery_schema_history)'
ORDER BY c.relkind NOT IN ('r', 'p', 'm', 'f'), 1, 2";

/// The observer session.
struct Probe {
    client: Client,
    query: postgres::Statement,
    pid: i32,
}

impl Probe {
    fn open(traced: &mut impl GenericClient, url: &str) -> Result<Probe, String> {
        let pid: i32 = traced.query_one("SELECT pg_backend_pid()", &[]).map_err(|e| pg_message(&e))?.get(0);
        let mut client = crate::db::connect(url, "phasegate lock tracer").map_err(|e| e.to_string())?;
        // Never wait for the traced session (a migration that locks a
        // catalog): the observer gives up, the migration goes on untraced.
        client.batch_execute("SET lock_timeout = '1s'; SET statement_timeout = '5s'; SET jit = off").map_err(|e| pg_message(&e))?;
        let query = client.prepare(HELD).map_err(|e| pg_message(&e))?;
        Ok(Probe { client, query, pid })
    }

    fn held(&mut self) -> Result<Vec<Seen>, postgres::Error> {
        let rows = self.client.query(&self.query, &[&self.pid])?;
        Ok(rows.iter().filter_map(|r| Some((r.get::<_, String>(0), LockMode::from_pg(r.get(1))?))).collect())
    }
}

/// Traces one session's locks, statement by statement. Off (it records
/// nothing and costs nothing) when no observer could connect.
pub(crate) struct Tracer {
    probe: Option<Probe>,
    origin: Instant,
    /// The transaction whose statements are running, if any.
    unit: Option<Unit>,
    /// Holds whose transaction (or statement) ended, since the last `take`.
    done: Vec<LockHold>,
    /// Why tracing is off although it was asked for, until said.
    lost: Option<String>,
}

impl Tracer {
    /// A tracer that records nothing.
    pub fn off() -> Tracer {
        Tracer { probe: None, origin: Instant::now(), unit: None, done: Vec::new(), lost: None }
    }

    /// Traces `traced`'s session from a second connection to `url` (the
    /// same database). When that connection fails, tracing is off and
    /// [`Tracer::lost`] says why.
    pub fn start(traced: &mut impl GenericClient, url: &str) -> Tracer {
        let mut t = Tracer::off();
        match Probe::open(traced, url) {
            Ok(p) => t.probe = Some(p),
            Err(e) => t.lost = Some(e),
        }
        t
    }

    /// Why tracing stopped or never started, once.
    pub fn lost(&mut self) -> Option<String> {
        self.lost.take()
    }

    pub fn active(&self) -> bool {
        self.probe.is_some()
    }

    /// Milliseconds on the tracer's clock.
    pub fn clock(&self) -> f64 {
        self.origin.elapsed().as_secs_f64() * 1000.0
    }

    fn observe(&mut self) -> Option<Vec<Seen>> {
        let probe = self.probe.as_mut()?;
        match probe.held() {
            Ok(seen) => Some(seen),
            Err(e) => {
                self.lost = Some(format!("the lock observer failed: {}", pg_message(&e)));
                self.probe = None;
                None
            }
        }
    }

    /// The statements of a transaction are about to run: what its session
    /// holds now (checks that ran first, earlier migrations of a
    /// rehearsal's transaction) is not theirs. Ends the previous one.
    pub fn begin(&mut self) {
        self.end();
        if self.active() {
            let held = self.observe().unwrap_or_default();
            self.unit = self.active().then(|| Unit::new(held));
        }
    }

    /// Like [`Tracer::begin`] in a transaction that has locked nothing yet.
    pub fn begin_fresh(&mut self) {
        self.end();
        if self.active() {
            self.unit = Some(Unit::default());
        }
    }

    /// Runs one statement (`run`). After [`Tracer::begin`] the observer
    /// reads what it locked once it returned; an error ends the
    /// transaction's tracing, since its owner rolls it back. Outside a
    /// transaction the observer samples while it runs.
    pub fn statement<T, E>(&mut self, source: Source, run: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        if !self.active() {
            return run();
        }
        let since = self.clock();
        if self.unit.is_some() {
            let r = run();
            match &r {
                Ok(_) => self.mark(&source, since),
                Err(_) => self.end(),
            }
            return r;
        }
        let (r, seen) = self.sample_while(run);
        let ms = self.clock() - since;
        self.done.extend(outside(&source, seen, ms));
        r
    }

    /// Attributes what the transaction took since `since` (on the tracer's
    /// clock) to `source`: phasegate's own work in it, such as the backup
    /// triggers of a rollback.
    pub fn mark(&mut self, source: &Source, since: f64) {
        if self.unit.is_none() {
            return;
        }
        if let Some(seen) = self.observe() {
            if let Some(u) = self.unit.as_mut() {
                u.after(source, since, seen);
            }
        }
    }

    /// The transaction ended (committed or rolled back) now.
    pub fn end(&mut self) {
        if let Some(u) = self.unit.take() {
            let now = self.clock();
            self.done.extend(u.end(now));
        }
    }

    /// Every hold since the last call, ending the open transaction's; one
    /// entry per statement, relation and mode, the longest.
    pub fn take(&mut self) -> Vec<LockHold> {
        self.end();
        merge(std::mem::take(&mut self.done))
    }

    /// Runs `run` while a second thread samples the observer every
    /// [`SAMPLE_EVERY`]; returns what it saw.
    fn sample_while<T>(&mut self, run: impl FnOnce() -> T) -> (T, Vec<Seen>) {
        let Some(probe) = self.probe.as_mut() else { return (run(), Vec::new()) };
        let stop = AtomicBool::new(false);
        let (r, (seen, failed)) = std::thread::scope(|s| {
            let sampler = s.spawn(|| {
                let mut seen: Vec<Seen> = Vec::new();
                loop {
                    match probe.held() {
                        // Each lock once: a long statement is sampled
                        // thousands of times.
                        Ok(now) => {
                            for l in now {
                                if !seen.contains(&l) {
                                    seen.push(l);
                                }
                            }
                        }
                        Err(e) => return (seen, Some(pg_message(&e))),
                    }
                    if stop.load(Ordering::Acquire) {
                        return (seen, None);
                    }
                    std::thread::park_timeout(SAMPLE_EVERY);
                }
            });
            let r = run();
            stop.store(true, Ordering::Release);
            sampler.thread().unpark();
            (r, sampler.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
        });
        if let Some(e) = failed {
            self.lost = Some(format!("the lock observer failed: {e}"));
            self.probe = None;
        }
        (r, seen)
    }
}
