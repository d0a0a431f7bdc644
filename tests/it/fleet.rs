//! Fleets (docs/fleet.md): one set rolled across many databases, group by group.
//! Five PostgreSQL servers on a private Docker network, one stopped in the
//! middle of its group and restarted (the re-run completes the fleet, every
//! migration applied exactly once per database); a canary whose check says
//! ROLLBACK (no other database changes); discovery from a catalog, status,
//! validate, rollback and history across the fleet; usage and file errors.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use phasegate::testing::Container;

use crate::harness::json::{DbState, HaltReason, PhaseCell, PhaseState, Verdict};
use crate::harness::{exit, fixture, log_dir, on, Cmd, Output, TestDb};

const PASSWORD: &str = "fleet-s3cret";

/// Every tenant database starts with the application's `users` table.
fn prepare(url: &str, emails: &[&str]) {
    let mut c = phasegate::connect(url, "phasegate-test").expect("connect");
    c.batch_execute("CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL)").unwrap();
    for (i, e) in emails.iter().enumerate() {
        c.execute("INSERT INTO users VALUES ($1, $2)", &[&(i as i32 + 1), e]).unwrap();
    }
}

const GOOD: &[&str] = &["a@one.test", "b@two.test", "c@two.test"];

/// Each version's ledger rows: refinery history and phasegate_applied,
/// counted per version (empty when no migration is recorded). A migrate
/// cut off while creating the ledger leaves refinery's table without
/// phasegate's: its versions then count 0 phasegate rows.
fn ledger_counts(url: &str) -> BTreeMap<i32, (i64, i64)> {
    let mut c = phasegate::connect(url, "phasegate-test").expect("connect");
    let (history, applied): (bool, bool) = c
        .query_one("SELECT to_regclass('refinery_schema_history') IS NOT NULL, to_regclass('phasegate_applied') IS NOT NULL", &[])
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    if !history {
        return BTreeMap::new();
    }
    let ours = if applied { "SELECT version, count(*) AS n FROM phasegate_applied GROUP BY version" } else { "SELECT NULL::int AS version, 0::bigint AS n WHERE false" };
    c.query(
        &format!(
            "SELECT h.version, h.n, coalesce(a.n, 0) FROM (SELECT version, count(*) AS n FROM refinery_schema_history GROUP BY version) h
             LEFT JOIN ({ours}) a USING (version) ORDER BY 1"
        ),
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), (r.get(1), r.get(2))))
    .collect()
}

/// No ledger table at all: nothing connected and wrote to this database.
fn assert_untouched(url: &str, what: &str) {
    let mut c = phasegate::connect(url, "phasegate-test").expect("connect");
    let tables: Vec<String> = c
        .query(
            "SELECT t FROM unnest(ARRAY['refinery_schema_history', 'phasegate_applied', 'phasegate_runs', 'phasegate_batches']) t WHERE to_regclass(t) IS NOT NULL",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(tables.is_empty(), "{what}: ledger tables {tables:?}");
}

fn applied_once(versions: &[i32]) -> BTreeMap<i32, (i64, i64)> {
    versions.iter().map(|v| (*v, (1, 1))).collect()
}

/// The state of each database in a fleet run's JSON.
fn states(out: &Output) -> BTreeMap<String, DbState> {
    out.report().fleet().databases.iter().map(|d| (d.database.clone(), d.state)).collect()
}

#[track_caller]
fn expect_states(out: &Output, want: &[(&str, DbState)]) {
    let want: BTreeMap<String, DbState> = want.iter().map(|(d, s)| (d.to_string(), *s)).collect();
    assert_eq!(states(out), want, "{out:?}");
}

/// Audit rows of one fleet run on a database.
fn audit_rows(url: &str, fleet_run: &str) -> i64 {
    let mut c = phasegate::connect(url, "phasegate-test").expect("connect");
    c.query_one("SELECT count(*) FROM phasegate_runs WHERE fleet_run = $1::text::uuid", &[&fleet_run]).unwrap().get(0)
}

/// A fleet file with the databases (name, variable) and the groups given as TOML.
fn fleet_file(dir: &Path, dbs: &[(&str, &str)], groups: &str) -> String {
    let mut text = String::new();
    for (name, var) in dbs {
        text.push_str(&format!("[[database]]\nname = \"{name}\"\nurl_env = \"{var}\"\n\n"));
    }
    text.push_str(groups);
    let path = dir.join("fleet.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// PostgreSQL servers on a private network (durable: a server stopped
/// and started again keeps its databases); they and the network are
/// removed when this is dropped, also when the test panics.
struct Servers {
    containers: Vec<Container>,
}

impl Servers {
    fn start(n: usize) -> Servers {
        let network = format!("phasegate-fleet-{}", std::process::id());
        let containers = phasegate::testing::container()
            .password(PASSWORD)
            .durable(true)
            .network(&network)
            .start_many(n)
            .unwrap_or_else(|e| panic!("no PostgreSQL containers for the fleet test: {e}\nto run it: {}", phasegate_cli::testing::INSTALL_HINT));
        Servers { containers }
    }

    /// The URL of server `i` (its published port changes on a restart).
    fn url(&self, i: usize) -> String {
        self.containers[i].url().expect("a published port")
    }

    /// Stops server `i` the way an operator's shutdown does (fast shutdown:
    /// sessions are ended, transactions aborted) and waits for it to be down.
    fn stop(&self, i: usize) {
        let id = self.containers[i].id();
        let out = std::process::Command::new("docker").args(["kill", "--signal", "SIGINT", id]).output().expect("running docker");
        assert!(out.status.success(), "docker kill: {}", String::from_utf8_lossy(&out.stderr));
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.containers[i].is_running() {
            assert!(Instant::now() < deadline, "server {i} did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn fleet_survives_a_server_stopped_mid_group_and_resumes() {
    let servers = Servers::start(5);
    let names = ["canary", "a1", "a2", "b1", "b2"];
    let vars = ["FLEET_CANARY_URL", "FLEET_A1_URL", "FLEET_A2_URL", "FLEET_B1_URL", "FLEET_B2_URL"];
    for i in 0..5 {
        prepare(&servers.url(i), GOOD);
    }
    let tmp = tempfile::tempdir().unwrap();
    let dbs: Vec<(&str, &str)> = names.iter().copied().zip(vars.iter().copied()).collect();
    let groups = "[[group]]\nname = \"canary\"\ndatabases = [\"canary\"]\n\n\
                  [[group]]\nname = \"wave-a\"\ndatabases = [\"a1\", \"a2\"]\nparallel = 2\non_error = \"halt\"\n\n\
                  [[group]]\nname = \"wave-b\"\ndatabases = [\"b1\", \"b2\"]\nparallel = 2\non_error = \"halt\"\n";
    let file = fleet_file(tmp.path(), &dbs, groups);
    let dir = fixture("fleet");
    let command = |servers: &Servers| {
        let mut cmd = Cmd::new(&["migrate", "--fleet", &file, "--lock-wait", "120s", "--format", "json"]).dir(&dir).logs(log_dir());
        for (i, var) in vars.iter().enumerate() {
            cmd = cmd.env(var, &servers.url(i));
        }
        cmd
    };

    // a2's migration lock is held, so its worker waits in the middle of
    // wave-a; its server goes away while the lock is still held, so a2
    // cannot get ahead of the stop however loaded the machine is.
    let mut holder = phasegate::connect(&servers.url(2), "holder-under-test").unwrap();
    phasegate::acquire_lock(&mut holder, Duration::ZERO).unwrap();
    let child = command(&servers).spawn();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let asking: i64 = holder
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'phasegate migrate --fleet%' AND query LIKE '%pg_try_advisory_lock%'",
                &[],
            )
            .unwrap()
            .get(0);
        if asking > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the fleet never asked for a2's migration lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    servers.stop(2);
    drop(holder); // its session ended with the server, and the lock with it
    let out = child.wait();
    assert_eq!(out.code, exit::ERROR, "an unreachable database fails the run: {out:?}");
    expect_states(&out, &[("canary", DbState::Done), ("a1", DbState::Done), ("a2", DbState::Unreachable), ("b1", DbState::NotStarted), ("b2", DbState::NotStarted)]);
    let doc = out.report();
    let fleet = doc.fleet();
    let run1 = fleet.fleet_run.clone();
    let halt = fleet.halt.as_ref().unwrap_or_else(|| panic!("no halt: {doc:#?}"));
    assert_eq!(halt.group, "wave-a", "{doc:#?}");
    assert_eq!(halt.reason, HaltReason::Error);
    let a2 = &fleet.databases[2];
    assert!(a2.error.as_deref().unwrap().contains("postgres:***@127.0.0.1"), "the error names the server without its password: {a2:?}");
    assert!(!out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD), "a password in the output: {out:?}");
    // Every ledger that can be read is consistent: done where the run got, untouched after the halt.
    for i in [0, 1] {
        assert_eq!(ledger_counts(&servers.url(i)), applied_once(&[1, 2, 3]), "{}", names[i]);
        assert_eq!(audit_rows(&servers.url(i), &run1), 1, "{} records the fleet run", names[i]);
    }
    for i in [3, 4] {
        assert!(ledger_counts(&servers.url(i)).is_empty(), "{} must not be touched after the halt", names[i]);
    }

    // The server comes back; the same command completes the fleet.
    servers.containers[2].start_again(Duration::from_secs(60)).expect("restarting a2's server");
    assert!(ledger_counts(&servers.url(2)).is_empty(), "a2's migration never started");
    let out = command(&servers).process();
    assert_eq!(out.code, exit::OK, "{out:?}");
    expect_states(&out, &[("canary", DbState::AlreadyDone), ("a1", DbState::AlreadyDone), ("a2", DbState::Done), ("b1", DbState::Done), ("b2", DbState::Done)]);
    let run2 = out.report().fleet().fleet_run.clone();
    for (i, name) in names.iter().enumerate() {
        let url = servers.url(i);
        assert_eq!(ledger_counts(&url), applied_once(&[1, 2, 3]), "every migration applied exactly once on {name}");
        let filled: i64 = phasegate::connect(&url, "t").unwrap().query_one("SELECT count(*) FROM users WHERE domain IS NOT NULL", &[]).unwrap().get(0);
        assert_eq!(filled, 3, "{name}");
        // Done databases were skipped without an audit row; the others record the second run.
        assert_eq!(audit_rows(&url, &run2), if i < 2 { 0 } else { 1 }, "{name}");
    }
    let history = on(&servers.url(2), &dir, &["history", "--format", "json"]).run();
    let runs = history.report().runs();
    assert!(runs.iter().any(|r| r.fleet_run.as_deref() == Some(run2.as_str()) && r.fleet_member.as_deref() == Some("a2")), "history shows the fleet run: {runs:?}");

    // A third run finds everything done.
    let out = command(&servers).process();
    assert_eq!(out.code, exit::OK, "{out:?}");
    assert!(states(&out).values().all(|s| *s == DbState::AlreadyDone), "{out:?}");
}

#[test]
fn fleet_canary_rollback_verdict_changes_no_other_database() {
    let canary = TestDb::new("fleet_canary");
    let others: Vec<TestDb> = (0..4).map(|_| TestDb::new("fleet_tenant")).collect();
    // The canary's data has an email without a domain: V3's check says ROLLBACK.
    prepare(&canary.url, &["a@one.test", "nobody", "c@two.test"]);
    for o in &others {
        prepare(&o.url, GOOD);
    }
    let before: Vec<_> = others.iter().map(|o| o.snapshot()).collect();
    let tmp = tempfile::tempdir().unwrap();
    let vars = ["FLEET_T0_URL", "FLEET_T1_URL", "FLEET_T2_URL", "FLEET_T3_URL"];
    let names = ["t0", "t1", "t2", "t3"];
    let mut dbs = vec![("canary", "FLEET_CANARY_URL")];
    dbs.extend(names.iter().copied().zip(vars.iter().copied()));
    let groups = "[[group]]\nname = \"canary\"\ndatabases = [\"canary\"]\n\n[[group]]\nname = \"everyone\"\nmatch = \"*\"\nparallel = 2\non_error = \"continue\"\n";
    let file = fleet_file(tmp.path(), &dbs, groups);
    let mut cmd = Cmd::new(&["migrate", "--fleet", &file]).dir(&fixture("fleet")).logs(log_dir()).env("FLEET_CANARY_URL", &canary.url);
    for (var, db) in vars.iter().zip(&others) {
        cmd = cmd.env(var, &db.url);
    }
    let text = cmd.clone().process();
    assert_eq!(text.code, exit::ROLLBACK, "a ROLLBACK verdict exits 4: {text:?}");
    assert!(text.stdout.contains("DATABASE") && text.stdout.contains("PHASE 2"), "the table of databases by phase: {}", text.stdout);
    assert!(text.stdout.contains("halted after group canary: a check said ROLLBACK on canary"), "{}", text.stdout);
    let mut c = canary.client();
    let filled: i64 = c.query_one("SELECT count(*) FROM users WHERE domain IS NOT NULL", &[]).unwrap().get(0);
    assert_eq!(filled, 0, "the canary's failing step was rolled back");
    assert_eq!(ledger_counts(&canary.url), applied_once(&[1, 2]), "phase 1 committed on the canary, V3 did not");
    for (o, b) in others.iter().zip(&before) {
        crate::harness::assert_same_state(b, &o.snapshot(), "a database after the canary's ROLLBACK");
        assert_untouched(&o.url, &format!("no ledger, no audit row: nothing touched {}", o.name));
    }

    // Run again as JSON: the canary fails the same way, the others still wait.
    let out = cmd.args(&["--format", "json"]).process();
    assert_eq!(out.code, exit::ROLLBACK, "{out:?}");
    expect_states(&out, &[("canary", DbState::Rollback), ("t0", DbState::NotStarted), ("t1", DbState::NotStarted), ("t2", DbState::NotStarted), ("t3", DbState::NotStarted)]);
    let doc = out.report();
    assert_eq!(doc.verdict, Some(Verdict::Rollback));
    assert_eq!(doc.fleet().halt.as_ref().map(|h| h.reason), Some(HaltReason::Rollback));
    assert_eq!(doc.fleet().databases[0].verdict, Some(Verdict::Rollback));
    for o in &others {
        assert_untouched(&o.url, &format!("{} untouched after a second run", o.name));
    }
}

#[test]
fn fleet_from_a_discovery_query_status_validate_rollback_and_history() {
    let tenants: Vec<TestDb> = (0..3).map(|_| TestDb::new("fleet_disc")).collect();
    for t in &tenants {
        prepare(&t.url, GOOD);
    }
    let catalog = TestDb::new("fleet_catalog");
    let mut c = catalog.client();
    c.batch_execute("CREATE TABLE tenants (name text, url text, active boolean)").unwrap();
    for (i, t) in tenants.iter().enumerate() {
        c.execute("INSERT INTO tenants VALUES ($1, $2, true)", &[&format!("tenant-{i}"), &t.url]).unwrap();
    }
    c.execute("INSERT INTO tenants VALUES ('gone', 'postgres://nobody@127.0.0.1:1/x', false)", &[]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("fleet.toml");
    std::fs::write(
        &path,
        "[discovery]\ncatalog_env = \"FLEET_CATALOG_URL\"\nquery = \"SELECT name, url FROM tenants WHERE active ORDER BY name\"\n\n\
         [[group]]\nname = \"canary\"\ndatabases = [\"tenant-0\"]\n\n[[group]]\nname = \"rest\"\nmatch = \"tenant-*\"\nparallel = 2\n",
    )
    .unwrap();
    let file = path.to_str().unwrap();
    let dir = fixture("fleet");
    let cmd = |args: &[&str]| Cmd::new(args).args(&["--fleet", file, "--format", "json"]).dir(&dir).logs(log_dir()).env("FLEET_CATALOG_URL", &catalog.url);
    let expect_all = |out: &Output, state: DbState| {
        let names: Vec<String> = (0..3).map(|i| format!("tenant-{i}")).collect();
        expect_states(out, &names.iter().map(|d| (d.as_str(), state)).collect::<Vec<_>>());
    };

    let out = cmd(&["migrate", "--phase", "1"]).process();
    assert_eq!(out.code, exit::OK, "{out:?}");
    expect_all(&out, DbState::Done);
    let run1 = out.report().fleet().fleet_run.clone();

    let out = cmd(&["status"]).process();
    assert_eq!(out.code, exit::OK, "{out:?}");
    for d in &out.report().fleet().databases {
        assert_eq!(d.phases, [PhaseCell { phase: 1, state: PhaseState::Applied }, PhaseCell { phase: 2, state: PhaseState::Pending }], "{d:?}");
    }
    let out = cmd(&["validate"]).process();
    assert_eq!(out.code, exit::OK, "{out:?}");
    assert!(out.report().fleet().databases.iter().all(|d| d.verdict == Some(Verdict::Proceed) && !d.checks.is_empty()), "{out:?}");

    // Nobody types the confirmation (stdin is closed): asked once, refused, nothing rolled back.
    let out = cmd(&["rollback", "--phase", "1"]).process();
    assert_eq!(out.code, exit::ERROR, "{out:?}");
    expect_states(&out, &[("tenant-0", DbState::Failed), ("tenant-1", DbState::NotStarted), ("tenant-2", DbState::NotStarted)]);
    assert_eq!(out.report().fleet().halt.as_ref().map(|h| h.reason), Some(HaltReason::NotConfirmed));
    assert_eq!(out.stderr.matches("Type `rollback phase 1` to continue").count(), 1, "asked once: {}", out.stderr);
    for t in &tenants {
        assert_eq!(ledger_counts(&t.url), applied_once(&[1, 2]), "nothing rolled back on {}", t.name);
    }

    let out = cmd(&["rollback", "--phase", "1", "--yes"]).process();
    assert_eq!(out.code, exit::OK, "{out:?}");
    expect_all(&out, DbState::Done);
    for t in &tenants {
        assert!(ledger_counts(&t.url).is_empty(), "phase 1 rolled back on {}", t.name);
        assert_eq!(audit_rows(&t.url, &run1), 1);
    }
    let out = cmd(&["rollback", "--phase", "1", "--yes"]).process();
    assert_eq!(out.code, exit::OK, "{out:?}");
    expect_all(&out, DbState::AlreadyDone);
    let out = cmd(&["migrate"]).process();
    assert_eq!(out.code, exit::OK, "{out:?}");
    expect_all(&out, DbState::Done);
    for t in &tenants {
        assert_eq!(ledger_counts(&t.url), applied_once(&[1, 2, 3]), "{}", t.name);
    }

    // A query of the wrong shape is an error naming the file and line of the query.
    let text = std::fs::read_to_string(&path).unwrap().replace("SELECT name, url FROM", "SELECT name FROM");
    std::fs::write(&path, text).unwrap();
    let out = cmd(&["status"]).process();
    assert_eq!(out.code, exit::ERROR, "{out:?}");
    assert_eq!(
        out.report().error.unwrap_or_default(),
        format!("{file}:3: discovery query: it returned 1 column(s); it must return a database's name and its URL").as_str(),
        "{out:?}"
    );
}

#[test]
fn fleet_usage_and_file_errors_name_what_is_wrong() {
    let dir = fixture("fleet");
    let out = Cmd::new(&["migrate"]).dir(&dir).logs(log_dir()).run();
    assert_eq!(out.code, exit::USAGE, "{out:?}");
    assert!(out.stderr.contains("--database-url <URL> (or DATABASE_URL), or --fleet <FILE>"), "{}", out.stderr);
    let out = Cmd::new(&["history"]).dir(&dir).logs(log_dir()).run();
    assert_eq!(out.code, exit::USAGE, "{out:?}");

    let tmp = tempfile::tempdir().unwrap();
    let file = fleet_file(
        tmp.path(),
        &[("canary", "PHASEGATE_FLEET_TEST_UNSET_VARIABLE")],
        "[[group]]\nname = \"canary\"\ndatabases = [\"canary\"]\n",
    );
    let out = Cmd::new(&["migrate", "--fleet", &file]).dir(&dir).logs(log_dir()).run();
    assert_eq!(out.code, exit::ERROR, "{out:?}");
    assert_eq!(
        out.error_line(),
        format!("{file}:2: database canary: environment variable PHASEGATE_FLEET_TEST_UNSET_VARIABLE is not set (it holds the database's URL)")
    );
    let out = Cmd::new(&["migrate", "--fleet", &file, "--database-url", "postgres://u@h/db"]).dir(&dir).logs(log_dir()).run();
    assert_eq!(out.code, exit::USAGE, "{out:?}");
    assert!(out.error_line().starts_with("--fleet and --database-url cannot be used together"), "{out:?}");

    std::fs::write(&file, "[[database]]\nname = \"canary\"\nurl = \"postgres://u:pw@h/db\"\n").unwrap();
    let out = Cmd::new(&["status", "--fleet", &file]).dir(&dir).logs(log_dir()).run();
    assert_eq!(out.code, exit::ERROR, "{out:?}");
    assert!(out.error_line().starts_with(&format!("{file}:3: unknown field `url`")), "{out:?}");
    assert!(!out.stderr.contains("pw@"), "{out:?}");
}

#[test]
fn fleet_review_halts_after_the_group_unless_accepted() {
    // The same set with V3's check as a warning: an email without a domain asks for a look.
    let set = crate::harness::copy_set(&fixture("fleet"));
    let v3 = set.path().join("validations/V3__backfill_domain.sql");
    let text = std::fs::read_to_string(&v3).unwrap().replace("-- severity: critical", "-- severity: warning");
    std::fs::write(&v3, text).unwrap();
    let dbs: Vec<TestDb> = (0..3).map(|_| TestDb::new("fleet_review")).collect();
    for d in &dbs {
        prepare(&d.url, &["a@one.test", "nobody"]);
    }
    let tmp = tempfile::tempdir().unwrap();
    let groups = "[[group]]\nname = \"canary\"\ndatabases = [\"canary\"]\n\n[[group]]\nname = \"wave\"\nmatch = \"*\"\nparallel = 2\n";
    let file = fleet_file(tmp.path(), &[("canary", "FLEET_R0_URL"), ("t1", "FLEET_R1_URL"), ("t2", "FLEET_R2_URL")], groups);
    let cmd = |extra: &[&str]| {
        Cmd::new(&["migrate", "--fleet", &file, "--format", "json"])
            .args(extra)
            .dir(set.path())
            .logs(log_dir())
            .env("FLEET_R0_URL", &dbs[0].url)
            .env("FLEET_R1_URL", &dbs[1].url)
            .env("FLEET_R2_URL", &dbs[2].url)
    };
    let out = cmd(&[]).process();
    assert_eq!(out.code, exit::REVIEW, "REVIEW exits 3: {out:?}");
    expect_states(&out, &[("canary", DbState::Done), ("t1", DbState::NotStarted), ("t2", DbState::NotStarted)]);
    assert_eq!(out.report().fleet().halt.as_ref().map(|h| h.reason), Some(HaltReason::Review));
    assert_eq!(ledger_counts(&dbs[0].url), applied_once(&[1, 2, 3]), "REVIEW commits on the canary");
    assert!(ledger_counts(&dbs[1].url).is_empty());

    let out = cmd(&["--accept-review"]).process();
    assert_eq!(out.code, exit::REVIEW, "the wave's own verdicts are REVIEW: {out:?}");
    expect_states(&out, &[("canary", DbState::AlreadyDone), ("t1", DbState::Done), ("t2", DbState::Done)]);
    assert!(out.report().fleet().halt.is_none(), "{out:?}");
    for d in &dbs {
        assert_eq!(ledger_counts(&d.url), applied_once(&[1, 2, 3]), "{}", d.name);
    }
}

/// The sessions of database `db` the fleet run holds (its own connection
/// and its lock observers), as the server sees them.
fn fleet_sessions(c: &mut postgres::Client, db: &str) -> i64 {
    let q = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND (application_name LIKE 'phasegate migrate --fleet%' OR application_name LIKE 'phasegate lock %')";
    c.query_one(q, &[&db]).unwrap().get(0)
}

/// Holds the `users` table of `url` locked until the fleet's session
/// waits for it; then counts the fleet's sessions on that database,
/// lets go, and waits for the command.
fn sessions_while_blocked(url: &str, db: &str, cmd: Cmd) -> (Output, i64) {
    let mut holder = phasegate::connect(url, "holder-under-test").unwrap();
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE").unwrap();
    let child = cmd.spawn();
    let mut watch = phasegate::connect(url, "watch-under-test").unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'phasegate migrate --fleet%' AND wait_event_type = 'Lock'";
    while watch.query_one(waiting, &[&db]).unwrap().get::<_, i64>(0) == 0 {
        assert!(Instant::now() < deadline, "the fleet's migration never waited for the held table");
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen = fleet_sessions(&mut watch, db);
    tx.rollback().unwrap();
    (child.wait(), seen)
}

/// Each database's timings are in the JSON, and the runner's own count of
/// its connections per server, cross-checked by the server while a
/// migration waits: one per running database (so at parallel 1, exactly
/// one), two more per database while `--max-lock-hold` has its lock tracer
/// and blocker watch observe the run.
#[test]
fn fleet_reports_timings_and_one_connection_per_running_database() {
    let dbs: Vec<TestDb> = (0..4).map(|_| TestDb::new("fleet_count")).collect();
    for d in &dbs {
        prepare(&d.url, GOOD);
    }
    let tmp = tempfile::tempdir().unwrap();
    let names = [("c0", "FLEET_C0_URL"), ("c1", "FLEET_C1_URL"), ("c2", "FLEET_C2_URL"), ("c3", "FLEET_C3_URL")];
    let groups = "[[group]]\nname = \"canary\"\ndatabases = [\"c0\"]\n\n[[group]]\nname = \"rest\"\nmatch = \"c*\"\n";
    let file = fleet_file(tmp.path(), &names, groups);
    let mut cmd = Cmd::new(&["migrate", "--fleet", &file, "--format", "json", "--lock-timeout", "60s"]).dir(&fixture("fleet")).logs(log_dir());
    for ((_, var), db) in names.iter().zip(&dbs) {
        cmd = cmd.env(var, &db.url);
    }
    let (out, seen) = sessions_while_blocked(&dbs[0].url, &dbs[0].name, cmd.clone().args(&["--phase", "1"]));
    assert_eq!(out.code, exit::OK, "{out:?}");
    assert_eq!(seen, 1, "the server saw one session of the run on c0 while its migration waited");
    let fleet = out.report().fleet().clone();
    assert_eq!(fleet.servers.len(), 1, "every database is on the test server: {:?}", fleet.servers);
    assert_eq!(fleet.servers[0].databases, 4);
    assert_eq!(fleet.servers[0].peak_connections, 1, "parallel 1 everywhere: one connection at a time: {:?}", fleet.servers);
    for d in &fleet.databases {
        let t = d.timings;
        assert_eq!(d.state, DbState::Done, "{d:?}");
        for (what, ms) in [("connect", t.connect_ms), ("ledger", t.ledger_ms), ("lock", t.lock_ms), ("migrate", t.migrate_ms), ("checks", t.checks_ms), ("audit", t.audit_ms)] {
            assert!(ms > 0.0, "{}: {what} was measured: {t:?}", d.database);
        }
        let spans = t.connect_ms + t.ledger_ms + t.lock_ms + t.migrate_ms + t.checks_ms + t.audit_ms + t.close_ms;
        assert!(spans <= d.duration_ms, "{}: the spans are parts of its time: {t:?} of {} ms", d.database, d.duration_ms);
    }

    // The lock trace asked for: the tracer and the blocker watch connect too.
    let (out, seen) = sessions_while_blocked(&dbs[0].url, &dbs[0].name, cmd.args(&["--max-lock-hold", "600s"]));
    assert_eq!(out.code, exit::OK, "{out:?}");
    assert_eq!(seen, 3, "the server saw the run's session on c0 and its two observers");
    let fleet = out.report().fleet().clone();
    assert_eq!(fleet.servers[0].peak_connections, 3, "a database and its two observers: {:?}", fleet.servers);
    assert!(fleet.databases.iter().all(|d| d.state == DbState::Done && d.timings.migrate_ms > 0.0), "{:?}", fleet.databases);
}

/// A set of one phase per migration (and a check after it that finds
/// nothing; the first one also has one before it), in a fresh directory.
fn set_of(dir: &Path, files: &[(&str, &str, &str)]) {
    let mut manifest = String::new();
    for folder in ["migrations", "rollback", "validations"] {
        std::fs::create_dir_all(dir.join(folder)).unwrap();
    }
    for (i, (name, up, down)) in files.iter().enumerate() {
        let v = i + 1;
        std::fs::write(dir.join("migrations").join(format!("V{v}__{name}.sql")), up).unwrap();
        std::fs::write(dir.join("rollback").join(format!("V{v}__{name}.sql")), down).unwrap();
        let mut check = String::from("-- check: nothing\n-- severity: warning\n-- description: a check every migration needs\nSELECT 1 WHERE false;\n");
        if v == 1 {
            check.push_str("\n-- check: nothing_before\n-- when: before-migrate\n-- severity: warning\n-- description: a check before it\nSELECT 1 WHERE false;\n");
        }
        std::fs::write(dir.join("validations").join(format!("V{v}__{name}.sql")), check).unwrap();
        manifest.push_str(&format!("[[phase]]\nid = {v}\nname = \"{name}\"\nsummary = \"{name}\"\nversions = [{v}]\n\n"));
    }
    std::fs::write(dir.join("phases.toml"), manifest).unwrap();
}

/// A fleet database's step sends its file in one message (no lock trace
/// to feed statement by statement), each statement behind a savepoint with
/// its index noted first, in the message that opens the step's transaction
/// when no check runs before it (V2, V3); a statement that fails is still
/// named at its line (and column), nothing runs twice, and the step leaves
/// nothing.
#[test]
fn fleet_sends_a_file_at_once_and_names_the_statement_that_fails() {
    let db = TestDb::new("fleet_at_once");
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("set");
    let marks = |n: usize, first: usize| (first..first + n).map(|i| format!("INSERT INTO at_once VALUES ({i}, current_setting('phasegate.statement_at', true));\n")).collect::<String>();
    let v1 = format!("CREATE TABLE at_once (id int PRIMARY KEY, at text);\n{}CREATE INDEX at_once_at ON at_once (at);\n", marks(2, 1));
    // 33 statements: more than one message may carry; statement by statement.
    let v3 = marks(33, 10);
    set_of(
        &set,
        &[
            ("at_once", v1.as_str(), "DROP INDEX at_once_at;\nDROP TABLE at_once;\n"),
            ("fails", "CREATE TABLE fails (id int);\nINSERT INTO fails VALUES (1);\nINSERT INTO fails VALUES (1 / (SELECT count(*) FROM fails WHERE id > 1)::int);\nCREATE TABLE never (id int);\n", "DROP TABLE never;\nDROP TABLE fails;\n"),
            ("many", v3.as_str(), "DELETE FROM at_once WHERE id >= 10;\n"),
        ],
    );
    let file = fleet_file(tmp.path(), &[("d0", "FLEET_AT_ONCE_URL")], "[[group]]\nname = \"canary\"\ndatabases = [\"d0\"]\n");
    let cmd = Cmd::new(&["migrate", "--fleet", &file, "--format", "json"]).dir(&set).logs(log_dir()).env("FLEET_AT_ONCE_URL", &db.url);

    let out = cmd.clone().args(&["--phase", "1"]).process();
    assert_eq!(out.code, exit::OK, "{out:?}");
    let mut c = db.client();
    let at: Vec<(i32, Option<String>)> = c.query("SELECT id, at FROM at_once ORDER BY id", &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(at, vec![(1, Some("1".into())), (2, Some("2".into()))], "V1's four statements went in one message after its check, each with its index");

    // A runtime error (PostgreSQL gives no position): the third statement's line.
    let out = cmd.clone().args(&["--phase", "2"]).process();
    assert_eq!(out.code, exit::ERROR, "{out:?}");
    let error = out.report().fleet().databases[0].error.clone().unwrap_or_default();
    assert!(error.contains("V2__fails.sql:3") && error.contains("division by zero"), "the failing statement at its line: {error}");
    assert_eq!(db.count("SELECT count(*) FROM pg_class WHERE relname IN ('fails', 'never')"), 0, "the step left nothing");
    assert_eq!(ledger_counts(&db.url), applied_once(&[1]), "V2 is not recorded");

    // A syntax error (PostgreSQL gives a position): line and column.
    std::fs::write(set.join("migrations/V2__fails.sql"), "CREATE TABLE fails (id int);\nINSERT INTO fails VALUES (1;\nCREATE TABLE never (id int);\n").unwrap();
    let out = cmd.clone().args(&["--phase", "2"]).process();
    assert_eq!(out.code, exit::ERROR, "{out:?}");
    let error = out.report().fleet().databases[0].error.clone().unwrap_or_default();
    assert!(error.contains("V2__fails.sql:2:28"), "the syntax error at its line and column: {error}");
    assert_eq!(db.count("SELECT count(*) FROM pg_class WHERE relname IN ('fails', 'never')"), 0, "the step left nothing");

    // Past the most one message carries: statement by statement, no index noted.
    std::fs::write(set.join("migrations/V2__fails.sql"), "CREATE TABLE fails (id int, at text);\nINSERT INTO fails VALUES (1, current_setting('phasegate.statement_at', true));\nCREATE TABLE never (id int);\n").unwrap();
    let out = cmd.clone().args(&["--phase", "3"]).process();
    assert_eq!(out.code, exit::OK, "{out:?}");
    assert_eq!(db.count("SELECT count(*) FROM fails WHERE at = '1'"), 1, "V2 went in the message that opened its transaction, with its index");
    assert_eq!(db.count("SELECT count(*) FROM at_once WHERE id >= 10 AND coalesce(at, '') = ''"), 33, "33 statements ran one by one (V2 before them left the setting empty, not unset)");

    // Phase by phase back to the start (the rollback files run the same way).
    for phase in ["3", "2", "1"] {
        let out = Cmd::new(&["rollback", "--fleet", &file, "--format", "json", "--phase", phase, "--yes"]).dir(&set).logs(log_dir()).env("FLEET_AT_ONCE_URL", &db.url).process();
        assert_eq!(out.code, exit::OK, "phase {phase}: {out:?}");
    }
    assert_eq!(db.count("SELECT count(*) FROM pg_class WHERE relname IN ('at_once', 'fails', 'never')"), 0, "every phase rolled back");
}
