//! The rustls client configuration for `wss://` targets.
//!
//! Trust, in order: `--insecure` accepts any certificate (wsport servers generate a self-signed
//! one by default; the handshake signatures are still checked, so the TLS work measured is the
//! real work); `--ca FILE` trusts the certificates in a PEM file; otherwise the system bundle
//! (`$SSL_CERT_FILE`, else the usual Debian/Fedora/Alpine paths). The provider is `ring`, as in
//! the servers, so both ends negotiate the same cipher suites whatever the process default.
//!
//! Connections never resume sessions: every wss connection of a run does the same full
//! handshake, so connection storms measure the server's full handshake cost.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::BenchError;

/// System CA bundles tried when neither `--insecure` nor `--ca` is given.
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// Build the client configuration.
pub fn client_config(insecure: bool, ca: Option<&Path>) -> Result<Arc<ClientConfig>, BenchError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| BenchError::Tls(e.to_string()))?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(roots(ca)?)
            .with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// The trust store for `--ca FILE`, else the system bundle.
fn roots(ca: Option<&Path>) -> Result<RootCertStore, BenchError> {
    let (path, certs) = match ca {
        Some(path) => {
            let certs = wsport_server_common::tls::load_certs(path)
                .map_err(|e| BenchError::Tls(e.to_string()))?;
            (path.to_owned(), certs)
        }
        None => {
            let env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
            let found = env
                .into_iter()
                .chain(SYSTEM_BUNDLES.iter().map(Into::into))
                .find(|p| p.is_file());
            let Some(path) = found else {
                return Err(BenchError::Tls(
                    "no system CA bundle found; pass --insecure (wsport servers use a self-signed \
                     certificate by default) or --ca FILE"
                        .into(),
                ));
            };
            let certs = wsport_server_common::tls::load_certs(&path)
                .map_err(|e| BenchError::Tls(e.to_string()))?;
            (path, certs)
        }
    };
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(BenchError::Tls(format!(
            "no usable CA certificate in {}",
            path.display()
        )));
    }
    Ok(store)
}

/// The server name to verify and send as SNI: an IP address for IP hosts, else the DNS name.
pub fn server_name(host: &str) -> Result<ServerName<'static>, BenchError> {
    ServerName::try_from(host.to_owned())
        .map_err(|e| BenchError::Tls(format!("{host:?} is not a valid TLS server name: {e}")))
}

/// `--insecure`: any certificate chain is accepted; handshake signatures are still verified
/// with the provider's algorithms (the server must hold the key of the certificate it sends).
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
