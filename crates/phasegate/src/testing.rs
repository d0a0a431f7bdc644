//! `phasegate::testing` (cargo feature `testing`): phasegate inside an
//! adopter's own `cargo test`.
//!
//! - [`server`]: one disposable PostgreSQL per test binary, shared by its
//!   tests: `PHASEGATE_TEST_DATABASE_URL` when set (a database is created
//!   and dropped there per use), else Docker with `PHASEGATE_PG_IMAGE`
//!   (default `postgres:15`), else the local `initdb` / `pg_ctl`; a test
//!   fails with the three ways to get one when none works. (This module is
//!   the one place of the engine that reads environment variables: it stands
//!   in for the command line's flags inside a test.)
//! - [`verify`]: the whole `verify` rehearsal of a set; the test fails with
//!   the findings when a rollback does not restore the state before it or a
//!   migration fails.
//! - [`schemas`]: the normalised schema after each phase, for insta.
//! - [`Factory`]: the set migrated once to phase N (optionally seeded) into
//!   a template; each test gets its own clone (`CREATE DATABASE ...
//!   TEMPLATE`), a [`TestDatabase`] dropped when the test ends, also when it
//!   panics.
//! - [`container`]: servers of a test's own (several, on a private network,
//!   stopped and restarted, a standby), started the way the docker backend
//!   starts its own ([`ContainerBuilder`]), from `PHASEGATE_PG_IMAGE`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use postgres::Client;

use crate::apply::{self, Options as ApplyOptions};
use crate::error::Result;
use crate::pg::{Backend, Server, DEFAULT_IMAGE};
use crate::ui::Quiet;

/// For tests that start containers of their own (testcontainers'
/// `with_host_config_modifier`): publish PostgreSQL's port on 127.0.0.1
/// only, as phasegate's own servers do. ([`container`] does this and the
/// rest.)
pub use crate::pg::publish_on_loopback;
pub use crate::pg::{Container, ContainerBuilder};

static SERVER: OnceLock<Server> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// What to do when no server can be had, said in the panic.
const NO_SERVER: &str = "phasegate::testing needs a PostgreSQL: start a Docker engine with a PostgreSQL image (PHASEGATE_PG_IMAGE names it, default postgres:15), or install PostgreSQL's server binaries (initdb, pg_ctl), or set PHASEGATE_TEST_DATABASE_URL to a server where the tests may create databases";

/// The backend the environment asks for: `PHASEGATE_TEST_DATABASE_URL`,
/// else `auto` with `PHASEGATE_PG_IMAGE`.
pub fn backend_from_env() -> Backend {
    match std::env::var("PHASEGATE_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Backend::Url(url),
        _ => Backend::Auto { image: image() },
    }
}

/// The PostgreSQL image tests start: `PHASEGATE_PG_IMAGE`, else
/// `postgres:15`.
pub fn image() -> String {
    std::env::var("PHASEGATE_PG_IMAGE").unwrap_or_else(|_| DEFAULT_IMAGE.to_string())
}

/// A builder for a container of a test's own, of [`image`]: disposable
/// unless made `durable`, published on 127.0.0.1, labelled so a killed
/// test's containers are removed by the next [`server`].
pub fn container() -> ContainerBuilder {
    ContainerBuilder::new(&image())
}

static CONTAINER_ID: OnceLock<String> = OnceLock::new();

extern "C" {
    fn atexit(cb: extern "C" fn()) -> std::os::raw::c_int;
}

/// Removes the test binary's container when the process exits: the shared
/// server is a static, and statics are never dropped.
extern "C" fn remove_container() {
    if let Some(id) = CONTAINER_ID.get() {
        let _ = std::process::Command::new("docker").args(["rm", "-f", "-v", id]).output();
    }
}

/// Containers left by earlier test processes that were killed (their owner
/// pid, a label of the container, no longer runs).
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

/// The test binary's shared server, started on first use and removed when
/// the process exits; panics (failing the test) saying what to install when
/// none can start.
pub fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        let backend = backend_from_env();
        if matches!(backend, Backend::Auto { .. }) {
            remove_stale_containers();
        }
        let server = Server::start(&backend).unwrap_or_else(|e| panic!("no PostgreSQL for the tests: {e}\n{NO_SERVER}"));
        if let Some(id) = server.container_id() {
            let _ = CONTAINER_ID.set(id.to_string());
            // SAFETY: registers a plain extern "C" function with no captured state.
            unsafe {
                atexit(remove_container);
            }
        }
        server
    })
}

/// A database of its own for one test, dropped with the guard (also when
/// the test panics, unless [`Factory::keep_failed`] asked to keep it).
pub struct TestDatabase {
    name: String,
    url: String,
    keep_failed: bool,
}

impl TestDatabase {
    /// An empty database on the shared server.
    pub fn empty(label: &str) -> TestDatabase {
        Self::create(label, None, false)
    }

    /// A clone of the template database `template` on the shared server.
    pub fn from_template(label: &str, template: &str) -> TestDatabase {
        Self::create(label, Some(template), false)
    }

    /// Keep the database when the test fails (panics), and print its name.
    pub fn keep_failed(mut self) -> TestDatabase {
        self.keep_failed = true;
        self
    }

    fn create(label: &str, template: Option<&str>, keep_failed: bool) -> TestDatabase {
        let label: String = label.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(30).collect();
        let name = format!("t_{label}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        let url = server().create_database(&name, template).unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
        TestDatabase { name, url, keep_failed }
    }

    /// Its connection string (on a disposable server; it carries the
    /// server's password).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A new connection to it.
    pub fn client(&self) -> Client {
        crate::db::connect(&self.url, "phasegate test").unwrap_or_else(|e| panic!("connecting to {}: {e}", self.name))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.keep_failed && std::thread::panicking() {
            eprintln!("kept database {} for inspection: {}", self.name, crate::db::redact(&self.url));
            return;
        }
        if let Err(e) = server().drop_database(&self.name) {
            eprintln!("warning: {e}");
        }
    }
}

/// Databases at phase N of a set, cloned from a template migrated once.
#[derive(Debug, Clone)]
pub struct Factory {
    dir: PathBuf,
    phase: Option<u32>,
    seed: bool,
    seed_rows: Option<u64>,
    keep_failed: bool,
}

/// Templates built in this process, by what they hold.
type Templates = Mutex<HashMap<String, Arc<OnceLock<std::result::Result<&'static str, String>>>>>;

fn templates() -> &'static Templates {
    static T: OnceLock<Templates> = OnceLock::new();
    T.get_or_init(Default::default)
}

impl Factory {
    /// The set in `dir`, migrated to its last phase, without seed data.
    pub fn new(dir: impl AsRef<Path>) -> Factory {
        Factory { dir: dir.as_ref().to_path_buf(), phase: None, seed: false, seed_rows: None, keep_failed: false }
    }

    /// Up to and including phase `n`.
    pub fn phase(mut self, n: u32) -> Factory {
        self.phase = Some(n);
        self
    }

    /// With the set's seed files loaded after their phase.
    pub fn seeded(mut self) -> Factory {
        self.seed = true;
        self
    }

    /// With `phasegate.seed_rows` set for the seed files.
    pub fn seed_rows(mut self, rows: u64) -> Factory {
        self.seed = true;
        self.seed_rows = Some(rows);
        self
    }

    /// Keep a test's database when the test fails, and print its name.
    pub fn keep_failed(mut self) -> Factory {
        self.keep_failed = true;
        self
    }

    /// The template's name, building it on first use (once per process,
    /// whichever test asks first; the others wait for it).
    pub fn template(&self) -> &'static str {
        let key = format!("{}|{:?}|{}|{:?}", self.dir.display(), self.phase, self.seed, self.seed_rows);
        let cell = templates().lock().unwrap_or_else(|p| p.into_inner()).entry(key).or_default().clone();
        // A template lives as long as the process: its name is leaked once.
        let built = cell.get_or_init(|| self.build_template().map(|n| &*Box::leak(n.into_boxed_str())).map_err(|e| e.to_string()));
        match built {
            Ok(name) => name,
            Err(e) => panic!("building the template of {} failed: {e}", crate::error::display_path(&self.dir)),
        }
    }

    fn build_template(&self) -> Result<String> {
        let set = crate::set::load(&self.dir)?;
        let name = format!("tpl_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        let url = server().create_database(&name, None)?;
        {
            let mut client = crate::db::connect(&url, "phasegate test template")?;
            apply::migrate_to(&mut client, &set, self.phase, self.seed.then_some(self.seed_rows))?;
        }
        server().make_template(&name)?;
        Ok(name)
    }

    /// A database of its own at the factory's phase: a clone of the template.
    pub fn database(&self) -> TestDatabase {
        let template = self.template();
        TestDatabase::create("factory", Some(template), self.keep_failed)
    }
}

/// Runs the whole `verify` rehearsal of the set in `dir` (every phase
/// forward, its checks, its rollback compared with the state before it, and
/// forward again) on a fresh database, without seed data; panics, failing
/// the test with the findings, when a rollback does not restore the state
/// before it or a migration fails. Returns the rehearsal for more asserts.
pub fn verify(dir: impl AsRef<Path>) -> crate::rehearse::Rehearsal {
    let set = crate::set::load(dir.as_ref()).unwrap_or_else(|e| panic!("{e}"));
    let db = TestDatabase::empty("verify");
    let opts = crate::rehearse::Options { phase: None, strict: false, seed_rows: None, setup: Vec::new(), full_compare: false, apply: ApplyOptions { accept_review: true, backup: true, ..Default::default() } };
    let rehearsal = crate::rehearse::rehearse(server(), &db.name, &set, &opts, &mut Quiet).unwrap_or_else(|e| panic!("verify of {}: {e}", crate::error::display_path(&set.dir)));
    if rehearsal.mismatch() || rehearsal.migrate_failed() {
        panic!("verify of {} found what a rollback does not restore:\n{}", crate::error::display_path(&set.dir), findings_report(&rehearsal));
    }
    rehearsal
}

/// The findings of a rehearsal, a phase each, with the schema diffs.
fn findings_report(r: &crate::rehearse::Rehearsal) -> String {
    let mut s = String::new();
    for p in r.phases.iter().filter(|p| !p.findings.is_empty()) {
        s.push_str(&format!("phase {} {}:\n", p.phase, p.name));
        for f in &p.findings {
            let level = if f.is_mismatch(r.strict) { "error" } else { "warning" };
            s.push_str(&format!("  {level}: {}\n", f.summary()));
            if let Some(diff) = f.diff() {
                s.push_str(diff);
                s.push('\n');
            }
        }
    }
    s
}

/// The normalised schema after each phase of the set in `dir`, migrated
/// phase by phase on a fresh database (without seed data): `(phase id,
/// schema)`, for `insta::assert_snapshot!`.
pub fn schemas(dir: impl AsRef<Path>) -> Vec<(u32, String)> {
    let set = crate::set::load(dir.as_ref()).unwrap_or_else(|e| panic!("{e}"));
    let db = TestDatabase::empty("schemas");
    let mut client = db.client();
    let mut out = Vec::new();
    for phase in &set.phases {
        apply::migrate_to(&mut client, &set, Some(phase.id), None).unwrap_or_else(|e| panic!("{e}"));
        let snap = crate::snapshot::take_snapshot(&mut client, &crate::snapshot::SnapshotOptions { fingerprint_rows: false, ..Default::default() }).unwrap_or_else(|e| panic!("{e}"));
        out.push((phase.id, snap.schema));
    }
    out
}
