//! Replica awareness (docs/safety.md, `--max-replica-lag`): a primary and a
//! streaming replica made with pg_basebackup, two containers on a private
//! Docker network this test creates and removes. With replay paused on the
//! replica a batched backfill waits before its first batch, naming the
//! replica, and no batch commits while it waits; resuming replay lets it
//! finish, and the replica replays every row. A role that may not read the
//! replicas' positions is refused at the first batch instead of silently
//! not waiting.

use std::path::Path;
use std::time::{Duration, Instant};

use phasegate::testing::Container;
use postgres::Client;

use crate::harness::{exit, on, TestDb};

const PASSWORD: &str = "replica-s3cret";
const ROWS: i64 = 20_000;
const DATA: &str = "/var/lib/postgresql/data";

/// A primary and its streaming replica on a private network; the
/// containers, then the network, are removed when this is dropped, also
/// when the test panics.
struct Pair {
    primary: Option<Container>,
    replica: Option<Container>,
    network: String,
}

impl Drop for Pair {
    fn drop(&mut self) {
        drop(self.replica.take());
        drop(self.primary.take());
        // testcontainers removes the network it created with its last
        // container; this is in case it did not.
        let _ = std::process::Command::new("docker").args(["network", "rm", &self.network]).output();
    }
}

/// What the replica runs before the image's entry point: a base backup of
/// the primary (retried while the primary's new pg_hba.conf line is being
/// loaded) that writes the standby settings (`-R`); the entry point then
/// finds the data directory initialised and starts the server as a standby.
fn replica_prelude(primary: &str) -> String {
    format!(
        "set -e; mkdir -p {DATA} /var/run/postgresql; chown postgres:postgres {DATA} /var/run/postgresql; chmod 700 {DATA}; \
         n=0; until setpriv --reuid=postgres --regid=postgres --init-groups /usr/lib/postgresql/15/bin/pg_basebackup \
         -h {primary} -U postgres -D {DATA} -R -X stream; do n=$((n+1)); [ $n -lt 60 ] || exit 1; rm -rf {DATA}/*; sleep 1; done"
    )
}

impl Pair {
    fn start() -> Pair {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or_default();
        let unique = format!("{}-{nanos}", std::process::id());
        let network = format!("phasegate-replica-{unique}");
        let primary_name = format!("phasegate-primary-{unique}");
        let mut pair = Pair { primary: None, replica: None, network: network.clone() };
        // Durable: the replica sees commits as a production primary sends them.
        let primary = phasegate::testing::container()
            .password(PASSWORD)
            .durable(true)
            .network(&network)
            .name(&primary_name)
            .startup_timeout(Duration::from_secs(120))
            .start()
            .unwrap_or_else(|e| panic!("no primary container for the replica test: {e}\nto run it: {}", phasegate_cli::testing::INSTALL_HINT));
        // The image allows every database but not replication from the
        // network: add that line and reload.
        primary
            .exec_sh(&format!("echo 'host replication all all scram-sha-256' >> {DATA}/pg_hba.conf"))
            .expect("adding a replication line to the primary's pg_hba.conf");
        pair.primary = Some(primary);
        pair.client(Side::Primary).batch_execute("SELECT pg_reload_conf()").unwrap();
        let replica = phasegate::testing::container()
            .password(PASSWORD)
            .network(&network)
            .env("PGPASSWORD", PASSWORD)
            .setting("cluster_name", "replica1")
            .setting("hot_standby", "on")
            .prelude(&replica_prelude(&primary_name))
            .ready_when("database system is ready to accept read-only connections")
            .startup_timeout(Duration::from_secs(180))
            .start()
            .unwrap_or_else(|e| panic!("no replica container: {e}"));
        pair.replica = Some(replica);
        pair.wait_streaming();
        pair
    }

    fn url(&self, side: Side) -> String {
        let container = match side {
            Side::Primary => &self.primary,
            Side::Replica => &self.replica,
        };
        container.as_ref().expect("started").url().expect("a published port")
    }

    fn client(&self, side: Side) -> Client {
        phasegate::connect(&self.url(side), "phasegate-test").unwrap_or_else(|e| panic!("{side:?}: {e}"))
    }

    /// Until the primary sees the replica streaming.
    fn wait_streaming(&self) {
        let mut c = self.client(Side::Primary);
        until("the replica streams from the primary", || {
            c.query_one("SELECT count(*) FROM pg_stat_replication WHERE application_name = 'replica1' AND state = 'streaming'", &[]).unwrap().get::<_, i64>(0) == 1
        });
    }
}

#[derive(Debug, Clone, Copy)]
enum Side {
    Primary,
    Replica,
}

/// Polls `what` until it holds; a minute at most (a bound on a hang, not a
/// timing assertion).
fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within a minute");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The set: `events` with 20k rows (the baseline), and a backfill of
/// `events.kind` in batches of 500 (40 batches).
fn write_set(dir: &Path) {
    let files = [
        (
            "phases.toml",
            "[[phase]]\nid = 0\nname = \"baseline\"\nsummary = \"events\"\nversions = [1]\nreversible = false\nreason = \"the existing schema\"\nbaseline = true\n\n\
             [[phase]]\nid = 1\nname = \"data\"\nsummary = \"events.kind backfilled in batches\"\nversions = [2]\n",
        ),
        (
            "migrations/V1__events.sql",
            "CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, payload text NOT NULL, kind text);\n\
             INSERT INTO events (payload) SELECT CASE WHEN g % 3 = 0 THEN 'click:' ELSE 'view:' END || g FROM generate_series(1, 20000) g;\n",
        ),
        (
            "migrations/V2__backfill_events_kind.sql",
            "-- phasegate: batch 500\nUPDATE events SET kind = split_part(payload, ':', 1)\nWHERE id IN (\n    SELECT id FROM events\n    WHERE (:last_key IS NULL OR id > :last_key) AND kind IS NULL\n    ORDER BY id\n    LIMIT :batch_size)\nRETURNING id;\n",
        ),
        ("rollback/V2__backfill_events_kind.sql", "UPDATE events SET kind = NULL WHERE kind IS NOT NULL;\n"),
        ("validations/V1__events.sql", "-- check: events_exist\n-- metric: count\n-- proceed: >= 20000\nSELECT count(*) FROM events;\n"),
        ("validations/V2__backfill_events_kind.sql", "-- check: every_event_has_a_kind\nSELECT id FROM events WHERE kind IS NULL;\n"),
    ];
    for (rel, text) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

fn count(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).unwrap().get(0)
}

const BACKFILLED: &str = "SELECT count(*) FROM events WHERE kind IS NOT NULL";
const BATCH_ROWS: &str = "SELECT coalesce((SELECT rows_done FROM phasegate_batches WHERE version = 2), 0)";

#[test]
fn replica_lag_pauses_the_backfill_until_replay_resumes() {
    let pair = Pair::start();
    let tmp = tempfile::tempdir().unwrap();
    write_set(tmp.path());
    let url = pair.url(Side::Primary);
    on(&url, tmp.path(), &["migrate", "--phase", "0"]).run().expect_exit(exit::OK);
    let mut primary = pair.client(Side::Primary);
    let mut replica = pair.client(Side::Replica);
    until("the replica has the baseline's rows", || {
        replica.query_one("SELECT count(*) FROM pg_class WHERE relname = 'events'", &[]).unwrap().get::<_, i64>(0) == 1 && count(&mut replica, "SELECT count(*) FROM events") == ROWS
    });

    // Replay stops on the replica; the primary writes on.
    replica.batch_execute("SELECT pg_wal_replay_pause()").unwrap();
    primary.batch_execute("CREATE TABLE wal_filler AS SELECT g FROM generate_series(1, 10000) g").unwrap();
    until("replay is paused behind the primary", || {
        let paused: String = replica.query_one("SELECT pg_get_wal_replay_pause_state()", &[]).unwrap().get(0);
        let behind: bool = primary
            .query_one("SELECT bool_and(replay_lsn < pg_current_wal_lsn()) FROM pg_stat_replication WHERE application_name = 'replica1'", &[])
            .unwrap()
            .get::<_, Option<bool>>(0)
            .unwrap_or(false);
        paused == "paused" && behind
    });

    let mut child = on(&url, tmp.path(), &["migrate", "--max-replica-lag", "1s"]).spawn();
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "migrate never said it waits for the replica: {lines:#?}");
        if let Some(l) = child.next_line(Duration::from_millis(200)) {
            lines.push(l.to_string());
            if l.contains("waiting for replica replica1") {
                break;
            }
        }
        assert!(matches!(child.child.try_wait(), Ok(None)), "migrate exited without waiting: {lines:#?}");
    }
    let waiting = lines.last().unwrap().clone();
    assert!(waiting.contains("limit 1s"), "{waiting}");
    assert!(lines.iter().any(|l| l.contains("waits while a replica lags more than 1s: replica1 (")), "it names the replicas it watches: {lines:#?}");

    // While replay is paused, nothing commits: the backfilled rows and the
    // batch ledger stay where they were, sample after sample.
    let mut samples = Vec::new();
    for _ in 0..8 {
        samples.push((count(&mut primary, BACKFILLED), count(&mut primary, BATCH_ROWS)));
        assert!(matches!(child.child.try_wait(), Ok(None)), "migrate ended while the replica was paused");
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(samples.iter().all(|s| *s == (0, 0)), "a batch committed while the replica lagged: {samples:?}");

    // Replay resumes: the backfill finishes.
    replica.batch_execute("SELECT pg_wal_replay_resume()").unwrap();
    let out = child.wait();
    out.expect_exit(exit::OK);
    let waited = out.stdout.lines().find(|l| l.contains("waited") && l.contains("for replica replica1")).unwrap_or_else(|| panic!("no line saying how long it waited: {out:?}"));
    assert_eq!(count(&mut primary, BACKFILLED), ROWS, "every row backfilled on the primary");
    until("the replica replays the backfill", || count(&mut replica, BACKFILLED) == ROWS);
    println!("replica test: {}", waiting.trim());
    println!("replica test: {}", waited.trim());
    println!("replica test: while waiting (backfilled rows, batch ledger rows) = {samples:?}; after: {ROWS} of {ROWS} rows backfilled on the primary and replayed on the replica");
}

/// `postgres://user:password@rest` with another user and password.
fn as_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let rest = rest.split_once('@').map(|(_, r)| r).unwrap_or(rest);
    format!("{scheme}://{user}:{password}@{rest}")
}

/// A role created for one test; dropped with the guard (after the
/// database it owns, which is dropped first).
struct Role {
    admin: String,
    name: String,
}

impl Drop for Role {
    fn drop(&mut self) {
        if let Ok(mut c) = phasegate::connect(&self.admin, "phasegate-test") {
            let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS {}", self.name));
        }
    }
}

#[test]
fn replica_lag_needs_a_role_that_can_read_the_positions() {
    let tmp = tempfile::tempdir().unwrap();
    write_set(tmp.path());
    let name = format!("phasegate_nomonitor_{}", std::process::id());
    let admin_db = TestDb::new("replica_lag_admin");
    let _role = Role { admin: admin_db.url.clone(), name: name.clone() };
    let db = TestDb::new("replica_lag_hidden");
    let mut c = db.client();
    c.batch_execute(&format!("CREATE ROLE {name} LOGIN PASSWORD 'nomonitor'; ALTER DATABASE {} OWNER TO {name}", phasegate::quote_ident(&db.name))).unwrap();
    let out = on(&as_user(&db.url, &name, "nomonitor"), tmp.path(), &["migrate", "--max-replica-lag", "1s"]).run();
    out.expect_exit(exit::ERROR);
    let err = out.error_line();
    assert!(err.contains(&format!("role {name} cannot read the replicas' positions")) && err.contains("pg_monitor"), "{err}");
    assert!(err.ends_with("or run without --max-replica-lag"), "the CLI names the flag: {err}");
    assert_eq!(count(&mut c, BACKFILLED), 0, "no batch ran");
}
