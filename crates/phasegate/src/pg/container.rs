//! The one way phasegate starts PostgreSQL in Docker (testcontainers,
//! an image with the official `postgres` image's interface): the docker backend's disposable server, and the
//! servers of tests that need several, a private network, a restart or a
//! standby (`phasegate::testing::container()`). Every container gets the
//! same base, so the flags cannot drift apart: the image asked for, the
//! `postgres` superuser with a password, the port published on 127.0.0.1
//! only, labels that mark it disposable and name its owner process (so
//! `testing::server` can remove what a killed test left), 256 MB of shared
//! memory, `max_connections` 200 and no JIT (it costs more than it saves on
//! one-shot statements).
//!
//! A disposable container (the default) also runs without durability
//! (`fsync`, `synchronous_commit`, `full_page_writes` off) with its data
//! directory in memory: CREATE DATABASE on overlay filesystems is slow, and
//! nothing on it must outlive it. A durable one ([`ContainerBuilder::durable`])
//! keeps PostgreSQL's own settings and its data on the container's
//! filesystem, so it survives a stop and a restart, and a standby streaming
//! from it sees commits as a production primary publishes them.

use std::time::{Duration, Instant};

use testcontainers::core::{Mount, WaitFor};
// The tests' knobs (`testing::container()`): exec in a running container.
#[cfg(feature = "testing")]
use testcontainers::core::{CmdWaitFor, ExecCommand};
use testcontainers::runners::SyncRunner;
use testcontainers::{GenericImage, ImageExt};

use crate::db;
use crate::error::{Error, Result};

/// Where the image keeps its data directory.
const DATA: &str = "/var/lib/postgresql/data";

/// The settings every container runs with, after the durability ones.
const BASE_SETTINGS: [(&str, &str); 2] = [("max_connections", "200"), ("jit", "off")];

/// The line a server logs when it accepts connections.
const READY: &str = "database system is ready to accept connections";

/// What a disposable container turns off.
const NOT_DURABLE: [(&str, &str); 3] = [("fsync", "off"), ("synchronous_commit", "off"), ("full_page_writes", "off")];

fn docker_error(message: String) -> Error {
    Error::Backend { backend: super::BackendKind::Docker, message }
}

/// How to start a PostgreSQL container: [`ContainerBuilder::new`], options,
/// then [`start`](ContainerBuilder::start) (or
/// [`start_many`](ContainerBuilder::start_many)).
#[derive(Debug, Clone)]
pub struct ContainerBuilder {
    image: String,
    password: String,
    durable: bool,
    network: Option<String>,
    name: Option<String>,
    env: Vec<(String, String)>,
    settings: Vec<(String, String)>,
    prelude: Option<String>,
    ready_line: Option<String>,
    startup_timeout: Duration,
}

impl ContainerBuilder {
    /// A disposable container of `image` (`name:tag`, `latest` when no tag
    /// is given), superuser password `phasegate`.
    pub fn new(image: &str) -> ContainerBuilder {
        ContainerBuilder {
            image: image.to_string(),
            password: super::PASSWORD.into(),
            durable: false,
            network: None,
            name: None,
            env: Vec::new(),
            settings: Vec::new(),
            prelude: None,
            ready_line: None,
            startup_timeout: Duration::from_secs(60),
        }
    }

    /// The `postgres` superuser's password.
    #[cfg(feature = "testing")]
    pub fn password(mut self, password: &str) -> Self {
        self.password = password.to_string();
        self
    }

    /// PostgreSQL's own durability settings and the data directory on the
    /// container's filesystem (it survives a stop and a restart), instead
    /// of a throwaway server in memory.
    #[cfg(feature = "testing")]
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// Joins the Docker network `name` (created if missing, removed by
    /// testcontainers with its last container).
    #[cfg(feature = "testing")]
    pub fn network(mut self, name: &str) -> Self {
        self.network = Some(name.to_string());
        self
    }

    /// The container's name, by which other containers on its network
    /// reach it.
    #[cfg(feature = "testing")]
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// An environment variable of the container.
    #[cfg(feature = "testing")]
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// A server setting (`-c name=value`), after the base ones.
    #[cfg(feature = "testing")]
    pub fn setting(mut self, name: &str, value: &str) -> Self {
        self.settings.push((name.to_string(), value.to_string()));
        self
    }

    /// A shell script run as root before the image's entry point starts the
    /// server (e.g. a `pg_basebackup` that makes this a standby).
    #[cfg(feature = "testing")]
    pub fn prelude(mut self, script: &str) -> Self {
        self.prelude = Some(script.to_string());
        self
    }

    /// The server's log line (on stderr) that says it is up, instead of
    /// the primary's "ready to accept connections".
    #[cfg(feature = "testing")]
    pub fn ready_when(mut self, line: &str) -> Self {
        self.ready_line = Some(line.to_string());
        self
    }

    /// How long the container may take to say it is up, and then to accept
    /// a connection (60 s unless told).
    #[cfg(feature = "testing")]
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Every `-c` setting the server runs with, in order.
    pub fn settings(&self) -> Vec<(String, String)> {
        let durability: &[(&str, &str)] = if self.durable { &[] } else { &NOT_DURABLE };
        durability.iter().chain(BASE_SETTINGS.iter()).map(|(k, v)| (k.to_string(), v.to_string())).chain(self.settings.iter().cloned()).collect()
    }

    /// The container's command: the settings for the image's entry point,
    /// or, with a prelude, a shell (the entry point then) that runs it and
    /// then the image's entry point.
    fn command(&self) -> (Option<&'static str>, Vec<String>) {
        let flags: Vec<String> = self.settings().into_iter().flat_map(|(k, v)| ["-c".to_string(), format!("{k}={v}")]).collect();
        match &self.prelude {
            None => (None, flags),
            Some(script) => {
                let quoted: Vec<String> = flags.iter().map(|f| format!("'{}'", f.replace('\'', r"'\''"))).collect();
                let run = format!("{script}\nexec /usr/local/bin/docker-entrypoint.sh postgres {}", quoted.join(" "));
                (Some("/bin/sh"), vec!["-c".into(), run])
            }
        }
    }

    /// The image with its entry point and what says it is up: the
    /// "ready" line on stderr and on stdout (the official image's init-time
    /// server prints it on stdout first), or the one asked for.
    fn image(&self) -> GenericImage {
        let (name, tag) = self.image.rsplit_once(':').filter(|(n, _)| !n.is_empty()).unwrap_or((self.image.as_str(), "latest"));
        let mut image = GenericImage::new(name, tag);
        image = match &self.ready_line {
            Some(line) => image.with_wait_for(WaitFor::message_on_stderr(line)),
            None => image.with_wait_for(WaitFor::message_on_stderr(READY)).with_wait_for(WaitFor::message_on_stdout(READY)),
        };
        match self.command().0 {
            Some(entrypoint) => image.with_entrypoint(entrypoint),
            None => image,
        }
    }

    /// Starts the container and waits until it accepts connections.
    pub fn start(&self) -> Result<Container> {
        let mut request = self
            .image()
            .with_cmd(self.command().1)
            .with_env_var("POSTGRES_USER", "postgres")
            .with_env_var("POSTGRES_DB", "postgres")
            .with_env_var("POSTGRES_PASSWORD", &self.password)
            .with_label("phasegate.disposable", "1")
            .with_label("phasegate.owner-pid", std::process::id().to_string())
            .with_shm_size(256 * 1024 * 1024)
            .with_host_config_modifier(super::publish_on_loopback)
            .with_startup_timeout(self.startup_timeout);
        if !self.durable {
            request = request.with_mount(Mount::tmpfs_mount(DATA).with_size("4g"));
        }
        if let Some(network) = &self.network {
            request = request.with_network(network);
        }
        if let Some(name) = &self.name {
            request = request.with_container_name(name);
        }
        for (k, v) in &self.env {
            request = request.with_env_var(k, v);
        }
        let inner = request.start().map_err(|e| docker_error(format!("cannot start a PostgreSQL container from image {}: {e}", self.image)))?;
        let container = Container { inner, password: self.password.clone() };
        // The ready line can precede the first accepted connection by a moment.
        container.wait_ready(self.startup_timeout)?;
        Ok(container)
    }

    /// Starts `n` containers at once (each with this builder's options;
    /// without a name, which must be unique); all of them or an error
    /// naming every one that failed (those that started are removed).
    #[cfg(feature = "testing")]
    pub fn start_many(&self, n: usize) -> Result<Vec<Container>> {
        let results: Vec<Result<Container>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n).map(|_| s.spawn(|| self.start())).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(docker_error("a thread starting a container panicked".into())))).collect()
        });
        let (started, failed): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
        if failed.is_empty() {
            return Ok(started.into_iter().map(|r| r.expect("partitioned")).collect());
        }
        let errors: Vec<String> = failed.into_iter().filter_map(Result::err).map(|e| e.to_string()).collect();
        Err(docker_error(format!("{} of {n} containers did not start: {}", errors.len(), errors.join("; "))))
    }
}

/// A running PostgreSQL container; removed when dropped.
pub struct Container {
    inner: testcontainers::Container<GenericImage>,
    password: String,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container").field("id", &self.id()).finish()
    }
}

impl Container {
    pub fn id(&self) -> &str {
        self.inner.id()
    }

    /// The port PostgreSQL is published on at 127.0.0.1 (a new one after
    /// each start).
    pub fn port(&self) -> Result<u16> {
        self.inner.get_host_port_ipv4(5432).map_err(|e| docker_error(format!("the PostgreSQL container published no port: {e}")))
    }

    /// The superuser's URL of database `postgres` (carries the password);
    /// loopback to a container of our own, without TLS.
    pub fn url(&self) -> Result<String> {
        Ok(format!("postgres://postgres:{}@127.0.0.1:{}/postgres?sslmode=disable", self.password, self.port()?))
    }

    #[cfg(feature = "testing")]
    pub fn is_running(&self) -> bool {
        self.inner.is_running().unwrap_or(false)
    }

    /// Starts a stopped container again and waits, up to `within`, until it
    /// accepts connections.
    #[cfg(feature = "testing")]
    pub fn start_again(&self, within: Duration) -> Result<()> {
        self.inner.start().map_err(|e| docker_error(format!("cannot start container {} again: {e}", self.id())))?;
        self.wait_ready(within)
    }

    /// Polls (every 20 ms: the server is usually up at the first try, and a
    /// retry should not cost more than the start) until the server accepts a
    /// connection; the last connection
    /// error when it does not within `within`.
    pub fn wait_ready(&self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            match db::connect(&self.url()?, "phasegate-pg") {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Runs a shell command in the container; an error unless it exits 0.
    #[cfg(feature = "testing")]
    pub fn exec_sh(&self, script: &str) -> Result<()> {
        self.inner
            .exec(ExecCommand::new(["sh", "-c", script]).with_cmd_ready_condition(CmdWaitFor::exit_code(0)))
            .map(|_| ())
            .map_err(|e| docker_error(format!("`{script}` in container {}: {e}", self.id())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `durable` is part of the `testing` feature (on in the workspace's
    // build): `cargo test -p phasegate` alone builds without it.
    #[cfg(feature = "testing")]
    #[test]
    fn a_disposable_server_is_not_durable_and_a_durable_one_keeps_the_defaults() {
        let flags = |b: &ContainerBuilder| b.settings().iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
        let disposable = ContainerBuilder::new("postgres:15");
        assert_eq!(flags(&disposable), "fsync=off synchronous_commit=off full_page_writes=off max_connections=200 jit=off");
        assert_eq!(disposable.command().1.join(" "), "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c jit=off");
        assert_eq!(disposable.command().0, None, "the image's own entry point");
        let durable = ContainerBuilder::new("postgres:15").durable(true).setting("cluster_name", "it's");
        assert_eq!(flags(&durable), "max_connections=200 jit=off cluster_name=it's");
        let standby = durable.prelude("pg_basebackup -D /x");
        assert_eq!(standby.command().0, Some("/bin/sh"));
        assert_eq!(
            standby.command().1,
            ["-c", "pg_basebackup -D /x\nexec /usr/local/bin/docker-entrypoint.sh postgres '-c' 'max_connections=200' '-c' 'jit=off' '-c' 'cluster_name=it'\\''s'"]
        );
    }
}
