//! Disposable PostgreSQL (docs/verify.md): a server to rehearse on, started in a
//! container (testcontainers, the `docker` backend) or borrowed from an
//! existing server (`url`), and throwaway databases on it, cloned from a
//! template so that a fresh database costs a `CREATE DATABASE ... TEMPLATE`,
//! not a container start. Servers this module starts run without
//! durability (`fsync`, `synchronous_commit`, `full_page_writes` off) and
//! without JIT compilation, which costs more than it saves on the one-shot
//! statements of a rehearsal (the clinic seed runs several times slower
//! with it). Every container, this module's and the tests' own, is started
//! by one [`ContainerBuilder`] (`pg/container.rs`), so their flags agree.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use postgres::Client;

use crate::db;
use crate::error::{db_err, Error, Result};

mod container;

pub use container::{Container, ContainerBuilder};

/// The image the docker backend uses unless told otherwise.
pub const DEFAULT_IMAGE: &str = "postgres:15";

/// Where a disposable server comes from.
#[derive(Debug, Clone)]
pub enum Backend {
    /// Docker with this image when the engine answers and the image is
    /// present or can be pulled; else the local binaries; else one error
    /// naming the three ways to get a server.
    Auto { image: String },
    /// A container from this image (`name:tag`).
    Docker { image: String },
    /// An existing server; databases are created and dropped on it.
    Url(String),
    /// PostgreSQL binaries on this machine (`initdb`, `pg_ctl`), a cluster
    /// in a temporary folder on a free port.
    Local,
}

/// A running server and the URL of its maintenance database.
pub struct Server {
    admin_url: String,
    /// One maintenance connection, reused: a fresh database then costs a
    /// CREATE DATABASE round trip, not a connection setup as well.
    admin: std::sync::Mutex<Option<Client>>,
    container: Option<Container>,
    /// Held for its Drop, which stops the cluster.
    _local: Option<LocalCluster>,
}

/// A cluster started with pg_ctl; stopped and removed on drop.
struct LocalCluster {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    run_as: Option<String>,
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_user(&self.run_as, &self.bindir.join("pg_ctl"), &["-D", &data.to_string_lossy(), "-m", "immediate", "-w", "stop"]).output();
    }
}

/// A command, run as `user` (through runuser) when one is given.
fn as_user(user: &Option<String>, program: &Path, args: &[&str]) -> Command {
    match user {
        Some(u) => {
            let mut c = Command::new("runuser");
            c.args(["-u", u, "--"]).arg(program).args(args);
            c
        }
        None => {
            let mut c = Command::new(program);
            c.args(args);
            c
        }
    }
}

/// The folder holding initdb and pg_ctl: `pg_config --bindir`, else the
/// newest /usr/lib/postgresql/*/bin.
fn find_bindir() -> Option<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if p.join("initdb").is_file() {
            return Some(p);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    found.sort_by_key(|p| p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok()).unwrap_or(0));
    found.pop()
}

/// Publishes the container's PostgreSQL port on 127.0.0.1 only (a free
/// port the engine picks), not on every interface as Docker's
/// publish-all does: a disposable server with a known password is nobody
/// else's business.
pub fn publish_on_loopback(host: &mut testcontainers::bollard::models::HostConfig) {
    use testcontainers::bollard::models::PortBinding;
    host.publish_all_ports = Some(false);
    let binding = PortBinding { host_ip: Some("127.0.0.1".into()), host_port: Some(String::new()) };
    host.port_bindings = Some(std::collections::HashMap::from([("5432/tcp".to_string(), Some(vec![binding]))]));
}

pub use crate::error::BackendKind;

/// Which backend `Backend::Auto` settled on (Docker or Local).
pub type Chosen = BackendKind;

/// `Backend::Auto`'s order: Docker, then the local binaries; when neither
/// starts, one error carrying why each did not.
pub fn first_that_starts<T>(docker: impl FnOnce() -> Result<T>, local: impl FnOnce() -> Result<T>) -> Result<(T, Chosen)> {
    let docker_failed = match docker() {
        Ok(s) => return Ok((s, Chosen::Docker)),
        Err(e) => e.to_string(),
    };
    match local() {
        Ok(s) => Ok((s, Chosen::Local)),
        Err(e) => Err(Error::NoServer { docker: docker_failed, local: e.to_string() }),
    }
}

fn start_local() -> Result<Server> {
    use std::os::unix::fs::MetadataExt;
    let refuse = |message: String| Error::Backend { backend: BackendKind::Local, message };
    let bindir = find_bindir().ok_or_else(|| refuse("no initdb found (pg_config --bindir, /usr/lib/postgresql/*/bin); install PostgreSQL server binaries, e.g. apt-get install postgresql".into()))?;
    // PostgreSQL refuses to run as root: drop to the postgres user if there is one.
    let root = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
    let run_as = if root {
        let ok = Command::new("id").args(["-u", "postgres"]).output().map(|o| o.status.success()).unwrap_or(false);
        if !ok {
            return Err(refuse("running as root, and PostgreSQL will not run as root; create an unprivileged `postgres` user (useradd --system postgres) or run as a normal user".into()));
        }
        Some("postgres".to_string())
    } else {
        None
    };
    let dir = tempfile::Builder::new().prefix("phasegate-local-").tempdir().map_err(|e| refuse(format!("temporary folder: {e}")))?;
    if let Some(u) = &run_as {
        let st = Command::new("chown").args([u.as_str(), &dir.path().to_string_lossy()]).status();
        if !st.map(|s| s.success()).unwrap_or(false) {
            return Err(refuse(format!("cannot hand {} to user {u}", dir.path().display())));
        }
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| refuse(format!("no free port: {e}")))?.port();
    let data = dir.path().join("data");
    let data_s = data.to_string_lossy().to_string();
    // TCP connections need the password, as on the containers (a wrong one
    // is refused there too); the socket in the private folder is trusted.
    let pwfile = dir.path().join("pwfile");
    std::fs::write(&pwfile, PASSWORD).map_err(|e| refuse(format!("writing the password file: {e}")))?;
    if let Some(u) = &run_as {
        let _ = Command::new("chown").args([u.as_str(), &pwfile.to_string_lossy()]).status();
    }
    let pwfile_arg = format!("--pwfile={}", pwfile.display());
    let out = as_user(&run_as, &bindir.join("initdb"), &["-D", &data_s, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", &pwfile_arg, "-E", "UTF8", "--locale=C.UTF-8"])
        .output()
        .map_err(|e| refuse(format!("initdb: {e}")))?;
    if !out.status.success() {
        return Err(refuse(format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr).trim().replace('\n', " "))));
    }
    let opts = format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c jit=off", dir.path().display());
    let log = dir.path().join("server.log").to_string_lossy().to_string();
    let out = as_user(&run_as, &bindir.join("pg_ctl"), &["-D", &data_s, "-o", &opts, "-l", &log, "-w", "start"])
        .output()
        .map_err(|e| refuse(format!("pg_ctl: {e}")))?;
    let cluster = LocalCluster { dir, bindir, run_as };
    if !out.status.success() {
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        return Err(refuse(format!("pg_ctl start failed: {}", tail.lines().last().unwrap_or("").trim())));
    }
    // A server of our own on loopback, without TLS: sslmode=disable says so
    // (prefer would ask for TLS on every connection, and say it fell back).
    Ok(Server { admin_url: format!("postgres://postgres:{PASSWORD}@127.0.0.1:{port}/postgres?sslmode=disable"), admin: Default::default(), container: None, _local: Some(cluster) })
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("admin_url", &db::redact(&self.admin_url)).finish()
    }
}

/// The superuser password of the servers this module starts (containers
/// and local clusters: disposable, on 127.0.0.1 only).
const PASSWORD: &str = "phasegate";

impl Server {
    pub fn start(backend: &Backend) -> Result<Server> {
        match backend {
            Backend::Auto { image } => first_that_starts(|| Server::start(&Backend::Docker { image: image.clone() }), start_local).map(|(s, _)| s),
            Backend::Local => start_local(),
            Backend::Url(url) => {
                let mut c = db::connect(url, "phasegate-pg")?;
                c.simple_query("SELECT 1").map_err(db_err("probing the server"))?;
                Ok(Server { admin_url: url.clone(), admin: Default::default(), container: None, _local: None })
            }
            Backend::Docker { image } => {
                let container = ContainerBuilder::new(image).start()?;
                let admin_url = container.url()?;
                Ok(Server { admin_url, admin: Default::default(), container: Some(container), _local: None })
            }
        }
    }

    /// The maintenance database's URL (carries the password; never print it
    /// without `db::redact`).
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// The URL of database `name` on this server.
    pub fn url_for(&self, name: &str) -> String {
        match url::Url::parse(&self.admin_url) {
            Ok(mut u) => {
                u.set_path(name);
                u.to_string()
            }
            Err(_) => format!("{} dbname={name}", self.admin_url),
        }
    }

    /// Runs `f` on the shared admin connection.
    fn with_admin<T>(&self, f: impl FnOnce(&mut Client) -> Result<T>) -> Result<T> {
        let mut guard = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        if guard.as_mut().is_none_or(|c| c.is_closed()) {
            *guard = Some(db::connect(&self.admin_url, "phasegate-pg")?);
        }
        f(guard.as_mut().expect("connected above"))
    }

    /// Runs maintenance SQL on the shared admin connection.
    fn admin_exec(&self, sql: &str, context: String) -> Result<()> {
        self.with_admin(|c| c.batch_execute(sql).map_err(db_err(context)))
    }

    /// The roles of the cluster: roles are cluster-wide, so a rehearsal's
    /// `CREATE ROLE` outlives its database unless dropped (`drop_roles_since`).
    pub fn roles(&self) -> Result<BTreeSet<String>> {
        self.with_admin(|c| {
            let rows = c.query("SELECT rolname FROM pg_catalog.pg_roles", &[]).map_err(db_err("listing the server's roles"))?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    /// Drops the roles of `created` that were not there `before` (a
    /// rehearsal's `CREATE ROLE`s, see `rehearse::roles`), once the
    /// databases they own objects in are dropped. Returns the roles it
    /// dropped, and one line per role it could not.
    pub fn drop_roles_since(&self, before: &BTreeSet<String>, created: &BTreeSet<String>) -> Result<(Vec<String>, Vec<String>)> {
        let (mut dropped, mut kept) = (Vec::new(), Vec::new());
        for role in self.roles()?.difference(before).filter(|r| created.contains(*r)) {
            match self.admin_exec(&format!("DROP ROLE IF EXISTS {}", quote_ident(role)), format!("dropping role {role} a rehearsal created")) {
                Ok(()) => dropped.push(role.clone()),
                Err(e) => kept.push(e.to_string()),
            }
        }
        Ok((dropped, kept))
    }

    /// Creates database `name`, empty or as a copy of `template`.
    pub fn create_database(&self, name: &str, template: Option<&str>) -> Result<String> {
        let sql = match template {
            Some(t) => format!("CREATE DATABASE {} TEMPLATE {}", quote_ident(name), quote_ident(t)),
            None => format!("CREATE DATABASE {} TEMPLATE template0", quote_ident(name)),
        };
        self.with_admin(|c| {
            if let Some(t) = template {
                wait_until_left(c, t)?;
            }
            c.batch_execute(&sql).map_err(db_err(format!("creating database {name}")))
        })?;
        Ok(self.url_for(name))
    }

    /// Marks a database as a template, so clones may be made of it.
    pub fn make_template(&self, name: &str) -> Result<()> {
        self.admin_exec(&format!("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false", quote_ident(name)), format!("marking {name} as a template"))
    }

    pub fn drop_database(&self, name: &str) -> Result<()> {
        // A template cannot be dropped: clear the flag first (an error here
        // only means there is no such database, which the DROP tolerates).
        let _ = self.admin_exec(&format!("ALTER DATABASE {} WITH IS_TEMPLATE false", quote_ident(name)), String::new());
        self.admin_exec(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name)), format!("dropping database {name}"))
    }

    /// Which kind of server this is (for `Backend::Auto`, the one it chose).
    pub fn kind(&self) -> BackendKind {
        match (&self.container, &self._local) {
            (Some(_), _) => BackendKind::Docker,
            (None, Some(_)) => BackendKind::Local,
            (None, None) => BackendKind::Url,
        }
    }

    /// The container's id, when this server runs in one.
    pub fn container_id(&self) -> Option<&str> {
        self.container.as_ref().map(|c| c.id())
    }
}

/// Waits until no other session is connected to `db` (for up to a second;
/// `CREATE DATABASE` then waits or refuses as it does). PostgreSQL copies
/// only a database nobody is connected to, and when it finds a session
/// still leaving one (a connection closed just before: its backend exits a
/// moment later) it sleeps 100 ms before it looks again; a rehearsal clones
/// its chain right after closing its connection, twice per data phase.
fn wait_until_left(c: &mut Client, db: &str) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let others: i64 = c
            .query_typed_one(
                "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND pid <> pg_catalog.pg_backend_pid()",
                &[(&db, postgres::types::Type::TEXT)],
            )
            .map_err(db_err(format!("waiting for the sessions on {db} to end")))?
            .get(0);
        if others == 0 || std::time::Instant::now() > deadline {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// An identifier in double quotes, inner quotes doubled: the same text
/// whatever the server's settings (`standard_conforming_strings` concerns
/// string literals, never quoted identifiers).
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A string literal PostgreSQL reads back as `s` whatever
/// `standard_conforming_strings` says (a migration file may turn it off
/// for the rest of the session): inner quotes doubled, and a text with a
/// backslash written as an escape string (`E'...'`, backslashes doubled),
/// which reads the same under either setting.
pub fn quote_literal(s: &str) -> String {
    if s.contains('\\') {
        format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// The longest identifier PostgreSQL keeps, in bytes (NAMEDATALEN - 1):
/// a longer one is cut to this, silently, on a character boundary.
pub const MAX_IDENT_BYTES: usize = 63;

/// `s` cut to at most `max` bytes on a character boundary.
pub fn clip_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// An identifier as PostgreSQL stores it: cut to [`MAX_IDENT_BYTES`] on a
/// character boundary (the name a `CREATE` of the longer one made).
pub fn clip_ident(s: &str) -> String {
    clip_bytes(s, MAX_IDENT_BYTES).to_string()
}

/// A generated name `base` + `suffix` that fits in `max` bytes with its
/// suffix whole: the base is cut (on a character boundary), never the
/// suffix that makes the name unique.
pub fn fit_name(base: &str, suffix: &str, max: usize) -> String {
    format!("{}{suffix}", clip_bytes(base, max.saturating_sub(suffix.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cut_by_bytes_on_character_boundaries_keeping_the_suffix() {
        let cjk = "表".repeat(21);
        assert_eq!(cjk.len(), 63);
        assert_eq!(clip_ident(&cjk), cjk);
        assert_eq!(clip_ident(&format!("{cjk}x")), cjk);
        assert_eq!(clip_ident(&"a".repeat(70)), "a".repeat(63));
        // 2 bytes left for a 3-byte character: it goes whole.
        assert_eq!(clip_bytes("ab表", 4), "ab");
        let name = fit_name(&cjk, "_3f2a9c1e_2", 58);
        assert!(name.len() <= 58 && name.ends_with("_3f2a9c1e_2"), "{name}");
        assert_eq!(name, format!("{}_3f2a9c1e_2", "表".repeat(15)));
        assert_eq!(fit_name("short", "_x", 58), "short_x");
    }

    fn fails(backend: BackendKind, why: &str) -> Result<&'static str> {
        Err(Error::Backend { backend, message: why.into() })
    }

    #[test]
    fn auto_tries_docker_then_local_then_says_why_neither_started() {
        let (got, chosen) = first_that_starts(|| Ok("container"), || panic!("local is not tried when Docker starts")).unwrap();
        assert_eq!((got, chosen), ("container", Chosen::Docker));
        let (got, chosen) = first_that_starts(|| fails(BackendKind::Docker, "no engine"), || Ok("cluster")).unwrap();
        assert_eq!((got, chosen), ("cluster", Chosen::Local));
        let e = first_that_starts(|| fails(BackendKind::Docker, "no engine at /var/run/docker.sock"), || fails(BackendKind::Local, "no initdb found")).unwrap_err();
        assert!(matches!(e, Error::NoServer { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "no PostgreSQL to rehearse on: Docker did not start one (docker backend: no engine at /var/run/docker.sock); the local binaries did not either (local backend: no initdb found); and no server URL was given"
        );
    }

    #[test]
    fn literals_read_the_same_under_either_setting() {
        assert_eq!(quote_literal("plain"), "'plain'");
        assert_eq!(quote_literal("it's"), "'it''s'");
        // With `standard_conforming_strings` off a plain '...' would read
        // the backslash as an escape and end the literal early.
        assert_eq!(quote_literal("q\\'); DROP TABLE victim; --"), "E'q\\\\''); DROP TABLE victim; --'");
    }
}
