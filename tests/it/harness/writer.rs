//! Application traffic for tests: a [`Writer`] is a thread that runs an
//! application's statements against a database, round after round, until
//! it is stopped, counting the statements written and failed and keeping
//! each one's start and latency (so a test can split them by what ran
//! meanwhile). It stops and joins on [`Writer::stop`], which returns what it
//! did, or when dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use postgres::Client;

/// One statement the application ran.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it started.
    pub at: Instant,
    /// How long it took.
    pub wait: Duration,
    /// Whether it writes (an INSERT, UPDATE, ...), not only reads.
    pub write: bool,
    /// PostgreSQL's message when it failed.
    pub error: Option<String>,
}

/// What one or more writers did.
#[derive(Debug, Default)]
pub struct Tally {
    /// Writing statements that succeeded.
    pub written: u64,
    /// Statements (writing or reading) that failed.
    pub failed: u64,
    /// Every statement, in the order each writer ran them.
    pub samples: Vec<Sample>,
}

impl Tally {
    /// The failed statements' messages.
    pub fn errors(&self) -> Vec<String> {
        self.samples.iter().filter_map(|s| s.error.clone()).collect()
    }

    /// The tallies of several writers as one.
    pub fn merge(tallies: impl IntoIterator<Item = Tally>) -> Tally {
        tallies.into_iter().fold(Tally::default(), |mut all, t| {
            all.written += t.written;
            all.failed += t.failed;
            all.samples.extend(t.samples);
            all
        })
    }
}

/// What the writer's thread and the test share.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    written: AtomicU64,
    failed: AtomicU64,
}

/// One round of a writer: its statements go through [`Round::write`] and
/// [`Round::read`], which time and count them.
pub struct Round<'a> {
    shared: &'a Shared,
    samples: &'a mut Vec<Sample>,
    n: u64,
}

impl Round<'_> {
    /// This round's number, from 1.
    pub fn n(&self) -> u64 {
        self.n
    }

    /// Runs a writing statement: counted written, or failed.
    pub fn write<T>(&mut self, statement: impl FnOnce() -> Result<T, postgres::Error>) -> Option<T> {
        self.time(true, statement)
    }

    /// Runs a reading statement: counted failed when it fails.
    pub fn read<T>(&mut self, statement: impl FnOnce() -> Result<T, postgres::Error>) -> Option<T> {
        self.time(false, statement)
    }

    fn time<T>(&mut self, write: bool, statement: impl FnOnce() -> Result<T, postgres::Error>) -> Option<T> {
        let at = Instant::now();
        let result = statement();
        let wait = at.elapsed();
        let (value, error) = match result {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(phasegate::pg_message(&e))),
        };
        let counter = match (&error, write) {
            (Some(_), _) => Some(&self.shared.failed),
            (None, true) => Some(&self.shared.written),
            (None, false) => None,
        };
        if let Some(c) = counter {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.samples.push(Sample { at, wait, write, error });
        value
    }

    /// Whether the writer was told to stop.
    pub fn stopped(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed)
    }

    /// Waits while `flag` is off (e.g. an application version not
    /// deployed); false when the writer is told to stop meanwhile.
    pub fn wait_for(&self, flag: &AtomicBool) -> bool {
        while !flag.load(Ordering::Relaxed) {
            if self.stopped() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }
}

/// How a writer runs: its name (the thread's, and the application name of
/// the connection [`Spawn::execute`] opens), the pause after each round and
/// an optional bound on the rounds.
#[derive(Debug, Clone)]
pub struct Spawn {
    name: String,
    pause: Duration,
    rounds: Option<u64>,
}

impl Spawn {
    /// The pause after each round (none by default).
    pub fn pause(mut self, pause: Duration) -> Spawn {
        self.pause = pause;
        self
    }

    /// At most `n` rounds (a bound, in case nothing stops it).
    pub fn rounds(mut self, n: u64) -> Spawn {
        self.rounds = Some(n);
        self
    }

    /// Starts the thread: `round` runs until the writer is stopped, the
    /// bound is reached or it returns false.
    pub fn run(self, mut round: impl FnMut(&mut Round) -> bool + Send + 'static) -> Writer {
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(self.name.clone())
                .spawn(move || {
                    let mut samples = Vec::new();
                    let mut n = 0;
                    while !shared.stop.load(Ordering::Relaxed) && self.rounds.is_none_or(|max| n < max) {
                        n += 1;
                        if !round(&mut Round { shared: &shared, samples: &mut samples, n }) {
                            break;
                        }
                        if !self.pause.is_zero() {
                            std::thread::sleep(self.pause);
                        }
                    }
                    samples
                })
                .expect("spawning a writer thread")
        };
        Writer { name: self.name, shared, thread: Some(thread) }
    }

    /// One writing statement a round, on a connection of its own to `url`:
    /// `statement(client, round)`.
    pub fn execute<T>(self, url: &str, mut statement: impl FnMut(&mut Client, u64) -> Result<T, postgres::Error> + Send + 'static) -> Writer {
        let mut client = phasegate::connect(url, &self.name).unwrap_or_else(|e| panic!("{}: {e}", self.name));
        self.run(move |r| {
            let n = r.n();
            r.write(|| statement(&mut client, n));
            true
        })
    }
}

/// A running writer; stopped and joined by [`Writer::stop`] or on drop.
pub struct Writer {
    name: String,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Vec<Sample>>>,
}

impl Writer {
    /// A writer called `name`, to be started with [`Spawn::run`] or
    /// [`Spawn::execute`].
    #[allow(clippy::new_ret_no_self)]
    pub fn new(name: &str) -> Spawn {
        Spawn { name: name.to_string(), pause: Duration::ZERO, rounds: None }
    }

    /// Its name (the thread's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Writing statements that succeeded so far.
    pub fn written(&self) -> u64 {
        self.shared.written.load(Ordering::Relaxed)
    }

    /// Waits until `n` writing statements have succeeded in all (so the
    /// application is known to be writing before a command starts); panics
    /// when the writer ends first, or after two minutes (a hang).
    #[track_caller]
    pub fn until_written(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.written() < n {
            let ended = self.thread.as_ref().is_none_or(JoinHandle::is_finished);
            assert!(!ended, "the writer ended after {} of {n} writes", self.written());
            assert!(Instant::now() < deadline, "the writer made {} of {n} writes in two minutes", self.written());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the writer after its current round and returns what it did
    /// (a panic of its thread is the test's).
    pub fn stop(mut self) -> Tally {
        let samples = self.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Tally { written: self.shared.written.load(Ordering::Relaxed), failed: self.shared.failed.load(Ordering::Relaxed), samples }
    }

    fn join(&mut self) -> std::thread::Result<Vec<Sample>> {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.thread.take().map_or(Ok(Vec::new()), JoinHandle::join)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.join().is_err() && !std::thread::panicking() {
            panic!("a writer thread panicked");
        }
    }
}
