//! One disposable PostgreSQL per test binary (testcontainers, or the server
//! PHASEGATE_TEST_DATABASE_URL names), removed when the process exits, and a
//! database per test: `TestDb`, a guard that drops it unless the test failed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use phasegate::{Backend, Server};

use super::{on, repo};

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

/// The backend the tests use: PHASEGATE_TEST_DATABASE_URL, else `auto`: a
/// container from PHASEGATE_PG_IMAGE (default the official image), or the
/// local initdb and pg_ctl when Docker cannot start one. Either way a real
/// server, or the tests fail saying what to install.
pub fn backend() -> Backend {
    match std::env::var("PHASEGATE_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Backend::Url(url),
        _ => Backend::Auto { image: std::env::var("PHASEGATE_PG_IMAGE").unwrap_or_else(|_| phasegate::DEFAULT_IMAGE.to_string()) },
    }
}

/// The shared server; panics with what to install when none can start.
pub fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        if matches!(backend(), Backend::Auto { .. }) {
            remove_stale_containers();
        }
        let server = Server::start(&backend()).unwrap_or_else(|e| panic!("no PostgreSQL for the tests: {e}\nto run them: {}", phasegate_cli::INSTALL_HINT));
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
        phasegate::connect(&self.url, "phasegate-test").expect("connect to the test database")
    }

    /// The whole-state snapshot: schema, and every table's rows (ledger excluded).
    pub fn snapshot(&self) -> phasegate::Snapshot {
        phasegate::take_snapshot(&mut self.client(), &Default::default()).expect("snapshot")
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
            eprintln!("kept database {} for inspection: {}", self.name, phasegate::redact(&self.url));
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
    let set = phasegate::load_set(dir).expect("the set loads");
    let after = set.seed.as_ref().map(|s| s.after_phase).unwrap_or(0).to_string();
    on(&url, dir, &["migrate", "--phase", &after]).run().expect_exit(0);
    let mut client = phasegate::connect(&url, "phasegate-test").unwrap();
    let started = std::time::Instant::now();
    phasegate::seed(&mut client, &set, None).expect("seed");
    eprintln!("seeded {label} in {} ms", started.elapsed().as_millis());
    drop(client);
    server().make_template(&name).expect("mark template");
    name
}

