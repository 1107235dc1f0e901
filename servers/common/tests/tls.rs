//! TLS setup: PEM loading errors name the file; the self-signed config really serves TLS.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use wsport_server_common::tls::{self, TlsSetupError};

/// A fresh directory for this test's files (removed on drop).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("wsport-common-tls-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A generated certificate and key as PEM text.
fn pem_pair() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    (c.cert.pem(), c.key_pair.serialize_pem())
}

fn expect_err(cert: &Path, key: &Path) -> TlsSetupError {
    match tls::from_pem_files(cert, key) {
        Ok(_) => panic!("{} / {} should be refused", cert.display(), key.display()),
        Err(e) => e,
    }
}

#[test]
fn pem_files_load() {
    let dir = TempDir::new("ok");
    let (cert, key) = pem_pair();
    let config =
        tls::from_pem_files(&dir.write("cert.pem", cert), &dir.write("key.pem", key)).unwrap();
    assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
}

#[test]
fn missing_file_is_named_with_the_os_error() {
    let dir = TempDir::new("missing");
    let (cert, key) = pem_pair();
    let cert = dir.write("cert.pem", cert);
    let key_path = dir.write("key.pem", key);
    let absent = dir.0.join("absent.pem");

    let e = expect_err(&absent, &key_path);
    assert!(
        matches!(
            e,
            TlsSetupError::Read {
                what: "certificate",
                ..
            }
        ),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains(&absent.display().to_string()) && msg.contains("No such file"),
        "{msg}"
    );

    let e = expect_err(&cert, &absent);
    assert!(
        matches!(
            e,
            TlsSetupError::Read {
                what: "private key",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains(&absent.display().to_string()), "{e}");
}

#[test]
fn garbage_files_are_named() {
    let dir = TempDir::new("garbage");
    let (cert, key) = pem_pair();
    let cert = dir.write("cert.pem", cert);
    let key = dir.write("key.pem", key);
    let garbage = dir.write("garbage.pem", "this is not PEM\n\x00\x01\x02");

    let e = expect_err(&garbage, &key);
    assert!(matches!(e, TlsSetupError::NoCertificate { .. }), "{e:?}");
    assert!(
        e.to_string().contains(&garbage.display().to_string()),
        "{e}"
    );

    let e = expect_err(&cert, &garbage);
    assert!(matches!(e, TlsSetupError::NoPrivateKey { .. }), "{e:?}");
    assert!(
        e.to_string().contains(&garbage.display().to_string()),
        "{e}"
    );

    // A certificate given as the key: PEM, but no key in it.
    let e = expect_err(&cert, &cert);
    assert!(matches!(e, TlsSetupError::NoPrivateKey { .. }), "{e:?}");

    // A truncated PEM block.
    let truncated = dir.write("truncated.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n");
    let e = expect_err(&truncated, &key);
    assert!(matches!(e, TlsSetupError::MalformedPem { .. }), "{e:?}");
    assert!(
        e.to_string().contains(&truncated.display().to_string()),
        "{e}"
    );
}

#[test]
fn mismatched_key_names_both_files() {
    let dir = TempDir::new("mismatch");
    let (cert_a, _) = pem_pair();
    let (_, key_b) = pem_pair();
    let cert = dir.write("a-cert.pem", cert_a);
    let key = dir.write("b-key.pem", key_b);
    let e = expect_err(&cert, &key);
    assert!(matches!(e, TlsSetupError::KeyMismatch { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("a-cert.pem") && msg.contains("b-key.pem") && msg.contains("does not match"),
        "{msg}"
    );
}

#[test]
fn self_signed_certificate_serves_tls_for_every_local_name() {
    let (chain, key) = tls::self_signed().unwrap();
    let server_config = tls::build(chain.clone(), key).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(chain[0].clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let client_config = Arc::new(client_config);

    for name in ["localhost", "127.0.0.1", "::1"] {
        let server_name = ServerName::try_from(name).unwrap().to_owned();
        let mut client = rustls::ClientConnection::new(client_config.clone(), server_name).unwrap();
        let mut server = rustls::ServerConnection::new(server_config.clone()).unwrap();
        // Shuttle bytes in memory until both sides finish the handshake.
        for _ in 0..10 {
            let mut wire = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut wire).unwrap();
            }
            if !wire.is_empty() {
                server.read_tls(&mut wire.as_slice()).unwrap();
                server
                    .process_new_packets()
                    .unwrap_or_else(|e| panic!("{name}: server: {e}"));
            }
            let mut wire = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut wire).unwrap();
            }
            if !wire.is_empty() {
                client.read_tls(&mut wire.as_slice()).unwrap();
                client
                    .process_new_packets()
                    .unwrap_or_else(|e| panic!("{name}: client: {e}"));
            }
            if !client.is_handshaking() && !server.is_handshaking() {
                break;
            }
        }
        assert!(
            !client.is_handshaking() && !server.is_handshaking(),
            "{name}: handshake stalled"
        );
        assert_eq!(server.alpn_protocol(), Some(&b"http/1.1"[..]), "{name}");
    }
}

#[test]
fn self_signed_pem_round_trips_through_files() {
    let dir = TempDir::new("roundtrip");
    let (chain, key) = tls::self_signed().unwrap();
    let PrivateKeyDer::Pkcs8(pkcs8) = &key else {
        panic!("rcgen gives PKCS#8")
    };
    let cert_pem = pem_block("CERTIFICATE", chain[0].as_ref());
    let key_pem = pem_block("PRIVATE KEY", pkcs8.secret_pkcs8_der());
    let cert = dir.write("cert.pem", &cert_pem);
    let key = dir.write("key.pem", &key_pem);
    tls::from_pem_files(&cert, &key).unwrap();
    assert_eq!(
        CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap(),
        chain[0]
    );
}

fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}
