//! What a fleet run measures as it goes (docs/fleet.md, "Timings and
//! connections"): the connections it holds to each server, counted by the
//! runner itself (a connection counts from just before it is opened until
//! it is closed, so the count is never below what the servers saw from
//! this run), and where each database's time went.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

/// Where one database's time went, in milliseconds. Each span is measured
/// on the worker's clock; what falls between them (starting the worker's
/// session settings, building the report) is the difference from the
/// database's `duration_ms`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Opening the connection: TCP (or the socket), TLS, authentication,
    /// the session settings (with the first look for the ledger).
    pub connect_ms: f64,
    /// Reading the ledger before (is there anything to do?) and after (each
    /// phase's state), and creating its tables when missing.
    pub ledger_ms: f64,
    /// Waiting for the database's migration lock.
    pub lock_ms: f64,
    /// The command's own work without its checks: the migrations (or the
    /// rollbacks, with their backups) and the ledger rows they write.
    pub migrate_ms: f64,
    /// The checks (before and after each step; `validate` and `status` are
    /// nothing but checks).
    pub checks_ms: f64,
    /// Writing the database's audit row.
    pub audit_ms: f64,
    /// Releasing the lock and closing the connection.
    pub close_ms: f64,
}

/// Milliseconds since `t`.
pub(super) fn since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// One server of a fleet run: how many of its databases the run visited
/// and the most connections the run held to it at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerLoad {
    /// `host:port` (or the socket directory) as the URLs name it.
    pub server: String,
    pub databases: usize,
    pub peak_connections: usize,
}

/// The connections a run holds, per server.
#[derive(Default)]
pub(super) struct Gauge {
    servers: Mutex<HashMap<String, Count>>,
}

#[derive(Default)]
struct Count {
    now: usize,
    peak: usize,
    databases: usize,
}

/// `n` connections to one server, counted until dropped.
pub(super) struct Held<'g> {
    gauge: &'g Gauge,
    server: &'g str,
    n: usize,
}

impl Gauge {
    fn with<T>(&self, server: &str, f: impl FnOnce(&mut Count) -> T) -> T {
        let mut map = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(server) {
            Some(c) => f(c),
            None => f(map.entry(server.to_string()).or_default()),
        }
    }

    /// A database of `server` starts: counted among its databases.
    pub(super) fn visit(&self, server: &str) {
        self.with(server, |c| c.databases += 1);
    }

    /// Counts `n` more connections to `server` until the guard drops.
    pub(super) fn hold<'g>(&'g self, server: &'g str, n: usize) -> Held<'g> {
        self.with(server, |c| {
            c.now += n;
            c.peak = c.peak.max(c.now);
        });
        Held { gauge: self, server, n }
    }

    /// Every server's load, by name.
    pub(super) fn loads(&self) -> Vec<ServerLoad> {
        let map = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<ServerLoad> =
            map.iter().map(|(s, c)| ServerLoad { server: s.clone(), databases: c.databases, peak_connections: c.peak }).collect();
        out.sort_by(|a, b| a.server.cmp(&b.server));
        out
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.gauge.with(self.server, |c| c.now -= self.n);
    }
}

/// The server a connection string points at: its first host and port
/// (`?` when the string cannot be read; connecting then fails and says why).
pub fn server_of(url: &str) -> String {
    use std::str::FromStr as _;
    let rest = crate::tls::without_tls(url).unwrap_or_else(|| url.to_string());
    let Ok(config) = postgres::Config::from_str(&rest) else { return "?".into() };
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_peak_per_server() {
        let g = Gauge::default();
        let a = g.hold("a:1", 1);
        let b = g.hold("a:1", 2);
        drop(b);
        let c = g.hold("b:1", 1);
        drop((a, c));
        let _d = g.hold("a:1", 1);
        g.visit("a:1");
        let loads = g.loads();
        assert_eq!(loads[0], ServerLoad { server: "a:1".into(), databases: 1, peak_connections: 3 });
        assert_eq!(loads[1].peak_connections, 1);
    }

    #[test]
    fn names_the_server_of_a_url() {
        assert_eq!(server_of("postgres://u:pw@db.example:6543/t1?sslmode=require"), "db.example:6543");
        assert_eq!(server_of("host=10.0.0.2 dbname=t2"), "10.0.0.2:5432");
    }
}
