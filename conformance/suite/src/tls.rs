//! TLS for the client side: one test certificate per test process, a client configuration
//! that trusts exactly that certificate, and one that trusts anything (for the server that
//! generates its own self-signed certificate).

use std::sync::{Arc, OnceLock};

use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use wsport_harness::tls::accept_any_certificate;

/// The certificate handed to servers with `--cert/--key`.
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: CertificateDer<'static>,
    /// PKCS#8 DER of the key, for the in-process TLS server of the harness's own tests.
    pub key_der: Vec<u8>,
}

/// Generated once per test process: valid for `localhost` and `127.0.0.1`, so both the
/// tungstenite client (which verifies the URL's IP address) and the raw client (which
/// verifies `localhost`) check the name.
pub fn test_cert() -> &'static TestCert {
    static CERT: OnceLock<TestCert> = OnceLock::new();
    CERT.get_or_init(|| {
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let certified = rcgen::generate_simple_self_signed(names).expect("rcgen self-signed");
        TestCert {
            cert_pem: certified.cert.pem(),
            key_pem: certified.key_pair.serialize_pem(),
            cert_der: certified.cert.der().clone(),
            key_der: certified.key_pair.serialize_der(),
        }
    })
}

/// The name the raw client asks for and verifies.
pub fn server_name() -> ServerName<'static> {
    ServerName::try_from("localhost").expect("valid DNS name")
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(crypto::ring::default_provider())
}

fn builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
}

/// A client configuration that trusts only [`test_cert`].
pub fn trusting_client() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            roots
                .add(test_cert().cert_der.clone())
                .expect("test certificate parses");
            Arc::new(
                builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            )
        })
        .clone()
}

/// A client configuration that accepts any certificate, still checking the handshake
/// signatures. Only for the case where the server made up its own certificate.
pub fn insecure_client() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let verifier = accept_any_certificate(&provider());
            Arc::new(
                builder()
                    .dangerous()
                    .with_custom_certificate_verifier(verifier)
                    .with_no_client_auth(),
            )
        })
        .clone()
}

/// The bytes of a TLS ClientHello for `config`, for a client that trickles them by hand.
pub fn client_hello(config: Arc<ClientConfig>) -> Vec<u8> {
    let mut conn = rustls::ClientConnection::new(config, server_name()).expect("client config");
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).expect("writing to a Vec");
    }
    hello
}
