//! The rustls side of a connection: the client configuration a mode asks
//! for (roots from a PEM file or the system, a client certificate), the
//! server-certificate verifiers (`NoVerify`, `ChainOnly`, or rustls's own
//! WebPKI verifier for verify-full), and `Tracked`, the connector that
//! records whether a TLS handshake ran.

use std::path::Path;
use std::sync::{Arc, Mutex};

use postgres::tls::{MakeTlsConnect, TlsConnect};
use postgres::Socket;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::params::{Params, Roots};
use super::Verified;

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
pub(super) struct Tracked {
    inner: MakeRustlsConnect,
    used: Arc<Mutex<bool>>,
}

impl Tracked {
    /// The connector `params` ask for.
    pub(super) fn new(params: &Params) -> Result<Tracked, String> {
        Ok(Tracked { inner: MakeRustlsConnect::new(client_config(params)?), used: Arc::default() })
    }

    /// Whether the last attempt ran a TLS handshake, read after connecting.
    pub(super) fn handshake(&self) -> Arc<Mutex<bool>> {
        self.used.clone()
    }
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

pub(super) struct TrackedConnect {
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
    use crate::tls::SslMode;

    #[test]
    fn missing_certificate_files_are_named() {
        let p = Params { mode: SslMode::VerifyCa, roots: Some(Roots::File("/nonexistent/ca.pem".into())), cert: None, key: None };
        let e = client_config(&p).unwrap_err();
        assert!(e.starts_with("sslrootcert /nonexistent/ca.pem: "), "{e}");
    }
}
