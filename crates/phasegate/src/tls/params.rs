//! libpq's TLS parameters in a connection string: `split` takes
//! `sslmode`, `sslrootcert`, `sslcert`, `sslkey` (and refuses `sslpassword`)
//! out of a URL's query or a key=value string, reading both as `postgres`
//! reads them, and applies libpq's rules between them (`Params::check`).

use std::path::PathBuf;

use super::{SslMode, Verified};

/// Where the trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Roots {
    File(PathBuf),
    /// `sslrootcert=system`: the system's trust store (libpq 16).
    System,
}

/// The TLS parameters of a connection string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pub(super) mode: SslMode,
    pub(super) roots: Option<Roots>,
    pub(super) cert: Option<PathBuf>,
    pub(super) key: Option<PathBuf>,
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
    pub(super) fn verified(&self) -> Verified {
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

pub fn is_url(s: &str) -> bool {
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
}
