//! The test harness: one disposable PostgreSQL per test binary, a database
//! per test (cloned from a template where seed data is needed), and the CLI
//! run in-process with its output captured.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use phasegate::pg::{Backend, Server, INSTALL_HINT};

/// The repository root (the clinic set lives there).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures").join(name)
}

static SERVER: OnceLock<Server> = OnceLock::new();
static CONTAINER_ID: OnceLock<String> = OnceLock::new();

extern "C" {
    fn atexit(cb: extern "C" fn()) -> std::os::raw::c_int;
}

/// Removes this binary's container when the test process exits (statics are
/// never dropped).
extern "C" fn remove_container() {
    if let Some(id) = CONTAINER_ID.get() {
        let _ = std::process::Command::new("docker").args(["rm", "-f", "-v", id]).output();
    }
}

/// Containers left by earlier test processes that died.
fn remove_stale_containers() {
    let Ok(out) = std::process::Command::new("docker")
        .args(["ps", "-a", "--filter", "label=phasegate.disposable=1", "--format", "{{.ID}} {{.Label \"phasegate.owner-pid\"}}"])
        .output()
    else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut parts = line.split_whitespace();
        let (Some(id), Some(pid)) = (parts.next(), parts.next()) else { continue };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::process::Command::new("docker").args(["rm", "-f", "-v", id]).output();
        }
    }
}

/// The backend the tests use: PHASEGATE_TEST_DATABASE_URL, else a container
/// from PHASEGATE_PG_IMAGE (default the official image).
pub fn backend() -> Backend {
    match std::env::var("PHASEGATE_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Backend::Url(url),
        _ => Backend::Docker { image: std::env::var("PHASEGATE_PG_IMAGE").unwrap_or_else(|_| phasegate::pg::DEFAULT_IMAGE.to_string()) },
    }
}

/// The shared server; panics with what to install when none can start.
pub fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        if matches!(backend(), Backend::Docker { .. }) {
            remove_stale_containers();
        }
        let server = Server::start(&backend()).unwrap_or_else(|e| panic!("no PostgreSQL for the tests: {e}\nto run them: {INSTALL_HINT}"));
        if let Some(id) = server.container_id() {
            let _ = CONTAINER_ID.set(id.to_string());
            unsafe {
                atexit(remove_container);
            }
        }
        server
    })
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A database for one test; dropped with the guard unless the test failed,
/// when it is kept and its name printed.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub fn new(label: &str) -> TestDb {
        Self::create(label, None)
    }

    pub fn from_template(label: &str, template: &str) -> TestDb {
        Self::create(label, Some(template))
    }

    fn create(label: &str, template: Option<&str>) -> TestDb {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("t_{label}_{}_{n}", std::process::id());
        let url = server().create_database(&name, template).unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
        TestDb { name, url }
    }

    pub fn client(&self) -> postgres::Client {
        phasegate::db::connect(&self.url, "phasegate-test").expect("connect to the test database")
    }

    /// The whole-state snapshot: schema, and every table's rows (ledger excluded).
    pub fn snapshot(&self) -> phasegate::snapshot::Snapshot {
        phasegate::snapshot::take(&mut self.client(), &Default::default()).expect("snapshot")
    }

    /// The ledger tables' contents (refinery history and phasegate_applied).
    pub fn ledger(&self) -> Vec<String> {
        let mut c = self.client();
        let mut out = Vec::new();
        for q in [
            "SELECT coalesce(string_agg(version || ' ' || name || ' ' || checksum, ',' ORDER BY version), '') FROM refinery_schema_history",
            "SELECT coalesce(string_agg(version || ' ' || forward_sha256, ',' ORDER BY version), '') FROM phasegate_applied",
        ] {
            match c.query_one(q, &[]) {
                Ok(r) => out.push(r.get(0)),
                Err(_) => out.push("<no ledger>".into()),
            }
        }
        out
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept database {} for inspection: {}", self.name, phasegate::db::redact(&self.url));
            return;
        }
        let _ = server().drop_database(&self.name);
    }
}

/// A template database with the clinic set's phase 0 applied and its seed
/// loaded (100k reservations); tests clone it instead of seeding again.
pub fn clinic_seeded_template() -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| seeded_template("clinic", &repo()))
}

/// The tenant API keys set (SPEC 9.2).
pub fn tenant_keys() -> PathBuf {
    repo().join("examples/tenant-keys")
}

/// A template database with the tenant keys set's phase 0 applied and its
/// seed loaded (3000 tenants).
pub fn tenant_keys_seeded_template() -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| seeded_template("tenant_keys", &tenant_keys()))
}

/// Applies a set up to its seed phase, loads the seed and marks the
/// database as a template.
fn seeded_template(label: &str, dir: &Path) -> String {
    let name = format!("tpl_{label}_seeded_{}", std::process::id());
    let url = server().create_database(&name, None).expect("create template database");
    let set = phasegate::set::load(dir).expect("the set loads");
    let after = set.seed.as_ref().map(|s| s.after_phase).unwrap_or(0).to_string();
    let out = cli(&["migrate", "--phase", &after, "--database-url", &url, "--dir", dir.to_str().unwrap(), "--log-dir", log_dir().to_str().unwrap()], "");
    assert_eq!(out.code, 0, "baseline migrate failed: {out:?}");
    let mut client = phasegate::db::connect(&url, "phasegate-test").unwrap();
    let started = std::time::Instant::now();
    phasegate::apply::seed(&mut client, &set, None).expect("seed");
    eprintln!("seeded {label} in {} ms", started.elapsed().as_millis());
    drop(client);
    server().make_template(&name).expect("mark template");
    name
}

/// Where test runs write their logs.
pub fn log_dir() -> PathBuf {
    let d = repo().join("target/test-logs");
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// Runs the CLI in-process: `args` without the program name, `stdin` as typed input.
pub fn cli(args: &[&str], stdin: &str) -> Output {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut input = std::io::Cursor::new(stdin.as_bytes().to_vec());
    let env = phasegate_cli::Env { os_user: "tester".into(), hostname: "test-host".into(), color: false };
    let mut io = phasegate_cli::Io { out: &mut out, err: &mut err, input: &mut input };
    let argv: Vec<String> = std::iter::once("xtask".to_string()).chain(args.iter().map(|s| s.to_string())).collect();
    let code = phasegate_cli::main(argv, &mut io, &env);
    Output { code, stdout: String::from_utf8_lossy(&out).into_owned(), stderr: String::from_utf8_lossy(&err).into_owned() }
}

/// Runs a command against a database and a migration set.
pub fn run(db: &TestDb, dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut full: Vec<&str> = args.to_vec();
    let dir_s = dir.to_str().unwrap().to_string();
    let logs = log_dir().to_str().unwrap().to_string();
    full.extend(["--database-url", &db.url, "--dir", &dir_s, "--log-dir", &logs]);
    cli(&full, stdin)
}

/// Copies a migration set to a temporary folder the test may edit.
pub fn copy_set(src: &Path) -> tempfile::TempDir {
    let dst = tempfile::tempdir().unwrap();
    for sub in ["", "migrations", "rollback", "validations", "seed"] {
        let from = src.join(sub);
        if !from.is_dir() {
            continue;
        }
        std::fs::create_dir_all(dst.path().join(sub)).unwrap();
        for e in std::fs::read_dir(&from).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, dst.path().join(sub).join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    dst
}

/// Asserts two snapshots are equal, printing a unified diff when not.
#[track_caller]
pub fn assert_same_state(before: &phasegate::snapshot::Snapshot, after: &phasegate::snapshot::Snapshot, what: &str) {
    if before.schema != after.schema {
        panic!("{what}: schema differs\n{}", phasegate::snapshot::schema_diff(&before.schema, &after.schema, "before", "after"));
    }
    for (t, f) in &before.tables {
        match after.tables.get(t) {
            Some(g) if g == f => {}
            Some(g) => panic!("{what}: rows of {t} changed: {} rows {} -> {} rows {}", f.rows, f.hash, g.rows, g.hash),
            None => panic!("{what}: table {t} is gone"),
        }
    }
    if let Some(t) = after.tables.keys().find(|t| !before.tables.contains_key(*t)) {
        panic!("{what}: table {t} appeared");
    }
}

pub fn check_verdicts(doc: &serde_json::Value) -> Vec<(String, String)> {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (format!("V{} {}", c["version"], c["check"].as_str().unwrap()), c["verdict"].as_str().unwrap().to_string()))
        .collect()
}

/// Compares a normalised schema with tests/snapshots/NAME.snap.
#[track_caller]
pub fn schema_snapshot(name: &str, schema: &str) {
    insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(name, schema);
    });
}

#[track_caller]
pub fn assert_all_proceed(doc: &serde_json::Value) {
    let v = check_verdicts(doc);
    assert!(!v.is_empty(), "no checks ran: {doc:#}");
    let bad: Vec<_> = v.iter().filter(|(_, verdict)| verdict != "PROCEED").collect();
    assert!(bad.is_empty(), "checks not PROCEED: {bad:?}\n{doc:#}");
}

/// Snapshots the state, then migrates phase by phase up to `last`, asserting
/// every check PROCEEDs (and PROCEEDs again in `validate`, with no metric
/// empty: a seeded database gives each something to measure) and comparing
/// each schema with the insta snapshot `<label>_schema_after_phase_N`. Returns the snapshot after each phase
/// (index 0: before the first).
#[track_caller]
pub fn migrate_phase_by_phase(db: &TestDb, dir: &Path, label: &str, first: u32, last: u32) -> Vec<phasegate::snapshot::Snapshot> {
    let mut states = vec![db.snapshot()];
    schema_snapshot(&format!("{label}_schema_after_phase_{}", first - 1), &states[0].schema);
    for phase in first..=last {
        let out = run(db, dir, &["migrate", "--phase", &phase.to_string(), "--format", "json"], "");
        assert_eq!(out.code, 0, "migrate --phase {phase}: {out:?}");
        assert_all_proceed(&out.json());
        let doc = proceeds(db, dir, &["validate"]);
        assert_eq!(empty_metrics(&doc), Vec::<String>::new(), "validate after phase {phase}: {doc:#}");
        let snap = db.snapshot();
        schema_snapshot(&format!("{label}_schema_after_phase_{phase}"), &snap.schema);
        states.push(snap);
    }
    states
}

/// Rolls back phases `last` down to `first`, asserting each restores the
/// state before it (`states` from `migrate_phase_by_phase`), then re-applies
/// them and compares with the first forward state.
#[track_caller]
pub fn roll_back_phase_by_phase_and_reapply(db: &TestDb, dir: &Path, states: &[phasegate::snapshot::Snapshot], first: u32, last: u32) {
    for phase in (first..=last).rev() {
        let out = run(db, dir, &["rollback", "--phase", &phase.to_string(), "--yes", "--format", "json"], "");
        assert_eq!(out.code, 0, "rollback --phase {phase}: {out:?}");
        let doc = out.json();
        assert_all_proceed(&doc);
        assert!(doc["checks"].as_array().unwrap().iter().all(|c| c["when"] == "after-rollback" || c["when"] == "before-rollback"), "{doc:#}");
        assert_same_state(&states[(phase - first) as usize], &db.snapshot(), &format!("after rolling back phase {phase}"));
    }
    let out = run(db, dir, &["migrate", "--phase", &last.to_string()], "");
    assert_eq!(out.code, 0, "{out:?}");
    assert_same_state(&states[(last - first + 1) as usize], &db.snapshot(), &format!("after re-applying phases {first}-{last}"));
}

/// The `phasegate` binary (the same CLI as `cargo xtask`), for tests that
/// need processes of their own: concurrent migrators, kill -9, real output.
pub const BIN: &str = env!("CARGO_BIN_EXE_phasegate-it");

/// How long a child process may run before the harness calls it hung.
pub const PROCESS_BOUND: std::time::Duration = std::time::Duration::from_secs(300);

/// A `phasegate` process with a clean environment: no DATABASE_URL, no
/// colour, no log filter, stdin closed; stdout and stderr piped.
pub fn command(args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(BIN);
    c.args(args)
        .env_remove("DATABASE_URL")
        .env_remove("PHASEGATE_LOG")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    c
}

/// A running child whose output is read line by line on threads, so it never
/// blocks on a full pipe and the test can act on what it prints.
pub struct Child {
    pub child: std::process::Child,
    pub pid: u32,
    lines: std::sync::mpsc::Receiver<String>,
    stdout: Vec<String>,
    stderr: std::thread::JoinHandle<String>,
    stdout_done: bool,
}

impl Child {
    pub fn spawn(mut cmd: std::process::Command) -> Child {
        use std::io::BufRead;
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting {BIN}: {e}"));
        let pid = child.id();
        let out = child.stdout.take().expect("stdout is piped");
        let mut err = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut err, &mut s);
            s
        });
        Child { child, pid, lines, stdout: Vec::new(), stderr, stdout_done: false }
    }

    /// Waits for the next stdout line, up to `timeout`; `None` at the end of
    /// the output or when the timeout passes.
    pub fn next_line(&mut self, timeout: std::time::Duration) -> Option<&str> {
        if self.stdout_done {
            return None;
        }
        match self.lines.recv_timeout(timeout) {
            Ok(l) => {
                self.stdout.push(l);
                self.stdout.last().map(String::as_str)
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                self.stdout_done = true;
                None
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
        }
    }

    /// SIGKILL; false when the process had already exited.
    pub fn kill9(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None)) && self.child.kill().is_ok()
    }

    /// Waits for the exit (killing the process if it outlives
    /// [`PROCESS_BOUND`]) and returns its code (-9 when killed) and output.
    pub fn wait(mut self) -> Output {
        let deadline = std::time::Instant::now() + PROCESS_BOUND;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("waiting for the child") {
                break s;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("{BIN} (pid {}) hung for {PROCESS_BOUND:?}; killed. stdout so far: {:?}", self.pid, self.stdout);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        while let Ok(l) = self.lines.recv() {
            self.stdout.push(l);
        }
        let stderr = self.stderr.join().unwrap_or_default();
        let code = status.code().unwrap_or_else(|| -std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0));
        let mut stdout = self.stdout.join("\n");
        if !stdout.is_empty() {
            stdout.push('\n');
        }
        Output { code, stdout, stderr }
    }
}

/// Runs a `phasegate` process to completion.
pub fn process(args: &[&str]) -> Output {
    Child::spawn(command(args)).wait()
}

/// The metric checks that said "nothing to measure" (JSON `"empty": true`,
/// `"value": null`) in a command's output, as `V<version> <check>`.
pub fn empty_metrics(doc: &serde_json::Value) -> Vec<String> {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["empty"] == true)
        .map(|c| {
            assert!(c["value"].is_null(), "an empty metric has no value: {c}");
            format!("V{} {}", c["version"], c["check"].as_str().unwrap())
        })
        .collect()
}

/// Runs a command with `--format json`, asserting exit 0 and every check
/// PROCEED; returns the document.
#[track_caller]
fn proceeds(db: &TestDb, dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut full = args.to_vec();
    full.extend(["--format", "json"]);
    let out = run(db, dir, &full, "");
    assert_eq!(out.code, 0, "{args:?}: {out:?}");
    let doc = out.json();
    assert_all_proceed(&doc);
    doc
}

/// What a set's walk over a database reported.
#[derive(Debug)]
pub struct Walk {
    /// Every metric that had nothing to measure, per command (`validate`,
    /// `migrate --phase 3`, `rollback --phase 2`, ...), in order.
    pub empty: Vec<(String, Vec<String>)>,
    /// The text (decision tables) of `validate` after each reversible phase.
    pub validate_text: String,
}

impl Walk {
    /// Asserts that exactly `shares` (`V<version> <check>`, the checks of
    /// phase `phase` computing a share) had nothing to measure: in `migrate`
    /// and `validate` of that phase and in the final `migrate --yes`, and
    /// nowhere else; and that the decision table shows each as "no rows",
    /// PROCEED.
    #[track_caller]
    pub fn assert_only_these_were_empty(&self, phase: u32, shares: &[&str]) {
        for (what, empty) in &self.empty {
            let expected: &[&str] = if [format!("migrate --phase {phase}"), format!("validate after phase {phase}"), "migrate --yes".into()].contains(what) { shares } else { &[] };
            assert_eq!(empty, expected, "{what}: {self:?}");
        }
        for share in shares {
            let name = share.split_once(' ').unwrap().1;
            let line = self.validate_text.lines().find(|l| l.contains(name)).unwrap_or_else(|| panic!("no {name} in:\n{}", self.validate_text));
            assert!(line.contains(" no rows ") && line.ends_with("PROCEED"), "{line}");
        }
    }
}

/// The life of a set on one database, every command exiting 0 with every
/// check PROCEED: each phase up to `last_reversible` migrated and validated
/// (JSON and text), then rolled back from `last_reversible` down to 1,
/// newest first, then every phase migrated at once (`--yes` confirms the
/// irreversible ones) and validated again. `validate` runs the current
/// phase's checks: an earlier phase's after-migrate checks describe the
/// state right after it, which a later phase changes.
#[track_caller]
pub fn walk_every_phase(db: &TestDb, dir: &Path, last_reversible: u32) -> Walk {
    let (mut empty, mut validate_text) = (Vec::new(), String::new());
    let mut record = |what: String, doc: &serde_json::Value| empty.push((what, empty_metrics(doc)));
    for phase in 1..=last_reversible {
        let p = phase.to_string();
        record(format!("migrate --phase {p}"), &proceeds(db, dir, &["migrate", "--phase", &p]));
        record(format!("validate after phase {p}"), &proceeds(db, dir, &["validate"]));
        let text = run(db, dir, &["validate"], "");
        assert_eq!(text.code, 0, "{text:?}");
        validate_text.push_str(&text.stdout);
    }
    for phase in (1..=last_reversible).rev() {
        let p = phase.to_string();
        record(format!("rollback --phase {p}"), &proceeds(db, dir, &["rollback", "--phase", &p, "--yes"]));
    }
    record("migrate --yes".into(), &proceeds(db, dir, &["migrate", "--yes"]));
    record("validate after every phase".into(), &proceeds(db, dir, &["validate"]));
    Walk { empty, validate_text }
}
