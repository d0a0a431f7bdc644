//! Replica awareness (docs/safety.md, [`Options::max_replica_lag`]): before each
//! batch of a backfill, [`ReplicaGate::wait`] reads the streaming replicas'
//! positions on the primary (`pg_stat_replication`) and waits while any of
//! them lags more than the limit, saying which one and by how much.
//!
//! **How the lag is measured.** `pg_stat_replication.replay_lag` cannot be
//! trusted when it matters: PostgreSQL updates it only when the standby
//! reports progress, so a standby whose replay is stuck (paused, or a long
//! query holding replay back) keeps showing its last, small value, and an
//! idle one shows NULL. So the gate measures the lag itself, the way
//! heartbeat tools do (pt-heartbeat, gh-ost): at every check it samples the
//! primary's WAL position, `(Instant, pg_current_wal_lsn())`, taking the
//! instant before the query, so everything committed before that instant
//! lies at or below that position. A replica whose `replay_lsn` has reached
//! a sample's position shows everything committed before that sample was
//! taken, so its lag is **at most** the time since the newest sample it has
//! replayed (none, when it has replayed the position just read); and it is
//! **at least** the time since the oldest sample it has
//! not replayed (or `replay_lag`, when PostgreSQL reports one, whichever is
//! larger, never above the upper bound). The gate lets a batch run only
//! when every replica's upper bound is within the limit, so a replica that
//! has replayed none of the sampled positions (one already far behind at
//! the first check, or one connected that has reported no position yet)
//! counts as lagging until it catches up with a sample.
//!
//! **Resolution.** While waiting the gate samples every [`POLL`] (250 ms),
//! so the upper bound exceeds the true lag by at most about one poll
//! interval plus a query's round trip: the gate may wait up to that much
//! longer than strictly needed, never shorter. Between batches the samples
//! are one batch apart, so a batch that takes longer than the limit makes
//! the next check wait about one poll for a fresh sample the replicas have
//! replayed. Asynchronous commits whose WAL the primary has not yet written
//! (`synchronous_commit = off`) can be missing from a sample for up to
//! `wal_writer_delay`.
//!
//! **Which replicas.** Every physical walsender of the primary
//! (`pg_stat_replication`), whatever its state, except a base backup in
//! progress (state `backup`), logical replication (a walsender holding a
//! logical slot), and WAL receivers that replay nothing (`pg_receivewal`,
//! `pg_basebackup -X stream`: they report a write position but never a
//! replay position). Cascaded replicas (replicas of a replica) are not seen
//! on the primary. Reading the positions needs `pg_read_all_stats` (part of
//! `pg_monitor`) or a superuser: without it PostgreSQL hides them, and the
//! first check fails rather than silently not waiting.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use postgres::Client;

use crate::error::{db_err, Error, Result};
use crate::ui::{BatchProgress, ReplicaLag as Lag, Ui};

#[cfg(doc)]
use super::outcome::Options;

/// How often a waiting gate samples the primary and reads the replicas.
pub const POLL: Duration = Duration::from_millis(250);

/// How often a wait that goes on says so in a progress line.
const STILL_WAITING: Duration = Duration::from_secs(10);

/// The most samples kept; past that the second-oldest is dropped, which
/// coarsens the lag of a replica that far behind but keeps its lower bound.
const MAX_SAMPLES: usize = 1024;

/// One sample of the primary's WAL position: everything committed before
/// `at` lies at or below `lsn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sample {
    at: Instant,
    lsn: u64,
}

/// A replica's lag from the primary's samples (oldest first, their
/// positions never decreasing), its `replay_lsn` (`None`: it has reported
/// none) and the `replay_lag` PostgreSQL reports, at `now`.
fn lag(samples: &VecDeque<Sample>, now: Instant, replay: Option<u64>, reported: Option<Duration>) -> Lag {
    let reported = reported.unwrap_or_default();
    let Some(replay) = replay else {
        return Lag { at_least: reported, at_most: None };
    };
    if samples.back().is_some_and(|s| s.lsn <= replay) {
        // Caught up with the position just read: no lag (within a round trip).
        return Lag { at_least: Duration::ZERO, at_most: Some(Duration::ZERO) };
    }
    let at_most = samples.iter().rev().find(|s| s.lsn <= replay).map(|s| now.saturating_duration_since(s.at));
    let behind = samples.iter().find(|s| s.lsn > replay).map(|s| now.saturating_duration_since(s.at)).unwrap_or_default();
    let at_least = behind.max(reported).min(at_most.unwrap_or(Duration::MAX));
    Lag { at_least, at_most }
}

/// How many of the oldest samples no replica needs any more: those before
/// the newest sample every replica has replayed.
fn unneeded(samples: &VecDeque<Sample>, replays: &[Option<u64>]) -> usize {
    let newest_replayed = |replay: &Option<u64>| replay.and_then(|r| samples.iter().rposition(|s| s.lsn <= r)).unwrap_or(0);
    match replays.iter().map(newest_replayed).min() {
        Some(i) => i,
        None => samples.len().saturating_sub(1),
    }
}

/// A streaming replica as the primary sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    /// `application_name (client_addr)` from `pg_stat_replication`.
    pub name: String,
    pub lag: Lag,
}

/// The gate a backfill passes before each batch (forward or rollback): a
/// no-op without a limit, else it waits while a replica lags more than it.
/// It keeps the samples of one backfill, so make one per batch loop.
pub struct ReplicaGate {
    version: i32,
    /// What its lines call the backfill (`V3 backfill`).
    label: String,
    limit: Option<Duration>,
    samples: VecDeque<Sample>,
    checked: bool,
}

const REPLICAS_SQL: &str = "SELECT coalesce(nullif(r.application_name, ''), 'replica') || ' (' || coalesce(host(r.client_addr), 'local') || ')',
        (r.replay_lsn - '0/0'::pg_lsn)::int8,
        (extract(epoch FROM r.replay_lag) * 1000)::int8
   FROM pg_stat_replication r
  WHERE r.state IS DISTINCT FROM 'backup'
    AND NOT (r.replay_lsn IS NULL AND r.write_lsn IS NOT NULL)
    AND NOT EXISTS (SELECT 1 FROM pg_replication_slots s WHERE s.active_pid = r.pid AND s.slot_type = 'logical')
  ORDER BY 1";

impl ReplicaGate {
    /// The gate of migration `version`'s backfill, which its progress
    /// lines call `label` (the bar's label, e.g. `V3 backfill`); `limit` is
    /// [`Options::max_replica_lag`].
    pub fn new(version: i32, label: &str, limit: Option<Duration>) -> ReplicaGate {
        ReplicaGate { version, label: label.to_string(), limit, samples: VecDeque::new(), checked: false }
    }

    /// Samples the primary and reads every replica's lag. The first check
    /// fails when the role may not read the replicas' positions.
    pub fn check(&mut self, client: &mut Client) -> Result<Vec<Replica>> {
        if !self.checked {
            let row = client
                .query_one("SELECT current_user::text, pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')", &[])
                .map_err(db_err("reading the replicas' lag"))?;
            if !row.get::<_, bool>(1) {
                return Err(Error::ReplicaLagHidden { role: row.get(0) });
            }
            self.checked = true;
        }
        let at = Instant::now();
        let lsn: i64 = client.query_one("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8", &[]).map_err(db_err("reading the WAL position"))?.get(0);
        let rows = client.query(REPLICAS_SQL, &[]).map_err(db_err("reading pg_stat_replication"))?;
        let now = Instant::now();
        self.samples.push_back(Sample { at, lsn: lsn as u64 });
        let mut replays = Vec::with_capacity(rows.len());
        let mut replicas = Vec::with_capacity(rows.len());
        for row in &rows {
            let replay = row.get::<_, Option<i64>>(1).map(|l| l as u64);
            let reported = row.get::<_, Option<i64>>(2).map(|ms| Duration::from_millis(ms.max(0) as u64));
            replays.push(replay);
            replicas.push(Replica { name: row.get(0), lag: lag(&self.samples, now, replay, reported) });
        }
        let drop = unneeded(&self.samples, &replays);
        self.samples.drain(..drop);
        if self.samples.len() > MAX_SAMPLES {
            self.samples.remove(1);
        }
        Ok(replicas)
    }

    /// Returns at once without a limit; else checks, and while a replica
    /// lags more than the limit, says so (a line when the wait starts, every
    /// ten seconds and when it ends; the bar at every poll) and checks again
    /// every [`POLL`].
    pub fn wait(&mut self, client: &mut Client, ui: &mut dyn Ui) -> Result<()> {
        let Some(limit) = self.limit else { return Ok(()) };
        let v = self.version;
        let label = self.label.clone();
        let mut announce = !self.checked;
        // Since when it waits, when it last said so, and for which replicas.
        let mut started: Option<(Instant, Instant, Vec<String>)> = None;
        loop {
            let replicas = self.check(client)?;
            if std::mem::take(&mut announce) {
                let names: Vec<&str> = replicas.iter().map(|r| r.name.as_str()).collect();
                ui.progress(&match names.len() {
                    0 => format!("    {label}: no streaming replica is connected to this server; the lag limit of {} has nothing to wait for", show(limit)),
                    _ => format!("    {label}: before each batch, waits while a replica lags more than {}: {}", show(limit), names.join(", ")),
                });
            }
            let worst = replicas.iter().filter(|r| r.lag.over(limit)).max_by_key(|r| (r.lag.at_most.is_none(), r.lag.at_most, r.lag.at_least));
            let Some(worst) = worst else {
                if let Some((since, _, names)) = started {
                    let waited = since.elapsed();
                    ui.batch(BatchProgress::Waited { version: v, waited });
                    ui.progress(&format!("    {label}: waited {:.1}s for replica {}", waited.as_secs_f64(), names.join(", ")));
                }
                return Ok(());
            };
            ui.batch(BatchProgress::Waiting { version: v, replica: &worst.name, lag: worst.lag, limit });
            match &mut started {
                None => {
                    ui.progress(&format!("    {label}: waiting for replica {}: lag {}, limit {}", worst.name, worst.lag, show(limit)));
                    started = Some((Instant::now(), Instant::now(), vec![worst.name.clone()]));
                }
                Some((since, said, names)) => {
                    if !names.contains(&worst.name) {
                        names.push(worst.name.clone());
                    }
                    if said.elapsed() >= STILL_WAITING {
                        *said = Instant::now();
                        ui.progress(&format!(
                            "    {label}: still waiting for replica {} after {:.0}s: lag {}, limit {}",
                            worst.name,
                            since.elapsed().as_secs_f64(),
                            worst.lag,
                            show(limit)
                        ));
                    }
                }
            }
            std::thread::sleep(POLL);
        }
    }
}

/// A limit as the operator wrote it: `1s`, `500ms`, `1.5s`.
pub fn show(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples at t0 + each offset (ms) with each position.
    fn samples(t0: Instant, points: &[(u64, u64)]) -> VecDeque<Sample> {
        points.iter().map(|&(ms, lsn)| Sample { at: t0 + Duration::from_millis(ms), lsn }).collect()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn lag_is_bounded_by_the_samples_replayed_and_not() {
        let t0 = Instant::now();
        let s = samples(t0, &[(0, 100), (250, 200), (500, 300), (750, 400)]);
        let now = t0 + ms(800);
        // Caught up with the newest sample: no lag, whatever replay_lag said before.
        assert_eq!(lag(&s, now, Some(400), Some(ms(3000))), Lag { at_least: ms(0), at_most: Some(ms(0)) });
        assert_eq!(lag(&s, now, Some(500), None), Lag { at_least: ms(0), at_most: Some(ms(0)) });
        // Replayed 200 (taken at 250 ms) but not 300 (500 ms): between 300 and 550 ms behind.
        assert_eq!(lag(&s, now, Some(250), None), Lag { at_least: ms(300), at_most: Some(ms(550)) });
        // An exact position counts as replayed.
        assert_eq!(lag(&s, now, Some(200), None), Lag { at_least: ms(300), at_most: Some(ms(550)) });
        // replay_lag raises the lower bound, never past the upper one.
        assert_eq!(lag(&s, now, Some(250), Some(ms(400))).at_least, ms(400));
        assert_eq!(lag(&s, now, Some(250), Some(ms(9000))).at_least, ms(550));
        // Behind every sample: at least as old as the oldest, no upper bound.
        assert_eq!(lag(&s, now, Some(50), None), Lag { at_least: ms(800), at_most: None });
        // No replay position reported: unknown, over any limit.
        let unknown = lag(&s, now, None, None);
        assert_eq!(unknown, Lag { at_least: ms(0), at_most: None });
        assert!(unknown.over(Duration::from_secs(3600)));
        assert_eq!(unknown.to_string(), "not measured yet");
    }

    #[test]
    fn the_first_check_of_a_replica_already_behind_waits() {
        // One sample only (the first check): a replica behind it has
        // replayed nothing the gate saw, so it waits for the next poll.
        let t0 = Instant::now();
        let s = samples(t0, &[(0, 1000)]);
        let l = lag(&s, t0 + ms(2), Some(900), None);
        assert!(l.over(Duration::from_secs(1)), "{l:?}");
        assert!(!lag(&s, t0 + ms(2), Some(1000), None).over(Duration::ZERO));
    }

    #[test]
    fn over_compares_the_upper_bound_with_the_limit() {
        let l = Lag { at_least: ms(300), at_most: Some(ms(1200)) };
        assert!(l.over(Duration::from_secs(1)));
        assert!(!l.over(ms(1200)));
        assert_eq!(l.to_string(), "1.2s");
        assert_eq!(Lag { at_least: ms(3250), at_most: None }.to_string(), "at least 3.2s");
    }

    #[test]
    fn samples_no_replica_needs_are_dropped() {
        let t0 = Instant::now();
        let s = samples(t0, &[(0, 100), (250, 200), (500, 300), (750, 400)]);
        // The slower replica replayed 200 (index 1): everything before it goes.
        assert_eq!(unneeded(&s, &[Some(400), Some(250)]), 1);
        // One has reported nothing: everything stays.
        assert_eq!(unneeded(&s, &[Some(400), None]), 0);
        // No replica: only the newest sample stays.
        assert_eq!(unneeded(&s, &[]), 3);
    }

    #[test]
    fn limits_read_as_written() {
        assert_eq!(show(Duration::from_secs(1)), "1s");
        assert_eq!(show(ms(500)), "500ms");
        assert_eq!(show(ms(1500)), "1.5s");
    }
}
