//! Disposable PostgreSQL (SPEC 8): a server to rehearse on, started in a
//! container (testcontainers, the `docker` backend) or borrowed from an
//! existing server (`url`), and throwaway databases on it, cloned from a
//! template so that a fresh database costs a `CREATE DATABASE ... TEMPLATE`,
//! not a container start.

use std::time::Duration;

use postgres::Client;
use testcontainers::runners::SyncRunner;
use testcontainers::{Container, ImageExt};
use testcontainers_modules::postgres::Postgres;

use crate::db;
use crate::error::{db_err, Error, Result};

/// The image the docker backend uses unless told otherwise.
pub const DEFAULT_IMAGE: &str = "postgres:15";

/// Where a disposable server comes from.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A container from this image (`name:tag`).
    Docker { image: String },
    /// An existing server; databases are created and dropped on it.
    Url(String),
}

/// What to install when no backend can start, said once.
pub const INSTALL_HINT: &str = "start a Docker engine (Debian: apt-get install docker.io && dockerd &) and build the local image with `bash ci/build-pg-image.sh` (then export PHASEGATE_PG_IMAGE=phasegate/postgres:15), or set PHASEGATE_TEST_DATABASE_URL to a PostgreSQL server where phasegate may create databases";

/// A running server and the URL of its maintenance database.
pub struct Server {
    admin_url: String,
    container: Option<Container<Postgres>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("admin_url", &db::redact(&self.admin_url)).finish()
    }
}

const PASSWORD: &str = "phasegate";

impl Server {
    pub fn start(backend: &Backend) -> Result<Server> {
        match backend {
            Backend::Url(url) => {
                let mut c = db::connect(url, "phasegate-pg")?;
                c.simple_query("SELECT 1").map_err(db_err("probing the server"))?;
                Ok(Server { admin_url: url.clone(), container: None })
            }
            Backend::Docker { image } => {
                let (name, tag) = image.rsplit_once(':').filter(|(n, _)| !n.is_empty()).unwrap_or((image.as_str(), "latest"));
                let container = Postgres::default()
                    .with_password(PASSWORD)
                    .with_name(name)
                    .with_tag(tag)
                    .with_cmd(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200"])
                    .with_label("phasegate.disposable", "1")
                    .with_label("phasegate.owner-pid", std::process::id().to_string())
                    .with_shm_size(256 * 1024 * 1024)
                    .with_startup_timeout(Duration::from_secs(60))
                    .start()
                    .map_err(|e| Error::Refused(format!("cannot start a PostgreSQL container from image {image}: {e}; {INSTALL_HINT}")))?;
                let port = container
                    .get_host_port_ipv4(5432)
                    .map_err(|e| Error::Refused(format!("the PostgreSQL container published no port: {e}")))?;
                let admin_url = format!("postgres://postgres:{PASSWORD}@127.0.0.1:{port}/postgres");
                // The ready line can precede the first accepted connection by a moment.
                let mut last = None;
                for _ in 0..50 {
                    match db::connect(&admin_url, "phasegate-pg") {
                        Ok(_) => {
                            last = None;
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                if let Some(e) = last {
                    return Err(e);
                }
                Ok(Server { admin_url, container: Some(container) })
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

    fn admin(&self) -> Result<Client> {
        db::connect(&self.admin_url, "phasegate-pg")
    }

    /// Creates database `name`, empty or as a copy of `template`.
    pub fn create_database(&self, name: &str, template: Option<&str>) -> Result<String> {
        let mut c = self.admin()?;
        let sql = match template {
            Some(t) => format!("CREATE DATABASE {} TEMPLATE {}", quote_ident(name), quote_ident(t)),
            None => format!("CREATE DATABASE {} TEMPLATE template0", quote_ident(name)),
        };
        c.batch_execute(&sql).map_err(db_err(format!("creating database {name}")))?;
        Ok(self.url_for(name))
    }

    /// Marks a database as a template, so clones may be made of it.
    pub fn make_template(&self, name: &str) -> Result<()> {
        let mut c = self.admin()?;
        c.batch_execute(&format!("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false", quote_ident(name)))
            .map_err(db_err(format!("marking {name} as a template")))?;
        Ok(())
    }

    pub fn drop_database(&self, name: &str) -> Result<()> {
        let mut c = self.admin()?;
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name)))
            .map_err(db_err(format!("dropping database {name}")))?;
        Ok(())
    }

    /// The container's id, when this server runs in one.
    pub fn container_id(&self) -> Option<&str> {
        self.container.as_ref().map(|c| c.id())
    }
}

pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}
