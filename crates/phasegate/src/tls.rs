//! TLS for every connection the engine makes, with libpq's parameters:
//! `sslmode` (disable, allow, prefer, require, verify-ca, verify-full),
//! `sslrootcert` (a PEM file of CAs, or `system` for the system's trusted
//! roots) and a client certificate (`sslcert`, `sslkey`), read from the URL's
//! query or the key=value string. The `postgres` crate knows only disable,
//! prefer and require, so [`split`] takes these parameters out of the
//! connection string before the rest is handed to `postgres::Config`, and
//! [`connect`] builds a rustls configuration (ring provider) that checks what
//! the mode asks for:
//!
//! | sslmode     | encrypted                  | server certificate checked       |
//! |-------------|----------------------------|----------------------------------|
//! | disable     | never                      | -                                |
//! | allow       | only if plaintext fails    | chain, if `sslrootcert` is given |
//! | prefer      | if the server offers TLS   | chain, if `sslrootcert` is given |
//! | require     | always                     | chain, if `sslrootcert` is given |
//! | verify-ca   | always                     | chain                            |
//! | verify-full | always                     | chain and host name              |
//!
//! The default is `prefer`, as in libpq; a connection that fell back to
//! plaintext says so in its [`Transport`], for the caller to show.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use postgres::config::{Host, SslMode as PgSslMode};
use postgres::tls::{MakeTlsConnect, TlsConnect};
use postgres::{Client, NoTls, Socket};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Serialize;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    Allow,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(s: &str) -> Result<SslMode, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => return Err(format!("invalid sslmode {other:?}: expected disable, allow, prefer, require, verify-ca or verify-full")),
        })
    }
}

impl std::fmt::Display for SslMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a connection's bytes travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    Tls,
    Plaintext,
    /// A Unix-domain socket: local, PostgreSQL offers no TLS there.
    UnixSocket,
}

/// What of the server's certificate was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verified {
    Nothing,
    /// Signed by a CA of `sslrootcert` (verify-ca).
    Chain,
    /// Signed by a CA of `sslrootcert`, and valid for the host name (verify-full).
    ChainAndHost,
}

/// How a connection was made: the sslmode asked for, the channel it got,
/// and what was verified. `fell_back()` is the fact a run must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Transport {
    pub sslmode: SslMode,
    pub channel: Channel,
    pub verified: Verified,
}

impl Transport {
    /// `prefer` found no TLS on the server and went on in plaintext.
    pub fn fell_back(&self) -> bool {
        self.sslmode == SslMode::Prefer && self.channel == Channel::Plaintext
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.channel, self.verified) {
            (Channel::UnixSocket, _) => write!(f, "a local socket (sslmode={})", self.sslmode),
            (Channel::Plaintext, _) if self.fell_back() => {
                write!(f, "plaintext: the server offers no TLS and sslmode=prefer fell back (set sslmode=require or verify-full to refuse this)")
            }
            (Channel::Plaintext, _) => write!(f, "plaintext (sslmode={})", self.sslmode),
            (Channel::Tls, Verified::Nothing) => write!(f, "TLS, server certificate not verified (sslmode={})", self.sslmode),
            (Channel::Tls, Verified::Chain) => write!(f, "TLS, certificate chain verified (sslmode={})", self.sslmode),
            (Channel::Tls, Verified::ChainAndHost) => write!(f, "TLS, certificate chain and host name verified (sslmode={})", self.sslmode),
        }
    }
}

/// Where the trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Roots {
    File(PathBuf),
    /// `sslrootcert=system`: the system's trust store (libpq 16).
    System,
}

/// The TLS parameters of a connection string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    mode: SslMode,
    roots: Option<Roots>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

/// The connection-string keys this module owns (and `postgres` must not see).
const KEYS: [&str; 5] = ["sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword"];

impl Params {
    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "sslmode" => self.mode = SslMode::parse(value)?,
            "sslrootcert" if value == "system" => self.roots = Some(Roots::System),
            "sslrootcert" => self.roots = Some(Roots::File(PathBuf::from(value))),
            "sslcert" => self.cert = Some(PathBuf::from(value)),
            "sslkey" => self.key = Some(PathBuf::from(value)),
            // The value is a secret: never shown.
            "sslpassword" => return Err("sslpassword (an encrypted client key) is not supported: decrypt the key into a file readable only by you".into()),
            _ => unreachable!("only KEYS reach Params::set"),
        }
        Ok(())
    }

    /// libpq's rules: a root certificate makes prefer and require verify the
    /// chain; `system` roots ask for verify-full; verify-ca and verify-full
    /// need roots; a client certificate needs its key.
    fn check(self, given_mode: bool) -> Result<Params, String> {
        let mut p = self;
        if p.roots == Some(Roots::System) {
            if !given_mode {
                p.mode = SslMode::VerifyFull;
            } else if p.mode != SslMode::VerifyFull {
                return Err(format!("sslrootcert=system needs sslmode=verify-full (a public CA vouches for many hosts), not sslmode={}", p.mode));
            }
        }
        if matches!(p.mode, SslMode::VerifyCa | SslMode::VerifyFull) && p.roots.is_none() {
            return Err(format!("sslmode={} needs sslrootcert: a PEM file of the CA that signed the server's certificate, or system for the system's trusted roots", p.mode));
        }
        match (&p.cert, &p.key) {
            (Some(_), None) => return Err("sslcert needs sslkey (the client certificate's private key)".into()),
            (None, Some(_)) => return Err("sslkey needs sslcert (the client certificate)".into()),
            _ => {}
        }
        Ok(p)
    }

    /// What the server's certificate is checked for.
    fn verified(&self) -> Verified {
        match (self.mode, &self.roots) {
            (SslMode::VerifyFull, _) => Verified::ChainAndHost,
            (SslMode::Disable, _) | (_, None) => Verified::Nothing,
            _ => Verified::Chain,
        }
    }
}

/// Splits a connection string (URL or key=value) into the part `postgres`
/// reads and the TLS parameters; the error is the reason, without the string.
pub fn split(conn: &str) -> Result<(String, Params), String> {
    let mut params = Params::default();
    let mut given_mode = false;
    let mut take = |k: &str, v: &str| -> Result<(), String> {
        given_mode |= k == "sslmode";
        params.set(k, v)
    };
    let rest = if is_url(conn) { split_url(conn, &mut take)? } else { split_key_values(conn, &mut take)? };
    Ok((rest, params.check(given_mode)?))
}

/// The part of a connection string `postgres` reads, whatever the TLS
/// parameters' values (for finding the password to scrub from messages).
pub fn without_tls(conn: &str) -> Option<String> {
    let mut ignore = |_: &str, _: &str| Ok(());
    if is_url(conn) { split_url(conn, &mut ignore) } else { split_key_values(conn, &mut ignore) }.ok()
}

pub(crate) fn is_url(s: &str) -> bool {
    let lower = s.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// A URL's query, read as `postgres` reads it (after the userinfo's `@`,
/// from the first `?`, pairs split at `&`, percent-decoded), with the TLS
/// pairs taken out and the others kept as written.
fn split_url(url: &str, take: &mut dyn FnMut(&str, &str) -> Result<(), String>) -> Result<String, String> {
    let after_creds = url.find('@').map(|at| at + 1).unwrap_or(0);
    let Some(q) = url[after_creds..].find('?').map(|q| q + after_creds) else { return Ok(url.to_string()) };
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8().map(|c| c.into_owned()).map_err(|e| e.to_string());
    let mut kept = Vec::new();
    for pair in url[q + 1..].split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(k)?;
        if KEYS.contains(&key.as_str()) {
            take(&key, &decode(v)?)?;
        } else {
            kept.push(pair);
        }
    }
    Ok(if kept.is_empty() { url[..q].to_string() } else { format!("{}?{}", &url[..q], kept.join("&")) })
}

/// A key=value string, read as `postgres` (and libpq) read it: values
/// bare or in single quotes, `\` escaping the next character. The other
/// pairs are written back quoted.
fn split_key_values(s: &str, take: &mut dyn FnMut(&str, &str) -> Result<(), String>) -> Result<String, String> {
    let mut chars = s.chars().peekable();
    let mut kept = Vec::new();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        if key.is_empty() {
            if chars.peek().is_some() {
                return Err("a parameter without a name before `=`".into());
            }
            break;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!("`{key}` without `=` and a value"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let quoted = chars.next_if_eq(&'\'').is_some();
        let mut value = String::new();
        loop {
            match chars.next() {
                None if quoted => return Err(format!("the quoted value of `{key}` is not terminated")),
                None => break,
                Some('\'') if quoted => break,
                Some(c) if c.is_whitespace() && !quoted => break,
                Some('\\') => value.extend(chars.next()),
                Some(c) => value.push(c),
            }
        }
        if KEYS.contains(&key.as_str()) {
            take(&key, &value)?;
        } else {
            kept.push(format!("{key}='{}'", value.replace('\\', "\\\\").replace('\'', "\\'")));
        }
    }
    Ok(kept.join(" "))
}

/// Connects with `config` (whose sslmode this sets) as `params` ask.
pub fn connect(config: &mut postgres::Config, params: &Params) -> Result<(Client, Transport), Failure> {
    let local = !config.get_hosts().is_empty() && config.get_hosts().iter().all(|h| !matches!(h, Host::Tcp(_)));
    let transport = |channel| Transport {
        sslmode: params.mode,
        channel: if local && channel == Channel::Plaintext { Channel::UnixSocket } else { channel },
        verified: if channel == Channel::Tls { params.verified() } else { Verified::Nothing },
    };
    let with_tls = |config: &mut postgres::Config, mode| -> Result<(Client, Transport), Failure> {
        config.ssl_mode(mode);
        let tls = Tracked { inner: MakeRustlsConnect::new(client_config(params).map_err(Failure::Setup)?), used: Arc::default() };
        let used = tls.used.clone();
        let client = config.connect(tls)?;
        let used = *used.lock().unwrap_or_else(|p| p.into_inner());
        Ok((client, transport(if used { Channel::Tls } else { Channel::Plaintext })))
    };
    match params.mode {
        SslMode::Disable => {
            config.ssl_mode(PgSslMode::Disable);
            Ok((config.connect(NoTls)?, transport(Channel::Plaintext)))
        }
        SslMode::Allow => {
            config.ssl_mode(PgSslMode::Disable);
            match config.connect(NoTls) {
                Ok(client) => Ok((client, transport(Channel::Plaintext))),
                // libpq's allow: plaintext first, TLS when that is refused.
                Err(_) => with_tls(config, PgSslMode::Require),
            }
        }
        SslMode::Prefer => with_tls(config, PgSslMode::Prefer),
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => with_tls(config, PgSslMode::Require),
    }
}

/// Why [`connect`] failed: the TLS setup (a certificate file), or the
/// connection itself.
#[derive(Debug)]
pub enum Failure {
    Setup(String),
    Connect(postgres::Error),
}

impl From<postgres::Error> for Failure {
    fn from(e: postgres::Error) -> Failure {
        Failure::Connect(e)
    }
}

impl Failure {
    /// One line: rustls's certificate errors said in sslmode's terms, a
    /// pg_hba refusal of an unencrypted login pointed at sslmode.
    pub fn message(&self, params: &Params) -> String {
        let e = match self {
            Failure::Setup(m) => return m.clone(),
            Failure::Connect(e) => e,
        };
        let text = crate::error::pg_message(e);
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            // rustls's error travels inside an io::Error, whose source() skips it.
            let inner = s.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).map(|i| i as &(dyn std::error::Error + 'static));
            if let Some(rustls::Error::InvalidCertificate(c)) = inner.unwrap_or(s).downcast_ref::<rustls::Error>() {
                let roots = match &params.roots {
                    Some(Roots::File(p)) => format!("sslrootcert {}", p.display()),
                    _ => "the system's trusted roots".into(),
                };
                return match c {
                    CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                        format!("the server's certificate is not signed by a CA in {roots} (sslmode={}): {text}", params.mode)
                    }
                    CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => format!(
                        "the server's certificate is not valid for the host name connected to (sslmode=verify-full checks it; connect by a name the certificate lists, or use verify-ca): {text}"
                    ),
                    _ => format!("the server's certificate was refused (sslmode={}): {text}", params.mode),
                };
            }
            source = s.source();
        }
        if params.mode == SslMode::Disable && text.contains("no encryption") {
            return format!("{text}; the server accepts this login only over TLS and sslmode=disable turned it off (use sslmode=verify-full, or require)");
        }
        text
    }
}

/// The rustls configuration `params` ask for.
fn client_config(params: &Params) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().map_err(|e| format!("tls: {e}"))?;
    let verifier: Arc<dyn ServerCertVerifier> = match (&params.roots, params.verified()) {
        (Some(roots), Verified::Chain | Verified::ChainAndHost) => {
            let store = Arc::new(root_store(roots)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(store, provider.clone()).build().map_err(|e| format!("sslrootcert: {e}"))?;
            if params.verified() == Verified::ChainAndHost {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
        _ => Arc::new(NoVerify(provider)),
    };
    let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
    match (&params.cert, &params.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert, "sslcert")?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("sslkey {}: {}", key.display(), pem_error(&e)))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| format!("sslcert and sslkey: {e}"))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

fn root_store(roots: &Roots) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File(path) => {
            for cert in read_certs(path, "sslrootcert")? {
                store.add(cert).map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            }
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found.errors.first().map(|e| format!(": {e}")).unwrap_or_default();
                return Err(format!("sslrootcert=system: no trusted roots found on this system{why}"));
            }
        }
    }
    Ok(store)
}

/// Every certificate of a PEM file; none is an error.
fn read_certs(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{key} {}: {}", path.display(), pem_error(&e)))?;
    if certs.is_empty() {
        return Err(format!("{key} {}: no PEM certificate in the file", path.display()));
    }
    Ok(certs)
}

fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM private key in the file (an encrypted key is not supported)".into(),
        other => format!("{other:?}"),
    }
}

/// `require` (and `prefer`) without roots: encrypted, the server not
/// authenticated. The handshake's signatures are still checked.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(&self, _: &CertificateDer<'_>, _: &[CertificateDer<'_>], _: &ServerName<'_>, _: &[u8], _: UnixTime) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain up to a trusted root, not the host name. rustls
/// checks the name only after the chain, so a name mismatch means the chain
/// passed.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }
    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The rustls connector, recording whether the last connection attempt
/// went through a TLS handshake (`postgres` only starts one after the
/// server accepted the SSLRequest; with `prefer`, a refusal goes on in
/// plaintext and nothing else says so).
#[derive(Clone)]
struct Tracked {
    inner: MakeRustlsConnect,
    used: Arc<Mutex<bool>>,
}

impl MakeTlsConnect<Socket> for Tracked {
    type Stream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;
    type TlsConnect = TrackedConnect;
    type Error = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<TrackedConnect, Self::Error> {
        // One call per attempt (per host and address): the last one is the connection's.
        *self.used.lock().unwrap_or_else(|p| p.into_inner()) = false;
        Ok(TrackedConnect { inner: MakeTlsConnect::<Socket>::make_tls_connect(&mut self.inner, domain)?, used: self.used.clone() })
    }
}

struct TrackedConnect {
    inner: <MakeRustlsConnect as MakeTlsConnect<Socket>>::TlsConnect,
    used: Arc<Mutex<bool>>,
}

impl TlsConnect<Socket> for TrackedConnect {
    type Stream = <<MakeRustlsConnect as MakeTlsConnect<Socket>>::TlsConnect as TlsConnect<Socket>>::Stream;
    type Error = <<MakeRustlsConnect as MakeTlsConnect<Socket>>::TlsConnect as TlsConnect<Socket>>::Error;
    type Future = <<MakeRustlsConnect as MakeTlsConnect<Socket>>::TlsConnect as TlsConnect<Socket>>::Future;

    fn connect(self, stream: Socket) -> Self::Future {
        *self.used.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.inner.connect(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(mode: SslMode, roots: Option<Roots>) -> Params {
        Params { mode, roots, cert: None, key: None }
    }

    #[test]
    fn takes_the_tls_parameters_out_of_a_url() {
        let (rest, p) = split("postgres://u:p%3Fw@h:5432/db?sslmode=verify-full&connect_timeout=3&sslrootcert=%2Ftmp%2Fca%20x.pem").unwrap();
        assert_eq!(rest, "postgres://u:p%3Fw@h:5432/db?connect_timeout=3");
        assert_eq!(p, params(SslMode::VerifyFull, Some(Roots::File("/tmp/ca x.pem".into()))));
        let (rest, p) = split("postgresql://h/db?sslmode=require").unwrap();
        assert_eq!((rest.as_str(), p.mode), ("postgresql://h/db", SslMode::Require));
        // A `?` in the password is the password's.
        let (rest, p) = split("postgres://u:a?b@h/db").unwrap();
        assert_eq!((rest.as_str(), p), ("postgres://u:a?b@h/db", Params::default()));
    }

    #[test]
    fn takes_the_tls_parameters_out_of_key_values() {
        let (rest, p) = split("host=h  sslmode = verify-ca password='a b\\'c' sslrootcert='/c a.pem' sslcert=/c.pem sslkey=/k.pem").unwrap();
        assert_eq!(rest, "host='h' password='a b\\'c'");
        assert_eq!(p, Params { mode: SslMode::VerifyCa, roots: Some(Roots::File("/c a.pem".into())), cert: Some("/c.pem".into()), key: Some("/k.pem".into()) });
        assert_eq!(rest.parse::<postgres::Config>().unwrap().get_password(), Some(&b"a b'c"[..]));
        assert!(split("host='h").unwrap_err().contains("not terminated"));
        assert!(split("host").unwrap_err().contains("without `=`"));
    }

    #[test]
    fn follows_libpq_rules_for_modes_and_roots() {
        // The default is prefer; a root certificate makes require verify the chain.
        assert_eq!(split("host=h").unwrap().1.mode, SslMode::Prefer);
        assert_eq!(split("host=h sslmode=require sslrootcert=/ca.pem").unwrap().1.verified(), Verified::Chain);
        assert_eq!(split("host=h sslmode=require").unwrap().1.verified(), Verified::Nothing);
        assert_eq!(split("host=h sslmode=verify-full sslrootcert=/ca.pem").unwrap().1.verified(), Verified::ChainAndHost);
        // system roots mean verify-full.
        assert_eq!(split("host=h sslrootcert=system").unwrap().1.mode, SslMode::VerifyFull);
        assert!(split("host=h sslrootcert=system sslmode=require").unwrap_err().contains("needs sslmode=verify-full"));
        assert!(split("host=h sslmode=verify-ca").unwrap_err().contains("needs sslrootcert"));
        assert!(split("host=h sslmode=verify").unwrap_err().contains("invalid sslmode \"verify\""));
        assert!(split("host=h sslcert=/c.pem").unwrap_err().contains("needs sslkey"));
        let e = split("postgres://h/db?sslpassword=s3cret").unwrap_err();
        assert!(e.contains("not supported") && !e.contains("s3cret"), "{e}");
    }

    #[test]
    fn says_when_prefer_fell_back() {
        let t = |sslmode, channel| Transport { sslmode, channel, verified: Verified::Nothing };
        assert!(t(SslMode::Prefer, Channel::Plaintext).fell_back());
        assert!(!t(SslMode::Prefer, Channel::Tls).fell_back());
        assert!(!t(SslMode::Prefer, Channel::UnixSocket).fell_back());
        assert!(!t(SslMode::Disable, Channel::Plaintext).fell_back());
        assert!(t(SslMode::Prefer, Channel::Plaintext).to_string().starts_with("plaintext: the server offers no TLS"));
    }

    #[test]
    fn missing_certificate_files_are_named() {
        let p = Params { mode: SslMode::VerifyCa, roots: Some(Roots::File("/nonexistent/ca.pem".into())), cert: None, key: None };
        let e = client_config(&p).unwrap_err();
        assert!(e.starts_with("sslrootcert /nonexistent/ca.pem: "), "{e}");
    }
}
