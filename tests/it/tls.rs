//! TLS: a PostgreSQL container that accepts logins only over TLS
//! (`hostssl` lines, and a `cert` line for a client-certificate user), with
//! a CA and certificates this test makes itself (rcgen), reached through
//! the CLI with every `sslmode`; and the shared plaintext server with the
//! default `prefer`, where the run must say it fell back to plaintext.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use testcontainers::core::WaitFor;
use testcontainers::runners::SyncRunner;
use testcontainers::{Container, CopyTargetOptions, CopyToContainer, Image, ImageExt};

use crate::harness::{fixture, log_dir, Cmd, Output, TestDb};

const PASSWORD: &str = "tls-s3cret-Pw";
/// The role that logs in with a client certificate (its common name).
const CERT_USER: &str = "certuser";

/// Only TLS logins: a password for everyone, a certificate for CERT_USER.
const HBA: &str = "local all all trust\n\
                   hostssl all certuser 0.0.0.0/0 cert\n\
                   hostssl all certuser ::/0 cert\n\
                   hostssl all all 0.0.0.0/0 scram-sha-256\n\
                   hostssl all all ::/0 scram-sha-256\n";

/// The files the test writes: two CAs (the server's and an unrelated
/// one), the server's certificate for `localhost` only, and a client
/// certificate for CERT_USER.
struct Pki {
    dir: tempfile::TempDir,
    ca: String,
    server_cert: String,
    server_key: String,
}

impl Pki {
    fn make() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca("phasegate test CA");
        let other = ca_pem("an unrelated CA");
        let mut server = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        server.distinguished_name.push(DnType::CommonName, "localhost");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().unwrap();
        let server_cert = server.signed_by(&server_key, &ca).unwrap();
        let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
        client.distinguished_name.push(DnType::CommonName, CERT_USER);
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate().unwrap();
        let client_cert = client.signed_by(&client_key, &ca).unwrap();
        for (name, text) in [("ca.crt", ca.pem()), ("other-ca.crt", other), ("client.crt", client_cert.pem()), ("client.key", client_key.serialize_pem())] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        Pki { dir, ca: ca.pem(), server_cert: server_cert.pem(), server_key: server_key.serialize_pem() }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn ca_pem(name: &str) -> String {
    ca(name).pem()
}

/// The test image (PHASEGATE_PG_IMAGE) started through a shell that hands
/// the key to the postgres user with mode 0600 (PostgreSQL refuses a key
/// others can read, and files copied in belong to root), then runs the
/// image's own entry point with TLS on and the hostssl-only pg_hba.
#[derive(Debug, Clone)]
struct TlsPostgres {
    name: String,
    tag: String,
    copies: Vec<CopyToContainer>,
}

const START: &str = "set -e; mkdir -p /tls; cp /tls-in/* /tls/; chown -R postgres:postgres /tls; chmod 600 /tls/server.key; \
                     exec /usr/local/bin/docker-entrypoint.sh postgres -c ssl=on -c ssl_cert_file=/tls/server.crt \
                     -c ssl_key_file=/tls/server.key -c ssl_ca_file=/tls/ca.crt -c hba_file=/tls/pg_hba.conf -c fsync=off";

impl Image for TlsPostgres {
    fn name(&self) -> &str {
        &self.name
    }
    fn tag(&self) -> &str {
        &self.tag
    }
    fn ready_conditions(&self) -> Vec<WaitFor> {
        vec![
            WaitFor::message_on_stderr("database system is ready to accept connections"),
            WaitFor::message_on_stdout("database system is ready to accept connections"),
        ]
    }
    fn env_vars(&self) -> impl IntoIterator<Item = (impl Into<Cow<'_, str>>, impl Into<Cow<'_, str>>)> {
        [("POSTGRES_PASSWORD", PASSWORD), ("POSTGRES_USER", "postgres"), ("POSTGRES_DB", "postgres")]
    }
    fn copy_to_sources(&self) -> impl IntoIterator<Item = &CopyToContainer> {
        &self.copies
    }
    fn entrypoint(&self) -> Option<&str> {
        Some("/bin/sh")
    }
    fn cmd(&self) -> impl IntoIterator<Item = impl Into<Cow<'_, str>>> {
        ["-c", START]
    }
}

/// The TLS-only server, removed when dropped (also when the test panics).
struct TlsServer {
    container: Container<TlsPostgres>,
    pki: Pki,
}

impl TlsServer {
    fn start() -> TlsServer {
        let pki = Pki::make();
        let image = std::env::var("PHASEGATE_PG_IMAGE").unwrap_or_else(|_| phasegate::DEFAULT_IMAGE.to_string());
        let (name, tag) = image.rsplit_once(':').map(|(n, t)| (n.to_string(), t.to_string())).unwrap_or((image.clone(), "latest".into()));
        let copy = |file: &str, text: &str| CopyToContainer::new(text.as_bytes().to_vec(), CopyTargetOptions::new(format!("/tls-in/{file}")));
        let copies = vec![copy("server.crt", &pki.server_cert), copy("server.key", &pki.server_key), copy("ca.crt", &pki.ca), copy("pg_hba.conf", HBA)];
        let container = TlsPostgres { name, tag, copies }
            .with_host_config_modifier(phasegate::testing::publish_on_loopback)
            .with_label("phasegate.disposable", "1")
            .with_label("phasegate.owner-pid", std::process::id().to_string())
            .with_startup_timeout(Duration::from_secs(60))
            .start()
            .unwrap_or_else(|e| panic!("no TLS PostgreSQL container: {e}\nto run it: {}", phasegate_cli::testing::INSTALL_HINT));
        let server = TlsServer { container, pki };
        // The ready line can precede the first accepted connection by a moment.
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = server.url("postgres", "localhost", "sslmode=verify-full&sslrootcert=", "ca.crt");
        let mut admin = loop {
            match phasegate::connect(&url, "phasegate-test") {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => panic!("the TLS server did not come up: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        admin.batch_execute(&format!("CREATE ROLE {CERT_USER} LOGIN SUPERUSER")).unwrap();
        server
    }

    fn port(&self) -> u16 {
        self.container.get_host_port_ipv4(5432).expect("a published port")
    }

    /// `postgres://user@host:port/postgres?{query}{file}`, `file` one of the
    /// test's PEM files (empty for none).
    fn url(&self, user: &str, host: &str, query: &str, file: &str) -> String {
        let file = if file.is_empty() { String::new() } else { self.pki.path(file) };
        let auth = if user == CERT_USER { CERT_USER.to_string() } else { format!("{user}:{PASSWORD}") };
        let query = format!("{query}{file}");
        let query = if query.is_empty() { String::new() } else { format!("?{query}") };
        format!("postgres://{auth}@{host}:{}/postgres{query}", self.port())
    }
}

/// `status --format json` of the accounts fixture over `url`.
fn status(url: &str) -> Output {
    Cmd::new(&["status", "--format", "json"]).url(url).dir(&fixture("accounts")).logs(log_dir()).run()
}

/// The JSON document's `connection` object, asserting the run worked.
#[track_caller]
fn connected(out: &Output) -> serde_json::Value {
    out.expect_exit(0);
    assert!(!out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD), "the password leaked: {out:?}");
    out.json()["connection"].clone()
}

/// The one error line of `status` over `url`, asserting the run failed
/// and said nothing of the password.
#[track_caller]
fn refused(url: &str) -> String {
    let out = Cmd::new(&["status"]).url(url).dir(&fixture("accounts")).logs(log_dir()).run();
    out.expect_exit(1);
    assert!(!out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD), "the password leaked: {out:?}");
    out.error_line().to_string()
}

#[test]
fn every_sslmode_against_a_server_that_requires_tls() {
    let s = TlsServer::start();
    let (ca, other) = ("ca.crt", "other-ca.crt");
    let tls = |sslmode: &str, verified: &str| serde_json::json!({ "sslmode": sslmode, "channel": "tls", "verified": verified });

    // disable: the server refuses the unencrypted login, and the error says why.
    let e = refused(&s.url("postgres", "127.0.0.1", "sslmode=disable", ""));
    assert!(e.contains("no pg_hba.conf entry") && e.contains("no encryption") && e.contains("sslmode=disable turned it off"), "{e}");

    // prefer (the default, and spelled out): TLS, nothing verified, no warning.
    for query in ["", "sslmode=prefer"] {
        let out = status(&s.url("postgres", "127.0.0.1", query, ""));
        assert_eq!(connected(&out), tls("prefer", "nothing"), "{query}");
        assert!(!out.stderr.contains("plaintext"), "{}", out.stderr);
    }

    // require: encrypted, unverified; with a root certificate, the chain is checked (libpq).
    assert_eq!(connected(&status(&s.url("postgres", "127.0.0.1", "sslmode=require", ""))), tls("require", "nothing"));
    assert_eq!(connected(&status(&s.url("postgres", "127.0.0.1", "sslmode=require&sslrootcert=", ca))), tls("require", "chain"));
    let e = refused(&s.url("postgres", "127.0.0.1", "sslmode=require&sslrootcert=", other));
    assert!(e.contains("not signed by a CA in sslrootcert"), "{e}");

    // verify-ca: the right root passes whatever the host name; a wrong root fails clearly.
    assert_eq!(connected(&status(&s.url("postgres", "127.0.0.1", "sslmode=verify-ca&sslrootcert=", ca))), tls("verify-ca", "chain"));
    let e = refused(&s.url("postgres", "127.0.0.1", "sslmode=verify-ca&sslrootcert=", other));
    assert!(e.starts_with("cannot connect to postgres://postgres:***@127.0.0.1:"), "{e}");
    assert!(e.contains(&format!("the server's certificate is not signed by a CA in sslrootcert {}", s.pki.path(other))), "{e}");
    let e = refused(&s.url("postgres", "127.0.0.1", "sslmode=verify-ca", ""));
    assert!(e.contains("sslmode=verify-ca needs sslrootcert"), "{e}");
    let e = refused(&s.url("postgres", "127.0.0.1", "sslmode=verify-ca&sslrootcert=", "no-such-ca.crt"));
    assert!(e.contains(&format!("sslrootcert {}: No such file", s.pki.path("no-such-ca.crt"))), "{e}");

    // verify-full: the name in the certificate works, another name does not.
    assert_eq!(connected(&status(&s.url("postgres", "localhost", "sslmode=verify-full&sslrootcert=", ca))), tls("verify-full", "chain-and-host"));
    let e = refused(&s.url("postgres", "127.0.0.1", "sslmode=verify-full&sslrootcert=", ca));
    assert!(e.contains("not valid for the host name"), "{e}");

    // system roots (verify-full implied) do not know the test's CA.
    let e = refused(&s.url("postgres", "localhost", "sslrootcert=system", ""));
    assert!(e.contains("not signed by a CA in the system's trusted roots (sslmode=verify-full)") || e.contains("no trusted roots found on this system"), "{e}");

    // allow: plaintext first; this server refuses it, so TLS.
    assert_eq!(connected(&status(&s.url("postgres", "127.0.0.1", "sslmode=allow", ""))), tls("allow", "nothing"));

    // The key=value form takes the same parameters.
    let kv = format!("host=localhost port={} user=postgres password='{PASSWORD}' dbname=postgres sslmode=verify-full sslrootcert='{}'", s.port(), s.pki.path(ca));
    assert_eq!(connected(&status(&kv)), tls("verify-full", "chain-and-host"));

    // A client certificate authenticates CERT_USER; without it the server refuses.
    let with_cert = format!("{}&sslcert={}&sslkey={}", s.url(CERT_USER, "localhost", "sslmode=verify-full&sslrootcert=", ca), s.pki.path("client.crt"), s.pki.path("client.key"));
    assert_eq!(connected(&status(&with_cert)), tls("verify-full", "chain-and-host"));
    let e = refused(&s.url(CERT_USER, "localhost", "sslmode=verify-full&sslrootcert=", ca));
    assert!(e.contains("certificate") && e.contains("SQLSTATE 28000"), "{e}");

    // And the work itself over verify-full: the whole set migrates.
    let url = s.url("postgres", "localhost", "sslmode=verify-full&sslrootcert=", ca);
    let out = Cmd::new(&["migrate", "--yes", "--format", "json"]).url(&url).dir(&fixture("accounts")).logs(log_dir()).run();
    assert_eq!(connected(&out), tls("verify-full", "chain-and-host"));
    let applied: i64 = phasegate::connect(&url, "phasegate-test").unwrap().query_one("SELECT count(*) FROM refinery_schema_history", &[]).unwrap().get(0);
    assert_eq!(applied, 3);
}

/// The shared test server speaks no TLS: with the default `prefer` (the
/// harness's URLs say sslmode=disable; this one does not) the run goes on
/// in plaintext and says so on stderr, in its log and in its JSON.
#[test]
fn prefer_on_a_plaintext_server_says_it_fell_back() {
    let db = TestDb::new("tls_prefer");
    let url = without_sslmode(&db.url);
    let logs = tempfile::tempdir().unwrap();
    let out = Cmd::new(&["status", "--format", "json"]).url(&url).dir(&fixture("accounts")).logs(logs.path()).run();
    out.expect_exit(0);
    let warning = "warning: connected in plaintext: the server offers no TLS and sslmode=prefer fell back";
    assert!(out.stderr.lines().any(|l| l.starts_with(warning)), "{}", out.stderr);
    assert_eq!(out.json()["connection"], serde_json::json!({ "sslmode": "prefer", "channel": "plaintext", "verified": "nothing" }));
    let log = read_only_log(logs.path());
    assert!(log.contains(warning), "{log}");

    // sslmode=disable (or allow) asked for plaintext: nothing to warn about.
    for mode in ["disable", "allow"] {
        let out = Cmd::new(&["status", "--format", "json"]).url(&format!("{url}?sslmode={mode}")).dir(&fixture("accounts")).logs(logs.path()).run();
        out.expect_exit(0);
        assert!(!out.stderr.contains("plaintext"), "{}", out.stderr);
        assert_eq!(out.json()["connection"]["channel"], "plaintext");
    }
    // require on a server without TLS: refused, never plaintext.
    let e = Cmd::new(&["status"]).url(&format!("{url}?sslmode=require")).dir(&fixture("accounts")).logs(logs.path()).run().expect_exit(1).error_line().to_string();
    assert!(e.contains("server does not support TLS"), "{e}");
}

/// A fleet database that fell back says so too: on stderr once per server
/// (a thousand databases on one server would be a thousand warnings) and a
/// count at the end; the log names every database.
#[test]
fn a_fleet_database_that_fell_back_says_so() {
    let (one, two) = (TestDb::new("tls_fleet"), TestDb::new("tls_fleet2"));
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(
        &fleet,
        "[[database]]\nname = \"plain\"\nurl_env = \"TLS_FLEET_URL\"\n\n[[database]]\nname = \"plain2\"\nurl_env = \"TLS_FLEET_URL2\"\n\n[[group]]\nname = \"all\"\ndatabases = [\"plain\", \"plain2\"]\nparallel = 1\n",
    )
    .unwrap();
    let out = Cmd::new(&["status", "--fleet", fleet.to_str().unwrap()])
        .dir(&fixture("accounts"))
        .logs(dir.path())
        .env("TLS_FLEET_URL", &without_sslmode(&one.url))
        .env("TLS_FLEET_URL2", &without_sslmode(&two.url))
        .process();
    out.expect_exit(0);
    assert!(out.stderr.contains("warning: plain connected in plaintext: the server offers no TLS"), "{}", out.stderr);
    assert!(out.stderr.contains("; other databases of 127.0.0.1:"), "{}", out.stderr);
    assert!(!out.stderr.contains("warning: plain2 connected"), "{}", out.stderr);
    assert!(out.stderr.contains("warning: 2 database(s) connected in plaintext (sslmode=prefer fell back), per server: "), "{}", out.stderr);
    assert!(out.stderr.contains(" (2)"), "{}", out.stderr);
    let log = read_only_log(dir.path());
    assert!(log.contains("warning: plain2 connected in plaintext"), "{log}");
}

fn without_sslmode(url: &str) -> String {
    url.replace("?sslmode=disable", "")
}

/// The one log file in `dir`.
fn read_only_log(dir: &Path) -> String {
    let logs: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "log")).collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    std::fs::read_to_string(&logs[0]).unwrap()
}
