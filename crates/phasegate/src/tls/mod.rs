//! TLS for every connection the engine makes, with libpq's parameters:
//! `sslmode` (disable, allow, prefer, require, verify-ca, verify-full),
//! `sslrootcert` (a PEM file of CAs, or `system` for the system's trusted
//! roots) and a client certificate (`sslcert`, `sslkey`), read from the URL's
//! query or the key=value string. The `postgres` crate knows only disable,
//! prefer and require, so [`split`](params::split) takes these parameters out of the
//! connection string before the rest is handed to `postgres::Config`, and
//! [`connect`] builds a rustls configuration (ring provider, `config.rs`)
//! that checks what the mode asks for:
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

mod config;
mod params;

use postgres::config::{Host, SslMode as PgSslMode};
use postgres::{Client, NoTls};
use rustls::CertificateError;
use serde::Serialize;

pub(crate) use params::{is_url, split, without_tls, Params};
use params::Roots;

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

/// Connects with `config` (whose sslmode this sets) as `params` ask.
pub(crate) fn connect(config: &mut postgres::Config, params: &Params) -> Result<(Client, Transport), Failure> {
    let local = !config.get_hosts().is_empty() && config.get_hosts().iter().all(|h| !matches!(h, Host::Tcp(_)));
    let transport = |channel| Transport {
        sslmode: params.mode,
        channel: if local && channel == Channel::Plaintext { Channel::UnixSocket } else { channel },
        verified: if channel == Channel::Tls { params.verified() } else { Verified::Nothing },
    };
    let with_tls = |config: &mut postgres::Config, mode| -> Result<(Client, Transport), Failure> {
        config.ssl_mode(mode);
        let tls = config::Tracked::new(params).map_err(Failure::Setup)?;
        let handshake = tls.handshake();
        let client = config.connect(tls)?;
        let used = *handshake.lock().unwrap_or_else(|p| p.into_inner());
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
pub(crate) enum Failure {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_when_prefer_fell_back() {
        let t = |sslmode, channel| Transport { sslmode, channel, verified: Verified::Nothing };
        assert!(t(SslMode::Prefer, Channel::Plaintext).fell_back());
        assert!(!t(SslMode::Prefer, Channel::Tls).fell_back());
        assert!(!t(SslMode::Prefer, Channel::UnixSocket).fell_back());
        assert!(!t(SslMode::Disable, Channel::Plaintext).fell_back());
        assert!(t(SslMode::Prefer, Channel::Plaintext).to_string().starts_with("plaintext: the server offers no TLS"));
    }
}
