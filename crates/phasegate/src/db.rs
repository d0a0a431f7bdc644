//! Connecting to PostgreSQL, hiding passwords, and the migration lock
//! (docs/safety.md): a session-level advisory lock held by the migrator's own
//! connection for the whole run.

use std::str::FromStr;
use std::time::{Duration, Instant};

use postgres::types::Type;
use postgres::Client;

use crate::error::{db_err, pg_message, Error, Result};
use crate::tls::{self, Transport};

/// The advisory lock key every phasegate run takes ("phasegat" in ASCII).
pub const LOCK_KEY: i64 = 0x7068_6173_6567_6174;

/// The trigger that keeps the ledger's `phasegate_runs` append-only, and
/// its function (`{schema}.phasegate_runs_append_only()`, beside the
/// ledger's tables): the ledger's set-up creates them, the snapshot leaves
/// the function out, `init --baseline-from` strips it from a dump. Here,
/// below all three (ARCHITECTURE.md, "Layers").
pub(crate) const APPEND_ONLY: &str = "phasegate_runs_append_only";

/// Connects with `application_name` set so other sessions can see who we are,
/// over TLS as the connection string's `sslmode` asks (see `tls`).
pub fn connect(url: &str, application_name: &str) -> Result<Client> {
    connect_reporting(url, application_name).map(|(client, _)| client)
}

/// [`connect`], also saying how the connection travels: the caller shows a
/// `prefer` that fell back to plaintext (`Transport::fell_back`).
pub fn connect_reporting(url: &str, application_name: &str) -> Result<(Client, Transport)> {
    connect_sending(url, application_name, "").map(|(client, transport, _)| (client, transport))
}

/// [`connect_reporting`], sending `first` (simple-query text, or none) in
/// the message that sets the session up: its answer, with no round trip of
/// its own. Its failure is a database error, not a connection's.
pub(crate) fn connect_sending(url: &str, application_name: &str, first: &str) -> Result<(Client, Transport, Vec<postgres::SimpleQueryMessage>)> {
    let invalid = |m: &str| Error::Connect { target: redact(url), message: format!("invalid connection string: {}", strip_secret(m, url)) };
    let (rest, tls) = tls::split(url).map_err(|m| invalid(&m))?;
    let mut config = postgres::Config::from_str(&rest).map_err(|e| invalid(&e.to_string()))?;
    config.application_name(application_name);
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    let (mut client, transport) =
        tls::connect(&mut config, &tls).map_err(|e| Error::Connect { target: redact(url), message: strip_secret(&e.message(&tls), url) })?;
    let answer = session_settings(&mut client, url, first)?;
    Ok((client, transport, answer))
}

/// What every phasegate session runs with, whatever the database's or the
/// role's defaults say: `standard_conforming_strings = on` (PostgreSQL's
/// default since 9.1), so a backslash in a string literal is a backslash.
/// The engine's own statements take values as bind parameters or quote
/// them on the server, which is right under either setting; this is
/// defence in depth, and the setting migration files are read with. Sent
/// as a `SET` after connecting rather than as a startup `options`
/// parameter, which connection poolers such as PgBouncer refuse.
const SESSION_SETTINGS: &str = "SET standard_conforming_strings = on";

fn session_settings(client: &mut Client, url: &str, first: &str) -> Result<Vec<postgres::SimpleQueryMessage>> {
    if first.is_empty() {
        client
            .batch_execute(SESSION_SETTINGS)
            .map_err(|e| Error::Connect { target: redact(url), message: format!("setting up the session: {}", strip_secret(&pg_message(&e), url)) })?;
        return Ok(Vec::new());
    }
    client.simple_query(&format!("{SESSION_SETTINGS}; {first}")).map_err(db_err("setting up the session"))
}

/// The password of a connection string, if it has one.
fn password_of(url: &str) -> Option<String> {
    // Past the TLS parameters `postgres` does not know (an invalid one
    // must not hide the password).
    let rest = tls::without_tls(url).unwrap_or_else(|| url.to_string());
    postgres::Config::from_str(&rest)
        .ok()
        .and_then(|c| c.get_password().map(|p| String::from_utf8_lossy(p).to_string()))
        .filter(|p| !p.is_empty())
}

/// Removes the connection string's password from a message, whatever quoted it.
fn strip_secret(message: &str, url: &str) -> String {
    match password_of(url) {
        Some(p) => message.replace(&p, "***"),
        None => message.to_string(),
    }
}

/// The connection string with its password replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    if !tls::is_url(url) {
        return redact_key_values(url);
    }
    if let Ok(mut u) = url::Url::parse(url) {
        if u.password().is_some() {
            let _ = u.set_password(Some("***"));
        }
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret(&k) { "***".to_string() } else { v.to_string() };
                (k.to_string(), v)
            })
            .collect();
        if !pairs.is_empty() {
            u.query_pairs_mut().clear().extend_pairs(pairs);
        }
        return u.to_string().replace("%2A%2A%2A", "***");
    }
    redact_unparsed_url(url)
}

/// A connection parameter whose value is a secret: the password, and
/// libpq's passphrase of an encrypted client key.
fn is_secret(key: &str) -> bool {
    key.eq_ignore_ascii_case("password") || key.eq_ignore_ascii_case("sslpassword")
}

/// The key=value form (`host=h password='a b' dbname=d`): every
/// `password` value masked, quoted ones (with `\'` and `\\` escapes)
/// whole. Anything else is kept as written.
fn redact_key_values(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        // Copy whitespace, then read a key up to `=` (or the next space).
        if b[i].is_ascii_whitespace() {
            out.push(b[i] as char);
            i += 1;
            continue;
        }
        let key_start = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &s[key_start..i];
        out.push_str(key);
        // Spaces may surround `=`.
        let mut j = i;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if j >= b.len() || b[j] != b'=' {
            continue;
        }
        out.push_str(&s[i..=j]);
        i = j + 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            out.push(b[i] as char);
            i += 1;
        }
        let value_start = i;
        if i < b.len() && b[i] == b'\'' {
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = i.min(b.len());
        }
        if is_secret(key) {
            out.push_str("***");
        } else {
            out.push_str(&s[value_start..i]);
        }
    }
    out
}

/// A URL that `url::Url` rejects (a port that is not a number, a raw `#`,
/// `?` or `/` in the password) still names its password: mask the userinfo
/// after its first `:` up to the last `@` (over-masking is safe, showing a
/// password is not), and every `password=` query value after that.
fn redact_unparsed_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return url.to_string() };
    let (head, rest) = url.split_at(scheme_end + 3);
    let (userinfo, rest) = match rest.rfind('@') {
        Some(at) => {
            let masked = match rest[..at].find(':') {
                Some(colon) => format!("{}:***", &rest[..colon]),
                None => rest[..at].to_string(),
            };
            (masked + "@", &rest[at + 1..])
        }
        None => (String::new(), rest),
    };
    let (main, query) = rest.split_at(rest.find('?').unwrap_or(rest.len()));
    let query = query
        .split_inclusive('&')
        .map(|kv| match kv.trim_start_matches('?').split_once('=') {
            Some((k, v)) if is_secret(k) => {
                let prefix = if kv.starts_with('?') { "?" } else { "" };
                let amp = if v.ends_with('&') { "&" } else { "" };
                format!("{prefix}{k}=***{amp}")
            }
            _ => kv.to_string(),
        })
        .collect::<String>();
    format!("{head}{userinfo}{main}{query}")
}

/// Who holds the migration lock, as one line: pid, user, application, client
/// address and since when their session started.
pub fn lock_holder(client: &mut Client) -> Result<Option<String>> {
    let row = client
        .query_opt(
            "SELECT a.pid, coalesce(a.usename::text, '?'), coalesce(nullif(a.application_name, ''), '?'),
                    coalesce(host(a.client_addr), 'local'), to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS \"UTC\"'),
                    extract(epoch FROM now() - a.backend_start)::bigint
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND ((l.classid::bigint << 32) | l.objid::bigint) = $1
             LIMIT 1",
            &[&LOCK_KEY],
        )
        .map_err(db_err("looking up the migration lock holder"))?;
    Ok(row.map(|r| {
        let (pid, user, app, addr, since, secs): (i32, String, String, String, String, i64) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
        format!("pid {pid} ({app}, user {user} from {addr}) since {since}, {secs}s ago")
    }))
}

/// Takes the migration lock on this session; fails fast naming the holder, or
/// waits up to `wait` for it.
pub fn acquire_lock(client: &mut Client, wait: Duration) -> Result<()> {
    let deadline = Instant::now() + wait;
    loop {
        let got: bool = client
            .query_typed_one("SELECT pg_catalog.pg_try_advisory_lock($1)", &[(&LOCK_KEY, Type::INT8)])
            .map_err(db_err("taking the migration lock"))?
            .get(0);
        if got {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let holder = lock_holder(client)?.unwrap_or_else(|| "a session that released it just now; retry".into());
            return Err(Error::Locked { holder });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn release_lock(client: &mut Client) -> Result<()> {
    client
        .query_typed_one("SELECT pg_catalog.pg_advisory_unlock($1)", &[(&LOCK_KEY, Type::INT8)])
        .map_err(db_err("releasing the migration lock"))?;
    Ok(())
}

/// Ends a session that may hold the migration lock: releases its advisory
/// locks on the server, then closes it. Only dropping the connection would
/// leave the lock held until the server's backend has noticed the
/// disconnect and exited, a moment after the run ended: a run started right
/// after it (a script, a CI step, the next database of a fleet on the same
/// server) would be refused the lock by a run that had finished. A session
/// that cannot run the unlock (lost, or in an aborted transaction) is closed
/// as it is.
pub fn end_session(mut client: Client) {
    if !client.is_closed() {
        let _ = client.batch_execute("ROLLBACK; SELECT pg_catalog.pg_advisory_unlock_all()");
    }
    let _ = client.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_in_every_form() {
        assert_eq!(redact("postgres://u:s3cret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgresql://u@h/db?password=s3cret&sslmode=disable"), "postgresql://u@h/db?password=***&sslmode=disable");
        assert_eq!(redact("host=h user=u password=s3cret dbname=d"), "host=h user=u password=*** dbname=d");
        assert_eq!(redact("host=h password = 'a b\\'c' dbname=d"), "host=h password = *** dbname=d");
        assert_eq!(redact("password=x://y@z user=u"), "password=*** user=u");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("host=h sslpassword=k3y sslmode=verify-full"), "host=h sslpassword=*** sslmode=verify-full");
        assert_eq!(redact("postgres://u@h/db?sslpassword=k3y&sslrootcert=%2Fca.pem"), "postgres://u@h/db?sslpassword=***&sslrootcert=%2Fca.pem");
    }

    #[test]
    fn strips_the_password_of_a_string_with_tls_parameters() {
        let url = "postgres://u:s3cret@h/db?sslmode=verify-full&sslrootcert=%2Fca.pem";
        assert_eq!(strip_secret("auth for s3cret failed", url), "auth for *** failed");
        assert_eq!(strip_secret("s3cret", "host=h password=s3cret sslmode=nonsense"), "***");
    }

    #[test]
    fn redacts_passwords_of_urls_that_do_not_parse() {
        assert_eq!(redact("postgres://u:s3cret@h:notaport/db"), "postgres://u:***@h:notaport/db");
        assert_eq!(redact("postgres://u:s3c#r@t@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgresql://u@h:x/db?sslmode=disable&password=s3cret&a=b"), "postgresql://u@h:x/db?sslmode=disable&password=***&a=b");
        assert_eq!(redact("postgresql://u@h:x/db?password=s3cret"), "postgresql://u@h:x/db?password=***");
        assert_eq!(redact("postgres://h:notaport/db"), "postgres://h:notaport/db");
    }
}

/// A session that blocks another, as seen from pg_stat_activity.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Blocker {
    pub pid: i32,
    pub user: String,
    pub application: String,
    pub state: String,
    /// Seconds since the blocker's transaction began (it has held its locks
    /// at most that long).
    pub xact_seconds: f64,
    pub query: String,
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} ({}, user {}, {}) holding its locks in a transaction open for {:.1}s, last query: {}",
            self.pid, self.application, self.user, self.state, self.xact_seconds, self.query
        )
    }
}

/// The sessions blocking `pid` right now.
pub fn blockers_of(client: &mut Client, pid: i32) -> Result<Vec<Blocker>> {
    let rows = client
        .query(
            "SELECT a.pid, coalesce(a.usename::text, '?'), coalesce(nullif(a.application_name, ''), '?'), coalesce(a.state, '?'),
                    coalesce(extract(epoch FROM now() - a.xact_start), 0)::float8,
                    left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 200)
             FROM pg_stat_activity a WHERE a.pid = ANY(pg_blocking_pids($1)) ORDER BY a.xact_start",
            &[&pid],
        )
        .map_err(db_err("looking up blocking sessions"))?;
    Ok(rows
        .into_iter()
        .map(|r| Blocker { pid: r.get(0), user: r.get(1), application: r.get(2), state: r.get(3), xact_seconds: r.get(4), query: r.get(5) })
        .collect())
}

/// Watches, from a connection of its own, which sessions block a backend
/// while a migration step runs, so a lock timeout can name them.
pub struct BlockerWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Blocker>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl BlockerWatch {
    /// Starts watching `pid`; `None` when no monitoring connection can be made
    /// (the migration goes on; only the blocker's name would be missing).
    pub fn start(url: &str, pid: i32) -> Option<BlockerWatch> {
        let mut client = connect(url, "phasegate lock monitor").ok()?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, v) = (stop.clone(), seen.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(b) = blockers_of(&mut client, pid) {
                    if !b.is_empty() {
                        *v.lock().unwrap_or_else(|p| p.into_inner()) = b;
                    }
                }
                std::thread::park_timeout(Duration::from_millis(100));
            }
        });
        Some(BlockerWatch { stop, seen, handle: Some(handle) })
    }

    /// Forgets what was seen, at the start of a step.
    pub fn reset(&self) {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The blockers seen most recently (empty when nothing blocked).
    pub fn seen(&self) -> Vec<Blocker> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for BlockerWatch {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            // Wake it from its pause: the run ends now, not up to 100 ms later.
            h.thread().unpark();
            let _ = h.join();
        }
    }
}
